//! End-to-end tests of operations on executions: resuming after a SIGKILL, rerun from a task,
//! rerun of failed items, cancel. Steps call a local counting HTTP server, so "was this step
//! run again?" is answered by the server, not by the executor's own records.

use std::io::Read as _;
use std::time::{Duration, Instant};

use crate::support::{Env, Reply, Run, Server, runs_of, wait_child, wait_until};
use serde_json::{Value, json};

fn path(env: &Env, name: &str, yaml: &str) -> String {
    env.write(name, yaml).display().to_string()
}

/// `weft executions rerun ID ARGS --json`.
fn rerun(env: &Env, id: &str, args: &[&str]) -> Run {
    let mut all = vec!["executions", "rerun", id, "--json"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = env.weft(&all);
    Run::from_output(out, started.elapsed())
}

fn crash_workflow(server: &Server) -> String {
    format!(
        r#"
name: crash
tasks:
  s1:
    action: http.request
    input: {{ method: POST, url: "{base}/s1", json: {{ step: 1 }} }}
    next:
      - publish: {{ first: "{{{{ RESULT.json.n }}}}" }}
        do: s2
  s2:
    action: http.request
    input: {{ method: POST, url: "{base}/s2", json: {{ step: 2 }} }}
    next: [slow]
  slow:
    action: http.request
    input: {{ method: POST, url: "{base}/slow", json: {{ step: 3 }} }}
    next: [s3]
  s3:
    action: http.request
    input: {{ method: POST, url: "{base}/s3", json: {{ step: 4, first: "{{{{ CTX.first }}}}" }} }}
    next: [s4]
  s4:
    action: http.request
    input: {{ method: POST, url: "{base}/s4", json: {{ step: 5 }} }}
output:
  first: "{{{{ CTX.first }}}}"
  s3_saw: "{{{{ TASKS.s3.result.json.body.first }}}}"
"#,
        base = server.base
    )
}

/// A counting server whose `/slow` takes 3s the first time it is called.
fn crash_server() -> Server {
    Server::start(|hit, n| {
        let reply = Reply::ok(crate::support::echo_body(hit, n));
        if hit.path == "/slow" && n == 1 {
            reply.after(Duration::from_secs(3))
        } else {
            reply
        }
    })
}

/// Starts the crash workflow, waits until its slow step is in flight, SIGKILLs the process.
fn start_and_kill(env: &Env, server: &Server, wf: &str) -> String {
    let mut child = env.spawn_run(wf, &[]);
    let reached = wait_until(Duration::from_secs(15), || server.count("/slow") >= 1);
    if !reached {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the slow step was never called; hits: {:?}",
            server.counts()
        );
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "weft run ended before the kill"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(server.count("/s3"), 0, "s3 ran before the kill");
    let running = env.list(Some("running"));
    assert_eq!(
        running.len(),
        1,
        "the killed execution is left running: {running:?}"
    );
    running[0]["id"].as_str().unwrap().to_string()
}

fn assert_resumed_once(env: &Env, server: &Server, id: &str) {
    let show = env.show(id);
    assert_eq!(show["status"], "succeeded", "{show:#}");
    let counts = server.counts();
    for step in ["/s1", "/s2", "/s3", "/s4"] {
        assert_eq!(
            counts.get(step).copied(),
            Some(1),
            "{step} must run exactly once; hits: {counts:?}"
        );
    }
    let slow = counts.get("/slow").copied().unwrap_or(0);
    assert!(
        (1..=2).contains(&slow),
        "the in-flight step runs at most twice; hits: {counts:?}"
    );
    // Data published before the crash is still there after it.
    assert_eq!(show["output"], json!({"first": 1, "s3_saw": 1}), "{show:#}");
    for t in ["s1", "s2", "slow", "s3", "s4"] {
        assert_eq!(
            crate::support::task(&show, t).map(|x| x["status"].clone()),
            Some(json!("succeeded")),
            "{t}; {show:#}"
        );
    }
}

// 15 -----------------------------------------------------------------------------------------

#[test]
fn killed_run_resumes_without_repeating_finished_steps() {
    let server = crash_server();
    let env = Env::new();
    let wf = path(&env, "crash.yaml", &crash_workflow(&server));
    let id = start_and_kill(&env, &server, &wf);

    let out = env.weft(&["executions", "resume"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "resume: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&id), "resume names the execution: {stdout}");
    assert_resumed_once(&env, &server, &id);

    // Nothing left to resume.
    let out = env.weft(&["executions", "resume"]);
    assert!(out.status.success());
    assert_eq!(server.count("/s1"), 1);
}

#[test]
fn weft_run_resumes_a_killed_execution_first() {
    let server = crash_server();
    let env = Env::new();
    let wf = path(&env, "crash.yaml", &crash_workflow(&server));
    let id = start_and_kill(&env, &server, &wf);

    let other = path(
        &env,
        "other.yaml",
        "name: other\ntasks:\n  a: { action: core.noop }\n",
    );
    let r = env.run(&other, &[]);
    r.expect(0, "succeeded");
    assert!(
        r.stderr.contains(&id),
        "weft run reports the execution it resumed; {r}"
    );
    assert_resumed_once(&env, &server, &id);
}

#[test]
fn killed_with_items_task_resumes_only_unfinished_items() {
    // Items 2 and 3 are slow the first time; the kill comes while they are in flight.
    let server = Server::start(|hit, n| {
        let reply = Reply::ok(json!({"i": hit.body["i"], "n": n}));
        if (hit.path == "/item/2" || hit.path == "/item/3") && n == 1 {
            reply.after(Duration::from_secs(3))
        } else {
            reply
        }
    });
    let env = Env::new();
    let wf = path(
        &env,
        "items.yaml",
        &format!(
            r#"
name: crash-items
tasks:
  each:
    action: http.request
    with:
      items: "{{{{ range(6) | list }}}}"
      concurrency: 2
    input: {{ method: POST, url: "{base}/item/{{{{ item() }}}}", json: {{ i: "{{{{ item() }}}}" }} }}
output:
  got: "{{{{ TASKS.each.result | map(attribute='json') | map(attribute='i') | list }}}}"
"#,
            base = server.base
        ),
    );
    let mut child = env.spawn_run(&wf, &[]);
    // Items 2 and 3 start only once items 0 and 1 have finished (and been recorded).
    let reached = wait_until(Duration::from_secs(15), || {
        server.count("/item/2") == 1 && server.count("/item/3") == 1
    });
    assert!(
        reached,
        "items 2 and 3 never started: {:?}",
        server.counts()
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let running = env.list(Some("running"));
    assert_eq!(running.len(), 1, "{running:?}");
    let id = running[0]["id"].as_str().unwrap().to_string();

    let out = env.weft(&["executions", "resume"]);
    assert!(
        out.status.success(),
        "resume: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let show = env.show(&id);
    assert_eq!(show["status"], "succeeded", "{show:#}");
    assert_eq!(show["output"]["got"], json!([0, 1, 2, 3, 4, 5]), "{show:#}");
    let counts = server.counts();
    for (i, want) in [(0, 1), (1, 1), (2, 2), (3, 2), (4, 1), (5, 1)] {
        assert_eq!(
            counts.get(&format!("/item/{i}")).copied(),
            Some(want),
            "item {i}: finished items are not re-run, in-flight ones run again; hits: {counts:?}"
        );
    }
}

// 16 -----------------------------------------------------------------------------------------

#[test]
fn rerun_from_a_task_reuses_earlier_results() {
    // c fails the first time it is called.
    let server = Server::start(|hit, n| {
        if hit.path == "/c" && n == 1 {
            Reply::status(500, json!({"error": "try later"}))
        } else {
            Reply::ok(crate::support::echo_body(hit, n))
        }
    });
    let env = Env::new();
    let wf = path(
        &env,
        "rerun.yaml",
        &format!(
            r#"
name: rerun-from
tasks:
  a:
    action: http.request
    input: {{ method: POST, url: "{base}/a" }}
    next:
      - publish: {{ token: "a-{{{{ RESULT.json.n }}}}" }}
        do: b
  b:
    action: http.request
    input: {{ method: POST, url: "{base}/b" }}
    next: [c]
  c:
    action: http.request
    input: {{ method: POST, url: "{base}/c", json: {{ token: "{{{{ CTX.token }}}}" }} }}
    next: [d]
  d:
    action: http.request
    input: {{ method: POST, url: "{base}/d", json: {{ token: "{{{{ CTX.token }}}}", b_n: "{{{{ TASKS.b.result.json.n }}}}" }} }}
output:
  d_saw: "{{{{ TASKS.d.result.json.body }}}}"
"#,
            base = server.base
        ),
    );
    let first = env.run(&wf, &[]);
    first.expect(1, "failed");
    assert_eq!(first.task_status("c"), Some("failed"), "{first}");
    assert!(
        !matches!(first.task_status("d"), Some("succeeded")),
        "{first}"
    );

    let r = rerun(&env, first.id(), &["--from", "c"]);
    r.expect(0, "succeeded");
    assert_ne!(r.id(), first.id(), "a rerun is a new execution");
    assert_eq!(r.json["rerun_of"], first.id(), "{r}");
    for t in ["a", "b"] {
        assert_eq!(r.task(t)["reused"], true, "{t} reused; {r}");
        assert_eq!(r.task(t)["status"], "succeeded", "{r}");
    }
    for t in ["c", "d"] {
        assert_eq!(r.task(t)["reused"], false, "{t} ran again; {r}");
        assert_eq!(r.task(t)["status"], "succeeded", "{r}");
    }
    assert_eq!(
        r.json["output"]["d_saw"],
        json!({"token": "a-1", "b_n": 1}),
        "published values and TASKS of reused tasks are visible; {r}"
    );
    let counts = server.counts();
    assert_eq!(counts.get("/a"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("/b"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("/c"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("/d"), Some(&1), "{counts:?}");
    // The first execution is unchanged.
    assert_eq!(env.show(first.id())["status"], "failed");

    // Unknown task: exit 2, nothing run.
    let bad = rerun(&env, first.id(), &["--from", "nope"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert_eq!(server.counts(), counts);
}

// 17 -----------------------------------------------------------------------------------------

#[test]
fn rerun_failed_items_runs_only_the_failed_items() {
    // Items 1 and 3 fail the first time.
    let server = Server::start(|hit, n| {
        if (hit.path == "/item/1" || hit.path == "/item/3") && n == 1 {
            Reply::status(502, json!({"error": "bad gateway"}))
        } else {
            Reply::ok(json!({"i": hit.body["i"], "n": n}))
        }
    });
    let env = Env::new();
    let wf = path(
        &env,
        "items.yaml",
        &format!(
            r#"
name: rerun-items
tasks:
  prepare:
    action: core.echo
    input: {{ ids: [0, 1, 2, 3, 4] }}
    next: [each]
  each:
    action: http.request
    with:
      items: "{{{{ TASKS.prepare.result.ids }}}}"
      concurrency: 2
    input: {{ method: POST, url: "{base}/item/{{{{ item() }}}}", json: {{ i: "{{{{ item() }}}}" }} }}
    next: [summary]
  summary:
    action: core.echo
    input: {{ count: "{{{{ TASKS.each.result | length }}}}" }}
output:
  items: "{{{{ TASKS.each.result }}}}"
  count: "{{{{ TASKS.summary.result.count }}}}"
"#,
            base = server.base
        ),
    );
    let first = env.run(&wf, &[]);
    first.expect(1, "failed");
    let msg = first.task("each")["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("2 of 5"), "{msg}");
    assert_eq!(server.hits().len(), 5);

    let r = rerun(&env, first.id(), &["--failed-items"]);
    r.expect(0, "succeeded");
    let counts = server.counts();
    for (i, want) in [(0, 1), (1, 2), (2, 1), (3, 2), (4, 1)] {
        assert_eq!(
            counts.get(&format!("/item/{i}")).copied(),
            Some(want),
            "item {i}; hits: {counts:?}"
        );
    }
    let items = r.json["output"]["items"]
        .as_array()
        .expect("a list")
        .clone();
    let got: Vec<Value> = items.iter().map(|it| it["json"]["i"].clone()).collect();
    assert_eq!(
        got,
        [json!(0), json!(1), json!(2), json!(3), json!(4)],
        "{r}"
    );
    // Items 1 and 3 are the second calls to their paths.
    let nth: Vec<Value> = items.iter().map(|it| it["json"]["n"].clone()).collect();
    assert_eq!(
        nth,
        [json!(1), json!(2), json!(1), json!(2), json!(1)],
        "{r}"
    );
    assert_eq!(r.json["output"]["count"], 5, "{r}");
    assert_eq!(r.task("prepare")["reused"], true, "{r}");
}

// 18 -----------------------------------------------------------------------------------------

#[test]
fn cancel_stops_a_running_execution_from_another_process() {
    let env = Env::new();
    let wf = path(
        &env,
        "long.yaml",
        r#"
name: long
tasks:
  wait:
    action: core.sleep
    input: { duration: 60s }
    next: [after]
  after: { action: core.noop }
"#,
    );
    let mut child = env.spawn_run(&wf, &[]);
    let id = env.wait_running_execution(Duration::from_secs(15));
    assert!(
        wait_until(Duration::from_secs(10), || {
            crate::support::task(&env.show(&id), "wait").is_some_and(|t| t["status"] == "running")
        }),
        "the task never showed as running"
    );

    let out = env.weft(&["executions", "cancel", &id]);
    assert!(
        out.status.success(),
        "cancel: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = Instant::now();
    let status = wait_child(&mut child, Duration::from_secs(10));
    let took = asked.elapsed();
    let status = status.expect("weft run did not stop after the cancel");
    assert!(
        took < Duration::from_millis(2500),
        "the run stopped {took:?} after the cancel"
    );
    assert_eq!(status.code(), Some(1), "a cancelled run does not exit 0");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let printed: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    assert_eq!(printed["status"], "cancelled", "{stdout}");

    let show = env.show(&id);
    assert_eq!(show["status"], "cancelled", "{show:#}");
    assert_ne!(
        crate::support::task(&show, "wait").map(|t| t["status"].clone()),
        Some(json!("running")),
        "{show:#}"
    );
    assert!(
        runs_of(&show, "after").is_empty(),
        "nothing starts after a cancel; {show:#}"
    );

    // Cancelling a finished execution is refused.
    let again = env.weft(&["executions", "cancel", &id]);
    assert_eq!(again.status.code(), Some(2));
    let done = env.run(
        &path(
            &env,
            "quick.yaml",
            "name: quick\ntasks:\n  a: { action: core.noop }\n",
        ),
        &[],
    );
    done.expect(0, "succeeded");
    let out = env.weft(&["executions", "cancel", done.id()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.show(done.id())["status"], "succeeded");
}

#[test]
fn cancel_cascades_to_sub_workflows() {
    let env = Env::new();
    env.write(
        "child.yaml",
        r#"
name: slow-child
tasks:
  wait:
    action: core.sleep
    input: { duration: 60s }
"#,
    );
    let wf = path(
        &env,
        "parent.yaml",
        r#"
name: cancel-parent
tasks:
  call:
    action: core.workflow
    input: { workflow: slow-child }
"#,
    );
    let mut child = env.spawn_run(&wf, &[]);
    let mut execs = Vec::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            execs = env.list(Some("running"));
            execs.len() == 2
        }),
        "parent and child never both ran: {execs:?}"
    );
    let parent = execs
        .iter()
        .find(|e| e["parent_id"].is_null())
        .expect("the parent")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = execs
        .iter()
        .find(|e| !e["parent_id"].is_null())
        .expect("the child")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.weft(&["executions", "cancel", &parent]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wait_child(&mut child, Duration::from_secs(10));
    assert!(status.is_some(), "weft run did not stop after the cancel");
    assert_eq!(env.show(&parent)["status"], "cancelled");
    let sub_show = env.show(&sub);
    assert_eq!(
        sub_show["status"], "cancelled",
        "cancel cascades to the sub-workflow; {sub_show:#}"
    );
}

#[test]
fn sub_workflow_does_not_stay_running_when_its_parent_task_times_out() {
    let env = Env::new();
    env.write(
        "child.yaml",
        r#"
name: slow-child
tasks:
  wait:
    action: core.sleep
    input: { duration: 60s }
"#,
    );
    let wf = path(
        &env,
        "parent.yaml",
        r#"
name: timeout-parent
tasks:
  call:
    action: core.workflow
    input: { workflow: slow-child }
    timeout: 300ms
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert!(r.error().contains("timed out"), "{r}");
    let all = env.list(None);
    let sub = all
        .iter()
        .find(|e| e["workflow_name"] == "slow-child")
        .unwrap_or_else(|| panic!("no sub-workflow execution: {all:?}"));
    assert_ne!(
        sub["status"], "running",
        "the sub-workflow of a timed-out task is stopped, not left running: {sub:#}"
    );
}

// A store on first use --------------------------------------------------------------------

#[test]
fn concurrent_first_use_of_a_database_succeeds() {
    // `weft serve` and a `weft run` (or two runs from cron) starting on a new database.
    for _ in 0..10 {
        let env = Env::fresh();
        let children: Vec<_> = (0..8)
            .map(|_| {
                env.cmd(&["executions", "list"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "a weft command failed on a database being created by another: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn rerun_never_sends_the_redacted_placeholder_as_a_secret() {
    // The first call fails; a rerun must not call the API with `***` instead of the key
    // (secrets are never stored, so a rerun cannot know the value: it must refuse, or ask).
    let server = Server::start(|_hit, n| {
        if n == 1 {
            Reply::status(500, json!({"error": "try later"}))
        } else {
            Reply::ok(json!({"ok": true}))
        }
    });
    let env = Env::new();
    let wf = path(
        &env,
        "secret.yaml",
        &format!(
            r#"
name: secret-rerun
input:
  api_key: {{ type: string, secret: true, required: true }}
tasks:
  start:
    action: core.noop
    next: [call]
  call:
    action: http.request
    input: {{ url: "{}", headers: {{ X-Api-Key: "{{{{ CTX.api_key }}}}" }} }}
"#,
            server.url("/api")
        ),
    );
    let first = env.run(&wf, &["--input", "api_key=real-key-123"]);
    first.expect(1, "failed");
    for args in [&["--from", "call"][..], &[][..]] {
        let r = rerun(&env, first.id(), args);
        let sent: Vec<String> = server
            .hits()
            .iter()
            .map(|h| h.headers.get("x-api-key").cloned().unwrap_or_default())
            .collect();
        assert!(
            sent.iter().all(|k| k == "real-key-123"),
            "rerun {args:?} sent the API key {sent:?}; {r}"
        );
    }
}

#[test]
fn cancelling_a_killed_execution_ends_it_and_its_tasks() {
    let env = Env::new();
    let wf = path(
        &env,
        "long.yaml",
        "name: long\ntasks:\n  a:\n    action: core.sleep\n    input: { duration: 60s }\n    next: [b]\n  b: { action: core.noop }\n",
    );
    let mut child = env.spawn_run(&wf, &[]);
    let id = env.wait_running_execution(Duration::from_secs(15));
    assert!(
        wait_until(Duration::from_secs(10), || {
            crate::support::task(&env.show(&id), "a").is_some_and(|t| t["status"] == "running")
        }),
        "the task never showed as running"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    // Nobody runs it any more: the cancel takes effect at once.
    let out = env.weft(&["executions", "cancel", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = env.show(&id);
    assert_eq!(show["status"], "cancelled", "{show:#}");
    assert_ne!(
        crate::support::task(&show, "a").map(|t| t["status"].clone()),
        Some(json!("running")),
        "a cancelled execution shows no task still running; {show:#}"
    );
    // And a later `weft run` does not resume it.
    let other = path(
        &env,
        "other.yaml",
        "name: other\ntasks:\n  x: { action: core.noop }\n",
    );
    env.run(&other, &[]).expect(0, "succeeded");
    assert_eq!(env.show(&id)["status"], "cancelled");
    assert!(runs_of(&env.show(&id), "b").is_empty());
}

#[test]
fn rerun_sees_the_same_ctx_as_the_original_run() {
    let env = Env::new();
    let wf = path(
        &env,
        "vars.yaml",
        r#"
name: vars
input:
  n: { type: integer, default: 1 }
vars:
  double: "{{ CTX.n * 2 }}"
tasks:
  a:
    action: core.echo
    input: { names: "{{ CTX | list }}", double: "{{ CTX.double }}" }
output:
  a: "{{ TASKS.a.result }}"
"#,
    );
    let first = env.run(&wf, &["--input", "n=5"]);
    first.expect(0, "succeeded");
    assert_eq!(
        first.json["output"]["a"],
        json!({"names": ["n", "double"], "double": 10}),
        "{first}"
    );
    let again = rerun(&env, first.id(), &[]);
    again.expect(0, "succeeded");
    assert_eq!(
        again.json["output"], first.json["output"],
        "a rerun sees the inputs and vars, nothing else; {again}"
    );
}
