//! The crates of `crates-library/`, each installed for a client org with `weft crate install`
//! and run as installed (`NAME--ORG`) against the in-process Autotask simulator; the test
//! checks what changed in the simulator.

use crate::support::lab::{Lab, lab, ok, succeeded};
use serde_json::{Value, json};

#[tokio::test]
async fn every_library_crate_validates_and_is_listed() {
    let lab = lab().await;
    let out = ok(&lab.weft(&["crate", "list"]).await);
    for name in [
        "assign-configuration-item-by-contact",
        "asset-registration",
        "client-onboarding",
        "user-offboarding-request",
        "new-user-request-form-link",
        "contract-renewal",
        "bulk-create-clients-from-psa",
        "psa-directory-nightly-sync",
        "openai-ticket-categorization",
        "openai-ticket-sentiment",
        "openai-suggest-ticket-response",
        "rmm-alert-to-ticket",
        "browse-forms-attach-to-ticket",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    let library = concat!(env!("CARGO_MANIFEST_DIR"), "/crates-library");
    let out = lab
        .env
        .weft_no_db(&["validate", "--deny-warnings", library]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn assign_configuration_item_by_contact_attaches_the_only_device() {
    let lab = lab().await;
    lab.install("assign-configuration-item-by-contact", &[])
        .await;
    // Ticket 7804: contact 30682081 at company 177 has exactly one active device.
    let exec = lab
        .run(
            "assign-configuration-item-by-contact--acme-dental",
            json!({"ticket_id": 7804}),
        )
        .await;
    succeeded(&exec);
    assert_eq!(lab.record("Tickets", 7804)["configurationItemID"], 29683701);
    assert!(
        lab.notes_of(7804)
            .iter()
            .any(|n| n["title"] == "Configuration item attached")
    );
    // Ticket 7802: two candidates → nothing attached, a note lists them.
    let exec = lab
        .run(
            "assign-configuration-item-by-contact--acme-dental",
            json!({"ticket_id": 7802}),
        )
        .await;
    succeeded(&exec);
    assert!(lab.record("Tickets", 7802)["configurationItemID"].is_null());
    let note = lab
        .notes_of(7802)
        .into_iter()
        .find(|n| n["title"] == "Which device is this about?")
        .expect("a note listing the candidates");
    assert!(note["description"].as_str().unwrap().contains("29683714"));
}

#[tokio::test]
async fn offboarding_and_new_user_requests_get_one_note_and_wait() {
    let lab = lab().await;
    lab.install("user-offboarding-request", &["ticket_category=2"])
        .await;
    for _ in 0..2 {
        let exec = lab
            .run(
                "user-offboarding-request--acme-dental",
                json!({"ticket_id": 7801}),
            )
            .await;
        succeeded(&exec);
    }
    let notes: Vec<Value> = lab
        .notes_of(7801)
        .into_iter()
        .filter(|n| n["title"] == "Offboarding checklist")
        .collect();
    assert_eq!(notes.len(), 1, "a second event adds nothing");
    assert!(
        notes[0]["description"]
            .as_str()
            .unwrap()
            .contains("/forms/wfs_"),
        "a single-use link to the crate's form: {notes:?}"
    );
    assert_eq!(lab.record("Tickets", 7801)["status"], 7);

    lab.install("new-user-request-form-link", &[]).await;
    // Ticket 7800 ("Replace failing hard drive") is not a new-user request.
    let exec = lab
        .run(
            "new-user-request-form-link--acme-dental",
            json!({"ticket_id": 7800}),
        )
        .await;
    succeeded(&exec);
    assert_eq!(exec["output"]["handled"], false);
    assert!(
        lab.notes_of(7800)
            .iter()
            .all(|n| n["title"] != "New user checklist")
    );
}

#[tokio::test]
async fn asset_registration_creates_once_and_reminds_once() {
    let lab = lab().await;
    lab.install("asset-registration", &["product_id=29682900"])
        .await;
    let device = json!({"device": {"hostname": "ACME-LT-042", "serial": "5CG1234XYZ", "role": "laptop",
        "model": "HP EliteBook 840", "warranty_expires": "2029-03-31"}});
    let first = lab
        .run("asset-registration--acme-dental", device.clone())
        .await;
    succeeded(&first);
    let ci = first["output"]["configuration_item_id"].as_i64().unwrap();
    let item = lab.record("ConfigurationItems", ci);
    assert_eq!(item["companyID"], 174, "the org's mapped company");
    assert_eq!(item["serialNumber"], "5CG1234XYZ");
    assert_eq!(item["configurationItemType"], 1);
    let ticket = first["output"]["reminder_ticket_id"].as_i64().unwrap();
    assert_eq!(
        lab.record("Tickets", ticket)["dueDateTime"],
        "2029-03-01T09:00:00Z",
        "30 days before the warranty ends"
    );
    let again = lab.run("asset-registration--acme-dental", device).await;
    succeeded(&again);
    assert_eq!(
        again["output"]["configuration_item_id"], ci,
        "the same serial updates"
    );
    assert_eq!(again["output"]["updated_existing"], true);
    assert!(
        again["output"]["reminder_ticket_id"].is_null(),
        "one reminder per device"
    );
}

#[tokio::test]
async fn client_onboarding_creates_the_client_once() {
    let lab = lab().await;
    lab.install("client-onboarding", &["owner_resource_id=29682885"])
        .await;
    let form = json!({
        "company": {"name": "Harbor Vet Clinic", "phone": "555-0100", "city": "Portland"},
        "contacts": [
            {"first_name": "Ana", "last_name": "Ruiz", "email": "ana@harborvet.example", "primary": true},
            {"first_name": "Bo", "last_name": "Lee", "email": "bo@harborvet.example"},
            {"first_name": "Ana", "last_name": "Ruiz", "email": "ana@harborvet.example"}
        ],
        "contract": {"name": "Managed Services", "start_date": "2026-12-01", "end_date": "2027-11-30"}
    });
    let exec = lab
        .run("client-onboarding--acme-dental", form.clone())
        .await;
    succeeded(&exec);
    let company = exec["output"]["company_id"].as_i64().unwrap();
    assert_eq!(
        lab.record("Companies", company)["companyName"],
        "Harbor Vet Clinic"
    );
    let contacts: Vec<Value> = lab
        .sim
        .simulator
        .records("Contacts")
        .into_iter()
        .filter(|c| c["companyID"] == company)
        .collect();
    assert_eq!(contacts.len(), 2, "an email listed twice is one contact");
    let project = exec["output"]["project_id"].as_i64().unwrap();
    let tasks = lab
        .sim
        .simulator
        .records("Tasks")
        .into_iter()
        .filter(|t| t["projectID"] == project)
        .count();
    assert_eq!(tasks, 7, "one task per default checklist step");
    let kickoff = exec["output"]["kickoff_ticket_id"].as_i64().unwrap();
    assert_eq!(
        lab.record("Tickets", kickoff)["contractID"],
        exec["output"]["contract_id"]
    );
    // The same form again: refused, nothing created twice.
    let again = lab.run("client-onboarding--acme-dental", form).await;
    assert_eq!(again["status"], "failed");
    assert!(again["error"].as_str().unwrap().contains("already exists"));
    let same_name = lab
        .sim
        .simulator
        .records("Companies")
        .into_iter()
        .filter(|c| c["companyName"] == "Harbor Vet Clinic")
        .count();
    assert_eq!(same_name, 1);
}

#[tokio::test]
async fn contract_renewal_tickets_emails_and_marks_once() {
    let lab = lab().await;
    let smtp = lab.email_sink().await;
    lab.install("contract-renewal", &["reply_to=am@brightpath.example"])
        .await;
    // Contract 29683500 of Acme Dental (174) ends within 30 days; its contact 30682000 gets an
    // address to write to.
    lab.contract_ending_in(29683500, 10);
    let mut contact = lab.record("Contacts", 30682000);
    contact["emailAddress"] = json!("kenji@acme-dental.example");
    lab.sim.simulator.insert("Contacts", contact);
    let exec = lab.run("contract-renewal--acme-dental", json!({})).await;
    succeeded(&exec);
    let renewals = exec["output"]["renewals"].as_array().unwrap().clone();
    assert!(renewals.contains(&json!(29683500)), "{exec:#}");
    let tickets: Vec<Value> = lab
        .sim
        .simulator
        .records("Tickets")
        .into_iter()
        .filter(|t| {
            t["contractID"] == 29683500
                && t["title"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Contract renewal:")
        })
        .collect();
    assert_eq!(tickets.len(), 1);
    assert!(
        lab.record("Contracts", 29683500)["description"]
            .as_str()
            .unwrap()
            .contains("Renewal pending")
    );
    let mails = smtp.messages();
    assert_eq!(
        mails.len(),
        renewals.len(),
        "one email per contract with a contact"
    );
    assert!(
        mails.iter().any(|m| {
            m.to.iter().any(|t| t == "kenji@acme-dental.example")
                && m.data.contains("Reply-To: am@brightpath.example")
        }),
        "{mails:?}"
    );
    // The next night: an open renewal ticket exists, nothing is repeated.
    let again = lab.run("contract-renewal--acme-dental", json!({})).await;
    succeeded(&again);
    assert_eq!(again["output"]["renewals"], json!([]));
    assert_eq!(smtp.messages().len(), mails.len());
}

async fn org_count(lab: &Lab) -> usize {
    let out = ok(&lab.weft(&["org", "list", "--json"]).await);
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or_else(|| panic!("org list --json: {out}"))
}

#[tokio::test]
async fn bulk_create_clients_from_psa_previews_then_creates_through_the_api() {
    let lab = lab().await;
    let server = lab.serve();
    let url = server.grant_crates(&lab).await;
    let mut args = vec![
        "crate",
        "install",
        "bulk-create-clients-from-psa",
        "--org",
        "brightpath-it",
    ];
    args.extend(["--param", &url]);
    ok(&lab.weft(&args).await);
    let before = org_count(&lab).await;
    async fn run(lab: &Lab, dry: bool) -> Value {
        let out = lab
            .weft(&[
                "run",
                "bulk-create-clients-from-psa--brightpath-it",
                "--org",
                "brightpath-it",
                "--input",
                if dry { "dry_run=true" } else { "dry_run=false" },
                "--json",
            ])
            .await;
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
    let preview = run(&lab, true).await;
    succeeded(&preview);
    assert_eq!(org_count(&lab).await, before, "a dry run creates nothing");
    let created = run(&lab, false).await;
    succeeded(&created);
    let after = org_count(&lab).await;
    assert!(
        after > before + 5,
        "customer companies became orgs: {before} → {after}"
    );
    let mappings = ok(&lab.weft(&["mapping", "list", "--json"]).await);
    assert!(
        mappings.contains("\"174\"") || mappings.contains(": 174"),
        "acme-dental keeps its mapping"
    );
    let again = run(&lab, false).await;
    succeeded(&again);
    assert_eq!(org_count(&lab).await, after, "a second run creates nothing");
}

#[tokio::test]
async fn psa_directory_nightly_sync_applies_its_toggles_and_syncs() {
    let lab = lab().await;
    let server = lab.serve();
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
            "auto_create_clients=true",
        ])
        .await);
    let out = lab
        .weft(&[
            "run",
            "psa-directory-nightly-sync--brightpath-it",
            "--org",
            "brightpath-it",
            "--json",
        ])
        .await;
    let exec: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    succeeded(&exec);
    assert!(exec["output"]["run_id"].as_i64().is_some(), "{exec:#}");
    let settings: Value = serde_json::from_str(&ok(&lab
        .weft(&["sync", "autotask", "settings", "--json"])
        .await))
    .unwrap();
    assert_eq!(settings["auto_create_clients"], true, "{settings}");
    assert!(
        settings["schedule"].is_null(),
        "the crate's cron replaces the built-in schedule"
    );
    let runs = ok(&lab.weft(&["sync", "runs", "--json"]).await);
    let runs: Value = serde_json::from_str(&runs).unwrap();
    assert!(runs.as_array().unwrap().len() >= 2, "{runs}");
}
