//! Parity: sync use cases through the CLI and the API end the same way (see `parity`) —
//! `weft sync autotask …` and `/api/sync/autotask/*` call the same `weft_service::sync`.

use std::process::Output;

use serde_json::{Value, json};

use crate::parity::{api, same_refusal, serve};
use crate::support::Env;

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `weft sync autotask settings ARGS --json`, without the CLI's own `next_run`.
fn cli_settings(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["sync", "autotask", "settings", "--json"];
    all.extend_from_slice(args);
    let mut v: Value = serde_json::from_str(&ok("settings", &env.weft(&all))).unwrap();
    v.as_object_mut().unwrap().remove("next_run");
    v
}

#[tokio::test]
async fn sync_refusals_and_settings_are_the_same_through_the_cli_and_the_api() {
    let env = Env::new();
    ok(
        "root",
        &env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]),
    );
    ok(
        "client",
        &env.weft(&["org", "add", "Acme", "--parent", "msp"]),
    );
    ok(
        "match",
        &env.weft(&["sync", "autotask", "match", "company", "174", "acme"]),
    );
    let s = serve(&env);

    // Refusals: the same kind, the same message.
    same_refusal(
        "excluding a company linked to an org",
        &env.weft(&["sync", "autotask", "exclude", "company", "174"]),
        api(
            &s,
            "POST",
            "/api/sync/autotask/company/174/exclude",
            json!({}),
        )
        .await,
    );
    let refused = api(
        &s,
        "POST",
        "/api/sync/autotask/company/174/exclude",
        json!({}),
    )
    .await;
    assert_eq!(
        (refused.0, &refused.1["error"]["code"]),
        (409, &json!("conflict"))
    );
    same_refusal(
        "a schedule that is not a cron expression",
        &env.weft(&["sync", "autotask", "settings", "--schedule", "99 * * * *"]),
        api(
            &s,
            "PUT",
            "/api/sync/autotask/settings",
            json!({"schedule": "99 * * * *"}),
        )
        .await,
    );
    same_refusal(
        "an unknown time zone",
        &env.weft(&["sync", "autotask", "settings", "--timezone", "Mars/Olympus"]),
        api(
            &s,
            "PUT",
            "/api/sync/autotask/settings",
            json!({"timezone": "Mars/Olympus"}),
        )
        .await,
    );
    same_refusal(
        "a sync of an org that does not exist",
        &env.weft(&["sync", "autotask", "--org", "nowhere"]),
        api(
            &s,
            "POST",
            "/api/sync/autotask/preview",
            json!({"org": "nowhere"}),
        )
        .await,
    );
    same_refusal(
        "a sync without an Autotask integration",
        &env.weft(&["sync", "autotask", "--apply"]),
        api(&s, "POST", "/api/sync/autotask/apply", json!({})).await,
    );

    // Settings changed by one are read the same by the other.
    let (st, put) = api(
        &s,
        "PUT",
        "/api/sync/autotask/settings",
        json!({"auto_create_clients": true, "schedule": null, "timezone": "Europe/London"}),
    )
    .await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(put["schedule"], Value::Null);
    assert_eq!(cli_settings(&env, &[]), put);
    let changed = cli_settings(
        &env,
        &[
            "--schedule",
            "0 3 * * *",
            "--auto-create-users",
            "on",
            "--company-types",
            "1,3",
        ],
    );
    assert_eq!(changed["company_types"], json!([1, 3]));
    let (st, got) = api(&s, "GET", "/api/sync/autotask/settings", Value::Null).await;
    assert_eq!((st, &got), (200, &changed));

    // A resource excluded through the API is listed by the CLI, and the CLI's answer for an
    // exclusion is the API's.
    let (st, v) = api(&s, "POST", "/api/sync/autotask/users/77/exclude", json!({})).await;
    assert_eq!(
        (st, v),
        (200, json!({"kind": "user", "id": "77", "excluded": true}))
    );
    let listed: Value = serde_json::from_str(&ok(
        "excluded",
        &env.weft(&["sync", "autotask", "excluded", "--json"]),
    ))
    .unwrap();
    assert_eq!(
        listed,
        json!([{"kind": "user", "external_id": "77", "name": null}])
    );
    let out = ok(
        "include",
        &env.weft(&["sync", "autotask", "include", "user", "77"]),
    );
    assert!(out.contains("no longer excluded"), "{out}");
    let (st, v) = api(
        &s,
        "POST",
        "/api/sync/autotask/configuration/9/create",
        json!({}),
    )
    .await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"kind": "configuration", "id": "9", "create_at_next_apply": true})
        )
    );
    let (st, v) = api(
        &s,
        "POST",
        "/api/sync/autotask/configuration/9/exclude",
        json!({}),
    )
    .await;
    assert_eq!(
        (st, &v["error"]["code"]),
        (422, &json!("invalid_input")),
        "{v}"
    );
}
