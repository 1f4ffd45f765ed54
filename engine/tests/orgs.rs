//! Executions in an organization's context: inherited variables in templates, secret
//! variables redacted from everything stored, integrations resolved up the tree, and
//! `run_as_org` down the tree only.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use weft_engine::Registry;
use weft_engine::action::{ActionContext, ActionError, TypedAction};
use weft_engine::executor::{Engine, StartOptions};
use weft_engine::org::seal_secrets;
use weft_engine::secrets::{KeyBox, SecretBox};
use weft_engine::store::{ExecStatus, IntegrationRecord, OrgRecord, OrgVar, Store};

/// Says which org it ran for and which Autotask instance it would use.
#[derive(Clone, Default)]
struct WhoAmI;

#[derive(Deserialize, JsonSchema)]
struct WhoParams {
    /// Echoed back.
    #[serde(default)]
    text: Value,
}

impl TypedAction for WhoAmI {
    const NAME: &'static str = "test.whoami";
    const DESCRIPTION: &'static str = "reports its org and integration";
    type Params = WhoParams;
    async fn run(&self, cx: ActionContext, p: WhoParams) -> Result<Value, ActionError> {
        let autotask = cx.integration("autotask")?;
        Ok(json!({
            "org": cx.org.id,
            "user": autotask.setting("username"),
            "secret": autotask.secret("secret"),
            "text": p.text,
        }))
    }
}

fn org(id: &str, parent: Option<&str>) -> OrgRecord {
    OrgRecord {
        id: id.into(),
        name: format!("{id} org"),
        parent_id: parent.map(str::to_string),
        tags: vec![],
        attributes: json!({}),
        active: true,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

struct World {
    engine: Arc<Engine>,
    store: Arc<dyn Store>,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weft.db");
    let store = weft_engine::store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let key = Arc::new(KeyBox::from_text("test key"));
    let mut registry = Registry::new();
    registry.register(WhoAmI);
    let engine = Engine::new(store.clone(), Arc::new(registry)).with_secrets(key.clone());
    store.save_org(&org("msp", None)).await.unwrap();
    store.save_org(&org("acme", Some("msp"))).await.unwrap();
    store
        .save_org(&org("acme-east", Some("acme")))
        .await
        .unwrap();
    let var = |o: &str, k: &str, v: Value, secret: bool| OrgVar {
        org_id: o.into(),
        key: k.into(),
        value: if secret {
            key.seal(&v.to_string())
        } else {
            v.to_string()
        },
        secret,
    };
    store
        .set_org_var(&var("msp", "queue", json!(5), false))
        .await
        .unwrap();
    store
        .set_org_var(&var("msp", "region", json!("eu"), false))
        .await
        .unwrap();
    store
        .set_org_var(&var("acme", "queue", json!(8), false))
        .await
        .unwrap();
    store
        .set_org_var(&var(
            "acme",
            "portal_password",
            json!("Sup3r-Secret-Pw"),
            true,
        ))
        .await
        .unwrap();
    store
        .set_org_var(&var("acme-east", "region", json!("us-east"), false))
        .await
        .unwrap();
    let integration = |o: &str, name: &str, user: &str| IntegrationRecord {
        org_id: o.into(),
        kind: "autotask".into(),
        name: name.into(),
        settings: json!({"username": user}),
        secrets: seal_secrets(
            &BTreeMap::from([("secret".to_string(), format!("at-secret-{user}"))]),
            key.as_ref(),
        ),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store
        .save_integration(&integration("msp", "default", "msp-api"))
        .await
        .unwrap();
    store
        .save_integration(&integration("msp", "gdap", "gdap-api"))
        .await
        .unwrap();
    store
        .save_integration(&integration("acme", "default", "acme-api"))
        .await
        .unwrap();
    World {
        engine,
        store,
        db,
        _dir: dir,
    }
}

async fn run(w: &World, yaml: &str, org: &str) -> weft_engine::store::ExecutionRecord {
    let record = w.engine.deploy(yaml, None).await.unwrap();
    w.engine
        .execute(
            &record,
            serde_json::Map::new(),
            StartOptions {
                org: Some(org.into()),
                trigger: None,
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn variables_inherit_and_secret_ones_are_never_stored() {
    let w = world().await;
    let exec = run(
        &w,
        r#"
name: vars
tasks:
  show:
    action: test.whoami
    input:
      text: "{{ ORG.name }} q={{ ORG.VARIABLES.queue }} r={{ ORG.VARIABLES.region }} pw={{ ORG.VARIABLES.portal_password }}"
output:
  text: "{{ TASKS.show.result.text }}"
  who: "{{ TASKS.show.result.user }}"
"#,
        "acme-east",
    )
    .await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    assert_eq!(exec.org, "acme-east");
    let text = exec.output.as_ref().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text, "acme-east org q=8 r=us-east pw=***",
        "secrets are masked in what is stored"
    );
    assert_eq!(
        exec.output.as_ref().unwrap()["who"],
        "acme-api",
        "the nearest parent's instance"
    );
    let runs = w.store.task_runs(&exec.id).await.unwrap();
    let stored = serde_json::to_string(&runs).unwrap();
    assert!(
        !stored.contains("Sup3r-Secret-Pw") && !stored.contains("at-secret-acme-api"),
        "{stored}"
    );
    // Nor anywhere in the database file (sealed at rest).
    drop(runs);
    let bytes = std::fs::read(&w.db).unwrap();
    let wal = std::fs::read(w.db.with_extension("db-wal")).unwrap_or_default();
    for needle in ["Sup3r-Secret-Pw", "at-secret-acme-api", "at-secret-msp-api"] {
        let found = |b: &[u8]| b.windows(needle.len()).any(|x| x == needle.as_bytes());
        assert!(
            !found(&bytes) && !found(&wal),
            "{needle} is in the database file"
        );
    }
}

#[tokio::test]
async fn integrations_resolve_by_override_own_parent_and_fail_with_the_org_named() {
    let w = world().await;
    let yaml = r#"
name: which
tasks:
  own:
    action: test.whoami
  named:
    action: test.whoami
    integration: gdap
output:
  own: "{{ TASKS.own.result.user }}"
  named: "{{ TASKS.named.result.user }}"
"#;
    let exec = run(&w, yaml, "acme").await;
    assert_eq!(exec.output.as_ref().unwrap()["own"], "acme-api");
    assert_eq!(
        exec.output.as_ref().unwrap()["named"],
        "gdap-api",
        "an instance of a parent, by name"
    );
    let exec = run(&w, yaml, "msp").await;
    assert_eq!(exec.output.as_ref().unwrap()["own"], "msp-api");
    let exec = run(&w, yaml, "unregistered").await;
    assert_eq!(exec.status, ExecStatus::Failed);
    let err = exec.error.unwrap();
    assert!(
        err.contains("unregistered") && err.contains("autotask"),
        "{err}"
    );
}

#[tokio::test]
async fn run_as_org_goes_down_the_tree_only() {
    let w = world().await;
    let down = run(
        &w,
        r#"
name: down
tasks:
  child:
    action: test.whoami
    run_as_org: acme-east
    input:
      text: "{{ ORG.id }} {{ ORG.VARIABLES.region }}"
output:
  org: "{{ TASKS.child.result.org }}"
  text: "{{ TASKS.child.result.text }}"
"#,
        "acme",
    )
    .await;
    assert_eq!(down.status, ExecStatus::Succeeded, "{:?}", down.error);
    assert_eq!(down.output.as_ref().unwrap()["org"], "acme-east");
    assert_eq!(down.output.as_ref().unwrap()["text"], "acme-east us-east");
    let up = run(
        &w,
        r#"
name: up
tasks:
  parent:
    action: test.whoami
    run_as_org: "{{ 'msp' }}"
"#,
        "acme",
    )
    .await;
    assert_eq!(up.status, ExecStatus::Failed);
    assert!(
        up.error.as_deref().unwrap().contains("not below"),
        "{:?}",
        up.error
    );
}

#[tokio::test]
async fn a_triggers_integration_applies_unless_the_task_names_its_own() {
    let w = world().await;
    let record = w
        .engine
        .deploy(
            r#"
name: by-trigger
tasks:
  plain:
    action: test.whoami
  own:
    action: test.whoami
    integration: default
output:
  plain: "{{ TASKS.plain.result.user }}"
  own: "{{ TASKS.own.result.user }}"
"#,
            None,
        )
        .await
        .unwrap();
    let exec = w
        .engine
        .execute(
            &record,
            serde_json::Map::new(),
            StartOptions {
                org: Some("acme".into()),
                trigger: Some(json!({"type": "webhook", "integration": "gdap"})),
            },
        )
        .await
        .unwrap();
    assert_eq!(exec.output.as_ref().unwrap()["plain"], "gdap-api");
    assert_eq!(exec.output.as_ref().unwrap()["own"], "acme-api");
}

/// A finished execution of `org` that ended `ago` before now.
async fn finished(
    w: &World,
    wf: &weft_engine::store::WorkflowRecord,
    id: &str,
    org: &str,
    ago: jiff::SignedDuration,
) {
    let at = jiff::Timestamp::now().checked_sub(ago).unwrap().to_string();
    let e = weft_engine::store::NewExecution {
        id: id.into(),
        workflow: wf.clone(),
        org: org.into(),
        input: json!({}),
        vars: json!({}),
        trigger: json!({}),
        parent_id: None,
        parent_task: None,
        rerun_of: None,
        owner: Some("test".into()),
        lease_until_ms: None,
        error: None,
        concurrency_key: None,
        concurrency_limit: None,
        sealed: None,
        created_at: at.clone(),
    };
    w.store.create_execution(&e, &[]).await.unwrap();
    w.store
        .finish_execution(
            id,
            weft_engine::store::ExecStatus::Succeeded,
            None,
            None,
            &at,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_follows_each_orgs_own_period_then_the_default() {
    let w = world().await;
    let wf = w
        .store
        .deploy_workflow("kept", "name: kept\n", None)
        .await
        .unwrap();
    let days = |d: i64| jiff::SignedDuration::from_hours(24 * d);
    for org in ["msp", "acme", "acme-east", "default"] {
        finished(&w, &wf, &format!("{org}-old"), org, days(5)).await;
        finished(
            &w,
            &wf,
            &format!("{org}-new"),
            org,
            jiff::SignedDuration::from_hours(1),
        )
        .await;
    }
    let set = |o: &str, v: Value| OrgVar {
        org_id: o.into(),
        key: weft_engine::retention::RETENTION_VAR.into(),
        value: v.to_string(),
        secret: false,
    };
    // acme keeps a day (acme-east inherits it); the rest follow the default.
    w.store
        .set_org_var(&set("acme", json!("1d")))
        .await
        .unwrap();
    let exists = async |id: &str| w.store.execution(id).await.is_ok();

    let done =
        weft_engine::retention::apply(&w.engine, Some(std::time::Duration::from_secs(10 * 86400)))
            .await
            .unwrap();
    assert!(
        !exists("acme-old").await && !exists("acme-east-old").await,
        "{done:?}"
    );
    assert!(exists("acme-new").await && exists("acme-east-new").await);
    assert!(
        exists("msp-old").await && exists("default-old").await,
        "within the 10-day default"
    );

    // acme-east keeps everything of its own; a 2-day default takes the others' old ones.
    w.store
        .set_org_var(&set("acme-east", json!("forever")))
        .await
        .unwrap();
    finished(&w, &wf, "acme-east-older", "acme-east", days(400)).await;
    weft_engine::retention::apply(&w.engine, Some(std::time::Duration::from_secs(2 * 86400)))
        .await
        .unwrap();
    assert!(!exists("msp-old").await && !exists("default-old").await);
    assert!(exists("msp-new").await && exists("default-new").await);
    assert!(exists("acme-east-older").await, "forever is forever");

    // No default: only the orgs with their own period are purged.
    finished(&w, &wf, "msp-ancient", "msp", days(900)).await;
    weft_engine::retention::apply(&w.engine, None)
        .await
        .unwrap();
    assert!(exists("msp-ancient").await);
}

#[tokio::test]
async fn a_change_made_by_another_process_reaches_the_next_execution() {
    let w = world().await;
    let yaml = r#"
name: queue-of
tasks:
  show:
    action: test.whoami
    input:
      text: "q={{ ORG.VARIABLES.queue }} parent={{ ORG.parent }}"
output:
  text: "{{ TASKS.show.result.text }}"
  who: "{{ TASKS.show.result.user }}"
"#;
    let text = |e: &weft_engine::store::ExecutionRecord| {
        assert_eq!(e.status, ExecStatus::Succeeded, "{:?}", e.error);
        (
            e.output.as_ref().unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string(),
            e.output.as_ref().unwrap()["who"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let first = run(&w, yaml, "acme").await;
    assert_eq!(text(&first).0, "q=8 parent=msp");
    // Another process (its own connection to the same file) changes the org's variable, its
    // integration and its parent; the engine's kept context must not be used any more.
    let other = weft_engine::store::open(&format!("sqlite://{}", w.db.display()))
        .await
        .unwrap();
    other
        .set_org_var(&OrgVar {
            org_id: "acme".into(),
            key: "queue".into(),
            value: "9".into(),
            secret: false,
        })
        .await
        .unwrap();
    let second = run(&w, yaml, "acme").await;
    assert_eq!(text(&second).0, "q=9 parent=msp");
    assert!(
        other
            .delete_integration("acme", "autotask", "default")
            .await
            .unwrap()
    );
    let third = run(&w, yaml, "acme").await;
    assert_eq!(
        text(&third).1,
        "msp-api",
        "the parent's instance once its own is gone"
    );
    assert!(other.delete_org_var("acme", "queue").await.unwrap());
    let fourth = run(&w, yaml, "acme").await;
    assert_eq!(
        text(&fourth).0,
        "q=5 parent=msp",
        "the parent's value once its own is gone"
    );
    // Detached from its parent, it inherits nothing any more.
    let mut moved = other.org("acme").await.unwrap();
    moved.parent_id = None;
    other.save_org(&moved).await.unwrap();
    let fifth = run(&w, yaml, "acme").await;
    assert_eq!(fifth.status, ExecStatus::Failed);
    assert!(
        fifth
            .error
            .as_deref()
            .unwrap_or("")
            .contains("`ORG.VARIABLES.queue` is undefined"),
        "{:?}",
        fifth.error
    );
}
