//! `weft sync autotask` against the in-process Autotask simulator, through the real binary:
//! the first sync's preview and apply, exclusions, auto-create, invalid configuration items,
//! deactivation, paging through thousands of contacts, idempotence and the run records.

use std::collections::HashSet;
use std::process::Output;

use crate::support::Env;
use serde_json::{Value, json};
use weft_engine::store::{DirectoryRecord, Store};
use weft_sim::{RunningSim, SimConfig, Simulator};

fn integrations(env: &Env, sim: &RunningSim) -> String {
    let creds = SimConfig::default();
    let path = env.dir.path().join("integrations.yaml");
    std::fs::write(
        &path,
        format!(
            "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n    secrets:\n      secret: {}\n",
            creds.username, creds.integration_code, sim.base_url, creds.secret
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// `weft ARGS --integrations FILE` in a blocking thread (the simulator runs on this runtime).
async fn weft(env: &Env, file: &str, args: &[&str]) -> Output {
    let mut cmd = env.cmd(args);
    cmd.arg("--integrations").arg(file);
    tokio::task::spawn_blocking(move || cmd.output().expect("weft runs"))
        .await
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn sync_json(env: &Env, file: &str, mode: &str) -> Value {
    let out = weft(env, file, &["sync", "autotask", mode, "--json"]).await;
    let stdout = ok(&out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}"))
}

async fn store(env: &Env) -> std::sync::Arc<dyn Store> {
    weft_engine::store::open(&env.db).await.unwrap()
}

async fn dir(env: &Env, kind: &str) -> Vec<DirectoryRecord> {
    store(env)
        .await
        .directory("autotask", kind, None)
        .await
        .unwrap()
}

fn names(report: &Value, kind: &str, list: &str) -> Vec<String> {
    report["kinds"][kind][list]
        .as_array()
        .unwrap_or_else(|| panic!("{kind}.{list} in {report}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn count(report: &Value, kind: &str, what: &str) -> u64 {
    report["kinds"][kind][what]
        .as_u64()
        .unwrap_or_else(|| panic!("{kind}.{what} in {report}"))
}

fn no_changes(report: &Value) {
    for kind in ["company", "user", "contact", "configuration", "location"] {
        for what in ["created", "matched", "updated", "deactivated"] {
            assert_eq!(count(report, kind, what), 0, "{kind}.{what}: {report:#}");
        }
        assert!(count(report, kind, "unchanged") > 0, "{kind}: {report:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_sync_matches_by_name_creates_the_rest_and_keeps_the_directory_current() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let env = Env::new();
    let file = integrations(&env, &sim);
    ok(&weft(&env, &file, &["org", "add", "BrightPath MSP"]).await);
    ok(&weft(
        &env,
        &file,
        &["org", "add", "Acme Dental", "--parent", "brightpath-msp"],
    )
    .await);
    ok(&weft(
        &env,
        &file,
        &[
            "org",
            "add",
            "SUMMIT  law Group",
            "--parent",
            "brightpath-msp",
        ],
    )
    .await);
    // Excluded before any sync: remembered, listed, never created.
    ok(&weft(
        &env,
        &file,
        &["sync", "autotask", "exclude", "company", "276"],
    )
    .await);
    let resource = sim.simulator.records("Resources")[3].clone();
    let resource_id = resource["id"].to_string();
    ok(&weft(
        &env,
        &file,
        &["sync", "autotask", "exclude", "user", &resource_id],
    )
    .await);

    // The preview: matches by identical name, creations, exclusions; nothing changes.
    let preview = sync_json(&env, &file, "--preview").await;
    assert_eq!(preview["first_sync"], true);
    let matched = names(&preview, "company", "to_match");
    assert!(
        matched.contains(&"Acme Dental → Acme Dental".to_string()),
        "{matched:?}"
    );
    assert!(
        matched.contains(&"Summit Law Group → SUMMIT  law Group".to_string()),
        "{matched:?}"
    );
    assert!(
        matched.contains(&"BrightPath IT Services → BrightPath MSP".to_string()),
        "company 0 is the MSP itself: {matched:?}"
    );
    let to_create = names(&preview, "company", "to_create");
    assert!(to_create.contains(&"Cedar Logistics".to_string()));
    assert!(
        !to_create.contains(&"Foxglove Logistics".to_string()),
        "inactive companies are not created"
    );
    assert!(!to_create.contains(&"Highland Realty".to_string()));
    assert_eq!(count(&preview, "company", "excluded"), 1);
    assert_eq!(count(&preview, "user", "excluded"), 1);
    let user_names = names(&preview, "user", "to_create");
    assert!(!user_names.contains(&format!(
        "{} {}",
        resource["firstName"].as_str().unwrap(),
        resource["lastName"].as_str().unwrap()
    )));
    let errors = preview["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["external_id"] == "29683706"
            && e["error"]
                .as_str()
                .unwrap()
                .contains("configurationItemType")),
        "{errors:?}"
    );
    let text = ok(&weft(&env, &file, &["sync", "autotask", "--preview"]).await);
    assert!(
        text.contains("to create") && text.contains("… and"),
        "{text}"
    );
    {
        let s = store(&env).await;
        assert_eq!(
            s.list_orgs().await.unwrap().len(),
            3,
            "a preview changes nothing"
        );
        assert!(s.mappings("autotask").await.unwrap().is_empty());
        assert!(dir(&env, "contact").await.is_empty());
    }

    // The first apply does what the preview listed.
    let applied = sync_json(&env, &file, "--apply").await;
    assert_eq!(
        count(&applied, "company", "created") as usize,
        to_create.len()
    );
    assert_eq!(count(&applied, "company", "matched"), 3);
    let s = store(&env).await;
    let orgs = s.list_orgs().await.unwrap();
    assert_eq!(orgs.len(), 3 + to_create.len());
    let cedar = s.org("Cedar Logistics").await.unwrap();
    assert_eq!(cedar.parent_id.as_deref(), Some("brightpath-msp"));
    let sim_cedar = sim
        .simulator
        .records("Companies")
        .into_iter()
        .find(|c| c["id"] == 189)
        .unwrap();
    assert_eq!(cedar.attributes["city"], sim_cedar["city"], "{cedar:?}");
    let acme = s.org("acme-dental").await.unwrap();
    assert_eq!(acme.attributes["autotaskCompanyID"], 174);
    assert!(s.org("Highland Realty").await.is_err());
    let mappings = s.mappings("autotask").await.unwrap();
    assert!(
        mappings
            .iter()
            .any(|m| m.org_id == "acme-dental" && m.external_id == "174")
    );
    // Contacts, configuration items and locations hang off their company's org.
    let contacts = dir(&env, "contact").await;
    let acme_contacts = sim
        .simulator
        .records("Contacts")
        .into_iter()
        .filter(|c| c["companyID"] == 174 && c["isActive"] != 0)
        .count();
    assert_eq!(
        contacts
            .iter()
            .filter(|c| c.org_id.as_deref() == Some("acme-dental"))
            .count(),
        acme_contacts
    );
    let cis = dir(&env, "configuration").await;
    assert!(!cis.is_empty());
    assert!(
        !cis.iter().any(|c| c.external_id == "29683706"),
        "a CI without asset type is not imported"
    );
    assert!(!dir(&env, "location").await.is_empty());
    let users = dir(&env, "user").await;
    assert!(!users.iter().any(|u| u.external_id == resource_id));
    let excluded = ok(&weft(&env, &file, &["sync", "autotask", "excluded", "--json"]).await);
    let excluded: Value = serde_json::from_str(&excluded).unwrap();
    assert!(
        excluded
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["external_id"] == "276" && e["name"] == "Highland Realty"),
        "{excluded}"
    );

    // A second apply with no PSA change changes nothing.
    let before: Vec<DirectoryRecord> = dir(&env, "contact").await;
    let again = sync_json(&env, &file, "--apply").await;
    assert_eq!(again["first_sync"], false);
    no_changes(&again);
    assert_eq!(count(&again, "company", "excluded"), 1, "remembered");
    assert_eq!(dir(&env, "contact").await, before, "updated_at kept");

    // A company added after the first sync waits while auto-create clients is off …
    sim.simulator.insert(
        "Companies",
        json!({"id": 9001, "companyName": "Zenith Partners", "companyType": 1, "isActive": true,
               "phone": "555", "ownerResourceID": 29682885, "city": "Leeds"}),
    );
    let r = sync_json(&env, &file, "--apply").await;
    assert_eq!(count(&r, "company", "pending"), 1);
    assert_eq!(
        names(&r, "company", "pending_names"),
        vec!["Zenith Partners"]
    );
    assert!(store(&env).await.org("Zenith Partners").await.is_err());
    // … and is created once it is on.
    ok(&weft(
        &env,
        &file,
        &[
            "sync",
            "autotask",
            "settings",
            "--auto-create-clients",
            "on",
        ],
    )
    .await);
    let shown = ok(&weft(&env, &file, &["sync", "autotask", "settings"]).await);
    assert!(shown.contains("auto-create clients:        on"), "{shown}");
    let r = sync_json(&env, &file, "--apply").await;
    assert_eq!(count(&r, "company", "created"), 1, "{r:#}");
    let zenith = store(&env).await.org("Zenith Partners").await.unwrap();
    assert_eq!(zenith.attributes["city"], "Leeds");

    // A configuration item missing its asset type is reported and skipped.
    sim.simulator.insert(
        "ConfigurationItems",
        json!({"id": 990001, "companyID": 174, "productID": 29682900, "isActive": true,
               "referenceTitle": "ACME-NOTYPE", "configurationItemType": null}),
    );
    let r = sync_json(&env, &file, "--apply").await;
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["external_id"] == "990001"),
        "{r:#}"
    );
    assert!(
        !dir(&env, "configuration")
            .await
            .iter()
            .any(|c| c.external_id == "990001")
    );

    // A company deactivated in Autotask: its record and its org become inactive.
    let mut cedar_rec = sim_cedar.clone();
    cedar_rec["isActive"] = json!(false);
    sim.simulator.insert("Companies", cedar_rec);
    let r = sync_json(&env, &file, "--apply").await;
    assert_eq!(count(&r, "company", "deactivated"), 1, "{r:#}");
    assert!(
        !store(&env)
            .await
            .org("Cedar Logistics")
            .await
            .unwrap()
            .active
    );
    let rec = dir(&env, "company")
        .await
        .into_iter()
        .find(|c| c.external_id == "189")
        .unwrap();
    assert!(!rec.active);

    // An excluded company is created on request.
    ok(&weft(
        &env,
        &file,
        &["sync", "autotask", "create", "company", "276"],
    )
    .await);
    let r = sync_json(&env, &file, "--apply").await;
    assert_eq!(count(&r, "company", "created"), 1, "{r:#}");
    assert!(store(&env).await.org("Highland Realty").await.is_ok());

    // Every run is recorded, previews included.
    let runs = ok(&weft(&env, &file, &["sync", "runs", "--json"]).await);
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 9, "{runs:#?}");
    assert_eq!(runs.last().unwrap()["mode"], "preview");
    assert_eq!(runs[0]["mode"], "apply");
    assert!(runs.iter().all(|r| r["finished_at"].is_string()));
    assert!(runs[0]["counts"]["contact"]["unchanged"].as_u64().unwrap() > 0);
    let text = ok(&weft(&env, &file, &["sync", "runs"]).await);
    assert!(
        text.contains("no changes") || text.contains("created"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_contacts_are_paged_and_all_imported() {
    let sim = Simulator::start_local(SimConfig::default().with_extra("Contacts", 2400)).await;
    let env = Env::new();
    let file = integrations(&env, &sim);
    ok(&weft(&env, &file, &["org", "add", "BrightPath MSP"]).await);
    sim.simulator.clear_request_log();
    let r = sync_json(&env, &file, "--apply").await;
    let synced: HashSet<i64> = sim
        .simulator
        .records("Companies")
        .into_iter()
        .filter(|c| c["isActive"] == true)
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let expected = sim
        .simulator
        .records("Contacts")
        .into_iter()
        .filter(|c| c["isActive"] != 0 && synced.contains(&c["companyID"].as_i64().unwrap_or(-1)))
        .count();
    assert!(expected > 2000);
    assert_eq!(count(&r, "contact", "created") as usize, expected);
    assert_eq!(dir(&env, "contact").await.len(), expected);
    let pages = sim
        .simulator
        .request_log()
        .iter()
        .filter(|e| format!("{e:?}").to_lowercase().contains("contacts/query"))
        .count();
    assert!(pages >= 5, "{pages} contact pages");
    let again = sync_json(&env, &file, "--apply").await;
    no_changes(&again);
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_match_weft_users_by_full_name_or_by_hand() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let env = Env::new();
    let file = integrations(&env, &sim);
    ok(&weft(&env, &file, &["org", "add", "BrightPath MSP"]).await);
    let user = |id: &str, name: &str| DirectoryRecord {
        source: "weft".into(),
        kind: "user".into(),
        external_id: id.into(),
        org_id: Some("brightpath-msp".into()),
        name: name.into(),
        data: json!({}),
        active: true,
        state: "created".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    };
    store(&env)
        .await
        .save_directory(&[user("u1", "JAMES  smith"), user("u2", "Bob Martin")])
        .await
        .unwrap();
    let bad = weft(
        &env,
        &file,
        &["sync", "autotask", "match", "user", "29682887", "nope"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    ok(&weft(
        &env,
        &file,
        &["sync", "autotask", "match", "user", "29682887", "u2"],
    )
    .await);
    let preview = sync_json(&env, &file, "--preview").await;
    let matched = names(&preview, "user", "to_match");
    assert!(
        matched.contains(&"James Smith → JAMES  smith".to_string()),
        "{matched:?}"
    );
    assert!(
        matched.contains(&"Robert Martin → Bob Martin".to_string()),
        "{matched:?}"
    );
    assert_eq!(count(&preview, "user", "matched"), 2);
    let applied = sync_json(&env, &file, "--apply").await;
    assert_eq!(count(&applied, "user", "matched"), 2);
    let users = dir(&env, "user").await;
    let james = users.iter().find(|u| u.external_id == "29682885").unwrap();
    assert_eq!(
        (james.state.as_str(), &james.data["matchedUser"]),
        ("matched", &json!("u1"))
    );
    assert!(
        !users.iter().any(|u| u.name == "Weft API"),
        "API users are not people"
    );
    no_changes(&sync_json(&env, &file, "--apply").await);
}

/// The report without what differs from one run to the next (its id).
fn without_run_id(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("run_id");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_previews_and_applies_what_the_cli_does() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let creds = SimConfig::default();
    let env = Env::new();
    let weft = |args: Vec<String>| {
        let mut cmd = env.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env_remove("WEFT_INTEGRATIONS");
        async move {
            tokio::task::spawn_blocking(move || cmd.output().expect("weft runs"))
                .await
                .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ok(&weft(args(&["org", "add", "BrightPath MSP"])).await);
    ok(&weft(args(&[
        "integration",
        "add",
        "autotask",
        "--org",
        "brightpath-msp",
        "--set",
        &format!("username={}", creds.username),
        "--set",
        &format!("integration_code={}", creds.integration_code),
        "--set",
        &format!("discovery_url={}", sim.base_url),
        "--secret",
        &format!("secret={}", creds.secret),
    ]))
    .await);
    let cli_preview: Value = serde_json::from_str(&ok(&weft(args(&[
        "sync",
        "autotask",
        "--preview",
        "--json",
    ]))
    .await))
    .unwrap();
    let server = crate::parity::serve(&env);
    let (st, api_preview) = crate::parity::api(
        &server,
        "POST",
        "/api/sync/autotask/preview",
        json!({"org": "brightpath-msp"}),
    )
    .await;
    assert_eq!(st, 200, "{api_preview}");
    assert_eq!(
        without_run_id(api_preview),
        without_run_id(cli_preview.clone())
    );
    let (st, applied) =
        crate::parity::api(&server, "POST", "/api/sync/autotask/apply", json!({})).await;
    assert_eq!(st, 200, "{applied}");
    assert_eq!(applied["mode"], "apply");
    assert_eq!(
        applied["kinds"]["company"]["created"],
        cli_preview["kinds"]["company"]["created"]
    );
    let again = sync_json_from(&weft(args(&["sync", "autotask", "--apply", "--json"])).await);
    no_changes(&again);
}

fn sync_json_from(out: &Output) -> Value {
    let stdout = ok(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}"))
}

/// Issue 19: at a terminal (a pseudo-terminal made by util-linux's `script`) the sync says
/// each kind's records as their reading ends; through a pipe its output is only the report.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_at_a_terminal_says_what_it_read() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let sim = Simulator::start_local(SimConfig::default()).await;
    let env = Env::new();
    let file = integrations(&env, &sim);
    ok(&weft(&env, &file, &["org", "add", "BrightPath MSP"]).await);
    let line = format!(
        "{} sync autotask --preview --integrations {file} --database {}",
        env!("CARGO_BIN_EXE_weft"),
        env.db
    );
    let dir = env.dir.path().to_path_buf();
    let shown = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("WEFT_DATABASE_URL")
            .current_dir(dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    let companies = sim.simulator.records("Companies").len();
    for kind in [
        format!("read {companies} Companies"),
        "Resources".to_string(),
        "Contacts".to_string(),
        "ConfigurationItems".to_string(),
        "CompanyLocations".to_string(),
    ] {
        assert!(shown.contains(&kind), "`{kind}` in:\n{shown}");
    }
    let piped = ok(&weft(&env, &file, &["sync", "autotask", "--preview"]).await);
    assert!(!piped.contains("read "), "{piped}");
}
