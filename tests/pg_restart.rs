//! PostgreSQL stops for 7 s and starts again (`pg_ctlcluster`) while `weft serve` takes webhooks and runs
//! executions: webhooks sent while the database is away get 503 (and are sent again, as a
//! sender would), every accepted one's execution completes, none runs twice, and the server
//! carries on without a restart. Its own test binary, because it restarts the shared server.
//! Skipped without `WEFT_TEST_DATABASE_URL`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::Bg;
use weft_engine::store::{ExecStatus, ExecutionFilter};

const FLOW: &str = "name: restart-flow\ntriggers:\n  - name: restart-hook\n    type: webhook\n    secret: none\ntasks:\n  first:\n    action: core.sleep\n    input: {duration: 150ms}\n    next: [{do: second}]\n  second:\n    action: core.echo\n    input: {text: done}\n";

/// Stops PostgreSQL for `down`, then starts it again.
fn restart_postgres(down: Duration) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a cluster version");
    let ctl = |action: &str| {
        let status = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", action])
            .status()
            .expect("pg_ctlcluster runs");
        assert!(status.success(), "pg_ctlcluster {action}: {status}");
    };
    ctl("stop");
    std::thread::sleep(down);
    ctl("start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_loses_no_accepted_webhook() {
    let Some((url, _)) = support::pg_schema().await else {
        return;
    };
    if Command::new("pg_ctlcluster")
        .arg("--help")
        .output()
        .is_err()
    {
        weft_engine::testing::skip_for_missing_service(
            "skipped: pg_ctlcluster is not available to restart PostgreSQL",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flow.yaml"), FLOW).unwrap();
    // The webhook has no secret, so it runs for its owner: the root org.
    let added = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "org",
            "add",
            "Default",
            "--id",
            "default",
            "--database",
            &url,
        ])
        .env("WEFT_SECRET_KEY", "restart-test-key")
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut child = Bg(Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "8",
            "--lease",
            "5",
        ])
        .args(["--workflows", "."])
        .args(["--database", &url])
        .env("WEFT_SECRET_KEY", "restart-test-key")
        .env("WEFT_API_TOKEN", "restart-token")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft serve starts"));
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let base = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "weft serve ended");
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let restarter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(800));
        // Longer than the pool waits for a connection (5 s): requests meanwhile get 503.
        restart_postgres(Duration::from_secs(7));
    });
    // 120 distinct alerts, each sent until weft accepts it (202), as Autotask or an RMM
    // retries: a 503 or a dropped connection means "not accepted, send again".
    let (mut accepted, mut refused) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    for n in 0..120 {
        loop {
            assert!(Instant::now() < deadline, "alert {n} was never accepted");
            let res = client
                .post(format!("{base}/hooks/restart-hook/default"))
                .json(&json!({"n": n}))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 202 => {
                    let v: serde_json::Value = r.json().await.unwrap();
                    accepted.push(v["id"].as_str().unwrap().to_string());
                    break;
                }
                Ok(r) => {
                    assert_eq!(r.status(), 503, "only 503 while the database is away");
                    refused += 1;
                }
                Err(_) => refused += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    restarter.join().unwrap();
    eprintln!(
        "{} accepted, {refused} refused while PostgreSQL restarted",
        accepted.len()
    );
    assert!(
        refused > 0,
        "webhooks sent while the database was down were refused"
    );

    // A fresh connection (the test's own pool died with the restart).
    let store = weft_engine::store::open(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = store
            .list_executions(&ExecutionFilter {
                workflow: Some("restart-flow".into()),
                limit: Some(1000),
                ..ExecutionFilter::default()
            })
            .await;
        if let Ok(list) = list {
            assert_eq!(
                list.len(),
                accepted.len(),
                "one execution per accepted webhook"
            );
            let done = list
                .iter()
                .filter(|e| e.status == ExecStatus::Succeeded)
                .count();
            if let Some(f) = list.iter().find(|e| e.status == ExecStatus::Failed) {
                panic!("an execution failed: {f:#?}");
            }
            if done == accepted.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {} executions finished",
                accepted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for id in &accepted {
        let runs = store.task_runs(id).await.unwrap();
        let second: Vec<_> = runs.iter().filter(|r| r.task == "second").collect();
        assert_eq!(second.len(), 1, "{id}: {runs:#?}");
    }
}
