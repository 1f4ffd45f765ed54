//! Redirects never hand credentials to another origin: `http.request`, `openai.chat`,
//! `notify.*` and the Autotask client against two servers on 127.0.0.1 (two ports: two
//! origins).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use weft_engine::integration::Integration;
use weft_engine::{ActionError, ActionErrorKind};

mod common;
use common::{call, context_with as context};

const API_KEY: &str = "key-5e1f0c2b9a";
const TOKEN: &str = "tok-77c1d2e3f4";
const QUERY_KEY: &str = "qk-0a9b8c7d";

// ---------------------------------------------------------------------------------------------
// The servers

/// Every request a server received: `{method, path, query, headers, body}`.
type Seen = Arc<Mutex<Vec<Value>>>;

fn record(seen: &Seen, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Value {
    let hdrs: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
        .collect();
    let v = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": hdrs,
        "body": String::from_utf8_lossy(body),
    });
    seen.lock().unwrap().push(v.clone());
    v
}

/// Echoes the request as JSON.
async fn echo(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    axum::Json(record(&seen, &method, &uri, &headers, &body)).into_response()
}

/// `/to/{code}/{port}/{rest}?{query}` → `{code}` with `Location:
/// http://127.0.0.1:{port}/{rest}?{query}`.
async fn to(
    State(seen): State<Seen>,
    Path((code, port, rest)): Path<(u16, u16, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&seen, &method, &uri, &headers, &body);
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    (
        StatusCode::from_u16(code).unwrap(),
        [(
            header::LOCATION,
            format!("http://127.0.0.1:{port}/{rest}{query}"),
        )],
    )
        .into_response()
}

/// Redirects to itself forever (recording each request, so the hops can be counted).
async fn looping(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&seen, &method, &uri, &headers, &body);
    (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response()
}

struct Server {
    base: String,
    port: u16,
    seen: Seen,
}

impl Server {
    async fn start() -> Server {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .route("/to/{code}/{port}/{*rest}", any(to))
            .route("/loop", any(looping))
            .fallback(echo)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base: format!("http://{addr}"),
            port: addr.port(),
            seen,
        }
    }

    /// A URL on this server that answers `code` pointing to `target`'s `path`.
    fn redirect(&self, code: u16, target: &Server, path: &str) -> String {
        format!(
            "{}/to/{code}/{}/{}",
            self.base,
            target.port,
            path.trim_start_matches('/')
        )
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Calling actions

async fn request(params: Value) -> Result<Value, ActionError> {
    call(&context(vec![]), "http.request", params).await
}

/// Headers carrying credentials, and a custom one.
fn secret_headers() -> Value {
    json!({
        "X-Api-Key": API_KEY,
        "Cookie": "session=abc123",
        "X-Custom": "custom-value",
        "Accept": "application/json",
    })
}

fn assert_clean(text: &str) {
    for s in [API_KEY, TOKEN, QUERY_KEY, "session=abc123"] {
        assert!(!text.contains(s), "`{s}` leaked into: {text}");
    }
}

fn error_text(e: &ActionError) -> String {
    format!("{} {}", e.message, e.data.clone().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// http.request

#[tokio::test]
async fn same_origin_redirects_are_followed_with_every_header() {
    let a = Server::start().await;
    let out = request(json!({
        "url": a.redirect(302, &a, &format!("/final?api_key={QUERY_KEY}")),
        "headers": secret_headers(),
        "auth": {"bearer": TOKEN},
    }))
    .await
    .unwrap();
    assert_eq!(out["status"], 200, "{out}");
    let j = &out["json"];
    assert_eq!(j["path"], "/final", "{out}");
    assert_eq!(j["query"], format!("api_key={QUERY_KEY}"));
    assert_eq!(j["headers"]["x-api-key"], API_KEY);
    assert_eq!(j["headers"]["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(j["headers"]["x-custom"], "custom-value");
    assert!(j["headers"].get("referer").is_none(), "{out}");
    assert_eq!(a.seen().len(), 2);

    // 307 keeps the method and the body; 303 turns a POST into a GET without a body.
    let out = request(json!({
        "method": "POST",
        "url": a.redirect(307, &a, "/kept"),
        "json": {"n": 1},
        "auth": {"username": "alice", "password": "pw-1234567"},
    }))
    .await
    .unwrap();
    let j = &out["json"];
    assert_eq!(
        (&j["method"], &j["path"], &j["body"]),
        (&json!("POST"), &json!("/kept"), &json!("{\"n\":1}"))
    );
    assert_eq!(j["headers"]["content-type"], "application/json");
    assert!(
        j["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let out = request(json!({
        "method": "POST",
        "url": a.redirect(303, &a, "/got"),
        "json": {"n": 1},
    }))
    .await
    .unwrap();
    let j = &out["json"];
    assert_eq!((&j["method"], &j["body"]), (&json!("GET"), &json!("")));
    assert!(j["headers"].get("content-type").is_none(), "{out}");
}

#[tokio::test]
async fn cross_origin_redirects_are_refused_by_default() {
    let a = Server::start().await;
    let b = Server::start().await;
    let err = request(json!({
        "url": a.redirect(302, &b, &format!("/stolen?api_key={QUERY_KEY}")),
        "headers": secret_headers(),
        "auth": {"bearer": TOKEN},
    }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Failed);
    assert_eq!(
        err.message,
        format!(
            "http.request: the server redirected to http://127.0.0.1:{}/… (another origin); set follow_redirects: any to follow it",
            b.port
        )
    );
    assert_eq!(err.data.as_ref().unwrap()["status"], 302);
    assert_clean(&error_text(&err));
    assert!(b.seen().is_empty(), "{:#?}", b.seen());
}

#[tokio::test]
async fn with_any_the_other_origin_gets_no_credentials_and_no_query() {
    let a = Server::start().await;
    let b = Server::start().await;
    let out = request(json!({
        "url": a.redirect(302, &b, &format!("/landing?api_key={QUERY_KEY}")),
        "headers": secret_headers(),
        "auth": {"bearer": TOKEN},
        "follow_redirects": "any",
    }))
    .await
    .unwrap();
    assert_eq!(out["status"], 200, "{out}");
    let seen = b.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let got = &seen[0];
    assert_eq!(got["path"], "/landing");
    assert_eq!(got["query"], Value::Null, "no query string: {got}");
    let headers = got["headers"].as_object().unwrap();
    for h in [
        "x-api-key",
        "authorization",
        "cookie",
        "x-custom",
        "referer",
    ] {
        assert!(
            !headers.contains_key(h),
            "`{h}` reached the other origin: {got}"
        );
    }
    assert_eq!(headers["accept"], "application/json");
    assert!(headers.contains_key("user-agent"));
    assert_clean(&got.to_string());

    // A 307 keeps the method and the body (with its content type), still without credentials;
    // back on the first origin, the credentials stay dropped.
    let back = format!("to/307/{}/home?x=1", a.port);
    let out = request(json!({
        "method": "PUT",
        "url": a.redirect(307, &b, &back),
        "headers": secret_headers(),
        "auth": {"username": "alice", "password": "pw-1234567"},
        "json": {"k": "v"},
        "follow_redirects": "any",
    }))
    .await
    .unwrap();
    let j = &out["json"];
    assert_eq!(
        (&j["method"], &j["path"], &j["body"]),
        (&json!("PUT"), &json!("/home"), &json!("{\"k\":\"v\"}")),
        "{out}"
    );
    assert_eq!(j["query"], Value::Null);
    assert_eq!(j["headers"]["content-type"], "application/json");
    for h in ["x-api-key", "authorization", "cookie", "x-custom"] {
        assert!(j["headers"].get(h).is_none(), "`{h}` came back: {out}");
    }
    assert!(!b.seen()[1]["headers"].to_string().contains("pw-1234567"));
}

#[tokio::test]
async fn none_returns_the_redirect_itself() {
    let a = Server::start().await;
    let b = Server::start().await;
    let target = a.redirect(302, &b, "/x");
    let out = request(json!({
        "url": target,
        "follow_redirects": "none",
        "allow_error_status": true,
    }))
    .await
    .unwrap();
    assert_eq!(out["status"], 302);
    assert_eq!(
        out["headers"]["location"],
        format!("http://127.0.0.1:{}/x", b.port)
    );
    // Without allow_error_status, a 3xx fails like any non-2xx status.
    let err = request(json!({"url": a.redirect(301, &a, "/x"), "follow_redirects": "none"}))
        .await
        .unwrap_err();
    assert!(err.message.contains("301"), "{}", err.message);
    assert!(b.seen().is_empty());
    assert_eq!(
        a.seen().len(),
        2,
        "the same-origin target was not requested"
    );
}

#[tokio::test]
async fn redirect_loops_stop_after_ten() {
    let a = Server::start().await;
    let err = request(json!({"url": format!("{}/loop", a.base)}))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("stopped after 10 redirects"),
        "{}",
        err.message
    );
    assert_eq!(
        a.seen().len(),
        11,
        "the first request and ten redirects, then it stops"
    );
}

#[tokio::test]
async fn the_parameter_is_validated() {
    let err = request(json!({"url": "http://127.0.0.1:9/", "follow_redirects": "all"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::InvalidParams, "{}", err.message);
}

// ---------------------------------------------------------------------------------------------
// openai, notify, autotask: same origin only

#[tokio::test]
async fn openai_never_sends_its_key_elsewhere() {
    let a = Server::start().await;
    let b = Server::start().await;
    for azure in [false, true] {
        let mut i = Integration::new("openai", "default")
            .with_setting("base_url", a.redirect(307, &b, "/v1"))
            .with_setting("model", "gpt-4o-mini")
            .with_secret("api_key", API_KEY);
        if azure {
            i = i
                .with_setting("azure", true)
                .with_setting("api_version", "2024-06-01");
        }
        let err = call(&context(vec![i]), "openai.chat", json!({"prompt": "hi"}))
            .await
            .unwrap_err();
        assert!(err.message.contains("another origin"), "{}", err.message);
        let data = err.data.clone().unwrap();
        assert_eq!(data["error_kind"], "redirect", "{data}");
        assert_eq!(data["retryable"], false, "{data}");
        assert_clean(&error_text(&err));
    }
    assert!(b.seen().is_empty(), "{:#?}", b.seen());
    assert_eq!(a.seen().len(), 2);
}

#[tokio::test]
async fn webhooks_are_not_posted_to_another_origin() {
    let a = Server::start().await;
    let b = Server::start().await;
    let hook = a.redirect(308, &b, "/hooks/T000/B000/XXXXSECRET");
    for (action, kind) in [("notify.teams", "teams"), ("notify.slack", "slack")] {
        let cx = context(vec![
            Integration::new(kind, "default").with_setting("url", hook.clone()),
        ]);
        let err = call(&cx, action, json!({"text": "hello"}))
            .await
            .unwrap_err();
        assert!(err.message.contains("another origin"), "{}", err.message);
        assert!(!error_text(&err).contains("XXXXSECRET"), "{}", err.message);
    }
    assert!(b.seen().is_empty(), "{:#?}", b.seen());
    // A redirect within the webhook's origin is followed.
    let cx = context(vec![
        Integration::new("teams", "default").with_setting("url", a.redirect(308, &a, "/hook")),
    ]);
    let out = call(&cx, "notify.teams", json!({"text": "hello"}))
        .await
        .unwrap();
    assert_eq!(out["delivered"], true);
    let last = a.seen().pop().unwrap();
    assert_eq!(
        (&last["method"], &last["path"]),
        (&json!("POST"), &json!("/hook"))
    );
}

#[tokio::test]
async fn autotask_credentials_stay_on_the_zone() {
    let a = Server::start().await;
    let b = Server::start().await;
    let code = "CODE-REDIRECT-0123456789";
    let integration = Integration::new("autotask", "default")
        .with_setting("username", "api@example.test")
        .with_setting("integration_code", code)
        .with_setting("zone_url", a.redirect(307, &b, "/ATServicesRest/"))
        .with_setting("max_retries", 0)
        // Only the actions' own requests are counted below.
        .with_setting("threshold_check", 0)
        .with_secret("secret", API_KEY);
    let cx = context(vec![integration.clone()]);
    for (action, params) in [
        ("autotask.get_ticket", json!({"id": 1})),
        (
            "autotask.picklist",
            json!({"entity": "Tickets", "field": "queueID"}),
        ),
    ] {
        let err = call(&cx, action, params).await.unwrap_err();
        assert!(
            err.message.contains("another origin"),
            "{action}: {}",
            err.message
        );
        let text = error_text(&err);
        assert!(!text.contains(code), "{text}");
        assert_clean(&text);
    }
    // Zone discovery and VersionInformation too.
    let discovery = integration
        .clone()
        .with_setting("zone_url", Value::Null)
        .with_setting("discovery_url", a.redirect(302, &b, "/ATServicesRest/"));
    let client = weft_actions::autotask::Client::from_integration(&discovery).unwrap();
    let err = client.zone().await.unwrap_err();
    assert!(err.message.contains("another origin"), "{}", err.message);
    let err = client.version_info().await.unwrap_err();
    assert!(err.message.contains("another origin"), "{}", err.message);
    assert!(b.seen().is_empty(), "{:#?}", b.seen());
    let seen = a.seen();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert_eq!(
        seen[0]["headers"]["secret"], API_KEY,
        "sent to the zone itself"
    );
}
