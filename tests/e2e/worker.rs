//! `weft worker` on a SQLite file another process queues work into: it runs the queued
//! executions, including one with a secret input — kept sealed with the shared key, never in
//! plain text — which it could not have run before (secret inputs were only in the memory
//! of the process that created the execution).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Bg, Env};
use serde_json::{Map, json};
use weft_engine::executor::{Engine, Start, StartOptions};
use weft_engine::store::{ExecStatus, TriggerEvent};

const KEY: &str = "worker-test-key";

const LOGIN: &str = "name: login\ninput:\n  user: {type: string}\n  password: {type: string, secret: true}\nvars:\n  line: \"user {{ CTX.user }} pw {{ CTX.password }}\"\ntasks:\n  check:\n    action: core.echo\n    input:\n      length: \"{{ CTX.password | length }}\"\n      same: \"{{ CTX.line == 'user ops pw ' ~ CTX.password }}\"\noutput:\n  length: \"{{ TASKS.check.result.length }}\"\n  same: \"{{ TASKS.check.result.same }}\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_runs_queued_executions_with_secret_inputs() {
    let env = Env::new();
    let store = weft_engine::store::open(&env.db).await.unwrap();
    let engine = Engine::new(store, Arc::new(weft_actions::registry()))
        .with_secrets(Arc::new(weft_engine::secrets::KeyBox::from_text(KEY)));
    let record = engine.deploy(LOGIN, None).await.unwrap();
    let mut input = Map::new();
    input.insert("user".into(), json!("ops"));
    input.insert("password".into(), json!("hunter22"));
    let start = Start {
        workflow: record.clone(),
        input,
        opts: StartOptions::default(),
    };
    let event = TriggerEvent::new("login", "form", "webhook", "default");
    let id = engine.enqueue(&event, vec![start]).await.unwrap().unwrap()[0].clone();

    let mut worker = Bg(Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(env.dir.path())
        .args(["worker", "--database", &env.db, "--workers", "2"])
        .env("WEFT_SECRET_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft worker starts"));
    let mut out = BufReader::new(worker.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("worker "), "{line}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let exec = loop {
        let e = engine.store().execution(&id).await.unwrap();
        if e.status.is_final() {
            break e;
        }
        assert!(Instant::now() < deadline, "the worker never ran it: {e:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exec.status, ExecStatus::Succeeded, "{exec:#?}");
    let output = exec.output.unwrap();
    assert_eq!(output["length"], 8, "the worker had the real password");
    // The var made from it is stored redacted (`user ops pw ***`), yet the worker used the
    // real one.
    assert_eq!(output["same"], true, "{output}");
    assert_eq!(exec.vars.as_ref().unwrap()["line"], "user ops pw ***");
    assert_ne!(
        exec.owner.as_deref(),
        Some(engine.owner()),
        "another process ran it"
    );
    assert_eq!(exec.input["password"], "***");
    drop(worker);
    // Nowhere in the database files in plain text.
    for file in ["weft.db", "weft.db-wal"] {
        let Ok(bytes) = std::fs::read(env.dir.path().join(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("hunter22"), "{file}");
    }
}
