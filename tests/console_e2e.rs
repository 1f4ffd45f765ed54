//! The web console in headless Chromium, against `weft serve` over the crate lab (the
//! simulator as Autotask): sign in with the API token, open a failed execution and its task
//! details, rerun from the failed task, apply a mapping suggestion, preview and apply the PSA
//! sync, install a crate with its generated parameter form. Each page is saved as a
//! screenshot under `<target>/console-screenshots/` (printed). Skipped when Chromium or
//! chromedriver is not installed.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::lab::{API_TOKEN, Server, lab, ok};
use webdriver::Browser;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Fails at `post_note` until acme-dental has the variable `ready`: rerunning from that task
/// after setting it succeeds. `lookup` renders a secret org variable (redacted when stored).
/// A nightly workflow, for the triggers page's switch and "Fire now".
const NIGHTLY: &str = r#"
name: console-nightly
triggers:
  - name: nightly
    type: cron
    schedule: "0 3 * * *"
    timezone: Europe/London
  - name: alerts
    type: webhook
    secret: required
    run_for: [acme-dental]
tasks:
  report:
    action: core.echo
    input: {text: "fired {{ TRIGGER.manual }}"}
"#;

const DEMO: &str = r#"
name: console-demo
description: Looks a ticket up, then posts a note once the org is ready
input:
  ticket: {type: integer, default: 42}
tasks:
  lookup:
    action: core.echo
    input:
      ticket: "{{ CTX.ticket }}"
      key: "{{ ORG.VARIABLES.api_key }}"
    next: [post_note]
  post_note:
    action: core.mock
    input:
      result: {posted: true}
      error: "{{ none if (ORG.VARIABLES.ready | default(false)) else 'the org is not ready' }}"
    next: [done]
  done:
    action: core.noop
"#;

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, v) = server.call(method, path, &[], body).await;
    assert!(status < 300, "{method} {path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        weft_engine::testing::skip_for_missing_service(
            "skipped: chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
        );
        return;
    }
    let lab = lab().await;
    let file = lab.env.write("console-demo.yaml", DEMO);
    ok(&lab.weft(&["deploy", file.to_str().unwrap()]).await);
    let nightly = lab.env.write("console-nightly.yaml", NIGHTLY);
    ok(&lab.weft(&["deploy", nightly.to_str().unwrap()]).await);
    let form = Path::new(env!("CARGO_MANIFEST_DIR")).join("forms/new-user.yaml");
    ok(&lab.weft(&["deploy", form.to_str().unwrap()]).await);
    let server = lab.serve();
    api(
        &server,
        "PUT",
        "/api/orgs/acme-dental/variables/api_key",
        Some(json!({"value": "s3cret-key", "secret": true})),
    )
    .await;
    let failed = api(
        &server,
        "POST",
        "/api/workflows/console-demo/run?org=acme-dental&wait=20s",
        Some(json!({})),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let failed_id = failed["id"].as_str().unwrap().to_string();
    // What the console builds on: the task graph, the inputs, every attempt's input.
    let wf = api(
        &server,
        "GET",
        "/api/workflows/console-demo?version=1",
        None,
    )
    .await;
    assert_eq!(wf["graph"]["start"], json!(["lookup"]), "{wf:#}");
    assert_eq!(
        wf["graph"]["tasks"][0]["next"][0]["targets"],
        json!(["post_note"])
    );
    assert_eq!(wf["input_schema"]["ticket"]["type"], "integer");
    assert_eq!(wf["latest_version"], 1);
    let detail = api(
        &server,
        "GET",
        &format!("/api/executions/{failed_id}?detail=true"),
        None,
    )
    .await;
    let lookup = &detail["tasks"][0];
    assert_eq!(lookup["input"]["key"], "***", "{detail:#}");
    assert_eq!(lookup["runs"][0]["attempt"], 1, "{detail:#}");
    // A client named like an unmapped Autotask company (Cedar Logistics, 189).
    api(
        &server,
        "POST",
        "/api/orgs",
        Some(json!({"name": "Cedar Logistics", "parent": "brightpath-it"})),
    )
    .await;

    let shots = screenshots_dir();
    println!("console screenshots: {}", shots.display());
    let b = Browser::start(CHROMEDRIVER, CHROMIUM, (1280, 900)).await;
    let base = server.url.clone();

    // The console is served with a strict CSP; without a token it asks for one.
    let res = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // Sign in: a wrong token is refused, the right one opens the executions.
    b.goto(&format!("{base}/")).await;
    b.fill("[data-testid=token]", "not-the-token").await;
    b.click("[data-testid=sign-in]").await;
    b.wait_text("form [role=alert]", "refused").await;
    b.shot(&shots, "login").await;
    b.fill("[data-testid=token]", API_TOKEN).await;
    b.click("[data-testid=sign-in]").await;
    let row = format!("[data-testid=execution-row][data-id='{failed_id}']");
    b.wait(&row).await;
    b.wait_text(&row, "failed").await;
    b.shot(&shots, "executions").await;

    // The execution: the DAG with statuses, task details with the redacted input.
    b.click(&format!("{row} a")).await;
    b.wait("[data-testid=dag]").await;
    b.wait_attr("[data-testid=task-lookup]", "class", "succeeded")
        .await;
    b.wait_attr("[data-testid=task-post_note]", "class", "failed")
        .await;
    b.wait_attr("[data-testid=task-done]", "class", "not-run")
        .await;
    b.click("[data-testid=task-lookup]").await;
    b.wait_text("[data-testid=task-panel] h2", "Task lookup")
        .await;
    let input = b.wait_text("[data-testid=task-input]", "42").await;
    assert!(input.contains("***"), "{input}");
    assert!(!b.text("body").await.contains("s3cret-key"));
    b.click("[data-testid=task-post_note]").await;
    b.wait_text("[data-testid=task-error]", "the org is not ready")
        .await;
    b.wait("[data-testid=task-attempts] details").await;
    b.shot(&shots, "execution").await;

    // Rerun from the failed task once the org is ready: a new execution that succeeds,
    // reusing `lookup`.
    api(
        &server,
        "PUT",
        "/api/orgs/acme-dental/variables/ready",
        Some(json!({"value": true})),
    )
    .await;
    b.click("[data-testid=rerun-from]").await;
    b.wait_text("[data-testid=execution-status]", "succeeded")
        .await;
    let list = server.executions("console-demo").await;
    let rerun = list
        .iter()
        .find(|e| e["rerun_of"] == failed_id.as_str())
        .unwrap_or_else(|| panic!("no rerun of {failed_id}: {list:#?}"));
    let rerun_id = rerun["id"].as_str().unwrap().to_string();
    assert!(b.url().await.contains(&rerun_id));
    let detail = api(&server, "GET", &format!("/api/executions/{rerun_id}"), None).await;
    assert_eq!(detail["status"], "succeeded", "{detail:#}");
    let lookup = detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lookup")
        .unwrap();
    assert_eq!(lookup["reused"], true, "{detail:#}");
    b.wait_attr("[data-testid=task-done]", "class", "succeeded")
        .await;
    b.shot(&shots, "execution-rerun").await;
    b.goto(&format!("{base}/#/executions")).await;
    b.wait_text(
        &format!("[data-testid=execution-row][data-id='{rerun_id}']"),
        "succeeded",
    )
    .await;

    // The workflow: graph, YAML with diagnostics, run form.
    b.goto(&format!("{base}/#/workflows/console-demo")).await;
    b.wait("[data-testid=dag] [data-testid=task-post_note]")
        .await;
    b.wait_text("[data-testid=diagnostics]", "No problems found")
        .await;
    b.wait("[data-param=ticket]").await;
    b.shot(&shots, "workflow").await;
    // Edit the YAML: a mistake is shown with its line; the fix deploys as version 2.
    let yaml = b
        .eval("return document.querySelector('[data-testid=yaml]').value")
        .await;
    let yaml = yaml.as_str().unwrap().to_string();
    let broken = yaml.replace("action: core.noop", "action: core.nope");
    b.fill("[data-testid=yaml]", &broken).await;
    b.click("[data-testid=validate]").await;
    b.wait_text("[data-testid=diagnostics]", "core.nope").await;
    let diag = b.text("[data-testid=diagnostics]").await;
    assert!(diag.contains("error") && diag.contains("line "), "{diag}");
    let fixed = yaml.replace("description: Looks", "description: Now looks");
    b.fill("[data-testid=yaml]", &fixed).await;
    b.click("[data-testid=deploy]").await;
    b.retry_until("version 2 to be deployed", || async {
        api(&server, "GET", "/api/workflows/console-demo", None).await["version"] == 2
    })
    .await;
    // Run it from its form, for an org, with an input: the console opens the new execution.
    b.fill("[data-param=ticket]", "7").await;
    b.select("select[name=org]", "acme-dental").await;
    b.click("[data-testid=run]").await;
    b.retry_until("the run's execution page", || async {
        b.url().await.contains("#/executions/")
    })
    .await;
    let runs = api(
        &server,
        "GET",
        "/api/executions?workflow=console-demo",
        None,
    )
    .await;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["input"]["ticket"] == 7 && e["org"] == "acme-dental"),
        "{runs:#}"
    );
    b.goto(&format!("{base}/#/workflows")).await;
    b.wait_text("[data-testid=workflow-row]", "console-demo")
        .await;
    b.shot(&shots, "workflows").await;

    // Organizations: the tree, masked secrets, then a mapping suggestion applied.
    b.goto(&format!("{base}/#/orgs/acme-dental")).await;
    b.wait_text("[data-testid=org-company]", "174").await;
    let page = b.text("main").await;
    assert!(
        page.contains("api_key") && page.contains("••••••"),
        "{page}"
    );
    assert!(!page.contains("s3cret-key"));
    b.click("[data-testid=suggest]").await;
    b.click("[data-testid=apply-suggestion-cedar-logistics]")
        .await;
    b.wait_text("[data-testid=suggestions]", "mapped").await;
    let org = api(&server, "GET", "/api/orgs/cedar-logistics", None).await;
    assert_eq!(org["autotask_company"]["id"], "189", "{org:#}");
    b.shot(&shots, "orgs").await;

    // PSA sync: preview, apply, history.
    b.goto(&format!("{base}/#/sync")).await;
    b.click("[data-testid=sync-preview]").await;
    b.wait_text("[data-testid=sync-report-preview]", "company")
        .await;
    // Review one record: a company the first sync would create is excluded from the preview.
    let pick = "[data-testid=sync-report-preview] [data-testid=sync-item][data-kind=company][data-change=create]";
    b.wait(pick).await;
    let company = b
        .eval(&format!(
            "return document.querySelector('{pick}').dataset.id"
        ))
        .await;
    let company = company.as_str().expect("a company id").to_string();
    // Long lists start folded: unfold the companies as a reviewer would.
    let open: bool = b
        .eval("return document.querySelector('[data-testid=sync-report-preview] [data-testid=sync-items-company]').open")
        .await
        .as_bool()
        .unwrap_or(false);
    if !open {
        b.click("[data-testid=sync-report-preview] [data-testid=sync-items-company] > summary")
            .await;
    }
    b.click(&format!(
        "[data-testid=sync-report-preview] [data-testid=sync-item][data-kind=company][data-id='{company}'] [data-action=exclude]"
    ))
    .await;
    b.wait_text("[data-testid=sync-report-preview]", "excluded from now on")
        .await;
    b.click("[data-testid=sync-apply]").await;
    b.wait("[data-testid=sync-report-apply]").await;
    b.wait(&format!(
        "[data-testid=sync-report-apply] [data-testid=sync-item][data-kind=company][data-id='{company}'][data-change=exclude]"
    ))
    .await;
    b.wait("[data-testid=sync-run][data-mode=apply]").await;
    let runs = api(&server, "GET", "/api/sync/runs", None).await;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["mode"] == "apply" && r["finished_at"].is_string()),
        "{runs:#}"
    );
    b.shot(&shots, "sync").await;

    // Crates: install one through its generated parameter form.
    b.goto(&format!("{base}/#/crates")).await;
    let name = "openai-ticket-sentiment";
    b.click(&format!("[data-testid=install-open-{name}]")).await;
    let card = format!("[data-testid=crate-{name}]");
    b.select(&format!("{card} [data-testid=install-org]"), "acme-dental")
        .await;
    b.fill(
        &format!("{card} [data-param=autotask_web_url]"),
        "https://ww5.autotask.net/",
    )
    .await;
    b.click(&format!("{card} [data-testid=install-submit]"))
        .await;
    b.wait_text(&format!("{card} [data-testid=install-done]"), "acme-dental")
        .await;
    b.reveal(&format!("{card} [data-testid=install-done]"))
        .await;
    let crates = api(&server, "GET", "/api/crates", None).await;
    assert!(
        crates["installs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["crate"] == name && i["org"] == "acme-dental"),
        "{:#}",
        crates["installs"]
    );
    b.shot(&shots, "crates").await;

    // Forms: the org's link, shown and opened as the client's person would.
    b.goto(&format!("{base}/#/forms/new-user")).await;
    b.select("[data-testid=form-link-org]", "acme-dental").await;
    b.click("[data-testid=form-link-show]").await;
    b.wait_text(
        "[data-testid=form-link-note]",
        "active link for acme-dental",
    )
    .await;
    let link = b
        .eval("return document.querySelector('[data-testid=form-link-url]').value")
        .await;
    let link = link.as_str().expect("the link is shown").to_string();
    assert!(link.contains("/forms/wfl_"), "{link}");
    b.shot(&shots, "forms").await;
    let path = link.split("/forms/").nth(1).unwrap();
    b.goto(&format!("{base}/forms/{path}")).await;
    b.wait_text("h1", "New starter").await;
    b.wait("label[for=f-first_name]").await;
    b.shot(&shots, "form-page").await;

    // Triggers: the installed crate's Autotask trigger with its switch.
    b.goto(&format!("{base}/#/triggers")).await;
    b.wait(&format!("[data-testid^=toggle-{name}]")).await;
    // The nightly trigger: switched off, then fired by hand all the same.
    b.click("[data-testid=toggle-console-nightly-nightly]")
        .await;
    b.retry_until("the trigger to be disabled", || async {
        let list = api(&server, "GET", "/api/triggers", None).await;
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["workflow"] == "console-nightly" && t["enabled"] == false)
    })
    .await;
    b.click("[data-testid=fire-console-nightly-nightly]").await;
    b.retry_until("the fired execution", || async {
        let runs = api(
            &server,
            "GET",
            "/api/executions?workflow=console-nightly",
            None,
        )
        .await;
        runs.as_array().is_some_and(|r| r.len() == 1)
    })
    .await;
    // The webhook's secret for acme-dental: shown, then rotated (the old one is refused).
    let path = "/api/triggers/console-nightly/alerts/secrets/acme-dental";
    let before = api(&server, "GET", path, None).await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    b.click("[data-testid=secret-show-console-nightly-alerts]")
        .await;
    b.wait_text(
        "[data-testid=secret-note-console-nightly-alerts]",
        "Secret for acme-dental",
    )
    .await;
    b.click("[data-testid=secret-rotate-console-nightly-alerts]")
        .await;
    b.wait_text(
        "[data-testid=secret-note-console-nightly-alerts]",
        "New secret for acme-dental",
    )
    .await;
    let after = api(&server, "GET", path, None).await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(before, after, "the console rotated the secret");
    b.shot(&shots, "triggers").await;

    // Phone width: no page-wide horizontal scrolling.
    b.resize(390, 844).await;
    for (page, wait, shot) in [
        (
            "#/executions",
            "[data-testid=executions]",
            "executions-phone",
        ),
        (
            &*format!("#/executions/{failed_id}"),
            "[data-testid=dag]",
            "execution-phone",
        ),
    ] {
        b.goto(&format!("{base}/{page}")).await;
        b.wait(wait).await;
        b.reveal(wait).await;
        let fits = b
            .eval("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            .await;
        let wide = b
            .eval(
                "return [...document.querySelectorAll('body *')]
                   .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                   .slice(0, 8).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
            )
            .await;
        assert_eq!(
            fits,
            json!(true),
            "{page} scrolls sideways at 390px: {wide}"
        );
        b.shot(&shots, shot).await;
    }

    // Dark mode follows prefers-color-scheme.
    b.resize(1280, 900).await;
    let light = b
        .eval("return getComputedStyle(document.body).backgroundColor")
        .await;
    b.dark().await;
    b.goto(&format!("{base}/#/executions/{failed_id}")).await;
    b.wait("[data-testid=dag]").await;
    let dark = b
        .eval("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_ne!(light, dark, "the dark scheme changes the background");
    b.shot(&shots, "execution-dark").await;

    // A token the server refuses (rotated) sends back to the sign-in form.
    b.eval("localStorage.setItem('weft.token', 'rotated'); return true")
        .await;
    b.goto(&format!("{base}/#/workflows")).await;
    b.wait_text("form [role=alert]", "refused").await;
    b.quit().await;
}

/// A minimal W3C WebDriver client over chromedriver: what the test needs and nothing more.
/// A leaver form for a ticket: the contact from the org's Autotask company (dynamic options),
/// a forwarding address shown only when the mailbox is forwarded.
const LEAVER_FORM: &str = r#"
form: leaver-request
title: Leaver request
fields:
  - name: ticket_id
    type: hidden
  - name: contact
    label: Who is leaving
    type: select
    required: true
    options_from: company-contacts
  - name: mailbox
    type: radio
    required: true
    options: [{label: Convert to shared mailbox, value: shared}, {label: Forward to someone, value: forward}]
  - name: forward_to
    label: Forward to
    type: email
    required: true
    show_when: "values.mailbox == 'forward'"
thank_you: "Thanks — we will take it from here."
"#;

/// The options: the contacts of the org's Autotask company, from the PSA.
const COMPANY_CONTACTS: &str = r#"
name: company-contacts
tasks:
  contacts:
    action: autotask.list_contacts
    input:
      company_id: "{{ ORG.MAPPING.autotask }}"
      include_fields: [firstName, lastName]
output:
  options: >-
    {{ TASKS.contacts.result | json_query("items[].{label: join(' ', [firstName, lastName]), value: id}") }}
"#;

/// The answers go into the ticket the link was made for.
const LEAVER_NOTE: &str = r#"
name: leaver-note
triggers:
  - type: form
    form: leaver-request
    run_for: all_managed
tasks:
  note:
    action: autotask.create_ticket_note
    input:
      ticket_id: "{{ TRIGGER.form.prefill.ticket_id }}"
      fields:
        title: Leaver request
        description: "Contact {{ TRIGGER.form.values.contact }}; mailbox {{ TRIGGER.form.values.mailbox }} {{ TRIGGER.form.values.forward_to | default('') }}"
        noteType: 1
        publish: 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fills_in_a_signed_form_link_in_a_browser() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        weft_engine::testing::skip_for_missing_service(
            "skipped: chromium/chromedriver not installed (apt-get install chromium chromium-driver)",
        );
        return;
    }
    let lab = lab().await;
    for (file, src) in [
        ("leaver-request.yaml", LEAVER_FORM),
        ("company-contacts.yaml", COMPANY_CONTACTS),
        ("leaver-note.yaml", LEAVER_NOTE),
    ] {
        let path = lab.env.write(file, src);
        ok(&lab.weft(&["deploy", path.to_str().unwrap()]).await);
    }
    let ticket = lab.ticket("Leaver: Emma Williams", "Emma leaves on Friday", 2);
    let server = lab.serve();
    let made = api(
        &server,
        "POST",
        "/api/forms/leaver-request/links/acme-dental/signed",
        Some(json!({"prefill": {"ticket_id": ticket}, "single_use": true})),
    )
    .await;
    let link = made["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/forms/wfs_", server.url)),
        "{link}"
    );

    let shots = screenshots_dir();
    let b = Browser::start(CHROMEDRIVER, CHROMIUM, (420, 900)).await;
    b.goto(&link).await;
    b.wait_text("h1", "Leaver request").await;
    // The contacts of Acme Dental's company (174), from the simulator.
    b.wait("#f-contact option[value='30682120']").await;
    assert!(b.text("#f-contact").await.contains("Williams"));
    // The forwarding address appears only when the mailbox is forwarded.
    assert!(
        b.eval("return document.querySelector('[data-field=forward_to]').hidden")
            .await
            == json!(true)
    );
    b.select("#f-contact", "30682120").await;
    b.click("input[name=mailbox][value=forward]").await;
    b.wait("[data-field=forward_to]:not([hidden])").await;
    b.fill("#f-forward_to", "not-an-address").await;
    b.shot(&shots, "form-filled").await;
    b.click("button[type=submit]").await;
    // Refused: the message next to the field, the answers kept.
    b.wait_text("[data-field=forward_to] .error", "e-mail address")
        .await;
    assert!(
        !b.text("#summary").await.contains("is required"),
        "one message per field"
    );
    b.wait("#summary").await;
    b.shot(&shots, "form-refused").await;
    assert_eq!(
        b.eval("return document.querySelector('#f-contact').value")
            .await,
        json!("30682120")
    );
    b.fill("#f-forward_to", "olga.miller@acmedental.example")
        .await;
    b.click("button[type=submit]").await;
    b.wait_text("main", "we will take it from here").await;
    b.shot(&shots, "form-sent").await;

    // The workflow ran for the client and wrote into the ticket the link was made for.
    let runs = server.executions("leaver-note").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = server.finished(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["org"], "acme-dental");
    let notes = lab.notes_titled(ticket, "Leaver request");
    assert_eq!(notes.len(), 1);
    let text = notes[0]["description"].as_str().unwrap();
    assert!(
        text.contains("30682120") && text.contains("olga.miller@acmedental.example"),
        "{text}"
    );

    // Once only; and a link with a changed character is refused.
    b.goto(&link).await;
    b.wait_text("h1", "can no longer be used").await;
    assert!(b.text("main").await.contains("already used"));
    let mut bytes = link.clone().into_bytes();
    let at = bytes.len() - 12;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    b.goto(&String::from_utf8(bytes).unwrap()).await;
    b.wait_text("h1", "not valid").await;
    b.shot(&shots, "form-tampered").await;
    assert_eq!(lab.notes_titled(ticket, "Leaver request").len(), 1);

    // The console's live preview: the page in a frame, nothing sent.
    b.resize(1280, 900).await;
    b.goto(&format!("{}/", server.url)).await;
    b.fill("[data-testid=token]", API_TOKEN).await;
    b.click("[data-testid=sign-in]").await;
    b.wait("[data-testid=execution-row]").await;
    b.goto(&format!("{}/#/forms/leaver-request", server.url))
        .await;
    b.select("[data-testid=form-preview-org]", "acme-dental")
        .await;
    b.click("[data-testid=form-preview-open]").await;
    b.wait("[data-testid=form-preview-frame]:not([hidden])")
        .await;
    b.retry_until("the preview to show the form", || async {
        b.eval(
            "const d = document.querySelector('[data-testid=form-preview-frame]').contentDocument;
             return !!d && !!d.querySelector('#f-contact option[value=\"30682120\"]');",
        )
        .await
            == json!(true)
    })
    .await;
    assert!(
        !b.text("main").await.contains("null"),
        "a form without a description shows none"
    );
    b.shot(&shots, "form-preview").await;
    b.quit().await;
}

/// The browser the tests drive: chromedriver, spoken to through fantoccini, plus the waits
/// and retries a page that renders as data arrives needs.
mod webdriver {
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use fantoccini::elements::Element;
    use fantoccini::wd::WebDriverCompatibleCommand;
    use fantoccini::{Client, ClientBuilder, Locator};
    use hyper_util::client::legacy::connect::HttpConnector;
    use serde_json::{Value, json};

    const WAIT: Duration = Duration::from_secs(15);

    /// chromedriver (killed when dropped) and one headless Chromium session.
    pub struct Browser {
        driver: Child,
        client: Client,
        _profile: tempfile::TempDir,
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Chromium's DevTools passthrough (`/goog/cdp/execute`), which the WebDriver standard
    /// (and so fantoccini) has no command for.
    #[derive(Debug)]
    struct Cdp(Value);

    impl WebDriverCompatibleCommand for Cdp {
        fn endpoint(
            &self,
            base: &url::Url,
            session: Option<&str>,
        ) -> Result<url::Url, url::ParseError> {
            base.join(&format!(
                "session/{}/goog/cdp/execute",
                session.unwrap_or("")
            ))
        }

        fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
            (http::Method::POST, Some(self.0.to_string()))
        }
    }

    impl Browser {
        pub async fn start(chromedriver: &str, chromium: &str, size: (u32, u32)) -> Browser {
            let port = free_port();
            let driver = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            let profile = tempfile::tempdir().unwrap();
            let caps = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage",
                        format!("--window-size={},{}", size.0, size.1),
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            });
            let Value::Object(caps) = caps else {
                unreachable!("capabilities are an object")
            };
            // chromedriver takes a moment to listen: retry the session until it answers.
            let deadline = Instant::now() + Duration::from_secs(20);
            let client = loop {
                match ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(c) => break c,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "no WebDriver session: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            Browser {
                driver,
                client,
                _profile: profile,
            }
        }

        pub async fn goto(&self, url: &str) {
            self.client.goto(url).await.unwrap();
        }

        pub async fn url(&self) -> String {
            self.client.current_url().await.unwrap().to_string()
        }

        async fn find(&self, css: &str) -> Result<Element, String> {
            self.client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())
        }

        /// Retries `step` until it succeeds or [`WAIT`] passes (the page renders as data
        /// arrives), then fails with the page's text.
        async fn retry<T, F, Fut>(&self, what: &str, mut step: F) -> T
        where
            F: FnMut() -> Fut,
            Fut: std::future::Future<Output = Result<T, String>>,
        {
            let deadline = Instant::now() + WAIT;
            loop {
                match step().await {
                    Ok(v) => return v,
                    Err(e) if Instant::now() > deadline => {
                        let body = self.text_now("body").await.unwrap_or_default();
                        panic!("timed out: {what}: {e}\npage text:\n{body}");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(150)).await,
                }
            }
        }

        /// Waits for an element.
        pub async fn wait(&self, css: &str) -> Element {
            self.retry(&format!("waiting for {css}"), || self.find(css))
                .await
        }

        /// Polls `check` (every 200 ms, up to 15 s) until it holds.
        pub async fn retry_until<F, Fut>(&self, what: &str, mut check: F)
        where
            F: FnMut() -> Fut,
            Fut: std::future::Future<Output = bool>,
        {
            let deadline = Instant::now() + WAIT;
            while !check().await {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        pub async fn click(&self, css: &str) {
            self.retry(&format!("clicking {css}"), || async {
                self.find(css)
                    .await?
                    .click()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        }

        /// Replaces an input's text.
        pub async fn fill(&self, css: &str, text: &str) {
            self.retry(&format!("typing into {css}"), || async {
                let el = self.find(css).await?;
                el.clear().await.map_err(|e| e.to_string())?;
                el.send_keys(text).await.map_err(|e| e.to_string())
            })
            .await;
        }

        /// Chooses an option of a <select> by value (as a user would, with a change event).
        pub async fn select(&self, css: &str, value: &str) {
            self.wait(css).await;
            let done = self
                .eval_args(
                    "const el = document.querySelector(arguments[0]);
                     el.value = arguments[1];
                     el.dispatchEvent(new Event('change', {bubbles: true}));
                     return el.value === arguments[1];",
                    vec![json!(css), json!(value)],
                )
                .await;
            assert_eq!(done, json!(true), "{css} has no option {value}");
        }

        async fn text_now(&self, css: &str) -> Result<String, String> {
            self.find(css)
                .await?
                .text()
                .await
                .map_err(|e| e.to_string())
        }

        pub async fn text(&self, css: &str) -> String {
            self.retry(&format!("reading {css}"), || self.text_now(css))
                .await
        }

        /// Waits until an element's text contains `needle`; the text.
        pub async fn wait_text(&self, css: &str, needle: &str) -> String {
            self.retry(&format!("{css} to contain {needle:?}"), || async {
                let t = self.text_now(css).await?;
                if t.contains(needle) {
                    Ok(t)
                } else {
                    Err(format!("text is {t:?}"))
                }
            })
            .await
        }

        /// Waits until an element's attribute contains `needle`.
        pub async fn wait_attr(&self, css: &str, attr: &str, needle: &str) {
            self.retry(&format!("{css} [{attr}] to contain {needle:?}"), || async {
                let v = self
                    .find(css)
                    .await?
                    .attr(attr)
                    .await
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default();
                if v.split_whitespace().any(|c| c == needle) {
                    Ok(())
                } else {
                    Err(format!("{attr} is {v:?}"))
                }
            })
            .await;
        }

        async fn eval_args(&self, script: &str, args: Vec<Value>) -> Value {
            self.client.execute(script, args).await.unwrap()
        }

        pub async fn eval(&self, script: &str) -> Value {
            self.eval_args(script, Vec::new()).await
        }

        /// Scrolls an element into the middle of the viewport (for screenshots).
        pub async fn reveal(&self, css: &str) {
            self.wait(css).await;
            self.eval_args(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); return true;",
                vec![json!(css)],
            )
            .await;
        }

        /// Emulates `prefers-color-scheme: dark` (a Chromium DevTools command).
        pub async fn dark(&self) {
            self.client
                .issue_cmd(Cdp(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                    "features": [{"name": "prefers-color-scheme", "value": "dark"}],
                }})))
                .await
                .unwrap();
        }

        pub async fn resize(&self, width: u32, height: u32) {
            self.client.set_window_size(width, height).await.unwrap();
        }

        /// Saves a PNG of the viewport as `dir/name.png`.
        pub async fn shot(&self, dir: &Path, name: &str) {
            // Let the last render and the live region settle.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }

        pub async fn quit(self) {
            let _ = self.client.clone().close().await;
        }
    }
}
