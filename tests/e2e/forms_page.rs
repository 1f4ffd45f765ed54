//! The hosted form page over real HTTP: a client's person opens the org's link, is told what
//! is missing, submits, and the onboarding workflow starts for that client.

use serde_json::Value;

use crate::parity::{api, serve};
use crate::support::{Env, lab::ok};

const FORM: &str = "form: new-user\ntitle: New starter\nthank_you: \"Thanks, {{ form.values.first_name }}!\"\nfields:\n  - name: first_name\n    required: true\n  - name: remote\n    type: checkbox\n  - name: address\n    required: true\n    show_when: values.remote\n  - name: devices\n    type: multiselect\n    options: [laptop, phone]\n  - name: manager\n    type: select\n    options_from: managers\n";

/// The options generator: the org's managers (here: made from the org's name).
const MANAGERS: &str = "name: managers\ntasks:\n  a:\n    action: core.noop\noutput:\n  options: \"{{ [{'label': 'Manager at ' ~ ORG.name, 'value': 'm1'}] }}\"\n";

const ONBOARD: &str = "name: onboard\ninput:\n  first_name: { type: string, required: true }\ntriggers:\n  - type: form\n    form: new-user\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\n";

/// The value of the page's `_csrf` field.
pub(crate) fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("the page has a _csrf field")
        + 20;
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn a_client_fills_in_the_orgs_link_and_the_workflow_starts_for_that_client() {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]));
    ok(&env.weft(&["org", "add", "Acme", "--parent", "msp"]));
    let form = env.write("new-user.yaml", FORM);
    let wf = env.write("onboard.yaml", ONBOARD);
    let managers = env.write("managers.yaml", MANAGERS);
    ok(&env.weft(&[
        "deploy",
        form.to_str().unwrap(),
        wf.to_str().unwrap(),
        managers.to_str().unwrap(),
    ]));
    let link: Value = serde_json::from_str(&ok(
        &env.weft(&["form", "link", "new-user", "--org", "acme", "--json"])
    ))
    .unwrap();
    let token = link["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let s = serve(&env);
    let http = reqwest::Client::new();
    let url = format!("{}/forms/{token}", s.url);

    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<label for=\"f-first_name\">First name"),
        "{page}"
    );
    assert!(
        page.contains("data-field=\"address\" data-conditional hidden"),
        "{page}"
    );
    let token_field = csrf(&page);
    assert!(
        page.contains("<option value=\"m1\">Manager at Acme</option>"),
        "dynamic options come from the generator, run for the link's org: {page}"
    );
    let state: Value = http
        .post(format!("{url}/state"))
        .json(&serde_json::json!({"remote": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        state["shown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "address"),
        "{state}"
    );
    assert_eq!(
        state["options"]["manager"]["options"][0]["value"], "m1",
        "{state}"
    );

    // Something missing: the form again, the message next to the field, the answers kept.
    let res = http
        .post(&url)
        .form(&[
            ("_csrf", token_field.as_str()),
            ("remote", "on"),
            ("devices", "laptop"),
            ("devices", "phone"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("First name is required"), "{page}");
    assert!(page.contains("Address is required"), "{page}");
    assert!(
        page.contains("value=\"phone\" checked"),
        "the answers are kept: {page}"
    );

    // A page not served by weft (or too old) is not taken.
    let res = http
        .post(&url)
        .form(&[("_csrf", "forged"), ("first_name", "Ada")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("too old or was not served by weft")
    );

    let res = http
        .post(&url)
        .form(&[
            ("_csrf", token_field.as_str()),
            ("first_name", "Ada"),
            ("manager", "m9"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "a manager the generator did not offer");
    let res = http
        .post(&url)
        .form(&[
            ("_csrf", token_field.as_str()),
            ("first_name", "Ada"),
            ("manager", "m1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Thanks, Ada!"));
    let (_, listed) = api(&s, "GET", "/api/executions?workflow=onboard", Value::Null).await;
    let execs = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(execs.len(), 1, "{listed}");
    assert_eq!(execs[0]["org"], "acme", "{listed}");
    // The submission is kept, with the execution it started; the CLI and the API agree.
    let cli: Value = serde_json::from_str(&ok(&env.weft(&[
        "form",
        "submissions",
        "--form",
        "new-user",
        "--json",
    ])))
    .unwrap();
    let (_, from_api) = api(
        &s,
        "GET",
        "/api/form-submissions?form=new-user",
        Value::Null,
    )
    .await;
    assert_eq!(cli, from_api);
    assert_eq!(
        cli.as_array().map(Vec::len),
        Some(1),
        "only the accepted one: {cli}"
    );
    assert_eq!(cli[0]["values"]["first_name"], "Ada");
    assert_eq!(cli[0]["execution_ids"][0], execs[0]["id"]);

    // Dead links: unknown, oversized, turned off.
    let res = http
        .get(format!("{}/forms/wfl_{}", s.url, "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let big = "x".repeat(70 * 1024);
    let res = http
        .post(&url)
        .form(&[
            ("_csrf", token_field.as_str()),
            ("first_name", big.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // A script posting through the link meets the per-link limit.
    let mut limited = false;
    for _ in 0..15 {
        let res = http
            .post(&url)
            .form(&[("first_name", "Bot")])
            .send()
            .await
            .unwrap();
        limited |= res.status() == 429;
    }
    assert!(limited, "15 posts in a burst are limited");
    ok(&env.weft(&["form", "link", "new-user", "--org", "acme", "--disable"]));
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    // Refused submissions are only counted.
    let metrics = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, at_least) in [
        ("accepted", 1),
        ("invalid", 2),
        ("forged", 1),
        ("too_large", 1),
        ("rate_limited", 1),
    ] {
        let line =
            format!("weft_form_submissions_total{{form=\"new-user\",outcome=\"{outcome}\"}} ");
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in {metrics}"));
        assert!(n >= at_least, "{line}{n}");
    }
}

#[tokio::test]
async fn a_form_that_waits_shows_what_the_workflow_answered() {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]));
    ok(&env.weft(&["org", "add", "Acme", "--parent", "msp"]));
    let form = env.write(
        "request.yaml",
        "form: request\nthank_you: \"Your request number is {{ output.number }}.\"\nfields:\n  - name: subject\n    required: true\n",
    );
    let wf = env.write(
        "handle.yaml",
        "name: handle\ninput:\n  subject: { type: string, required: true }\ntriggers:\n  - type: form\n    form: request\n    response: wait\n    timeout: 20s\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\noutput:\n  number: \"R-{{ CTX.subject | length }}-{{ ORG.id }}\"\n",
    );
    ok(&env.weft(&["deploy", form.to_str().unwrap(), wf.to_str().unwrap()]));
    let link: Value = serde_json::from_str(&ok(
        &env.weft(&["form", "link", "request", "--org", "acme", "--json"])
    ))
    .unwrap();
    let token = link["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let s = serve(&env);
    let http = reqwest::Client::new();
    let url = format!("{}/forms/{token}", s.url);
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    let res = http
        .post(&url)
        .form(&[("_csrf", csrf(&page).as_str()), ("subject", "printer")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done = res.text().await.unwrap();
    assert!(done.contains("Your request number is R-7-acme."), "{done}");
}

const OFFBOARDING: &str = "form: offboarding\ntitle: Leaver\nfields:\n  - name: ticket_id\n    type: integer\n    label: Ticket\n  - name: leaver\n    required: true\n";

/// A ticket workflow's step: the link it would post into the ticket, and the org's standing
/// link as templates see it.
const SEND: &str = "name: send\ntasks:\n  a:\n    action: core.noop\noutput:\n  link: \"{{ form_link('offboarding', prefill={'ticket_id': 4711, 'queue': 'L2'}, single_use=true) }}\"\n  standing: \"{{ ORG.FORMS['offboarding'].url }}\"\n";

const HANDLE: &str = "name: handle\ntriggers:\n  - type: form\n    form: offboarding\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\n";

/// The path of a link (`/forms/…`), whatever address it was made with.
pub(crate) fn path_of(url: &str) -> String {
    url[url.find("/forms/").expect("a form link")..].to_string()
}

#[tokio::test]
async fn a_signed_single_use_link_fixes_its_prefill_and_works_once() {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]));
    ok(&env.weft(&["org", "add", "Acme", "--parent", "msp"]));
    let form = env.write("offboarding.yaml", OFFBOARDING);
    let handle = env.write("handle.yaml", HANDLE);
    ok(&env.weft(&["deploy", form.to_str().unwrap(), handle.to_str().unwrap()]));
    let standing: Value = serde_json::from_str(&ok(&env.weft(&[
        "form",
        "link",
        "offboarding",
        "--org",
        "acme",
        "--json",
    ])))
    .unwrap();
    env.write("send.yaml", SEND);
    let sent = env.run("send.yaml", &["--org", "acme"]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let link = sent.json["output"]["link"].as_str().unwrap().to_string();
    assert!(link.contains("/forms/wfs_"), "{link}");
    assert_eq!(
        sent.json["output"]["standing"], standing["url"],
        "ORG.FORMS holds the org's standing link"
    );

    let s = serve(&env);
    let http = reqwest::Client::new();
    let url = format!("{}{}", s.url, path_of(&link));
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("value=\"4711\"") && page.contains("readonly"),
        "the prefilled ticket is shown and cannot be changed: {page}"
    );
    let csrf_field = csrf(&page);
    // Changing the fixed value in the post changes nothing.
    let res = http
        .post(&url)
        .form(&[
            ("_csrf", csrf_field.as_str()),
            ("ticket_id", "1"),
            ("leaver", "Bob"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (_, listed) = api(&s, "GET", "/api/executions?workflow=handle", Value::Null).await;
    let exec_id = listed[0]["id"].as_str().unwrap().to_string();
    let exec = env.show(&exec_id);
    let form_event = &exec["trigger"]["form"];
    assert_eq!(form_event["values"]["ticket_id"], 4711, "{exec}");
    assert_eq!(form_event["prefill"]["queue"], "L2", "{exec}");
    assert_eq!(form_event["link"], "single_use", "{exec}");
    assert_eq!(exec["org"], "acme");

    // Used: the page says so, on opening and on posting.
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("already used"));
    let res = http
        .post(&url)
        .form(&[("_csrf", csrf_field.as_str()), ("leaver", "Bob")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);

    // A changed link (a tampered prefill) is refused.
    let fresh = env.run("send.yaml", &["--org", "acme"]);
    let fresh_url = format!(
        "{}{}",
        s.url,
        path_of(fresh.json["output"]["link"].as_str().unwrap())
    );
    let mut bytes = fresh_url.clone().into_bytes();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let res = http.get(&tampered).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not valid"));

    // The operator's CLI makes the same links; rotating the org's link withdraws them all.
    let made: Value = serde_json::from_str(&ok(&env.weft(&[
        "form",
        "link",
        "offboarding",
        "--org",
        "acme",
        "--prefill",
        "ticket_id=12",
        "--single-use",
        "--expires",
        "2d",
        "--json",
    ])))
    .unwrap();
    assert_eq!(made["kind"], "single_use", "{made}");
    let made_url = format!("{}{}", s.url, path_of(made["url"].as_str().unwrap()));
    let page = http
        .get(&made_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"12\""), "{page}");
    // Rotation is to the second: let the links be older than it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ok(&env.weft(&["form", "link", "offboarding", "--org", "acme", "--rotate"]));
    for withdrawn in [&made_url, &fresh_url] {
        assert_eq!(http.get(withdrawn).send().await.unwrap().status(), 404);
    }

    // A preview checks the answers and starts nothing.
    let (status, preview) = api(
        &s,
        "POST",
        "/api/forms/offboarding/preview/acme",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    let preview_url = format!("{}{}", s.url, path_of(preview["url"].as_str().unwrap()));
    let page = http
        .get(&preview_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Preview"), "{page}");
    let res = http
        .post(&preview_url)
        .form(&[("_csrf", csrf(&page).as_str()), ("leaver", "Eve")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Nothing was sent"));
    let (_, listed) = api(&s, "GET", "/api/executions?workflow=handle", Value::Null).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}
