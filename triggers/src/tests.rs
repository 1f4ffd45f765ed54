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
    router(AppState::new(
        engine,
        workers,
        "tok",
        None,
        "http://localhost",
    ))
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
