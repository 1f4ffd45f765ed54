//! The client against an Autotask implementation that differs from weft's simulator in ways
//! the real service and other fakes do: PascalCase response keys, and next pages that must
//! be fetched with GET (a POST to them answers 405).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weft_engine::action::{BoxFuture, OrgRef, SubWorkflows, SystemClock};
use weft_engine::integration::{Integration, StaticIntegrations};
use weft_engine::{ActionContext, ActionError};

struct NoWorkflows;

impl SubWorkflows for NoWorkflows {
    fn run_child<'a>(
        &'a self,
        _p: &'a ActionContext,
        _w: &'a str,
        _i: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async { Err(ActionError::failed("no sub-workflows here")) })
    }
}

#[derive(Clone)]
struct Fake {
    base: Arc<String>,
}

fn company(id: i64) -> Value {
    json!({"id": id, "companyName": format!("Company {id}")})
}

async fn zone(State(f): State<Fake>) -> impl IntoResponse {
    axum::Json(json!({"ZoneName": "Fake", "Url": *f.base, "WebUrl": "https://fake/", "CI": 1}))
}

async fn first_page(State(f): State<Fake>) -> impl IntoResponse {
    axum::Json(json!({
        "Items": [company(1), company(2)],
        "PageDetails": {"Count": 2, "RequestCount": 500, "PrevPageUrl": null,
                        "NextPageUrl": format!("{}V1.0/Companies/query/next?paging=2", f.base)}
    }))
}

async fn next_page_post() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(
            json!({"Message": "The requested resource does not support http method 'POST'."}),
        ),
    )
}

async fn next_page_get(
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    assert_eq!(q.get("paging").map(String::as_str), Some("2"));
    axum::Json(json!({"Items": [company(3)], "PageDetails": {"Count": 1, "NextPageUrl": null}}))
}

async fn create() -> impl IntoResponse {
    axum::Json(json!({"ItemId": 42}))
}

async fn get_one() -> impl IntoResponse {
    axum::Json(json!({"Item": company(42)}))
}

async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/ATServicesRest/", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/ATServicesRest/v1.0/zoneInformation", get(zone))
        .route("/ATServicesRest/V1.0/Companies/query", post(first_page))
        .route(
            "/ATServicesRest/V1.0/Companies/query/next",
            post(next_page_post).get(next_page_get),
        )
        .route("/ATServicesRest/V1.0/Companies", post(create))
        .route("/ATServicesRest/V1.0/Companies/42", get(get_one))
        .with_state(Fake {
            base: Arc::new(base.clone()),
        });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn context(base: &str) -> ActionContext {
    let integration = Integration::new("autotask", "default")
        .with_setting("username", "api@fake.test")
        .with_setting("integration_code", "FAKECODE")
        .with_setting("discovery_url", base.trim_end_matches('/'))
        .with_secret("secret", "fake-secret");
    ActionContext {
        execution_id: "exec".into(),
        task: "task".into(),
        item_index: None,
        attempt: 1,
        org: OrgRef {
            id: "o".into(),
            name: "Org".into(),
        },
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        workflows: Arc::new(NoWorkflows),
        integrations: Arc::new(StaticIntegrations::new(vec![integration])),
        integration_override: None,
    }
}

async fn call(cx: &ActionContext, name: &str, params: Value) -> Result<Value, ActionError> {
    weft_actions::registry()
        .action(name)
        .unwrap()
        .call(cx.clone(), params)
        .await
}

#[tokio::test]
async fn pascal_case_responses_and_get_only_next_pages_are_understood() {
    let base = start().await;
    let cx = context(&base);
    let listed = call(&cx, "autotask.list_companies", json!({}))
        .await
        .unwrap();
    let ids: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let created = call(&cx, "autotask.create_company", json!({"fields": {"companyName": "New", "companyType": 1, "phone": "1", "ownerResourceID": 1}})).await.unwrap();
    assert_eq!(created["id"], 42);
    assert_eq!(created["item"]["companyName"], "Company 42");
}
