//! The crates that ship forms, installed for a client org and driven the way people use them
//! under `weft serve` and the simulator: a new ticket gets a note with a single-use link to
//! the crate's form, the contact opens it (options filled from the simulator), submits, and
//! the answers come back to the ticket; the technician's attach form lists the org's forms
//! and open tickets and posts a link into the chosen ticket.

use serde_json::{Value, json};

use crate::crates_triggers::ended;
use crate::forms_page::{csrf, path_of};
use crate::support::lab::{Lab, Server, create_via_api, eventually, lab, ok};

/// The `/forms/…` path of the first form link in a text.
fn link_in(text: &str) -> String {
    path_of(text)
        .split_whitespace()
        .next()
        .expect("a link")
        .to_string()
}

/// Waits until the ticket has one note titled `title`; answers it.
async fn note_titled(lab: &Lab, ticket: i64, title: &str) -> Value {
    eventually(60, &format!("a note `{title}` on ticket {ticket}"), || {
        !lab.notes_titled(ticket, title).is_empty()
    })
    .await;
    let notes = lab.notes_titled(ticket, title);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    notes[0].clone()
}

/// Waits until the simulator has the crate's active webhook.
async fn webhook_registered(lab: &Lab, workflow: &str) {
    let name = format!("weft: {workflow}.");
    eventually(30, &format!("the Autotask webhook of {workflow}"), || {
        lab.sim.simulator.records("TicketWebhooks").iter().any(|w| {
            w["name"].as_str().is_some_and(|n| n.starts_with(&name)) && w["isActive"] == true
        })
    })
    .await;
}

/// A new Acme Dental ticket titled `title`, created through the simulator's API (its callout
/// starts the crate's request workflow), the note `note_title` that workflow adds to it, and
/// the form link in that note on the test server.
async fn ticket_with_link(
    lab: &Lab,
    server: &Server,
    title: &str,
    note_title: &str,
) -> (i64, Value, String) {
    let ticket = create_via_api(
        &lab.sim,
        "Tickets",
        json!({"companyID": 174, "title": title, "description": "From the customer portal.",
            "status": 1, "priority": 3, "queueID": 8}),
    )
    .await;
    let note = note_titled(lab, ticket, note_title).await;
    let url = format!(
        "{}{}",
        server.url,
        link_in(note["description"].as_str().unwrap())
    );
    (ticket, note, url)
}

/// Opens a form page: its text and its `_csrf` value.
async fn open(http: &reqwest::Client, url: &str) -> (String, String) {
    let res = http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let page = res.text().await.unwrap();
    let token = csrf(&page);
    (page, token)
}

/// Posts answers to a form page; the status and the page answered.
async fn post(http: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let res = http.post(url).form(fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Opens a form page and posts `answers` with its `_csrf`; the status and the page answered.
async fn fill_in(http: &reqwest::Client, url: &str, answers: &[(&str, &str)]) -> (u16, String) {
    let (_, token) = open(http, url).await;
    let mut fields = vec![("_csrf", token.as_str())];
    fields.extend_from_slice(answers);
    post(http, url, &fields).await
}

/// The org's standing link to a form, on the test server.
async fn standing_link(lab: &Lab, server: &Server, form: &str) -> String {
    let link: Value = serde_json::from_str(&ok(&lab
        .weft(&["form", "link", form, "--org", "acme-dental", "--json"])
        .await))
    .unwrap();
    format!("{}{}", server.url, path_of(link["url"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_user_request_sends_a_single_use_link_and_the_answers_come_back_to_the_ticket() {
    let lab = lab().await;
    lab.install("new-user-request-form-link", &["--enable"])
        .await;
    // The crate's form and its options workflow are deployed under their own names.
    let shown: Value = serde_json::from_str(&ok(&lab
        .weft(&["form", "show", "new-user-request", "--json"])
        .await))
    .unwrap();
    assert_eq!(
        shown["path"], "crate:new-user-request-form-link/new-user-request.yaml",
        "{shown}"
    );
    let server = lab.serve();
    webhook_registered(&lab, "new-user-request-form-link--acme-dental").await;

    let (joiner, note, url) = ticket_with_link(
        &lab,
        &server,
        "New user: Sam Lee starts Monday",
        "New user checklist",
    )
    .await;
    assert_eq!(note["publish"], 1, "visible to the contact: {note}");
    assert!(url.contains("/forms/wfs_"), "a signed link: {url}");
    eventually(20, "the ticket waits for the customer", || {
        lab.record("Tickets", joiner)["status"] == 7
    })
    .await;

    let http = reqwest::Client::new();
    let (page, token) = open(&http, &url).await;
    assert!(
        !page.contains("name=\"ticket_id\""),
        "the ticket id is signed into the link, not in the page: {page}"
    );
    assert!(
        page.contains("<option value=\"30682080\">Linda Moore</option>"),
        "the managers are the org's contacts in Autotask: {page}"
    );
    let answers = [
        ("_csrf", token.as_str()),
        ("first_name", "Sam"),
        ("last_name", "Lee"),
        ("job_title", "Dental nurse"),
        ("start_date", "2027-01-04"),
        ("manager", "30682080"),
        ("licence", "m365_standard"),
        ("devices", "laptop"),
        ("devices", "phone"),
        ("remote", "on"),
        ("shipping_address", "1 Main St\nSpringfield"),
        ("ticket_id", "1"),
    ];
    let (status, done) = post(&http, &url, &answers).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Sam Lee"), "{done}");

    let runs = ended(&server, "new-user-request-submitted--acme-dental", 1).await;
    let exec = server.finished(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    assert_eq!(
        exec["trigger"]["form"]["prefill"]["ticket_id"], joiner,
        "a posted ticket_id changes nothing: {exec:#}"
    );
    let answered = note_titled(&lab, joiner, "New user request: the answers").await;
    let text = answered["description"].as_str().unwrap();
    for line in [
        "First name: Sam",
        "Job title: Dental nurse",
        "Start date: 2027-01-04",
        "Manager: Linda Moore",
        "Licence: Microsoft 365 Business Standard",
        "Devices: Laptop, Mobile phone",
        "Works remotely: yes",
        "Shipping address: 1 Main St, Springfield",
        "Notes: -",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    assert_eq!(
        lab.record("Tickets", joiner)["status"],
        8,
        "moved on to In Progress"
    );

    // The link worked once.
    let (status, page) = post(&http, &url, &answers).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 410);

    // Through the org's standing link there is no ticket: one is opened with the answers.
    let standing = standing_link(&lab, &server, "new-user-request").await;
    let (status, done) = fill_in(
        &http,
        &standing,
        &[
            ("first_name", "Ana"),
            ("last_name", "Ruiz"),
            ("start_date", "2027-02-01"),
            ("licence", "m365_basic"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let runs = ended(&server, "new-user-request-submitted--acme-dental", 2).await;
    let exec = server.finished(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
    assert_eq!(exec["output"]["opened"], true, "{exec:#}");
    let opened = lab.record("Tickets", exec["output"]["ticket_id"].as_i64().unwrap());
    assert_eq!(opened["companyID"], 174);
    assert_eq!(opened["title"], "Set up Ana Ruiz, starting 2027-02-01");
    let description = opened["description"].as_str().unwrap();
    assert!(
        description.contains("Licence: Microsoft 365 Business Basic")
            && description.contains("Devices: none"),
        "{description}"
    );
    // The request workflow saw that ticket too, and left it alone (not a new-user title).
    let requests = ended(&server, "new-user-request-form-link--acme-dental", 2).await;
    assert_eq!(requests[0]["status"], "succeeded", "{:#}", requests[0]);
    assert!(
        lab.notes_titled(opened["id"].as_i64().unwrap(), "New user checklist")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_request_answers_come_back_to_the_ticket() {
    let lab = lab().await;
    lab.install("user-offboarding-request", &["--enable"]).await;
    let server = lab.serve();
    webhook_registered(&lab, "user-offboarding-request--acme-dental").await;
    let (leaver, _, url) = ticket_with_link(
        &lab,
        &server,
        "Offboarding: Olga Miller leaves on Friday",
        "Offboarding checklist",
    )
    .await;
    let http = reqwest::Client::new();
    let (page, token) = open(&http, &url).await;
    assert!(
        page.contains("<option value=\"30682040\">Olga Miller</option>"),
        "{page}"
    );
    assert!(
        page.contains("data-field=\"forward_to\" data-conditional hidden"),
        "forward-to shows only for forwarding: {page}"
    );
    // Forwarding without saying to whom is refused, the answers kept.
    let mut answers = vec![
        ("_csrf", token.as_str()),
        ("leaver", "30682040"),
        ("last_day", "2027-01-29"),
        ("mailbox", "forward"),
        ("device_return", "on"),
    ];
    let (status, page) = post(&http, &url, &answers).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("Forward to is required"), "{page}");
    answers.push(("forward_to", "30682080"));
    let (status, page) = post(&http, &url, &answers).await;
    assert_eq!(status, 200, "{page}");

    let runs = ended(&server, "user-offboarding-submitted--acme-dental", 1).await;
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    let answered = note_titled(&lab, leaver, "Offboarding request: the answers").await;
    let text = answered["description"].as_str().unwrap();
    for line in [
        "Leaver: Olga Miller",
        "Last working day: 2027-01-29",
        "Mailbox: Forward to their manager",
        "Forward to: Linda Moore <linda.moore80@acme.example>",
        "Equipment to return: yes",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    assert_eq!(lab.record("Tickets", leaver)["status"], 8);
    assert_eq!(post(&http, &url, &answers).await.0, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_attaches_one_of_the_orgs_forms_to_an_open_ticket() {
    let lab = lab().await;
    lab.install("new-user-request-form-link", &["--enable"])
        .await;
    lab.install("browse-forms-attach-to-ticket", &["--enable"])
        .await;
    let server = lab.serve();
    let http = reqwest::Client::new();
    let url = standing_link(&lab, &server, "attach-form-to-ticket").await;
    let (page, token) = open(&http, &url).await;
    assert!(
        page.contains("<option value=\"new-user-request\">"),
        "the org's forms: {page}"
    );
    assert!(
        !page.contains("<option value=\"attach-form-to-ticket\">"),
        "not the attach form itself: {page}"
    );
    // Acme Dental's open tickets (7827, 7854, 7881), not its completed one (7908) nor
    // another company's.
    for open_ticket in [7827, 7854, 7881] {
        assert!(
            page.contains(&format!("<option value=\"{open_ticket}\">")),
            "{open_ticket}: {page}"
        );
    }
    assert!(!page.contains("<option value=\"7908\">"), "{page}");
    assert!(
        page.contains("Set up shared mailbox"),
        "labelled by number and title: {page}"
    );

    let (status, done) = post(
        &http,
        &url,
        &[
            ("_csrf", token.as_str()),
            ("form", "new-user-request"),
            ("ticket", "7827"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done.contains("was attached to ticket"),
        "the technician is told: {done}"
    );
    let note = lab
        .notes_of(7827)
        .into_iter()
        .find(|n| {
            n["description"]
                .as_str()
                .is_some_and(|d| d.contains("/forms/wfs_"))
        })
        .expect("a note with the link");
    assert_eq!(note["publish"], 1, "visible to the contact: {note}");
    let link = format!(
        "{}{}",
        server.url,
        link_in(note["description"].as_str().unwrap())
    );
    let (page, _) = open(&http, &link).await;
    assert!(page.contains("New user request"), "{page}");
    // The ticket id is signed into the link: the answers come back to ticket 7827.
    let (status, done) = fill_in(
        &http,
        &link,
        &[
            ("first_name", "Bo"),
            ("last_name", "Lee"),
            ("start_date", "2027-03-01"),
            ("licence", "m365_premium"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let answered = note_titled(&lab, 7827, "New user request: the answers").await;
    assert!(
        answered["description"]
            .as_str()
            .unwrap()
            .contains("First name: Bo"),
        "{answered}"
    );
    // A ticket the form did not offer is refused.
    let (status, _) = fill_in(
        &http,
        &url,
        &[("form", "new-user-request"), ("ticket", "7908")],
    )
    .await;
    assert_eq!(status, 422);
}
