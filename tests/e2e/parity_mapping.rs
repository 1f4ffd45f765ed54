//! Parity: mapping use cases through the CLI and the API end the same way (see `parity`).
//! One database, one Autotask simulator, the root org's Autotask integration stored in the
//! database: `weft mapping set|unset|exclude|include|suggest` and `/api/mapping/autotask…`
//! accept and refuse the same operations with the same kind of error (exit 1 ⇔ 404/409,
//! exit 2 ⇔ 422) and the same message.

use serde_json::{Value, json};
use weft_sim::{SimConfig, Simulator};

use crate::parity::{api, same_refusal, serve};
use crate::support::Env;

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_is_accepted_and_refused_the_same_way_by_the_cli_and_the_api() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let creds = SimConfig::default();
    let env = Env::new();
    ok(
        &env.weft(&["org", "add", "Weft Test MSP", "--id", "msp"]),
        "root org",
    );
    for name in ["Acme Dental", "Summit Law Group"] {
        ok(&env.weft(&["org", "add", name, "--parent", "msp"]), name);
    }
    let username = format!("username={}", creds.username);
    let code = format!("integration_code={}", creds.integration_code);
    let discovery = format!("discovery_url={}", sim.base_url);
    let secret = format!("secret={}", creds.secret);
    ok(
        &env.weft(&[
            "integration",
            "add",
            "autotask",
            "--org",
            "msp",
            "--set",
            &username,
            "--set",
            &code,
            "--set",
            &discovery,
            "--secret",
            &secret,
        ]),
        "the root org's Autotask integration",
    );
    let s = serve(&env);

    // A successful set: the CLI maps, the API sets the same pair again and answers it.
    let printed = ok(
        &env.weft(&["mapping", "set", "acme-dental", "174"]),
        "mapping set",
    );
    assert!(
        printed.contains("mapped acme-dental -> 174 Acme Dental"),
        "{printed}"
    );
    let (st, v) = api(
        &s,
        "PUT",
        "/api/mapping/autotask/acme-dental",
        json!({"company_id": 174}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"org": {"id": "acme-dental", "name": "Acme Dental"}, "company_id": 174,
            "company_name": "Acme Dental"})
    );

    // A company mapped to another org is never moved.
    same_refusal(
        "setting a company mapped to another org",
        &env.weft(&["mapping", "set", "summit-law-group", "174"]),
        api(
            &s,
            "PUT",
            "/api/mapping/autotask/summit-law-group",
            json!({"company_id": 174}),
        )
        .await,
    );
    let (st, v) = api(
        &s,
        "PUT",
        "/api/mapping/autotask/summit-law-group",
        json!({"company_id": 174}),
    )
    .await;
    assert_eq!((st, &v["error"]["code"]), (409, &json!("conflict")), "{v}");
    // A mapped company is not excluded.
    same_refusal(
        "excluding a mapped company",
        &env.weft(&["mapping", "exclude", "174"]),
        api(
            &s,
            "POST",
            "/api/mapping/autotask/exclusions",
            json!({"company_id": 174}),
        )
        .await,
    );
    // Things that do not exist.
    same_refusal(
        "an org that does not exist",
        &env.weft(&["mapping", "set", "ghost", "177"]),
        api(
            &s,
            "PUT",
            "/api/mapping/autotask/ghost",
            json!({"company_id": 177}),
        )
        .await,
    );
    same_refusal(
        "a company Autotask does not have",
        &env.weft(&["mapping", "set", "summit-law-group", "999999"]),
        api(
            &s,
            "PUT",
            "/api/mapping/autotask/summit-law-group",
            json!({"company_id": 999999}),
        )
        .await,
    );
    same_refusal(
        "unmapping an org that is not mapped",
        &env.weft(&["mapping", "unset", "summit-law-group"]),
        api(
            &s,
            "DELETE",
            "/api/mapping/autotask/summit-law-group",
            Value::Null,
        )
        .await,
    );
    same_refusal(
        "including a company that is not excluded",
        &env.weft(&["mapping", "include", "180"]),
        api(
            &s,
            "DELETE",
            "/api/mapping/autotask/exclusions/180",
            Value::Null,
        )
        .await,
    );
    // A usage error: exit 2 ⇔ 422.
    same_refusal(
        "an unknown company type",
        &env.weft(&[
            "mapping",
            "suggest",
            "autotask",
            "--company-type",
            "Martian",
        ]),
        api(
            &s,
            "GET",
            "/api/mapping/autotask/suggestions?company_type=Martian",
            Value::Null,
        )
        .await,
    );

    // Nothing moved, nothing excluded; both callers see the same suggestions.
    let cli: Value = serde_json::from_str(&ok(
        &env.weft(&["mapping", "suggest", "autotask", "--json"]),
        "suggest",
    ))
    .unwrap();
    let (st, v) = api(&s, "GET", "/api/mapping/autotask/suggestions", Value::Null).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(cli, v);
    assert_eq!(v["already_mapped"][0]["org"]["id"], "acme-dental", "{v}");
    assert_eq!(v["already_mapped"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["matched"][0]["org"]["id"], "summit-law-group", "{v}");
    assert!(v["excluded"].as_array().unwrap().is_empty(), "{v}");
}
