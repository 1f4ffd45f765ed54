//! `weft org …` and `weft integration …` through the real binary: the tree, inheritance,
//! secrets that never show (not on screen, not in the database file), integration tests
//! against the Autotask simulator.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::support::Env;
use serde_json::Value;
use weft_sim::{SimConfig, Simulator};

const SECRET_VAR: &str = "hunter2-plaintext-var";
const SECRET_ENDPOINT: &str = "at-pass-plaintext-0xBEEF";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `weft ARGS` with the key file beside the database (no WEFT_SECRET_KEY), `stdin` fed.
fn weft_in(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = env.cmd(args);
    cmd.env_remove("WEFT_SECRET_KEY")
        .env_remove("WEFT_INTEGRATIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("weft runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("weft ends")
}

fn weft(env: &Env, args: &[&str]) -> Output {
    weft_in(env, args, None)
}

/// Runs and expects exit 0; returns stdout + stderr.
fn ok(env: &Env, args: &[&str]) -> String {
    let out = weft(env, args);
    assert!(
        out.status.success(),
        "weft {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

fn json(env: &Env, args: &[&str]) -> Value {
    let out = weft(env, args);
    assert!(
        out.status.success(),
        "weft {args:?} failed:\n{}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("weft {args:?} printed no JSON ({e}):\n{}", text(&out)))
}

/// Every byte of the database files (the main file, its WAL and journal).
fn database_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("weft.db")
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database files");
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The MSP, a client and the client's site: three levels.
fn tree(env: &Env) {
    let out = ok(env, &["org", "add", "Acme MSP", "--tag", "msp"]);
    assert!(out.contains("root"), "{out}");
    ok(
        env,
        &[
            "org",
            "add",
            "Contoso Dental",
            "--parent",
            "acme-msp",
            "--tag",
            "vip",
            "--tag",
            "dental",
        ],
    );
    // The parent by name, case-insensitively; the id chosen by hand.
    ok(
        env,
        &[
            "org",
            "add",
            "Contoso Dental East",
            "--parent",
            "contoso dental",
            "--id",
            "contoso-east",
        ],
    );
}

#[test]
fn tree_and_three_level_inheritance() {
    let env = Env::fresh();
    tree(&env);
    // A second root is allowed, with a warning.
    let out = weft(&env, &["org", "add", "Other MSP"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        text(&out)
    );
    // The same id twice is refused.
    let out = weft(&env, &["org", "add", "Acme MSP"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let list = ok(&env, &["org", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{list}"))
    };
    assert!(lines[at("(acme-msp)")].starts_with("Acme MSP"), "{list}");
    assert!(
        lines[at("(contoso-dental)")].starts_with("  Contoso Dental (contoso-dental)"),
        "{list}"
    );
    assert!(lines[at("(contoso-dental)")].contains("[vip, dental]"));
    assert!(
        lines[at("(contoso-east)")].starts_with("    Contoso Dental East"),
        "{list}"
    );
    assert!(
        at("(acme-msp)") < at("(contoso-dental)") && at("(contoso-dental)") < at("(contoso-east)")
    );
    let listed = json(&env, &["org", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 4);

    ok(&env, &["org", "var", "set", "acme-msp", "queue", "5"]);
    ok(&env, &["org", "var", "set", "acme-msp", "tz", "UTC"]);
    ok(&env, &["org", "var", "set", "acme-msp", "region", "eu"]);
    ok(&env, &["org", "var", "set", "contoso-dental", "queue", "8"]);
    ok(
        &env,
        &[
            "org",
            "var",
            "set",
            "contoso-east",
            "tz",
            "America/New_York",
        ],
    );
    ok(
        &env,
        &[
            "org",
            "var",
            "set",
            "contoso-east",
            "contacts",
            r#"["a@x", "b@x"]"#,
        ],
    );

    let vars = json(&env, &["org", "var", "list", "contoso-east", "--json"]);
    let var = |k: &str| {
        vars.as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == k)
            .unwrap_or_else(|| panic!("no {k} in {vars}"))
            .clone()
    };
    assert_eq!(var("queue")["value"], 8, "the parent overrides the root");
    assert_eq!(var("queue")["from_org"], "contoso-dental");
    assert_eq!(var("queue")["inherited"], true);
    assert_eq!(var("tz")["value"], "America/New_York", "own wins");
    assert_eq!(var("tz")["from_org"], "contoso-east");
    assert_eq!(var("tz")["inherited"], false);
    assert_eq!(
        var("region")["from_org"],
        "acme-msp",
        "from the grandparent"
    );
    assert_eq!(var("contacts")["value"], serde_json::json!(["a@x", "b@x"]));

    let table = ok(&env, &["org", "var", "list", "contoso-east"]);
    let row = |k: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or_else(|| panic!("no {k} in\n{table}"))
            .to_string()
    };
    assert!(
        row("queue").contains("contoso-dental (inherited)"),
        "{table}"
    );
    assert!(row("region").contains("acme-msp (inherited)"), "{table}");
    assert!(row("tz").contains("contoso-east (own)"), "{table}");

    let show = ok(&env, &["org", "show", "contoso-east"]);
    assert!(
        show.contains("Contoso Dental (contoso-dental) < Acme MSP (acme-msp)"),
        "{show}"
    );
    // Upwards, nothing is inherited.
    let root = json(&env, &["org", "var", "list", "acme-msp", "--json"]);
    assert_eq!(root[1]["key"], "region");
    assert_eq!(root.as_array().unwrap().len(), 3);

    // Unset shows the inherited value again.
    ok(&env, &["org", "var", "unset", "contoso-east", "tz"]);
    let vars = json(&env, &["org", "var", "list", "contoso-east", "--json"]);
    let tz = vars
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "tz")
        .unwrap();
    assert_eq!(
        (tz["value"].as_str(), tz["from_org"].as_str()),
        (Some("UTC"), Some("acme-msp"))
    );

    // Tags and moves; cycles are refused.
    let out = ok(
        &env,
        &[
            "org",
            "tag",
            "contoso-dental",
            "--add",
            "gold",
            "--remove",
            "VIP",
        ],
    );
    assert!(out.contains("tags: dental, gold"), "{out}");
    let out = weft(&env, &["org", "set-parent", "acme-msp", "contoso-east"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("below"), "{}", text(&out));
    ok(&env, &["org", "set-parent", "other-msp", "acme-msp"]);
    let other = json(&env, &["org", "show", "other-msp", "--json"]);
    assert_eq!(other["parent_id"], "acme-msp");
    assert_eq!(other["variables"][0]["from_org"], "acme-msp");
}

#[test]
fn rm_is_refused_while_the_org_has_children() {
    let env = Env::fresh();
    tree(&env);
    let out = weft(&env, &["org", "rm", "contoso-dental"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("child organization"), "{}", text(&out));
    let out = weft(&env, &["org", "rm", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not found"), "{}", text(&out));
    ok(&env, &["org", "rm", "contoso-east"]);
    ok(&env, &["org", "rm", "Contoso Dental"]);
    let listed = json(&env, &["org", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn secrets_never_show_and_are_sealed_on_disk() {
    let env = Env::fresh();
    tree(&env);
    let out = ok(
        &env,
        &[
            "org",
            "var",
            "set",
            "contoso-dental",
            "api_key",
            SECRET_VAR,
            "--secret",
        ],
    );
    assert!(!out.contains(SECRET_VAR), "{out}");
    // A secret from stdin, as integrations take them.
    let out = weft_in(
        &env,
        &[
            "org",
            "var",
            "set",
            "acme-msp",
            "psa_token",
            "-",
            "--secret",
        ],
        Some("stdin-secret-value-42\n"),
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = weft_in(
        &env,
        &[
            "integration",
            "add",
            "autotask",
            "--org",
            "acme-msp",
            "--set",
            "username=api@acme.example",
            "--set",
            "integration_code=CODE123",
            "--secret",
            "secret=-",
        ],
        Some(&format!("{SECRET_ENDPOINT}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));

    let mut printed = String::new();
    for args in [
        &["org", "var", "list", "contoso-east"][..],
        &["org", "var", "list", "contoso-east", "--json"],
        &["org", "show", "contoso-east"],
        &["org", "show", "contoso-east", "--json"],
        &["org", "show", "acme-msp", "--json"],
        &["org", "list", "--json"],
        &["integration", "list"],
        &["integration", "list", "--json"],
        &["integration", "list", "--org", "acme-msp", "--json"],
    ] {
        let out = weft(&env, args);
        assert!(out.status.success(), "weft {args:?}: {}", text(&out));
        printed.push_str(&text(&out));
    }
    for secret in [SECRET_VAR, SECRET_ENDPOINT, "stdin-secret-value-42"] {
        assert!(
            !printed.contains(secret),
            "{secret} was printed:\n{printed}"
        );
        assert!(
            !contains(&database_bytes(&env), secret),
            "{secret} is in the database file in plain text"
        );
    }

    let vars = json(&env, &["org", "var", "list", "contoso-east", "--json"]);
    let api_key = vars
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "api_key")
        .unwrap();
    assert_eq!(api_key["value"], "***");
    assert_eq!(api_key["secret"], true);
    assert!(ok(&env, &["org", "var", "list", "contoso-east"]).contains("***"));
    let shown = json(&env, &["org", "show", "contoso-east", "--json"]);
    assert_eq!(shown["integrations"][0]["secrets"]["secret"], "***");
    assert_eq!(
        shown["integrations"][0]["settings"]["username"],
        "api@acme.example"
    );
    let list = ok(&env, &["integration", "list"]);
    assert!(list.contains("secret=***"), "{list}");

    // The key file beside the database is private.
    let key = env.dir.path().join("secret.key");
    assert!(key.exists(), "no key file beside the database");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode {mode:o}");
    }

    // Bad input: unknown kinds with a suggestion, missing Autotask settings, inline secret
    // given as a setting.
    let out = weft(&env, &["integration", "add", "slak", "--org", "acme-msp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("did you mean `slack`"),
        "{}",
        text(&out)
    );
    let out = weft(
        &env,
        &[
            "integration",
            "add",
            "autotask",
            "--org",
            "acme-msp",
            "--set",
            "username=u",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("integration_code"), "{}", text(&out));
    let out = weft(
        &env,
        &[
            "integration",
            "add",
            "autotask",
            "--org",
            "acme-msp",
            "--set",
            "username=u",
            "--set",
            "integration_code=c",
            "--set",
            "secret=oops-inline",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("oops-inline"), "{}", text(&out));

    ok(
        &env,
        &["integration", "rm", "autotask", "--org", "acme-msp"],
    );
    let out = weft(
        &env,
        &["integration", "rm", "autotask", "--org", "acme-msp"],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn integration_test_resolves_up_the_tree_and_reaches_the_simulator() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let creds = SimConfig::default();
    let base = sim.base_url.clone();
    tokio::task::spawn_blocking(move || {
        let env = Env::fresh();
        tree(&env);
        let out = weft_in(
            &env,
            &[
                "integration",
                "add",
                "autotask",
                "--org",
                "acme-msp",
                "--set",
                &format!("username={}", creds.username),
                "--set",
                &format!("integration_code={}", creds.integration_code),
                "--set",
                &format!("discovery_url={base}"),
                "--secret",
                "secret=-",
            ],
            Some(&creds.secret),
        );
        assert!(out.status.success(), "{}", text(&out));

        // A task in the grandchild uses the MSP's instance.
        let out = weft(
            &env,
            &["integration", "test", "autotask", "--org", "contoso-east"],
        );
        let printed = text(&out);
        assert!(out.status.success(), "{printed}");
        assert!(
            printed.contains("from organization acme-msp (inherited)"),
            "{printed}"
        );
        assert!(printed.contains("zone: http"), "{printed}");
        assert!(printed.contains("API version:"), "{printed}");
        assert!(printed.contains("credentials: ok"), "{printed}");
        assert!(!printed.contains(&creds.secret), "{printed}");

        // A client's own instance with a wrong secret wins and fails.
        let out = weft_in(
            &env,
            &[
                "integration",
                "add",
                "autotask",
                "--org",
                "contoso-dental",
                "--set",
                &format!("username={}", creds.username),
                "--set",
                &format!("integration_code={}", creds.integration_code),
                "--set",
                &format!("discovery_url={base}"),
                "--secret",
                "secret=-",
            ],
            Some("wrong-secret-value"),
        );
        assert!(out.status.success(), "{}", text(&out));
        let out = weft(
            &env,
            &["integration", "test", "autotask", "--org", "contoso-east"],
        );
        let printed = text(&out);
        assert_eq!(out.status.code(), Some(1), "{printed}");
        assert!(
            printed.contains("from organization contoso-dental"),
            "{printed}"
        );
        assert!(!printed.contains("wrong-secret-value"), "{printed}");

        // No instance anywhere: a clear error.
        let out = weft(
            &env,
            &["integration", "test", "teams", "--org", "contoso-east"],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out).contains("weft integration add teams"),
            "{}",
            text(&out)
        );
        ok(
            &env,
            &[
                "integration",
                "add",
                "teams",
                "--org",
                "acme-msp",
                "--set",
                "url=https://example.com/hook",
            ],
        );
        let out = ok(
            &env,
            &["integration", "test", "teams", "--org", "contoso-east"],
        );
        assert!(out.contains("valid URL"), "{out}");
    })
    .await
    .unwrap();
}

#[test]
fn a_secret_variable_used_by_a_run_never_reaches_logs_output_or_stored_data() {
    let env = Env::new();
    for args in [
        vec!["org", "add", "MSP"],
        vec!["org", "add", "Acme", "--parent", "msp"],
    ] {
        let out = weft_in(&env, &args, None);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = weft_in(
        &env,
        &["org", "var", "set", "msp", "portal_pw", "-", "--secret"],
        Some(SECRET_VAR),
    );
    assert!(out.status.success(), "{}", text(&out));
    let wf = env.write(
        "uses-secret.yaml",
        r#"
name: uses-secret
tasks:
  call:
    action: core.echo
    input:
      text: "login with {{ ORG.VARIABLES.portal_pw }}"
  broken:
    action: core.fail
    input:
      message: "could not log in with {{ ORG.VARIABLES.portal_pw }}"
output:
  said: "{{ TASKS.call.result.text }}"
"#,
    );
    let mut cmd = env.cmd(&["run", wf.to_str().unwrap(), "--org", "acme", "--json"]);
    let out = cmd
        .env_remove("WEFT_SECRET_KEY")
        .env("WEFT_LOG", "trace")
        .output()
        .unwrap();
    let all = text(&out);
    assert!(
        !all.contains(SECRET_VAR),
        "the secret leaked into the run's output or logs"
    );
    assert!(all.contains("login with ***"), "{all}");
    let exec: Value = serde_json::from_slice(&out.stdout).expect("--json");
    let id = exec["id"].as_str().unwrap();
    let shown = weft_in(&env, &["executions", "show", id, "--json"], None);
    assert!(!text(&shown).contains(SECRET_VAR));
    let db = env.dir.path().join("weft.db");
    for file in [db.clone(), db.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes
                    .windows(SECRET_VAR.len())
                    .any(|w| w == SECRET_VAR.as_bytes()),
                "{} holds the secret in plain text",
                file.display()
            );
        }
    }
}
