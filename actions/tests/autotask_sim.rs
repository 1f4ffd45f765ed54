//! The `autotask.*` actions against the simulator over real HTTP on 127.0.0.1.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weft_engine::action::{BoxFuture, OrgRef, SubWorkflows, SystemClock};
use weft_engine::integration::{Integration, StaticIntegrations};
use weft_engine::{ActionContext, ActionError, ActionErrorKind};
use weft_sim::{FailureConfig, RunningSim, SimConfig, Simulator};

struct NoWorkflows;

impl SubWorkflows for NoWorkflows {
    fn run_child<'a>(
        &'a self,
        _parent: &'a ActionContext,
        _workflow: &'a str,
        _input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async { Err(ActionError::failed("no sub-workflows here")) })
    }
}

/// An integration pointing at the simulator's discovery URL, with fast retries.
fn integration(sim: &RunningSim) -> Integration {
    let (user, secret, code) = sim.credentials();
    Integration::new("autotask", "default")
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("discovery_url", sim.base_url.trim_end_matches('/'))
        .with_setting("backoff_base_ms", 20)
        .with_setting("max_retries", 8)
        .with_secret("secret", secret)
}

fn context(integration: Integration) -> ActionContext {
    ActionContext {
        execution_id: "exec-autotask".into(),
        task: "task".into(),
        item_index: None,
        attempt: 1,
        org: OrgRef {
            id: "org-1".into(),
            name: "Test MSP".into(),
        },
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        workflows: Arc::new(NoWorkflows),
        integrations: Arc::new(StaticIntegrations::new(vec![integration])),
        integration_override: None,
    }
}

async fn call(cx: &ActionContext, name: &str, params: Value) -> Result<Value, ActionError> {
    let r = weft_actions::registry();
    let action = r
        .action(name)
        .unwrap_or_else(|| panic!("{name} is registered"));
    action.call(cx.clone(), params).await
}

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
    let cx = context(integration(&sim));
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
async fn creates_are_not_retried() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(integration(&sim));
    sim.set_failures(FailureConfig {
        rate_limit_first: 1,
        ..FailureConfig::default()
    });
    let err = call(
        &cx,
        "autotask.create_company",
        json!({"fields": {"companyName": "X", "companyType": 1, "phone": "1", "ownerResourceID": 1}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.data.as_ref().unwrap()["status"], 429, "{err:?}");
    assert_eq!(api_calls(&sim, "Companies").len(), 1);
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
