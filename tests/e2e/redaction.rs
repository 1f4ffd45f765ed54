//! Secrets never reach the store, whatever their JSON type, wherever they came from and
//! however they were encoded: the real `weft` binary (`run`, `executions show`, `serve`), and
//! the raw bytes of the SQLite database files afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Env;
use base64::Engine as _;
use serde_json::{Value, json};

/// Every byte of the database: the main file, its write-ahead log and shared memory.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["weft.db", "weft.db-wal", "weft.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend(b);
        }
    }
    assert!(!all.is_empty(), "no database in {}", dir.display());
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    !n.is_empty() && haystack.windows(n.len()).any(|w| w == n)
}

/// Asserts that none of `needles` is in the database files or in `shown` (what weft printed).
fn assert_nowhere(dir: &Path, shown: &str, needles: &[String]) {
    let db = db_bytes(dir);
    for n in needles {
        assert!(!contains(&db, n), "the database holds `{n}`");
        assert!(!shown.contains(n.as_str()), "weft shows `{n}`: {shown}");
    }
}

/// Percent-encoding keeping `keep`, with `+` for spaces or not.
fn pct(s: &str, keep: &str, plus: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else if b == b' ' && plus {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A secret and the encodings a workflow may turn it into.
fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_string(),
        pct(secret, "-._~", false),
        pct(secret, "-._~", true),
        pct(secret, "/.-_", false),
        pct(secret, "*-._", true),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        json[1..json.len() - 1].to_string(),
    ]
}

// `weft run` ---------------------------------------------------------------------------------

#[test]
fn number_and_boolean_secrets_are_never_stored() {
    let env = Env::new();
    for args in [
        &["org", "add", "Acme MSP", "--id", "msp"][..],
        &["org", "add", "Client", "--id", "client", "--parent", "msp"],
        &[
            "org",
            "var",
            "set",
            "client",
            "vault_pin",
            "7302951",
            "--secret",
        ],
        &[
            "org",
            "var",
            "set",
            "client",
            "alarm_armed",
            "true",
            "--secret",
        ],
    ] {
        let out = env.weft(args);
        assert!(
            out.status.success(),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wf = env.write(
        "numbers.yaml",
        r#"
name: numbers
input:
  pin: { type: integer, secret: true, required: true }
  armed: { type: boolean, secret: true, required: true }
  label: { type: string, default: hello }
vars:
  pin_copy: "{{ CTX.pin }}"
  door: "{{ ORG.VARIABLES.vault_pin }}"
tasks:
  echo:
    action: core.echo
    input:
      pin: "{{ CTX.pin }}"
      text: "PIN {{ CTX.pin }}, door {{ ORG.VARIABLES.vault_pin }}, {{ CTX.label }}"
      door: "{{ ORG.VARIABLES.vault_pin }}"
    next:
      - publish: { again: "{{ RESULT.pin }}", said: "{{ RESULT.text }}" }
        do: fail_loudly
  fail_loudly:
    action: core.fail
    input:
      message: "cannot open door {{ CTX.door }} with {{ CTX.pin }}"
    next:
      - on: failure
        do: done
  done:
    action: core.noop
output:
  pin_is_number: "{{ CTX.pin is number }}"
  pin_plus_one: "{{ CTX.pin + 1 }}"
  armed_is_true: "{{ CTX.armed == true }}"
  door_plus_one: "{{ ORG.VARIABLES.vault_pin + 1 }}"
"#,
    );
    let wf = wf.to_str().unwrap();
    let r = env.run(
        wf,
        &[
            "--input",
            "pin=482913",
            "--input",
            "armed=true",
            "--org",
            "client",
        ],
    );
    r.expect(0, "succeeded");
    // The running execution saw the real values, with their types.
    assert_eq!(
        r.json["output"],
        json!({"pin_is_number": true, "pin_plus_one": 482914, "armed_is_true": true, "door_plus_one": 7302952}),
        "{r}"
    );
    let show = env.show(r.id());
    assert_eq!(show["input"]["pin"], "***", "{show}");
    assert_eq!(
        show["input"]["armed"], "***",
        "the secret boolean itself: {show}"
    );
    assert_eq!(show["input"]["label"], "hello");
    let echo = crate::support::task(&show, "echo").unwrap();
    assert_eq!(echo["result"]["pin"], "***", "{echo}");
    assert_eq!(echo["result"]["door"], "***", "{echo}");
    assert_eq!(echo["result"]["text"], "PIN ***, door ***, hello", "{echo}");
    let failed = crate::support::task(&show, "fail_loudly").unwrap();
    assert_eq!(
        failed["error"]["message"], "cannot open door *** with ***",
        "{failed}"
    );
    let shown = format!("{show}\n{}", r.stdout);
    assert_nowhere(
        env.dir.path(),
        &shown,
        &["482913".to_string(), "7302951".to_string()],
    );
    // Text output too.
    let text = env.weft(&["executions", "show", r.id()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        !text.contains("482913") && !text.contains("7302951"),
        "{text}"
    );
}

#[test]
fn encoded_secrets_are_never_stored() {
    let server = crate::support::Server::echo();
    let env = Env::new();
    for args in [
        &["org", "add", "Acme MSP", "--id", "msp"][..],
        &[
            "org",
            "var",
            "set",
            "msp",
            "client_secret",
            "Org S3cret/+&=é\"x",
            "--secret",
        ],
    ] {
        let out = env.weft(args);
        assert!(
            out.status.success(),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secret = "Zq9 w/x+y&é\"k~*'!";
    let wf = env.write(
        "encoded.yaml",
        &r#"
name: encoded
input:
  secret: { type: string, secret: true, required: true }
tasks:
  call:
    action: http.request
    input:
      method: POST
      url: "BASE/token?client_secret={{ CTX.secret | urlencode }}"
      query: { also: "{{ CTX.secret }}", org: "{{ ORG.VARIABLES.client_secret }}" }
      headers: { content-type: application/x-www-form-urlencoded }
      body: "grant_type=client_credentials&client_secret={{ CTX.secret | urlencode }}&org={{ ORG.VARIABLES.client_secret | urlencode }}"
    next:
      - do: encode
  encode:
    action: core.echo
    input:
      basic: "Basic {{ ('svc:' ~ CTX.secret) | b64encode }}"
      plain: "{{ CTX.secret | b64encode }}"
      org: "{{ ORG.VARIABLES.client_secret | b64encode }}"
      json: "{{ {'pw': CTX.secret, 'org': ORG.VARIABLES.client_secret} | to_json }}"
"#
        .replace("BASE", &server.base),
    );
    let r = env.run(
        wf.to_str().unwrap(),
        &["--input", &format!("secret={secret}"), "--org", "msp"],
    );
    r.expect(0, "succeeded");
    // The server got the real values.
    let hit = &server.hits()[0];
    let body = hit.body.as_str().unwrap_or_default();
    assert!(
        body.contains(&pct(secret, "/.-_", false)),
        "the action sent the urlencoded secret: {body}"
    );
    let show = env.show(r.id());
    let encode = crate::support::task(&show, "encode").unwrap();
    assert!(
        encode["result"]["basic"].as_str().unwrap().contains("***"),
        "{encode}"
    );
    assert_eq!(encode["result"]["plain"], "***", "{encode}");
    assert_eq!(encode["result"]["org"], "***", "{encode}");
    let dumped: Value = serde_json::from_str(encode["result"]["json"].as_str().unwrap()).unwrap();
    assert_eq!(dumped, json!({"pw": "***", "org": "***"}), "{encode}");
    let mut needles = forms(secret);
    needles.extend(forms("Org S3cret/+&=é\"x"));
    let b64 = base64::engine::general_purpose::STANDARD;
    needles.push(b64.encode(format!("svc:{secret}")));
    assert_nowhere(env.dir.path(), &format!("{show}\n{}", r.stdout), &needles);
}

/// The shipped onboarding example sends its client secret URL-encoded in a form body: with
/// Microsoft's endpoints pointed at a local server, the run stores neither form of it.
#[test]
fn the_onboarding_example_stores_no_client_secret() {
    let server = crate::support::Server::start(|hit, n| {
        if hit.path.ends_with("/oauth2/v2.0/token") {
            crate::support::Reply::ok(
                json!({"access_token": "graph-access-token", "token_type": "Bearer"}),
            )
        } else if hit.path == "/v1.0/users" {
            crate::support::Reply::ok(json!({"id": "user-77"}))
        } else {
            crate::support::Reply::ok(crate::support::echo_body(hit, n))
        }
    });
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    for name in ["onboard-new-user.yaml", "notify-teams.yaml"] {
        let source = std::fs::read_to_string(root.join(name))
            .unwrap()
            .replace("https://login.microsoftonline.com", &server.base)
            .replace("https://graph.microsoft.com", &server.base);
        env.write(name, &source);
    }
    let client_secret = "Cl13nt~Secret/+= &é";
    let teams = server.url("/teams");
    for args in [
        &["org", "add", "Acme MSP", "--id", "msp"][..],
        &["org", "var", "set", "msp", "m365_domain", "acme.test"],
        &["org", "var", "set", "msp", "m365_tenant_id", "tenant-1"],
        &["org", "var", "set", "msp", "m365_client_id", "client-1"],
        &[
            "org",
            "var",
            "set",
            "msp",
            "m365_client_secret",
            client_secret,
            "--secret",
        ],
        &[
            "org",
            "var",
            "set",
            "msp",
            "license_skus",
            r#"{"O365_BUSINESS_PREMIUM": "sku-1"}"#,
        ],
        &["org", "var", "set", "msp", "teams_general_webhook", &teams],
        &["org", "var", "set", "msp", "teams_noc_webhook", &teams],
    ] {
        let out = env.weft(args);
        assert!(
            out.status.success(),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let password = "Temp-Pa55 word!";
    let r = env.run(
        "onboard-new-user.yaml",
        &[
            "--org",
            "msp",
            "--input",
            "first_name=Ann",
            "--input",
            "last_name=Lee",
            "--input",
            "department=Billing",
            "--input",
            &format!("temporary_password={password}"),
            "--input",
            "ticket_id=42",
        ],
    );
    assert!(r.json["id"].is_string(), "{r}");
    // The token request carried the real, URL-encoded secret.
    let token = server
        .hits()
        .into_iter()
        .find(|h| h.path.ends_with("/token"))
        .expect("the token request was sent");
    let sent = token.body.as_str().unwrap_or_default().to_string();
    assert!(sent.contains(&pct(client_secret, "/.-_", false)), "{sent}");
    let show = env.show(r.id());
    let get_token = crate::support::runs_of(&show, "get_token");
    assert!(
        get_token[0]["input"]["body"]
            .as_str()
            .unwrap()
            .ends_with("client_secret=***"),
        "{show}"
    );
    let mut needles = forms(client_secret);
    needles.extend(forms(password));
    assert_nowhere(env.dir.path(), &format!("{show}\n{}", r.stdout), &needles);
}

#[test]
fn a_secret_of_the_wrong_type_is_not_quoted() {
    let env = Env::new();
    let wf = env.write(
        "typed.yaml",
        r#"
name: typed
input:
  pin: { type: integer, secret: true, required: true }
  mode: { type: string, secret: true, enum: [a, b] }
tasks:
  a: { action: core.noop }
"#,
    );
    let long = "this-is-a-long-secret-value-given-where-a-number-belongs-0123456789";
    let r = env.run(
        wf.to_str().unwrap(),
        &[
            "--input",
            &format!("pin={long}"),
            "--input",
            "mode=c-secret-mode",
        ],
    );
    assert_eq!(r.code, 2, "{r}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("(secret value hidden)"), "{all}");
    for part in [long, &long[..20], "c-secret-mode"] {
        assert!(!all.contains(part), "the error quotes the secret: {all}");
    }
    assert_nowhere(env.dir.path(), "", &[long[..20].to_string()]);
}

// `weft serve` -------------------------------------------------------------------------------

const TOKEN: &str = "redaction-e2e-api-token-0123456789abcdef";

const BY_TEMPLATE: &str = r#"
name: hooked-secrets
input:
  password: { type: string, secret: true }
  pin: { type: integer, secret: true }
  who: { type: string, default: nobody }
triggers:
  - name: by-template
    type: webhook
    run_for: [acme]
    input:
      password: "{{ TRIGGER.body.creds.pass }}"
      pin: "{{ TRIGGER.body.code }}"
      who: "{{ TRIGGER.body.who }}"
tasks:
  hello:
    action: core.echo
    input:
      text: "hi {{ CTX.who }}"
      real_trigger: "{{ TRIGGER.body.creds.pass == CTX.password and TRIGGER.body.code == CTX.pin }}"
output:
  real_trigger: "{{ TASKS.hello.result.real_trigger }}"
"#;

const BY_NAME: &str = r#"
name: named-secrets
input:
  api_secret: { type: string, secret: true }
  flag: { type: boolean, secret: true }
  who: { type: string, default: nobody }
triggers:
  - name: by-name
    type: webhook
    run_for: [acme]
tasks:
  hello:
    action: core.echo
    input: { text: "hi {{ CTX.who }}" }
"#;

struct Serve {
    child: Child,
    addr: String,
    /// `x-weft-secret` per trigger, when the server made one.
    secrets: Vec<(String, String)>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
        .arg(dir.join("wf"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("weft.db").display()))
        .env("WEFT_API_TOKEN", TOKEN)
        // Operators add their own credential header names (or parts of names).
        .env("WEFT_REDACT_HEADERS", "x-tenant-sig, fingerprint")
        .env_remove("WEFT_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining.
                continue;
            }
        }
    });
    let (mut addr, mut secrets) = (String::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("weft serve prints its address and webhook URLs");
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = a.trim().to_string();
        } else if line.starts_with("webhook ")
            && (line.contains("by-template") || line.contains("by-name"))
        {
            seen += 1;
            if let Some((_, s)) = line.split_once("x-weft-secret: ") {
                let name = if line.contains("by-template") {
                    "by-template"
                } else {
                    "by-name"
                };
                secrets.push((name.to_string(), s.trim_end_matches(')').to_string()));
            }
        }
    }
    assert!(!addr.is_empty(), "no address printed");
    Serve {
        child,
        addr,
        secrets,
    }
}

fn http(
    s: &Serve,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
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
    (status, rest)
}

fn api(s: &Serve, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, text) = http(
        s,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Posts a webhook event (with the trigger's secret when it has one); the response.
fn hook(s: &Serve, trigger: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some((_, secret)) = s.secrets.iter().find(|(n, _)| n == trigger) {
        all.push(("x-weft-secret", secret));
    }
    all.extend_from_slice(headers);
    http(
        s,
        "POST",
        &format!("/hooks/{trigger}/acme"),
        &all,
        &body.to_string(),
    )
}

/// Waits for an execution to end; its `GET /api/executions/{id}`.
fn finished(s: &Serve, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = api(s, "GET", &format!("/api/executions/{id}"), "");
        assert_eq!(status, 200, "{v}");
        if matches!(
            v["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return v;
        }
        assert!(Instant::now() < deadline, "execution {id} did not end: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn webhook_events_are_stored_without_secrets_or_credential_headers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wf")).unwrap();
    std::fs::write(dir.path().join("wf/hooked-secrets.yaml"), BY_TEMPLATE).unwrap();
    std::fs::write(dir.path().join("wf/named-secrets.yaml"), BY_NAME).unwrap();
    let s = serve(dir.path());
    // The org must exist (and be one the trigger runs for) before events are accepted.
    for body in [
        json!({"name": "Acme MSP", "id": "msp"}),
        json!({"name": "Acme", "id": "acme", "parent": "msp"}),
    ] {
        let (status, v) = api(&s, "POST", "/api/orgs", &body.to_string());
        assert!(status == 200 || status == 201, "{status} {v}");
    }
    let (status, v) = api(
        &s,
        "PUT",
        "/api/orgs/acme/variables/vault_code",
        &json!({"value": "org-vault-c0de-77", "secret": true}).to_string(),
    );
    assert!(status == 200 || status == 201, "{status} {v}");

    let credential_headers = [
        ("x-api-key", "hdr-api-key-VALUE-1234"),
        ("authorization", "Bearer hdr-auth-VALUE-5678"),
        ("x-custom-token", "hdr-custom-token-VALUE-9012"),
        ("x-tenant-sig", "hdr-tenant-sig-VALUE-3456"),
        ("x-device-fingerprint", "hdr-fingerprint-VALUE-7890"),
        ("x-request-id", "req-1"),
    ];
    let password = "hook-P@ss word/+&é\"1";
    let (status, text) = hook(
        &s,
        "by-template",
        &credential_headers,
        &json!({
            "creds": {"pass": password},
            "code": 482913,
            "who": "ann",
            "note": format!("code 482913, vault org-vault-c0de-77, pass {password}"),
            "vault": "org-vault-c0de-77",
        }),
    );
    assert_eq!(status, 202, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let exec = finished(&s, &id);
    assert_eq!(exec["status"], "succeeded", "{exec}");
    assert_eq!(
        exec["output"]["real_trigger"], true,
        "the running execution sees TRIGGER as it arrived: {exec}"
    );
    let trigger = &exec["trigger"];
    assert_eq!(trigger["body"]["creds"]["pass"], "***", "{trigger}");
    assert_eq!(trigger["body"]["code"], "***", "{trigger}");
    assert_eq!(trigger["body"]["vault"], "***", "{trigger}");
    assert_eq!(
        trigger["body"]["note"], "code ***, vault ***, pass ***",
        "{trigger}"
    );
    assert_eq!(trigger["body"]["who"], "ann");
    let headers = trigger["headers"].as_object().expect("headers");
    for (name, _) in &credential_headers[..5] {
        assert!(!headers.contains_key(*name), "{name} is stored: {trigger}");
    }
    assert!(!headers.contains_key("x-weft-secret"), "{trigger}");
    assert_eq!(headers["x-request-id"], "req-1", "{trigger}");
    assert_eq!(exec["input"]["password"], "***");
    assert_eq!(exec["input"]["pin"], "***");

    // By name: body fields that are secret inputs, a boolean among them.
    let (status, text) = hook(
        &s,
        "by-name",
        &[],
        &json!({"api_secret": "named-S3cret-value-42", "flag": true, "who": "bo", "other": true}),
    );
    assert_eq!(status, 202, "{text}");
    let id2 = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let exec2 = finished(&s, &id2);
    assert_eq!(exec2["status"], "succeeded", "{exec2}");
    assert_eq!(
        exec2["trigger"]["body"],
        json!({"api_secret": "***", "flag": "***", "who": "bo", "other": true}),
        "{exec2}"
    );
    assert_eq!(exec2["input"]["flag"], "***", "{exec2}");

    // A secret input of the wrong type: rejected without quoting it.
    let wrong = "wrong-type-secret-text-that-is-not-a-number";
    let (status, text) = hook(
        &s,
        "by-template",
        &[],
        &json!({"creds": {"pass": "x"}, "code": wrong, "who": "cy"}),
    );
    assert!((400..500).contains(&status), "{status} {text}");
    assert!(
        !text.contains(wrong),
        "the answer quotes the secret: {text}"
    );
    assert!(text.contains("secret value hidden"), "{text}");

    let shown = format!("{exec}\n{exec2}");
    let mut needles = forms(password);
    needles.extend(
        [
            "482913",
            "org-vault-c0de-77",
            "named-S3cret-value-42",
            "hdr-api-key-VALUE-1234",
            "hdr-auth-VALUE-5678",
            "hdr-custom-token-VALUE-9012",
            "hdr-tenant-sig-VALUE-3456",
            "hdr-fingerprint-VALUE-7890",
            wrong,
        ]
        .map(String::from),
    );
    drop(s);
    assert_nowhere(dir.path(), &shown, &needles);
}
