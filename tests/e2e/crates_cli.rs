//! `weft crate …` end to end: the real binary, a temporary database, the example crates of
//! crates-library/ (found next to weft's sources) or a temporary library (WEFT_CRATES_DIR).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::Env;
use serde_json::Value;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `weft ARGS` with the library of weft's sources (or `lib` when given).
fn weft(env: &Env, lib: Option<&Path>, args: &[&str]) -> Output {
    let mut c = env.cmd(args);
    c.env_remove("WEFT_CRATES_DIR")
        .env_remove("WEFT_INTEGRATIONS");
    if let Some(lib) = lib {
        c.env("WEFT_CRATES_DIR", lib);
    }
    c.output().expect("weft runs")
}

fn ok(env: &Env, lib: Option<&Path>, args: &[&str]) -> String {
    let out = weft(env, lib, args);
    assert!(out.status.success(), "weft {args:?} failed: {}", text(&out));
    text(&out)
}

fn org(env: &Env, name: &str) {
    ok(env, None, &["org", "add", name]);
}

fn autotask(env: &Env, org: &str) {
    ok(
        env,
        None,
        &[
            "integration",
            "add",
            "autotask",
            "--org",
            org,
            "--set",
            "username=api@example.com",
            "--set",
            "integration_code=CODE",
            "--secret",
            "secret=s3cret",
        ],
    );
}

fn sql(env: &Env, query: &str, binds: &[&str]) -> Vec<Vec<Value>> {
    use sqlx::Row;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&env.db).await.unwrap();
        let mut q = sqlx::query(query);
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&pool).await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<String, _>(i)
                            .map(Value::String)
                            .or_else(|_| r.try_get::<i64, _>(i).map(Value::from))
                            .unwrap_or(Value::Null)
                    })
                    .collect()
            })
            .collect()
    })
}

/// The newest deployed version of a workflow: (version, parsed YAML).
fn deployed(env: &Env, name: &str) -> (i64, serde_yaml::Value) {
    let rows = sql(
        env,
        "SELECT version, source FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1",
        &[name],
    );
    assert!(!rows.is_empty(), "{name} is not deployed");
    let src = rows[0][1].as_str().unwrap();
    (
        rows[0][0].as_i64().unwrap(),
        serde_yaml::from_str(src).unwrap(),
    )
}

fn switch(env: &Env, wf: &str, trigger: &str) -> Option<i64> {
    sql(
        env,
        "SELECT enabled FROM trigger_switches WHERE workflow = ? AND trigger = ?",
        &[wf, trigger],
    )
    .first()
    .and_then(|r| r[0].as_i64())
}

fn repo_crate(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates-library")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn list_and_show_describe_the_library() {
    let env = Env::new();
    let out = ok(&env, None, &["crate", "list"]);
    assert!(
        out.contains("hello-webhook") && out.contains("1.0.0"),
        "{out}"
    );
    assert!(out.contains("ticket-note-on-create"), "{out}");
    let out = ok(&env, None, &["crate", "show", "ticket-note-on-create"]);
    for want in [
        "ticket-note-on-create 1.0.0",
        "integrations: autotask",
        "note_title (string, required)",
        "note_type (integer, default 1)",
        "trigger ticket-created (autotask.ticket)",
        "Adds a note to every ticket",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    let out = weft(&env, None, &["crate", "show", "hello-webhok"]);
    // Not found, as the API's 404: exit 1.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("did you mean `hello-webhook`?"),
        "{}",
        text(&out)
    );
}

#[test]
fn install_lists_every_missing_thing_at_once() {
    let env = Env::new();
    org(&env, "Acme");
    let out = weft(
        &env,
        None,
        &[
            "crate",
            "install",
            "ticket-note-on-create",
            "--org",
            "acme",
            "--param",
            "note_typ=2",
            "--run-for",
            "nowhere",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    for want in [
        "missing required parameter `note_title`",
        "missing integration `autotask` for organization `acme`",
        "unknown parameter `note_typ` (did you mean `note_type`?)",
        "--run-for: no organization `nowhere`",
    ] {
        assert!(t.contains(want), "missing {want:?} in {t}");
    }
    let out = weft(
        &env,
        None,
        &[
            "crate",
            "install",
            "ticket-note-on-create",
            "--org",
            "acme",
            "--param",
            "note_title=Hi",
            "--param",
            "note_type=abc",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("parameter `note_type` must be an integer"),
        "{}",
        text(&out)
    );
    let out = weft(
        &env,
        None,
        &["crate", "install", "hello-webhook", "--org", "nobody"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no organization `nobody`"),
        "{}",
        text(&out)
    );
    assert!(sql(&env, "SELECT name FROM workflows", &[]).is_empty());
}

#[test]
fn install_deploys_a_workflow_per_org() {
    let env = Env::new();
    org(&env, "Acme MSP");
    ok(&env, None, &["org", "add", "Acme", "--parent", "acme-msp"]);
    ok(&env, None, &["org", "add", "Beta", "--parent", "acme-msp"]);
    autotask(&env, "acme-msp"); // inherited by both clients
    let out = ok(
        &env,
        None,
        &[
            "crate",
            "install",
            "ticket-note-on-create",
            "--org",
            "acme",
            "--param",
            "note_title=Ticket received",
        ],
    );
    assert!(
        out.contains("installed crate ticket-note-on-create 1.0.0 for acme"),
        "{out}"
    );
    let (v, doc) = deployed(&env, "ticket-note-on-create--acme");
    assert_eq!(v, 1);
    assert_eq!(doc["name"], "ticket-note-on-create--acme");
    assert_eq!(doc["input"]["note_title"]["default"], "Ticket received");
    assert_eq!(doc["input"]["note_type"]["default"], 1);
    assert_eq!(doc["triggers"][0]["name"], "ticket-created");
    assert_eq!(doc["triggers"][0]["run_for"], "acme");
    assert_eq!(doc["triggers"][0]["enabled"], false);
    assert_eq!(
        switch(&env, "ticket-note-on-create--acme", "ticket-created"),
        Some(0)
    );

    let out = ok(
        &env,
        None,
        &[
            "crate",
            "install",
            "ticket-note-on-create",
            "--org",
            "beta",
            "--param",
            "note_title=Got it",
            "--param",
            "note_type=3",
            "--enable",
        ],
    );
    assert!(out.contains("enabled"), "{out}");
    let (_, doc) = deployed(&env, "ticket-note-on-create--beta");
    assert_eq!(doc["input"]["note_type"]["default"], 3);
    assert_eq!(doc["triggers"][0]["enabled"], true);
    assert_eq!(
        switch(&env, "ticket-note-on-create--beta", "ticket-created"),
        Some(1)
    );

    // A second install for the same org is refused; list and installed show both.
    let out = weft(
        &env,
        None,
        &[
            "crate",
            "install",
            "ticket-note-on-create",
            "--org",
            "acme",
            "--param",
            "note_title=x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("already installed"), "{}", text(&out));
    let out = ok(&env, None, &["crate", "list"]);
    assert!(out.contains("acme@1.0.0, beta@1.0.0"), "{out}");
    let out = ok(&env, None, &["crate", "installed", "--json"]);
    let installs: Value = serde_json::from_str(&out[..out.rfind(']').unwrap() + 1]).unwrap();
    assert_eq!(installs.as_array().unwrap().len(), 2);
    assert_eq!(installs[0]["params"]["note_title"], "Ticket received");
    assert_eq!(installs[1]["enabled"], true);

    // Uninstall: triggers off, record gone, versions kept.
    let out = ok(
        &env,
        None,
        &[
            "crate",
            "uninstall",
            "ticket-note-on-create",
            "--org",
            "beta",
        ],
    );
    assert!(out.contains("1 trigger(s) disabled"), "{out}");
    assert_eq!(
        switch(&env, "ticket-note-on-create--beta", "ticket-created"),
        Some(0)
    );
    let out = ok(&env, None, &["crate", "installed", "--org", "beta"]);
    assert!(out.contains("no crates installed"), "{out}");
    deployed(&env, "ticket-note-on-create--beta");
}

#[test]
fn upgrade_keeps_parameters_and_leaves_detached_installs_alone() {
    let env = Env::new();
    org(&env, "Acme");
    org(&env, "Beta");
    let lib = env.dir.path().join("lib");
    copy_dir(&repo_crate("hello-webhook"), &lib.join("hello-webhook"));
    for o in ["acme", "beta"] {
        ok(
            &env,
            Some(&lib),
            &[
                "crate",
                "install",
                "hello-webhook",
                "--org",
                o,
                "--param",
                "greeting=Howdy",
            ],
        );
    }
    let out = ok(
        &env,
        Some(&lib),
        &["crate", "upgrade", "hello-webhook", "--org", "acme"],
    );
    assert!(out.contains("already at 1.0.0"), "{out}");
    ok(
        &env,
        Some(&lib),
        &["crate", "detach", "hello-webhook", "--org", "beta"],
    );

    // Version 1.1.0: a changed description and a new optional parameter.
    let dir = lib.join("hello-webhook");
    let manifest = std::fs::read_to_string(dir.join("crate.yaml"))
        .unwrap()
        .replace("version: 1.0.0", "version: 1.1.0")
        .replace(
            "parameters:\n",
            "parameters:\n  punctuation: {type: string, enum: [\"!\", \".\"], default: \"!\"}\n",
        );
    std::fs::write(dir.join("crate.yaml"), manifest).unwrap();
    let wf = std::fs::read_to_string(dir.join("hello.yaml"))
        .unwrap()
        .replace(
            "description: Answer a webhook with a greeting",
            "description: Answer a webhook with a greeting (v1.1)",
        );
    std::fs::write(dir.join("hello.yaml"), wf).unwrap();

    let out = ok(&env, Some(&lib), &["crate", "list"]);
    assert!(out.contains("acme@1.0.0 (upgradable)"), "{out}");
    assert!(out.contains("beta@1.0.0 (detached)"), "{out}");
    let out = ok(
        &env,
        Some(&lib),
        &["crate", "upgrade", "hello-webhook", "--org", "acme"],
    );
    assert!(
        out.contains("upgraded crate hello-webhook for acme from 1.0.0 to 1.1.0"),
        "{out}"
    );
    let (v, doc) = deployed(&env, "hello-webhook--acme");
    assert_eq!(v, 2);
    assert_eq!(
        doc["description"],
        "Answer a webhook with a greeting (v1.1)"
    );
    assert_eq!(doc["input"]["greeting"]["default"], "Howdy", "kept");
    assert_eq!(doc["triggers"][0]["name"], "hello--acme");

    let out = weft(
        &env,
        Some(&lib),
        &["crate", "upgrade", "hello-webhook", "--org", "beta"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("detached"), "{}", text(&out));
    let (v, doc) = deployed(&env, "hello-webhook--beta");
    assert_eq!(v, 1, "a detached install is not overwritten");
    assert_eq!(doc["description"], "Answer a webhook with a greeting");

    // A new required parameter must be given at upgrade.
    let manifest = std::fs::read_to_string(dir.join("crate.yaml"))
        .unwrap()
        .replace("version: 1.1.0", "version: 2.0.0")
        .replace(
            "parameters:\n",
            "parameters:\n  team: {type: string, required: true}\n",
        );
    std::fs::write(dir.join("crate.yaml"), manifest).unwrap();
    let out = weft(
        &env,
        Some(&lib),
        &["crate", "upgrade", "hello-webhook", "--org", "acme"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("missing required parameter `team`"),
        "{}",
        text(&out)
    );
    ok(
        &env,
        Some(&lib),
        &[
            "crate",
            "upgrade",
            "hello-webhook",
            "--org",
            "acme",
            "--param",
            "team=ops",
        ],
    );
    let out = ok(&env, Some(&lib), &["crate", "installed", "--org", "acme"]);
    assert!(out.contains("2.0.0"), "{out}");
}

fn tar_gz(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        // Written by hand: `set_path` refuses `..`, which is what the test needs.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn installs_from_a_folder_and_an_archive() {
    let env = Env::new();
    org(&env, "Acme");
    org(&env, "Beta");
    let folder = env.dir.path().join("my-crate");
    copy_dir(&repo_crate("hello-webhook"), &folder);
    let out = ok(
        &env,
        None,
        &[
            "crate",
            "install",
            folder.to_str().unwrap(),
            "--org",
            "acme",
        ],
    );
    assert!(out.contains("/hooks/hello--acme/acme"), "{out}");
    let (_, doc) = deployed(&env, "hello-webhook--acme");
    assert_eq!(doc["input"]["greeting"]["default"], "Hello");

    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                format!("hello-webhook/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let archive = env.dir.path().join("hello.tar.gz");
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    tar_gz(&archive, &entries);
    let out = ok(
        &env,
        None,
        &[
            "crate",
            "install",
            archive.to_str().unwrap(),
            "--org",
            "beta",
            "--param",
            "greeting=Hi",
            "--run-for",
            "acme",
        ],
    );
    assert!(
        out.contains("installed crate hello-webhook 1.0.0 for beta"),
        "{out}"
    );
    let (_, doc) = deployed(&env, "hello-webhook--beta");
    assert_eq!(doc["input"]["greeting"]["default"], "Hi");
    assert_eq!(doc["triggers"][0]["name"], "hello--beta");
    assert_eq!(doc["triggers"][0]["run_for"], "acme");

    // A newer version in the folder it was installed from: `upgrade` finds it there.
    let manifest = folder.join("crate.yaml");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replace("version: 1.0.0", "version: 1.1.0")).unwrap();
    let out = ok(
        &env,
        None,
        &["crate", "upgrade", "hello-webhook", "--org", "acme"],
    );
    assert!(out.contains("from 1.0.0 to 1.1.0"), "{out}");
    // The archive install upgrades from a newer archive given with --from, keeping `greeting`.
    let newer = env.dir.path().join("hello-1.2.0.tar.gz");
    let bumped: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, d)| {
            let text = String::from_utf8_lossy(d).replace("version: 1.0.0", "version: 1.2.0");
            (n.clone(), text.into_bytes())
        })
        .collect();
    let entries: Vec<(&str, &[u8])> = bumped
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    tar_gz(&newer, &entries);
    let from = newer.to_str().unwrap();
    let out = ok(
        &env,
        None,
        &[
            "crate",
            "upgrade",
            "hello-webhook",
            "--org",
            "beta",
            "--from",
            from,
        ],
    );
    assert!(out.contains("from 1.0.0 to 1.2.0"), "{out}");
    let (_, doc) = deployed(&env, "hello-webhook--beta");
    assert_eq!(doc["input"]["greeting"]["default"], "Hi", "parameters kept");
    // --from a crate of another name is refused.
    let other = repo_crate("rmm-alert-to-ticket");
    let out = weft(
        &env,
        None,
        &[
            "crate",
            "upgrade",
            "hello-webhook",
            "--org",
            "beta",
            "--from",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not `hello-webhook`"), "{}", text(&out));

    // An entry climbing out of the extraction folder is refused, and nothing is written.
    let evil = env.dir.path().join("evil.tar.gz");
    tar_gz(
        &evil,
        &[
            ("crate.yaml", b"name: x\nversion: 1.0.0\ndescription: x\n"),
            ("../evil", b"pwned"),
        ],
    );
    let out = weft(
        &env,
        None,
        &["crate", "install", evil.to_str().unwrap(), "--org", "acme"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refused: entry `../evil`"),
        "{}",
        text(&out)
    );
    assert!(!std::env::temp_dir().join("evil").exists());
}

/// `weft serve` on the env's database; answers (child, address).
fn serve(env: &Env) -> (std::process::Child, String) {
    let mut child = env
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("WEFT_API_TOKEN", "test-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = a.to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!addr.is_empty(), "weft serve did not start");
    (child, addr)
}

fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    http(addr, "POST", path, body)
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    http_with(addr, method, path, "", body)
}

/// A request with `extra` header lines (each ending in `\r\n`).
fn http_with(addr: &str, method: &str, path: &str, extra: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\nauthorization: Bearer test-token\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap();
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        rest.split("\r\n").nth(1).unwrap_or_default().to_string()
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&rest).unwrap_or(Value::Null))
}

#[test]
fn an_installed_webhook_crate_answers_under_weft_serve() {
    let env = Env::new();
    org(&env, "Acme");
    ok(
        &env,
        None,
        &[
            "crate",
            "install",
            "hello-webhook",
            "--org",
            "acme",
            "--param",
            "greeting=Howdy",
            "--enable",
        ],
    );
    let (mut child, addr) = serve(&env);
    let (status, _) = post(&addr, "/hooks/hello--acme/acme", r#"{"name": "Ada"}"#);
    assert_eq!(status, 401, "the crate's webhook takes acme's own secret");
    let shown = ok(
        &env,
        None,
        &[
            "trigger",
            "secret",
            "hello-webhook--acme",
            "hello--acme",
            "--org",
            "acme",
        ],
    );
    let secret = shown
        .lines()
        .find_map(|l| l.strip_prefix("x-weft-secret: "))
        .unwrap_or_else(|| panic!("{shown}"))
        .to_string();
    let (status, body) = http_with(
        &addr,
        "POST",
        "/hooks/hello--acme/acme",
        &format!("x-weft-secret: {secret}\r\n"),
        r#"{"name": "Ada"}"#,
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    let out = if body.get("output").is_some() {
        body["output"].clone()
    } else {
        body.clone()
    };
    assert_eq!(out["message"], "Howdy, Ada!", "{body}");
    assert_eq!(out["org"], "acme", "{body}");
}

#[test]
fn the_api_lists_and_installs_crates() {
    let env = Env::new();
    org(&env, "Acme");
    org(&env, "Beta");
    let (mut child, addr) = serve(&env);
    let (status, missing) = post(
        &addr,
        "/api/crates/ticket-note-on-create/install",
        r#"{"org": "acme", "params": {"note_type": "x"}}"#,
    );
    let (status_ok, installed) = post(
        &addr,
        "/api/crates/hello-webhook/install",
        r#"{"org": "beta", "params": {"greeting": "Yo"}, "enable": true}"#,
    );
    let (status_again, _) = post(
        &addr,
        "/api/crates/hello-webhook/install",
        r#"{"org": "beta"}"#,
    );
    let (status_unknown, _) = post(&addr, "/api/crates/nope/install", r#"{"org": "beta"}"#);
    let (status_list, list) = http(&addr, "GET", "/api/crates", "");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 422, "{missing}");
    let msg = missing.to_string();
    for want in [
        "missing required parameter `note_title`",
        "parameter `note_type` must be an integer",
        "missing integration `autotask`",
    ] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
    assert_eq!(status_ok, 200, "{installed}");
    assert_eq!(installed["workflows"][0]["name"], "hello-webhook--beta");
    assert!(
        installed["workflows"][0]["triggers"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/hooks/hello--beta/beta"),
        "{installed}"
    );
    assert_eq!(status_again, 409);
    assert_eq!(status_unknown, 404);
    assert_eq!(status_list, 200, "{list}");
    let names: Vec<&str> = list["library"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"hello-webhook") && names.contains(&"ticket-note-on-create"));
    assert_eq!(list["installs"][0]["org"], "beta");
    assert_eq!(list["installs"][0]["params"]["greeting"], "Yo");
    let (_, doc) = deployed(&env, "hello-webhook--beta");
    assert_eq!(doc["input"]["greeting"]["default"], "Yo");
}
