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
fn csrf(page: &str) -> String {
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
