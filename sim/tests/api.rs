//! Routes, auth, CRUD, children, metadata, failure injection.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use weft_sim::{FailureConfig, SimConfig};

#[tokio::test]
async fn discovery_routes_any_casing() {
    let t = start().await;
    let root = &t.sim.root_url;
    for p in [
        "/atservicesrest/versioninformation",
        "/ATServicesRest/VersionInformation",
    ] {
        let (s, v) = send(t.http.get(format!("{root}{p}"))).await;
        assert_eq!((s, v), (200, json!({"apiVersions":["1.0"]})));
    }
    let (s, v) = send(t.http.get(format!(
        "{root}/atservicesrest/v1.0/zoneInformation?user=api@weft.test"
    )))
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["url"], t.sim.base_url.as_str());
    assert!(v["url"].as_str().unwrap().ends_with('/'));
    assert!(v["zoneName"].is_string() && v["webUrl"].is_string() && v["ci"].is_number());
    let (s, v) = send(t.http.get(format!(
        "{root}/ATServicesRest/V1.0/ZoneInformation?user=nobody@x.test"
    )))
    .await;
    assert_eq!(s, 500);
    assert!(v["errors"].is_array());
    let (s, v) = send(t.req(Method::GET, "V1.0/ThresholdInformation")).await;
    assert_eq!(s, 200);
    assert_eq!(v["externalRequestThreshold"], 10000);
    assert!(v["currentTimeframeRequestCount"].as_u64().unwrap() >= 1);
    let (s, _) = send(t.req(Method::GET, "v1.0/version")).await;
    assert_eq!(s, 200);
    let (s, v) = send(t.abs(
        Method::GET,
        &format!("{root}/atservicesrest/V1.0/companies/0"),
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["item"]["companyName"], "BrightPath IT Services");
}

#[tokio::test]
async fn auth_failures_use_autotask_codes() {
    let t = start().await;
    let url = format!("{}V1.0/Companies/0", t.sim.base_url);
    let h = |u: &str, s: &str, c: &str| {
        t.http
            .get(&url)
            .header("username", u)
            .header("SECRET", s)
            .header("apiintegrationcode", c)
    };
    let (s, v) = send(h(
        "who@x.test",
        "sim-secret",
        weft_sim::DEFAULT_INTEGRATION_CODE,
    ))
    .await;
    assert_eq!(s, 500);
    assert!(v["errors"].is_array());
    let (s, v) = send(h(
        "API@weft.test",
        "wrong",
        weft_sim::DEFAULT_INTEGRATION_CODE,
    ))
    .await;
    assert_eq!(s, 401);
    assert!(v["errors"].is_array());
    let (s, v) = send(h("api@weft.test", "sim-secret", "WRONGCODE")).await;
    assert_eq!(s, 500);
    assert!(v["errors"].is_array());
    let (s, _) = send(h(
        "api@weft.test",
        "sim-secret",
        weft_sim::DEFAULT_INTEGRATION_CODE,
    ))
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn wrong_routes_404_and_405() {
    let t = start().await;
    for (m, p, code) in [
        (Method::PATCH, "V1.0/Companies/0", 405),
        (Method::DELETE, "V1.0/Companies/0", 405),
        (Method::DELETE, "V1.0/Tickets/7800", 405),
        (Method::POST, "V1.0/Contacts", 404),
        (Method::POST, "V1.0/Tasks", 404),
        (Method::POST, "V1.0/TicketNotes", 404),
        (Method::POST, "V1.0/CompanyLocations", 404),
        (Method::POST, "V1.0/Resources", 405),
        (Method::GET, "V1.0/NoSuchEntity/query", 404),
        (Method::GET, "V2.0/Companies/0", 404),
        (Method::DELETE, "V1.0/Tickets/7800/Notes/1", 405),
        (Method::DELETE, "V1.0/WebhookEventErrorLogs/999", 500),
    ] {
        let (s, v) = send(t.req(m.clone(), p).json(&json!({}))).await;
        assert_eq!(s, code, "{m} {p} -> {v}");
        if code == 405 {
            assert!(v["Message"].as_str().unwrap().contains(&format!("'{m}'")));
        }
    }
    let (s, v) = send(t.req(Method::GET, "V1.0/Companies/999999")).await;
    assert_eq!((s, v), (200, json!({"item": null})));
}

/// The published route list decides 404 and 405, and what it has the simulator answers.
#[tokio::test]
async fn routes_follow_the_published_api() {
    use weft_sim::routes::{RouteMatch, match_route};
    let t = start().await;
    // The list itself: Companies cannot be deleted or PUT by id; Roles can be created.
    assert!(matches!(
        match_route(
            "DELETE",
            "/V1.0/Companies/{id}".replace("{id}", "1").as_str()
        ),
        RouteMatch::MethodNotAllowed(_)
    ));
    assert_eq!(
        match_route("PATCH", "/V1.0/Roles"),
        RouteMatch::Allowed("/V1.0/Roles")
    );
    for (m, p, code) in [
        // 404: no published path.
        (Method::GET, "V1.0/Companies/0/Nothing", 404),
        (Method::GET, "V1.0/Companies/0/Notes/1/Attachments", 404),
        (Method::GET, "V1.0/Companies/abc", 404),
        (Method::GET, "V1.0/Roles/0/Resources", 404),
        // 405: a published path without this method.
        (Method::PUT, "V1.0/Companies/0", 405),
        (Method::POST, "V1.0/TicketCategories", 405),
        (Method::PATCH, "V1.0/Documents/100/Attachments", 405),
        (Method::DELETE, "V1.0/Companies/0/Notes/29692000", 405),
        (Method::GET, "V1.0/Companies", 405),
        (Method::POST, "VersionInformation", 405),
    ] {
        let (s, v) = send(t.req(m.clone(), p).json(&json!({}))).await;
        assert_eq!(s, code, "{m} {p} -> {v}");
    }
    // Published and simulated: Roles are created and updated (POST/PATCH/PUT /Roles).
    let (s, v) = send(t.req(Method::POST, "V1.0/Roles").json(
        &json!({"name": "Dispatcher", "hourlyRate": 90.0, "hourlyFactor": 1.0, "isActive": true}),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["itemId"].as_i64().unwrap();
    let (s, v) = send(
        t.req(Method::PATCH, "V1.0/Roles")
            .json(&json!({"id": id, "description": "Routes tickets"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Roles/{id}"))).await;
    assert_eq!(v["item"]["description"], "Routes tickets");
    assert_eq!(v["item"]["hourlyFactor"], 1.0);
    // Published but not modelled: a 404 that says so.
    let (s, v) = send(t.req(Method::GET, "V1.0/Modules")).await;
    assert_eq!(s, 404);
    assert!(
        v["Message"].as_str().unwrap().contains("does not simulate"),
        "{v}"
    );
    // The simulator's own endpoints are outside the API and unaffected.
    let (s, _) = send(
        t.http
            .post(t.sim.teams_url("ops"))
            .json(&json!({"text": "hi"})),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn create_validates_required_picklists_references_and_udfs() {
    let t = start().await;
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Companies")
            .json(&json!({"companyName":"New Co"})),
    )
    .await;
    assert_eq!(s, 500);
    let e = errors(&v);
    for f in ["companyType", "phone", "ownerResourceID"] {
        assert!(e.contains(f), "{e}");
    }
    assert!(!e.contains("companyName"));
    let owner = t.sim.records("Resources")[0]["id"].clone();
    let good = json!({"companyName":"New Co","companyType":1,"phone":"555","ownerResourceID":owner,
                      "createDate":"1999-01-01T00:00:00Z",
                      "userDefinedFields":[{"name":"CustomerRanking","value":"Golden"}]});
    let (s, v) = send(t.req(Method::POST, "V1.0/Companies").json(&good)).await;
    assert_eq!(s, 200, "{v}");
    let id = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Companies/{id}"))).await;
    assert_eq!(v["item"]["companyName"], "New Co");
    assert_ne!(
        v["item"]["createDate"], "1999-01-01T00:00:00Z",
        "read-only ignored"
    );
    assert!(
        v["item"]["userDefinedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "CustomerRanking" && u["value"] == "Golden")
    );
    // bad picklist
    let mut bad = good.clone();
    bad["companyType"] = json!(99);
    let (s, v) = send(t.req(Method::POST, "V1.0/Companies").json(&bad)).await;
    assert_eq!(s, 500);
    assert!(errors(&v).contains("companyType"));
    // bad reference
    let mut bad = good.clone();
    bad["ownerResourceID"] = json!(1);
    let (s, v) = send(t.req(Method::POST, "V1.0/Companies").json(&bad)).await;
    assert_eq!(s, 500);
    assert!(errors(&v).contains("ownerResourceID"));
    // UDF at top level refused
    let mut bad = good.clone();
    bad["CustomerRanking"] = json!("Golden");
    let (s, v) = send(t.req(Method::POST, "V1.0/Companies").json(&bad)).await;
    assert_eq!(s, 500, "{v}");
    // ticket required fields
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Tickets")
            .json(&json!({"title":"x"})),
    )
    .await;
    assert_eq!(s, 500);
    for f in ["companyID", "status", "priority"] {
        assert!(errors(&v).contains(f));
    }
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Tickets")
            .json(&json!({"title":"x","companyID":id,"status":1,"priority":2,"queueID":8})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let tid = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Tickets/{tid}"))).await;
    assert!(v["item"]["ticketNumber"].as_str().unwrap().starts_with('T'));
}

#[tokio::test]
async fn patch_vs_put() {
    let t = start().await;
    let (s, v) = send(
        t.req(Method::PATCH, "V1.0/Companies")
            .json(&json!({"id":174,"phone":"111"})),
    )
    .await;
    assert_eq!((s, &v["itemId"]), (200, &json!(174)));
    let c = &send(t.req(Method::GET, "V1.0/Companies/174")).await.1["item"];
    assert_eq!(c["phone"], "111");
    assert!(c["city"].is_string(), "PATCH leaves other fields");
    let name = c["companyName"].clone();
    let owner = c["ownerResourceID"].clone();
    let (s, v) = send(t.req(Method::PUT, "V1.0/Companies").json(
        &json!({"id":174,"companyName":name,"companyType":1,"phone":"222","ownerResourceID":owner}),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let c = &send(t.req(Method::GET, "V1.0/Companies/174")).await.1["item"];
    assert_eq!(c["phone"], "222");
    assert!(c["city"].is_null(), "PUT nulls omitted writable fields");
    assert!(c["createDate"].is_string(), "PUT keeps read-only fields");
    // PUT missing a required field fails
    let (s, _) = send(
        t.req(Method::PUT, "V1.0/Companies")
            .json(&json!({"id":174,"phone":"333"})),
    )
    .await;
    assert_eq!(s, 500);
    // PATCH without id fails
    let (s, _) = send(
        t.req(Method::PATCH, "V1.0/Companies")
            .json(&json!({"phone":"333"})),
    )
    .await;
    assert_eq!(s, 500);
}

#[tokio::test]
async fn child_routes() {
    let t = start().await;
    let (s, v) = send(t.req(Method::GET, "V1.0/Companies/174/Contacts")).await;
    assert_eq!(s, 200);
    let n = v["items"].as_array().unwrap().len();
    assert!(n > 0 && v["pageDetails"].is_object());
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["companyID"] == 174)
    );
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Companies/174/Contacts")
            .json(&json!({"firstName":"Ada","lastName":"Lovelace","isActive":1,"companyID":999})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let cid = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Companies/174/Contacts/{cid}"))).await;
    assert_eq!(v["item"]["companyID"], 174, "parent id from URL");
    let (s, _) = send(
        t.req(Method::PATCH, "V1.0/Companies/174/Contacts")
            .json(&json!({"id":cid,"title":"Countess"})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Contacts/{cid}"))).await;
    assert_eq!(v["item"]["title"], "Countess");
    let (s, _) = send(t.req(
        Method::DELETE,
        &format!("V1.0/Companies/174/Contacts/{cid}"),
    ))
    .await;
    assert_eq!(s, 200);
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Contacts/{cid}"))).await;
    assert!(v["item"].is_null());
    // ticket notes, project tasks
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Tickets/7800/Notes")
            .json(&json!({"description":"hi","noteType":1,"publish":1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Projects/29684000/Tasks")
            .json(&json!({"title":"t","taskType":1,"status":1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(t.req(Method::GET, "V1.0/Projects/29684000/Phases")).await;
    assert_eq!(s, 200);
    // webhook + field; the webhook becomes ready
    let (s, v) = send(t.req(Method::POST, "V1.0/CompanyWebhooks").json(&json!({"name":"w","webhookUrl":"http://x/h","deactivationUrl":"http://x/d","isActive":true}))).await;
    assert_eq!(s, 200, "{v}");
    let wid = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/CompanyWebhooks/{wid}"))).await;
    assert_eq!(v["item"]["isReady"], false);
    let (s, v) = send(
        t.req(Method::POST, &format!("V1.0/CompanyWebhooks/{wid}/Fields"))
            .json(&json!({"fieldID":1,"isSubscribedField":true,"isDisplayAlwaysField":false})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let fid = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/CompanyWebhooks/{wid}"))).await;
    assert_eq!(v["item"]["isReady"], true);
    let (s, _) = send(t.req(
        Method::DELETE,
        &format!("V1.0/CompanyWebhooks/{wid}/Fields/{fid}"),
    ))
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(t.req(Method::DELETE, &format!("V1.0/CompanyWebhooks/{wid}"))).await;
    assert_eq!(s, 200);
    // Ids are never handed out again, even after the highest one is deleted.
    let (s, v) = send(t.req(Method::POST, "V1.0/CompanyWebhooks").json(&json!({"name":"w2","webhookUrl":"http://x/h","deactivationUrl":"http://x/d","isActive":true}))).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["itemId"].as_i64().unwrap() > wid, "{v}");
    let (s, _) = send(t.req(Method::DELETE, "V1.0/TimeEntries/29686000")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn entity_information_and_picklists() {
    let t = start().await;
    let (s, v) = send(t.req(Method::GET, "V1.0/Companies/entityInformation")).await;
    assert_eq!(s, 200);
    assert_eq!(v["info"]["canCreate"], true);
    assert_eq!(v["info"]["canDelete"], false);
    assert_eq!(v["info"]["hasUserDefinedFields"], true);
    assert_eq!(v["info"]["supportsWebhookCallouts"], true);
    let (s, v) = send(t.req(Method::GET, "V1.0/Companies/entityInformation/fields")).await;
    assert_eq!(s, 200);
    let ct = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "companyType")
        .unwrap();
    assert_eq!(ct["isPickList"], true);
    assert_eq!(ct["isRequired"], true);
    let labels: Vec<&str> = ct["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    for l in [
        "Customer",
        "Lead",
        "Prospect",
        "Dead",
        "Cancelation",
        "Vendor",
        "Partner",
    ] {
        assert!(labels.contains(&l));
    }
    assert!(ct["picklistValues"][0]["value"].is_string());
    let owner = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "ownerResourceID")
        .unwrap();
    assert_eq!(
        (
            owner["isReference"].clone(),
            owner["referenceEntityType"].clone()
        ),
        (json!(true), json!("Resource"))
    );
    let (_, v) = send(t.req(Method::GET, "V1.0/Tickets/entityInformation/fields")).await;
    let sub = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "subIssueType")
        .unwrap();
    assert_eq!(sub["picklistParentValueField"], "issueType");
    let (s, v) = send(t.req(
        Method::GET,
        "V1.0/Companies/entityInformation/userDefinedFields",
    ))
    .await;
    assert_eq!(s, 200);
    assert!(
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "CustomerRanking")
    );
}

#[tokio::test]
async fn failure_injection_429_zone_500_and_header() {
    let t = start_with(SimConfig {
        failures: FailureConfig {
            zone_moved_first: 1,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (s, _) = send(t.req(Method::GET, "V1.0/Companies/0")).await;
    assert_eq!(s, 401, "zone moved on first call");
    let (s, _) = send(t.req(Method::GET, "V1.0/Companies/0")).await;
    assert_eq!(s, 200);
    t.sim.set_failures(FailureConfig {
        rate_limit_first: 1,
        retry_after_secs: 7,
        ..Default::default()
    });
    let r = t.req(Method::GET, "V1.0/Companies/0").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    t.sim.set_failures(FailureConfig {
        error_500_every: 2,
        ..Default::default()
    });
    let (a, _) = send(t.req(Method::GET, "V1.0/Companies/0")).await;
    let (b, v) = send(t.req(Method::GET, "V1.0/Companies/0")).await;
    assert_eq!((a, b), (200, 500));
    assert!(v["errors"].is_array());
    t.sim.set_failures(FailureConfig::default());
    for (h, code) in [("429", 429), ("thread", 500), ("zone", 401), ("500", 500)] {
        let (s, _) = send(
            t.req(Method::GET, "V1.0/Companies/0")
                .header("X-Sim-Fail", h),
        )
        .await;
        assert_eq!(s, code, "{h}");
    }
    let start = std::time::Instant::now();
    let (s, _) = send(
        t.req(Method::GET, "V1.0/Companies/0")
            .header("x-sim-fail", "latency=150ms"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(start.elapsed() >= std::time::Duration::from_millis(150));
    let log = t.sim.request_log();
    assert!(
        log.iter()
            .any(|e| e.status == 429 && e.endpoint == "Companies")
    );
}

#[tokio::test]
async fn thread_limit_over_three_concurrent_requests() {
    let t = start_with(SimConfig {
        latency: Some(std::time::Duration::from_millis(300)),
        failures: FailureConfig {
            enforce_thread_limit: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let rb = t.req(Method::GET, "V1.0/Companies/0");
        tasks.push(tokio::spawn(async move { send(rb).await }));
    }
    // another endpoint is not affected
    let other = tokio::spawn(send(t.req(Method::GET, "V1.0/Tickets/7800")));
    let mut codes = Vec::new();
    for task in tasks {
        let (s, v) = task.await.unwrap();
        if s == 500 {
            assert!(errors(&v).contains("Thread Threshold Exceeded"));
        }
        codes.push(s);
    }
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 500, 500]);
    assert_eq!(other.await.unwrap().0, 200);
    assert!(t.sim.max_concurrency("companies") >= 4);
    assert!(
        t.sim
            .request_log()
            .iter()
            .any(|e| e.in_flight >= 4 && e.status == 500)
    );
}

#[tokio::test]
async fn inspection_helpers_and_data_file() {
    let t = start().await;
    let id = t.sim.insert(
        "Companies",
        json!({"companyName":"Inserted","companyType":1}),
    );
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Companies/{id}"))).await;
    assert_eq!(v["item"]["companyName"], "Inserted");
    assert!(t.sim.records("Tickets").len() >= 100);
    let sim = weft_sim::Simulator::from_data_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tenant.json"
    ))
    .unwrap();
    assert_eq!(sim.records("Contacts").len(), 150);
    let app = sim.router();
    drop(app);
}

#[tokio::test]
async fn long_get_urls_404_and_request_threshold() {
    let t = start_with(SimConfig {
        failures: FailureConfig {
            request_threshold: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (s, v) = send(t.req(Method::GET, "V1.0/EntityInformation")).await;
    assert_eq!(s, 200);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "Tickets")
    );
    let long = "x".repeat(2200);
    let search = json!({"filter":[{"op":"eq","field":"companyName","value":long}]}).to_string();
    let (s, _) = send(
        t.req(Method::GET, "V1.0/Companies/query")
            .query(&[("search", &search)]),
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = send(t.req(Method::GET, "V1.0/ThresholdInformation")).await;
    assert_eq!(s, 200);
    assert_eq!(v["externalRequestThreshold"], 5);
    let mut last = 0;
    for _ in 0..5 {
        last = send(t.req(Method::GET, "V1.0/Companies/0")).await.0;
    }
    assert_eq!(last, 500, "over the hourly threshold");
}

/// Field names follow the Swagger models: attachments hang off `parentID`, company notes
/// carry `note`.
#[tokio::test]
async fn models_follow_the_swagger() {
    let t = start().await;
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Documents/100/Attachments")
            .json(&json!({
                "title": "runbook.txt", "attachmentType": "FILE_ATTACHMENT", "publish": 1,
                "fullPath": "runbook.txt", "data": "aGVsbG8="
            })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["itemId"].as_i64().unwrap();
    let (_, v) = send(t.req(Method::GET, &format!("V1.0/Documents/100/Attachments/{id}"))).await;
    assert_eq!(v["item"]["parentID"], 100, "{v}");
    assert!(v["item"].get("documentID").is_none(), "{v}");
    let (s, v) = send(
        t.req(Method::POST, "V1.0/Companies/174/Notes")
            .json(&json!({
                "actionType": 1, "assignedResourceID": 29682885, "name": "Call",
                "note": "Talked about backups.", "startDateTime": "2026-11-23T10:00:00Z",
                "endDateTime": "2026-11-23T10:30:00Z"
            })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = send(t.req(
        Method::GET,
        &format!("V1.0/Companies/174/Notes/{}", v["itemId"]),
    ))
    .await;
    assert_eq!(v["item"]["note"], "Talked about backups.");
    let (s, v) = send(t.req(Method::GET, "V1.0/WebhookEventErrorLogs/1")).await;
    assert_eq!(s, 200);
    let fields: Vec<&str> = v["item"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        fields.contains(&"accountWebhookID") && !fields.contains(&"companyWebhookID"),
        "{fields:?}"
    );
}
