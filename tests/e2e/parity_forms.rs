//! Parity: form files deployed and described through the CLI and the API end the same way (see
//! `parity`): `weft deploy` / `POST /api/forms`, `weft form list|show` / `GET /api/forms*`.

use serde_json::{Value, json};

use crate::parity::{Serve, TOKEN, api, same_refusal, serve};
use crate::support::{Env, lab::ok};

const FORM: &str = "form: new-user\ntitle: New starter\nfields:\n  - section: Person\n  - name: first_name\n    required: true\n  - name: licence\n    type: select\n    options: [basic, premium]\n";

const INVALID: &str = "form: broken\nfields:\n  - name: start\n    type: dat\n";

async fn post_yaml(s: &Serve, path: &str, yaml: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", s.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/yaml")
        .body(yaml.to_string())
        .send()
        .await
        .expect("weft serve answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn forms_are_deployed_described_and_refused_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    let file = env.write("new-user.yaml", FORM);
    let out = env.weft(&["deploy", file.to_str().unwrap()]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deployed form new-user v1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = serve(&env);

    // The same source through the API is the same version; a changed one is the next.
    let (st, v) = post_yaml(&s, "/api/forms", FORM).await;
    assert_eq!(
        (st, &v["version"], &v["changed"]),
        (200, &json!(1), &json!(false)),
        "{v}"
    );
    let (st, v) = post_yaml(&s, "/api/forms", &FORM.replace("New starter", "New joiner")).await;
    assert_eq!(
        (st, &v["version"], &v["changed"]),
        (200, &json!(2), &json!(true)),
        "{v}"
    );

    // What one side stored the other describes identically.
    let cli: Value =
        serde_json::from_str(&ok(&env.weft(&["form", "show", "new-user", "--json"]))).unwrap();
    let (st, from_api) = api(&s, "GET", "/api/forms/new-user", Value::Null).await;
    assert_eq!(st, 200);
    assert_eq!(cli, from_api);
    assert_eq!(cli["title"], "New joiner");
    assert_eq!(cli["field_list"][1]["options"], json!(["basic", "premium"]));
    let cli: Value = serde_json::from_str(&ok(&env.weft(&["form", "list", "--json"]))).unwrap();
    let (_, from_api) = api(&s, "GET", "/api/forms", Value::Null).await;
    assert_eq!(cli, from_api);

    // An unknown form: not found, the same message (with the near name).
    same_refusal(
        "unknown form",
        &env.weft(&["form", "show", "new-usr"]),
        api(&s, "GET", "/api/forms/new-usr", Value::Null).await,
    );

    // An invalid form: nothing stored by either; the API names the first error where the
    // CLI does.
    let bad = env.write("broken.yaml", INVALID);
    let out = env.weft(&["deploy", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (st, v) = post_yaml(&s, "/api/forms", INVALID).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("invalid_form")),
        "{v}"
    );
    let first = &v["error"]["diagnostics"][0];
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(4), Some(11))
    );
    let summary = format!(
        "line {}:{}: {}",
        first["line"],
        first["column"],
        first["message"].as_str().unwrap()
    );
    assert!(stderr.contains(&summary), "CLI {stderr} / API {summary}");
    let (_, listed) = api(&s, "GET", "/api/forms", Value::Null).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

/// The token at the end of a link's URL (the origin is each caller's public URL).
fn token(v: &Value) -> &str {
    v["url"].as_str().unwrap().rsplit('/').next().unwrap()
}

#[tokio::test]
async fn form_links_are_issued_rotated_and_switched_the_same_way_by_the_cli_and_the_api() {
    let env = Env::new();
    ok(&env.weft(&["org", "add", "BrightPath IT", "--id", "msp"]));
    ok(&env.weft(&["org", "add", "Acme", "--parent", "msp"]));
    let file = env.write("new-user.yaml", FORM);
    ok(&env.weft(&["deploy", file.to_str().unwrap()]));
    let s = serve(&env);

    let cli: Value = serde_json::from_str(&ok(
        &env.weft(&["form", "link", "new-user", "--org", "acme", "--json"])
    ))
    .unwrap();
    assert!(token(&cli).starts_with("wfl_"), "{cli}");
    let (st, from_api) = api(&s, "GET", "/api/forms/new-user/links/acme", Value::Null).await;
    assert_eq!(st, 200, "{from_api}");
    assert_eq!(
        token(&from_api),
        token(&cli),
        "one standing link per form and org"
    );

    let (_, rotated) = api(
        &s,
        "POST",
        "/api/forms/new-user/links/acme/rotate",
        Value::Null,
    )
    .await;
    assert_eq!(rotated["generation"], 2);
    assert_ne!(token(&rotated), token(&cli));
    let (_, off) = api(
        &s,
        "PATCH",
        "/api/forms/new-user/links/acme",
        json!({"enabled": false, "expires": "30d"}),
    )
    .await;
    assert_eq!(off["state"], "disabled", "{off}");
    let listed: Value =
        serde_json::from_str(&ok(&env.weft(&["form", "links", "--org", "acme", "--json"])))
            .unwrap();
    assert_eq!(listed[0]["state"], "disabled");
    assert_eq!(token(&listed[0]), token(&rotated));
    assert_eq!(listed[0]["expires_at"], off["expires_at"]);

    same_refusal(
        "unknown org",
        &env.weft(&["form", "link", "new-user", "--org", "globex"]),
        api(&s, "GET", "/api/forms/new-user/links/globex", Value::Null).await,
    );
    same_refusal(
        "bad expiry",
        &env.weft(&[
            "form",
            "link",
            "new-user",
            "--org",
            "acme",
            "--expires",
            "soon",
        ]),
        api(
            &s,
            "PATCH",
            "/api/forms/new-user/links/acme",
            json!({"expires": "soon"}),
        )
        .await,
    );
}
