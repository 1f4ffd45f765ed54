//! `http.request` against a real HTTP server started in-process on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weft_engine::action::{BoxFuture, OrgRef, SubWorkflows, SystemClock};
use weft_engine::{Action, ActionContext, ActionError, ActionErrorKind};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";
/// base64("alice:s3cret-pw")
const BASIC: &str = "Basic YWxpY2U6czNjcmV0LXB3";
const TOKEN: &str = "tok-9f8e7d6c";

// ---------------------------------------------------------------------------------------------
// The test server

/// Everything about the request, as JSON.
async fn echo(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let hdrs: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
        .collect();
    let text = String::from_utf8_lossy(&body).into_owned();
    let json_body = serde_json::from_slice::<Value>(&body).ok();
    (
        [("x-Custom-Thing", "v1")],
        axum::Json(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": query,
            "headers": hdrs,
            "body": text,
            "json": json_body,
            "peer_port": peer.port(),
        })),
    )
        .into_response()
}

/// Minimal form decoding (`+` and `%XX`), enough for the tests.
fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// 200 when the Authorization header carries the expected credentials, else 401.
async fn protected(headers: HeaderMap) -> Response {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v == BASIC => axum::Json(json!({"user": USER})).into_response(),
        Some(v) if v == format!("Bearer {TOKEN}") => {
            axum::Json(json!({"user": "token"})).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, "who are you?").into_response(),
    }
}

async fn text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "hello, world",
    )
        .into_response()
}

/// JSON text without a JSON content type.
async fn untyped_json() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "{\"a\": [1, 2]}").into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"error": "nope", "code": code})),
    )
        .into_response()
}

async fn slow(Path(ms): Path<u64>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "finally".into_response()
}

/// `n` bytes of `a`.
async fn big(Path(n): Path<usize>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "a".repeat(n)).into_response()
}

/// Starts the server; returns its base URL.
async fn server() -> String {
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route("/protected", any(protected))
        .route("/text", any(text))
        .route("/untyped-json", any(untyped_json))
        .route("/status/{code}", any(status))
        .route("/slow/{ms}", any(slow))
        .route("/big/{n}", any(big));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// A URL on which nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Calling the action

struct EchoWorkflows;

impl SubWorkflows for EchoWorkflows {
    fn run_child<'a>(
        &'a self,
        _parent: &'a ActionContext,
        workflow: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move { Ok(json!({"workflow": workflow, "input": input})) })
    }
}

fn context() -> ActionContext {
    ActionContext {
        execution_id: "exec-http".into(),
        task: "call_api".into(),
        item_index: None,
        attempt: 1,
        org: OrgRef {
            id: "org-1".into(),
            name: "Test MSP".into(),
        },
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        workflows: Arc::new(EchoWorkflows),
        integrations: Arc::new(weft_engine::integration::StaticIntegrations::default()),
        integration_override: None,
    }
}

fn action() -> Arc<dyn Action> {
    weft_actions::registry()
        .action("http.request")
        .expect("http.request is runnable")
}

async fn request(params: Value) -> Result<Value, ActionError> {
    action().call(context(), params).await
}

fn assert_no_secrets(text: &str) {
    for secret in [
        PASSWORD,
        TOKEN,
        "YWxpY2U6czNjcmV0LXB3",
        "Authorization",
        "authorization",
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked into: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn get_sends_query_and_headers() {
    let base = server().await;
    let out = request(json!({
        "url": format!("{base}/echo?keep=1"),
        "query": {"q": "a b&c", "n": 5, "f": 2.5, "t": true, "skip": null, "ids": [1, 2]},
        "headers": {"X-Test": "yes", "X-Num": 7, "Accept": "application/json"},
    }))
    .await
    .unwrap();
    assert_eq!(out["status"], 200);
    let echoed = &out["json"];
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/echo");
    assert_eq!(
        echoed["query"],
        json!([
            ["keep", "1"],
            ["q", "a b&c"],
            ["n", "5"],
            ["f", "2.5"],
            ["t", "true"],
            ["ids", "1"],
            ["ids", "2"]
        ])
    );
    assert_eq!(echoed["headers"]["x-test"], "yes");
    assert_eq!(echoed["headers"]["x-num"], "7");
    assert!(
        echoed["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("weft/")
    );
    // Response header names are lowercase.
    assert_eq!(out["headers"]["x-custom-thing"], "v1");
    assert!(
        out["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(out.get("text").is_none(), "{out}");
    assert!(out.get("truncated").is_none(), "{out}");
}

#[tokio::test]
async fn post_json_body() {
    let base = server().await;
    let body = json!({"title": "Printer on fire", "priority": 1, "tags": ["hw"]});
    let out =
        request(json!({"method": "POST", "url": format!("{base}/echo/tickets"), "json": body}))
            .await
            .unwrap();
    let echoed = &out["json"];
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/tickets");
    assert_eq!(echoed["headers"]["content-type"], "application/json");
    assert_eq!(echoed["json"], body);
}

#[tokio::test]
async fn raw_body_is_sent_as_is() {
    let base = server().await;
    let out = request(json!({
        "method": "PUT",
        "url": format!("{base}/echo"),
        "body": "name=weft&x=1",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }))
    .await
    .unwrap();
    let echoed = &out["json"];
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["body"], "name=weft&x=1");
    assert_eq!(
        echoed["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );

    // A content type given in headers wins over json's default.
    let out = request(json!({
        "method": "PATCH",
        "url": format!("{base}/echo"),
        "json": [1],
        "headers": {"content-type": "application/merge-patch+json"},
    }))
    .await
    .unwrap();
    assert_eq!(
        out["json"]["headers"]["content-type"],
        "application/merge-patch+json"
    );
    assert_eq!(out["json"]["json"], json!([1]));
}

#[tokio::test]
async fn json_and_body_together_are_refused() {
    let err = request(json!({"url": "http://127.0.0.1:9/", "json": {}, "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::InvalidParams);
    assert!(err.message.contains("not both"), "{}", err.message);
}

#[tokio::test]
async fn basic_auth() {
    let base = server().await;
    let out = request(json!({
        "url": format!("{base}/protected"),
        "auth": {"username": USER, "password": PASSWORD},
    }))
    .await
    .unwrap();
    assert_eq!(out["json"], json!({"user": "alice"}));

    // Credentials in the URL work too, and a wrong password is a 401 failure.
    let url = format!("{base}/protected").replace("http://", "http://alice:s3cret-pw@");
    let out = request(json!({ "url": url })).await.unwrap();
    assert_eq!(out["status"], 200);

    let err = request(json!({
        "url": format!("{base}/protected"),
        "auth": {"username": USER, "password": "wrong-pw"},
    }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Failed);
    assert_eq!(err.data.as_ref().unwrap()["status"], 401);
    assert!(!err.message.contains("wrong-pw"), "{}", err.message);
}

#[tokio::test]
async fn bearer_auth() {
    let base = server().await;
    let out = request(json!({"url": format!("{base}/protected"), "auth": {"bearer": TOKEN}}))
        .await
        .unwrap();
    assert_eq!(out["json"], json!({"user": "token"}));

    // The same through a header.
    let out = request(json!({
        "url": format!("{base}/protected"),
        "headers": {"Authorization": format!("Bearer {TOKEN}")},
    }))
    .await
    .unwrap();
    assert_eq!(out["status"], 200);

    let err = request(json!({"url": format!("{base}/protected")}))
        .await
        .unwrap_err();
    assert_eq!(err.data.as_ref().unwrap()["status"], 401);
}

#[tokio::test]
async fn text_and_json_responses() {
    let base = server().await;
    let out = request(json!({"url": format!("{base}/text")}))
        .await
        .unwrap();
    assert_eq!(out["text"], "hello, world");
    assert!(out.get("json").is_none(), "{out}");

    let out = request(json!({"url": format!("{base}/untyped-json")}))
        .await
        .unwrap();
    assert_eq!(out["json"], json!({"a": [1, 2]}), "{out}");

    let out = request(json!({"method": "HEAD", "url": format!("{base}/text")}))
        .await
        .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["text"], "");
}

#[tokio::test]
async fn non_2xx_fails_with_the_response_as_data() {
    let base = server().await;
    let err = request(json!({
        "method": "POST",
        "url": format!("{base}/status/404?api_key=k-123"),
        "json": {"x": 1},
    }))
    .await
    .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Failed);
    assert_eq!(
        err.message,
        format!("POST {base}/status/404 → 404 Not Found")
    );
    let data = err.data.expect("data");
    assert_eq!(data["status"], 404);
    assert_eq!(data["json"], json!({"error": "nope", "code": 404}));
    assert!(data["headers"]["content-type"].is_string(), "{data}");

    let err = request(json!({"url": format!("{base}/status/503")}))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!("GET {base}/status/503 → 503 Service Unavailable")
    );
    assert_eq!(err.to_json()["kind"], "failed");
}

#[tokio::test]
async fn allow_error_status_succeeds() {
    let base = server().await;
    let out = request(json!({"url": format!("{base}/status/404"), "allow_error_status": true}))
        .await
        .unwrap();
    assert_eq!(out["status"], 404);
    assert_eq!(out["json"]["error"], "nope");
}

#[tokio::test]
async fn timeout_fails_with_kind_timeout() {
    let base = server().await;
    let start = Instant::now();
    let err = request(json!({"url": format!("{base}/slow/5000"), "timeout": "200ms"}))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind, ActionErrorKind::Timeout, "{}", err.message);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        err.message,
        format!("GET {base}/slow/5000 timed out after 200ms")
    );

    // A fast answer within the limit is fine.
    let out = request(json!({"url": format!("{base}/slow/10"), "timeout": 5}))
        .await
        .unwrap();
    assert_eq!(out["text"], "finally");

    let err = request(json!({"url": format!("{base}/slow/10"), "timeout": "soon"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::InvalidParams);
}

#[tokio::test]
async fn cancellation_stops_the_request() {
    let base = server().await;
    let cx = context();
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let start = Instant::now();
    let err = action()
        .call(cx, json!({"url": format!("{base}/slow/10000")}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Cancelled, "{}", err.message);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(err.message.contains("cancelled"), "{}", err.message);
}

#[tokio::test]
async fn only_http_and_https_urls() {
    for url in [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "example.com/x",
        "",
    ] {
        let err = request(json!({ "url": url })).await.unwrap_err();
        assert_eq!(
            err.kind,
            ActionErrorKind::InvalidParams,
            "{url}: {}",
            err.message
        );
        assert!(err.message.contains("`url`"), "{url}: {}", err.message);
    }
    let err = request(json!({"url": "ftp://bob:pw-in-url@example.com/"}))
        .await
        .unwrap_err();
    assert!(!err.message.contains("pw-in-url"), "{}", err.message);
    assert!(
        err.message.contains("http:// or https://"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn bodies_are_capped_at_one_mib() {
    let base = server().await;
    let max = weft_actions::http::MAX_BODY;
    let out = request(json!({"url": format!("{base}/big/{}", 2 * max)}))
        .await
        .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["text"].as_str().unwrap().len(), max);
    assert_eq!(out["truncated"], true);

    let out = request(json!({"url": format!("{base}/big/{max}")}))
        .await
        .unwrap();
    assert_eq!(out["text"].as_str().unwrap().len(), max);
    assert!(out.get("truncated").is_none());
}

#[tokio::test]
async fn connection_errors_never_show_credentials() {
    let base = closed_port_url().await;
    let host = base.trim_start_matches("http://");
    for params in [
        json!({"url": format!("{base}/x?token={TOKEN}"), "auth": {"username": USER, "password": PASSWORD}}),
        json!({"method": "POST", "url": format!("{base}/x"), "auth": {"bearer": TOKEN}, "json": {}}),
        json!({"url": format!("{base}/x"), "headers": {"Authorization": format!("Bearer {TOKEN}")}}),
        json!({"url": format!("http://{USER}:{PASSWORD}@{host}/x")}),
    ] {
        let err = request(params.clone()).await.unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::Failed, "{params}");
        assert!(
            err.message.contains(host),
            "the message names the URL: {}",
            err.message
        );
        assert!(
            err.message.to_lowercase().contains("refused") || err.message.contains("connect"),
            "the message says why: {}",
            err.message
        );
        assert_no_secrets(&err.message);
        assert_no_secrets(&err.to_json().to_string());
    }
}

#[tokio::test]
async fn one_client_is_shared_across_calls() {
    let base = server().await;
    let action = action();
    let a = action
        .call(context(), json!({"url": format!("{base}/echo")}))
        .await
        .unwrap();
    let b = action
        .call(context(), json!({"url": format!("{base}/echo")}))
        .await
        .unwrap();
    // The second call reuses the pooled connection: same client port.
    assert_eq!(a["json"]["peer_port"], b["json"]["peer_port"]);
}
