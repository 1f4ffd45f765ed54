//! The `autotask.*` actions against the simulator over real HTTP on 127.0.0.1.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_engine::integration::Integration;
use weft_engine::{ActionError, ActionErrorKind};
use weft_sim::{FailureConfig, RunningSim, SimConfig, Simulator};

mod common;
use common::{call, context, sim_integration as integration};

fn ids(items: &Value) -> Vec<i64> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

fn api_calls(sim: &Simulator, endpoint: &str) -> Vec<weft_sim::RequestLogEntry> {
    sim.request_log()
        .into_iter()
        .filter(|e| e.endpoint.eq_ignore_ascii_case(endpoint))
        .collect()
}

#[tokio::test]
async fn paging_returns_every_record_exactly_once() {
    let sim = Simulator::start_local(SimConfig::default().with_extra("Contacts", 2345)).await;
    let cx = context(integration(&sim));
    let expected: HashSet<i64> = sim
        .records("Contacts")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() >= 2345);

    let out = call(&cx, "autotask.list_contacts", json!({}))
        .await
        .unwrap();
    let got = ids(&out);
    assert_eq!(out["count"], got.len());
    assert_eq!(got.len(), expected.len(), "every record once");
    assert_eq!(got.iter().copied().collect::<HashSet<_>>(), expected);
    let pages = api_calls(&sim, "Contacts");
    assert_eq!(pages.len(), expected.len().div_ceil(500), "{pages:#?}");
    assert!(
        pages.iter().all(|p| p.method == "POST"),
        "next pages are POSTed"
    );

    // include_fields gets `id` added; max_records stops early (across a page boundary).
    let out = call(
        &cx,
        "autotask.list_contacts",
        json!({"include_fields": ["lastName"], "max_records": 777}),
    )
    .await
    .unwrap();
    let got = ids(&out);
    assert_eq!(got.len(), 777);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 777);
    assert!(out["items"][0].get("lastName").is_some());

    // The generic query and count.
    let out = call(
        &cx,
        "autotask.query",
        json!({"entity": "Contacts", "count_only": true}),
    )
    .await
    .unwrap();
    assert_eq!(out["count"], expected.len());
}

#[tokio::test]
async fn filters_are_sent_and_parent_filters_added() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let company = sim.records("Companies")[0]["id"].as_i64().unwrap();
    let want: HashSet<i64> = sim
        .records("Contacts")
        .iter()
        .filter(|c| c["companyID"].as_i64() == Some(company))
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let out = call(
        &cx,
        "autotask.list_contacts",
        json!({"company_id": company}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out).into_iter().collect::<HashSet<_>>(), want);

    let out = call(
        &cx,
        "autotask.list_companies",
        json!({"filter": [{"op": "or", "items": [
            {"op": "eq", "field": "id", "value": company},
            {"op": "in", "field": "id", "value": [company]}
        ]}]}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), vec![company]);
}

#[tokio::test]
async fn invalid_filters_fail_before_any_request() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let cases = [
        (
            json!([{"op": "like", "field": "a", "value": 1}]),
            "filter[0]",
        ),
        (json!([{"op": "eq", "field": "companyName"}]), "filter[0]"),
        (
            json!([{"op": "exist", "field": "phone", "value": "x"}]),
            "filter[0]",
        ),
        (
            json!([{"op": "and", "items": [{"op": "in", "field": "id", "value": []}]}]),
            "filter[0].items[0]",
        ),
        (
            json!([{"op": "eq", "field": "A", "value": 1, "udf": true}, {"op": "eq", "field": "B", "value": 1, "udf": true}]),
            "filter",
        ),
    ];
    for (filter, path) in cases {
        let err = call(&cx, "autotask.list_companies", json!({"filter": filter}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams, "{}", err.message);
        assert!(err.message.contains(path), "{path}: {}", err.message);
        let err = call(
            &cx,
            "autotask.query",
            json!({"entity": "Tickets", "filter": filter}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams, "{}", err.message);
    }
    assert!(sim.request_log().is_empty(), "{:#?}", sim.request_log());
}

#[tokio::test]
async fn recovers_from_429_with_retry_after() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    // Every call counted below is the action's own (no ThresholdInformation read).
    let cx = context(integration(&sim).with_setting("threshold_check", 0));
    sim.set_failures(FailureConfig {
        rate_limit_first: 2,
        retry_after_secs: 1,
        ..FailureConfig::default()
    });
    let start = Instant::now();
    let out = call(&cx, "autotask.list_companies", json!({}))
        .await
        .unwrap();
    assert_eq!(ids(&out).len(), sim.records("Companies").len());
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "waited Retry-After twice: {:?}",
        start.elapsed()
    );
    let statuses: Vec<u16> = api_calls(&sim, "Companies")
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, vec![429, 429, 200]);
}

#[tokio::test]
async fn creates_are_repeated_after_a_429_but_not_after_a_server_error() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    // Every call counted below is the action's own (no ThresholdInformation read).
    let cx = context(integration(&sim).with_setting("threshold_check", 0));
    // A 429 means Autotask did nothing: the create goes again after Retry-After.
    sim.set_failures(FailureConfig {
        rate_limit_first: 1,
        retry_after_secs: 1,
        ..FailureConfig::default()
    });
    let owner = sim.records("Resources")[0]["id"].clone();
    let fields = |name: &str| json!({"fields": {"companyName": name, "companyType": 1, "phone": "1", "ownerResourceID": owner}});
    let before = sim.records("Companies").len();
    call(&cx, "autotask.create_company", fields("Refused Once"))
        .await
        .unwrap();
    let posts = |sim: &Simulator| -> Vec<u16> {
        api_calls(sim, "Companies")
            .iter()
            .filter(|e| e.method == "POST")
            .map(|e| e.status)
            .collect()
    };
    assert_eq!(posts(&sim), vec![429, 200]);
    let made = sim
        .records("Companies")
        .iter()
        .filter(|c| c["companyName"] == "Refused Once")
        .count();
    assert_eq!((made, sim.records("Companies").len()), (1, before + 1));
    // A 500 may hide a made record: not repeated, and the error says what to do.
    sim.set_failures(FailureConfig {
        error_500_first: 1,
        ..FailureConfig::default()
    });
    let err = call(&cx, "autotask.create_company", fields("Failed Once"))
        .await
        .unwrap_err();
    assert_eq!(err.data.as_ref().unwrap()["status"], 500, "{err:?}");
    assert!(
        err.message.contains("the create was not repeated"),
        "{}",
        err.message
    );
    assert_eq!(posts(&sim), vec![429, 200, 500], "sent once");
}

#[tokio::test]
async fn every_note_of_a_fan_out_survives_a_429() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let ticket = sim.records("Tickets")[0]["id"].as_i64().unwrap();
    sim.set_failures(FailureConfig {
        rate_limit_every: 5,
        retry_after_secs: 1,
        ..FailureConfig::default()
    });
    let before = sim.records("TicketNotes").len();
    for n in 0..12 {
        call(
            &cx,
            "autotask.create_ticket_note",
            json!({"ticket_id": ticket, "fields": {"title": format!("note {n}"), "description": "d", "noteType": 1, "publish": 1}}),
        )
        .await
        .unwrap_or_else(|e| panic!("note {n}: {e:?}"));
    }
    assert_eq!(sim.records("TicketNotes").len(), before + 12);
    assert!(
        sim.request_log().iter().any(|e| e.status == 429),
        "a 429 was met and the note sent again"
    );
}

#[tokio::test]
async fn recovers_from_the_thread_limit() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    sim.set_failures(FailureConfig {
        enforce_thread_limit: true,
        thread_limit: 2,
        latency: Some(Duration::from_millis(60)),
        ..FailureConfig::default()
    });
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let cx = cx.clone();
        tasks.push(tokio::spawn(async move {
            call(&cx, "autotask.list_tickets", json!({"max_records": 5})).await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out["count"], 5);
    }
    let log = api_calls(&sim, "Tickets");
    assert!(
        log.iter().any(|e| e.status == 500),
        "the thread limit was hit and retried: {log:#?}"
    );
}

#[tokio::test]
async fn rediscovers_the_zone_once_after_a_401() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    call(
        &cx,
        "autotask.get_company",
        json!({"id": sim.records("Companies")[0]["id"]}),
    )
    .await
    .unwrap();
    sim.clear_request_log();
    sim.set_failures(FailureConfig {
        zone_moved_first: 1,
        ..FailureConfig::default()
    });
    let out = call(&cx, "autotask.list_companies", json!({"max_records": 3}))
        .await
        .unwrap();
    assert_eq!(out["count"], 3);
    let log = sim.request_log();
    let kinds: Vec<(String, u16)> = log.iter().map(|e| (e.endpoint.clone(), e.status)).collect();
    assert_eq!(
        kinds,
        vec![
            ("Companies".to_string(), 401),
            ("ZoneInformation".to_string(), 200),
            ("Companies".to_string(), 200)
        ],
        "{log:#?}"
    );

    // A persistent 401 (a wrong secret) is rediscovered once, then fails as Auth.
    let mut bad = integration(&sim);
    bad = bad.with_secret("secret", "definitely-wrong");
    let err = call(&context(bad), "autotask.list_companies", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.data.as_ref().unwrap()["status"], 401, "{err:?}");
    assert_eq!(err.data.as_ref().unwrap()["error_kind"], "auth");
}

#[tokio::test]
async fn at_most_three_requests_per_endpoint_in_flight() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    sim.set_failures(FailureConfig {
        latency: Some(Duration::from_millis(80)),
        ..FailureConfig::default()
    });
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let cx = cx.clone();
        tasks.push(tokio::spawn(async move {
            call(&cx, "autotask.list_companies", json!({"max_records": 2})).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(api_calls(&sim, "Companies").len(), 10);
    let max = sim.max_concurrency("Companies");
    assert!(max <= 3, "{max} in flight");
    assert_eq!(max, 3, "the limit is used");
    assert!(
        api_calls(&sim, "Companies")
            .iter()
            .all(|e| e.in_flight <= 3)
    );
}

#[tokio::test]
async fn slow_requests_time_out() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let i = integration(&sim)
        .with_setting("timeout", "300ms")
        .with_setting("max_retries", 1);
    let cx = context(i);
    // Discover the zone first (discovery is not delayed by the failure config either way).
    call(
        &cx,
        "autotask.get_company",
        json!({"id": sim.records("Companies")[0]["id"]}),
    )
    .await
    .unwrap();
    sim.set_failures(FailureConfig {
        latency: Some(Duration::from_secs(3)),
        ..FailureConfig::default()
    });
    let start = Instant::now();
    let err = call(&cx, "autotask.list_tickets", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Timeout, "{err:?}");
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

fn first_value(picklist: &Value) -> Value {
    let v = &picklist["values"][0]["value"];
    v.as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Value::from)
        .unwrap_or_else(|| v.clone())
}

#[tokio::test]
async fn ticket_lifecycle_create_get_update_note() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let company = sim.records("Companies")[0]["id"].as_i64().unwrap();
    let status = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "status", "label": "new"}),
    )
    .await
    .unwrap();
    assert_eq!(status["value"], "1");
    let priority = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "priority"}),
    )
    .await
    .unwrap();
    let queue = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "queueID"}),
    )
    .await
    .unwrap();
    let err = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "status", "label": "Nope"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("New"),
        "lists the labels: {}",
        err.message
    );

    let created = call(
        &cx,
        "autotask.create_ticket",
        json!({"fields": {
            "companyID": company, "title": "Printer on fire", "status": 1,
            "priority": first_value(&priority), "queueID": first_value(&queue)
        }}),
    )
    .await
    .unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["item"]["title"], "Printer on fire");

    let got = call(&cx, "autotask.get_ticket", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(got["id"], id);

    let updated = call(
        &cx,
        "autotask.update_ticket",
        json!({"id": id, "fields": {"title": "Printer extinguished"}}),
    )
    .await
    .unwrap();
    assert_eq!(updated["item"]["title"], "Printer extinguished");
    assert_eq!(
        updated["item"]["companyID"], company,
        "PATCH keeps other fields"
    );

    let note_type = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "TicketNotes", "field": "noteType"}),
    )
    .await
    .unwrap();
    let publish = call(
        &cx,
        "autotask.picklist",
        json!({"entity": "TicketNotes", "field": "publish"}),
    )
    .await
    .unwrap();
    let note = call(
        &cx,
        "autotask.create_ticket_note",
        json!({"ticket_id": id, "fields": {
            "title": "Update", "description": "Replaced the fuser.",
            "noteType": first_value(&note_type), "publish": first_value(&publish)
        }}),
    )
    .await
    .unwrap();
    let note_id = note["id"].as_i64().unwrap();
    assert_eq!(note["item"]["ticketID"], id);
    let note = call(
        &cx,
        "autotask.update_ticket_note",
        json!({"ticket_id": id, "id": note_id, "fields": {"description": "Replaced the fuser and the drum."}}),
    )
    .await
    .unwrap();
    assert_eq!(
        note["item"]["description"],
        "Replaced the fuser and the drum."
    );
    let notes = call(&cx, "autotask.list_ticket_notes", json!({"ticket_id": id}))
        .await
        .unwrap();
    assert_eq!(ids(&notes), vec![note_id]);

    // Missing required fields: Autotask's messages come back in the error data.
    let err = call(
        &cx,
        "autotask.create_ticket",
        json!({"fields": {"title": "x"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Failed);
    let data = err.data.unwrap();
    assert_eq!(data["status"], 500);
    assert_eq!(data["error_kind"], "validation");
    assert!(!data["errors"].as_array().unwrap().is_empty(), "{data}");

    let err = call(&cx, "autotask.get_ticket", json!({"id": 987_654_321}))
        .await
        .unwrap_err();
    assert_eq!(err.data.unwrap()["error_kind"], "notfound");
}

#[tokio::test]
async fn company_and_contact_actions() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let owner = sim.records("Resources")[0]["id"].as_i64().unwrap();
    let company = call(
        &cx,
        "autotask.create_company",
        json!({"fields": {"companyName": "Contoso", "companyType": 1, "phone": "555-0100", "ownerResourceID": owner}}),
    )
    .await
    .unwrap();
    let cid = company["id"].as_i64().unwrap();
    assert_eq!(company["item"]["companyName"], "Contoso");
    let company = call(
        &cx,
        "autotask.update_company",
        json!({"id": cid, "fields": {"phone": "555-0199"}}),
    )
    .await
    .unwrap();
    assert_eq!(company["item"]["phone"], "555-0199");
    assert_eq!(
        call(&cx, "autotask.get_company", json!({"id": cid}))
            .await
            .unwrap()["companyName"],
        "Contoso"
    );

    let contact = call(
        &cx,
        "autotask.create_contact",
        json!({"company_id": cid, "fields": {"firstName": "Ada", "lastName": "Lovelace", "isActive": 1}}),
    )
    .await
    .unwrap();
    let id = contact["id"].as_i64().unwrap();
    assert_eq!(contact["item"]["companyID"], cid);
    let contact = call(
        &cx,
        "autotask.update_contact",
        json!({"company_id": cid, "id": id, "fields": {"emailAddress": "ada@contoso.test"}}),
    )
    .await
    .unwrap();
    assert_eq!(contact["item"]["emailAddress"], "ada@contoso.test");
    let list = call(&cx, "autotask.list_contacts", json!({"company_id": cid}))
        .await
        .unwrap();
    assert_eq!(ids(&list), vec![id]);
    assert_eq!(
        call(&cx, "autotask.get_contact", json!({"id": id}))
            .await
            .unwrap()["firstName"],
        "Ada"
    );

    let v = call(&cx, "autotask.version_info", json!({})).await.unwrap();
    assert!(v.to_string().contains("1.0"), "{v}");
    let raw = call(
        &cx,
        "autotask.request",
        json!({"path": format!("Companies/{cid}")}),
    )
    .await
    .unwrap();
    assert_eq!(raw["item"]["id"], cid);
}

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_or_errors() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,weft_sim=off"))
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = Simulator::start_local(SimConfig::default()).await;
    let (_, secret, code) = sim.credentials();
    let cx = context(integration(&sim));
    let mut errors = Vec::new();
    // Retried failures, validation errors, a wrong secret, a timeout.
    sim.set_failures(FailureConfig {
        rate_limit_first: 1,
        error_500_first: 2,
        retry_after_secs: 0,
        ..FailureConfig::default()
    });
    call(&cx, "autotask.list_tickets", json!({"max_records": 1}))
        .await
        .unwrap();
    errors.push(
        call(
            &cx,
            "autotask.create_ticket",
            json!({"fields": {"title": secret.clone()}}),
        )
        .await
        .unwrap_err(),
    );
    let wrong = integration(&sim).with_secret("secret", "wrong-secret-Zq9");
    errors.push(
        call(&context(wrong), "autotask.list_companies", json!({}))
            .await
            .unwrap_err(),
    );
    sim.set_failures(FailureConfig {
        latency: Some(Duration::from_secs(2)),
        ..FailureConfig::default()
    });
    let slow = integration(&sim)
        .with_setting("timeout", "100ms")
        .with_setting("max_retries", 0);
    errors.push(
        call(&context(slow), "autotask.list_tickets", json!({}))
            .await
            .unwrap_err(),
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("autotask.request"),
        "spans were captured: {logs}"
    );
    assert!(logs.contains("retrying"), "{logs}");
    for e in &errors {
        let text = format!("{e:?} {}", e.to_json());
        for s in [secret.as_str(), code.as_str(), "wrong-secret-Zq9"] {
            assert!(!text.contains(s), "`{s}` in error {text}");
        }
    }
    for s in [secret.as_str(), code.as_str(), "wrong-secret-Zq9"] {
        assert!(!logs.contains(s), "`{s}` in the logs");
    }
}

#[test]
fn every_table_action_is_registered_and_documented() {
    let r = weft_actions::registry();
    let names: HashSet<String> = r.names().map(str::to_string).collect();
    let table = "version_info list_companies get_company create_company update_company \
        list_configuration_item_webhooks list_contacts get_contact create_contact update_contact \
        list_contracts get_contract create_contract update_contract list_documents get_document \
        create_document_attachment list_project_phases list_project_tasks create_project_task \
        create_project update_project get_project list_resources get_resource list_surveys \
        get_survey list_ticket_categories get_ticket_category list_ticket_notes create_ticket_note \
        update_ticket_note list_tickets get_ticket create_ticket update_ticket list_time_entries \
        get_time_entry create_time_entry update_time_entry list_webhook_event_error_logs \
        get_webhook_event_error_log request query picklist list_configuration_items \
        get_configuration_item create_configuration_item update_configuration_item \
        list_company_locations create_company_location list_webhooks get_webhook create_webhook \
        update_webhook delete_webhook";
    for n in table.split_whitespace() {
        assert!(
            names.contains(&format!("autotask.{n}")),
            "autotask.{n} missing"
        );
    }
    let spec = r.get("autotask.create_ticket").unwrap();
    let props = &spec.params["properties"];
    assert!(
        props["fields"]["description"]
            .as_str()
            .unwrap()
            .contains("companyID"),
        "{props}"
    );
    assert!(
        props["udfs"]["description"]
            .as_str()
            .unwrap()
            .contains("userDefinedFields")
    );
    assert_eq!(spec.params["required"], json!(["fields"]));
    let spec = r.get("autotask.create_contact").unwrap();
    assert!(
        spec.params["properties"]["company_id"]["description"]
            .as_str()
            .unwrap()
            .contains("Companies/{company_id}/Contacts")
    );
}

#[tokio::test]
async fn webhook_lifecycle() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let resource = sim.records("Resources")[0]["id"].as_i64().unwrap();
    let created = call(
        &cx,
        "autotask.create_webhook",
        json!({
            "entity": "Ticket",
            "webhook": {"name": "weft", "webhookUrl": "https://hooks.example/t", "deactivationUrl": "https://hooks.example/d", "isActive": true, "isSubscribedToCreateEvents": true},
            "fields": [{"field_id": 1}, {"field_id": 2, "subscribed": false, "display_always": true}],
            "excluded_resources": [resource]
        }),
    )
    .await
    .unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["fields"].as_array().unwrap().len(), 2, "{created}");
    assert_eq!(created["excluded_resources"][0]["resourceID"], resource);
    let got = call(
        &cx,
        "autotask.get_webhook",
        json!({"entity": "Ticket", "id": id}),
    )
    .await
    .unwrap();
    assert_eq!(got["item"]["name"], "weft");
    let list = call(&cx, "autotask.list_webhooks", json!({"entity": "Ticket"}))
        .await
        .unwrap();
    assert!(ids(&list).contains(&id));
    let upd = call(
        &cx,
        "autotask.update_webhook",
        json!({"entity": "Ticket", "id": id, "webhook": {"isActive": false}}),
    )
    .await
    .unwrap();
    assert_eq!(upd["item"]["isActive"], false);
    call(
        &cx,
        "autotask.delete_webhook",
        json!({"entity": "Ticket", "id": id}),
    )
    .await
    .unwrap();
    let err = call(
        &cx,
        "autotask.get_webhook",
        json!({"entity": "Ticket", "id": id}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.data.unwrap()["error_kind"], "notfound");
}

// ---------------------------------------------------------------------------------------------
// Caches are per tenant, expire, and are refreshed on a missing label

/// Several simulated tenants behind ONE base URL (one zone): each API call goes to the
/// simulator whose integration code and user name it carries, a zone lookup to the one whose
/// user it names. Backends can be swapped (a tenant whose picklists changed).
#[derive(Clone, Default)]
struct Front {
    /// (integration code, user name, simulator root URL).
    backends: Arc<Mutex<Vec<(String, String, String)>>>,
    http: reqwest::Client,
}

impl Front {
    /// Serves the front on 127.0.0.1; returns its zone base URL
    /// (`http://127.0.0.1:PORT/ATServicesRest/`).
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/ATServicesRest/")
    }

    /// Serves `sim` for its credentials (replacing any simulator serving them), reporting the
    /// front's URL as its zone.
    fn serve(&self, front_base: &str, sim: &RunningSim) {
        let root = front_base.trim_end_matches("/ATServicesRest/");
        sim.set_base_url(root);
        let (user, _, code) = sim.credentials();
        let mut b = self.backends.lock().unwrap();
        b.retain(|(c, u, _)| !(*c == code && *u == user));
        b.push((code, user, sim.root_url.clone()));
    }

    fn pick(&self, uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> Option<String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let backends = self.backends.lock().unwrap();
        if uri.path().to_ascii_lowercase().contains("zoneinformation") {
            let url = reqwest::Url::parse(&format!("http://x{uri}")).ok()?;
            let user = url.query_pairs().find(|(k, _)| k == "user")?.1.into_owned();
            return backends
                .iter()
                .find(|(_, u, _)| *u == user)
                .map(|b| b.2.clone());
        }
        backends
            .iter()
            .find(|(c, u, _)| {
                Some(c.as_str()) == header("apiintegrationcode")
                    && Some(u.as_str()) == header("username")
            })
            .map(|b| b.2.clone())
    }
}

async fn forward(
    axum::extract::State(front): axum::extract::State<Front>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(root) = front.pick(&uri, &headers) else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"errors": ["no such tenant behind the front"]})),
        )
            .into_response();
    };
    let mut req = front
        .http
        .request(method, format!("{root}{uri}"))
        .body(body);
    for (k, v) in &headers {
        if k != axum::http::header::HOST {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned();
    let bytes = resp.bytes().await.unwrap();
    let mut out = (status, bytes).into_response();
    if let Some(ct) = content_type {
        out.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct);
    }
    out
}

/// A simulated tenant: its own credentials and its own Tickets.queueID picklist.
async fn tenant(user: &str, code: &str, queues: &[(&str, &str)]) -> RunningSim {
    let mut data = weft_sim::TenantData::seeded();
    let values = data
        .picklists
        .get_mut("Tickets")
        .and_then(|m| m.get_mut("queueID"))
        .expect("the seeded tenant has queues");
    let template = values[0].clone();
    *values = queues
        .iter()
        .enumerate()
        .map(|(i, (value, label))| weft_sim::PicklistValue {
            value: (*value).into(),
            label: (*label).into(),
            sort_order: i as i64 + 1,
            ..template.clone()
        })
        .collect();
    Simulator::start_local(SimConfig {
        username: user.into(),
        secret: format!("secret-of-{user}"),
        integration_code: code.into(),
        data,
        ..SimConfig::default()
    })
    .await
}

/// An integration for `sim`'s credentials: zone lookup at `discovery`, or a fixed `zone`.
fn tenant_integration(
    name: &str,
    sim: &RunningSim,
    discovery: Option<&str>,
    zone: Option<&str>,
) -> Integration {
    let (user, secret, code) = sim.credentials();
    let mut i = Integration::new("autotask", name)
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("backoff_base_ms", 20)
        .with_secret("secret", secret);
    if let Some(d) = discovery {
        i = i.with_setting("discovery_url", d);
    }
    if let Some(z) = zone {
        i = i.with_setting("zone_url", z);
    }
    i
}

async fn queue_id(integration: &Integration, label: &str) -> Result<Value, ActionError> {
    call(
        &context(integration.clone()),
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "queueID", "label": label}),
    )
    .await
    .map(|v| v["value"].clone())
}

fn fields_reads(sim: &Simulator) -> usize {
    sim.request_log()
        .iter()
        .filter(|e| {
            e.path
                .to_ascii_lowercase()
                .contains("entityinformation/fields")
        })
        .count()
}

#[tokio::test]
async fn tenants_on_one_zone_see_their_own_picklists() {
    let front = Front::default();
    let base = front.start().await;
    // A and B: other users and integration codes; C: A's user with another code; D: A's
    // code with another user. Same labels, different ids.
    let a = tenant(
        "a@msp.test",
        "CODE-A-000000000000000001",
        &[("8", "Level I Support"), ("9", "Projects")],
    )
    .await;
    let b = tenant(
        "b@client.test",
        "CODE-B-000000000000000002",
        &[("108", "Level I Support"), ("109", "Projects")],
    )
    .await;
    let c = tenant(
        "a@msp.test",
        "CODE-C-000000000000000003",
        &[("208", "Level I Support")],
    )
    .await;
    let d = tenant(
        "d@msp.test",
        "CODE-A-000000000000000001",
        &[("308", "Level I Support")],
    )
    .await;
    for sim in [&a, &b, &c, &d] {
        front.serve(&base, sim);
    }
    let ia = tenant_integration("a", &a, Some(&base), None);
    let ib = tenant_integration("b", &b, Some(&base), None);
    let ic = tenant_integration("c", &c, None, Some(&base));
    let id = tenant_integration("d", &d, Some(&base), None);

    // Interleaved, so that each would find another tenant's cached picklist if the cache
    // were keyed by zone.
    for _ in 0..2 {
        assert_eq!(queue_id(&ia, "Level I Support").await.unwrap(), "8");
        assert_eq!(queue_id(&ib, "Level I Support").await.unwrap(), "108");
        assert_eq!(queue_id(&ic, "level i support").await.unwrap(), "208");
        assert_eq!(queue_id(&id, "Level I Support").await.unwrap(), "308");
    }
    // All on the same zone URL.
    for i in [&ia, &ib, &ic, &id] {
        let zone = weft_actions::autotask::Client::from_integration(i)
            .unwrap()
            .zone()
            .await
            .unwrap();
        assert_eq!(zone, base);
    }
    // Each tenant's fields were read once (then cached), from its own simulator.
    for sim in [&a, &b, &c, &d] {
        assert_eq!(fields_reads(sim), 1, "{:#?}", sim.request_log());
    }
    // A label only B has is not found through A.
    let err = queue_id(&ic, "Projects").await.unwrap_err();
    assert!(
        err.message.contains("no value labelled `Projects`"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_label_added_later_is_found_after_one_refresh() {
    let front = Front::default();
    let base = front.start().await;
    let user = "admin@msp.test";
    let code = "CODE-REFRESH-0000000000001";
    let before = tenant(user, code, &[("8", "Level I Support")]).await;
    front.serve(&base, &before);
    let i = tenant_integration("default", &before, Some(&base), None);
    assert_eq!(queue_id(&i, "Level I Support").await.unwrap(), "8");
    assert_eq!(fields_reads(&before), 1);

    // Someone adds a queue in Autotask.
    let after = tenant(
        user,
        code,
        &[("8", "Level I Support"), ("424242", "Escalations")],
    )
    .await;
    front.serve(&base, &after);
    assert_eq!(queue_id(&i, "Escalations").await.unwrap(), "424242");
    assert_eq!(fields_reads(&after), 1, "one refresh");
    // Now cached: no more reads for known labels.
    assert_eq!(queue_id(&i, "escalations").await.unwrap(), "424242");
    assert_eq!(queue_id(&i, "Level I Support").await.unwrap(), "8");
    assert_eq!(fields_reads(&after), 1);
    // A label that does not exist: one refresh, then the error naming the labels.
    let err = queue_id(&i, "Nope").await.unwrap_err();
    assert!(
        err.message
            .contains("no value labelled `Nope` (labels: Level I Support, Escalations)"),
        "{}",
        err.message
    );
    assert_eq!(fields_reads(&after), 2);
}

#[tokio::test]
async fn cached_fields_expire_after_the_ttl() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let read_status = |i: Integration| async move {
        call(
            &context(i),
            "autotask.picklist",
            json!({"entity": "Tickets", "field": "status"}),
        )
        .await
        .unwrap();
    };
    // 0.005 minutes = 300 ms.
    let short = integration(&sim).with_setting("cache_ttl_minutes", 0.005);
    read_status(short.clone()).await;
    read_status(short.clone()).await;
    assert_eq!(fields_reads(&sim), 1, "cached within the TTL");
    tokio::time::sleep(Duration::from_millis(400)).await;
    read_status(short.clone()).await;
    assert_eq!(fields_reads(&sim), 2, "read again after the TTL");

    // 0: never kept.
    let never = integration(&sim).with_setting("cache_ttl_minutes", "0");
    read_status(never.clone()).await;
    read_status(never).await;
    assert_eq!(fields_reads(&sim), 4);

    // The default keeps them (15 minutes).
    let config = weft_actions::autotask::Config::from_integration(&integration(&sim)).unwrap();
    assert_eq!(config.cache_ttl, Duration::from_secs(15 * 60));
    for bad in [json!(-1), json!("soon"), json!(true)] {
        let err = weft_actions::autotask::Config::from_integration(
            &integration(&sim).with_setting("cache_ttl_minutes", bad.clone()),
        )
        .unwrap_err();
        assert!(
            err.message.contains("cache_ttl_minutes"),
            "{bad}: {}",
            err.message
        );
    }
}

/// Issue 18: concurrent first calls of one tenant (a sync reads five record kinds at once)
/// discover its zone once.
#[tokio::test]
async fn concurrent_first_calls_discover_the_zone_once() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    let mut calls = Vec::new();
    for action in [
        "autotask.list_companies",
        "autotask.list_contacts",
        "autotask.list_tickets",
        "autotask.list_configuration_items",
        "autotask.list_contracts",
    ] {
        let cx = cx.clone();
        calls.push(tokio::spawn(async move {
            call(&cx, action, json!({"max_records": 1})).await
        }));
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let lookups = sim
        .request_log()
        .iter()
        .filter(|e| e.endpoint.eq_ignore_ascii_case("ZoneInformation"))
        .count();
    assert_eq!(lookups, 1, "{:#?}", sim.request_log());
}

/// Issue 18: a path that is not ASCII is refused with a clear error (never a panic), and
/// nothing is sent.
#[tokio::test]
async fn a_request_path_that_is_not_ascii_is_refused() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    for path in ["Tîckets/1", "Tickets/é", "Companies/١٢٣", "Tickets/1\u{0}"] {
        let err = call(&cx, "autotask.request", json!({"path": path}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams, "{path}: {err:?}");
        assert!(err.message.contains("path"), "{path}: {}", err.message);
    }
    assert!(
        !sim.request_log()
            .iter()
            .any(|e| !e.endpoint.eq_ignore_ascii_case("ZoneInformation")),
        "{:#?}",
        sim.request_log()
    );
}
