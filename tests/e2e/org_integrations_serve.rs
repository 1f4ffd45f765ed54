//! `weft serve` with the Autotask integration configured only on the MSP org (`weft
//! integration add --org`), no `--integrations` file: Autotask triggers register their
//! webhooks with it, and a ticket event runs for the client org mapped to the ticket's
//! company, whose tasks reach Autotask through the integration they inherit.

use std::time::{Duration, Instant};

use crate::support::Env;
use crate::support::lab::ok;
use serde_json::{Value, json};
use weft_sim::{SimConfig, Simulator};

const TRIAGE: &str = "name: org-triage\ntriggers:\n  - name: new-ticket\n    type: autotask.ticket\n    events: [create]\n    input:\n      ticket_id: \"{{ TRIGGER.id }}\"\ninput:\n  ticket_id: {type: integer}\ntasks:\n  read:\n    action: autotask.get_ticket\n    input: {id: \"{{ CTX.ticket_id }}\"}\noutput:\n  title: \"{{ TASKS.read.result.title }}\"\n";

async fn weft(env: &Env, args: &[&str]) -> String {
    let mut cmd = env.cmd(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    ok(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_triggers_use_the_msps_own_integration() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let creds = SimConfig::default();
    let env = Env::new();
    weft(&env, &["org", "add", "BrightPath IT"]).await;
    weft(
        &env,
        &["org", "add", "Acme Dental", "--parent", "brightpath-it"],
    )
    .await;
    let secret = format!("secret={}", creds.secret);
    let user = format!("username={}", creds.username);
    let code = format!("integration_code={}", creds.integration_code);
    let url = format!("discovery_url={}", sim.base_url);
    weft(
        &env,
        &[
            "integration",
            "add",
            "autotask",
            "--org",
            "brightpath-it",
            "--set",
            &user,
            "--set",
            &code,
            "--set",
            &url,
            "--secret",
            &secret,
        ],
    )
    .await;
    weft(&env, &["mapping", "set", "acme-dental", "174"]).await;
    let file = env.write("triage.yaml", TRIAGE);
    weft(&env, &["deploy", file.to_str().unwrap()]).await;

    let mut server = crate::support::Bg(
        env.cmd(&["serve", "--listen", "127.0.0.1:0"])
            .env("WEFT_API_TOKEN", "org-token")
            .env_remove("WEFT_INTEGRATIONS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = server.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for _ in std::io::BufReader::new(stdout).lines() {}
    });

    // The webhook is registered through the MSP's integration.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sim.simulator.records("TicketWebhooks").iter().any(|w| {
        w["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("weft: org-triage"))
            && w["isActive"] == true
    }) {
        assert!(
            Instant::now() < deadline,
            "the webhook was never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A ticket of Acme Dental (174): the execution runs for acme-dental and reads the ticket
    // through the integration acme-dental inherits.
    crate::support::lab::create_via_api(
        &sim,
        "Tickets",
        json!({"companyID": 174, "title": "Scanner offline", "status": 1, "priority": 2}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let exec = loop {
        let list = weft(&env, &["executions", "list", "--workflow", "org-triage"]).await;
        if list.contains("succeeded") || list.contains("failed") {
            let id = list
                .lines()
                .find(|l| l.contains("org-triage"))
                .and_then(|l| l.split_whitespace().next())
                .unwrap()
                .to_string();
            let shown = weft(&env, &["executions", "show", &id, "--json"]).await;
            break serde_json::from_str::<Value>(&shown).unwrap();
        }
        assert!(Instant::now() < deadline, "no execution: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    assert_eq!(exec["org"], "acme-dental");
    assert_eq!(exec["output"]["title"], "Scanner offline");
}
