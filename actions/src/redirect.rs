//! Outbound HTTP for every action: one client configuration and one redirect policy.
//!
//! reqwest's own redirect handling follows up to 10 redirects to any host and, while it drops
//! `Authorization` and `Cookie` on a hop to another host, it keeps custom headers (`X-Api-Key`,
//! `api-key`, Autotask's `Secret` and `ApiIntegrationCode`…) and whatever query string the
//! server put in `Location`. So every client the actions build comes from `client_builder`
//! (automatic redirects off, no `Referer`), and every request goes through `send`, which
//! follows redirects itself:
//!
//! - at most [`MAX_REDIRECTS`] hops;
//! - never from `https` to `http`, even on the same host, and never to another scheme;
//! - to the same origin (scheme, host and port) with every header, credentials included;
//! - to another origin only with [`FollowRedirects::Any`], and then with only the standard,
//!   non-credential headers of [`CROSS_ORIGIN_HEADERS`] and without the query string
//!   (nor any user name or password in `Location`); once a request has left its origin it
//!   never gets its credentials back, even if a later hop returns to the first origin;
//! - 301, 302 and 303 become a `GET` (a `HEAD` stays a `HEAD`) without a body; 307 and 308
//!   keep the method and the body.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Method, StatusCode, Url};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weft_engine::ActionError;

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 10;

/// The headers a request keeps when a redirect sends it to another origin
/// ([`FollowRedirects::Any`]); every other header is dropped.
pub const CROSS_ORIGIN_HEADERS: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::CACHE_CONTROL,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::PRAGMA,
    header::USER_AGENT,
];

/// Headers describing a body, dropped when a redirect turns the request into a `GET`.
const BODY_HEADERS: &[HeaderName] = &[
    header::CONTENT_ENCODING,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::TRANSFER_ENCODING,
];

/// Which redirects a request follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowRedirects {
    /// Follow none: a 3xx answer is the response (a non-2xx status, so the task fails unless
    /// `allow_error_status` is set; its `location` header says where it points).
    None,
    /// Follow redirects to the same origin (scheme, host and port) only, with every header;
    /// a redirect to another origin fails the task.
    #[default]
    SameOrigin,
    /// Also follow redirects to other origins, sending them only standard headers (`Accept`,
    /// `Content-Type`, `User-Agent`…: no `Authorization`, cookie, API key or other custom
    /// header) and no query string.
    Any,
}

/// The HTTP client settings every action uses: the weft user agent, no automatic
/// redirects (see [`send`]) and no `Referer`.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
}

/// An HTTP client shared by an action's calls, built on first use from [`client_builder`].
pub(crate) fn shared_client(
    cell: &OnceLock<Result<reqwest::Client, String>>,
) -> Result<&reqwest::Client, ActionError> {
    cell.get_or_init(|| {
        client_builder()
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))
    })
    .as_ref()
    .map_err(|e| ActionError::failed(e.clone()))
}

/// A request that can be sent again to follow a redirect.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub method: Method,
    pub url: Url,
    /// Every header, credentials included (`Authorization` too: do not rely on
    /// `RequestBuilder::basic_auth`, which would be lost on a same-origin hop).
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// A time limit per hop, if any.
    pub timeout: Option<Duration>,
}

impl Outgoing {
    /// A request without body, headers or time limit.
    pub(crate) fn new(method: Method, url: Url) -> Outgoing {
        Outgoing {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
        }
    }
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// To another origin, and the policy does not allow it.
    OtherOrigin,
    /// From `https` to `http`.
    Downgrade,
    /// To something other than `http` or `https`.
    Scheme,
    /// More than [`MAX_REDIRECTS`].
    TooMany,
}

/// A redirect that was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub refusal: Refusal,
    /// The redirect's status.
    pub status: u16,
    /// Where it pointed, for messages: scheme, host and port only (`https://h.example/…`),
    /// since a path or query may carry a credential.
    pub target: String,
}

impl Refused {
    /// The message: `{who}: the server redirected to https://other.example/… (another
    /// origin)`, followed by `hint` when the redirect went to another origin.
    pub(crate) fn message(&self, who: &str, hint: Option<&str>) -> String {
        let mut m = match self.refusal {
            Refusal::OtherOrigin => format!(
                "{who}: the server redirected to {} (another origin)",
                self.target
            ),
            Refusal::Downgrade => format!(
                "{who}: the server redirected from https to {}; weft never follows a redirect from https to http",
                self.target
            ),
            Refusal::Scheme => format!(
                "{who}: the server redirected to {}, which is not an http(s) URL",
                self.target
            ),
            Refusal::TooMany => format!(
                "{who}: stopped after {MAX_REDIRECTS} redirects (the last one to {})",
                self.target
            ),
        };
        if self.refusal == Refusal::OtherOrigin
            && let Some(h) = hint
        {
            m.push_str("; ");
            m.push_str(h);
        }
        m
    }
}

/// Why [`send`] failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection, TLS, the time limit…
    Transport(reqwest::Error),
    /// A redirect that the policy does not allow.
    Refused(Refused),
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        SendError::Transport(e)
    }
}

/// What to do with one redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Hand the 3xx answer back as the response ([`FollowRedirects::None`]).
    Stop,
    /// Follow it; `cross_origin` when it leaves the current origin.
    Follow { cross_origin: bool },
    /// Fail.
    Refuse(Refusal),
}

/// `(scheme, host, port)` of a URL; hosts compare case-insensitively and a missing port is
/// the scheme's default.
fn origin(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_ascii_lowercase(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// Whether two URLs have the same origin (scheme, host and port).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    origin(a) == origin(b)
}

/// The decision for a redirect from `from` to `to` under `policy`.
pub(crate) fn decide(from: &Url, to: &Url, policy: FollowRedirects) -> Decision {
    if policy == FollowRedirects::None {
        return Decision::Stop;
    }
    if !matches!(to.scheme(), "http" | "https") || to.host_str().is_none_or(str::is_empty) {
        return Decision::Refuse(Refusal::Scheme);
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Decision::Refuse(Refusal::Downgrade);
    }
    if same_origin(from, to) {
        return Decision::Follow {
            cross_origin: false,
        };
    }
    match policy {
        FollowRedirects::Any => Decision::Follow { cross_origin: true },
        _ => Decision::Refuse(Refusal::OtherOrigin),
    }
}

/// A URL for messages: `scheme://host[:port]/…`, nothing of its path or query.
pub(crate) fn shown_origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// Keeps only the headers of [`CROSS_ORIGIN_HEADERS`].
fn keep_cross_origin_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().cloned().collect();
    for name in names {
        if !CROSS_ORIGIN_HEADERS.contains(&name) {
            headers.remove(&name);
        }
    }
}

/// Sends `req`, following redirects as `policy` allows (see the module docs). Returns the
/// first response that is not a redirect to follow: a final answer, a 3xx without a usable
/// `Location` (or any 3xx with [`FollowRedirects::None`]).
///
/// # Errors
/// [`SendError::Transport`] when a request fails, [`SendError::Refused`] for a redirect the
/// policy does not allow or one too many.
pub(crate) async fn send(
    client: &reqwest::Client,
    mut req: Outgoing,
    policy: FollowRedirects,
) -> Result<reqwest::Response, SendError> {
    let mut hops = 0;
    loop {
        let mut b = client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        if let Some(t) = req.timeout {
            b = b.timeout(t);
        }
        let resp = b.send().await?;
        let status = resp.status();
        let redirect = matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        );
        if !redirect {
            return Ok(resp);
        }
        let Some(mut next) = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| req.url.join(l.trim()).ok())
        else {
            return Ok(resp);
        };
        // Credentials in `Location` are never used (reqwest would turn them into basic auth).
        let _ = next.set_username("");
        let _ = next.set_password(None);
        next.set_fragment(None);
        let cross_origin = match decide(&req.url, &next, policy) {
            Decision::Stop => return Ok(resp),
            Decision::Refuse(refusal) => {
                return Err(SendError::Refused(Refused {
                    refusal,
                    status: status.as_u16(),
                    target: shown_origin(&next),
                }));
            }
            Decision::Follow { cross_origin } => cross_origin,
        };
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(SendError::Refused(Refused {
                refusal: Refusal::TooMany,
                status: status.as_u16(),
                target: shown_origin(&next),
            }));
        }
        if matches!(
            status,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
        ) {
            if req.method != Method::HEAD {
                req.method = Method::GET;
            }
            req.body = None;
            for h in BODY_HEADERS {
                req.headers.remove(h);
            }
        }
        if cross_origin {
            keep_cross_origin_headers(&mut req.headers);
            next.set_query(None);
        }
        tracing::debug!(
            target: "weft::http",
            status = status.as_u16(),
            to = %shown_origin(&next),
            cross_origin,
            "following a redirect"
        );
        // Drop the redirect's body before the next hop (its connection goes back to the pool).
        drop(resp);
        req.url = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn decisions() {
        use Decision::*;
        use FollowRedirects as F;
        let same = Follow {
            cross_origin: false,
        };
        let cross = Follow { cross_origin: true };
        for (from, to, policy, want) in [
            (
                "https://a.example/x",
                "https://A.example:443/y?z",
                F::SameOrigin,
                same,
            ),
            (
                "https://a.example/x",
                "https://b.example/y",
                F::SameOrigin,
                Refuse(Refusal::OtherOrigin),
            ),
            (
                "https://a.example/x",
                "https://a.example:8443/y",
                F::SameOrigin,
                Refuse(Refusal::OtherOrigin),
            ),
            (
                "http://a.example/x",
                "https://a.example/y",
                F::SameOrigin,
                Refuse(Refusal::OtherOrigin),
            ),
            ("https://a.example/x", "https://b.example/y", F::Any, cross),
            ("http://a.example/x", "https://a.example/y", F::Any, cross),
            // Never from https to http, not even to the same host, whatever the policy.
            (
                "https://a.example/x",
                "http://a.example/x",
                F::SameOrigin,
                Refuse(Refusal::Downgrade),
            ),
            (
                "https://a.example/x",
                "http://a.example/x",
                F::Any,
                Refuse(Refusal::Downgrade),
            ),
            (
                "https://a.example/x",
                "http://b.example/x",
                F::Any,
                Refuse(Refusal::Downgrade),
            ),
            (
                "https://a.example/x",
                "ftp://a.example/x",
                F::Any,
                Refuse(Refusal::Scheme),
            ),
            ("https://a.example/x", "https://b.example/y", F::None, Stop),
            ("http://a.example/x", "http://a.example/y", F::None, Stop),
        ] {
            assert_eq!(
                decide(&u(from), &u(to), policy),
                want,
                "{from} → {to} ({policy:?})"
            );
        }
    }

    #[test]
    fn messages_show_only_the_origin() {
        let r = Refused {
            refusal: Refusal::OtherOrigin,
            status: 302,
            target: shown_origin(&u("https://other.example:8443/hook/SECRET?key=abc")),
        };
        let m = r.message(
            "http.request",
            Some("set follow_redirects: any to follow it"),
        );
        assert_eq!(
            m,
            "http.request: the server redirected to https://other.example:8443/… (another origin); set follow_redirects: any to follow it"
        );
        let r = Refused {
            refusal: Refusal::Downgrade,
            status: 301,
            target: shown_origin(&u("http://a.example/p?token=t")),
        };
        let m = r.message("openai.chat", Some("ignored"));
        assert!(m.contains("from https to http://a.example/…"), "{m}");
        assert!(!m.contains("token") && !m.contains("ignored"), "{m}");
    }

    #[test]
    fn cross_origin_headers_are_an_allow_list() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer t"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "a=b"),
            ("x-api-key", "k"),
            ("api-key", "k"),
            ("secret", "s"),
            ("apiintegrationcode", "c"),
            ("username", "u"),
            ("referer", "https://a.example/"),
            ("x-custom", "1"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("user-agent", "weft"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        keep_cross_origin_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "content-type", "user-agent"]);
    }

    #[test]
    fn the_parameter_is_a_documented_enum() {
        let schema = serde_json::to_value(schemars::schema_for!(FollowRedirects)).unwrap();
        let text = schema.to_string();
        for v in ["none", "same_origin", "any"] {
            assert!(text.contains(&format!("\"{v}\"")), "{text}");
        }
        assert_eq!(
            serde_json::from_value::<FollowRedirects>(serde_json::json!("same_origin")).unwrap(),
            FollowRedirects::SameOrigin
        );
        assert_eq!(FollowRedirects::default(), FollowRedirects::SameOrigin);
    }
}
