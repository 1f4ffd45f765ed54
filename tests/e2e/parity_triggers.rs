//! Parity: triggers use cases through the CLI and the API end the same way (see `parity`):
//! webhook secrets, switches, firing and deploying are `weft_service`'s, so the command line
//! and the API refuse the same things with the same kind of error and the same message, and
//! what one changes the other sees.

use serde_json::{Value, json};

use crate::parity::{TOKEN, api, same_refusal, serve};
use crate::support::Env;

const HOOKS: &str = "name: alerts\ntriggers:\n  - name: rmm\n    type: webhook\n    secret: required\n    run_for: all_managed\n  - name: nightly\n    type: cron\n    schedule: \"30 2 * * *\"\ntasks:\n  a:\n    action: core.noop\n";

/// Not valid: the route points to a task that does not exist.
const INVALID: &str =
    "name: broken\ntasks:\n  a:\n    action: core.noop\n    next:\n      - do: [nowhere]\n";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn triggers_are_refused_and_switched_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]));
    ok(&env.weft(&["org", "add", "Acme", "--parent", "msp"]));
    let file = env.write("alerts.yaml", HOOKS);
    let out = env.weft(&["deploy", file.to_str().unwrap()]);
    // Deploying issued the secret of the one org the webhook runs for, shown once.
    let shown = ok(&out);
    assert!(
        shown.contains("webhook alerts.rmm for acme: POST ")
            && shown.contains("x-weft-secret: whsec_"),
        "{shown}"
    );
    let s = serve(&env);

    same_refusal(
        "a secret for an org the trigger does not run for",
        &env.weft(&["trigger", "secret", "alerts", "rmm", "--org", "msp"]),
        api(
            &s,
            "GET",
            "/api/triggers/alerts/rmm/secrets/msp",
            Value::Null,
        )
        .await,
    );
    same_refusal(
        "rotating the secret of an org that does not exist",
        &env.weft(&[
            "trigger", "secret", "alerts", "rmm", "--org", "nowhere", "--rotate",
        ]),
        api(
            &s,
            "POST",
            "/api/triggers/alerts/rmm/secrets/nowhere/rotate",
            json!({}),
        )
        .await,
    );
    same_refusal(
        "a secret of a trigger that is not a webhook",
        &env.weft(&["trigger", "secret", "alerts", "nightly", "--org", "acme"]),
        api(
            &s,
            "GET",
            "/api/triggers/alerts/nightly/secrets/acme",
            Value::Null,
        )
        .await,
    );
    same_refusal(
        "switching a trigger the workflow does not have",
        &env.weft(&["trigger", "enable", "alerts", "nigthly"]),
        api(
            &s,
            "POST",
            "/api/triggers/alerts/nigthly/enable",
            Value::Null,
        )
        .await,
    );
    same_refusal(
        "switching a trigger of a workflow that is not deployed",
        &env.weft(&["trigger", "disable", "nothing", "nightly"]),
        api(
            &s,
            "POST",
            "/api/triggers/nothing/nightly/disable",
            Value::Null,
        )
        .await,
    );
    same_refusal(
        "firing a webhook by hand",
        &env.weft(&["trigger", "fire", "alerts", "rmm"]),
        api(&s, "POST", "/api/triggers/alerts/rmm/fire", Value::Null).await,
    );
    same_refusal(
        "the events of a trigger the workflow does not have",
        &env.weft(&["trigger", "events", "alerts", "nope"]),
        api(&s, "GET", "/api/triggers/alerts/nope/events", Value::Null).await,
    );

    // The same secret, whoever asks; rotated by one, seen by the other.
    let cli: Value = serde_json::from_str(&ok(&env.weft(&[
        "trigger", "secret", "alerts", "rmm", "--org", "acme", "--json",
    ])))
    .unwrap();
    let (st, v) = api(
        &s,
        "GET",
        "/api/triggers/alerts/rmm/secrets/acme",
        Value::Null,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["secret"], cli["secret"]);
    assert_eq!(v["created"], false);
    let (st, rotated) = api(
        &s,
        "POST",
        "/api/triggers/alerts/rmm/secrets/acme/rotate",
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{rotated}");
    let cli: Value = serde_json::from_str(&ok(&env.weft(&[
        "trigger", "secret", "alerts", "rmm", "--org", "acme", "--json",
    ])))
    .unwrap();
    assert_eq!(cli["secret"], rotated["secret"]);
    assert_ne!(cli["secret"], v["secret"]);

    // Switched by one, seen by the other.
    ok(&env.weft(&["trigger", "disable", "alerts", "nightly"]));
    let (st, list) = api(&s, "GET", "/api/triggers", Value::Null).await;
    assert_eq!(st, 200, "{list}");
    let nightly = |list: &Value, key: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t[key] == "nightly")
            .cloned()
            .unwrap_or_else(|| panic!("{list}"))
    };
    assert_eq!(nightly(&list, "name")["enabled"], false);
    let (st, t) = api(
        &s,
        "POST",
        "/api/triggers/alerts/nightly/enable",
        Value::Null,
    )
    .await;
    assert_eq!((st, &t["enabled"]), (200, &json!(true)), "{t}");
    let cli: Value = serde_json::from_str(&ok(&env.weft(&["trigger", "list", "--json"]))).unwrap();
    assert_eq!(nightly(&cli, "trigger")["enabled"], true);
    let (_, rmm) = api(&s, "GET", "/api/triggers", Value::Null).await;
    let rmm = rmm
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rmm")
        .cloned()
        .unwrap();
    assert_eq!(rmm["orgs"], json!(["acme"]), "{rmm}");
}

#[tokio::test]
async fn an_invalid_workflow_is_refused_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    let file = env.write("broken.yaml", INVALID);
    let out = env.weft(&["deploy", file.to_str().unwrap()]);
    let s = serve(&env);
    let res = reqwest::Client::new()
        .post(format!("{}/api/workflows", s.url))
        .bearer_auth(TOKEN)
        .body(INVALID)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_workflow", "{v}");
    let first = &v["error"]["diagnostics"][0];
    assert_eq!(first["severity"], "error", "{v}");
    // The CLI refuses it too, naming the same first error at the same place.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let said = format!(
        "invalid: line {}:{}: {} [{}]",
        first["line"],
        first["column"],
        first["message"].as_str().unwrap(),
        first["code"].as_str().unwrap()
    );
    assert!(stderr.contains(&said), "CLI {stderr} / API {said}");
    // Nothing was stored by either.
    let (st, _) = api(&s, "GET", "/api/workflows/broken", Value::Null).await;
    assert_eq!(st, 404);
    let (st, list) = api(&s, "GET", "/api/workflows", Value::Null).await;
    assert_eq!((st, list), (200, json!([])));
}
