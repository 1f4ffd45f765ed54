//! One rule, whoever asks: the same organization and integration operations through the
//! command line and through the API, on one database, end the same way — the same outcome,
//! the same kind of error (CLI exit 2 ⇔ HTTP 422 for a usage error, exit 1 ⇔ 404/409) and the
//! same message.

use std::io::BufRead;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Env;

pub(crate) const TOKEN: &str = "parity-token";

pub(crate) struct Serve {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(env: &Env) -> Serve {
    let mut child = env
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("WEFT_API_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    Serve { child, url }
}

pub(crate) async fn api(s: &Serve, method: &str, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", s.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("weft serve answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The CLI's exit code that matches an HTTP status of a refusal.
fn exit_code_of(status: u16) -> i32 {
    match status {
        422 => 2,
        _ => 1,
    }
}

/// The command and the request refused the same way, with the same message.
pub(crate) fn same_refusal(what: &str, out: &Output, (status, v): (u16, Value)) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status >= 400, "{what}: the API accepted it: {v}");
    assert_eq!(
        out.status.code(),
        Some(exit_code_of(status)),
        "{what}: CLI {stderr} / API {status} {v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && stderr.contains(message),
        "{what}: the same message: CLI {stderr} / API {message}"
    );
}

#[tokio::test]
async fn orgs_and_integrations_are_refused_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    let out = env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]);
    assert!(out.status.success());
    let s = serve(&env);
    let (st, v) = api(
        &s,
        "POST",
        "/api/orgs",
        json!({"name": "Acme", "parent": "msp"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    same_refusal(
        "a taken id",
        &env.weft(&["org", "add", "Acme", "--parent", "msp"]),
        api(
            &s,
            "POST",
            "/api/orgs",
            json!({"name": "Acme", "parent": "msp"}),
        )
        .await,
    );
    same_refusal(
        "an id that is not a slug",
        &env.weft(&["org", "add", "Beta", "--id", "Not A Slug"]),
        api(
            &s,
            "POST",
            "/api/orgs",
            json!({"name": "Beta", "id": "Not A Slug"}),
        )
        .await,
    );
    same_refusal(
        "a parent that does not exist",
        &env.weft(&["org", "add", "Beta", "--parent", "nowhere"]),
        api(
            &s,
            "POST",
            "/api/orgs",
            json!({"name": "Beta", "parent": "nowhere"}),
        )
        .await,
    );
    same_refusal(
        "an unknown integration kind",
        &env.weft(&[
            "integration",
            "add",
            "slak",
            "--org",
            "acme",
            "--set",
            "url=https://x.example/h",
        ]),
        api(
            &s,
            "POST",
            "/api/integrations",
            json!({"kind": "slak", "org": "acme", "settings": {"url": "https://x.example/h"}}),
        )
        .await,
    );
    same_refusal(
        "a teams instance without its URL",
        &env.weft(&["integration", "add", "teams", "--org", "acme"]),
        api(
            &s,
            "POST",
            "/api/integrations",
            json!({"kind": "teams", "org": "acme"}),
        )
        .await,
    );
    same_refusal(
        "an integration of an org that does not exist",
        &env.weft(&[
            "integration",
            "add",
            "teams",
            "--org",
            "nowhere",
            "--set",
            "url=https://x.example/h",
        ]),
        api(
            &s,
            "POST",
            "/api/integrations",
            json!({"kind": "teams", "org": "nowhere", "settings": {"url": "https://x.example/h"}}),
        )
        .await,
    );
    same_refusal(
        "removing an instance that does not exist",
        &env.weft(&["integration", "rm", "teams", "--org", "acme"]),
        api(
            &s,
            "DELETE",
            "/api/integrations/acme/teams/default",
            Value::Null,
        )
        .await,
    );

    same_refusal(
        "a variable name templates cannot read",
        &env.weft(&["org", "var", "set", "acme", "2fast", "1"]),
        api(
            &s,
            "PUT",
            "/api/orgs/acme/variables/2fast",
            json!({"value": 1}),
        )
        .await,
    );
    same_refusal(
        "a variable of an org that does not exist",
        &env.weft(&["org", "var", "set", "nowhere", "queue", "1"]),
        api(
            &s,
            "PUT",
            "/api/orgs/nowhere/variables/queue",
            json!({"value": 1}),
        )
        .await,
    );
    same_refusal(
        "removing a variable the org does not have",
        &env.weft(&["org", "var", "unset", "acme", "queue"]),
        api(&s, "DELETE", "/api/orgs/acme/variables/queue", Value::Null).await,
    );

    // And what one accepts, the other sees.
    let out = env.weft(&[
        "integration",
        "add",
        "teams",
        "--org",
        "acme",
        "--set",
        "url=https://x.example/h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, v) = api(&s, "GET", "/api/integrations?org=acme", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let (st, _) = api(
        &s,
        "DELETE",
        "/api/integrations/acme/teams/default",
        Value::Null,
    )
    .await;
    assert_eq!(st, 200);
    let out = env.weft(&["integration", "list", "--org", "acme"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no integrations"));
}

/// The CLI's `--json` output, parsed.
fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the CLI prints JSON")
}

#[tokio::test]
async fn orgs_are_changed_shown_and_deleted_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    for args in [
        &["org", "add", "BrightPath IT", "--id", "msp"][..],
        &["org", "add", "Acme", "--parent", "msp", "--tag", "vip"],
        &["org", "add", "Acme East", "--parent", "acme"],
        &["org", "var", "set", "msp", "tz", "UTC"],
        &["org", "var", "set", "acme", "key", "hunter2", "--secret"],
    ] {
        let out = env.weft(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = serve(&env);

    same_refusal(
        "a parent below the org (a cycle)",
        &env.weft(&["org", "set-parent", "msp", "acme-east"]),
        api(&s, "PATCH", "/api/orgs/msp", json!({"parent": "acme-east"})).await,
    );
    same_refusal(
        "the org as its own parent",
        &env.weft(&["org", "set-parent", "acme", "Acme"]),
        api(&s, "PATCH", "/api/orgs/acme", json!({"parent": "Acme"})).await,
    );
    same_refusal(
        "a parent that does not exist",
        &env.weft(&["org", "set-parent", "acme", "nowhere"]),
        api(&s, "PATCH", "/api/orgs/acme", json!({"parent": "nowhere"})).await,
    );
    same_refusal(
        "moving an org that does not exist",
        &env.weft(&["org", "set-parent", "nowhere", "--root"]),
        api(&s, "PATCH", "/api/orgs/nowhere", json!({"parent": null})).await,
    );
    same_refusal(
        "deleting an org with children",
        &env.weft(&["org", "rm", "acme"]),
        api(&s, "DELETE", "/api/orgs/acme", Value::Null).await,
    );
    same_refusal(
        "deleting an org that does not exist",
        &env.weft(&["org", "rm", "nowhere"]),
        api(&s, "DELETE", "/api/orgs/nowhere", Value::Null).await,
    );
    same_refusal(
        "a blank integration name",
        &env.weft(&[
            "integration",
            "add",
            "teams",
            "--org",
            "acme",
            "--name",
            " ",
            "--set",
            "url=https://x.example/h",
        ]),
        api(
            &s,
            "POST",
            "/api/integrations",
            json!({"kind": "teams", "org": "acme", "name": " ", "settings": {"url": "https://x.example/h"}}),
        )
        .await,
    );

    // Tags: the CLI edits, the API replaces; both clean them the same way.
    let out = env.weft(&[
        "org", "tag", "acme", "--add", " gold ", "--add", "GOLD", "--remove", "VIP",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, v) = api(&s, "GET", "/api/orgs/acme", Value::Null).await;
    assert_eq!((st, v["tags"].clone()), (200, json!(["gold"])), "{v}");
    let (st, v) = api(
        &s,
        "PATCH",
        "/api/orgs/acme",
        json!({"tags": ["a", " A ", ""]}),
    )
    .await;
    assert_eq!((st, v["tags"].clone()), (200, json!(["a"])), "{v}");

    // A move either way is seen by the other; what they show is the same document.
    let out = env.weft(&["org", "set-parent", "acme-east", "msp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, v) = api(
        &s,
        "PATCH",
        "/api/orgs/acme-east",
        json!({"parent": "acme"}),
    )
    .await;
    assert_eq!((st, v["parent_id"].clone()), (200, json!("acme")), "{v}");
    let (st, api_detail) = api(&s, "GET", "/api/orgs/acme-east", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(
        json_of(&env.weft(&["org", "show", "acme-east", "--json"])),
        api_detail
    );
    assert!(!api_detail.to_string().contains("hunter2"));
    let (_, api_list) = api(&s, "GET", "/api/orgs", Value::Null).await;
    assert_eq!(json_of(&env.weft(&["org", "list", "--json"])), api_list);
    let (_, api_vars) = api(&s, "GET", "/api/orgs/acme-east/variables", Value::Null).await;
    assert_eq!(
        json_of(&env.weft(&["org", "var", "list", "acme-east", "--json"])),
        api_vars
    );

    // Deleted by one, gone for the other.
    let out = env.weft(&["org", "rm", "acme-east"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, _) = api(&s, "GET", "/api/orgs/acme-east", Value::Null).await;
    assert_eq!(st, 404);
    let (st, v) = api(&s, "DELETE", "/api/orgs/acme", Value::Null).await;
    assert_eq!((st, v), (200, json!({"deleted": "acme"})));
    let out = env.weft(&["org", "show", "acme"]);
    assert_eq!(out.status.code(), Some(1));
}
