//! The AI and alerting crates of `crates-library/` (`openai-ticket-categorization`,
//! `openai-ticket-sentiment`, `openai-suggest-ticket-response`, `rmm-alert-to-ticket`), each
//! installed for a client org with `weft crate install` and run as installed (`NAME--ORG`)
//! against the in-process simulator: Autotask, its fake OpenAI API and its Teams and Slack
//! sinks. The test checks what changed in the simulator and which messages the sinks got,
//! and that a second run duplicates nothing. `rmm-alert-to-ticket` is also fired through its
//! webhook under `weft serve`.

use crate::support::lab::{Lab, lab, ok, succeeded};
use serde_json::{Value, json};

#[tokio::test]
async fn ai_crates_validate_and_are_listed() {
    let lab = lab().await;
    let out = ok(&lab.weft(&["crate", "list"]).await);
    let library = concat!(env!("CARGO_MANIFEST_DIR"), "/crates-library");
    for name in [
        "openai-ticket-categorization",
        "openai-ticket-sentiment",
        "openai-suggest-ticket-response",
        "rmm-alert-to-ticket",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
        let dir = format!("{library}/{name}");
        let out = lab
            .env
            .weft_no_db(&["validate", "--deny-warnings", dir.as_str()]);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn openai_ticket_categorization_sets_the_category_once() {
    let lab = lab().await;
    lab.install(
        "openai-ticket-categorization",
        &[r#"category_ids={"Access": 6}"#],
    )
    .await;
    let wf = "openai-ticket-categorization--acme-dental";
    let title = "Ticket categorized (weft)";

    // "printer" → Hardware, found by label in the issueType picklist (1).
    let printer = lab.ticket(
        "Printer on 2nd floor out of toner",
        "The printer shows a toner warning and prints blank pages.",
        2,
    );
    for _ in 0..2 {
        let exec = lab.run(wf, json!({"ticket_id": printer})).await;
        succeeded(&exec);
    }
    assert_eq!(lab.record("Tickets", printer)["issueType"], 1);
    let notes = lab.notes_titled(printer, title);
    assert_eq!(notes.len(), 1, "a second event adds nothing: {notes:#?}");
    let text = notes[0]["description"].as_str().unwrap();
    assert!(text.contains("Categorized as Hardware by weft"), "{text}");
    assert!(text.contains("gpt-4o-mini"), "{text}");
    assert_eq!(notes[0]["publish"], 2);
    // The instructions went in `system`, the ticket in the prompt; asked once.
    let asked = lab.sim.simulator.openai_requests();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(asked[0]["response_format"]["type"], "json_object");

    // "locked out" → Access: not in the picklist, its id given by `category_ids`.
    let access = lab.ticket(
        "Locked out of my account",
        "I cannot log in since this morning.",
        2,
    );
    let exec = lab.run(wf, json!({"ticket_id": access})).await;
    succeeded(&exec);
    assert_eq!(exec["output"]["category"], "Access");
    assert_eq!(lab.record("Tickets", access)["issueType"], 6);

    // Billing is one of the categories but has no issueType entry: noted, field untouched.
    let billing = lab.ticket(
        "Question about last invoice",
        "Why was the invoice higher?",
        2,
    );
    let exec = lab.run(wf, json!({"ticket_id": billing})).await;
    succeeded(&exec);
    assert!(lab.record("Tickets", billing)["issueType"].is_null());
    let note = &lab.notes_titled(billing, title)[0];
    assert!(
        note["description"]
            .as_str()
            .unwrap()
            .contains("Categorized as Billing"),
        "{note}"
    );

    // A seeded ticket that already has a category is left alone (only_when_empty).
    let exec = lab.run(wf, json!({"ticket_id": 7801})).await;
    succeeded(&exec);
    assert_eq!(lab.record("Tickets", 7801)["issueType"], 2);
    assert!(lab.notes_titled(7801, title).is_empty());
    assert_eq!(lab.sim.simulator.openai_requests().len(), 3);
}

#[tokio::test]
async fn openai_ticket_categorization_falls_back_to_general() {
    let lab = lab().await;
    // Categories without Hardware: the model's "Hardware" is not allowed → General.
    lab.install(
        "openai-ticket-categorization",
        &[
            r#"categories=["Software", "General"]"#,
            r#"category_ids={"General": 3}"#,
        ],
    )
    .await;
    let t = lab.ticket("Monitor flickering", "The screen flickers every minute.", 2);
    let exec = lab
        .run(
            "openai-ticket-categorization--acme-dental",
            json!({"ticket_id": t}),
        )
        .await;
    succeeded(&exec);
    assert_eq!(exec["output"]["category"], "General");
    assert_eq!(lab.record("Tickets", t)["issueType"], 3);
    let note = &lab.notes_titled(t, "Ticket categorized (weft)")[0];
    assert!(
        note["description"]
            .as_str()
            .unwrap()
            .contains("not one of the categories"),
        "{note}"
    );
}

#[tokio::test]
async fn openai_ticket_sentiment_escalates_unhappy_customers_once() {
    let lab = lab().await;
    lab.install(
        "openai-ticket-sentiment",
        &["autotask_web_url=https://ww5.autotask.net/"],
    )
    .await;
    let wf = "openai-ticket-sentiment--acme-dental";
    let angry = lab.ticket(
        "Email down AGAIN!",
        "This is unacceptable, third outage this week. We are furious.",
        2,
    );
    for _ in 0..2 {
        let exec = lab.run(wf, json!({"ticket_id": angry})).await;
        succeeded(&exec);
    }
    assert_eq!(lab.record("Tickets", angry)["priority"], 1);
    let notes = lab.notes_titled(angry, "Negative sentiment (weft)");
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0]["description"].as_str().unwrap().contains("-0.85"));
    let teams = lab.messages("teams");
    assert_eq!(teams.len(), 1, "{teams:#?}");
    let number = lab.record("Tickets", angry)["ticketNumber"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(teams[0].contains(&number), "{}", teams[0]);
    assert!(
        teams[0].contains(&format!("TicketDetail.mvc?ticketId={angry}")),
        "{}",
        teams[0]
    );

    // A happy customer: nothing changes, nobody is told.
    let happy = lab.ticket("Thanks!", "Great work on the new laptop, thank you.", 3);
    let exec = lab.run(wf, json!({"ticket_id": happy})).await;
    succeeded(&exec);
    assert_eq!(exec["output"]["escalated"], false);
    assert_eq!(lab.record("Tickets", happy)["priority"], 3);
    assert_eq!(lab.messages("teams").len(), 1);

    // A Critical ticket stays Critical; an angry note (not the ticket) is what is scored.
    let critical = lab.ticket("Server down", "The file server does not answer.", 4);
    let note_id = lab.sim.simulator.insert(
        "TicketNotes",
        json!({"ticketID": critical, "title": "Customer update",
            "description": "Still down after 3 hours, this is ridiculous.", "noteType": 1, "publish": 1}),
    );
    let exec = lab
        .run(wf, json!({"ticket_id": critical, "note_id": note_id}))
        .await;
    succeeded(&exec);
    assert_eq!(exec["output"]["escalated"], true);
    assert_eq!(lab.record("Tickets", critical)["priority"], 4);
    assert_eq!(lab.messages("teams").len(), 2);
}

#[tokio::test]
async fn openai_ticket_sentiment_can_tell_slack() {
    let lab = lab().await;
    lab.install("openai-ticket-sentiment", &["notify=slack"])
        .await;
    let angry = lab.ticket("VPN", "Frustrated: the VPN is useless again!", 2);
    let exec = lab
        .run(
            "openai-ticket-sentiment--acme-dental",
            json!({"ticket_id": angry}),
        )
        .await;
    succeeded(&exec);
    assert_eq!(lab.record("Tickets", angry)["priority"], 1);
    assert!(lab.messages("teams").is_empty());
    let slack = lab.messages("slack");
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert!(slack[0].contains("Unhappy customer"), "{}", slack[0]);
}

#[tokio::test]
async fn openai_suggest_ticket_response_adds_one_internal_note() {
    let lab = lab().await;
    lab.install(
        "openai-suggest-ticket-response",
        &["company_name=BrightPath IT"],
    )
    .await;
    let wf = "openai-suggest-ticket-response--acme-dental";
    let t = lab.ticket(
        "Password expired",
        "I am locked out, my password expired over the weekend.",
        2,
    );
    for _ in 0..2 {
        let exec = lab.run(wf, json!({"ticket_id": t})).await;
        succeeded(&exec);
    }
    let notes = lab.notes_titled(t, "Suggested response (weft)");
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let text = notes[0]["description"].as_str().unwrap();
    assert!(text.contains("I have reset your password"), "{text}");
    assert!(text.contains("review before sending"), "{text}");
    assert_eq!(notes[0]["publish"], 2);
    assert_eq!(notes[0]["noteType"], 13);
    let asked = lab.sim.simulator.openai_requests();
    assert_eq!(asked.len(), 1, "the model is not asked again: {asked:#?}");
    let system = asked[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("BrightPath IT"), "{system}");
}

fn alert(id: &str) -> Value {
    json!({"alert": {"id": id, "device": "ACME-SRV01", "severity": "high", "category": "backup",
        "summary": "Backup job failed", "details": {"job": "Nightly", "error": "VSS timeout"},
        "source": "NinjaOne"}})
}

fn tickets_with_external_id(lab: &Lab, id: &str) -> Vec<Value> {
    lab.sim
        .simulator
        .records("Tickets")
        .into_iter()
        .filter(|t| t["externalID"] == id)
        .collect()
}

#[tokio::test]
async fn rmm_alert_to_ticket_opens_one_ticket_per_alert() {
    let lab = lab().await;
    lab.install(
        "rmm-alert-to-ticket",
        &[r#"queue_by_category={"backup": 29682833}"#, "notify=slack"],
    )
    .await;
    let wf = "rmm-alert-to-ticket--acme-dental";
    let first = lab.run(wf, alert("ninja-1001")).await;
    succeeded(&first);
    let again = lab.run(wf, alert("ninja-1001")).await;
    succeeded(&again);
    assert_eq!(again["output"]["duplicate"], true);
    assert_eq!(again["output"]["ticket_id"], first["output"]["ticket_id"]);
    let tickets = tickets_with_external_id(&lab, "ninja-1001");
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let t = &tickets[0];
    assert_eq!(t["companyID"], 174);
    assert_eq!(t["priority"], 1);
    assert_eq!(t["queueID"], 29682833);
    assert!(t["title"].as_str().unwrap().contains("ACME-SRV01"));
    assert!(t["description"].as_str().unwrap().contains("VSS timeout"));
    let slack = lab.messages("slack");
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert!(slack[0].contains(t["ticketNumber"].as_str().unwrap()));

    // Another alert id: another ticket, in the default queue.
    let mut other = alert("ninja-1002");
    other["alert"]["category"] = json!("disk");
    let exec = lab.run(wf, other).await;
    succeeded(&exec);
    let t2 = &tickets_with_external_id(&lab, "ninja-1002")[0];
    assert_eq!(t2["queueID"], 29683354);
    assert_eq!(lab.messages("slack").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmm_alert_to_ticket_through_its_webhook_under_serve() {
    let lab = lab().await;
    let out = lab.install("rmm-alert-to-ticket", &["--enable"]).await;
    assert!(
        out.contains("/hooks/rmm-alert--acme-dental/acme-dental"),
        "{out}"
    );
    let server = lab.serve();
    let secret = server.webhook_secret("rmm-alert--acme-dental").await;
    let path = "/hooks/rmm-alert--acme-dental/acme-dental";
    let body = alert("datto-77");
    let send = |secret: String, body: Value| {
        let server = &server;
        async move {
            server
                .call("POST", path, &[("x-weft-secret", &secret)], Some(body))
                .await
        }
    };

    let first = send(secret.clone(), body.clone()).await;
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1["duplicate"], false, "{first:?}");
    let tickets = tickets_with_external_id(&lab, "datto-77");
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let t = &tickets[0];
    assert_eq!(first.1["ticket_id"], t["id"]);
    assert_eq!(t["companyID"], 174);
    assert_eq!(t["priority"], 1);
    let teams = lab.messages("teams");
    assert_eq!(teams.len(), 1, "{teams:#?}");
    assert!(teams[0].contains(t["ticketNumber"].as_str().unwrap()));

    // Sent again by the RMM: the same ticket, no new message.
    let again = send(secret.clone(), body.clone()).await;
    assert_eq!(again.0, 200, "{again:?}");
    assert_eq!(again.1["duplicate"], true, "{again:?}");
    assert_eq!(again.1["ticket_id"], t["id"]);
    assert_eq!(tickets_with_external_id(&lab, "datto-77").len(), 1);
    assert_eq!(lab.messages("teams").len(), 1);

    // A resolved alert is filtered; a wrong secret is refused.
    let mut resolved = alert("datto-77");
    resolved["alert"]["status"] = json!("resolved");
    let filtered = send(secret.clone(), resolved).await;
    assert_eq!(filtered.0, 200, "{filtered:?}");
    assert_eq!(filtered.1["accepted"], false, "{filtered:?}");
    assert_eq!(send("whsec_wrong".into(), body).await.0, 401);
}
