//! End-to-end tests of what surrounds the binary: `weft --version` (with the git commit),
//! `weft completions`, `weft man`, `weft executions show --format mermaid|dot` and
//! `weft validate --format sarif`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::Env;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `weft ARGS` run from the repository root (file names in its output stay relative).
fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Is `program` on the PATH (it answers `--version`)?
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `git ARGS` in the repository, if git and the repository are there.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| text(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = weft(&["--version"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout).trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        assert_eq!(line, format!("weft {version} (unknown)"));
        return;
    };
    // The test binary was built from this tree just now, so the stamp is this tree's.
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let expected = if dirty {
        format!("weft {version} ({head}, modified)")
    } else {
        format!("weft {version} ({head})")
    };
    assert_eq!(line, expected);
    // Subcommands show the same version.
    let sub = weft(&["run", "--version"]);
    assert_eq!(
        text(&sub.stdout).trim(),
        format!("weft-run {}", &expected[5..])
    );
}

#[test]
fn completions_generate_for_every_shell_and_parse() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = weft(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains("weft") && script.contains("executions"),
            "{shell}: the script completes weft's subcommands:\n{script}"
        );
        let file = dir.path().join(format!("weft.{shell}"));
        std::fs::write(&file, &script).expect("write script");
        let check: Option<(&str, Vec<&str>)> = match shell {
            "bash" => Some(("bash", vec!["-n"])),
            "zsh" => Some(("zsh", vec!["-n"])),
            "fish" => Some(("fish", vec!["--no-execute"])),
            _ => None,
        };
        let Some((program, flags)) = check else {
            continue;
        };
        if !installed(program) {
            assert_ne!(program, "bash", "bash is needed to check the bash script");
            eprintln!("skipped: {program} is not installed, its completion script is not parsed");
            continue;
        }
        let parsed = Command::new(program)
            .args(&flags)
            .arg(&file)
            .output()
            .expect("run the shell");
        assert!(
            parsed.status.success(),
            "{program} {flags:?} rejects the script: {}",
            text(&parsed.stderr)
        );
    }
    let bad = weft(&["completions", "tcsh"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
    assert!(text(&bad.stderr).contains("bash"), "{}", text(&bad.stderr));
}

#[test]
fn man_prints_the_main_page_and_writes_one_per_command() {
    let out = weft(&["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    for needle in [
        ".TH weft 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        "weft\\-run(1)",
        "weft\\-executions(1)",
        "weft\\-completions(1)",
    ] {
        assert!(page.contains(needle), "no `{needle}` in the page:\n{page}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("man1");
    let out = weft(&["man", "--dir", target.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "weft.1",
        "weft-run.1",
        "weft-validate.1",
        "weft-executions.1",
        "weft-executions-show.1",
        "weft-org-list.1",
        "weft-completions.1",
        "weft-man.1",
    ] {
        let path = target.join(page);
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
        assert!(body.contains(".SH NAME"), "{page}:\n{body}");
    }
    let show = std::fs::read_to_string(target.join("weft-executions-show.1")).expect("page");
    assert!(
        show.contains("mermaid"),
        "the page lists the formats:\n{show}"
    );
    assert!(
        !target.join("weft-help.1").exists(),
        "no page for the help subcommand"
    );
}

/// The id of the execution a `weft run --json` printed.
fn run_id(env: &Env, file: &Path) -> String {
    let out = env.weft(&["run", file.to_str().expect("utf-8"), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("run printed no JSON ({e}): {}", text(&out.stderr)));
    v["id"].as_str().expect("an id").to_string()
}

#[test]
fn executions_show_draws_the_task_graph_with_statuses() {
    let env = Env::new();
    let wf = env.write(
        "graph.yaml",
        r#"
name: graph-demo
input:
  x: { type: integer, default: 0 }
tasks:
  check-input:
    action: core.fail
    input: { message: "bad input" }
    next:
      - do: create-ticket
      - on: failure
        do: tell_ops
      - on: always
        when: "{{ CTX.x | abs > 1 }}"
        do: audit
  create-ticket: { action: core.noop }
  tell_ops:
    action: core.noop
    next:
      - do: end
  audit: { action: core.noop }
  end: { action: core.noop }
"#,
    );
    let id = run_id(&env, &wf);

    let out = env.weft(&["executions", "show", &id, "--format", "mermaid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = text(&out.stdout);
    let lines: Vec<&str> = m.lines().map(str::trim).collect();
    assert_eq!(lines[0], "flowchart TD", "{m}");
    for line in [
        "t_check_input[\"check-input (failed)\"]:::failed",
        "t_create_ticket[\"create-ticket (skipped)\"]:::skipped",
        "t_tell_ops[\"tell_ops (succeeded)\"]:::succeeded",
        "t_end[\"end (succeeded)\"]:::succeeded",
        "t_check_input -->|\"on success\"| t_create_ticket",
        "t_check_input -->|\"on failure\"| t_tell_ops",
        "t_check_input -->|\"always, when: {{ CTX.x #124; abs #62; 1 }}\"| t_audit",
        "t_tell_ops -->|\"on success\"| t_end",
    ] {
        assert!(lines.contains(&line), "no line `{line}` in:\n{m}");
    }
    for class in ["succeeded", "failed", "skipped", "running", "not_run"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("classDef {class} fill:"))),
            "no classDef {class}:\n{m}"
        );
    }
    // Every node id is a plain identifier: Mermaid reads `-` as part of an arrow.
    for l in lines.iter().skip(1).filter(|l| !l.starts_with("classDef")) {
        let id: String = l.chars().take_while(|c| !matches!(c, '[' | ' ')).collect();
        assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "node id `{id}` in `{l}`"
        );
    }

    let out = env.weft(&["executions", "show", &id, "--format", "dot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = text(&out.stdout);
    assert!(d.starts_with("digraph \"graph-demo\" {"), "{d}");
    assert!(
        d.contains("\"check-input\" [label=\"check-input (failed)\", fillcolor=\"#f8d7da\""),
        "{d}"
    );
    assert!(
        d.contains("\"check-input\" -> \"tell_ops\" [label=\"on failure\", color=\"#dc3545\"];"),
        "{d}"
    );
    assert!(d.contains("\"audit\" [label=\"audit (skipped)\""), "{d}");
    if installed("dot") {
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dot");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(d.as_bytes())
            .expect("feed dot");
        let parsed = child.wait_with_output().expect("dot ends");
        assert!(
            parsed.status.success(),
            "dot rejects the graph: {}",
            text(&parsed.stderr)
        );
    } else {
        eprintln!("skipped: Graphviz `dot` is not installed, the DOT output is not parsed");
    }

    // The default and --json stay as they were; --json with --format is a usage error.
    let plain = env.weft(&["executions", "show", &id]);
    assert!(
        text(&plain.stdout).contains("check-input"),
        "{}",
        text(&plain.stdout)
    );
    let both = env.weft(&["executions", "show", &id, "--json", "--format", "dot"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
}

#[test]
fn validate_writes_sarif_with_rules_results_and_regions() {
    let file = "tests/corpus/invalid/route-unknown-task.yaml";
    let good = "workflows/notify-teams.yaml";
    let out = weft(&["validate", "--format", "sarif", file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let log: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(log["version"], "2.1.0");
    assert!(
        log["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0")),
        "{log}"
    );
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "weft");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let rule = rules
        .iter()
        .find(|r| r["id"] == "route.unknown_task")
        .unwrap_or_else(|| panic!("no rule route.unknown_task: {rules:?}"));
    assert!(
        rule["help"]["text"]
            .as_str()
            .is_some_and(|h| h.contains("did you mean `notify`?")),
        "{rule}"
    );
    let result = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["ruleId"] == "route.unknown_task")
        .unwrap_or_else(|| panic!("no result: {run}"));
    assert_eq!(result["level"], "error");
    assert!(
        result["message"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("notfiy")),
        "{result}"
    );
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], file);
    let region = &location["region"];
    assert_eq!(region["startLine"], 9, "{region}");
    assert_eq!(region["startColumn"], 13, "{region}");
    assert_eq!(region["endLine"], 9, "{region}");
    assert_eq!(
        region["endColumn"], 19,
        "`notfiy` is 6 characters: {region}"
    );

    // A valid file: an empty result list, exit 0.
    let out = weft(&["validate", "--format", "sarif", good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}
