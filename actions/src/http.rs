//! `http.request`: call any HTTP API.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weft_engine::{ActionContext, ActionError, ActionErrorKind, Registry, TypedAction};

use crate::params::{DurationParam, Text, format_duration, scalar_text};
use crate::redirect::{self, FollowRedirects, Outgoing, SendError};
use crate::{cancelled, invalid_params};

/// The most of a response body kept in the result (1 MiB); the rest is dropped and the
/// result says `"truncated": true`.
pub const MAX_BODY: usize = 1024 * 1024;

/// The time limit when `timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn register(r: &mut Registry) {
    r.register(HttpRequest::new());
}

/// HTTP methods.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
#[allow(
    missing_docs,
    reason = "the variants are the wire names; docs on them would turn the JSON Schema `enum` into a `oneOf`"
)]
pub enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// Authentication for `http.request`: `username` and `password` (basic), or `bearer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Auth {
    /// Basic auth user name (with `password`).
    pub username: Option<String>,
    /// Basic auth password (redacted in stored data).
    #[schemars(extend("x-weft-secret" = true))]
    pub password: Option<String>,
    /// Bearer token, sent as `Authorization: Bearer <token>` (redacted in stored data).
    #[schemars(extend("x-weft-secret" = true))]
    pub bearer: Option<String>,
}

/// Parameters of `http.request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestParams {
    /// HTTP method.
    #[serde(default)]
    pub method: Method,
    /// Absolute URL (http or https). Credentials in it (`https://user:pass@host`) are sent as
    /// basic auth and never shown in messages; prefer `auth`.
    pub url: String,
    /// Request headers; values may be strings, numbers or booleans. The engine redacts the
    /// values of `Authorization`, `X-Api-Key` and other secret-looking headers in stored data;
    /// prefer `auth` for credentials.
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// Query-string parameters, appended to the URL (after any query it already has).
    /// Numbers and booleans are sent as their text, a list repeats the parameter
    /// (`ids: [1, 2]` → `ids=1&ids=2`), and a null value is left out.
    #[serde(default)]
    pub query: Map<String, Value>,
    /// A JSON body (sets `content-type: application/json` unless `headers` sets one).
    /// Give `json` or `body`, not both.
    pub json: Option<Value>,
    /// A raw text body, sent as is; set its `content-type` in `headers`.
    pub body: Option<String>,
    /// Basic (`username` + `password`) or bearer (`bearer`) authentication. The password
    /// and the token are redacted in stored data and never appear in messages.
    pub auth: Option<Auth>,
    /// Time limit for the whole request, including reading the response (`30s`, `500ms`,
    /// or a number of seconds). A request that takes longer fails with kind `timeout`.
    #[schemars(extend("default" = "30s"))]
    pub timeout: Option<DurationParam>,
    /// Succeed on any status (by default a non-2xx response fails the task, with the
    /// response as the error's data).
    #[serde(default)]
    pub allow_error_status: bool,
    /// Which redirects to follow (at most 10): `same_origin` (the default) follows them to
    /// the same scheme, host and port only, with every header; `any` also follows them to
    /// other origins, but sends those only standard headers (`Accept`, `Content-Type`,
    /// `User-Agent`…; no `Authorization`, cookie, API key or other custom header) and no
    /// query string; `none` follows none (the 3xx answer is the response). A redirect from
    /// https to http is never followed.
    #[serde(default)]
    pub follow_redirects: FollowRedirects,
}

/// `http.request`: sends one HTTP request with a shared connection pool.
///
/// The result is `{"status", "headers", "json"}` when the response is JSON (by its
/// content type, or because the body is a JSON object or list), else `{"status",
/// "headers", "text"}`; header names are lowercase; a body over [`MAX_BODY`] is cut and
/// the result has `"truncated": true`.
#[derive(Debug, Default)]
pub struct HttpRequest {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl HttpRequest {
    /// The action; its HTTP client is built on first use and shared by every call.
    pub fn new() -> Self {
        HttpRequest::default()
    }

    fn client(&self) -> Result<&reqwest::Client, ActionError> {
        redirect::shared_client(&self.client)
    }
}

impl TypedAction for HttpRequest {
    const NAME: &'static str = "http.request";
    const DESCRIPTION: &'static str =
        "Sends an HTTP request; the result has status, headers and json (or text).";
    type Params = RequestParams;

    async fn run(&self, cx: ActionContext, params: RequestParams) -> Result<Value, ActionError> {
        let req = Prepared::new(params)?;
        let client = self.client()?;
        let timeout = req.timeout;
        let label = req.label.clone();
        let secrets = req.secrets.clone();
        tracing::debug!(target: "weft::http", request = %label, "http.request");

        let work = async {
            let resp = redirect::send(client, req.outgoing(), req.follow)
                .await
                .map_err(|e| match e {
                    SendError::Transport(e) => transport_error(&label, e),
                    SendError::Refused(r) => ActionError::failed(r.message(
                        HttpRequest::NAME,
                        Some("set follow_redirects: any to follow it"),
                    ))
                    .with_data(json!({"status": r.status, "location": r.target})),
                })?;
            let status = resp.status();
            let headers = headers_json(resp.headers());
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            let (bytes, truncated) = read_capped(resp, MAX_BODY)
                .await
                .map_err(|e| transport_error(&label, e))?;
            let mut out = Map::new();
            out.insert("status".into(), json!(status.as_u16()));
            out.insert("headers".into(), Value::Object(headers));
            let (key, body) = body_value(content_type.as_deref(), bytes, truncated);
            out.insert(key.into(), body);
            if truncated {
                out.insert("truncated".into(), Value::Bool(true));
            }
            let out = Value::Object(out);
            if status.is_success() || req.allow_error_status {
                return Ok(out);
            }
            let reason = status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            Err(
                ActionError::failed(format!("{label} → {}{reason}", status.as_u16()))
                    .with_data(out),
            )
        };

        let result = tokio::select! {
            biased;
            () = cx.cancel.cancelled() => Err(cancelled(format!("{label} cancelled"))),
            () = tokio::time::sleep(timeout) => Err(ActionError {
                kind: ActionErrorKind::Timeout,
                message: format!("{label} timed out after {}", format_duration(timeout)),
                data: None,
            }),
            r = work => r,
        };
        result.map_err(|mut e| {
            e.message = scrub(&e.message, &secrets);
            e
        })
    }
}

/// A checked request, ready to send.
struct Prepared {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Body>,
    auth: Option<AuthKind>,
    timeout: Duration,
    allow_error_status: bool,
    follow: FollowRedirects,
    /// `METHOD url` for messages: no credentials, no query string.
    label: String,
    /// Values that must never appear in a message.
    secrets: Vec<String>,
}

enum Body {
    Json(Value),
    Raw(String),
}

enum AuthKind {
    Basic(String, Option<String>),
    Bearer(String),
}

impl Prepared {
    fn new(p: RequestParams) -> Result<Self, ActionError> {
        let invalid = |m: String| invalid_params(HttpRequest::NAME, m);
        let mut secrets = Vec::new();
        let (mut url, url_auth) = Self::url(&p.url, &mut secrets)?;
        Self::add_query(&mut url, &p.query)?;
        let headers = Self::headers(&p.headers, &mut secrets)?;
        let body = match (p.json, p.body) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either `json` (a JSON body) or `body` (raw text), not both".into(),
                ));
            }
            (Some(j), None) => Some(Body::Json(j)),
            (None, Some(b)) => Some(Body::Raw(b)),
            (None, None) => None,
        };
        let auth = Self::auth(p.auth, &mut secrets)?;
        let auth = match (auth, url_auth) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "credentials are given both in `url` and in `auth`; keep one".into(),
                ));
            }
            (a, b) => a.or(b),
        };
        if auth.is_some() && headers.contains_key(reqwest::header::AUTHORIZATION) {
            return Err(invalid(
                "both `auth` and an `Authorization` header are given; keep one".into(),
            ));
        }

        let label = format!("{} {}", p.method.to_reqwest(), display_url(&url));
        Ok(Prepared {
            method: p.method,
            url,
            headers,
            body,
            auth,
            timeout: p.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
            allow_error_status: p.allow_error_status,
            follow: p.follow_redirects,
            label,
            secrets,
        })
    }

    /// Parses and checks `url`. Credentials in it become basic auth (and leave the URL, so
    /// that nothing prints them and reqwest does not add a second `Authorization` header).
    fn url(raw: &str, secrets: &mut Vec<String>) -> Result<(Url, Option<AuthKind>), ActionError> {
        let invalid = |m: String| invalid_params(HttpRequest::NAME, m);
        let mut url = Url::parse(raw.trim()).map_err(|e| {
            invalid(format!(
                "`url` is not an absolute URL ({e}): `{}`",
                strip_userinfo_text(raw)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "`url` must start with http:// or https://, not {}: `{}`",
                url.scheme(),
                display_url(&url)
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!(
                "`url` has no host: `{}`",
                display_url(&url)
            )));
        }
        let mut url_auth = None;
        if !url.username().is_empty() || url.password().is_some() {
            let user = percent_decode(url.username());
            let password = url.password().map(percent_decode);
            if let Some(raw) = url.password().filter(|p| !p.is_empty()) {
                secrets.push(raw.to_string());
            }
            if let Some(pw) = password.as_ref().filter(|p| !p.is_empty()) {
                secrets.push(pw.clone());
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url_auth = Some(AuthKind::Basic(user, password));
        }
        Ok((url, url_auth))
    }

    /// Appends `query` to the URL: `null` is left out, a list repeats the parameter.
    fn add_query(url: &mut Url, query: &Map<String, Value>) -> Result<(), ActionError> {
        let invalid = |m: String| invalid_params(HttpRequest::NAME, m);
        if !query.is_empty() {
            let mut pairs = Vec::new();
            for (name, value) in query {
                match value {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            let text = scalar_text(item).ok_or_else(|| {
                                invalid(format!(
                                    "query parameter `{name}`: a list may hold only strings, numbers and booleans"
                                ))
                            })?;
                            pairs.push((name.as_str(), text));
                        }
                    }
                    other => {
                        let text = scalar_text(other).ok_or_else(|| {
                            invalid(format!(
                                "query parameter `{name}` is an object; give a string, number, boolean or list (or `| to_json` it)"
                            ))
                        })?;
                        pairs.push((name.as_str(), text));
                    }
                }
            }
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
        }
        Ok(())
    }

    /// The request headers; sensitive ones are marked so and their values (and the
    /// credential after `Bearer `/`Basic `) join `secrets`.
    fn headers(
        given: &BTreeMap<String, Text>,
        secrets: &mut Vec<String>,
    ) -> Result<HeaderMap, ActionError> {
        let invalid = |m: String| invalid_params(HttpRequest::NAME, m);
        let mut headers = HeaderMap::new();
        for (name, Text(value)) in given {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| invalid(format!("`{name}` is not a valid header name")))?;
            let sensitive = is_sensitive_header(header.as_str());
            let mut hv = HeaderValue::from_str(value).map_err(|_| {
                invalid(format!(
                    "the value of header `{name}` has characters HTTP headers cannot carry (line breaks or control characters)"
                ))
            })?;
            if sensitive {
                hv.set_sensitive(true);
                if !value.is_empty() {
                    secrets.push(value.clone());
                    // `Bearer xyz`, `Basic xyz`: the credential alone must not leak either.
                    if let Some((_, cred)) = value.split_once(' ')
                        && !cred.trim().is_empty()
                    {
                        secrets.push(cred.trim().to_string());
                    }
                }
            }
            headers.append(header, hv);
        }
        Ok(headers)
    }

    /// `auth`: basic (`username`, `password`) or `bearer`; its secrets join `secrets`.
    fn auth(
        auth: Option<Auth>,
        secrets: &mut Vec<String>,
    ) -> Result<Option<AuthKind>, ActionError> {
        let invalid = |m: String| invalid_params(HttpRequest::NAME, m);
        Ok(match auth {
            None => None,
            Some(Auth {
                username,
                password,
                bearer,
            }) => {
                if let Some(pw) = password.as_ref().filter(|p| !p.is_empty()) {
                    secrets.push(pw.clone());
                }
                if let Some(t) = bearer.as_ref().filter(|t| !t.is_empty()) {
                    secrets.push(t.clone());
                }
                match (username, password, bearer) {
                    (None, None, None) => None,
                    (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                        return Err(invalid(
                            "`auth` takes either `username` and `password` (basic) or `bearer`, not both"
                                .into(),
                        ));
                    }
                    (None, Some(_), None) => {
                        return Err(invalid("`auth.password` needs `auth.username`".into()));
                    }
                    (None, None, Some(token)) => {
                        if token.trim().is_empty() {
                            return Err(invalid("`auth.bearer` is empty".into()));
                        }
                        if HeaderValue::from_str(&token).is_err() {
                            return Err(invalid(
                                "`auth.bearer` has characters HTTP headers cannot carry (line breaks or control characters)"
                                    .into(),
                            ));
                        }
                        Some(AuthKind::Bearer(token))
                    }
                    (Some(user), password, None) => Some(AuthKind::Basic(user, password)),
                }
            }
        })
    }

    /// The request to send: the headers with `Authorization` from `auth`, and the body
    /// (a JSON body gets `content-type: application/json` unless `headers` sets one).
    fn outgoing(&self) -> Outgoing {
        let mut headers = self.headers.clone();
        let authorization = match &self.auth {
            Some(AuthKind::Basic(user, pw)) => Some(format!(
                "Basic {}",
                base64(format!("{user}:{}", pw.as_deref().unwrap_or_default()).as_bytes())
            )),
            Some(AuthKind::Bearer(token)) => Some(format!("Bearer {token}")),
            None => None,
        };
        if let Some(mut v) = authorization.and_then(|a| HeaderValue::from_str(&a).ok()) {
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let body = match &self.body {
            Some(Body::Json(v)) => {
                if !headers.contains_key(reqwest::header::CONTENT_TYPE) {
                    headers.insert(
                        reqwest::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                Some(serde_json::to_vec(v).expect("JSON values serialize"))
            }
            Some(Body::Raw(s)) => Some(s.clone().into_bytes()),
            None => None,
        };
        Outgoing {
            method: self.method.to_reqwest(),
            url: self.url.clone(),
            headers,
            body,
            timeout: None,
        }
    }
}

/// Standard base64 with padding (basic auth).
fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Decodes `%XX` escapes (URL user names and passwords); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Header names whose values are credentials.
fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key" | "api-key" | "apikey"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "apikey",
        "auth",
        "signature",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The URL for messages: scheme, host, port and path; never credentials or the query
/// string (which may carry API keys).
fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Best effort for a URL that does not parse: hides `user:pass@`.
fn strip_userinfo_text(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => (&raw[..i + 3], &raw[i + 3..]),
        None => ("", raw),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

/// Replaces every secret value in `message` by `***`.
fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// A transport failure (connection refused, DNS, TLS, reset…) as a clear message: the
/// request's label and the chain of causes, without reqwest's copy of the full URL.
fn transport_error(label: &str, e: reqwest::Error) -> ActionError {
    let e = e.without_url();
    let mut message = format!("{label} failed");
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    for part in parts {
        if !part.is_empty() && !message.contains(&part) {
            message.push_str(": ");
            message.push_str(&part);
        }
    }
    ActionError::failed(message)
}

/// Response headers as `{lowercase name: value}`; repeated headers are joined with `, `.
fn headers_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_ascii_lowercase(), Value::String(value));
            }
        }
    }
    out
}

/// Reads at most `cap` bytes of the body; `true` when there was more.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

/// `("json", value)` for a JSON body, else `("text", text)`.
fn body_value(
    content_type: Option<&str>,
    bytes: Vec<u8>,
    truncated: bool,
) -> (&'static str, Value) {
    if !truncated {
        let json_type = content_type.is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence == "application/json"
                || essence.ends_with("+json")
                || essence.ends_with("/json")
        });
        let looks_json = matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        if (json_type || looks_json)
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            return ("json", v);
        }
    }
    ("text", Value::String(into_text(bytes, truncated)))
}

/// The body as text: invalid UTF-8 becomes U+FFFD, except a character cut in half by the
/// size cap, which is dropped.
fn into_text(mut bytes: Vec<u8>, truncated: bool) -> String {
    if truncated
        && let Err(e) = std::str::from_utf8(&bytes)
        && e.error_len().is_none()
    {
        bytes.truncate(e.valid_up_to());
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> RequestParams {
        serde_json::from_value(v).expect("params")
    }

    fn prepare(v: Value) -> Result<Prepared, ActionError> {
        Prepared::new(params(v))
    }

    #[test]
    fn display_url_hides_credentials_and_query() {
        let u = Url::parse("https://bob:hunter2@api.example.com:8443/v1/x?api_key=k#frag").unwrap();
        assert_eq!(display_url(&u), "https://api.example.com:8443/v1/x");
        assert_eq!(
            strip_userinfo_text("ht tp://bob:pw@host/x"),
            "ht tp://***@host/x"
        );
        assert_eq!(strip_userinfo_text("nonsense"), "nonsense");
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64(b"alice:s3cret-pw"), "YWxpY2U6czNjcmV0LXB3");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64("é:ü".as_bytes()), "w6k6w7w=");
        let p = prepare(
            json!({"url": "https://h/x", "auth": {"username": "alice", "password": "s3cret-pw"}}),
        )
        .unwrap();
        let out = p.outgoing();
        assert_eq!(out.headers["authorization"], "Basic YWxpY2U6czNjcmV0LXB3");
        assert!(out.headers["authorization"].is_sensitive());
        let p = prepare(json!({"url": "https://bob@h/x", "json": {"a": 1}})).unwrap();
        let out = p.outgoing();
        assert_eq!(
            out.headers["authorization"],
            format!("Basic {}", base64(b"bob:"))
        );
        assert_eq!(out.headers["content-type"], "application/json");
        assert_eq!(out.body.as_deref(), Some(&b"{\"a\":1}"[..]));
        let p = prepare(json!({"url": "https://h/x", "json": [], "headers": {"Content-Type": "application/x+json"}}))
            .unwrap();
        assert_eq!(p.outgoing().headers["content-type"], "application/x+json");
    }

    #[test]
    fn url_credentials_become_basic_auth() {
        let p = prepare(json!({"url": "https://bob:p%40ss@h/x"})).unwrap();
        assert_eq!(p.url.as_str(), "https://h/x");
        assert!(
            matches!(&p.auth, Some(AuthKind::Basic(u, Some(pw))) if u == "bob" && pw == "p@ss")
        );
        assert!(p.secrets.contains(&"p@ss".to_string()));
        assert!(p.secrets.contains(&"p%40ss".to_string()));
        let err = prepare(json!({"url": "https://bob:pw@h/x", "auth": {"bearer": "t"}}))
            .err()
            .unwrap();
        assert!(err.message.contains("keep one"), "{}", err.message);
        assert!(!err.message.contains("pw@"), "{}", err.message);
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn query_values_render_as_text() {
        let p = prepare(json!({
            "url": "http://h/p?keep=1",
            "query": {"s": "a b", "n": 5, "f": 1.5, "b": true, "skip": null, "ids": [1, "x"]}
        }))
        .unwrap();
        assert_eq!(
            p.url.query(),
            Some("keep=1&s=a+b&n=5&f=1.5&b=true&ids=1&ids=x")
        );
        assert_eq!(p.label, "GET http://h/p");

        let err = prepare(json!({"url": "http://h/", "query": {"o": {"a": 1}}}))
            .err()
            .unwrap();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
        assert!(err.message.contains("`o`"), "{}", err.message);
    }

    #[test]
    fn bad_combinations_are_invalid_params() {
        for (v, needle) in [
            (
                json!({"url": "http://h/", "json": {}, "body": "x"}),
                "not both",
            ),
            (
                json!({"url": "http://h/", "auth": {"bearer": "t", "username": "u"}}),
                "not both",
            ),
            (
                json!({"url": "http://h/", "auth": {"password": "p"}}),
                "needs `auth.username`",
            ),
            (
                json!({"url": "http://h/", "auth": {"bearer": " "}}),
                "empty",
            ),
            (
                json!({"url": "http://h/", "auth": {"bearer": "t"}, "headers": {"Authorization": "x"}}),
                "keep one",
            ),
            (
                json!({"url": "http://h/", "headers": {"bad name": "x"}}),
                "header name",
            ),
            (
                json!({"url": "http://h/", "headers": {"x-a": "a\nb"}}),
                "line breaks",
            ),
            (json!({"url": "/relative"}), "not an absolute URL"),
            (json!({"url": "ftp://h/file"}), "http:// or https://"),
        ] {
            let err = prepare(v.clone())
                .err()
                .unwrap_or_else(|| panic!("{v} accepted"));
            assert_eq!(err.kind, ActionErrorKind::InvalidParams, "{v}");
            assert!(err.message.contains(needle), "{v}: {}", err.message);
            assert!(
                err.message
                    .starts_with("invalid parameters for http.request"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn secrets_are_collected_and_scrubbed() {
        let p = prepare(json!({
            "url": "http://u:urlpass@h/",
            "headers": {"X-Api-Key": "key123", "Accept": "text/plain"},
        }))
        .unwrap();
        assert!(p.secrets.contains(&"urlpass".to_string()));
        assert!(p.secrets.contains(&"key123".to_string()));
        assert!(!p.secrets.contains(&"text/plain".to_string()));
        assert_eq!(scrub("a key123 urlpass b", &p.secrets), "a *** *** b");
        assert_eq!(scrub("nothing", &[String::new()]), "nothing");

        let p = prepare(json!({"url": "http://h/", "auth": {"username": "u", "password": "pw1"}}))
            .unwrap();
        assert_eq!(p.secrets, vec!["pw1".to_string()]);
        let p = prepare(json!({"url": "http://h/", "headers": {"authorization": "Bearer tok9"}}))
            .unwrap();
        assert!(p.secrets.contains(&"tok9".to_string()));
    }

    #[test]
    fn body_detection() {
        let j = |ct: Option<&str>, b: &str| body_value(ct, b.as_bytes().to_vec(), false);
        assert_eq!(
            j(Some("application/json; charset=utf-8"), "5"),
            ("json", json!(5))
        );
        assert_eq!(
            j(Some("application/problem+json"), "{\"a\":1}"),
            ("json", json!({"a": 1}))
        );
        assert_eq!(j(Some("text/plain"), " [1,2]"), ("json", json!([1, 2])));
        assert_eq!(j(None, "{\"a\":1}"), ("json", json!({"a": 1})));
        assert_eq!(j(Some("text/plain"), "42"), ("text", json!("42")));
        assert_eq!(
            j(Some("application/json"), "{oops"),
            ("text", json!("{oops"))
        );
        assert_eq!(j(Some("application/json"), ""), ("text", json!("")));
        // A cut body is never parsed, and a character cut in half is dropped.
        let (k, v) = body_value(
            Some("application/json"),
            "[\"é".as_bytes()[..3].to_vec(),
            true,
        );
        assert_eq!((k, v), ("text", json!("[\"")));
    }

    #[test]
    fn method_schema_lists_the_methods_and_defaults_to_get() {
        let schema = weft_engine::action::params_schema::<RequestParams>();
        assert_eq!(schema["properties"]["method"]["default"], "GET", "{schema}");
        assert_eq!(
            schema["properties"]["timeout"]["default"], "30s",
            "{schema}"
        );
        assert_eq!(schema["required"], json!(["url"]));
        assert_eq!(
            schema["properties"]["follow_redirects"]["default"], "same_origin",
            "{schema}"
        );
    }
}
