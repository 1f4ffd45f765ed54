//! End-to-end tests of `weft.toml` and `weft config show` (flags > environment > file >
//! defaults, errors with their place), and of the JSON log format.

use std::process::{Command, Output, Stdio};

use crate::support::Env;
use serde_json::Value;

/// `weft ARGS` in the test's folder, with none of the caller's `WEFT_*` variables (CI may set
/// some) and `envs` added.
fn weft(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    c.current_dir(env.dir.path())
        .args(args)
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("WEFT_") {
            c.env_remove(k);
        }
    }
    c.envs(envs.iter().copied());
    c.output().expect("weft runs")
}

/// `weft config show --json ARGS`: setting key → (value, source, line).
fn show(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut all = vec!["config", "show", "--json"];
    all.extend_from_slice(args);
    let out = weft(env, &all, envs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn setting<'a>(shown: &'a Value, key: &str) -> &'a Value {
    shown["settings"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("no setting {key} in {shown}"))
}

const FILE: &str = "# weft's settings\nlisten = \"0.0.0.0:9000\"\nworkers = 3\nlease_secs = 45\nretention = \"90d\"\napi_token = \"wft_from_the_file\"\ndatabase = \"postgres://weft:hunter2@db:5432/weft\"\n";

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let env = Env::fresh();
    env.write("weft.toml", FILE);
    let shown = show(
        &env,
        &["--lease", "60"],
        &[("WEFT_WORKERS", "5"), ("WEFT_LEASE_SECS", "50")],
    );
    assert_eq!(shown["file"], "weft.toml");
    let s = setting(&shown, "listen");
    assert_eq!(
        (&s["value"], &s["source"], &s["line"]),
        (&"0.0.0.0:9000".into(), &"file".into(), &2.into())
    );
    let s = setting(&shown, "workers");
    assert_eq!((&s["value"], &s["source"]), (&"5".into(), &"env".into()));
    let s = setting(&shown, "lease_secs");
    assert_eq!((&s["value"], &s["source"]), (&"60".into(), &"flag".into()));
    let s = setting(&shown, "log_format");
    assert_eq!(
        (&s["value"], &s["source"]),
        (&"text".into(), &"default".into())
    );
    // Secrets are masked wherever they come from.
    let s = setting(&shown, "api_token");
    assert_eq!((&s["value"], &s["source"]), (&"***".into(), &"file".into()));
    let s = setting(&shown, "database");
    assert_eq!(s["value"], "postgres://weft:***@db:5432/weft");
    let text = String::from_utf8_lossy(&weft(&env, &["config", "show"], &[]).stdout).into_owned();
    assert!(
        !text.contains("hunter2") && !text.contains("wft_from_the_file"),
        "{text}"
    );
    assert!(text.contains("workers = 3  # file weft.toml:3"), "{text}");
}

#[test]
fn config_or_weft_config_names_a_file_elsewhere() {
    let env = Env::fresh();
    let other = env.write("prod.toml", "workers = 9\n");
    let path = other.to_str().unwrap();
    let shown = show(&env, &["--config", path], &[]);
    assert_eq!(setting(&shown, "workers")["value"], "9");
    let shown = show(&env, &[], &[("WEFT_CONFIG", path)]);
    assert_eq!(setting(&shown, "workers")["value"], "9");
    assert_eq!(setting(&shown, "workers")["line"], 1);
    // No file at all: every setting from its default.
    let shown = show(&env, &[], &[]);
    assert_eq!(shown["file"], Value::Null);
    assert_eq!(setting(&shown, "workers")["source"], "default");
}

#[test]
fn an_unknown_key_is_an_error_naming_its_line_and_the_closest_key() {
    let env = Env::fresh();
    env.write("weft.toml", "workers = 2\n\nlistn = \"0.0.0.0:80\"\n");
    let out = weft(&env, &["config", "show"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("weft.toml:3:1: unknown key `listn`; did you mean `listen`?"),
        "{err}"
    );
    // The file is read by every command, not only `config show`.
    let out = weft(&env, &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `listn`"));
    env.write("weft.toml", "workers = \"two\"\n");
    let out = weft(&env, &["config", "show"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("weft.toml:1:11: `workers` must be a non-negative integer"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let env = Env::fresh();
    let out = weft(&env, &["--config", "nowhere.toml", "config", "show"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the configuration file nowhere.toml (named by --config)"),
        "{err}"
    );
    let out = weft(&env, &["config", "show"], &[("WEFT_CONFIG", "gone.toml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gone.toml (named by WEFT_CONFIG)"));
}

const FLOW: &str = "name: logged\ntasks:\n  first:\n    action: core.echo\n    input: { message: hi }\n    next: [second]\n  second:\n    action: core.noop\n";

/// Runs FLOW with debug logs in `envs`' format: its execution id and its stderr lines.
fn logged_run(env: &Env, envs: &[(&str, &str)]) -> (String, Vec<String>) {
    let file = env.write("logged.yaml", FLOW);
    let db = env.db.clone();
    let mut all = vec![("WEFT_LOG", "debug"), ("WEFT_DATABASE_URL", db.as_str())];
    all.extend_from_slice(envs);
    let out = weft(env, &["run", file.to_str().unwrap(), "--json"], &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_slice(&out.stdout).expect("JSON execution");
    let id = run["id"].as_str().expect("execution id").to_string();
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    (id, lines)
}

#[test]
fn json_logs_are_one_object_per_line_with_the_execution_and_task_of_each() {
    let env = Env::fresh();
    let (id, lines) = logged_run(&env, &[("WEFT_LOG_FORMAT", "json")]);
    assert!(!lines.is_empty(), "no log lines");
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // The span fields: the execution's id (and workflow) on the lines logged inside it; a
    // task's lines carry its span (`task`, `action`) inside the execution's in `spans`.
    let in_execution = events
        .iter()
        .filter(|e| {
            e["span"]["execution_id"] == id.as_str()
                && e["spans"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["name"] == "execution"))
        })
        .collect::<Vec<_>>();
    assert!(
        !in_execution.is_empty(),
        "none of {} lines carries {id}",
        lines.len()
    );
    assert!(
        in_execution
            .iter()
            .all(|e| e["spans"][0]["workflow"] == "logged")
    );
    assert!(
        events
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
}

#[test]
fn the_log_format_comes_from_the_file_too_and_a_wrong_one_is_refused() {
    let env = Env::fresh();
    env.write(
        "weft.toml",
        "log_format = \"json\"\nlog_level = \"debug\"\n",
    );
    let (id, lines) = logged_run(&env, &[]);
    assert!(
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["span"]["execution_id"] == id.as_str()),
        "none of {} lines carries {id}",
        lines.len()
    );
    let out = weft(&env, &["config", "show"], &[("WEFT_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use `text` or `json`"));
}
