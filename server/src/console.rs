//! The web console: one HTML page, one JavaScript module and one stylesheet, embedded in the
//! binary and served without the API token (the page asks for it and sends it to `/api/*`).
//!
//! These routes are not API endpoints, so they are not in the OpenAPI document; [`router`] is
//! merged into the main router beside [`crate::routes`].

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The page: landmarks, the login form and an empty `<main>` the module fills.
const INDEX_HTML: &str = include_str!("../console/index.html");
/// The console's only script (an ES module, no framework).
const APP_JS: &str = include_str!("../console/app.js");
/// The console's only stylesheet.
const APP_CSS: &str = include_str!("../console/app.css");

/// Where the assets are served; `index.html` refers to these paths.
pub(crate) const PATHS: &[&str] = &["/", "/console/app.js", "/console/app.css"];

/// Everything a page loads comes from this server; no inline script or style, no forms
/// posted elsewhere (the console's and the hosted form pages' policy), and then who may frame
/// what.
macro_rules! policy {
    ($frames:literal) => {
        concat!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; ",
            "img-src 'self' data:; base-uri 'none'; form-action 'self'; ",
            $frames
        )
    };
}

/// The console's policy: it frames only this server's pages (a form's preview) and is
/// framed by nobody.
pub(crate) const CSP: &str = policy!("frame-src 'self'; frame-ancestors 'none'");

/// The hosted form pages' policy: framed only by this server's console (the preview).
pub(crate) const FORM_CSP: &str = policy!("frame-src 'none'; frame-ancestors 'self'");

/// An embedded file with its content type.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

fn asset(path: &str) -> Option<Asset> {
    let (body, content_type) = match path {
        "/" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/console/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/console/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    Some(Asset { body, content_type })
}

/// Answers an asset; `If-None-Match` with its ETag gets a 304. The assets change only with
/// the binary, so `no-cache` (revalidate every time) costs one small request and never
/// serves a stale script after an upgrade.
fn serve(path: &'static str, headers: &HeaderMap) -> Response {
    let Some(a) = asset(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(a.body.as_bytes())[..12])
    );
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// The console's routes (no state, no token).
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new();
    for &path in PATHS {
        r = r.route(
            path,
            get(move |headers: HeaderMap| async move { serve(path, &headers) }),
        );
    }
    r
}
