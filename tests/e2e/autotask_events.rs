//! Autotask event triggers end to end: the real `weft serve` registers an Autotask webhook in
//! the simulator, the simulator's signed callout for a new ticket starts one execution,
//! replays are duplicates, tampered signatures are rejected and recorded, an unchanged
//! restart writes nothing to Autotask, and a redeploy without the trigger deletes the webhook.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_sim::{RunningSim, SimConfig, Simulator, WebhookConfig};

const TOKEN: &str = "weft_test_token_autotask_events";
const WF: &str = "ticket_intake";
const TRIGGER: &str = "new_tickets";

const WORKFLOW: &str = r#"
name: ticket_intake
input:
  ticket_id: {type: integer}
triggers:
  - name: new_tickets
    type: autotask.ticket
    events: [create]
    fields: [status, priority, title]
    input:
      ticket_id: "{{ TRIGGER.id }}"
tasks:
  note:
    action: core.echo
    input:
      text: "ticket {{ CTX.ticket_id }}"
output:
  ticket: "{{ CTX.ticket_id }}"
"#;

const WORKFLOW_WITHOUT_TRIGGER: &str = r#"
name: ticket_intake
input:
  ticket_id: {type: integer, default: 0}
tasks:
  note:
    action: core.echo
    input:
      text: "ticket {{ CTX.ticket_id }}"
"#;

struct Serve {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `weft serve` on a free port; `public_url` is passed as `--public-url`.
    fn start(dir: &Path, public_url: Option<&str>) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(url) = public_url {
            cmd.args(["--public-url", url]);
        }
        let mut child = cmd
            .arg("--workflows")
            .arg(dir.join("wf"))
            .arg("--integrations")
            .arg(dir.join("integrations.yaml"))
            .arg("--database")
            .arg(format!("sqlite://{}", dir.join("weft.db").display()))
            .env("WEFT_API_TOKEN", TOKEN)
            .env_remove("WEFT_PUBLIC_URL")
            .env_remove("WEFT_INTEGRATIONS")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("weft serve starts");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(a.to_string());
                }
                l.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("weft serve prints its address");
        Serve { child, addr, lines }
    }

    fn saw(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the status and the JSON body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out[9..12].parse().unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap();
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&rest).unwrap_or(Value::Null))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

async fn api(s: &Serve, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    http(
        &s.addr,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/yaml"),
        ],
        body.as_bytes(),
    )
    .await
}

/// A call to the simulator's REST API with its default credentials.
async fn sim_api(sim: &RunningSim, method: &str, path: &str, body: Value) -> (u16, Value) {
    let base = sim.base_url.trim_start_matches("http://");
    let (host, prefix) = base.split_once('/').unwrap();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    http(
        host,
        method,
        &format!("/{prefix}{path}"),
        &[
            ("content-type", "application/json"),
            ("ApiIntegrationCode", weft_sim::DEFAULT_INTEGRATION_CODE),
            ("UserName", weft_sim::DEFAULT_USERNAME),
            ("Secret", weft_sim::DEFAULT_SECRET),
        ],
        &body,
    )
    .await
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn webhooks(sim: &RunningSim) -> Vec<Value> {
    sim.simulator
        .records("TicketWebhooks")
        .into_iter()
        .filter(|w| w["name"] == format!("weft: {WF}.{TRIGGER}"))
        .collect()
}

/// `{field name → id}` of the TicketWebhookFields.fieldID picklist.
async fn field_ids(sim: &RunningSim) -> std::collections::HashMap<String, i64> {
    let (s, v) = sim_api(
        sim,
        "GET",
        "V1.0/TicketWebhookFields/entityInformation/fields",
        Value::Null,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fieldID")
        .unwrap()["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn executions(s: &Serve) -> Vec<Value> {
    let (status, v) = api(s, "GET", &format!("/api/executions?workflow={WF}"), "").await;
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

async fn events(s: &Serve) -> Vec<Value> {
    let (status, v) = api(
        s,
        "GET",
        &format!("/api/triggers/{WF}/{TRIGGER}/events"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn autotask_ticket_trigger_registers_receives_dedupes_and_unregisters() {
    let sim = Simulator::start_local(SimConfig {
        webhooks: WebhookConfig {
            retry_delay: Duration::from_millis(200),
            attempts: 3,
            ..WebhookConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wf")).unwrap();
    std::fs::write(dir.path().join("wf/ticket_intake.yaml"), WORKFLOW).unwrap();
    let creds = SimConfig::default();
    std::fs::write(
        dir.path().join("integrations.yaml"),
        format!(
            "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n    secrets:\n      secret: {}\n",
            creds.username, creds.integration_code, sim.base_url, creds.secret
        ),
    )
    .unwrap();

    // 1. `weft serve` registers the webhook, with its fields.
    let serve = Serve::start(dir.path(), None);
    // Active once its fields exist and weft stored it.
    let hook = wait_for(
        "the webhook registration",
        Duration::from_secs(20),
        async || webhooks(&sim).pop().filter(|w| w["isActive"] == true),
    )
    .await;
    let hook_url = format!("http://{}/hooks/autotask/{WF}/{TRIGGER}", serve.addr);
    assert_eq!(hook["webhookUrl"], hook_url.as_str());
    assert_eq!(hook["deactivationUrl"], format!("{hook_url}/deactivated"));
    assert_eq!(hook["isActive"], true);
    assert_eq!(hook["isSubscribedToCreateEvents"], true);
    assert_eq!(hook["isSubscribedToUpdateEvents"], false);
    assert_eq!(hook["isSubscribedToDeleteEvents"], false);
    let key = hook["secretKey"].as_str().unwrap();
    assert!(key.len() >= 32);
    // weft keeps the callout secret sealed: its database never holds it in clear.
    for file in ["weft.db", "weft.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the Autotask callout secret is stored in clear in {file}"
        );
    }
    let wid = hook["id"].as_i64().unwrap();
    let ids = field_ids(&sim).await;
    let fields = wait_for(
        "the webhook's fields",
        Duration::from_secs(10),
        async || {
            let f: Vec<Value> = sim
                .simulator
                .records("TicketWebhookFields")
                .into_iter()
                .filter(|f| f["webhookID"] == wid)
                .collect();
            (f.len() >= 3 && webhooks(&sim)[0]["isReady"] == true).then_some(f)
        },
    )
    .await;
    let subscribed: std::collections::BTreeSet<i64> = fields
        .iter()
        .filter(|f| f["isSubscribedField"] == true)
        .map(|f| f["fieldID"].as_i64().unwrap())
        .collect();
    let want: std::collections::BTreeSet<i64> = ["status", "priority", "title"]
        .iter()
        .map(|n| ids[*n])
        .collect();
    assert_eq!(subscribed, want, "{fields:?}");
    let always: Vec<i64> = fields
        .iter()
        .filter(|f| f["isDisplayAlwaysField"] == true)
        .map(|f| f["fieldID"].as_i64().unwrap())
        .collect();
    assert!(always.contains(&ids["id"]), "{fields:?}");
    wait_for("the created line", Duration::from_secs(10), async || {
        serve.saw("autotask webhook created").then_some(())
    })
    .await;

    // 2. A new ticket: the simulator's signed callout starts exactly one execution.
    let title = "Printer & <scanner> café";
    let (s, v) = sim_api(
        &sim,
        "POST",
        "V1.0/Tickets",
        json!({"companyID": 174, "title": title, "status": 1, "priority": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let tid = v["itemId"].as_i64().unwrap();
    let exec = wait_for("the execution", Duration::from_secs(20), async || {
        let list = executions(&serve).await;
        list.iter().find(|e| e["status"] == "succeeded").cloned()
    })
    .await;
    assert_eq!(executions(&serve).await.len(), 1);
    assert_eq!(exec["input"]["ticket_id"], tid);
    assert_eq!(exec["output"]["ticket"], tid);
    let trigger = &exec["trigger"];
    assert_eq!(trigger["type"], "autotask.ticket");
    assert_eq!(trigger["action"], "create");
    assert_eq!(trigger["id"], tid);
    assert_eq!(trigger["fields"]["Title"], title, "{trigger}");
    assert_eq!(trigger["body"]["Id"], tid);
    assert_eq!(trigger["guid"], hook["webhookGUID"]);
    assert!(trigger["headers"].get("x-hook-signature").is_none());

    // 3. The same callout again (Autotask retries): a duplicate, nothing started.
    let delivery = sim
        .simulator
        .webhook_deliveries()
        .into_iter()
        .find(|d| d.webhook_id == wid && d.status == Some(202))
        .expect("the callout was delivered");
    assert!(
        delivery.body.contains("\\u0026"),
        "the simulator escapes like .NET: {}",
        delivery.body
    );
    let path = format!("/hooks/autotask/{WF}/{TRIGGER}");
    let (s, v) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &delivery.signature),
        ],
        delivery.body.as_bytes(),
    )
    .await;
    assert_eq!((s, &v), (200, &json!({"duplicate": true})));

    // 4. A tampered signature (or none): 401, recorded as rejected; nothing started.
    let mut bad = delivery.signature.clone();
    bad.replace_range(5..9, if &bad[5..9] == "AAAA" { "BBBB" } else { "AAAA" });
    let (s, v) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &bad),
        ],
        delivery.body.as_bytes(),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = http(
        &serve.addr,
        "POST",
        &path,
        &[("content-type", "application/json")],
        delivery.body.as_bytes(),
    )
    .await;
    assert_eq!(s, 401);
    // A body changed after signing fails too.
    let forged = delivery.body.replace("\"Create\"", "\"Delete\"");
    let (s, _) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &delivery.signature),
        ],
        forged.as_bytes(),
    )
    .await;
    assert_eq!(s, 401);
    let evs = events(&serve).await;
    let rejected = evs
        .iter()
        .filter(|e| e["outcome"] == "rejected" && e["status"] == 401)
        .count();
    assert_eq!(rejected, 3, "{evs:?}");
    let accepted: Vec<&Value> = evs.iter().filter(|e| e["outcome"] == "accepted").collect();
    assert_eq!(accepted.len(), 1, "{evs:?}");
    assert_eq!(accepted[0]["kind"], "autotask");
    assert_eq!(accepted[0]["execution_id"], exec["id"]);
    // An action the trigger does not subscribe to (signed with the webhook's secret): 200,
    // filtered; its replay is a duplicate.
    let secret = hook["secretKey"].as_str().unwrap();
    let update = json!({"Action": "Update", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
        "Id": tid, "Fields": {"Status": "5"}, "EventTime": "2026-01-01T00:00:00Z",
        "SequenceNumber": 9999, "PersonID": null})
    .to_string();
    let sig = weft_triggers::autotask::signature(secret, update.as_bytes());
    for expected in [json!({"accepted": false}), json!({"duplicate": true})] {
        let (s, v) = http(
            &serve.addr,
            "POST",
            &path,
            &[
                ("content-type", "application/json"),
                ("x-hook-signature", &sig),
            ],
            update.as_bytes(),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        for (k, want) in expected.as_object().unwrap() {
            assert_eq!(&v[k], want, "{v}");
        }
    }
    // A callout whose inputs cannot fit the workflow: retrying cannot help, so it is answered
    // 200 (Autotask would retry and finally deactivate the webhook) and recorded as rejected.
    let odd = json!({"Action": "Create", "Guid": hook["webhookGUID"], "EntityType": "Ticket",
        "Id": "not-a-number", "Fields": {}, "EventTime": "2026-01-01T00:00:00Z",
        "SequenceNumber": 10000, "PersonID": null})
    .to_string();
    let sig = weft_triggers::autotask::signature(secret, odd.as_bytes());
    let (s, v) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &sig),
        ],
        odd.as_bytes(),
    )
    .await;
    assert_eq!((s, &v["accepted"]), (200, &json!(false)), "{v}");
    let evs = events(&serve).await;
    assert!(
        evs.iter()
            .any(|e| e["outcome"] == "rejected" && e["status"] == 200),
        "{evs:?}"
    );
    // Autotask's deactivation notice: 200, logged and recorded.
    let notice = json!({"Action": "Deactivated", "Guid": hook["webhookGUID"]}).to_string();
    let (s, _) = http(
        &serve.addr,
        "POST",
        &format!("{path}/deactivated"),
        &[("content-type", "application/json")],
        notice.as_bytes(),
    )
    .await;
    assert_eq!(s, 200);
    let evs = events(&serve).await;
    assert_eq!(
        evs.iter().filter(|e| e["outcome"] == "filtered").count(),
        1,
        "{evs:?}"
    );
    assert!(
        evs.iter().any(
            |e| e["outcome"] == "rejected" && e["reason"] == "Autotask deactivated the webhook"
        ),
        "{evs:?}"
    );
    // A body over 1 MiB: 413.
    let big = vec![b' '; 1024 * 1024 + 10];
    let (s, _) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &delivery.signature),
        ],
        &big,
    )
    .await;
    assert_eq!(s, 413);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(executions(&serve).await.len(), 1);

    // 5. A restart with nothing changed (the same public URL, through `--public-url`)
    // checks the webhook but writes nothing to Autotask.
    let public = format!("http://{}", serve.addr);
    drop(serve);
    sim.simulator.clear_request_log();
    let serve = Serve::start(dir.path(), Some(&public));
    wait_for("the existence check", Duration::from_secs(20), async || {
        sim.simulator
            .request_log()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains(&format!("TicketWebhooks/{wid}")))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: Vec<String> = sim
        .simulator
        .request_log()
        .iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/query"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(webhooks(&sim).len(), 1);
    assert_eq!(webhooks(&sim)[0]["id"], wid);

    // 6. A redeploy without the trigger deletes the webhook; its callouts are then refused.
    let (s, v) = api(&serve, "POST", "/api/workflows", WORKFLOW_WITHOUT_TRIGGER).await;
    assert_eq!(s, 200, "{v}");
    wait_for(
        "the webhook deletion",
        Duration::from_secs(20),
        async || webhooks(&sim).is_empty().then_some(()),
    )
    .await;
    let (s, _) = http(
        &serve.addr,
        "POST",
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hook-signature", &delivery.signature),
        ],
        delivery.body.as_bytes(),
    )
    .await;
    assert_eq!(s, 404);

    // 7. `weft deploy` into the running server's database brings the trigger back (the
    // server notices the new version), and switching the trigger off deletes it again.
    let deployed = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("deploy")
        .arg(dir.path().join("wf/ticket_intake.yaml"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.path().join("weft.db").display()))
        .output()
        .unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    wait_for(
        "the webhook registration after `weft deploy`",
        Duration::from_secs(30),
        async || webhooks(&sim).pop().filter(|w| w["isActive"] == true),
    )
    .await;
    let (s, v) = api(
        &serve,
        "POST",
        &format!("/api/triggers/{WF}/{TRIGGER}/disable"),
        "",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_for(
        "the webhook deletion after the trigger is switched off",
        Duration::from_secs(30),
        async || webhooks(&sim).is_empty().then_some(()),
    )
    .await;
    drop(serve);
    sim.shutdown().await;
}
