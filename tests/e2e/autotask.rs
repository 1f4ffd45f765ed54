//! `weft run` of the Autotask example against the simulator, through the real binary.

use std::process::Command;

use serde_json::Value;
use weft_sim::{SimConfig, Simulator};

fn weft(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env(
            "WEFT_DATABASE_URL",
            format!("sqlite://{}/weft.db", dir.display()),
        )
        .env_remove("WEFT_INTEGRATIONS")
        .current_dir(dir)
        .output()
        .expect("weft runs")
}

/// Writes `integrations.yaml` in `dir`: the simulator's tenant as the Autotask integration.
fn write_integrations(dir: &std::path::Path, sim: &weft_sim::RunningSim) {
    let creds = SimConfig::default();
    std::fs::write(
        dir.join("integrations.yaml"),
        format!(
            "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n    secrets:\n      secret: {}\n",
            creds.username, creds.integration_code, sim.base_url, creds.secret
        ),
    )
    .unwrap();
}

/// `weft run WORKFLOW --json --integrations integrations.yaml` in `dir`, which must succeed:
/// its JSON answer.
async fn run_json(dir: &std::path::Path, workflow: &str) -> Value {
    let (dir, workflow) = (dir.to_path_buf(), workflow.to_string());
    let out = tokio::task::spawn_blocking(move || {
        weft(
            &dir,
            &[
                "run",
                &workflow,
                "--json",
                "--integrations",
                "integrations.yaml",
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_tickets_get_a_note_each_and_the_oldest_is_escalated() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_integrations(dir.path(), &sim);
    let waiting: Vec<Value> = sim
        .records("Tickets")
        .into_iter()
        .filter(|t| t["status"] == 7)
        .collect();
    assert!(
        waiting.len() >= 2,
        "the seeded tenant has tickets waiting on customers"
    );
    let notes_before = sim.records("TicketNotes").len();

    let workflow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workflows/autotask-waiting-ticket-followup.yaml"
    );
    let result = run_json(dir.path(), workflow).await;
    assert_eq!(result["output"]["noted"], waiting.len());

    // Every waiting ticket got exactly one follow-up note, as an internal note.
    let notes = sim.records("TicketNotes");
    assert_eq!(notes.len(), notes_before + waiting.len());
    for t in &waiting {
        let added: Vec<&Value> = notes
            .iter()
            .filter(|n| n["ticketID"] == t["id"] && n["title"] == "Follow-up")
            .collect();
        assert_eq!(added.len(), 1, "ticket {}", t["id"]);
        assert_eq!(
            added[0]["noteType"], 13,
            "Internal Note, looked up by label"
        );
        assert!(
            added[0]["description"]
                .as_str()
                .unwrap()
                .contains(t["ticketNumber"].as_str().unwrap())
        );
    }
    // The least recently active one is escalated; the others keep their status.
    let oldest = waiting
        .iter()
        .min_by_key(|t| t["lastActivityDate"].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(result["output"]["escalated"], oldest["ticketNumber"]);
    let now: Vec<Value> = sim.records("Tickets");
    for t in &waiting {
        let current = now.iter().find(|x| x["id"] == t["id"]).unwrap();
        let expected = if t["id"] == oldest["id"] { 11 } else { 7 };
        assert_eq!(current["status"], expected, "ticket {}", t["id"]);
    }
    // Autotask's limit of three threads per endpoint was respected.
    assert!(sim.max_concurrency("TicketNotes") <= 3);
    // The secret never reaches the store.
    let shown = weft(
        dir.path(),
        &[
            "executions",
            "show",
            result["id"].as_str().unwrap(),
            "--json",
        ],
    );
    assert!(!String::from_utf8_lossy(&shown.stdout).contains(&SimConfig::default().secret));
}

/// Issue 18: a `with.items` of 12 notes loses none to 429s — Autotask did nothing with a
/// refused create, so the client sends it again after `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_of_notes_loses_none_to_rate_limits() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(weft_sim::FailureConfig {
        rate_limit_every: 4,
        retry_after_secs: 1,
        ..weft_sim::FailureConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    write_integrations(dir.path(), &sim);
    let ticket = sim.records("Tickets")[0]["id"].as_i64().unwrap();
    std::fs::write(
        dir.path().join("notes.yaml"),
        format!(
            r#"name: twelve-notes
tasks:
  note:
    action: autotask.create_ticket_note
    with:
      items: "{{{{ range(12) | list }}}}"
      concurrency: 3
    input:
      ticket_id: {ticket}
      fields:
        title: "note {{{{ item() }}}}"
        description: "fan-out"
        noteType: 1
        publish: 1
output:
  made: "{{{{ TASKS.note.result | length }}}}"
"#
        ),
    )
    .unwrap();
    let before = sim.records("TicketNotes").len();
    let result = run_json(dir.path(), "notes.yaml").await;
    assert_eq!(result["output"]["made"], 12, "{result}");
    let notes = sim.records("TicketNotes");
    assert_eq!(notes.len(), before + 12);
    for n in 0..12 {
        let title = format!("note {n}");
        assert_eq!(
            notes
                .iter()
                .filter(|x| x["title"] == title.as_str())
                .count(),
            1,
            "{title} made exactly once"
        );
    }
    assert!(
        sim.request_log().iter().any(|e| e.status == 429),
        "429s were met"
    );
}
