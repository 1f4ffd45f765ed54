//! `http.request`: call any HTTP API.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use weft_engine::Registry;

use crate::spec;

/// HTTP methods.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    #[default]
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
}

/// Authentication for `http.request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Basic auth user name (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Basic auth password (redacted in stored data).
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer token (redacted in stored data).
    #[serde(default)]
    pub bearer: Option<String>,
}

/// Parameters of `http.request`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestParams {
    /// HTTP method.
    #[serde(default)]
    pub method: Method,
    /// Absolute URL (http or https).
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query-string parameters, appended to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, serde_json::Value>,
    /// A JSON body (sets `content-type: application/json`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A raw text body.
    #[serde(default)]
    pub body: Option<String>,
    /// Basic or bearer authentication.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Time limit for the whole request (`30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Succeed on any status (by default a non-2xx response fails the task).
    #[serde(default)]
    pub allow_error_status: bool,
}

pub(crate) fn register(r: &mut Registry) {
    r.register_spec(spec::<RequestParams>(
        "http.request",
        "Sends an HTTP request; the result has status, headers and json (or text).",
    ));
}
