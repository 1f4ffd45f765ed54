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
    write_integrations_with(dir, sim, "");
}

/// As [`write_integrations`], with more settings (`"      key: value\n"` lines).
fn write_integrations_with(dir: &std::path::Path, sim: &weft_sim::RunningSim, settings: &str) {
    let creds = SimConfig::default();
    std::fs::write(
        dir.join("integrations.yaml"),
        format!(
            "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n{settings}    secrets:\n      secret: {}\n",
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

/// A workflow making `n` notes on `ticket`, all at once.
fn notes_workflow(name: &str, ticket: i64, n: usize) -> String {
    format!(
        r#"name: {name}
tasks:
  note:
    action: autotask.create_ticket_note
    with:
      items: "{{{{ range({n}) | list }}}}"
      concurrency: {n}
    input:
      ticket_id: {ticket}
      fields:
        title: "{name} {{{{ item() }}}}"
        description: "fan-out"
        noteType: 1
        publish: 1
output:
  made: "{{{{ TASKS.note.result | length }}}}"
"#
    )
}

/// Issue 18: Autotask's 3 requests per endpoint hold across processes. Two `weft run`s on one
/// database, each making 6 notes at once, never have more than 3 requests to `TicketNotes` in
/// flight together (the simulator refuses a 4th with the thread-limit error).
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_share_one_thread_limit() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(weft_sim::FailureConfig {
        enforce_thread_limit: true,
        latency: Some(std::time::Duration::from_millis(150)),
        ..weft_sim::FailureConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    write_integrations(dir.path(), &sim);
    let ticket = sim.records("Tickets")[0]["id"].as_i64().unwrap();
    for name in ["first", "second"] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            notes_workflow(name, ticket, 6),
        )
        .unwrap();
    }
    // Migrate once, so both processes start sending at about the same time.
    assert!(weft(dir.path(), &["executions", "list"]).status.success());
    let (a, b) = tokio::join!(
        run_json(dir.path(), "first.yaml"),
        run_json(dir.path(), "second.yaml")
    );
    assert_eq!(
        (a["output"]["made"].clone(), b["output"]["made"].clone()),
        (6.into(), 6.into())
    );
    let log = sim.request_log();
    let refused: Vec<_> = log
        .iter()
        .filter(|e| e.endpoint == "TicketNotes" && e.status == 500)
        .collect();
    assert!(refused.is_empty(), "thread-limit refusals: {refused:#?}");
    assert!(
        sim.max_concurrency("TicketNotes") <= 3,
        "{}",
        sim.max_concurrency("TicketNotes")
    );
    let notes = sim.records("TicketNotes");
    for name in ["first", "second"] {
        for n in 0..6 {
            let title = format!("{name} {n}");
            assert_eq!(
                notes
                    .iter()
                    .filter(|x| x["title"] == title.as_str())
                    .count(),
                1,
                "{title}"
            );
        }
    }
}

/// Issue 18: at the tenant's hourly budget (read from `ThresholdInformation`) a run fails with
/// an error naming the budget, before Autotask suspends the API.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_stops_at_the_hourly_budget_with_an_error_naming_it() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(weft_sim::FailureConfig {
        request_threshold: 8,
        ..weft_sim::FailureConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // The fan-out is background work, paced near the budget: short pauses keep the test quick.
    write_integrations_with(dir.path(), &sim, "      budget_pace_max_delay: 50ms\n");
    let ticket = sim.records("Tickets")[0]["id"].as_i64().unwrap();
    std::fs::write(
        dir.path().join("many.yaml"),
        notes_workflow("many", ticket, 12),
    )
    .unwrap();
    let out = weft(
        dir.path(),
        &[
            "run",
            "many.yaml",
            "--json",
            "--integrations",
            "integrations.yaml",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("hourly request budget") && text.contains("of 8 requests"),
        "{text}"
    );
    let log = sim.request_log();
    assert!(
        log.iter().all(|e| e.status != 500),
        "weft stopped before Autotask refused anything: {log:#?}"
    );
    assert!(
        log.iter()
            .filter(|e| e.endpoint == "TicketNotes" && e.status == 200)
            .count()
            < 8
    );
}
