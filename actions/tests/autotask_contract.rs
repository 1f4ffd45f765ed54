//! The contract with the published Autotask API: every registered `autotask.*` action runs
//! against the simulator, and every request it sends must be a (method, path template) of the
//! API's route list (`sim/data/autotask_routes.txt`, generated from the Swagger by
//! `tests/contract/autotask_routes.py`, whose `--check` runs here too). A wrong path fails
//! with the action's name and the path.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_engine::{ActionContext, ActionError};
use weft_sim::routes::{RouteMatch, match_route};
use weft_sim::{RequestLogEntry, RunningSim, SimConfig, Simulator};

mod common;

fn context(sim: &RunningSim) -> ActionContext {
    common::context(common::sim_integration(sim))
}

/// Why a request the simulator received is not one the published API has, if it is not.
fn violation(e: &RequestLogEntry) -> Option<String> {
    let path = e.path.split('?').next().unwrap_or_default();
    let Some(rest) = path
        .get(..15)
        .filter(|p| p.eq_ignore_ascii_case("/ATServicesRest"))
        .map(|_| &path[15..])
    else {
        return Some("is not below /ATServicesRest".into());
    };
    match match_route(&e.method, rest) {
        RouteMatch::Allowed(_) if e.status == 404 || e.status == 405 => Some(format!(
            "is published, but the simulator answered {}",
            e.status
        )),
        RouteMatch::Allowed(_) => None,
        RouteMatch::NotFound => Some("matches no published path".into()),
        RouteMatch::MethodNotAllowed(has) => Some(format!(
            "uses a method its path does not have (it has {})",
            has.join(", ")
        )),
    }
}

/// Runs actions one at a time and checks each one's requests.
struct Contract {
    sim: RunningSim,
    cx: ActionContext,
    ran: BTreeSet<String>,
    problems: Vec<String>,
}

impl Contract {
    async fn new() -> Contract {
        // More contacts than a page, so that listing them follows `nextPageUrl`.
        let sim = Simulator::start_local(SimConfig::default().with_extra("Contacts", 600)).await;
        let cx = context(&sim);
        Contract {
            sim,
            cx,
            ran: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    /// Runs `name` once; its result (also an error: the routes are what is checked here).
    async fn run(&mut self, name: &str, params: Value) -> Result<Value, ActionError> {
        self.sim.clear_request_log();
        let action = weft_actions::registry()
            .action(name)
            .unwrap_or_else(|| panic!("{name} is not registered"));
        let out = action.call(self.cx.clone(), params.clone()).await;
        let log = self.sim.request_log();
        if log.is_empty() {
            self.problems
                .push(format!("{name} {params} sent no request ({out:?})"));
        }
        for e in &log {
            if let Some(why) = violation(e) {
                self.problems
                    .push(format!("{name} sent {} {}: it {why}", e.method, e.path));
            }
        }
        self.ran.insert(name.to_string());
        out
    }

    fn id(&self, entity: &str) -> i64 {
        self.sim.records(entity)[0]["id"].as_i64().unwrap()
    }
}

#[tokio::test]
async fn every_request_of_every_autotask_action_is_a_published_route() {
    let mut c = Contract::new().await;
    let company = c.id("Companies");
    let resource = c.id("Resources");
    let project = 29684000;

    // Metadata, versions and the generic calls (the first one also discovers the zone).
    c.run("autotask.version_info", json!({})).await.unwrap();
    c.run(
        "autotask.picklist",
        json!({"entity": "Tickets", "field": "status"}),
    )
    .await
    .unwrap();
    c.run(
        "autotask.query",
        json!({"entity": "Tickets", "filter": [{"op": "gte", "field": "id", "value": 0}]}),
    )
    .await
    .unwrap();
    c.run(
        "autotask.query",
        json!({"entity": "Tickets", "count_only": true}),
    )
    .await
    .unwrap();
    for (method, path, query) in [
        ("GET", "Companies/entityInformation", json!({})),
        ("GET", "Companies/entityInformation/fields", json!({})),
        (
            "GET",
            "Companies/entityInformation/userDefinedFields",
            json!({}),
        ),
        ("GET", "V1.0/ThresholdInformation", json!({})),
        ("GET", "EntityInformation", json!({})),
        (
            "GET",
            "Companies/query",
            json!({"search": r#"{"filter":[{"op":"eq","field":"id","value":0}]}"#}),
        ),
        (
            "GET",
            "Companies/query/count",
            json!({"search": r#"{"filter":[{"op":"gte","field":"id","value":0}]}"#}),
        ),
    ] {
        c.run(
            "autotask.request",
            json!({"method": method, "path": path, "query": query}),
        )
        .await
        .unwrap();
    }

    // The entity actions.
    for (list, get, entity) in [
        ("list_companies", "get_company", "Companies"),
        ("list_contacts", "get_contact", "Contacts"),
        (
            "list_configuration_items",
            "get_configuration_item",
            "ConfigurationItems",
        ),
        ("list_contracts", "get_contract", "Contracts"),
        ("list_documents", "get_document", "Documents"),
        ("list_projects", "get_project", "Projects"),
        ("list_resources", "get_resource", "Resources"),
        ("list_surveys", "get_survey", "Surveys"),
        (
            "list_ticket_categories",
            "get_ticket_category",
            "TicketCategories",
        ),
        ("list_tickets", "get_ticket", "Tickets"),
        ("list_time_entries", "get_time_entry", "TimeEntries"),
        (
            "list_webhook_event_error_logs",
            "get_webhook_event_error_log",
            "WebhookEventErrorLogs",
        ),
    ] {
        c.run(&format!("autotask.{list}"), json!({})).await.unwrap();
        let id = c.id(entity);
        c.run(&format!("autotask.{get}"), json!({"id": id}))
            .await
            .unwrap();
    }
    for (name, params) in [
        ("list_company_locations", json!({"company_id": company})),
        ("list_project_phases", json!({"project_id": project})),
        ("list_project_tasks", json!({"project_id": project})),
        ("list_ticket_notes", json!({"ticket_id": 7800})),
        ("list_configuration_item_webhooks", json!({})),
    ] {
        c.run(&format!("autotask.{name}"), params).await.unwrap();
    }

    // Creates and updates (including the child routes).
    let contact = c.id("Contacts");
    let ticket_note = c.id("TicketNotes");
    let time_entry = c.id("TimeEntries");
    let writes = [
        (
            "create_company",
            json!({"fields": {"companyName": "Contract Co", "companyType": 1, "phone": "555-0100", "ownerResourceID": resource}}),
        ),
        (
            "update_company",
            json!({"id": company, "fields": {"phone": "555-0101"}}),
        ),
        (
            "create_company_location",
            json!({"company_id": company, "fields": {"name": "Annex", "address1": "1 Way", "city": "Town"}}),
        ),
        (
            "create_contact",
            json!({"company_id": company, "fields": {"firstName": "Ada", "lastName": "Lovelace", "isActive": 1}}),
        ),
        (
            "update_contact",
            json!({"company_id": company, "id": contact, "fields": {"title": "CTO"}}),
        ),
        (
            "create_configuration_item",
            json!({"fields": {"companyID": company, "productID": c.id("Products"), "isActive": true}}),
        ),
        (
            "update_configuration_item",
            json!({"id": c.id("ConfigurationItems"), "fields": {"serialNumber": "SN-1"}}),
        ),
        (
            "create_contract",
            json!({"fields": {"companyID": company, "contractName": "Care", "contractType": 1, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-12-31T00:00:00Z", "status": 1, "timeReportingRequiresStartAndStopTimes": 0}}),
        ),
        (
            "update_contract",
            json!({"id": c.id("Contracts"), "fields": {"description": "renewed"}}),
        ),
        (
            "create_document_attachment",
            json!({"document_id": 100, "fields": {"title": "notes.txt", "attachmentType": "FILE_ATTACHMENT", "publish": 1, "fullPath": "notes.txt", "data": "aGk="}}),
        ),
        (
            "create_project",
            json!({"fields": {"projectName": "Move", "companyID": company, "projectType": 1, "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2026-02-01T00:00:00Z", "status": 1}}),
        ),
        (
            "update_project",
            json!({"id": project, "fields": {"description": "moved"}}),
        ),
        (
            "create_project_task",
            json!({"project_id": project, "fields": {"title": "Cable", "taskType": 1, "status": 1}}),
        ),
        (
            "create_ticket",
            json!({"fields": {"companyID": company, "title": "Printer", "status": 1, "priority": 1}}),
        ),
        (
            "update_ticket",
            json!({"id": 7800, "fields": {"title": "Printer (again)"}}),
        ),
        (
            "create_ticket_note",
            json!({"ticket_id": 7800, "fields": {"description": "Called back", "noteType": 1, "publish": 1}}),
        ),
        (
            "update_ticket_note",
            json!({"ticket_id": 7800, "id": ticket_note, "fields": {"title": "Call"}}),
        ),
        (
            "create_time_entry",
            json!({"fields": {"resourceID": resource, "ticketID": 7800, "dateWorked": "2026-11-20T00:00:00Z", "hoursWorked": 1.0, "summaryNotes": "Fixed"}}),
        ),
        (
            "update_time_entry",
            json!({"id": time_entry, "fields": {"summaryNotes": "Fixed it"}}),
        ),
    ];
    for (name, params) in writes {
        c.run(&format!("autotask.{name}"), params).await.ok();
    }

    // The webhook actions, on every webhook entity.
    for (entity, fields) in [
        ("Company", "CompanyWebhookFields"),
        ("Contact", "ContactWebhookFields"),
        ("ConfigurationItem", "ConfigurationItemWebhookFields"),
        ("Ticket", "TicketWebhookFields"),
        ("TicketNote", "TicketNoteWebhookFields"),
    ] {
        let field = c
            .run(
                "autotask.picklist",
                json!({"entity": fields, "field": "fieldID"}),
            )
            .await
            .unwrap()["values"][0]["value"]
            .clone();
        let field: i64 = field
            .as_str()
            .map_or_else(|| field.as_i64(), |s| s.parse().ok())
            .unwrap();
        let hook = c
            .run(
                "autotask.create_webhook",
                json!({"entity": entity, "webhook": {"name": "contract", "webhookUrl": "http://127.0.0.1:9/h", "deactivationUrl": "http://127.0.0.1:9/d", "isActive": false}, "fields": [{"field_id": field}], "excluded_resources": [resource]}),
            )
            .await
            .unwrap();
        let id = hook["id"].as_i64().unwrap();
        c.run("autotask.list_webhooks", json!({"entity": entity}))
            .await
            .unwrap();
        c.run("autotask.get_webhook", json!({"entity": entity, "id": id}))
            .await
            .unwrap();
        c.run(
            "autotask.update_webhook",
            json!({"entity": entity, "id": id, "webhook": {"name": "contract 2"}}),
        )
        .await
        .unwrap();
        let f = c
            .run(
                "autotask.add_webhook_field",
                json!({"entity": entity, "webhook_id": id, "field_id": field, "display_always": true}),
            )
            .await;
        if let Ok(f) = f {
            c.run(
                "autotask.delete_webhook_field",
                json!({"entity": entity, "webhook_id": id, "id": f["id"]}),
            )
            .await
            .unwrap();
        }
        let r = c
            .run(
                "autotask.add_webhook_excluded_resource",
                json!({"entity": entity, "webhook_id": id, "resource_id": c.id("Resources")}),
            )
            .await;
        if let Ok(r) = r {
            c.run(
                "autotask.delete_webhook_excluded_resource",
                json!({"entity": entity, "webhook_id": id, "id": r["id"]}),
            )
            .await
            .unwrap();
        }
        c.run(
            "autotask.delete_webhook",
            json!({"entity": entity, "id": id}),
        )
        .await
        .unwrap();
    }

    let registered: BTreeSet<String> = weft_actions::registry()
        .names()
        .filter(|n| n.starts_with("autotask."))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = registered.difference(&c.ran).collect();
    assert!(
        missing.is_empty(),
        "these autotask actions are not run by the contract test (add them): {missing:?}"
    );
    assert!(
        c.problems.is_empty(),
        "requests the published Autotask API does not have:\n{}",
        c.problems.join("\n")
    );
}

/// The check fails, naming the action and the path, when an action sends a request the API
/// does not have.
#[tokio::test]
async fn a_request_the_api_lacks_is_named() {
    let mut c = Contract::new().await;
    c.run(
        "autotask.request",
        json!({"method": "POST", "path": "Contacts", "body": {"firstName": "x"}}),
    )
    .await
    .unwrap_err();
    c.run(
        "autotask.request",
        json!({"method": "DELETE", "path": "Companies/0"}),
    )
    .await
    .unwrap_err();
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    assert!(
        c.problems[0].starts_with(
            "autotask.request sent POST /ATServicesRest/V1.0/Contacts: it matches no published path"
        ),
        "{}",
        c.problems[0]
    );
    assert!(
        c.problems[1].contains(
            "DELETE /ATServicesRest/V1.0/Companies/0: it uses a method its path does not have"
        ),
        "{}",
        c.problems[1]
    );
}

/// The committed route list is what the Swagger gives (`autotask_routes.py --check`).
#[test]
fn the_route_list_matches_the_swagger() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = match std::process::Command::new("python3")
        .arg("tests/contract/autotask_routes.py")
        .arg("--check")
        .current_dir(root)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            weft_engine::testing::skip_for_missing_service(
                "skipped: python3 is not installed, so the route list was not checked",
            );
            return;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
}

/// Every child route (`Parent/{id}/Child`) of the route list counts against an entity the
/// API has (one with its own `query`): a route missing from the endpoint table would be
/// named by joining the two names, an entity Autotask does not know, and its requests and
/// the entity's own would count against two thread limits instead of one.
#[test]
fn every_child_route_counts_against_an_entity_of_the_api() {
    use weft_actions::autotask::endpoint::endpoint;
    let mut wrong = BTreeSet::new();
    for route in weft_sim::routes::api_routes() {
        let segs: Vec<&str> = route
            .template
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let ["V1.0", parent, "{int}", child, ..] = segs.as_slice() else {
            continue;
        };
        if child.eq_ignore_ascii_case("entityInformation") {
            continue;
        }
        let entity = endpoint(&format!("V1.0/{parent}/1/{child}"));
        // Some child entities are written only through their parent (no routes of their
        // own); the table names them. A name made by joining is a route the table lacks.
        let joined = entity == format!("{parent}{child}");
        let has_routes = weft_sim::routes::api_routes()
            .iter()
            .any(|r| r.template.starts_with(&format!("/V1.0/{entity}/")));
        if joined && !has_routes {
            wrong.insert(format!("{parent}/{{id}}/{child} → {entity}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "child routes named as no entity: {wrong:#?}"
    );
}
