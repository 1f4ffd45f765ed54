use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use weft_engine::Registry;
use weft_engine::executor::Engine;

use super::*;

async fn app() -> Router {
    let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::new(store, Arc::new(Registry::new()));
    let workers = Workers::new(engine.clone(), 1);
    router(AppState::new(engine, workers, "tok", "http://localhost"))
}

async fn call(app: Router, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::get(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn api_requires_the_bearer_token() {
    let (s, v) = call(app().await, "/api/workflows", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    assert!(v["error"]["message"].is_string());
    let (s, v) = call(app().await, "/api/workflows", Some("Bearer nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["message"], "invalid API token");
    let (s, v) = call(app().await, "/api/workflows", Some("Bearer tok")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!([]));
}

#[tokio::test]
async fn health_is_open_and_errors_have_one_shape() {
    assert_eq!(call(app().await, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(call(app().await, "/readyz", None).await.0, StatusCode::OK);
    let (s, v) = call(app().await, "/api/executions/nope", Some("Bearer tok")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    let (s, v) = call(
        app().await,
        "/api/executions?status=bogus",
        Some("Bearer tok"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "bad_request");
    let (s, v) = call(app().await, "/hooks/none/acme", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
}

#[test]
fn internal_errors_hide_their_detail() {
    let res = ApiError::Internal("secret path /etc/x".into()).into_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        ApiError::Internal("secret".into()).to_string(),
        "internal error"
    );
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

/// An action that answers `{"ok": true}`.
struct Succeeds;

impl weft_engine::Action for Succeeds {
    fn spec(&self) -> weft_engine::ActionSpec {
        weft_engine::ActionSpec {
            name: "test.ok".into(),
            description: "succeeds".into(),
            params: serde_json::json!({"type": "object", "properties": {}}),
            local: true,
        }
    }

    fn call(
        &self,
        _cx: weft_engine::ActionContext,
        _params: Value,
    ) -> weft_engine::action::BoxFuture<'_, Result<Value, weft_engine::ActionError>> {
        Box::pin(async { Ok(serde_json::json!({"ok": true})) })
    }
}

/// A state whose engine reports to its metrics; `metrics_token` guards `/metrics`.
async fn observed_state(metrics_token: Option<&str>) -> AppState {
    let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
    let mut registry = Registry::new();
    registry.register(Succeeds);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(store, Arc::new(registry)).with_observer(metrics.clone());
    let workers = Workers::new(engine.clone(), 1);
    AppState::new(engine, workers, "tok", "http://localhost")
        .with_metrics(metrics)
        .with_metrics_token(metrics_token)
}

async fn send(
    app: Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = app
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_are_open_and_count_a_run() {
    let state = observed_state(None).await;
    let app = router(state.clone());
    let (s, ctype, text) = send(app.clone(), "GET", "/metrics", None, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(text.contains("\nweft_up 1\n"), "{text}");
    assert!(text.contains("weft_build_info{version="));
    assert!(text.contains("\nweft_queue_depth 0\n"), "{text}");

    let wf = "name: counted\ntasks:\n  a:\n    action: test.ok\n";
    let (s, _, body) = send(
        app.clone(),
        "POST",
        "/api/workflows",
        Some("Bearer tok"),
        wf,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = send(
        app.clone(),
        "POST",
        "/api/workflows/counted/run?wait=30s",
        Some("Bearer tok"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let exec: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(exec["status"], "succeeded", "{body}");

    let (_, _, text) = send(app, "GET", "/metrics", None, "").await;
    assert_eq!(
        series(&text, "weft_executions_started_total{workflow=\"counted\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            "weft_executions_finished_total{workflow=\"counted\",status=\"succeeded\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            "weft_execution_duration_seconds_count{workflow=\"counted\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let task = "{workflow=\"counted\",task=\"a\",status=\"succeeded\"";
    assert_eq!(
        series(&text, &format!("weft_task_duration_seconds_count{task}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            &format!("weft_task_duration_seconds_bucket{task},le=\"+Inf\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    // The state hands out the metrics the engine reports to.
    assert!(
        state
            .metrics()
            .render(None)
            .contains("workflow=\"counted\"")
    );
}

#[tokio::test]
async fn metrics_token_guards_metrics_only() {
    let app = router(observed_state(Some("scrape")).await);
    let (s, _, body) = send(app.clone(), "GET", "/metrics", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("\"unauthorized\""), "{body}");
    let (s, _, _) = send(app.clone(), "GET", "/metrics", Some("Bearer tok"), "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, text) = send(app.clone(), "GET", "/metrics", Some("Bearer scrape"), "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.contains("weft_up 1"));
    // The metrics token is not an API token.
    let (s, _, _) = send(app, "GET", "/api/workflows", Some("Bearer scrape"), "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An empty token leaves /metrics open.
    let app = router(observed_state(Some("")).await);
    assert_eq!(
        send(app, "GET", "/metrics", None, "").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn openapi_is_served_without_the_token() {
    let (s, ctype, body) = send(app().await, "GET", "/api/openapi.json", None, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ctype.as_deref(), Some("application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // The rest of /api still needs it.
    let (s, v) = call(app().await, "/api/actions", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = call(app().await, "/api/nope", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

/// The generated document, as JSON.
fn generated() -> Value {
    serde_json::to_value(crate::openapi::document()).expect("the document serializes")
}

#[test]
fn openapi_is_generated_with_typed_answers() {
    let doc = generated();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if let Err(why) = crate::openapi::typed(path, op) {
                panic!("{method} {path}: {why}");
            }
        }
    }
}

#[tokio::test]
async fn every_documented_route_is_routed() {
    let doc = generated();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let uri = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let method = method.to_ascii_uppercase();
            let (s, _, body) = send(app().await, &method, &uri, Some("Bearer tok"), "").await;
            assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no such endpoint"),
                "{method} {path} is documented but not routed: {s} {body}"
            );
        }
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let res = app()
        .await
        .oneshot(
            Request::get("/healthz")
                .header("x-request-id", "req-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-42");
    let res = app()
        .await
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 32, "{generated}");
}

#[test]
fn a_triggers_integration_override_travels_with_its_event() {
    let wf = weft_engine::load(
        "name: w\ntriggers:\n  - name: t\n    type: webhook\n    integration: second-tenant\n  - name: u\n    type: webhook\ntasks:\n  a:\n    action: core.noop\n",
        &weft_actions::registry(),
    )
    .workflow
    .expect("valid");
    let event = serde_json::json!({"type": "webhook"});
    assert_eq!(
        weft_triggers::event::with_integration(&wf.triggers[0], &event)["integration"],
        "second-tenant"
    );
    assert!(
        weft_triggers::event::with_integration(&wf.triggers[1], &event)
            .get("integration")
            .is_none()
    );
}

#[tokio::test]
async fn sync_settings_and_records_through_the_api() {
    let app = app().await;
    let auth = Some("Bearer tok");
    let (s, _, body) = send(app.clone(), "GET", "/api/sync/autotask/settings", auth, "").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["auto_create_clients"], false);
    assert_eq!(v["schedule"], "0 2 * * *");
    let (s, _, body) = send(
        app.clone(),
        "PUT",
        "/api/sync/autotask/settings",
        auth,
        r#"{"auto_create_clients": true, "schedule": "30 3 * * *", "timezone": "Europe/London"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, _, body) = send(app.clone(), "GET", "/api/sync/autotask/settings", auth, "").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["auto_create_clients"].clone(), v["schedule"].clone()),
        (Value::Bool(true), Value::from("30 3 * * *"))
    );
    for bad in [
        r#"{"schedule": "99 * * * *"}"#,
        r#"{"timezone": "Mars/Olympus"}"#,
        r#"{"nope": 1}"#,
    ] {
        let (s, _, body) = send(app.clone(), "PUT", "/api/sync/autotask/settings", auth, bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (s, _, _) = send(
        app.clone(),
        "POST",
        "/api/sync/autotask/company/42/exclude",
        auth,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(
        app.clone(),
        "POST",
        "/api/sync/autotask/widget/42/exclude",
        auth,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No org and no Autotask integration yet: a clear conflict, not a crash.
    let (s, _, body) = send(
        app.clone(),
        "POST",
        "/api/sync/autotask/preview",
        auth,
        "{}",
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("\"code\":\"conflict\""), "{body}");
}

#[test]
fn email_integrations_need_a_host_a_sender_and_a_secret_password() {
    use std::collections::BTreeMap;
    let settings = |pairs: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    };
    let none = BTreeMap::new();
    let err = weft_service::integrations::check_integration(
        "email",
        &settings(&[("host", "smtp.x")]),
        &none,
    )
    .unwrap_err();
    assert!(err.contains("`from`"), "{err}");
    let err = weft_service::integrations::check_integration(
        "email",
        &settings(&[("host", "smtp.x"), ("from", "a@x"), ("password", "p")]),
        &none,
    )
    .unwrap_err();
    assert!(
        err.contains("must be a secret") && !err.contains("\"p\""),
        "{err}"
    );
    let pw = BTreeMap::from([("password".to_string(), "p".to_string())]);
    assert!(
        weft_service::integrations::check_integration(
            "email",
            &settings(&[("host", "smtp.x"), ("from", "a@x")]),
            &pw
        )
        .is_ok()
    );
}

#[tokio::test]
async fn a_webhook_registration_that_failed_is_retried() {
    use weft_engine::integration::{Integration, StaticIntegrations};
    let sim = weft_sim::Simulator::start_local(weft_sim::SimConfig::default()).await;
    let (user, secret, code) = sim.simulator.credentials();
    // No client retries: the first calls of the first sync fail outright.
    let autotask = Integration::new("autotask", "default")
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("discovery_url", sim.base_url.clone())
        .with_setting("max_retries", 0)
        .with_secret("secret", secret);
    sim.simulator.set_failures(weft_sim::FailureConfig {
        error_500_first: 3,
        ..Default::default()
    });
    let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::new(store, Arc::new(weft_actions::registry()))
        .with_integrations(Arc::new(StaticIntegrations::new(vec![autotask])));
    engine
        .deploy(
            "name: w\ntriggers:\n  - name: t\n    type: autotask.ticket\n    events: [create]\ntasks:\n  a:\n    action: core.noop\n",
            None,
        )
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let task = weft_triggers::autotask::keep_in_sync(
        engine,
        "http://127.0.0.1:9".into(),
        std::time::Duration::from_millis(50),
        stop.clone(),
        move |r| {
            seen.lock()
                .unwrap()
                .push(r.map(|r| r.failed.len()).unwrap_or(1))
        },
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sim
        .simulator
        .records("TicketWebhooks")
        .iter()
        .any(|w| w["name"] == "weft: w.t" && w["isActive"] == true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never registered; sync reports (failures each): {:?}",
            reports.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert!(
        reports.lock().unwrap().first().is_some_and(|f| *f > 0),
        "the first sync failed: {:?}",
        reports.lock().unwrap()
    );
}

/// The console's assets: open (no token), typed, revalidated, under a strict CSP.
#[tokio::test]
async fn console_assets_are_served_with_a_strict_policy() {
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let res = app()
            .await
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h["content-type"], ty, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        // The same ETag back: not modified.
        let etag = h["etag"].clone();
        let res = app()
            .await
            .oneshot(
                Request::get(path)
                    .header("if-none-match", etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // The page loads exactly the served assets, with no inline script or style.
    let html = include_str!("../console/index.html");
    assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(html.contains(r#"href="/console/app.css""#));
    assert!(!html.contains("style=") && html.matches("<script").count() == 1);
    // Data reaches the DOM as text only.
    let js = include_str!("../console/app.js");
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
    // Other paths are still the API's JSON 404.
    let (s, v) = call(app().await, "/console/nope.js", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_source_of_a_request_behind_a_trusted_proxy_is_its_forwarded_client() {
    let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let state = observed_state(None).await.with_trusted_proxies(vec![proxy]);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        "203.0.113.9, 198.51.100.7, 10.0.0.1".parse().unwrap(),
    );
    // The nearest hop the proxy did not add itself; a spoofed first entry is ignored.
    assert_eq!(
        state.source(Some(proxy), &headers),
        Some("198.51.100.7".parse().unwrap())
    );
    let direct: std::net::IpAddr = "192.0.2.4".parse().unwrap();
    assert_eq!(state.source(Some(direct), &headers), Some(direct));
    assert_eq!(state.source(None, &headers), None);
}
