//! Progress at a terminal: `weft run` shows each task as it ends, `weft deploy` keeps its
//! lines readable; nothing of it reaches a pipe, `--json` or `--quiet`. The terminal is a
//! pseudo-terminal made by util-linux's `script`.

use std::path::Path;
use std::process::{Command, Output};

const WORKFLOW: &str = r#"name: live
tasks:
  first:
    action: core.sleep
    input: {duration: 200ms}
    next: [{do: [second, third]}]
  second:
    action: core.echo
    input: {message: hi}
  third:
    action: core.fail
    input: {message: boom}
"#;

/// `weft ARGS` in `dir` on a pseudo-terminal: everything it wrote (stdout and stderr
/// together) and its exit code; `None` when `script` is missing.
fn at_terminal(dir: &Path, args: &str) -> Option<(String, Option<i32>)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_weft")),
            "/dev/null",
        ])
        .env(
            "WEFT_DATABASE_URL",
            format!("sqlite://{}/weft.db", dir.display()),
        )
        .env("TERM", "xterm")
        .current_dir(dir)
        .output()
        .unwrap();
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    ))
}

fn piped(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env(
            "WEFT_DATABASE_URL",
            format!("sqlite://{}/weft.db", dir.display()),
        )
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn run_shows_each_task_as_it_ends_at_a_terminal_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live.yaml"), WORKFLOW).unwrap();
    let Some((shown, code)) = at_terminal(dir.path(), "run live.yaml") else {
        return;
    };
    assert_eq!(code, Some(1), "{shown}");
    for line in [
        "✓ first succeeded in",
        "✓ second succeeded in",
        "✗ third failed in",
    ] {
        assert!(shown.contains(line), "`{line}` in:\n{shown}");
    }
    // The summary still follows.
    assert!(shown.contains("execution "), "{shown}");

    // Through a pipe: the summary only.
    let out = piped(dir.path(), &["run", "live.yaml"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("execution "), "{stdout}");
    assert!(
        !stderr.contains("succeeded in") && !stdout.contains("succeeded in"),
        "{stdout}{stderr}"
    );
}

#[test]
fn json_and_quiet_show_no_progress_even_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("live.yaml"), WORKFLOW).unwrap();
    let Some((json, code)) = at_terminal(dir.path(), "run live.yaml --json") else {
        return;
    };
    assert_eq!(code, Some(1));
    assert!(!json.contains("succeeded in"), "{json}");
    let start = json.find('{').expect("a JSON object");
    let parsed: serde_json::Value =
        serde_json::from_str(json[start..].trim().trim_end_matches('\r')).unwrap_or_else(|e| {
            panic!("{e}: {json}");
        });
    assert_eq!(parsed["status"], "failed");

    let (quiet, code) = at_terminal(dir.path(), "run live.yaml --quiet").unwrap();
    assert_eq!(code, Some(1), "the exit code still tells");
    assert!(
        !quiet.contains("succeeded in") && !quiet.contains("execution "),
        "nothing but errors: {quiet}"
    );
    let ok = tempfile::tempdir().unwrap();
    std::fs::write(
        ok.path().join("fine.yaml"),
        "name: fine\ntasks:\n  only:\n    action: core.noop\n",
    )
    .unwrap();
    let (quiet, code) = at_terminal(ok.path(), "run fine.yaml -q").unwrap();
    assert_eq!(code, Some(0));
    assert!(quiet.trim().is_empty(), "{quiet:?}");
}

#[test]
fn deploy_lines_stay_whole_beside_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..5 {
        std::fs::write(
            dir.path().join(format!("wf{n}.yaml")),
            format!("name: wf{n}\ntasks:\n  only:\n    action: core.noop\n"),
        )
        .unwrap();
    }
    let Some((shown, code)) = at_terminal(dir.path(), "deploy .") else {
        return;
    };
    assert_eq!(code, Some(0), "{shown}");
    for n in 0..5 {
        let line = format!("deployed wf{n} v1 from ./wf{n}.yaml");
        assert!(shown.contains(&line), "`{line}` in:\n{shown}");
    }
}
