//! Outbound webhook callouts: subscription, fields, exclusions, signature, retries.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use weft_sim::{SimConfig, WebhookConfig};

type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver(status: u16) -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |h: HeaderMap, b: Bytes| {
        let g = g.clone();
        async move {
            g.lock().unwrap().push((h, b));
            StatusCode::from_u16(status).unwrap()
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

async fn wait_for(got: &Got, n: usize) {
    for _ in 0..200 {
        if got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} callouts, got {}", got.lock().unwrap().len());
}

async fn field_id(t: &T, entity: &str, name: &str) -> i64 {
    let (_, v) = send(t.req(
        Method::GET,
        &format!("V1.0/{entity}WebhookFields/entityInformation/fields"),
    ))
    .await;
    let f = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fieldID")
        .unwrap();
    f["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == name)
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn ticket_callouts_are_signed_and_follow_subscriptions() {
    let t = start().await;
    let (url, got) = receiver(200).await;
    let (s, v) = send(t.req(Method::POST, "V1.0/TicketWebhooks").json(&json!({
        "name":"test","webhookUrl":url,"deactivationUrl":url,"secretKey":"s3cret","isActive":true,
        "isSubscribedToCreateEvents":true,"isSubscribedToUpdateEvents":true,"isSubscribedToDeleteEvents":false
    }))).await;
    assert_eq!(s, 200, "{v}");
    let wid = v["itemId"].as_i64().unwrap();
    for (name, sub, always) in [
        ("status", true, false),
        ("title", true, false),
        ("ticketNumber", false, true),
    ] {
        let fid = field_id(&t, "Ticket", name).await;
        let (s, v) = send(
            t.req(Method::POST, &format!("V1.0/TicketWebhooks/{wid}/Fields"))
                .json(&json!({
            "fieldID":fid,"isSubscribedField":sub,"isDisplayAlwaysField":always})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    // create
    let (s, v) = send(t.req(Method::POST, "V1.0/Tickets").json(&json!({
        "companyID":174,"title":"Printer & <scanner> café","status":1,"priority":2})))
    .await;
    assert_eq!(s, 200, "{v}");
    let tid = v["itemId"].as_i64().unwrap();
    wait_for(&got, 1).await;
    // update of a subscribed field
    send(
        t.req(Method::PATCH, "V1.0/Tickets")
            .json(&json!({"id":tid,"status":8})),
    )
    .await;
    wait_for(&got, 2).await;
    // update of an unsubscribed field: no callout
    send(
        t.req(Method::PATCH, "V1.0/Tickets")
            .json(&json!({"id":tid,"description":"x"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls = got.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    for (h, body) in &calls {
        let sig = h["x-hook-signature"].to_str().unwrap();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let want = format!(
            "sha1={}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(sig, want);
    }
    let raw = std::str::from_utf8(&calls[0].1).unwrap();
    assert!(
        raw.contains("\\u0026") && raw.contains("\\u003c") && raw.contains("\\u00e9"),
        "{raw}"
    );
    let create: Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(create["Action"], "Create");
    assert_eq!(create["EntityType"], "Ticket");
    assert_eq!(create["Id"], tid);
    assert_eq!(create["Fields"]["Title"], "Printer & <scanner> café");
    assert_eq!(create["Fields"]["Status"], "1");
    assert!(create["Fields"]["TicketNumber"].is_string());
    assert_eq!(create["PersonID"], 29682905);
    let update: Value = serde_json::from_slice(&calls[1].1).unwrap();
    assert_eq!(update["Action"], "Update");
    assert_eq!(
        update["Fields"],
        json!({"Status":"8","TicketNumber":create["Fields"]["TicketNumber"]})
    );
    assert!(update["SequenceNumber"].as_u64() > create["SequenceNumber"].as_u64());
    let guid = send(t.req(Method::GET, &format!("V1.0/TicketWebhooks/{wid}")))
        .await
        .1["item"]["webhookGUID"]
        .clone();
    assert_eq!(create["Guid"], guid);

    // an excluded resource causes no callout
    send(
        t.req(
            Method::POST,
            &format!("V1.0/TicketWebhooks/{wid}/ExcludedResources"),
        )
        .json(&json!({"resourceID":29682885})),
    )
    .await;
    send(
        t.req(Method::PATCH, "V1.0/Tickets")
            .header("ImpersonationResourceId", "29682885")
            .json(&json!({"id":tid,"status":5})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn failed_callouts_retry_log_and_deactivate() {
    let t = start_with(SimConfig {
        webhooks: WebhookConfig {
            retry_delay: Duration::from_millis(10),
            attempts: 3,
            deactivate_after: 3,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (url, got) = receiver(503).await;
    let (_, v) = send(t.req(Method::POST, "V1.0/CompanyWebhooks").json(&json!({
        "name":"c","webhookUrl":url,"deactivationUrl":url,"secretKey":"k","isActive":true,
        "isSubscribedToUpdateEvents":true})))
    .await;
    let wid = v["itemId"].as_i64().unwrap();
    let fid = field_id(&t, "Company", "phone").await;
    send(
        t.req(Method::POST, &format!("V1.0/CompanyWebhooks/{wid}/Fields"))
            .json(&json!({"fieldID":fid,"isSubscribedField":true})),
    )
    .await;
    send(
        t.req(Method::PATCH, "V1.0/Companies")
            .json(&json!({"id":174,"phone":"999"})),
    )
    .await;
    // 3 attempts + the deactivation notice
    wait_for(&got, 4).await;
    let last: Value = serde_json::from_slice(&got.lock().unwrap()[3].1).unwrap();
    assert_eq!(last["Action"], "Deactivated");
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/CompanyWebhooks/{wid}"))).await;
    assert_eq!(v["item"]["isActive"], false);
    for _ in 0..100 {
        if t.sim.records("WebhookEventErrorLogs").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let logs = t.sim.records("WebhookEventErrorLogs");
    assert_eq!(logs.len(), 2, "seeded + new");
    assert_eq!(logs[1]["accountWebhookID"], wid);
    assert!(logs[1]["errorMessage"].as_str().unwrap().contains("503"));
    assert_eq!(t.sim.webhook_deliveries().len(), 3);
}
