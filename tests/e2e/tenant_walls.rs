//! Tenants are walls, tried as an attacker would, through the real `weft serve`: a webhook URL
//! cannot choose an org its trigger does not run for, each org's sender has its own secret
//! (rotated at once or with a grace period), unauthenticated webhooks run only for their
//! owner, strangers cannot spend a sender's rate limit nor grow storage, a stored workflow
//! that no longer loads does not take the other webhooks down, and malformed input to every
//! public route never panics the server.

use std::process::Stdio;
use std::time::Duration;

use crate::support::Env;
use serde_json::{Value, json};

const TOKEN: &str = "tenant-walls-token";

/// `listed` runs for acme and beta, `managed` for every client, `open` (no secret) for its
/// owner, the MSP; `limited` allows one request a second.
const HOOKS: &str = r#"
name: walls
input:
  n: {type: integer, default: 0}
triggers:
  - name: listed
    type: webhook
    secret: required
    run_for: [acme, beta]
    input:
      n: "{{ TRIGGER.body.n | default(0) }}"
  - name: managed
    type: webhook
    secret: required
    run_for: all_managed
  - name: open
    type: webhook
  - name: limited
    type: webhook
    secret: required
    run_for: [acme]
    rate_limit: 1
tasks:
  hello:
    action: core.echo
    input: {text: "org {{ ORG.id }}"}
output:
  org: "{{ ORG.id }}"
"#;

struct Serve {
    child: std::process::Child,
    url: String,
    stderr: std::path::PathBuf,
    client: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(env: &Env) -> Serve {
        use std::io::BufRead;
        let stderr = env.dir.path().join("serve.stderr");
        let workflows = env.dir.path().join("wf");
        let mut child = env
            .cmd(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workflows",
                workflows.to_str().unwrap(),
            ])
            .env("WEFT_API_TOKEN", TOKEN)
            .env("WEFT_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("weft serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("weft serve prints its address");
        Serve {
            child,
            url,
            stderr,
            // A fresh connection per request: a server that answers a large body early closes
            // its connection, which a pooled client would reuse.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.send_with(&self.client, method, path, headers, body)
            .await
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let body_len = body.len();
        let mut req = client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = match req.send().await {
            Ok(res) => res,
            // A server may answer a large body early (413, 405) and close the connection while
            // the client still sends it; the server's health is checked separately.
            Err(e) if e.is_request() && body_len > 64 * 1024 => {
                return (0, Value::Null);
            }
            Err(e) => panic!("weft serve answers {method} {path} ({body_len} bytes): {e:?}"),
        };
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn hook(
        &self,
        trigger: &str,
        org: &str,
        secret: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(s) = secret {
            headers.push(("x-weft-secret", s));
        }
        self.send(
            "POST",
            &format!("/hooks/{trigger}/{org}"),
            &headers,
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {TOKEN}");
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send(
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    async fn executions(&self) -> Vec<Value> {
        let (_, v) = self.api("GET", "/api/executions?limit=500", None).await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn events(&self, trigger: &str) -> Vec<Value> {
        let (_, v) = self
            .api(
                "GET",
                &format!("/api/triggers/walls/{trigger}/events"),
                None,
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database with the MSP, clients acme, beta and gamma, and `walls` ready to deploy.
fn env() -> Env {
    env_with(HOOKS)
}

/// A database with the MSP, clients acme, beta and gamma, and `workflow` ready to deploy.
fn env_with(workflow: &str) -> Env {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "MSP", "--id", "msp"]));
    for c in ["acme", "beta", "gamma"] {
        ok(&env.weft(&["org", "add", c, "--id", c, "--parent", "msp"]));
    }
    std::fs::create_dir(env.dir.path().join("wf")).unwrap();
    std::fs::write(env.dir.path().join("wf/walls.yaml"), workflow).unwrap();
    env
}

/// `weft trigger secret walls TRIGGER --org ORG [ARGS]`: the printed secret.
fn cli_secret(env: &Env, trigger: &str, org: &str, args: &[&str]) -> String {
    let mut all = vec!["trigger", "secret", "walls", trigger, "--org", org];
    all.extend_from_slice(args);
    let out = ok(&env.weft(&all));
    out.lines()
        .find_map(|l| l.strip_prefix("x-weft-secret: "))
        .unwrap_or_else(|| panic!("no secret printed: {out}"))
        .to_string()
}

#[tokio::test]
async fn a_webhook_url_cannot_choose_an_org_the_trigger_does_not_run_for() {
    let env = env();
    let s = Serve::start(&env);
    let acme = cli_secret(&env, "listed", "acme", &[]);
    let long = "x".repeat(300);
    for (trigger, org, why) in [
        ("listed", "made-up", "an org that does not exist"),
        ("listed", "gamma", "an org the list does not name"),
        ("managed", "msp", "the root is not a managed org"),
        (
            "open",
            "acme",
            "an unauthenticated webhook runs only for its owner",
        ),
        ("listed", long.as_str(), "an over-long org segment"),
        ("listed", "acme%20dental", "not a slug"),
    ] {
        let (st, v) = s.hook(trigger, org, Some(&acme), json!({"n": 1})).await;
        assert_eq!(st, 404, "{why}: {v}");
        assert_eq!(v["error"]["code"], "not_found", "{why}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("beta") && !message.contains("run_for:"),
            "{why}: a stranger is not told which orgs the trigger runs for: {message}"
        );
    }
    // The operator is: the recorded event says why.
    let reasons: Vec<String> = s
        .events("listed")
        .await
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("run_for: acme, beta")),
        "{reasons:?}"
    );
    assert!(
        s.executions().await.is_empty(),
        "nothing ran for a refused org"
    );

    // What the trigger runs for starts exactly one execution, for the URL's org.
    let (st, v) = s.hook("listed", "acme", Some(&acme), json!({"n": 1})).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(
        v["ids"].as_array().unwrap().len(),
        1,
        "one org, one execution: {v}"
    );
    let (st, v) = s.hook("open", "msp", None, json!({})).await;
    assert_eq!(st, 202, "the owner takes unauthenticated requests: {v}");
    let orgs: Vec<String> = s
        .executions()
        .await
        .iter()
        .map(|e| e["org"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orgs.len(), 2);
    assert!(
        orgs.contains(&"acme".into()) && orgs.contains(&"msp".into()),
        "{orgs:?}"
    );

    // The API lists the orgs each webhook runs for, and never a secret.
    let (_, wf) = s.api("GET", "/api/workflows/walls", None).await;
    let triggers = wf["triggers"].as_array().unwrap();
    assert_eq!(triggers[0]["orgs"], json!(["acme", "beta"]));
    assert_eq!(triggers[1]["orgs"], json!(["acme", "beta", "gamma"]));
    assert_eq!(triggers[2]["orgs"], json!(["msp"]));
    assert!(
        !wf.to_string().contains(&acme),
        "no secret in the workflow's description"
    );
}

#[tokio::test]
async fn each_org_has_its_own_secret_rotated_at_once_or_with_grace() {
    let env = env();
    let s = Serve::start(&env);
    let acme = cli_secret(&env, "listed", "acme", &[]);
    let beta = cli_secret(&env, "listed", "beta", &[]);
    assert_ne!(acme, beta);
    assert_eq!(
        acme,
        cli_secret(&env, "listed", "acme", &[]),
        "shown again, not re-issued"
    );

    // Client A's secret does nothing for client B.
    let (st, v) = s.hook("listed", "beta", Some(&acme), json!({})).await;
    assert_eq!(
        (st, &v["error"]["code"]),
        (401, &json!("unauthorized")),
        "{v}"
    );
    let (st, _) = s.hook("listed", "beta", Some(&beta), json!({})).await;
    assert_eq!(st, 202);

    // The database holds the secrets sealed, never in clear.
    let db = std::fs::read(env.dir.path().join("weft.db")).unwrap_or_default();
    let wal = std::fs::read(env.dir.path().join("weft.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(acme.len()).any(|w| w == acme.as_bytes()),
            "a webhook secret is stored in clear"
        );
    }

    // Rotated from the command line: the old secret is refused at once.
    let rotated = cli_secret(&env, "listed", "acme", &["--rotate"]);
    assert_ne!(rotated, acme);
    let (st, _) = s.hook("listed", "acme", Some(&acme), json!({})).await;
    assert_eq!(st, 401, "the old secret is refused after a rotation");
    let (st, _) = s.hook("listed", "acme", Some(&rotated), json!({})).await;
    assert_eq!(st, 202);

    // Rotated through the API with a grace period: both work until it ends.
    let (st, v) = s
        .api(
            "POST",
            "/api/triggers/walls/listed/secrets/acme/rotate",
            Some(json!({"grace": "1h"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let graced = v["secret"].as_str().unwrap().to_string();
    assert!(v["previous_valid_until"].is_string(), "{v}");
    assert!(
        v["url"].as_str().unwrap().ends_with("/hooks/listed/acme"),
        "{v}"
    );
    for secret in [&rotated, &graced] {
        let (st, v) = s.hook("listed", "acme", Some(secret), json!({})).await;
        assert_eq!(st, 202, "{v}");
    }
    let (_, shown) = s
        .api("GET", "/api/triggers/walls/listed/secrets/acme", None)
        .await;
    assert_eq!(shown["secret"], graced.as_str());
    // A rotation without grace ends the previous one's grace too.
    let (_, v) = s
        .api(
            "POST",
            "/api/triggers/walls/listed/secrets/acme/rotate",
            None,
        )
        .await;
    let last = v["secret"].as_str().unwrap().to_string();
    for old in [&rotated, &graced] {
        let (st, _) = s.hook("listed", "acme", Some(old), json!({})).await;
        assert_eq!(st, 401);
    }
    let (st, _) = s.hook("listed", "acme", Some(&last), json!({})).await;
    assert_eq!(st, 202);

    // Secrets exist only for orgs the trigger runs for, and only for webhooks that take one.
    let (st, v) = s
        .api("GET", "/api/triggers/walls/listed/secrets/gamma", None)
        .await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = s
        .api("GET", "/api/triggers/walls/open/secrets/msp", None)
        .await;
    assert_eq!(st, 409, "{v}");
    let out = env.weft(&["trigger", "secret", "walls", "listed", "--org", "gamma"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not run for organization `gamma`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn strangers_cannot_spend_a_senders_rate_limit_nor_grow_storage() {
    let env = env();
    let s = Serve::start(&env);
    let acme = cli_secret(&env, "limited", "acme", &[]);

    // Wrong secrets do not take the real sender's one request a second.
    for _ in 0..3 {
        let (st, _) = s
            .hook("limited", "acme", Some("whsec_guess"), json!({}))
            .await;
        assert_eq!(st, 401);
    }
    let (st, v) = s.hook("limited", "acme", Some(&acme), json!({})).await;
    assert_eq!(st, 202, "the sender is not locked out by failures: {v}");

    // Junk paths are answered without a row: a 60 KB org, unknown triggers.
    let huge = "o".repeat(60 * 1024);
    let (st, _) = s.hook("limited", &huge, Some(&acme), json!({})).await;
    assert_eq!(st, 404);
    for i in 0..5 {
        let (st, _) = s.hook(&format!("nope{i}"), "acme", None, json!({})).await;
        assert_eq!(st, 404);
    }

    // A flood of wrong secrets: recorded as a sample, counted in full, then cut off at the
    // source.
    let mut answers = Vec::new();
    for _ in 0..80 {
        answers.push(
            s.hook("listed", "acme", Some("whsec_guess"), json!({}))
                .await
                .0,
        );
    }
    assert!(
        answers.contains(&401) && answers.contains(&429),
        "{answers:?}"
    );
    assert_eq!(
        *answers.last().unwrap(),
        429,
        "the source is cut off: {answers:?}"
    );
    let events = s.events("listed").await;
    assert!(
        !events.is_empty() && events.len() <= 20,
        "a sample of rejections is stored, not each: {}",
        events.len()
    );
    assert!(s.events("limited").await.iter().all(|e| e["org"] == "acme"));
    let unauthorized = s
        .metric("weft_webhook_rejections_total{reason=\"unauthorized\"} ")
        .await;
    assert!(
        unauthorized >= 20.0,
        "every failure is counted: {unauthorized}"
    );
    assert!(
        s.metric("weft_webhook_rejections_total{reason=\"source_limited\"} ")
            .await
            >= 1.0
    );
    assert_eq!(
        s.metric("weft_webhook_rejections_total{reason=\"bad_path\"} ")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("weft_webhook_rejections_total{reason=\"unknown_trigger\"} ")
            .await,
        5.0
    );
    let db = std::fs::read(env.dir.path().join("weft.db")).unwrap_or_default();
    let wal = std::fs::read(env.dir.path().join("weft.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(1024).any(|w| w.iter().all(|b| *b == b'o')),
            "the 60 KB org was stored"
        );
    }

    // Trigger events go with the retention policy.
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(&env.weft(&["executions", "purge", "--older-than", "1s"]));
    assert!(out.contains("trigger event(s)"), "{out}");
    assert!(
        s.events("listed").await.is_empty(),
        "old trigger events are purged"
    );
}

#[tokio::test]
async fn a_stored_workflow_that_no_longer_loads_does_not_take_webhooks_down() {
    let env = env();
    ok(&env.weft(&[
        "deploy",
        env.dir.path().join("wf/walls.yaml").to_str().unwrap(),
    ]));
    // A second workflow whose stored source an older weft wrote and this one cannot read.
    let other = env.write(
        "other.yaml",
        "name: other\ntriggers:\n  - {name: other-hook, type: webhook}\ntasks:\n  a: {action: core.noop}\n",
    );
    ok(&env.weft(&["deploy", other.to_str().unwrap()]));
    {
        use sqlx::ConnectOptions;
        let mut conn = env
            .db
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE workflows SET source = 'name: other\ntasks: 3\n' WHERE name = 'other'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let s = Serve::start(&env);
    let (st, v) = s.hook("open", "msp", None, json!({})).await;
    assert_eq!(st, 202, "the other webhooks still work: {v}");
    let (st, v) = s.hook("other-hook", "msp", None, json!({})).await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = s.send("GET", "/readyz", &[], Vec::new()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["invalid_workflow_count"], 1, "{v}");
    assert!(
        v.get("invalid_workflows").is_none(),
        "names only with the token: {v}"
    );
    let (_, v) = s.api("GET", "/readyz", None).await;
    assert_eq!(v["invalid_workflows"], json!(["other v1"]), "{v}");
}

#[test]
fn validate_warns_about_unauthenticated_webhooks_and_refuses_an_empty_run_for() {
    let env = Env::fresh();
    let file = env.write(
        "hooks.yaml",
        "name: hooks\ntriggers:\n  - name: open\n    type: webhook\n  - name: nobody\n    type: webhook\n    secret: required\n    run_for: []\ntasks:\n  a: {action: core.noop}\n",
    );
    let out = env.weft_no_db(&["validate", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let diags: Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |code: &str| {
        diags
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("no {code}: {diags:#}"))
    };
    let open = find("webhook.unauthenticated");
    assert_eq!(
        (open["severity"].as_str(), open["line"].as_i64()),
        (Some("warning"), Some(3))
    );
    let empty = find("trigger.run_for_empty");
    assert_eq!(
        (empty["severity"].as_str(), empty["line"].as_i64()),
        (Some("error"), Some(8))
    );
    assert_eq!(empty["column"], 14);
}

#[tokio::test]
async fn malformed_input_to_every_public_route_never_panics() {
    let env = env();
    let s = Serve::start(&env);
    let acme = cli_secret(&env, "listed", "acme", &[]);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        deep.into_bytes(),
        b"n=%ZZ&&&=".to_vec(),
        br#"{"n": 1e999999}"#.to_vec(),
        vec![b'a'; 2 * 1024 * 1024],
    ];
    let paths = [
        "/hooks/listed/acme".to_string(),
        "/hooks/listed/acme?x=%FF%FE&y".to_string(),
        "/hooks/%FF%FE/acme".to_string(),
        "/hooks/listed/%00".to_string(),
        "/hooks/listed".to_string(),
        "/hooks/autotask/walls/listed".to_string(),
        "/hooks/autotask/walls/listed/deactivated".to_string(),
        "/hooks/autotask/%FF/x".to_string(),
        format!("/hooks/{}/acme", "t".repeat(10_000)),
        "/healthz".to_string(),
        "/readyz".to_string(),
        "/metrics".to_string(),
        "/api/openapi.json".to_string(),
        "/api/workflows".to_string(),
        "/api/orgs/acme/variables/x".to_string(),
        "/".to_string(),
    ];
    let ctypes = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/json;;charset==;",
    ];
    let mut answered = 0;
    for (n, path) in paths.iter().enumerate() {
        // Each path from its own loopback address, so that the per-source failure limit
        // does not cut the flood short before every route has parsed it.
        let source: std::net::IpAddr = format!("127.0.0.{}", n + 2).parse().unwrap();
        let client = reqwest::Client::builder()
            .local_address(source)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        for (i, body) in bodies.iter().enumerate() {
            let ctype = ctypes[i % ctypes.len()];
            let headers = [
                ("content-type", ctype),
                ("x-weft-secret", acme.as_str()),
                ("x-hook-signature", "not base64 !!"),
            ];
            for method in ["POST", "GET"] {
                let (st, _) = s
                    .send_with(&client, method, path, &headers, body.clone())
                    .await;
                assert!(st < 500 || st == 503 || st == 0, "{method} {path}: {st}");
                answered += 1;
            }
        }
    }
    assert_eq!(answered, paths.len() * bodies.len() * 2);
    // Deploying a webhook that runs for nobody is refused, not a later panic.
    let auth = format!("Bearer {TOKEN}");
    let yaml = "name: nobody\ntriggers:\n  - {name: nobody, type: webhook, run_for: []}\ntasks:\n  a: {action: core.noop}\n";
    let (st, v) = s
        .send(
            "POST",
            "/api/workflows",
            &[("authorization", &auth)],
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(
        (st, &v["error"]["code"]),
        (422, &json!("invalid_workflow")),
        "{v}"
    );
    let (_, v) = s.send("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!(v["status"], "ok", "the server is still up");
    let log = s.stderr();
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
}

/// A size taken from data cannot make a template allocate without bound: `weft eval` and a
/// webhook whose body sets the width both fail cleanly, and the server keeps serving.
#[tokio::test]
async fn a_template_fed_a_huge_size_fails_instead_of_aborting() {
    let env = Env::fresh();
    for template in [
        "{{ 'x' | center(10**12) }}",
        "{{ {'a': 1} | to_nice_json(indent=10**12) }}",
    ] {
        let out = env.weft_no_db(&["eval", template]);
        assert_eq!(out.status.code(), Some(1), "{template}: not an abort");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("larger than the limit"), "{template}: {err}");
    }

    let env = env_with(
        r#"
name: padded
input:
  width: {type: integer, default: 1}
triggers:
  - name: pad
    type: webhook
    secret: required
    run_for: [acme]
    input:
      width: "{{ TRIGGER.body.width }}"
tasks:
  pad:
    action: core.echo
    input: {text: "{{ 'x' | center(CTX.width) }}"}
"#,
    );
    let s = Serve::start(&env);
    let out = ok(&env.weft(&["trigger", "secret", "padded", "pad", "--org", "acme"]));
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("x-weft-secret: "))
        .unwrap()
        .to_string();
    let (st, v) = s
        .hook(
            "pad",
            "acme",
            Some(&secret),
            json!({"width": 1_000_000_000_000_i64}),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let exec = loop {
        let (_, e) = s.api("GET", &format!("/api/executions/{id}"), None).await;
        if e["status"] == "failed" || e["status"] == "succeeded" {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exec["status"], "failed", "{exec}");
    assert!(
        exec["error"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than the limit"),
        "{exec}"
    );
    let (_, v) = s.send("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!(v["status"], "ok", "the server is still up");
}
