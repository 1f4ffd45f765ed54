//! Org mapping end to end against the Autotask simulator: `weft mapping suggest` pairs orgs
//! and seeded companies by name (exact, or only once case and whitespace are ignored),
//! `apply` stores the pairs, exclusions are remembered, `create-unmatched --company-type
//! Customer` creates orgs only for customers, `set`/`unset` by hand; and `weft serve` runs an
//! Autotask ticket event for the org mapped to the ticket's company, and a webhook trigger
//! with `run_for: all_managed` once per managed org.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::Env;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_engine::store::{OrgMapping, OrgRecord};
use weft_sim::{RunningSim, SimConfig, Simulator, WebhookConfig};

fn integrations_yaml(sim: &RunningSim) -> String {
    let creds = SimConfig::default();
    format!(
        "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n    secrets:\n      secret: {}\n",
        creds.username, creds.integration_code, sim.base_url, creds.secret
    )
}

fn org(id: &str, name: &str, parent: Option<&str>) -> OrgRecord {
    OrgRecord {
        id: id.into(),
        name: name.into(),
        parent_id: parent.map(str::to_string),
        tags: vec![],
        attributes: json!({}),
        active: true,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// Registers orgs (and mappings) straight in the store.
async fn seed(db: &str, orgs: &[OrgRecord], mappings: &[(&str, i64)]) {
    let store = weft_engine::store::open(db).await.expect("store");
    for o in orgs {
        store.save_org(o).await.expect("save org");
    }
    for (o, c) in mappings {
        store
            .set_mapping(&OrgMapping {
                org_id: (*o).into(),
                kind: "autotask".into(),
                external_id: c.to_string(),
                external_name: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .expect("mapping");
    }
}

fn mapping(env: &Env, args: &[&str]) -> Output {
    let mut all = vec!["mapping"];
    all.extend_from_slice(args);
    all.extend(["--integrations", "integrations.yaml"]);
    env.weft(&all)
}

fn ok_json(env: &Env, args: &[&str]) -> Value {
    let out = mapping(env, args);
    assert!(
        out.status.success(),
        "weft mapping {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from {args:?} ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn ids(list: &Value, key: &str) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c[key].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggest_apply_exclude_create_unmatched_set_and_unset() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let env = Env::new();
    env.write("integrations.yaml", &integrations_yaml(&sim));
    seed(
        &env.db,
        &[
            org("msp", "Weft Test MSP", None),
            org("acme-dental", "Acme Dental", Some("msp")),
            org("summit", "SUMMIT law group", Some("msp")),
            org("cedar", "  Cedar   Logistics ", Some("msp")),
            org("nowhere", "Nowhere Co", Some("msp")),
        ],
        &[],
    )
    .await;

    // Suggest: one exact match, two by case/whitespace only; nothing stored.
    let s = ok_json(&env, &["suggest", "autotask", "--json"]);
    let matched: Vec<(String, i64, bool)> = s["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["org"]["id"].as_str().unwrap().to_string(),
                m["company"]["id"].as_i64().unwrap(),
                m["exact"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            ("acme-dental".to_string(), 174, true),
            ("cedar".to_string(), 189, false),
            ("summit".to_string(), 177, false),
        ],
        "{s}"
    );
    let unmatched_orgs: Vec<&str> = s["unmatched_orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(unmatched_orgs.contains(&"nowhere") && unmatched_orgs.contains(&"msp"));
    let companies = ids(&s["unmatched_companies"], "id");
    assert!(companies.contains(&180) && !companies.contains(&174));
    assert!(!companies.contains(&225), "inactive companies are left out");
    let text = mapping(&env, &["suggest", "autotask"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("case/whitespace") && text.contains("exact"),
        "{text}"
    );

    // Inactive companies on request; a company type by label; usage errors exit 2.
    let s = ok_json(
        &env,
        &["suggest", "autotask", "--include-inactive", "--json"],
    );
    assert!(ids(&s["unmatched_companies"], "id").contains(&225));
    let s = ok_json(
        &env,
        &[
            "suggest",
            "autotask",
            "--company-type",
            "prospect",
            "--json",
        ],
    );
    assert_eq!(
        ids(&s["unmatched_companies"], "id"),
        vec![252, 258, 264, 261, 255],
        "by name"
    );
    assert!(s["matched"].as_array().unwrap().is_empty());
    let s = ok_json(
        &env,
        &[
            "suggest",
            "autotask",
            "--company-type",
            "1",
            "--filter",
            "eq:city:Denver",
            "--json",
        ],
    );
    let denver: Vec<i64> = ids(&s["unmatched_companies"], "id");
    assert_eq!(denver, vec![246, 198, 222], "{s}");
    assert_eq!(s["matched"][0]["company"]["id"], 174);
    let bad = mapping(&env, &["suggest", "autotask", "--company-type", "Martian"]);
    assert_eq!(code(&bad), 2, "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Customer"));
    let bad = mapping(&env, &["suggest", "autotask", "--filter", "like:city:x"]);
    assert_eq!(code(&bad), 2, "{}", String::from_utf8_lossy(&bad.stderr));

    // Exclude is remembered: not suggested again.
    let out = mapping(&env, &["exclude", "180"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = ok_json(&env, &["suggest", "autotask", "--json"]);
    assert!(!ids(&s["unmatched_companies"], "id").contains(&180));
    assert_eq!(ids(&s["excluded"], "company_id"), vec![180]);
    assert_eq!(s["excluded"][0]["company_name"], "Riverbend Manufacturing");
    assert_eq!(code(&mapping(&env, &["exclude", "999999"])), 1);

    // Apply stores the three suggestions.
    let a = ok_json(&env, &["apply", "autotask", "--json"]);
    assert_eq!(a["mapped"].as_array().unwrap().len(), 3, "{a}");
    let l = ok_json(&env, &["list", "--json"]);
    let mut mapped: Vec<(String, i64)> = l["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["org"]["id"].as_str().unwrap().to_string(),
                m["company_id"].as_i64().unwrap(),
            )
        })
        .collect();
    mapped.sort();
    assert_eq!(
        mapped,
        vec![
            ("acme-dental".to_string(), 174),
            ("cedar".to_string(), 189),
            ("summit".to_string(), 177)
        ]
    );
    assert!(l["matched"][0]["company_name"].is_string());
    assert_eq!(ids(&l["excluded"], "company_id"), vec![180]);
    let s = ok_json(&env, &["suggest", "autotask", "--json"]);
    assert!(s["matched"].as_array().unwrap().is_empty(), "{s}");
    assert_eq!(s["already_mapped"].as_array().unwrap().len(), 3);

    // By hand: a company mapped elsewhere is refused; an unknown one too.
    let out = mapping(&env, &["set", "nowhere", "174"]);
    assert_eq!(code(&out), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("acme-dental"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code(&mapping(&env, &["set", "nowhere", "999999"])), 1);
    assert_eq!(code(&mapping(&env, &["set", "ghost-org", "183"])), 1);
    let out = mapping(&env, &["set", "nowhere", "183"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Bluebird Accounting"));
    let l = ok_json(&env, &["list", "--json"]);
    assert_eq!(l["matched"].as_array().unwrap().len(), 4);
    assert!(mapping(&env, &["unset", "nowhere"]).status.success());
    assert_eq!(code(&mapping(&env, &["unset", "nowhere"])), 1);

    // Create orgs for the unmatched customers: not for the excluded one, not for others.
    let dry = ok_json(
        &env,
        &[
            "create-unmatched",
            "--company-type",
            "Customer",
            "--dry-run",
            "--json",
        ],
    );
    let c = ok_json(
        &env,
        &["create-unmatched", "--company-type", "Customer", "--json"],
    );
    assert_eq!(dry["created"].as_array().unwrap().len(), 22, "{dry}");
    let created = c["created"].as_array().unwrap();
    assert_eq!(created.len(), 22, "{c}");
    assert!(
        created
            .iter()
            .all(|x| x["company"]["company_type"] == 1 && x["company"]["id"] != 180)
    );
    let bluebird = created
        .iter()
        .find(|x| x["company"]["id"] == 183)
        .expect("Bluebird got an org");
    assert_eq!(bluebird["org"]["id"], "bluebird-accounting");
    let store = weft_engine::store::open(&env.db).await.unwrap();
    let o = store.org("bluebird-accounting").await.unwrap();
    assert_eq!(o.parent_id.as_deref(), Some("msp"));
    assert_eq!(o.attributes["city"], "Portland");
    assert_eq!(o.attributes["companyType"], 1);
    drop(store);
    let l = ok_json(&env, &["list", "--company-type", "Customer", "--json"]);
    assert!(
        l["unmatched_companies"].as_array().unwrap().is_empty(),
        "{l}"
    );
    let l = ok_json(&env, &["list", "--json"]);
    assert!(
        ids(&l["unmatched_companies"], "id").contains(&252),
        "prospects were not created"
    );
    // Nothing left to create; lifting the exclusion offers the company again.
    let again = ok_json(
        &env,
        &["create-unmatched", "--company-type", "Customer", "--json"],
    );
    assert!(again["created"].as_array().unwrap().is_empty());
    assert!(mapping(&env, &["include", "180"]).status.success());
    assert_eq!(code(&mapping(&env, &["include", "180"])), 1);
    let s = ok_json(&env, &["suggest", "autotask", "--json"]);
    assert!(ids(&s["unmatched_companies"], "id").contains(&180));
}

// --- weft serve: Autotask events run for the mapped org; all_managed --------------------

const TOKEN: &str = "weft_test_token_mapping";

const TICKETS: &str = r#"
name: ticket_org
input:
  ticket_id: {type: integer}
triggers:
  - name: org_tickets
    type: autotask.ticket
    events: [create]
    fields: [title]
    input:
      ticket_id: "{{ TRIGGER.id }}"
tasks:
  note:
    action: core.echo
    input:
      text: "ticket {{ CTX.ticket_id }}"
"#;

const FANOUT: &str = r#"
name: fanout
triggers:
  - name: every_client
    type: webhook
    secret: required
    run_for: all_managed
tasks:
  hello:
    action: core.echo
    input:
      text: "hi"
"#;

struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: &str) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
        .arg(dir.join("wf"))
        .arg("--integrations")
        .arg(dir.join("integrations.yaml"))
        .args(["--database", db])
        .env("WEFT_API_TOKEN", TOKEN)
        .env_remove("WEFT_PUBLIC_URL")
        .env_remove("WEFT_INTEGRATIONS")
        .env_remove("WEFT_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft serve starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening on http://") {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("weft serve prints its address");
    Serve { child, addr }
}

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
        let mut s = rest;
        let mut body = String::new();
        while let Some((size, r)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            body.push_str(&r[..n]);
            s = r[n..].trim_start_matches("\r\n");
        }
        body
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&rest).unwrap_or(Value::Null))
}

async fn api(s: &Serve, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    http(
        &s.addr,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

async fn new_ticket(sim: &RunningSim, company: i64, title: &str) -> i64 {
    let base = sim.base_url.trim_start_matches("http://");
    let (host, prefix) = base.split_once('/').unwrap();
    let body =
        json!({"companyID": company, "title": title, "status": 1, "priority": 2}).to_string();
    let (s, v) = http(
        host,
        "POST",
        &format!("/{prefix}V1.0/Tickets"),
        &[
            ("content-type", "application/json"),
            ("ApiIntegrationCode", weft_sim::DEFAULT_INTEGRATION_CODE),
            ("UserName", weft_sim::DEFAULT_USERNAME),
            ("Secret", weft_sim::DEFAULT_SECRET),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["itemId"].as_i64().unwrap()
}

async fn wait_for<T>(what: &str, deadline: Instant, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn executions(s: &Serve, workflow: &str) -> Vec<Value> {
    let (status, v) = api(
        s,
        "GET",
        &format!("/api/executions?workflow={workflow}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ticket_events_run_for_the_mapped_org_and_all_managed_webhooks_for_the_urls_client() {
    let deadline = Instant::now() + Duration::from_secs(30);
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
    std::fs::write(dir.path().join("wf/ticket_org.yaml"), TICKETS).unwrap();
    std::fs::write(dir.path().join("wf/fanout.yaml"), FANOUT).unwrap();
    std::fs::write(
        dir.path().join("integrations.yaml"),
        integrations_yaml(&sim),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("weft.db").display());
    seed(
        &db,
        &[
            org("msp", "Weft Test MSP", None),
            org("acme-dental", "Acme Dental", Some("msp")),
            org("summit", "Summit Law Group", Some("msp")),
        ],
        &[("acme-dental", 174)],
    )
    .await;
    let serve = serve(dir.path(), &db);

    // all_managed: any managed org's URL runs once, for that org, with that org's secret
    // (the root is not managed; one client's secret does nothing for another).
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "trigger",
            "secret",
            "fanout",
            "every_client",
            "--org",
            "acme-dental",
        ])
        .args(["--database", &db])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("x-weft-secret: "))
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();
    let with = [("x-weft-secret", secret.as_str())];
    let (s, v) = http(&serve.addr, "POST", "/hooks/every_client/msp", &with, b"").await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = http(
        &serve.addr,
        "POST",
        "/hooks/every_client/summit",
        &with,
        b"",
    )
    .await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = http(
        &serve.addr,
        "POST",
        "/hooks/every_client/acme-dental",
        &with,
        b"",
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["ids"].as_array().unwrap().len(), 1, "{v}");
    let orgs: Vec<String> = executions(&serve, "fanout")
        .await
        .iter()
        .map(|e| e["org"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orgs, vec!["acme-dental"]);

    // A ticket of a mapped company runs for its org; an unmapped one for the owner.
    wait_for("the webhook registration", deadline, async || {
        sim.simulator
            .records("TicketWebhooks")
            .into_iter()
            .any(|w| {
                w["name"] == "weft: ticket_org.org_tickets"
                    && w["isReady"] == true
                    && w["isActive"] == true
            })
            .then_some(())
    })
    .await;
    let mapped = new_ticket(&sim, 174, "mapped ticket").await;
    let unmapped = new_ticket(&sim, 177, "unmapped ticket").await;
    let list = wait_for("both executions", deadline, async || {
        let list = executions(&serve, "ticket_org").await;
        (list.len() >= 2).then_some(list)
    })
    .await;
    let of = |tid: i64| {
        list.iter()
            .find(|e| e["trigger"]["id"] == tid)
            .unwrap_or_else(|| panic!("no execution for ticket {tid}: {list:?}"))
            .clone()
    };
    let m = of(mapped);
    assert_eq!(m["org"], "acme-dental", "{m}");
    assert_eq!(m["trigger"]["company_id"], 174);
    assert_eq!(m["trigger"]["mapped"], true);
    assert_eq!(m["trigger"]["org"], "acme-dental");
    let u = of(unmapped);
    // Unmapped: the MSP's own org (the one root), whose integration registered the webhook.
    assert_eq!(u["org"], "msp", "{u}");
    assert_eq!(u["trigger"]["company_id"], 177);
    assert_eq!(u["trigger"]["mapped"], false);

    // The mapping API answers too.
    let (s, v) = api(
        &serve,
        "GET",
        "/api/mapping/autotask?company_type=Customer",
        "",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"][0]["org"]["id"], "acme-dental");
    let (s, v) = api(&serve, "GET", "/api/mapping/autotask/suggestions", "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"][0]["org"]["id"], "summit", "{v}");
    let (s, v) = api(
        &serve,
        "PUT",
        "/api/mapping/autotask/summit",
        r#"{"company_id": 174}"#,
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api(&serve, "POST", "/api/mapping/autotask/apply", "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mapped"][0]["company"]["id"], 177, "{v}");
    let (s, v) = api(
        &serve,
        "POST",
        "/api/mapping/autotask/exclusions",
        r#"{"company_id": 180}"#,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api(&serve, "DELETE", "/api/mapping/autotask/exclusions/180", "").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api(&serve, "DELETE", "/api/mapping/autotask/summit", "").await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api(&serve, "DELETE", "/api/mapping/autotask/summit", "").await;
    assert_eq!(s, 404);
    let (s, v) = api(
        &serve,
        "POST",
        "/api/mapping/autotask/create-unmatched",
        r#"{"company_type": 8, "dry_run": true}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["company"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["BrightPath IT Services", "Timberline Dental"],
        "{v}"
    );
}

/// One rule for linking and excluding companies, whoever asks: `weft mapping`, `weft sync
/// autotask` and both of their API routes refuse to move a company that is linked to another
/// org, and refuse to exclude a linked one — with the same kind of error (CLI exit 1, HTTP
/// 409) — and leave the link as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_and_excluding_a_company_follow_one_rule_from_the_cli_and_the_api() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wf")).unwrap();
    std::fs::write(
        dir.path().join("integrations.yaml"),
        integrations_yaml(&sim),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("weft.db").display());
    seed(
        &db,
        &[
            org("msp", "Weft Test MSP", None),
            org("acme-dental", "Acme Dental", Some("msp")),
            org("summit", "Summit Law Group", Some("msp")),
        ],
        &[("acme-dental", 174)],
    )
    .await;
    let serve = serve(dir.path(), &db);
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .args(["--database", &db])
            .arg("--integrations")
            .arg(dir.path().join("integrations.yaml"))
            .output()
            .unwrap()
    };
    let refused = |out: &Output, what: &str| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(code(out), 1, "{what}: {err}");
        assert!(
            err.contains("acme-dental"),
            "{what} names the linked org: {err}"
        );
    };

    // Moving company 174 to summit: refused by every caller.
    refused(&cli(&["mapping", "set", "summit", "174"]), "mapping set");
    refused(
        &cli(&["sync", "autotask", "match", "company", "174", "summit"]),
        "sync match",
    );
    let (st, v) = api(
        &serve,
        "PUT",
        "/api/mapping/autotask/summit",
        r#"{"company_id": 174}"#,
    )
    .await;
    assert_eq!((st, &v["error"]["code"]), (409, &json!("conflict")), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acme-dental"),
        "{v}"
    );

    // Excluding the linked company: refused by every caller.
    refused(&cli(&["mapping", "exclude", "174"]), "mapping exclude");
    refused(
        &cli(&["sync", "autotask", "exclude", "company", "174"]),
        "sync exclude",
    );
    let (st, v) = api(
        &serve,
        "POST",
        "/api/mapping/autotask/exclusions",
        r#"{"company_id": 174}"#,
    )
    .await;
    assert_eq!((st, &v["error"]["code"]), (409, &json!("conflict")), "{v}");
    let (st, v) = api(&serve, "POST", "/api/sync/autotask/company/174/exclude", "").await;
    assert_eq!((st, &v["error"]["code"]), (409, &json!("conflict")), "{v}");

    // Nothing moved, nothing excluded.
    let store = weft_engine::store::open(&db).await.unwrap();
    let links: Vec<(String, String)> = store
        .mappings("autotask")
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.org_id, m.external_id))
        .collect();
    assert_eq!(links, vec![("acme-dental".to_string(), "174".to_string())]);
    assert!(store.exclusions("autotask").await.unwrap().is_empty());

    // Unlinked on purpose, the same company is matched by either caller.
    let out = cli(&["mapping", "unset", "acme-dental"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["sync", "autotask", "match", "company", "174", "summit"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
}
