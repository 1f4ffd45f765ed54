//! Parity: crates use cases through the CLI and the API end the same way (see `parity`):
//! installing a library crate is refused for the same reasons with the same kind and
//! message (unknown crate: exit 1 ⇔ 404; a wrong parameter or org: exit 2 ⇔ 422; already
//! installed: exit 1 ⇔ 409), and what one installs, the other lists.

use serde_json::{Value, json};

use crate::parity::{api, same_refusal, serve};
use crate::support::Env;

#[tokio::test]
async fn crates_are_installed_and_refused_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    for name in ["Acme", "Beta"] {
        let out = env.weft(&["org", "add", name]);
        assert!(out.status.success(), "{out:?}");
    }
    let s = serve(&env);

    same_refusal(
        "an unknown crate",
        &env.weft(&["crate", "install", "hello-webhok", "--org", "acme"]),
        api(
            &s,
            "POST",
            "/api/crates/hello-webhok/install",
            json!({"org": "acme"}),
        )
        .await,
    );
    same_refusal(
        "an unknown parameter",
        &env.weft(&[
            "crate",
            "install",
            "hello-webhook",
            "--org",
            "acme",
            "--param",
            "gretting=Hi",
        ]),
        api(
            &s,
            "POST",
            "/api/crates/hello-webhook/install",
            json!({"org": "acme", "params": {"gretting": "Hi"}}),
        )
        .await,
    );
    same_refusal(
        "an org that does not exist",
        &env.weft(&["crate", "install", "hello-webhook", "--org", "nobody"]),
        api(
            &s,
            "POST",
            "/api/crates/hello-webhook/install",
            json!({"org": "nobody"}),
        )
        .await,
    );

    // The same install through each: acme by the CLI, beta by the API.
    let out = env.weft(&[
        "crate",
        "install",
        "hello-webhook",
        "--org",
        "acme",
        "--param",
        "greeting=Yo",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, v) = api(
        &s,
        "POST",
        "/api/crates/hello-webhook/install",
        json!({"org": "beta", "params": {"greeting": "Yo"}}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["workflows"][0]["name"], "hello-webhook--beta", "{v}");
    assert_eq!(v["workflows"][0]["triggers"][0]["enabled"], false, "{v}");

    // Both are recorded alike.
    let (st, list) = api(&s, "GET", "/api/crates", Value::Null).await;
    assert_eq!(st, 200, "{list}");
    let installs = list["installs"].as_array().expect("installs");
    assert_eq!(installs.len(), 2, "{list}");
    for i in installs {
        let org = i["org"].as_str().unwrap();
        assert_eq!(i["crate"], "hello-webhook", "{i}");
        assert_eq!(i["version"], "1.0.0", "{i}");
        assert_eq!(i["params"], json!({"greeting": "Yo"}), "{i}");
        assert_eq!(i["enabled"], false, "{i}");
        assert_eq!(
            i["workflows"][0]["name"],
            format!("hello-webhook--{org}"),
            "{i}"
        );
    }
    let out = env.weft(&["crate", "installed", "--json"]);
    let cli: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(cli, list["installs"], "the CLI lists what the API does");

    // A second install for the same org: refused alike, whoever installed it first.
    same_refusal(
        "already installed (by the CLI)",
        &env.weft(&["crate", "install", "hello-webhook", "--org", "acme"]),
        api(
            &s,
            "POST",
            "/api/crates/hello-webhook/install",
            json!({"org": "acme"}),
        )
        .await,
    );
    same_refusal(
        "already installed (by the API)",
        &env.weft(&["crate", "install", "hello-webhook", "--org", "beta"]),
        api(
            &s,
            "POST",
            "/api/crates/hello-webhook/install",
            json!({"org": "beta"}),
        )
        .await,
    );
}
