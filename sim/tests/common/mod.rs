#![allow(dead_code)]

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use weft_sim::{RunningSim, SimConfig, Simulator};

pub struct T {
    pub sim: RunningSim,
    pub http: Client,
}

pub async fn start() -> T {
    start_with(SimConfig::default()).await
}

pub async fn start_with(config: SimConfig) -> T {
    T {
        sim: Simulator::start_local(config).await,
        http: Client::new(),
    }
}

impl T {
    /// `path` relative to the base URL, e.g. `V1.0/Companies/query`.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.sim.base_url, path))
            .header("ApiIntegrationCode", weft_sim::DEFAULT_INTEGRATION_CODE)
            .header("UserName", weft_sim::DEFAULT_USERNAME)
            .header("Secret", weft_sim::DEFAULT_SECRET)
    }

    pub fn abs(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("ApiIntegrationCode", weft_sim::DEFAULT_INTEGRATION_CODE)
            .header("UserName", weft_sim::DEFAULT_USERNAME)
            .header("Secret", weft_sim::DEFAULT_SECRET)
    }

    pub async fn query(&self, entity: &str, body: Value) -> (u16, Value) {
        send(
            self.req(Method::POST, &format!("V1.0/{entity}/query"))
                .json(&body),
        )
        .await
    }

    /// Ids returned by a filter on one page (MaxRecords 500).
    pub async fn ids(&self, entity: &str, filter: Value) -> Vec<i64> {
        let (s, v) = self.query(entity, json!({ "filter": filter })).await;
        assert_eq!(s, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    }
}

pub async fn send(rb: RequestBuilder) -> (u16, Value) {
    let r: Response = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn errors(v: &Value) -> String {
    v["errors"].to_string()
}
