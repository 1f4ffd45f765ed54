//! End-to-end tests of `weft test`: workflow test files run by the real binary, with mocked
//! actions on a virtual clock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn weft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A ticket alert: fetch (retried every 10 minutes, 30 s per attempt), post to a chat hook
/// (1 minute per attempt), give up on failure; a webhook trigger with criteria.
const WORKFLOW: &str = r#"version: 1
name: ticket-alert
input:
  ticket_id: {type: integer, required: true}
tasks:
  fetch:
    action: autotask.get_ticket
    input: {id: "{{ CTX.ticket_id }}"}
    retry: {count: 5, delay: 10m}
    timeout: 30s
    next:
      - publish: {ticket: "{{ RESULT }}"}
        do: post
      - on: failure
        do: give_up
  post:
    action: http.request
    input:
      method: POST
      url: "https://hooks.example/{{ ORG.VARIABLES.channel | default('general') }}"
      json: {text: "{{ CTX.ticket.title }}"}
    timeout: 1m
    next:
      - on: failure
        do: give_up
  give_up:
    action: core.echo
    join: 1
    input: {gave_up: true}
output:
  title: "{{ CTX.ticket.title | default(none) }}"
  at: "{{ now() }}"
triggers:
  - name: hook
    type: webhook
    criteria: "{{ TRIGGER.body.priority | default(0) >= 3 }}"
    input:
      ticket_id: "{{ TRIGGER.body.id }}"
"#;

fn project(tests: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ticket-alert.yaml"), WORKFLOW).unwrap();
    let file = dir.path().join("ticket-alert.test.yaml");
    std::fs::write(&file, tests).unwrap();
    (dir, file)
}

#[test]
fn retries_and_delays_pass_on_the_virtual_clock_and_reach_templates() {
    let (dir, _) = project(
        r#"cases:
  - name: two failures then the ticket
    input: {ticket_id: 7}
    org: {name: Acme, variables: {channel: noc}}
    mocks:
      fetch:
        results:
          - error: "503 Service Unavailable"
          - error: "503 Service Unavailable"
          - result: {id: 7, title: Server down}
      post: {result: {status: 200}}
    expect:
      status: succeeded
      attempts: {fetch: 3, post: 1}
      output: {title: Server down, at: "2026-01-05T09:20:00Z"}
      inputs:
        post: {url: "https://hooks.example/noc", json: {text: Server down}}
      routes: ["fetch → post"]
      not_ran: [give_up]
"#,
    );
    let out = weft(dir.path(), &["test"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("✓ two failures then the ticket"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_failed_expectation_names_its_line_and_shows_a_diff() {
    let (dir, _) = project(
        r#"cases:
  - name: wrong output
    input: {ticket_id: 7}
    mocks:
      fetch: {result: {id: 7, title: Printer jam}}
      post: {result: {status: 200}}
    expect:
      output: {title: Server down, at: "2026-01-05T09:00:00Z"}
"#,
    );
    let out = weft(dir.path(), &["test", "ticket-alert.test.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("ticket-alert.test.yaml:8: the output differs"),
        "{t}"
    );
    assert!(t.contains("-   \"title\": \"Server down\""), "{t}");
    assert!(t.contains("+   \"title\": \"Printer jam\""), "{t}");
    assert!(t.contains("0 passed, 1 failed"), "{t}");
}

#[test]
fn an_unmocked_action_fails_the_case_and_reaches_nothing() {
    let (dir, _) = project(
        r#"cases:
  - name: forgot the post
    input: {ticket_id: 7}
    mocks:
      fetch: {result: {id: 7, title: T}}
    expect:
      tasks: {post: failed}
"#,
    );
    let out = weft(dir.path(), &["test"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("task `post` calls `http.request`, which this case does not mock"),
        "{t}"
    );
    assert!(t.contains("allow: [http.request]"), "{t}");
}

#[test]
fn a_slow_call_times_out_and_a_trigger_event_maps_its_inputs_or_is_filtered() {
    let (dir, _) = project(
        r#"defaults:
  mocks:
    autotask.get_ticket: {result: {id: 9, title: Slow hook}}
cases:
  - name: the chat hook hangs past its minute
    input: {ticket_id: 9}
    mocks:
      post: {delay: 5m, result: {status: 200}}
    expect:
      status: succeeded
      tasks: {post: failed, give_up: succeeded}
      routes: ["post → on failure"]
      holds: ["'timed out after 1m' in tasks.post.error.message"]
  - name: an urgent ticket from the webhook
    trigger:
      body: {id: 9, priority: 4}
    mocks:
      post: {result: {status: 200}}
    expect:
      inputs: {fetch: {id: 9}}
  - name: a low-priority ticket starts nothing
    trigger:
      body: {id: 9, priority: 1}
    expect:
      status: filtered
"#,
    );
    let out = weft(dir.path(), &["test", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], 3, "{doc:#}");
}

#[test]
fn junit_update_and_coverage_serve_ci_and_authors() {
    let (dir, file) = project(
        r#"cases:
  - name: snapshot me
    input: {ticket_id: 7}
    mocks:
      fetch: {result: {id: 7, title: Disk full}}
      post: {result: {status: 200}}
    expect:
      status: succeeded
  - name: bad status
    input: {ticket_id: 7}
    mocks:
      fetch: {error: gone}
    expect:
      status: succeeded
"#,
    );
    let junit = dir.path().join("report.xml");
    let out = weft(
        dir.path(),
        &["test", "--coverage", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("ticket-alert: 3/3 tasks, 2/3 routes"), "{t}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"weft test\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"snapshot me\" classname=\"ticket-alert\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"the execution failed, not succeeded"),
        "{xml}"
    );

    let out = weft(dir.path(), &["test", "--update"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let updated = std::fs::read_to_string(&file).unwrap();
    assert!(
        updated.contains(
            "      status: \"succeeded\"\n      output: {\"title\":\"Disk full\",\"at\":\"2026-01-05T09:00:00Z\"}"
        ),
        "{updated}"
    );
    assert!(updated.contains("      status: \"failed\""), "{updated}");
    let out = weft(dir.path(), &["test"]);
    assert!(out.status.success(), "after --update: {}", text(&out));
}

#[test]
fn a_broken_test_file_is_refused_with_its_place() {
    let (dir, _) = project("cases:\n  - name: a\n    mocks: {fetch: {result: 1, error: no}}\n");
    let out = weft(dir.path(), &["test"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("test.mock_answer"), "{t}");
    assert!(t.contains("ticket-alert.test.yaml:3:"), "{t}");
    let out = weft(dir.path(), &["validate", "ticket-alert.test.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("test.mock_answer"));
}

#[test]
fn the_shipped_workflows_and_crates_pass_their_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = weft(root, &["test", "workflows", "crates-library"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_form_submission_starts_a_case_through_the_forms_own_checks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("starter.yaml"),
        "version: 1\nform: starter\ntitle: New starter\nfields:\n  - name: first_name\n    required: true\n  - name: pin\n    secret: true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("onboard.yaml"),
        r#"version: 1
name: onboard
input:
  first_name: {type: string, required: true}
tasks:
  greet:
    action: core.echo
    input: {hello: "{{ CTX.first_name }}", values: "{{ TRIGGER.form.values }}"}
output: {greeting: "{{ TASKS.greet.result.hello }}", seen: "{{ TASKS.greet.result['values'] }}"}
triggers:
  - name: submitted
    type: form
    form: starter
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("onboard.test.yaml"),
        r#"cases:
  - name: a submission's values are the inputs; a secret field stays out of TRIGGER
    org: Acme
    trigger:
      body: {first_name: Sam, pin: "1234"}
    expect:
      output: {greeting: Sam, seen: {first_name: Sam}}
  - name: the form refuses a submission without the required name
    trigger:
      body: {pin: "1234"}
    expect:
      status: rejected
      error: "first_name"
  - name: a mistyped mock is named
    mocks:
      gret: {result: 1}
    input: {first_name: Sam}
"#,
    )
    .unwrap();
    let out = weft(dir.path(), &["test"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("✓ a submission's values are the inputs"), "{t}");
    assert!(t.contains("✓ the form refuses a submission"), "{t}");
    assert!(
        t.contains(
            "the mock stands in for task `gret`, which no workflow here has; did you mean `greet`?"
        ),
        "{t}"
    );
}

#[test]
fn a_report_never_shows_a_secret_variable() {
    let (dir, _) = project(
        r#"cases:
  - name: the hook url is built from a secret
    input: {ticket_id: 7}
    org: {name: Acme, secrets: {channel: s3cr3t-chan-9876}}
    mocks:
      fetch: {result: {id: 7, title: T}}
      post: {result: {status: 200}}
    expect:
      inputs: {post: {url: "https://hooks.example/general"}}
"#,
    );
    for args in [&["test"][..], &["test", "--json"][..]] {
        let out = weft(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("received another input"), "{t}");
        assert!(!t.contains("s3cr3t-chan-9876"), "{t}");
    }
    let out = weft(dir.path(), &["test", "--case", "no such case"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn tests_kept_apart_from_the_workflow_name_its_file() {
    let (dir, _) = project("cases: []\n");
    std::fs::remove_file(dir.path().join("ticket-alert.test.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/alert.test.yaml"),
        r#"workflow: ../ticket-alert.yaml
cases:
  - name: runs from another folder
    input: {ticket_id: 7}
    mocks:
      fetch: {result: {id: 7, title: Apart}}
      post: {result: {status: 200}}
    expect:
      output_includes: {title: Apart}
"#,
    )
    .unwrap();
    let out = weft(dir.path(), &["test", "tests"]);
    assert!(out.status.success(), "{}", text(&out));
}
