//! `/api/orgs*`, `/api/integrations*` and `/api/sync/runs`: organizations, their variables
//! and integration instances, their synced directory. Secret values (secret variables,
//! integration secrets) are sealed at rest and never answered: variables show `***`,
//! integrations list only the names of their secret keys.
//!
//! Every rule and every view is `weft_service`'s ([`weft_service::orgs`],
//! [`weft_service::variables`], [`weft_service::integrations`],
//! [`weft_service::directory`]), shared with the `weft org` and `weft integration`
//! commands: the handlers here only translate.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::directory::{self, DirectoryRecord, SyncRun};
use weft_service::integrations::{self, IntegrationView, NewIntegration};
use weft_service::orgs::{self, NewOrg, OrgDetail, OrgPatch, OrgView};
use weft_service::variables::{self, OrgVariable, VariableSet, VariableValue};

use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// What `DELETE /api/orgs/{org}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgDeleted {
    /// The org's id.
    pub deleted: String,
}

/// What `DELETE /api/orgs/{org}/variables/{key}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariableDeleted {
    /// The org's id.
    pub org: String,
    /// The variable's name.
    pub deleted: String,
}

/// What `DELETE /api/integrations/{org}/{kind}/{name}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationDeleted {
    /// The org's id.
    pub org: String,
    /// The integration kind.
    pub kind: String,
    /// The instance name.
    pub name: String,
    /// Always true.
    pub deleted: bool,
}

/// `GET /api/integrations` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntegrationsQuery {
    /// Only this organization's (id or name).
    pub org: Option<String>,
}

/// `GET /api/sync/runs` limit.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// At most this many (1-1000, default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// Every organization, parents first.
#[utoipa::path(
    get,
    path = "/api/orgs",
    tag = "orgs",
    responses((status = 200, description = "The organizations", body = Vec<OrgView>)),
)]
async fn list_orgs(State(state): State<AppState>) -> Result<Json<Vec<OrgView>>, ApiError> {
    Ok(Json(orgs::list(state.store().as_ref()).await?))
}

/// Create an organization.
///
/// The id is a slug of the name unless `id` is given. Without `parent` the org is a root
/// (the MSP).
#[utoipa::path(
    post,
    path = "/api/orgs",
    tag = "orgs",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = OrgView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "The parent does not exist", body = ErrorBody),
        (status = 409, description = "The id or name is taken", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ErrorBody),
    ),
)]
async fn create_org(
    State(state): State<AppState>,
    Body(new): Body<NewOrg>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let store = state.store().as_ref();
    let created = orgs::create(store, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgView::read(store, &created.org).await?),
    ))
}

/// An organization with what it inherits.
///
/// Its parents, its variables (own and inherited, nearest wins; secret values shown as
/// `***`), its integration instances and those of its parents (secret settings listed by
/// name only, as `***`) and its mappings.
#[utoipa::path(
    get,
    path = "/api/orgs/{org}",
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or name (case-insensitive)")),
    responses(
        (status = 200, description = "The organization", body = OrgDetail),
        (status = 404, description = "No such organization", body = ErrorBody),
    ),
)]
async fn get_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<OrgDetail>, ApiError> {
    Ok(Json(
        orgs::detail(
            state.store().as_ref(),
            state.engine().secrets().as_ref(),
            &org,
        )
        .await?,
    ))
}

/// Rename, move, tag or (de)activate an organization.
///
/// Absent fields stay; `parent: null` makes it a root; a parent that is the org or one below
/// it is a conflict.
#[utoipa::path(
    patch,
    path = "/api/orgs/{org}",
    tag = "orgs",
    request_body = OrgPatch,
    params(("org" = String, Path, description = "The organization's id or name (case-insensitive)")),
    responses(
        (status = 200, description = "The organization as updated", body = OrgView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "The organization or the parent does not exist", body = ErrorBody),
        (status = 409, description = "A cycle, or the name is taken", body = ErrorBody),
        (status = 422, description = "A field is wrong or unknown", body = ErrorBody),
    ),
)]
async fn patch_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
    Body(patch): Body<OrgPatch>,
) -> Result<Json<OrgView>, ApiError> {
    let store = state.store().as_ref();
    let updated = orgs::update(store, &org, patch).await?;
    Ok(Json(OrgView::read(store, &updated.org).await?))
}

/// Delete an organization with its variables, integrations and mapping.
///
/// Refused (409) while it has child organizations or pending or running executions.
#[utoipa::path(
    delete,
    path = "/api/orgs/{org}",
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or name (case-insensitive)")),
    responses(
        (status = 200, description = "Deleted", body = OrgDeleted),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "It has children or unfinished executions", body = ErrorBody),
    ),
)]
async fn delete_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<OrgDeleted>, ApiError> {
    let record = orgs::remove(state.store().as_ref(), &org).await?;
    Ok(Json(OrgDeleted { deleted: record.id }))
}

/// An organization's variables, own and inherited.
///
/// Nearest definition wins; secret values are `***`.
#[utoipa::path(
    get,
    path = "/api/orgs/{org}/variables",
    tag = "orgs",
    params(("org" = String, Path, description = "The organization's id or name (case-insensitive)")),
    responses(
        (status = 200, description = "The variables, by key", body = Vec<OrgVariable>),
        (status = 404, description = "No such organization", body = ErrorBody),
    ),
)]
async fn list_variables(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<Vec<OrgVariable>>, ApiError> {
    let (_, vars) = variables::list(state.store().as_ref(), &org).await?;
    Ok(Json(vars))
}

/// Set a variable of an organization.
///
/// A secret value is sealed at rest and never answered.
#[utoipa::path(
    put,
    path = "/api/orgs/{org}/variables/{key}",
    tag = "orgs",
    request_body = VariableValue,
    params(
        ("org" = String, Path, description = "The organization's id or name (case-insensitive)"),
        ("key" = String, Path, description = "The variable's name"),
    ),
    responses(
        (status = 200, description = "Set", body = VariableSet),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 422, description = "A name templates cannot read, or no value", body = ErrorBody),
    ),
)]
async fn put_variable(
    State(state): State<AppState>,
    Path((org, key)): Path<(String, String)>,
    Body(req): Body<VariableValue>,
) -> Result<Json<VariableSet>, ApiError> {
    Ok(Json(
        variables::set_variable(
            state.store().as_ref(),
            state.engine().secrets().as_ref(),
            &org,
            &key,
            &req.value,
            req.secret.unwrap_or(false),
        )
        .await?,
    ))
}

/// Remove an organization's own variable.
#[utoipa::path(
    delete,
    path = "/api/orgs/{org}/variables/{key}",
    tag = "orgs",
    params(
        ("org" = String, Path, description = "The organization's id or name (case-insensitive)"),
        ("key" = String, Path, description = "The variable's name"),
    ),
    responses(
        (status = 200, description = "Removed", body = VariableDeleted),
        (status = 404, description = "No such organization, or no such variable of its own", body = ErrorBody),
    ),
)]
async fn delete_variable(
    State(state): State<AppState>,
    Path((org, key)): Path<(String, String)>,
) -> Result<Json<VariableDeleted>, ApiError> {
    let record = variables::unset_variable(state.store().as_ref(), &org, &key).await?;
    Ok(Json(VariableDeleted {
        org: record.id,
        deleted: key,
    }))
}

/// The records the Autotask sync keeps for an organization.
#[utoipa::path(
    get,
    path = "/api/orgs/{org}/directory/{kind}",
    tag = "orgs",
    params(
        ("org" = String, Path, description = "The organization's id or name (case-insensitive)"),
        ("kind" = String, Path, description = "`contacts`, `configurations`, `locations`, `users` or `companies` (singular works too)"),
    ),
    responses(
        (status = 200, description = "The records", body = Vec<DirectoryRecord>),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 422, description = "Not a directory kind", body = ErrorBody),
    ),
)]
async fn directory_records(
    State(state): State<AppState>,
    Path((org, kind)): Path<(String, String)>,
) -> Result<Json<Vec<DirectoryRecord>>, ApiError> {
    Ok(Json(
        directory::list(state.store().as_ref(), &org, &kind).await?,
    ))
}

/// Integration instances.
///
/// Of one organization (`org`), or of all; secret settings by name only.
#[utoipa::path(
    get,
    path = "/api/integrations",
    tag = "orgs",
    params(IntegrationsQuery),
    responses(
        (status = 200, description = "The instances (secret settings by name only)", body = Vec<IntegrationView>),
        (status = 404, description = "No such organization", body = ErrorBody),
    ),
)]
async fn list_integrations(
    State(state): State<AppState>,
    Query(q): Query<IntegrationsQuery>,
) -> Result<Json<Vec<IntegrationView>>, ApiError> {
    Ok(Json(
        integrations::list(
            state.store().as_ref(),
            state.engine().secrets().as_ref(),
            q.org.as_deref(),
        )
        .await?,
    ))
}

/// Add (or replace) an integration instance of an organization.
///
/// Kinds: autotask (needs `username`, `integration_code` and the secret `secret`; optional
/// `zone_url`, `discovery_url`), openai, teams and slack (need `url`), email (needs `host`
/// and `from`), http. Secrets are sealed at rest and never answered.
#[utoipa::path(
    post,
    path = "/api/integrations",
    tag = "orgs",
    request_body = NewIntegration,
    responses(
        (status = 201, description = "Stored", body = IntegrationView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 422, description = "An unknown kind, a blank name, missing or misplaced settings", body = ErrorBody),
    ),
)]
async fn create_integration(
    State(state): State<AppState>,
    Body(new): Body<NewIntegration>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    let secrets = state.engine().secrets().as_ref();
    let added = integrations::add(state.store().as_ref(), secrets, new).await?;
    Ok((StatusCode::CREATED, Json(added.view(secrets))))
}

/// Remove an integration instance.
#[utoipa::path(
    delete,
    path = "/api/integrations/{org}/{kind}/{name}",
    tag = "orgs",
    params(
        ("org" = String, Path, description = "The organization's id or name (case-insensitive)"),
        ("kind" = String, Path, description = "The integration kind"),
        ("name" = String, Path, description = "The instance name (`default` unless named)"),
    ),
    responses(
        (status = 200, description = "Removed", body = IntegrationDeleted),
        (status = 404, description = "No such organization or instance", body = ErrorBody),
    ),
)]
async fn delete_integration(
    State(state): State<AppState>,
    Path((org, kind, name)): Path<(String, String, String)>,
) -> Result<Json<IntegrationDeleted>, ApiError> {
    let record = integrations::remove(state.store().as_ref(), &org, &kind, &name).await?;
    Ok(Json(IntegrationDeleted {
        org: record.id,
        kind,
        name,
        deleted: true,
    }))
}

/// Directory sync runs, newest first.
#[utoipa::path(
    get,
    path = "/api/sync/runs",
    tag = "orgs",
    params(RunsQuery),
    responses(
        (status = 200, description = "The runs", body = Vec<SyncRun>),
        (status = 400, description = "`limit` is not between 1 and 1000", body = ErrorBody),
    ),
)]
async fn sync_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<SyncRun>>, ApiError> {
    // A query string that does not fit is a malformed request (400), as before.
    let limit = directory::runs_limit(q.limit.as_deref())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        directory::sync_runs(state.store().as_ref(), limit).await?,
    ))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(get_org, patch_org, delete_org))
        .routes(routes!(list_variables))
        .routes(routes!(put_variable, delete_variable))
        .routes(routes!(directory_records))
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(delete_integration))
        .routes(routes!(sync_runs))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde_json::{Map, Value, json};
    use weft_engine::store::Store;
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

        // Cycles are a conflict (as `weft org set-parent` says); deleting a parent is a
        // conflict; unknown fields are refused; unknown orgs are 404.
        let (s, v) = send(
            &app,
            "PATCH",
            "/api/orgs/acme-msp",
            json!({"parent": "contoso-dental"}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let (s, v) = send(&app, "PATCH", "/api/orgs/acme-msp", json!({"id": "x"})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v) = send(
            &app,
            "PATCH",
            "/api/orgs/contoso-dental",
            json!({"parent": null, "active": false}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["parent_id"].clone(), v["active"].clone()),
            (Value::Null, json!(false))
        );
        assert!(v["autotask_company"].is_null(), "{v}");
        let (s, v) = send(
            &app,
            "PATCH",
            "/api/orgs/contoso-dental",
            json!({"parent": "acme-msp", "active": true}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
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
