//! `/api/orgs*`, `/api/integrations*` and `/api/sync/runs`: organizations, their variables
//! and integration instances, their synced directory. Secret values (secret variables,
//! integration secrets) are sealed at rest and never answered: variables show `***`,
//! integrations list only the names of their secret keys.
//!
//! The rules (creating orgs, the tree, checking and storing integrations) live in
//! `weft_service`; the views here ([`variables_view`], [`integration_view`], [`org_detail`])
//! are shared with the `weft org` and `weft integration` commands.

use std::collections::BTreeMap;
use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use weft_engine::action::now_rfc3339;
use weft_engine::secrets::SecretBox;
use weft_engine::store::{IntegrationRecord, OrgRecord, Store, StoreError};

use weft_service::integrations::{KINDS, NewIntegration};
use weft_service::orgs::{NewOrg, clean_tags, org_chain, would_cycle};

use crate::api::body_object;
use crate::{ApiError, AppState};

/// What a secret value is shown as.
pub const REDACTED: &str = "***";

/// The directory kinds an org has (`GET /api/orgs/{org}/directory/{kind}`).
pub const DIRECTORY_KINDS: &[&str] = &["contact", "configuration", "location", "user", "company"];

/// One variable as an org sees it, redacted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VarView {
    /// Its name.
    pub key: String,
    /// The value, or `***` when secret.
    pub value: Value,
    /// Secret variables are never shown.
    pub secret: bool,
    /// The org that sets it (the org itself or an ancestor).
    pub from_org: String,
    /// Set by an ancestor, not the org itself.
    pub inherited: bool,
}

/// The variables of `chain[0]` (from [`org_chain`]): own and inherited, nearest wins, by
/// key; secret ones as `***` (they are never opened).
///
/// # Errors
/// Store failures.
pub async fn variables_view(
    store: &dyn Store,
    chain: &[OrgRecord],
) -> Result<Vec<VarView>, StoreError> {
    let mut out: BTreeMap<String, VarView> = BTreeMap::new();
    for (depth, o) in chain.iter().enumerate().rev() {
        for v in store.org_vars(&o.id).await? {
            let value = if v.secret {
                Value::String(REDACTED.into())
            } else {
                serde_json::from_str(&v.value).unwrap_or(Value::String(v.value.clone()))
            };
            out.insert(
                v.key.clone(),
                VarView {
                    key: v.key,
                    value,
                    secret: v.secret,
                    from_org: o.id.clone(),
                    inherited: depth > 0,
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// The names of an integration's secret settings (opening them in memory only); `None`
/// when they cannot be opened (another key).
pub fn secret_keys(record: &IntegrationRecord, secrets: &dyn SecretBox) -> Option<Vec<String>> {
    match &record.secrets {
        None => Some(Vec::new()),
        Some(sealed) => {
            let plain = secrets.open(sealed).ok()?;
            let map: BTreeMap<String, Value> = serde_json::from_str(&plain).ok()?;
            Some(map.into_keys().collect())
        }
    }
}

/// An integration instance as JSON: kind, name, org, settings and `secrets` as
/// `{key: "***"}` (never the values).
pub fn integration_view(record: &IntegrationRecord, secrets: &dyn SecretBox) -> Value {
    let keys = secret_keys(record, secrets);
    let masked: Map<String, Value> = keys
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k, Value::String(REDACTED.into())))
        .collect();
    let mut v = json!({
        "org": record.org_id,
        "kind": record.kind,
        "name": record.name,
        "settings": record.settings,
        "secrets": masked,
        "created_at": record.created_at,
    });
    if keys.is_none() {
        v["secrets_unreadable"] = json!(true);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn opt_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::InvalidInput(format!("`{key}` must be a string"))),
    }
}

fn tags_of(v: &Value) -> Result<Vec<String>, ApiError> {
    let list = v
        .as_array()
        .ok_or_else(|| ApiError::InvalidInput("`tags` must be a list of strings".into()))?;
    let tags = list
        .iter()
        .map(|t| t.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::InvalidInput("`tags` must be a list of strings".into()))?;
    Ok(clean_tags(tags))
}

/// The Autotask company each org maps to: org id → `{id, name}`.
async fn autotask_mapping(state: &AppState) -> Result<HashMap<String, Value>, ApiError> {
    Ok(state
        .store()
        .mappings("autotask")
        .await?
        .into_iter()
        .map(|m| {
            (
                m.org_id.clone(),
                json!({"id": m.external_id, "name": m.external_name}),
            )
        })
        .collect())
}

fn org_json(o: &OrgRecord, mapping: &HashMap<String, Value>) -> Value {
    let mut v = serde_json::to_value(o).expect("serializes");
    v["autotask_company"] = mapping.get(&o.id).cloned().unwrap_or(Value::Null);
    v
}

/// `GET /api/orgs`: every org, parents first.
pub(crate) async fn list_orgs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mapping = autotask_mapping(&state).await?;
    let list: Vec<Value> = state
        .store()
        .list_orgs()
        .await?
        .iter()
        .map(|o| org_json(o, &mapping))
        .collect();
    Ok(Json(json!(list)))
}

/// `POST /api/orgs` `{name, parent?, tags?, id?}` ([`weft_service::orgs::create`]).
pub(crate) async fn create_org(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = body_object(&body)?;
    let new = NewOrg {
        name: opt_str(&body, "name")?
            .ok_or_else(|| ApiError::InvalidInput("`name` is required".into()))?,
        id: opt_str(&body, "id")?,
        parent: opt_str(&body, "parent")?,
        tags: match body.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(t) => tags_of(t)?,
        },
    };
    let created = weft_service::orgs::create(state.store().as_ref(), new).await?;
    let mapping = autotask_mapping(&state).await?;
    Ok((StatusCode::CREATED, Json(org_json(&created.org, &mapping))).into_response())
}

/// An org as `GET /api/orgs/{org}` (and `weft org show --json`) answers it: its fields,
/// `autotask_company`, `ancestors` (parent first), `variables` (own and inherited, secrets
/// `***`), `integrations` (own then inherited, secrets by name only) and `mapping`.
///
/// # Errors
/// Store failures (not found: the org).
pub async fn org_detail(
    store: &dyn Store,
    secrets: &dyn SecretBox,
    org: &str,
) -> Result<Value, StoreError> {
    let chain = org_chain(store, org).await?;
    let mut v = serde_json::to_value(&chain[0]).expect("serializes");
    let mut mappings = Map::new();
    for kind in KINDS {
        if let Some(m) = store
            .mappings(kind)
            .await?
            .into_iter()
            .find(|m| m.org_id == chain[0].id)
        {
            mappings.insert(
                kind.to_string(),
                serde_json::to_value(&m).expect("serializes"),
            );
        }
    }
    v["autotask_company"] = mappings
        .get("autotask")
        .map(|m| json!({"id": m["external_id"], "name": m["external_name"]}))
        .unwrap_or(Value::Null);
    v["ancestors"] = json!(
        chain[1..]
            .iter()
            .map(|o| json!({"id": o.id, "name": o.name}))
            .collect::<Vec<_>>()
    );
    v["variables"] = json!(variables_view(store, &chain).await?);
    let mut integrations = Vec::new();
    for (depth, o) in chain.iter().enumerate() {
        for i in store.integrations(Some(&o.id)).await? {
            let mut view = integration_view(&i, secrets);
            view["inherited"] = json!(depth > 0);
            integrations.push(view);
        }
    }
    v["integrations"] = json!(integrations);
    v["mapping"] = Value::Object(mappings);
    Ok(v)
}

/// `GET /api/orgs/{org}`: see [`org_detail`].
pub(crate) async fn get_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        org_detail(
            state.store().as_ref(),
            state.engine().secrets().as_ref(),
            &org,
        )
        .await?,
    ))
}

/// `PATCH /api/orgs/{org}` `{name?, parent? (null: a root), tags?, attributes?, active?}`.
pub(crate) async fn patch_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let store = state.store().as_ref();
    let mut record = store.org(&org).await?;
    let body = body_object(&body)?;
    for key in body.keys() {
        if !["name", "parent", "tags", "attributes", "active"].contains(&key.as_str()) {
            return Err(ApiError::InvalidInput(format!(
                "`{key}` cannot be changed (name, parent, tags, attributes, active)"
            )));
        }
    }
    if let Some(name) = opt_str(&body, "name")? {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ApiError::InvalidInput("`name` cannot be empty".into()));
        }
        record.name = name;
    }
    if let Some(p) = body.get("parent") {
        record.parent_id = match p {
            Value::Null => None,
            Value::String(p) => {
                let parent =
                    weft_service::orgs::existing(state.store().as_ref(), p, "the parent").await?;
                if would_cycle(store, &record.id, &parent.id).await? {
                    return Err(ApiError::InvalidInput(format!(
                        "`{}` cannot be the parent of `{}`: it is the organization itself or below it",
                        parent.id, record.id
                    )));
                }
                Some(parent.id)
            }
            _ => {
                return Err(ApiError::InvalidInput(
                    "`parent` must be a string or null".into(),
                ));
            }
        };
    }
    if let Some(t) = body.get("tags") {
        record.tags = tags_of(t)?;
    }
    if let Some(a) = body.get("attributes") {
        if !a.is_object() {
            return Err(ApiError::InvalidInput(
                "`attributes` must be an object".into(),
            ));
        }
        record.attributes = a.clone();
    }
    if let Some(a) = body.get("active") {
        record.active = a
            .as_bool()
            .ok_or_else(|| ApiError::InvalidInput("`active` must be true or false".into()))?;
    }
    record.updated_at = now_rfc3339();
    store.save_org(&record).await?;
    let mapping = autotask_mapping(&state).await?;
    Ok(Json(org_json(&record, &mapping)))
}

/// `DELETE /api/orgs/{org}`: refused (409) while it has children or unfinished executions.
pub(crate) async fn delete_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = state.store().org(&org).await?;
    state.store().delete_org(&record.id).await?;
    Ok(Json(json!({"deleted": record.id})))
}

/// `GET /api/orgs/{org}/variables`: own and inherited, nearest wins, secrets `***`.
pub(crate) async fn list_variables(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let chain = org_chain(state.store().as_ref(), &org).await?;
    Ok(Json(json!(
        variables_view(state.store().as_ref(), &chain).await?
    )))
}

/// `PUT /api/orgs/{org}/variables/{key}` `{value, secret?}`.
pub(crate) async fn put_variable(
    State(state): State<AppState>,
    Path((org, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    let value = body
        .get("value")
        .cloned()
        .ok_or_else(|| ApiError::InvalidInput("`value` is required".into()))?;
    let secret = match body.get("secret") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::InvalidInput(
                "`secret` must be true or false".into(),
            ));
        }
    };
    let record = weft_service::orgs::set_variable(
        state.store().as_ref(),
        state.engine().secrets().as_ref(),
        &org,
        &key,
        &value,
        secret,
    )
    .await?;
    Ok(Json(json!({
        "org": record.id,
        "key": key,
        "value": if secret { json!(REDACTED) } else { value },
        "secret": secret,
    })))
}

/// `DELETE /api/orgs/{org}/variables/{key}`: the org's own variable.
pub(crate) async fn delete_variable(
    State(state): State<AppState>,
    Path((org, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = weft_service::orgs::unset_variable(state.store().as_ref(), &org, &key).await?;
    Ok(Json(json!({"org": record.id, "deleted": key})))
}

/// `GET /api/integrations?org=`: instances (of one org, or all), secrets as key names.
pub(crate) async fn list_integrations(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let org = match params.get("org").filter(|o| !o.is_empty()) {
        Some(o) => Some(state.store().org(o).await?.id),
        None => None,
    };
    let list: Vec<Value> = state
        .store()
        .integrations(org.as_deref())
        .await?
        .iter()
        .map(|i| integration_view(i, state.engine().secrets().as_ref()))
        .collect();
    Ok(Json(json!(list)))
}

/// `POST /api/integrations` `{kind, org, name?, settings, secrets}`: creates or replaces.
pub(crate) async fn create_integration(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = body_object(&body)?;
    let kind = opt_str(&body, "kind")?
        .ok_or_else(|| ApiError::InvalidInput("`kind` is required".into()))?;
    let org =
        opt_str(&body, "org")?.ok_or_else(|| ApiError::InvalidInput("`org` is required".into()))?;
    let name = opt_str(&body, "name")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let settings = match body.get("settings") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::InvalidInput(
                "`settings` must be an object".into(),
            ));
        }
    };
    let secrets: BTreeMap<String, String> = match body.get("secrets") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::InvalidInput(format!(
                    "the secret `{k}` must be a string"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::InvalidInput(
                "`secrets` must be an object of strings".into(),
            ));
        }
    };
    let added = weft_service::integrations::add(
        state.store().as_ref(),
        state.engine().secrets().as_ref(),
        NewIntegration {
            org,
            kind,
            name,
            settings,
            secrets,
        },
    )
    .await?;
    let mut v = integration_view(&added.record, state.engine().secrets().as_ref());
    v["warnings"] = json!(added.warnings);
    v["replaced"] = json!(added.replaced);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE /api/integrations/{org}/{kind}/{name}`.
pub(crate) async fn delete_integration(
    State(state): State<AppState>,
    Path((org, kind, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record =
        weft_service::integrations::remove(state.store().as_ref(), &org, &kind, &name).await?;
    Ok(Json(
        json!({"org": record.id, "kind": kind, "name": name, "deleted": true}),
    ))
}

/// `GET /api/orgs/{org}/directory/{kind}`: the org's synced Autotask contacts,
/// configurations, locations or users (`contacts` and `contact` both work).
pub(crate) async fn directory(
    State(state): State<AppState>,
    Path((org, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = state.store().org(&org).await?;
    let singular = kind.strip_suffix('s').unwrap_or(&kind);
    let singular = if singular == "companie" {
        "company"
    } else {
        singular
    };
    if !DIRECTORY_KINDS.contains(&singular) {
        return Err(ApiError::InvalidInput(format!(
            "unknown directory kind `{kind}` (contacts, configurations, locations, users, companies)"
        )));
    }
    let list = state
        .store()
        .directory("autotask", singular, Some(&record.id))
        .await?;
    Ok(Json(json!(list)))
}

/// `GET /api/sync/runs?limit=`: directory sync runs, newest first.
pub(crate) async fn sync_runs(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match params.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("`limit` must be between 1 and 1000, got `{l}`"))
            })?,
    };
    Ok(Json(json!(state.store().sync_runs(limit).await?)))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::{delete, get, put};
    utoipa_axum::router::OpenApiRouter::new()
        .route("/api/orgs", get(list_orgs).post(create_org))
        .route(
            "/api/orgs/{org}",
            get(get_org).patch(patch_org).delete(delete_org),
        )
        .route("/api/orgs/{org}/variables", get(list_variables))
        .route(
            "/api/orgs/{org}/variables/{key}",
            put(put_variable).delete(delete_variable),
        )
        .route("/api/orgs/{org}/directory/{kind}", get(directory))
        .route(
            "/api/integrations",
            get(list_integrations).post(create_integration),
        )
        .route(
            "/api/integrations/{org}/{kind}/{name}",
            delete(delete_integration),
        )
        .route("/api/sync/runs", get(sync_runs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weft_service::integrations::{check_integration, suggest_kind};

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use weft_engine::Registry;
    use weft_engine::executor::{Engine, Workers};

    use super::*;

    async fn app() -> (Router, Arc<dyn Store>) {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store.clone(), Arc::new(Registry::new()));
        let workers = Workers::new(engine.clone(), 1);
        let app = crate::router(AppState::new(engine, workers, "tok", "http://localhost"));
        (app, store)
    }

    async fn send(app: &Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", "Bearer tok")
            .header("content-type", "application/json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn orgs_are_created_read_and_deleted_and_secrets_never_come_back() {
        let (app, store) = app().await;
        let (s, v) = send(&app, "POST", "/api/orgs", json!({"name": "Acme MSP"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["id"], "acme-msp");
        let (s, v) = send(
            &app,
            "POST",
            "/api/orgs",
            json!({"name": "Contoso Dental", "parent": "acme-msp", "tags": ["vip", "VIP", "dental"]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["parent_id"], "acme-msp");
        assert_eq!(v["tags"], json!(["vip", "dental"]));
        let (s, v) = send(&app, "POST", "/api/orgs", json!({"name": "Contoso Dental"})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let (s, v) = send(
            &app,
            "POST",
            "/api/orgs",
            json!({"name": "X", "parent": "nope"}),
        )
        .await;
        // A named org that does not exist is "not found", as `weft org add --parent nope` says.
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, _) = send(&app, "POST", "/api/orgs", json!({"tags": []})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

        // Variables: a plain one on the root, a secret one on the child.
        let (s, v) = send(
            &app,
            "PUT",
            "/api/orgs/acme-msp/variables/queue",
            json!({"value": 5}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = send(
            &app,
            "PUT",
            "/api/orgs/contoso-dental/variables/api_key",
            json!({"value": "hunter2-plaintext", "secret": true}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["value"], "***");
        assert!(!v.to_string().contains("hunter2"));
        let (s, _) = send(
            &app,
            "PUT",
            "/api/orgs/contoso-dental/variables/bad-key",
            json!({"value": 1}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let stored = store.org_vars("contoso-dental").await.unwrap();
        assert!(stored[0].secret && !stored[0].value.contains("hunter2"));

        // An integration with a secret.
        let (s, v) = send(
            &app,
            "POST",
            "/api/integrations",
            json!({"kind": "autotask", "org": "acme-msp", "settings": {"username": "api@x", "integration_code": "CODE"}, "secrets": {"secret": "at-pass-plaintext"}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["secrets"], json!({"secret": "***"}));
        let (s, v) = send(
            &app,
            "POST",
            "/api/integrations",
            json!({"kind": "autotsk", "org": "acme-msp", "settings": {}}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did you mean `autotask`"),
            "{v}"
        );
        let (s, v) = send(
            &app,
            "POST",
            "/api/integrations",
            json!({"kind": "autotask", "org": "acme-msp", "settings": {"username": "u"}}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

        let (s, v) = send(&app, "GET", "/api/orgs/contoso-dental", Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let text = v.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("at-pass"),
            "{text}"
        );
        assert_eq!(v["ancestors"][0]["id"], "acme-msp");
        let vars = v["variables"].as_array().unwrap();
        let queue = vars.iter().find(|x| x["key"] == "queue").unwrap();
        assert_eq!(queue["value"], 5);
        assert_eq!(queue["from_org"], "acme-msp");
        assert_eq!(queue["inherited"], true);
        let key = vars.iter().find(|x| x["key"] == "api_key").unwrap();
        assert_eq!(key["value"], "***");
        assert_eq!(v["integrations"][0]["kind"], "autotask");
        assert_eq!(v["integrations"][0]["inherited"], true);

        let (s, v) = send(&app, "GET", "/api/integrations?org=acme-msp", Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert!(!v.to_string().contains("at-pass"));

        // Cycles are refused; deleting a parent is a conflict; unknown orgs are 404.
        let (s, v) = send(
            &app,
            "PATCH",
            "/api/orgs/acme-msp",
            json!({"parent": "contoso-dental"}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v) = send(
            &app,
            "PATCH",
            "/api/orgs/contoso-dental",
            json!({"tags": ["gold"]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["tags"], json!(["gold"]));
        let (s, v) = send(&app, "DELETE", "/api/orgs/acme-msp", Value::Null).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("child"));
        let (s, _) = send(&app, "GET", "/api/orgs/nope", Value::Null).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = send(
            &app,
            "GET",
            "/api/orgs/contoso-dental/directory/contacts",
            Value::Null,
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, json!([])));
        let (s, _) = send(
            &app,
            "GET",
            "/api/orgs/contoso-dental/directory/tickets",
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, v) = send(&app, "GET", "/api/sync/runs", Value::Null).await;
        assert_eq!((s, v), (StatusCode::OK, json!([])));

        let (s, _) = send(
            &app,
            "DELETE",
            "/api/orgs/contoso-dental/variables/api_key",
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = send(
            &app,
            "DELETE",
            "/api/orgs/contoso-dental/variables/api_key",
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = send(
            &app,
            "DELETE",
            "/api/integrations/acme-msp/autotask/default",
            Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = send(&app, "DELETE", "/api/orgs/contoso-dental", Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = send(&app, "DELETE", "/api/orgs/acme-msp", Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        let (_, v) = send(&app, "GET", "/api/orgs", Value::Null).await;
        assert_eq!(v, json!([]));
    }

    #[test]
    fn kinds_are_checked_with_suggestions() {
        assert_eq!(suggest_kind("slak"), Some("slack"));
        assert_eq!(suggest_kind("Teams"), Some("teams"));
        assert_eq!(suggest_kind("zzzzzzzz"), None);
        let no = BTreeMap::new();
        let mut s = Map::new();
        s.insert("url".into(), json!("not a url"));
        assert!(check_integration("teams", &s, &no).is_err());
        s.insert("url".into(), json!("https://example.com/hook"));
        assert!(check_integration("teams", &s, &no).unwrap().is_empty());
        assert!(check_integration("slack", &Map::new(), &no).is_err());
        use weft_service::orgs::valid_key;
        assert!(valid_key("queue_2") && !valid_key("2x") && !valid_key("a-b"));
    }
}
