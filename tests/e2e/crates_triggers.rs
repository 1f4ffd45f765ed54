//! Every crate of the library fired through its own trigger under `weft serve`, the way it
//! runs in production: the ticket crates from the simulator's signed Autotask callouts (all
//! six installed together on one tenant, as an MSP would), the form and device crates from
//! their webhooks, the nightly crates fired now through the API (`…/fire`) with their
//! schedule set by a parameter, and the by-hand crate through the run API. Each test checks
//! what changed in the simulator and what the sinks received.

use crate::support::lab::{Lab, Server, create_via_api, eventually, lab, ok};
use serde_json::{Value, json};

/// A ticket created through the simulator's REST API (it sends the callouts).
async fn create_ticket(lab: &Lab, fields: Value) -> i64 {
    create_via_api(&lab.sim, "Tickets", fields).await
}

/// Waits until `n` executions of `workflow` exist and all have ended; returns them.
pub(crate) async fn ended(server: &Server, workflow: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = server.executions(workflow).await;
        let done = list
            .iter()
            .all(|e| matches!(e["status"].as_str(), Some("succeeded" | "failed")));
        if list.len() >= n && done {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{workflow}: wanted {n} ended executions, have {list:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

fn all_succeeded(list: &[Value]) {
    for e in list {
        assert_eq!(e["status"], "succeeded", "{e:#}");
    }
}

const TICKET_CRATES: &[(&str, &[&str])] = &[
    ("openai-ticket-categorization", &[]),
    (
        "openai-ticket-sentiment",
        &["autotask_web_url=https://ww5.autotask.net/"],
    ),
    (
        "openai-suggest-ticket-response",
        &["company_name=BrightPath IT"],
    ),
    ("user-offboarding-request", &[]),
    ("new-user-request-form-link", &[]),
    ("assign-configuration-item-by-contact", &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_crates_act_on_their_orgs_tickets_from_autotask_callouts() {
    let lab = lab().await;
    for (name, params) in TICKET_CRATES {
        let mut args = params.to_vec();
        args.push("--enable");
        lab.install(name, &args).await;
    }
    let server = lab.serve();
    eventually(30, "six active weft webhooks in Autotask", || {
        lab.sim
            .simulator
            .records("TicketWebhooks")
            .iter()
            .filter(|w| {
                w["name"].as_str().is_some_and(|n| n.starts_with("weft: ")) && w["isActive"] == true
            })
            .count()
            == TICKET_CRATES.len()
    })
    .await;

    // Acme Dental (company 174, mapped to acme-dental): an angry customer whose contact has
    // one device; an offboarding request; a new-user request.
    let angry = create_ticket(
        &lab,
        json!({"companyID": 174, "contactID": 30682080, "title": "Email down AGAIN!",
            "description": "This is unacceptable, third outage this week. We are furious.",
            "status": 1, "priority": 2, "queueID": 8}),
    )
    .await;
    let leaver = create_ticket(
        &lab,
        json!({"companyID": 174, "title": "Offboarding: Jane Doe leaves on Friday",
            "description": "Please remove her access.", "status": 1, "priority": 3, "queueID": 8}),
    )
    .await;
    let joiner = create_ticket(
        &lab,
        json!({"companyID": 174, "title": "New user: Sam Lee starts Monday",
            "description": "Needs a laptop and email.", "status": 1, "priority": 3, "queueID": 8}),
    )
    .await;
    // Another company's ticket: not Acme Dental's business.
    let other = create_ticket(
        &lab,
        json!({"companyID": 177, "contactID": 30682081, "title": "Printer jam",
            "description": "Paper stuck again, so annoying!", "status": 1, "priority": 2}),
    )
    .await;

    for (name, _) in TICKET_CRATES {
        let list = ended(&server, &format!("{name}--acme-dental"), 3).await;
        all_succeeded(&list);
        // Sentiment also scores the notes other crates write (a checklist is a note too);
        // one execution per ticket is what the tickets' own events start.
        let list: Vec<Value> = list
            .into_iter()
            .filter(|e| e["trigger"]["type"] != "autotask.ticket_note")
            .collect();
        assert_eq!(
            list.len(),
            3,
            "{name}: one execution per Acme Dental ticket"
        );
        for e in &list {
            assert_eq!(e["org"], "acme-dental", "{e:#}");
        }
    }

    // Sentiment: escalated to High (1), noted, Teams told with the link.
    assert_eq!(lab.record("Tickets", angry)["priority"], 1);
    assert_eq!(
        lab.notes_titled(angry, "Negative sentiment (weft)").len(),
        1
    );
    let teams = lab.messages("teams");
    assert!(
        teams
            .iter()
            .any(|m| m.contains(&format!("TicketDetail.mvc?ticketId={angry}"))),
        "{teams:#?}"
    );
    // Categorization and the suggested reply: one note each on every ticket.
    for t in [angry, leaver, joiner] {
        assert_eq!(
            lab.notes_titled(t, "Ticket categorized (weft)").len(),
            1,
            "{t}"
        );
        assert_eq!(
            lab.notes_titled(t, "Suggested response (weft)").len(),
            1,
            "{t}"
        );
    }
    // The contact's only device is attached.
    assert_eq!(
        lab.record("Tickets", angry)["configurationItemID"],
        29683700
    );
    // Offboarding: checklist with the form link, waiting on the customer.
    let off = lab.notes_titled(leaver, "Offboarding checklist");
    assert_eq!(off.len(), 1);
    assert!(
        off[0]["description"]
            .as_str()
            .unwrap()
            .contains("/forms/wfs_")
    );
    assert_eq!(lab.record("Tickets", leaver)["status"], 7);
    assert!(lab.notes_titled(angry, "Offboarding checklist").is_empty());
    // New user: its own checklist, only on the joiner's ticket.
    let new = lab.notes_titled(joiner, "New user checklist");
    assert_eq!(new.len(), 1);
    assert!(
        new[0]["description"]
            .as_str()
            .unwrap()
            .contains("/forms/wfs_")
    );
    assert!(lab.notes_titled(leaver, "New user checklist").is_empty());

    // Company 177's ticket started nothing anywhere: each trigger recorded why.
    assert!(lab.notes_of(other).is_empty(), "{:#?}", lab.notes_of(other));
    assert!(lab.record("Tickets", other)["configurationItemID"].is_null());
    let (status, events) = server
        .call(
            "GET",
            "/api/triggers/openai-ticket-sentiment--acme-dental/new-ticket/events",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let filtered: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "filtered")
        .collect();
    assert_eq!(filtered.len(), 1, "{events:#}");
    assert!(
        filtered[0]["reason"]
            .as_str()
            .unwrap()
            .contains("company 177 is not mapped"),
        "{filtered:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_intake_form_crates_run_from_their_webhooks() {
    let lab = lab().await;
    lab.install("asset-registration", &["product_id=29682900", "--enable"])
        .await;
    lab.install(
        "client-onboarding",
        &["owner_resource_id=29682885", "--enable"],
    )
    .await;
    let server = lab.serve();

    // The RMM posts a new device.
    let device = json!({"device": {"hostname": "ACME-LT-077", "serial": "5CG9999ABC",
        "role": "laptop", "model": "HP EliteBook 840", "warranty_expires": "2029-06-30"}});
    let secret = server.webhook_secret("new-device--acme-dental").await;
    let path = "/hooks/new-device--acme-dental/acme-dental";
    let (status, answer) = server
        .call(
            "POST",
            path,
            &[("x-weft-secret", &secret)],
            Some(device.clone()),
        )
        .await;
    assert!(matches!(status, 200 | 202), "{status} {answer}");
    let exec = server.finished(answer["id"].as_str().unwrap()).await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    let ci = exec["output"]["configuration_item_id"].as_i64().unwrap();
    let item = lab.record("ConfigurationItems", ci);
    assert_eq!(item["serialNumber"], "5CG9999ABC");
    assert_eq!(item["companyID"], 174);
    let reminder = exec["output"]["reminder_ticket_id"].as_i64().unwrap();
    assert_eq!(lab.record("Tickets", reminder)["companyID"], 174);
    // A body without a device is filtered by the trigger's criteria; a wrong secret is refused.
    let (status, answer) = server
        .call(
            "POST",
            path,
            &[("x-weft-secret", &secret)],
            Some(json!({"ping": 1})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], false, "{answer}");
    let (status, _) = server
        .call("POST", path, &[("x-weft-secret", "nope")], Some(device))
        .await;
    assert_eq!(status, 401);

    // The intake form posts a new client and waits for the answer.
    let secret = server.webhook_secret("intake-form--acme-dental").await;
    let form = json!({
        "company": {"name": "Lakeside Physio", "phone": "555-0199", "city": "Tacoma"},
        "contacts": [{"first_name": "Mia", "last_name": "Chen", "email": "mia@lakeside.example", "primary": true}],
        "contract": {"name": "Managed Services", "start_date": "2027-01-01", "end_date": "2027-12-31"}
    });
    let (status, answer) = server
        .call(
            "POST",
            "/hooks/intake-form--acme-dental/acme-dental",
            &[("x-weft-secret", &secret)],
            Some(form),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let company = answer["company_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(
        lab.record("Companies", company)["companyName"],
        "Lakeside Physio"
    );
    let contacts = lab
        .sim
        .simulator
        .records("Contacts")
        .into_iter()
        .filter(|c| c["companyID"] == company)
        .count();
    assert_eq!(contacts, 1);
    let kickoff = answer["kickoff_ticket_id"].as_i64().unwrap();
    assert_eq!(lab.record("Tickets", kickoff)["companyID"], company);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_and_by_hand_crates_fire_through_the_api() {
    let lab = lab().await;
    let smtp = lab.email_sink().await;
    // A bad schedule is refused at install, naming the parameter.
    let out = lab
        .weft(&[
            "crate",
            "install",
            "contract-renewal",
            "--org",
            "acme-dental",
            "--param",
            "schedule=75 2 * * *",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("parameter `schedule` is not a cron schedule"),
        "{err}"
    );
    lab.install(
        "contract-renewal",
        &[
            "reply_to=am@brightpath.example",
            "schedule=30 5 * * MON-FRI",
            "timezone=America/Chicago",
            "--enable",
        ],
    )
    .await;
    lab.contract_ending_in(29683500, 10);
    let mut contact = lab.record("Contacts", 30682000);
    contact["emailAddress"] = json!("kenji@acme-dental.example");
    lab.sim.simulator.insert("Contacts", contact);
    let server = lab.serve();
    let (_, triggers) = server.call("GET", "/api/triggers", &[], None).await;
    let nightly = triggers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["workflow"] == "contract-renewal--acme-dental")
        .cloned()
        .unwrap_or_else(|| panic!("{triggers:#}"));
    assert_eq!(nightly["schedule"], "30 5 * * MON-FRI", "{nightly:#}");
    assert_eq!(nightly["timezone"], "America/Chicago", "{nightly:#}");

    let (status, fired) = server
        .call(
            "POST",
            "/api/triggers/contract-renewal--acme-dental/nightly/fire",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 202, "{fired}");
    assert_eq!(fired["outcome"], "accepted");
    let exec = server
        .finished(fired["executions"][0].as_str().unwrap())
        .await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    assert_eq!(exec["trigger"]["manual"], true);
    assert!(
        exec["output"]["renewals"]
            .as_array()
            .unwrap()
            .contains(&json!(29683500)),
        "{exec:#}"
    );
    assert!(
        lab.record("Contracts", 29683500)["description"]
            .as_str()
            .unwrap()
            .contains("Renewal pending")
    );
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.to.iter().any(|t| t == "kenji@acme-dental.example")),
        "{:?}",
        smtp.messages()
    );
    // A webhook trigger is not fired this way: the answer says how.
    lab.install("hello-webhook", &[]).await;
    let (status, answer) = server
        .call(
            "POST",
            "/api/triggers/hello-webhook--acme-dental/hello--acme-dental/fire",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST to its URL")
    );

    // The nightly directory sync, for the MSP, fired now: a sync run through weft's API.
    let url = server.grant_crates(&lab).await;
    ok(&lab.weft(&["sync", "autotask", "--apply"]).await);
    ok(&lab
        .weft(&[
            "crate",
            "install",
            "psa-directory-nightly-sync",
            "--org",
            "brightpath-it",
            "--param",
            &url,
            "--param",
            "schedule=0 3 * * *",
        ])
        .await);
    let (status, fired) = server
        .call(
            "POST",
            "/api/triggers/psa-directory-nightly-sync--brightpath-it/nightly/fire",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 202, "{fired}");
    let exec = server
        .finished(fired["executions"][0].as_str().unwrap())
        .await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    assert_eq!(exec["org"], "brightpath-it");
    let run_id = exec["output"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{exec:#}"));
    let (_, runs) = server.call("GET", "/api/sync/runs", &[], None).await;
    assert!(
        runs.to_string().contains(&format!("\"id\":{run_id}")),
        "{runs}"
    );

    // The by-hand crate through the run API: Autotask customers become orgs.
    ok(&lab
        .weft(&[
            "crate",
            "install",
            "bulk-create-clients-from-psa",
            "--org",
            "brightpath-it",
            "--param",
            &url,
        ])
        .await);
    let (status, run) = server
        .call(
            "POST",
            "/api/workflows/bulk-create-clients-from-psa--brightpath-it/run?org=brightpath-it",
            &[],
            Some(json!({"dry_run": false})),
        )
        .await;
    assert!(matches!(status, 200 | 202), "{status} {run}");
    let id = run["id"].as_str().unwrap_or_else(|| panic!("{run}"));
    let exec = server.finished(id).await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    let orgs: Value =
        serde_json::from_str(&ok(&lab.weft(&["org", "list", "--json"]).await)).unwrap();
    assert!(orgs.as_array().unwrap().len() > 5, "{orgs:#}");
}
