//! The OpenAPI document, generated from the routes' `#[utoipa::path]` declarations and their
//! typed request and response bodies, served at [`PATH`] (no token needed).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, ResponseBuilder, SecurityRequirement, ServerBuilder,
};
use utoipa::{Modify, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The document's frame: title, description, security schemes, tags. The paths and schemas
/// are added by the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "weft HTTP API",
        description = "The JSON API of `weft serve` (under `/api`, bearer token: `WEFT_API_TOKEN` or the token printed at first start), webhook triggers (`/hooks`), health checks and Prometheus metrics. Every error is `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "workflows", description = "Deploy, validate, list and run workflows."),
        (name = "executions", description = "Executions: list, inspect, cancel, rerun."),
        (name = "actions", description = "The registered actions and their parameters."),
        (name = "triggers", description = "Triggers: state, switches, events, webhook secrets."),
        (name = "webhooks", description = "Where webhook triggers and Autotask callouts arrive."),
        (name = "orgs", description = "Organizations, their variables and integrations."),
        (name = "mapping", description = "Which Autotask company each organization is."),
        (name = "sync", description = "The directory sync with Autotask."),
        (name = "crates", description = "Prebuilt bundles of workflows."),
        (name = "forms", description = "Form files: deploy, list, describe."),
        (name = "ops", description = "Health, readiness and metrics."),
        (name = "meta", description = "This document."),
    ),
)]
struct Frame;

/// The security schemes, and the API token as the default requirement (open operations say
/// `security(())`).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "bearerAuth",
            bearer("The API token: `Authorization: Bearer <token>`."),
        );
        components.add_security_scheme(
            "metricsToken",
            bearer("`WEFT_METRICS_TOKEN`, when the server sets it."),
        );
        components.add_security_scheme(
            "webhookSecret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-weft-secret",
                "A webhook trigger's secret (per trigger and org: `weft trigger secret`).",
            ))),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearerAuth",
            Vec::<String>::new(),
        )]);
        doc.servers = Some(vec![
            ServerBuilder::new()
                .url("http://127.0.0.1:8080")
                .description(Some("`weft serve` default"))
                .build(),
        ]);
    }
}

/// The frame the routes add to.
pub(crate) fn base() -> OpenApi {
    <Frame as utoipa::OpenApi>::openapi()
}

/// The whole document: the frame and every route of [`crate::routes`], each operation with
/// the error answers every route shares (401 where the token is needed, 500).
pub fn document() -> OpenApi {
    let mut doc = crate::routes().into_openapi();
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (_, item) in doc.paths.paths.iter_mut() {
        for op in operations(item) {
            let open = op.security.as_ref().is_some_and(|s| {
                s.iter()
                    .any(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
            });
            let responses = &mut op.responses.responses;
            if !open && !responses.contains_key("401") {
                let e = error("The API token is missing or wrong");
                responses.insert("401".into(), e.into());
            }
            if !responses.contains_key("500") {
                let e = error("Something failed inside; the detail is in the server log");
                responses.insert("500".into(), e.into());
            }
        }
    }
    doc
}

/// The operations of one path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Answers that are free-form by nature (this document itself).
const FREE_FORM: &[&str] = &[PATH];

/// Is one operation of the generated document (as JSON) fully declared: described, its path
/// parameters named, and every success answer typed (a named schema, not "any object")?
///
/// # Errors
/// What is missing.
pub fn typed(path: &str, op: &serde_json::Value) -> Result<(), String> {
    if op["summary"].as_str().unwrap_or_default().is_empty() {
        return Err("no summary (the handler's doc comment)".into());
    }
    for seg in path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let declared = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == name));
            if !declared {
                return Err(format!("path parameter `{name}` is not declared"));
            }
        }
    }
    let responses = op["responses"].as_object().cloned().unwrap_or_default();
    let success: Vec<_> = responses
        .iter()
        .filter(|(c, _)| c.starts_with('2'))
        .collect();
    if success.is_empty() {
        return Err("no success answer".into());
    }
    for (code, r) in success {
        if code == "204" || FREE_FORM.contains(&path) {
            continue;
        }
        let Some(content) = r["content"].as_object().and_then(|c| c.values().next()) else {
            return Err(format!("answer {code} has no body type"));
        };
        if !named(&content["schema"]) {
            return Err(format!(
                "answer {code} is not typed (give it a struct deriving ToSchema): {}",
                content["schema"]
            ));
        }
    }
    Ok(())
}

/// A schema that says what it holds: a reference, a list of those, a scalar, or an object
/// with properties.
fn named(schema: &serde_json::Value) -> bool {
    if schema.get("$ref").is_some() {
        return true;
    }
    if let Some(items) = schema.get("items") {
        return named(items);
    }
    if let Some(any) = schema
        .get("oneOf")
        .or(schema.get("anyOf"))
        .and_then(|v| v.as_array())
    {
        return any.iter().all(named);
    }
    match schema["type"].as_str() {
        Some("object") => schema.get("properties").is_some(),
        Some(_) => true,
        None => false,
    }
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error of an [`ErrorBody`].
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine code: `bad_request`, `unauthorized`, `not_found`, `conflict`,
    /// `payload_too_large`, `invalid_workflow`, `invalid_form`, `invalid_input`, `rate_limited`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// For people: what, where, and how to fix it. Never a secret.
    pub message: String,
    /// For `invalid_workflow`: the `weft validate --format json` diagnostics.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub diagnostics: Option<Vec<serde_json::Value>>,
}

/// The OpenAPI 3.1 document of this API (this document).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
async fn openapi() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| document().to_pretty_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

/// The document's own route and the operations endpoints.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .merge(crate::ops::routes())
}

#[cfg(test)]
mod tests {
    /// Every route is declared through `routes!` (and so documented): a plain axum `.route(`
    /// would serve a path the document does not know. The console's static files are the one
    /// exception (they are not API).
    #[test]
    fn no_route_bypasses_the_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs")
                    || path
                        .file_name()
                        .is_some_and(|n| n == "console.rs" || n == "tests.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for (i, line) in code.lines().enumerate() {
                    if line.contains(".route(") || line.contains("routing::") {
                        offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "routes declared outside `routes!` (undocumented):\n{}",
            offenders.join("\n")
        );
    }
}
