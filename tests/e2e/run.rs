//! End-to-end tests of the executor through `weft run`: data flow, parallelism, joins,
//! routes, fail-fast, retries, timeouts, with.items, sub-workflows, template errors, exit
//! codes and purge. Each test has its own temp dir and SQLite database and drives the real
//! binary.

use std::time::Duration;

use crate::support::{Env, max_overlap, ms, runs_of};
use serde_json::{Value, json};

fn path(env: &Env, name: &str, yaml: &str) -> String {
    env.write(name, yaml).display().to_string()
}

// 1 ------------------------------------------------------------------------------------------

#[test]
fn linear_chain_passes_data_through_publish_ctx_and_tasks() {
    let env = Env::new();
    let wf = path(
        &env,
        "chain.yaml",
        r#"
name: chain
input:
  n: { type: integer, required: true }
  who: { type: string, default: world }
tasks:
  a:
    action: core.echo
    input: { v: "{{ CTX.n + 1 }}", greeting: "hello {{ CTX.who }}" }
    next:
      - publish: { x: "{{ RESULT.v * 10 }}" }
        do: b
  b:
    action: core.echo
    input: { from_ctx: "{{ CTX.x }}", from_a: "{{ TASKS.a.result.v }}", status_a: "{{ TASKS.a.status }}" }
    next: [c]
  c:
    action: core.mock
    input: { result: "{{ TASKS.b.result.from_ctx + TASKS.b.result.from_a }}" }
output:
  sum: "{{ TASKS.c.result }}"
  x: "{{ CTX.x }}"
  greeting: "{{ TASKS.a.result.greeting }}"
  b: "{{ TASKS.b.result }}"
"#,
    );
    let r = env.run(&wf, &["--input", "n=4", "--input", "who=weft"]);
    r.expect(0, "succeeded");
    assert_eq!(
        r.json["output"],
        json!({
            "sum": 55,
            "x": 50,
            "greeting": "hello weft",
            "b": {"from_ctx": 50, "from_a": 5, "status_a": "succeeded"},
        }),
        "{r}"
    );
    let names: Vec<&str> = r.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "tasks in run order; {r}");
    for t in ["a", "b", "c"] {
        assert_eq!(r.task(t)["status"], "succeeded");
        assert_eq!(r.task(t)["attempts"], 1);
    }
    // Each task starts after its predecessor finished.
    assert!(ms(&r.task("b")["started_at"]) >= ms(&r.task("a")["finished_at"]));
    assert!(ms(&r.task("c")["started_at"]) >= ms(&r.task("b")["finished_at"]));
}

// 2 ------------------------------------------------------------------------------------------

#[test]
fn parallel_branches_overlap_in_time() {
    let env = Env::new();
    let wf = path(
        &env,
        "par.yaml",
        r#"
name: par
tasks:
  start:
    action: core.noop
    next: [b, c]
  b:
    action: core.sleep
    input: { duration: 400ms }
  c:
    action: core.sleep
    input: { duration: 400ms }
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    let (bs, bf) = (
        ms(&r.task("b")["started_at"]),
        ms(&r.task("b")["finished_at"]),
    );
    let (cs, cf) = (
        ms(&r.task("c")["started_at"]),
        ms(&r.task("c")["finished_at"]),
    );
    assert!(
        bf - bs >= 390.0 && cf - cs >= 390.0,
        "each slept 400ms; {r}"
    );
    assert!(bs < cf, "b started before c finished; {r}");
    assert!(cs < bf, "c started before b finished; {r}");
    let total = ms(&r.json["finished_at"]) - ms(&r.json["started_at"]);
    assert!(
        total < 700.0,
        "two 400ms branches in parallel took {total}ms; {r}"
    );
}

// 3 ------------------------------------------------------------------------------------------

#[test]
fn join_all_runs_once_after_every_branch() {
    let env = Env::new();
    let wf = path(
        &env,
        "join.yaml",
        r#"
name: join-all
tasks:
  start:
    action: core.noop
    next: [b, c, d]
  b:
    action: core.mock
    input: { result: b, delay: 300ms }
    next: [j]
  c:
    action: core.mock
    input: { result: c, delay: 50ms }
    next: [j]
  d:
    action: core.mock
    input: { result: d }
    next: [j]
  j:
    action: core.echo
    input: { got: "{{ [TASKS.b.result, TASKS.c.result, TASKS.d.result] }}" }
    join: all
output:
  got: "{{ TASKS.j.result.got }}"
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    assert_eq!(r.json["output"]["got"], json!(["b", "c", "d"]), "{r}");
    let show = env.show(r.id());
    assert_eq!(runs_of(&show, "j").len(), 1, "j ran once; {show}");
    let j_start = ms(&r.task("j")["started_at"]);
    for t in ["b", "c", "d"] {
        assert!(
            j_start >= ms(&r.task(t)["finished_at"]),
            "j started before {t} finished; {r}"
        );
    }
}

#[test]
fn join_all_with_a_skipped_branch_fails_naming_the_join_and_the_branch() {
    let env = Env::new();
    let wf = path(
        &env,
        "join.yaml",
        r#"
name: join-skip
tasks:
  start:
    action: core.noop
    next:
      - when: "{{ false }}"
        do: left
      - do: right
  left:
    action: core.noop
    next: [merge]
  right:
    action: core.noop
    next: [merge]
  merge:
    action: core.noop
    join: all
    next: [after]
  after:
    action: core.noop
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert_eq!(r.task_status("left"), Some("skipped"), "{r}");
    assert_eq!(r.task_status("right"), Some("succeeded"), "{r}");
    assert!(
        !matches!(r.task_status("merge"), Some("succeeded" | "running")),
        "{r}"
    );
    assert!(
        !matches!(r.task_status("after"), Some("succeeded" | "running")),
        "{r}"
    );
    let err = r.error();
    assert!(
        err.contains("merge") && err.contains("left"),
        "the error names the join and the missing branch: {err}"
    );
}

#[test]
fn join_all_whose_branches_are_all_skipped_is_skipped_and_so_is_what_follows() {
    let env = Env::new();
    let wf = path(
        &env,
        "join.yaml",
        r#"
name: join-all-skipped
tasks:
  start:
    action: core.noop
    next:
      - when: "{{ false }}"
        do: left
      - when: "{{ 1 > 2 }}"
        do: right
      - do: other
  left:
    action: core.noop
    next: [merge]
  right:
    action: core.noop
    next: [merge]
  merge:
    action: core.noop
    join: all
    next: [after]
  after:
    action: core.noop
  other:
    action: core.noop
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    for t in ["left", "right", "merge", "after"] {
        assert_eq!(r.task_status(t), Some("skipped"), "{t}; {r}");
    }
    assert_eq!(r.task_status("other"), Some("succeeded"), "{r}");
}

#[test]
fn join_one_after_exclusive_branches_runs_once() {
    let env = Env::new();
    let wf = path(
        &env,
        "join.yaml",
        r#"
name: join-one
input:
  go_left: { type: boolean, required: true }
tasks:
  start:
    action: core.noop
    next:
      - when: "{{ CTX.go_left }}"
        publish: { way: left }
        do: left
      - when: "{{ not CTX.go_left }}"
        publish: { way: right }
        do: right
  left:
    action: core.noop
    next: [merge]
  right:
    action: core.noop
    next: [merge]
  merge:
    action: core.echo
    input: { way: "{{ CTX.way }}" }
    join: 1
output:
  way: "{{ TASKS.merge.result.way }}"
"#,
    );
    for (go_left, ran, skipped) in [(true, "left", "right"), (false, "right", "left")] {
        let r = env.run(&wf, &["--input", &format!("go_left={go_left}")]);
        r.expect(0, "succeeded");
        assert_eq!(r.task_status(ran), Some("succeeded"), "{r}");
        assert_eq!(r.task_status(skipped), Some("skipped"), "{r}");
        assert_eq!(r.task_status("merge"), Some("succeeded"), "{r}");
        assert_eq!(r.json["output"]["way"], ran, "{r}");
        let show = env.show(r.id());
        assert_eq!(runs_of(&show, "merge").len(), 1, "merge ran once; {show}");
    }
}

#[test]
fn join_one_after_two_firing_branches_runs_once() {
    let env = Env::new();
    let wf = path(
        &env,
        "join.yaml",
        r#"
name: join-one-both
tasks:
  start:
    action: core.noop
    next: [fast, slow]
  fast:
    action: core.mock
    input: { result: 1 }
    next: [merge]
  slow:
    action: core.mock
    input: { result: 2, delay: 300ms }
    next: [merge]
  merge:
    action: core.noop
    join: 1
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    let show = env.show(r.id());
    assert_eq!(runs_of(&show, "merge").len(), 1, "merge ran once; {show}");
    assert!(
        ms(&r.task("merge")["started_at"]) < ms(&r.task("slow")["finished_at"]),
        "join: 1 starts on the first arrival, not after the slow branch; {r}"
    );
    assert_eq!(r.task_status("slow"), Some("succeeded"), "{r}");
}

// 4 ------------------------------------------------------------------------------------------

#[test]
fn unreachable_join_at_run_time_names_the_join_and_the_branch_that_did_not_come() {
    let env = Env::new();
    // `check` fails and its failure is handled, so its success route to `merge` never fires:
    // `weft validate` cannot know this in advance.
    let wf = path(
        &env,
        "unreachable.yaml",
        r#"
name: unreachable-join
tasks:
  start:
    action: core.noop
    next: [check, fetch]
  check:
    action: core.fail
    input: { message: "check went wrong" }
    next:
      - do: merge
      - on: failure
        do: report
  report:
    action: core.noop
  fetch:
    action: core.mock
    input: { result: 1, delay: 100ms }
    next: [merge]
  merge:
    action: core.noop
    join: all
"#,
    );
    let v = env.weft_no_db(&["validate", &wf]);
    assert!(
        v.status.success(),
        "the workflow validates: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert_eq!(r.task_status("report"), Some("succeeded"), "{r}");
    assert_eq!(r.task_status("fetch"), Some("succeeded"), "{r}");
    assert!(
        !matches!(r.task_status("merge"), Some("succeeded" | "running")),
        "{r}"
    );
    let err = r.error();
    assert!(
        err.contains("merge") && err.contains("check"),
        "names the join and the missing branch: {err}"
    );
}

// 5 ------------------------------------------------------------------------------------------

#[test]
fn transition_mode_first_fires_only_the_first_matching_route() {
    let env = Env::new();
    let wf = path(
        &env,
        "first.yaml",
        r#"
name: first
input:
  n: { type: integer, required: true }
tasks:
  classify:
    action: core.echo
    input: { n: "{{ CTX.n }}" }
    transition_mode: first
    next:
      - when: "{{ RESULT.n > 100 }}"
        publish: { size: huge }
        do: huge
      - when: "{{ RESULT.n > 10 }}"
        publish: { size: big }
        do: big
      - when: "{{ RESULT.n > 1 }}"
        publish: { size: small }
        do: small
      - publish: { size: tiny }
        do: tiny
  huge: { action: core.noop }
  big: { action: core.noop }
  small: { action: core.noop }
  tiny: { action: core.noop }
output:
  size: "{{ CTX.size }}"
"#,
    );
    for (n, want) in [(50, "big"), (500, "huge"), (1, "tiny")] {
        let r = env.run(&wf, &["--input", &format!("n={n}")]);
        r.expect(0, "succeeded");
        assert_eq!(r.json["output"]["size"], want, "n={n}; {r}");
        for t in ["huge", "big", "small", "tiny"] {
            let expected = if t == want { "succeeded" } else { "skipped" };
            assert_eq!(r.task_status(t), Some(expected), "n={n}, task {t}; {r}");
        }
    }
}

// 6 ------------------------------------------------------------------------------------------

#[test]
fn failure_route_runs_a_handler_with_the_error_as_result() {
    let env = Env::new();
    let wf = path(
        &env,
        "failure.yaml",
        r#"
name: failure-route
tasks:
  risky:
    action: core.fail
    input: { message: "the API said no" }
    next:
      - do: on_ok
      - on: failure
        publish: { err: "{{ RESULT }}", msg: "{{ RESULT.message }}" }
        do: handler
  on_ok: { action: core.noop }
  handler:
    action: core.echo
    input: { saw: "{{ CTX.msg }}", task_error: "{{ TASKS.risky.error.message }}", status: "{{ TASKS.risky.status }}" }
output:
  err: "{{ CTX.err }}"
  handler: "{{ TASKS.handler.result }}"
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    assert_eq!(r.task_status("risky"), Some("failed"), "{r}");
    assert_eq!(r.task_status("on_ok"), Some("skipped"), "{r}");
    assert_eq!(r.task_status("handler"), Some("succeeded"), "{r}");
    assert_eq!(
        r.json["output"]["err"]["message"], "the API said no",
        "RESULT in a failure route is the error object; {r}"
    );
    assert_eq!(
        r.json["output"]["handler"],
        json!({"saw": "the API said no", "task_error": "the API said no", "status": "failed"}),
        "{r}"
    );
}

#[test]
fn always_route_fires_on_success_and_on_failure() {
    let env = Env::new();
    let wf = path(
        &env,
        "always.yaml",
        r#"
name: always-route
input:
  fail: { type: boolean, default: false }
tasks:
  step:
    action: core.mock
    input: { result: fine, error: "{{ 'broken' if CTX.fail else none }}" }
    next:
      - on: always
        publish: { outcome: "{{ RESULT }}" }
        do: cleanup
  cleanup:
    action: core.echo
    input: { after: "{{ TASKS.step.status }}" }
output:
  outcome: "{{ CTX.outcome }}"
  cleanup: "{{ TASKS.cleanup.result.after }}"
"#,
    );
    let ok = env.run(&wf, &[]);
    ok.expect(0, "succeeded");
    assert_eq!(ok.json["output"]["outcome"], "fine", "{ok}");
    assert_eq!(ok.json["output"]["cleanup"], "succeeded", "{ok}");

    let bad = env.run(&wf, &["--input", "fail=true"]);
    bad.expect(0, "succeeded");
    assert_eq!(bad.task_status("step"), Some("failed"), "{bad}");
    assert_eq!(bad.json["output"]["outcome"]["message"], "broken", "{bad}");
    assert_eq!(bad.json["output"]["cleanup"], "failed", "{bad}");
}

// 7 ------------------------------------------------------------------------------------------

#[test]
fn fail_fast_lets_running_branches_finish_but_starts_nothing_new() {
    let env = Env::new();
    let wf = path(
        &env,
        "failfast.yaml",
        r#"
name: fail-fast
tasks:
  start:
    action: core.noop
    next: [doomed, slow]
  doomed:
    action: core.mock
    input: { error: "disk full", delay: 100ms }
    next: [after_doomed]
  after_doomed: { action: core.noop }
  slow:
    action: core.sleep
    input: { duration: 600ms }
    next: [after_slow]
  after_slow: { action: core.noop }
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    let err = r.error();
    assert!(
        err.contains("doomed") && err.contains("disk full"),
        "the error names the task and its message: {err}"
    );
    assert_eq!(r.task_status("doomed"), Some("failed"), "{r}");
    assert_eq!(
        r.task_status("slow"),
        Some("succeeded"),
        "a task already running finishes; {r}"
    );
    assert!(
        ms(&r.task("slow")["finished_at"]) - ms(&r.task("slow")["started_at"]) >= 590.0,
        "slow was not cut short; {r}"
    );
    for t in ["after_slow", "after_doomed"] {
        assert!(
            !matches!(r.task_status(t), Some("succeeded" | "running" | "failed")),
            "{t} must not start after the failure; {r}"
        );
    }
    let show = env.show(r.id());
    assert!(
        runs_of(&show, "after_slow")
            .iter()
            .all(|row| row["started_at"].is_null() || row["status"] == "skipped"),
        "after_slow never started; {show}"
    );
}

// 8 ------------------------------------------------------------------------------------------

const RETRY_WF: &str = r#"
name: retry
tasks:
  flaky:
    action: core.fail
    input: { message: "still broken" }
    retry: { count: 3, delay: 200ms, backoff: 2.0 }
"#;

#[test]
fn retries_back_off_exponentially() {
    let env = Env::new();
    let wf = path(&env, "retry.yaml", RETRY_WF);
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert_eq!(r.task("flaky")["attempts"], 4, "1 + 3 retries; {r}");
    assert!(r.error().contains("flaky") && r.error().contains("still broken"));
    let show = env.show(r.id());
    let mut rows = runs_of(&show, "flaky");
    rows.sort_by_key(|row| row["attempt"].as_i64());
    let attempts: Vec<i64> = rows
        .iter()
        .map(|row| row["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4], "{show}");
    assert!(rows.iter().all(|row| row["status"] == "failed"), "{show}");
    // core.fail returns at once, so an attempt's end is its start; this does not depend on
    // how the last attempt's row records its start (see `each_attempt_row_records_its_own_start`).
    let at: Vec<f64> = rows.iter().map(|row| ms(&row["finished_at"])).collect();
    for (i, want) in [200.0, 400.0, 800.0].into_iter().enumerate() {
        let gap = at[i + 1] - at[i];
        assert!(
            (gap - want).abs() <= 150.0,
            "attempt {} came {gap:.0}ms after attempt {}, expected ≈{want}ms; {show}",
            i + 2,
            i + 1
        );
    }
}

#[test]
fn each_attempt_row_records_its_own_start() {
    let env = Env::new();
    let wf = path(&env, "retry.yaml", RETRY_WF);
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    let show = env.show(r.id());
    let mut rows = runs_of(&show, "flaky");
    rows.sort_by_key(|row| row["attempt"].as_i64());
    assert_eq!(rows.len(), 4, "{show}");
    let starts: Vec<f64> = rows.iter().map(|row| ms(&row["started_at"])).collect();
    for (i, want) in [200.0, 400.0, 800.0].into_iter().enumerate() {
        let gap = starts[i + 1] - starts[i];
        assert!(
            (gap - want).abs() <= 150.0,
            "attempt {}'s started_at is {gap:.0}ms after attempt {}'s, expected ≈{want}ms \
             (each attempt row must carry its own start); rows: {}",
            i + 2,
            i + 1,
            serde_json::to_string_pretty(&rows).unwrap()
        );
    }
    for row in &rows {
        assert!(
            ms(&row["finished_at"]) - ms(&row["started_at"]) < 150.0,
            "an instant core.fail attempt lasted from {} to {}",
            row["started_at"],
            row["finished_at"]
        );
    }
}

#[test]
fn retry_when_false_stops_retrying() {
    let env = Env::new();
    let wf = path(
        &env,
        "retry-when.yaml",
        r#"
name: retry-when
input:
  message: { type: string, required: true }
tasks:
  call:
    action: core.fail
    input: { message: "{{ CTX.message }}" }
    retry:
      count: 3
      delay: 50ms
      when: "{{ 'transient' in RESULT.message }}"
"#,
    );
    let permanent = env.run(&wf, &["--input", "message=permanent error"]);
    permanent.expect(1, "failed");
    assert_eq!(
        permanent.task("call")["attempts"],
        1,
        "retry.when false: no retry; {permanent}"
    );
    let transient = env.run(&wf, &["--input", "message=transient error"]);
    transient.expect(1, "failed");
    assert_eq!(
        transient.task("call")["attempts"],
        4,
        "retry.when true: every retry; {transient}"
    );
}

#[test]
fn a_retry_that_succeeds_makes_the_task_succeed() {
    // core.mock fails while the attempt number (from a flaky test endpoint) says so.
    let server = crate::support::Server::start(|_hit, n| {
        if n < 3 {
            crate::support::Reply::status(503, json!({"try": n}))
        } else {
            crate::support::Reply::ok(json!({"try": n}))
        }
    });
    let env = Env::new();
    let wf = path(
        &env,
        "retry-ok.yaml",
        &format!(
            r#"
name: retry-ok
tasks:
  call:
    action: http.request
    input: {{ url: "{}" }}
    retry: {{ count: 5, delay: 50ms }}
output:
  tried: "{{{{ TASKS.call.result.json.try }}}}"
"#,
            server.url("/flaky")
        ),
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    assert_eq!(r.task("call")["attempts"], 3, "{r}");
    assert_eq!(r.json["output"]["tried"], 3, "{r}");
    assert_eq!(server.count("/flaky"), 3);
}

// 9 ------------------------------------------------------------------------------------------

#[test]
fn task_timeout_fails_the_attempt_quickly() {
    let env = Env::new();
    let wf = path(
        &env,
        "timeout.yaml",
        r#"
name: task-timeout
tasks:
  slow:
    action: core.sleep
    input: { duration: 5s }
    timeout: 300ms
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert!(r.wall < Duration::from_secs(3), "took {:?}; {r}", r.wall);
    let t = r.task("slow");
    assert_eq!(t["status"], "failed", "{r}");
    let d = ms(&t["finished_at"]) - ms(&t["started_at"]);
    assert!((290.0..1000.0).contains(&d), "timed out after {d}ms; {r}");
    let msg = t["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(
        r.error().contains("slow") && r.error().contains("timed out"),
        "{r}"
    );
}

#[test]
fn workflow_timeout_fails_the_execution() {
    let env = Env::new();
    let wf = path(
        &env,
        "wf-timeout.yaml",
        r#"
name: wf-timeout
timeout: 500ms
tasks:
  first:
    action: core.noop
    next: [slow]
  slow:
    action: core.sleep
    input: { duration: 5s }
    next: [never]
  never: { action: core.noop }
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert!(r.wall < Duration::from_secs(3), "took {:?}; {r}", r.wall);
    let total = ms(&r.json["finished_at"]) - ms(&r.json["started_at"]);
    assert!(
        (490.0..1500.0).contains(&total),
        "ended after {total}ms; {r}"
    );
    assert!(r.error().contains("timed out"), "{r}");
    assert_ne!(r.task_status("slow"), Some("succeeded"), "{r}");
    assert_ne!(r.task_status("never"), Some("succeeded"), "{r}");
}

// 10 -----------------------------------------------------------------------------------------

#[test]
fn with_items_respects_concurrency_and_keeps_item_order() {
    let env = Env::new();
    // Earlier items are slower, so they finish out of order.
    let wf = path(
        &env,
        "items.yaml",
        r#"
name: items
tasks:
  each:
    action: core.mock
    with:
      items: "{{ range(8) | list }}"
      concurrency: 3
    input:
      result: "{{ 'r' ~ item() }}"
      delay: "{{ 320 - item() * 30 }}ms"
output:
  results: "{{ TASKS.each.result }}"
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    let want: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    assert_eq!(r.json["output"]["results"], json!(want), "item order; {r}");
    let show = env.show(r.id());
    let items: Vec<&Value> = runs_of(&show, "each")
        .into_iter()
        .filter(|row| row["item"].as_i64() >= Some(0))
        .collect();
    assert_eq!(items.len(), 8, "{show}");
    let spans: Vec<(f64, f64)> = items
        .iter()
        .map(|row| (ms(&row["started_at"]), ms(&row["finished_at"])))
        .collect();
    let max = max_overlap(&spans);
    assert!(
        max <= 3,
        "{max} items ran at once with concurrency 3; {show}"
    );
    assert_eq!(max, 3, "the concurrency was used; {show}");
    // The items really did finish out of order (else the order check proves little).
    let mut by_finish: Vec<(f64, i64)> = items
        .iter()
        .map(|row| (ms(&row["finished_at"]), row["item"].as_i64().unwrap()))
        .collect();
    by_finish.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_ne!(by_finish[0].1, 0, "{show}");
}

#[test]
fn failing_items_fail_the_task_after_every_item_finished() {
    let env = Env::new();
    let wf = path(
        &env,
        "items-fail.yaml",
        r#"
name: items-fail
tasks:
  each:
    action: core.mock
    with:
      items: [1, 2, 3, 4]
      concurrency: 4
    input:
      result: "{{ item() * 10 }}"
      error: "{{ ('bad ' ~ item()) if item() % 2 == 0 else none }}"
      delay: "{{ '500ms' if item() == 3 else '10ms' }}"
    next:
      - do: next_step
  next_step: { action: core.noop }
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    let t = r.task("each");
    assert_eq!(t["status"], "failed", "{r}");
    let msg = t["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("2 of 4"), "says how many items failed: {msg}");
    assert!(msg.contains("bad 2"), "{msg}");
    assert_ne!(r.task_status("next_step"), Some("succeeded"), "{r}");
    let show = env.show(r.id());
    let items: Vec<&Value> = runs_of(&show, "each")
        .into_iter()
        .filter(|row| row["item"].as_i64() >= Some(0))
        .collect();
    let status_of = |i: i64| {
        items
            .iter()
            .find(|row| row["item"] == i)
            .map(|row| row["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(0).as_deref(), Some("succeeded"), "{show}");
    assert_eq!(status_of(1).as_deref(), Some("failed"), "{show}");
    assert_eq!(
        status_of(2).as_deref(),
        Some("succeeded"),
        "slow item 3 finished; {show}"
    );
    assert_eq!(status_of(3).as_deref(), Some("failed"), "{show}");
    let slow_done = ms(&items.iter().find(|row| row["item"] == 2).unwrap()["finished_at"]);
    assert!(
        ms(&t["finished_at"]) >= slow_done,
        "the task failed before its slow item finished; {show}"
    );
}

// 11 -----------------------------------------------------------------------------------------

const PARENT_WF: &str = r#"
name: parent
input:
  fail: { type: boolean, default: false }
tasks:
  call:
    action: core.workflow
    input: { workflow: child, input: { n: 21, fail: "{{ CTX.fail }}" } }
    next:
      - publish: { doubled: "{{ RESULT.doubled }}" }
        do: after
  after:
    action: core.echo
    input: { got: "{{ CTX.doubled }}" }
output:
  child: "{{ TASKS.call.result }}"
  after: "{{ TASKS.after.result.got }}"
"#;

const CHILD_WF: &str = r#"
name: child
input:
  n: { type: integer, required: true }
  fail: { type: boolean, default: false }
tasks:
  double:
    action: core.echo
    input: { v: "{{ CTX.n * 2 }}" }
    next:
      - when: "{{ CTX.fail }}"
        do: boom
  boom:
    action: core.fail
    input: { message: "child exploded" }
output:
  doubled: "{{ TASKS.double.result.v }}"
"#;

#[test]
fn sub_workflow_output_is_the_task_result_and_its_failure_fails_the_task() {
    let env = Env::new();
    env.write("child.yaml", CHILD_WF);
    let parent = path(&env, "parent.yaml", PARENT_WF);

    let r = env.run(&parent, &[]);
    r.expect(0, "succeeded");
    assert_eq!(r.task("call")["result"], json!({"doubled": 42}), "{r}");
    assert_eq!(r.json["output"]["after"], 42, "{r}");

    let bad = env.run(&parent, &["--input", "fail=true"]);
    bad.expect(1, "failed");
    let t = bad.task("call");
    assert_eq!(t["status"], "failed", "{bad}");
    let msg = t["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("child") && msg.contains("child exploded"),
        "the task's error carries the child's error: {msg}"
    );
    assert!(bad.error().contains("child exploded"), "{bad}");
    assert_ne!(bad.task_status("after"), Some("succeeded"), "{bad}");
}

#[test]
fn sub_workflow_beside_a_file_given_by_a_bare_relative_name_is_found() {
    // `cd folder && weft run parent.yaml` must deploy the workflows beside parent.yaml.
    let env = Env::new();
    env.write("child.yaml", CHILD_WF);
    env.write("parent.yaml", PARENT_WF);
    let r = env.run("parent.yaml", &[]);
    r.expect(0, "succeeded");
    assert_eq!(r.task("call")["result"], json!({"doubled": 42}), "{r}");
}

// 12 -----------------------------------------------------------------------------------------

#[test]
fn values_published_on_one_branch_are_visible_after_a_join() {
    let env = Env::new();
    let wf = path(
        &env,
        "publish.yaml",
        r#"
name: publish-branches
tasks:
  start:
    action: core.noop
    next: [left, right]
  left:
    action: core.mock
    input: { result: { ticket: 42 }, delay: 150ms }
    next:
      - publish: { ticket: "{{ RESULT.ticket }}" }
        do: merge
  right:
    action: core.mock
    input: { result: alice }
    next:
      - publish: { owner: "{{ RESULT }}" }
        do: merge
  merge:
    action: core.echo
    input: { summary: "ticket {{ CTX.ticket }} for {{ CTX.owner }}" }
    join: all
    next: [final]
  final:
    action: core.echo
    input: { ticket: "{{ CTX.ticket }}" }
output:
  summary: "{{ TASKS.merge.result.summary }}"
  ticket: "{{ TASKS.final.result.ticket }}"
  owner: "{{ CTX.owner }}"
"#,
    );
    let r = env.run(&wf, &[]);
    r.expect(0, "succeeded");
    assert_eq!(
        r.json["output"],
        json!({"summary": "ticket 42 for alice", "ticket": 42, "owner": "alice"}),
        "{r}"
    );
}

// 13 -----------------------------------------------------------------------------------------

#[test]
fn undefined_name_in_a_task_input_names_the_task_field_and_expression() {
    let env = Env::new();
    let wf = path(
        &env,
        "undefined.yaml",
        r#"
name: undefined
input:
  data: { type: object, required: true }
tasks:
  use_it:
    action: core.echo
    input:
      fine: "{{ CTX.data.present }}"
      broken_field: "{{ CTX.data.missing.deeper }}"
"#,
    );
    let r = env.run(&wf, &["--input-json", r#"{"data": {"present": 1}}"#]);
    r.expect(1, "failed");
    let t = r.task("use_it");
    assert_eq!(t["status"], "failed", "{r}");
    let msg = t["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("use_it"), "names the task: {msg}");
    assert!(msg.contains("broken_field"), "names the field: {msg}");
    assert!(
        msg.contains("missing"),
        "names the undefined expression: {msg}"
    );
    assert!(r.error().contains("use_it"), "{r}");
}

// Secrets ----------------------------------------------------------------------------------

#[test]
fn secret_inputs_are_never_stored() {
    let server = crate::support::Server::echo();
    let env = Env::new();
    let secret = "s3cr3t-T0KEN-value";
    let wf = path(
        &env,
        "secret.yaml",
        &format!(
            r#"
name: secret
input:
  api_key: {{ type: string, secret: true, required: true }}
  user: {{ type: string, default: bob }}
tasks:
  echo:
    action: core.echo
    input: {{ key: "{{{{ CTX.api_key }}}}", note: "key={{{{ CTX.api_key }}}} for {{{{ CTX.user }}}}" }}
    next:
      - publish: {{ copied: "{{{{ RESULT.key }}}}" }}
        do: call
  call:
    action: http.request
    input:
      url: "{}"
      auth: {{ bearer: "{{{{ CTX.api_key }}}}" }}
      headers: {{ X-Api-Key: "{{{{ CTX.api_key }}}}" }}
output:
  note: "{{{{ TASKS.echo.result.note }}}}"
  copied: "{{{{ CTX.copied }}}}"
"#,
            server.url("/secret")
        ),
    );
    let r = env.run(&wf, &["--input", &format!("api_key={secret}")]);
    r.expect(0, "succeeded");
    // The action did receive the real value.
    let hit = &server.hits()[0];
    assert_eq!(
        hit.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {secret}").as_str())
    );
    assert_eq!(hit.headers.get("x-api-key"), Some(&secret.to_string()));
    // Nothing the store gives back contains it.
    assert!(
        !r.stdout.contains(secret),
        "weft run --json shows the secret: {r}"
    );
    let show = env.show(r.id()).to_string();
    assert!(!show.contains(secret), "the store holds the secret: {show}");
    assert!(show.contains("***"), "{show}");
    assert!(show.contains("for bob"), "{show}");
}

// 19 -----------------------------------------------------------------------------------------

#[test]
fn run_exit_codes() {
    let env = Env::new();
    let ok = path(
        &env,
        "ok.yaml",
        r#"
name: ok
input:
  ticket_id: { type: integer, required: true }
tasks:
  a: { action: core.noop }
"#,
    );
    let fails = path(
        &env,
        "fails.yaml",
        r#"
name: fails
tasks:
  a:
    action: core.fail
    input: { message: nope }
"#,
    );
    let invalid = path(
        &env,
        "invalid.yaml",
        r#"
name: invalid
tasks:
  a:
    action: core.noop
    next: [nowhere]
"#,
    );

    let r = env.run(&ok, &["--input", "ticket_id=7"]);
    assert_eq!(r.code, 0, "{r}");

    let r = env.run(&fails, &[]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.status(), "failed", "{r}");

    let r = env.run(&invalid, &[]);
    assert_eq!(r.code, 2, "an invalid workflow file: {r}");
    assert!(r.stderr.contains("nowhere"), "says what is wrong: {r}");

    let r = env.run(&ok, &[]);
    assert_eq!(r.code, 2, "a missing required input: {r}");
    assert!(r.stderr.contains("ticket_id"), "names the input: {r}");

    let r = env.run(&ok, &["--input", "ticket_id=seven"]);
    assert_eq!(r.code, 2, "an input of the wrong type: {r}");
    assert!(r.stderr.contains("ticket_id"), "names the input: {r}");

    let r = env.run("no-such-workflow", &[]);
    assert_eq!(r.code, 2, "an unknown workflow: {r}");

    // Nothing was stored for the runs refused with exit code 2.
    assert_eq!(env.list(None).len(), 2);
}

// 20 -----------------------------------------------------------------------------------------

#[test]
fn purge_removes_finished_executions() {
    let env = Env::new();
    let ok = path(
        &env,
        "ok.yaml",
        "name: ok\ntasks:\n  a: { action: core.noop }\n",
    );
    let bad = path(
        &env,
        "bad.yaml",
        "name: bad\ntasks:\n  a: { action: core.fail }\n",
    );
    env.run(&ok, &[]).expect(0, "succeeded");
    env.run(&bad, &[]).expect(1, "failed");
    assert_eq!(env.list(None).len(), 2);

    // A 30-day retention keeps them.
    let out = env.weft(&["executions", "purge", "--older-than", "30d"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.list(None).len(), 2);

    std::thread::sleep(Duration::from_millis(20));
    let out = env.weft(&["executions", "purge", "--older-than", "0s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('2'),
        "reports how many: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(env.list(None), Vec::<Value>::new());
    let out = env.weft(&["executions", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no executions"));
}

#[test]
fn purge_keeps_running_executions() {
    let env = Env::new();
    let long = path(
        &env,
        "long.yaml",
        "name: long\ntasks:\n  a:\n    action: core.sleep\n    input: { duration: 60s }\n",
    );
    let _bg = env.spawn_run(&long, &[]);
    let id = env.wait_running_execution(Duration::from_secs(15));
    let out = env.weft(&["executions", "purge", "--older-than", "0s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.show(&id)["status"], "running");
    let out = env.weft(&["executions", "cancel", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_execution_shows_its_concurrency_group_and_who_ran_it() {
    let env = Env::new();
    let wf = path(
        &env,
        "limited.yaml",
        "name: limited\ninput:\n  who: {type: string}\nconcurrency: {limit: 1, key: \"{{ CTX.who }}\"}\ntasks:\n  a:\n    action: core.noop\n",
    );
    let r = env.run(&wf, &["--input", "who=ops"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["concurrency"], json!({"limit": 1, "key": "ops"}));
    // host:pid:random of the `weft run` process that ran it.
    let owner = r.json["owner"].as_str().unwrap_or_default();
    assert_eq!(owner.split(':').count(), 3, "{}", r.json);
}

/// A workflow that calls itself fails at the nesting bound instead of making executions
/// without end.
#[test]
fn a_workflow_calling_itself_stops_at_the_nesting_bound() {
    let env = Env::new();
    let me = path(
        &env,
        "again.yaml",
        "name: again\ntasks:\n  call:\n    action: core.workflow\n    input: { workflow: again }\n",
    );
    let r = env.run(&me, &[]);
    r.expect(1, "failed");
    let msg = r.task("call")["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let most = weft_engine::executor::MAX_NESTING;
    assert!(
        msg.contains(&format!(
            "would be nested {} deep (at most {most})",
            most + 1
        )),
        "{msg}"
    );
}
