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
    criteria: "{{ TRIGGER.body.go == true }}"
    max_body: 1KiB
    input:
      who: "{{ TRIGGER.body.who }}"
  - name: waiting
    type: webhook
    response: wait
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
        .env_remove("WEFT_WEBHOOK_SECRET")
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
        } else if line.contains("hooked.guarded") {
            secret = line
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches(')')
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
            (200, "rejected"),
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
    let (_, v) = api(&s, "GET", "/api/workflows/hooked", "");
    assert_eq!(v["triggers"][0]["secret"], s.secret.as_str());

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
