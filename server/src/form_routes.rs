//! The hosted form pages at `/forms/{token}`: no weft account or API token, only the link.
//! What a link opens and what a submission starts are `weft_service::forms`'; these handlers
//! read the request, render [`crate::form_page`] and answer.

use axum::body::Body as RawBody;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_engine::form::{FieldError, FieldKind};
use weft_service::ErrorKind;
use weft_service::forms::{self, OpenLink, Submitted, Waited};

use crate::AppState;
use crate::form_page::{PageState, form_page, message_page};

/// The largest submission accepted (a form of text fields fits many times over).
pub const MAX_SUBMISSION: usize = 64 * 1024;
/// Submissions accepted per second per link (a burst of as many): a person correcting a
/// form never meets it, a script posting through a leaked link does.
const RATE: u32 = 10;
/// How long a served page may be submitted.
const PAGE_LIFETIME_SECS: i64 = 24 * 60 * 60;

const FORM_CSS: &str = include_str!("../forms/form.css");
const FORM_JS: &str = include_str!("../forms/form.js");

/// An HTML answer with the page's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::console::FORM_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The page for a link that cannot be used.
fn refusal(e: &weft_service::ServiceError) -> Response {
    match e.kind() {
        ErrorKind::NotFound => html(
            StatusCode::NOT_FOUND,
            message_page("Form not found", &e.to_string()),
        ),
        ErrorKind::Conflict => html(
            StatusCode::GONE,
            message_page("This link can no longer be used", &e.to_string()),
        ),
        ErrorKind::Usage => html(
            StatusCode::BAD_REQUEST,
            message_page("This link is not valid", &e.to_string()),
        ),
        _ => {
            tracing::error!(error = %e, "a form page failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                message_page(
                    "Something went wrong",
                    "The form could not be opened; please try again in a minute.",
                ),
            )
        }
    }
}

/// The anti-forgery token of a page served for a link: the link and the time, sealed with
/// the installation's key (any server sharing the key accepts it; nobody can make one).
fn csrf(state: &AppState, open: &OpenLink) -> String {
    let now = state.engine().now().as_second();
    state
        .engine()
        .secrets()
        .seal(&format!("{}|{now}", open.token_hash))
}

fn csrf_ok(state: &AppState, open: &OpenLink, given: Option<&str>) -> bool {
    let Some(plain) = given.and_then(|g| state.engine().secrets().open(g).ok()) else {
        return false;
    };
    let Some((hash, at)) = plain.split_once('|') else {
        return false;
    };
    let age = state.engine().now().as_second() - at.parse::<i64>().unwrap_or(i64::MIN / 2);
    hash == open.token_hash && (0..PAGE_LIFETIME_SECS).contains(&age)
}

/// The form's page with `values`, `errors` and `status` (dynamic options loaded for the
/// values).
async fn page(
    state: &AppState,
    token: &str,
    open: &OpenLink,
    values: &Map<String, Value>,
    errors: &[FieldError],
    status: StatusCode,
) -> Response {
    let action = format!("/forms/{token}");
    let csrf = csrf(state, open);
    let fixed = open.fixed();
    let values = open.with_fixed(values);
    let options = forms::dynamic_options(state.engine(), state.form_options(), open, &values).await;
    html(
        status,
        form_page(
            &open.form,
            &PageState {
                action: &action,
                csrf: &csrf,
                values: &values,
                errors,
                options: &options,
                fixed: &fixed,
                preview: open.is_preview(),
            },
        ),
    )
}

/// A hosted form: the page an org's people fill in.
///
/// Unknown, disabled or malformed links answer a 404 page; expired and used single-use links a
/// 410 page; a signed link that was changed (a tampered prefill) a 400 page.
#[utoipa::path(
    get,
    path = "/forms/{token}",
    tag = "forms",
    security(()),
    params(("token" = String, Path, description = "The link's token (`wfl_…` standing, `wfs_…` signed)")),
    responses(
        (status = 200, description = "The form", body = String, content_type = "text/html"),
        (status = 404, description = "No such link, or turned off", body = String, content_type = "text/html"),
        (status = 400, description = "A signed link was changed or not made by this installation", body = String, content_type = "text/html"),
        (status = 410, description = "The link expired, or a single-use link was used", body = String, content_type = "text/html"),
    ),
)]
async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match forms::open_link(state.engine(), &token).await {
        Ok(open) => page(&state, &token, &open, &Map::new(), &[], StatusCode::OK).await,
        Err(e) => refusal(&e),
    }
}

/// The submitted fields: repeated names (multiselect) become lists.
fn fields(open: &OpenLink, body: &[u8]) -> (Map<String, Value>, Option<String>) {
    let mut values = Map::new();
    let mut csrf = None;
    for (k, v) in form_urlencoded(body) {
        if k == "_csrf" {
            csrf = Some(v);
            continue;
        }
        let multi = open
            .form
            .field(&k)
            .is_some_and(|f| f.kind == FieldKind::Multiselect);
        if multi {
            let entry = values.entry(k).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(Value::String(v));
            }
        } else {
            values.insert(k, Value::String(v));
        }
    }
    (values, csrf)
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

/// Submit a hosted form.
///
/// Checked by the form's rules (the page again with messages next to the fields, 422), then
/// every switched-on workflow whose `type: form` trigger names the form and runs for the
/// link's org starts; the answer is the form's thank-you page.
#[utoipa::path(
    post,
    path = "/forms/{token}",
    tag = "forms",
    security(()),
    params(("token" = String, Path, description = "The link's token (`wfl_…` standing, `wfs_…` signed)")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "The fields, and `_csrf` from the page"),
    responses(
        (status = 200, description = "Thank you", body = String, content_type = "text/html"),
        (status = 400, description = "The page is too old or was not served by weft (the form again), or a signed link was changed", body = String, content_type = "text/html"),
        (status = 404, description = "No such link, or turned off", body = String, content_type = "text/html"),
        (status = 410, description = "The link expired, or a single-use link was used", body = String, content_type = "text/html"),
        (status = 413, description = "The submission is too large", body = String, content_type = "text/html"),
        (status = 422, description = "A field is wrong: the form again, with messages", body = String, content_type = "text/html"),
        (status = 429, description = "Too many submissions through this link", body = String, content_type = "text/html"),
    ),
)]
async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let open = match forms::open_link(state.engine(), &token).await {
        Ok(o) => o,
        Err(e) => {
            let outcome = match e.kind() {
                ErrorKind::Conflict => "expired",
                ErrorKind::Usage => "tampered",
                _ => "not_found",
            };
            state.metrics().form("", outcome);
            return refusal(&e);
        }
    };
    let count = |outcome: &'static str| state.metrics().form(&open.form.name, outcome);
    let rate_key = format!("form:{}", open.form.name);
    if !state.guards().take_rate(&rate_key, "", &open.org.id, RATE) {
        count("rate_limited");
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            message_page(
                "Please wait",
                "Too many submissions through this link: try again in a few seconds.",
            ),
        );
    }
    let body: RawBody = req.into_body();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SUBMISSION).await else {
        count("too_large");
        return html(
            StatusCode::PAYLOAD_TOO_LARGE,
            message_page(
                "Too large",
                "The answers are larger than this form accepts.",
            ),
        );
    };
    let (values, given) = fields(&open, &bytes);
    if !csrf_ok(&state, &open, given.as_deref()) {
        count("forged");
        let stale = FieldError {
            field: String::new(),
            message: "This page is too old or was not served by weft: check your answers and send them again.".into(),
        };
        return page(
            &state,
            &token,
            &open,
            &values,
            &[stale],
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    match forms::submit(state.engine(), state.form_options(), &token, &values).await {
        Ok(Submitted::Refused(errors)) => {
            count("invalid");
            page(
                &state,
                &token,
                &open,
                &values,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Ok(Submitted::Accepted {
            executions,
            values,
            waited,
            ..
        }) => {
            count("accepted");
            tracing::info!(form = %open.form.name, org = %open.org.id, execution_ids = ?executions, "form submitted");
            let message = thank_you(&open, &values, waited.as_ref());
            html(StatusCode::OK, message_page(&open.form.title, &message))
        }
        Ok(Submitted::Previewed { .. }) => {
            count("previewed");
            html(
                StatusCode::OK,
                message_page(
                    &open.form.title,
                    "Preview — these answers pass every check. Nothing was sent and nothing started.",
                ),
            )
        }
        Err(e) => refusal(&e),
    }
}

/// The confirmation: the form's `thank_you` (a template over `form.values` and, when the
/// trigger waited, the workflow's `output`), else the output's `message`, else a plain
/// thank-you. Secret fields are not shown back.
fn thank_you(open: &OpenLink, values: &Map<String, Value>, waited: Option<&Waited>) -> String {
    const PLAIN: &str = "Thank you — your answers were sent.";
    match waited {
        Some(Waited::Failed) => {
            return "Thank you — your answers were received, but handling them failed; we have been told and will follow up.".into();
        }
        Some(Waited::StillRunning) => {
            return "Thank you — your answers were received and are being handled.".into();
        }
        _ => {}
    }
    let output = match waited {
        Some(Waited::Output(v)) => v.clone(),
        _ => Value::Null,
    };
    let Some(t) = &open.form.thank_you else {
        return match output.get("message") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            _ => PLAIN.into(),
        };
    };
    let shown = open.form.public_values(values);
    let ctx =
        serde_json::json!({"form": {"name": open.form.name, "values": shown}, "output": output});
    let ctx = weft_engine::executor::scope::to_value(&ctx);
    match t.render_json(&ctx) {
        Ok(Value::String(s)) if !s.trim().is_empty() => s,
        _ => PLAIN.into(),
    }
}

/// Which fields a form shows for the values entered so far (what `form.js` asks as the
/// person types).
#[utoipa::path(
    post,
    path = "/forms/{token}/state",
    tag = "forms",
    security(()),
    params(("token" = String, Path, description = "The link's token (`wfl_…` standing, `wfs_…` signed)")),
    request_body(content = Object, description = "The values entered so far"),
    responses(
        (status = 200, description = "The fields shown and the dynamic options for these values", body = FormState),
        (status = 404, description = "No such link", body = String, content_type = "text/html"),
    ),
)]
async fn state_of(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let open = match forms::open_link(state.engine(), &token).await {
        Ok(o) => o,
        Err(e) => return refusal(&e),
    };
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_SUBMISSION).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    // Each new combination of values may run an options generator: the same per-link budget
    // as submissions.
    if !state.guards().take_rate(
        &format!("form-state:{}", open.form.name),
        "",
        &open.org.id,
        RATE,
    ) {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let values = open.with_fixed(&serde_json::from_slice(&body).unwrap_or_default());
    let shown = open
        .form
        .fields()
        .filter(|f| open.form.shown(f, &values))
        .map(|f| f.name.clone())
        .collect();
    let options = forms::dynamic_options(state.engine(), state.form_options(), &open, &values)
        .await
        .into_iter()
        .map(|(field, loaded)| {
            let answer = match loaded {
                Ok(options) => FieldOptions {
                    options: Some(
                        options
                            .into_iter()
                            .map(|c| OptionView {
                                label: c.label,
                                value: c.value,
                            })
                            .collect(),
                    ),
                    error: None,
                },
                Err(e) => FieldOptions {
                    options: None,
                    error: Some(e),
                },
            };
            (field, answer)
        })
        .collect();
    axum::Json(FormState { shown, options }).into_response()
}

/// What `POST /forms/{token}/state` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FormState {
    /// The fields shown for these values.
    pub shown: Vec<String>,
    /// The options of each dynamic choice field for these values, or why there are none.
    pub options: std::collections::BTreeMap<String, FieldOptions>,
}

/// One dynamic field's options, or the message shown instead.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FieldOptions {
    /// The options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionView>>,
    /// Why they could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One option.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OptionView {
    /// What the person sees.
    pub label: String,
    /// What the workflow gets.
    pub value: String,
}

/// The page's stylesheet and script.
#[utoipa::path(
    get,
    path = "/forms/assets/{file}",
    tag = "forms",
    security(()),
    params(("file" = String, Path, description = "`form.css` or `form.js`")),
    responses(
        (status = 200, description = "The file", body = String, content_type = "text/css"),
        (status = 404, description = "No such file", body = String),
    ),
)]
async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "form.css" => (FORM_CSS, "text/css; charset=utf-8"),
        "form.js" => (FORM_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The hosted form routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, submit))
        .routes(routes!(state_of))
        .routes(routes!(asset))
}
