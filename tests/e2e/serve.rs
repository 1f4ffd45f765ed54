//! `weft serve` end to end: the real binary on 127.0.0.1 with a temporary database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const HOOKS: &str = r#"
name: hooked
input:
  who: {type: string, default: nobody}
triggers:
  - name: guarded
    type: webhook
    secret: required
    run_for: all_managed
    criteria: "{{ TRIGGER.body.go == true }}"
    max_body: 1KiB
    input:
      who: "{{ TRIGGER.body.who }}"
  - name: waiting
    type: webhook
    response: wait
    run_for: [acme]
tasks:
  hello:
    action: core.echo
    input:
      text: "hi {{ CTX.who }}"
output:
  greeting: "{{ TASKS.hello.result.text }}"
"#;

struct Server {
    child: Child,
    addr: String,
    token: String,
    secret: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
        .arg(dir.join("wf"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("weft.db").display()))
        .env_remove("WEFT_API_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut token, mut secret) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = a.to_string();
        } else if line.starts_with("API token") {
            token = line.rsplit(' ').next().unwrap().to_string();
        } else if line.contains("hooked.guarded for acme:") {
            secret = line
                .split_once("x-weft-secret: ")
                .unwrap()
                .1
                .split(';')
                .next()
                .unwrap()
                .to_string();
        } else if line.contains("hooked.waiting") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        token,
        secret,
    }
}

fn http(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        s.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
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

fn api(s: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {}", s.token);
    http(s, method, path, &[("authorization", &auth)], body)
}

fn setup() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wf")).unwrap();
    std::fs::write(dir.path().join("wf/hooked.yaml"), HOOKS).unwrap();
    std::fs::write(
        dir.path().join("wf/broken.yaml"),
        "name: broken\ntasks: 3\n",
    )
    .unwrap();
    // Webhooks run only for registered orgs: the MSP and its client `acme`.
    let db = format!("sqlite://{}", dir.path().join("weft.db").display());
    for args in [
        &["org", "add", "MSP", "--id", "msp"][..],
        &["org", "add", "Acme", "--id", "acme", "--parent", "msp"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .args(["--database", &db])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = serve(dir.path());
    assert!(!s.token.is_empty() && !s.secret.is_empty(), "startup lines");
    (dir, s)
}

fn wait_status(s: &Server, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, v) = api(s, "GET", &format!("/api/executions/{id}"), "");
        if v["status"] == want {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn webhooks_check_secret_criteria_size_and_answer() {
    let (_dir, s) = setup();
    let json_ct = ("content-type", "application/json");
    let body = r#"{"go": true, "who": "ann"}"#;
    let (st, v) = http(&s, "POST", "/hooks/guarded/acme", &[json_ct], body);
    assert_eq!(st, 401, "{v}");
    assert_eq!(v["error"]["code"], "unauthorized");
    let (st, _) = http(
        &s,
        "POST",
        "/hooks/guarded/acme",
        &[json_ct, ("x-weft-secret", "wrong")],
        body,
    );
    assert_eq!(st, 401);
    let good = ("x-weft-secret", s.secret.as_str());
    let (st, v) = http(
        &s,
        "POST",
        "/hooks/guarded/acme",
        &[json_ct, good],
        r#"{"go": false}"#,
    );
    assert_eq!((st, &v["accepted"]), (200, &json!(false)), "{v}");
    let big = format!(r#"{{"go": true, "pad": "{}"}}"#, "x".repeat(2000));
    let (st, v) = http(&s, "POST", "/hooks/guarded/acme", &[json_ct, good], &big);
    assert_eq!(st, 413, "{v}");
    let (st, v) = http(&s, "POST", "/hooks/guarded/acme", &[json_ct, good], body);
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let exec = wait_status(&s, &id, "succeeded");
    assert_eq!(exec["output"]["greeting"], "hi ann");
    assert_eq!(exec["org"], "acme");

    let (st, v) = http(
        &s,
        "POST",
        "/hooks/waiting/acme",
        &[json_ct],
        r#"{"who": "bob"}"#,
    );
    assert_eq!((st, v), (200, json!({"greeting": "hi bob"})));

    let (st, events) = api(&s, "GET", "/api/triggers/hooked/guarded/events", "");
    assert_eq!(st, 200);
    let outcomes: Vec<(i64, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["status"].as_i64().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (202, "accepted"),
            (413, "rejected"),
            (200, "filtered"),
            (401, "rejected"),
            (401, "rejected")
        ]
    );
}

#[test]
fn the_api_needs_its_token_and_runs_validates_and_deploys() {
    let (_dir, s) = setup();
    let (st, v) = http(&s, "GET", "/api/workflows", &[], "");
    assert_eq!(st, 401);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (st, _) = http(
        &s,
        "GET",
        "/api/workflows",
        &[("authorization", "Bearer wrong")],
        "",
    );
    assert_eq!(st, 401);
    let (st, v) = api(&s, "GET", "/api/workflows", "");
    assert_eq!(st, 200);
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "only the valid workflow: {v}"
    );
    // No secret in the workflow's description; one per org through its own endpoint.
    let (_, v) = api(&s, "GET", "/api/workflows/hooked", "");
    assert!(v["triggers"][0].get("secret").is_none(), "{v}");
    assert_eq!(v["triggers"][0]["orgs"], json!(["acme"]));
    let (st, v) = api(&s, "GET", "/api/triggers/hooked/guarded/secrets/acme", "");
    assert_eq!((st, &v["secret"]), (200, &json!(s.secret)), "{v}");

    let (st, v) = api(
        &s,
        "POST",
        "/api/workflows/hooked/run?wait=10s",
        r#"{"who": "cy"}"#,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["tasks"][0]["name"], "hello");

    let (st, v) = api(&s, "POST", "/api/workflows/validate", "name: x\ntasks: 3\n");
    assert_eq!(st, 200);
    assert!(!v.as_array().unwrap().is_empty());
    let (st, v) = api(&s, "POST", "/api/workflows", "name: x\ntasks: 3\n");
    assert_eq!(st, 422);
    assert_eq!(v["error"]["code"], "invalid_workflow");
    let ok = "name: fresh\ntasks:\n  a:\n    action: core.noop\n";
    let (st, v) = api(&s, "POST", "/api/workflows", ok);
    assert_eq!((st, &v["version"]), (200, &json!(1)), "{v}");
    let (st, v) = api(&s, "GET", "/api/executions?workflow=hooked", "");
    assert_eq!(st, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
}

const OPS: &str = r#"
name: ops
input:
  who: {type: string, default: nobody}
  nap: {type: string, default: 0s}
triggers:
  - name: limited
    type: webhook
    rate_limit: 2
    run_for: [acme]
  - name: formy
    type: webhook
    response: wait
    run_for: [acme]
    input:
      who: "{{ TRIGGER.body.who if TRIGGER.body is mapping else TRIGGER.body }}"
tasks:
  nap:
    action: core.sleep
    input: {duration: "{{ CTX.nap }}"}
    next:
      - do: hello
  hello:
    action: core.echo
    input: {text: "hi {{ CTX.who }}"}
output:
  greeting: "{{ TASKS.hello.result.text }}"
"#;

#[test]
fn rate_limits_body_kinds_switches_cancel_rerun_and_paging() {
    let (dir, s) = setup();
    std::fs::write(dir.path().join("ops.yaml"), OPS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("deploy")
        .arg(dir.path().join("ops.yaml"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.path().join("weft.db").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("deployed ops v1"));

    // Deployed into the running server's store: its webhooks answer at once.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (st, v) = http(&s, "POST", "/hooks/formy/acme", &form, "who=dee&x=1");
    assert_eq!((st, v), (200, json!({"greeting": "hi dee"})));
    let text = [("content-type", "text/plain")];
    let (st, v) = http(&s, "POST", "/hooks/formy/acme", &text, "eve");
    assert_eq!((st, v), (200, json!({"greeting": "hi eve"})));

    // Two per second: a burst of six gets some 429s with the one error shape.
    let answers: Vec<(u16, Value)> = (0..6)
        .map(|_| http(&s, "POST", "/hooks/limited/acme", &[], ""))
        .collect();
    let limited: Vec<_> = answers.iter().filter(|(st, _)| *st == 429).collect();
    assert!(!limited.is_empty(), "{answers:?}");
    assert_eq!(limited[0].1["error"]["code"], "rate_limited");
    assert!(answers.iter().any(|(st, _)| *st == 202));

    // Switched off through the API: the webhook is gone until switched on again.
    let (st, v) = api(&s, "POST", "/api/triggers/ops/formy/disable", "");
    assert_eq!((st, &v["enabled"]), (200, &json!(false)), "{v}");
    let (st, _) = http(&s, "POST", "/hooks/formy/acme", &text, "fay");
    assert_eq!(st, 404);
    let (_, list) = api(&s, "GET", "/api/triggers", "");
    let formy = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "formy")
        .unwrap();
    assert_eq!(formy["enabled"], false);
    let (st, _) = api(&s, "POST", "/api/triggers/ops/formy/enable", "");
    assert_eq!(st, 200);
    let (st, _) = http(&s, "POST", "/hooks/formy/acme", &text, "gus");
    assert_eq!(st, 200);
    let (st, v) = api(&s, "POST", "/api/triggers/ops/nope/disable", "");
    assert_eq!((st, &v["error"]["code"]), (404, &json!("not_found")));

    // Cancel a long run through the API, then rerun it.
    let (st, v) = api(&s, "POST", "/api/workflows/ops/run", r#"{"nap": "30s"}"#);
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_status(&s, &id, "running");
    let (st, v) = api(&s, "POST", &format!("/api/executions/{id}/cancel"), "");
    assert_eq!(st, 200, "{v}");
    let cancelled = wait_status(&s, &id, "cancelled");
    assert_eq!(cancelled["tasks"][0]["name"], "nap");
    let (st, v) = api(&s, "POST", &format!("/api/executions/{id}/rerun"), "{}");
    assert!(st == 202 || st == 200, "{st} {v}");
    let again = v["id"].as_str().unwrap().to_string();
    assert_ne!(again, id);
    let (_, v) = api(&s, "GET", &format!("/api/executions/{again}"), "");
    assert_eq!(v["rerun_of"], id.as_str());
    api(&s, "POST", &format!("/api/executions/{again}/cancel"), "");

    // Paging and filters.
    let (_, all) = api(&s, "GET", "/api/executions?workflow=ops&limit=100", "");
    let all = all.as_array().unwrap().clone();
    assert!(all.len() >= 5, "{all:?}");
    let (_, page) = api(
        &s,
        "GET",
        "/api/executions?workflow=ops&limit=2&offset=2",
        "",
    );
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], all[2]["id"]);
    let (_, none) = api(&s, "GET", "/api/executions?org=nobody", "");
    assert_eq!(none, json!([]));
    let (st, v) = api(&s, "GET", "/api/executions?offset=-1", "");
    assert_eq!((st, &v["error"]["code"]), (400, &json!("bad_request")));
    // Time: the last hour has them all, a future instant none; a bad value is named.
    let (_, recent) = api(
        &s,
        "GET",
        "/api/executions?workflow=ops&limit=100&since=1h",
        "",
    );
    assert_eq!(recent.as_array().unwrap().len(), all.len());
    let (_, later) = api(
        &s,
        "GET",
        "/api/executions?workflow=ops&since=2999-01-01T00:00:00Z",
        "",
    );
    assert_eq!(later, json!([]));
    let (st, v) = api(&s, "GET", "/api/executions?since=yesterday", "");
    assert_eq!(st, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("`since`"),
        "{v}"
    );
}

#[test]
fn sigterm_lets_running_steps_finish_and_loses_nothing() {
    let (dir, mut s) = setup();
    let ops = dir.path().join("wf/ops.yaml");
    std::fs::write(&ops, OPS).unwrap();
    let db = format!("sqlite://{}", dir.path().join("weft.db").display());
    let deployed = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["deploy", ops.to_str().unwrap(), "--database", &db])
        .output()
        .unwrap();
    assert!(deployed.status.success());
    // Accepted events, some still running a 1 s step when the signal comes.
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let body = format!(r#"{{"who": "w{i}", "nap": "1s"}}"#);
            let (st, v) = http(
                &s,
                "POST",
                "/hooks/limited/acme",
                &[("content-type", "application/json")],
                &body,
            );
            if st == 429 {
                std::thread::sleep(Duration::from_millis(600));
                let (st, v) = http(
                    &s,
                    "POST",
                    "/hooks/limited/acme",
                    &[("content-type", "application/json")],
                    &body,
                );
                assert_eq!(st, 202, "{v}");
                return v["id"].as_str().unwrap().to_string();
            }
            assert_eq!(st, 202, "{v}");
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = support_wait(&mut s.child, Duration::from_secs(20)).expect("serve exits");
    assert!(status.success(), "{status:?}");

    // Every accepted event has its execution; the next start finishes what was left.
    let mut s2 = serve(dir.path());
    // The token was shown once, at the first start.
    s2.token = s.token.clone();
    for id in &ids {
        let v = wait_status(&s2, id, "succeeded");
        assert!(
            v["output"]["greeting"]
                .as_str()
                .unwrap()
                .starts_with("hi w")
        );
    }
}

fn support_wait(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
