//! Keeps secrets out of stored execution data.
//!
//! Secrets are found three ways: workflow inputs declared `secret: true`, action parameters
//! whose schema marks them `x-weft-secret`, and credential-looking header values. Once known,
//! a secret's value is replaced by `***` wherever it appears in stored inputs, results and
//! errors — also inside longer strings such as `Bearer <token>`.

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// The replacement text.
pub const MASK: &str = "***";

/// Secrets shorter than this are not matched inside other text (too many false hits).
const MIN_SECRET_LEN: usize = 4;

fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("api_key")
        || n.contains("token")
        || n.contains("secret")
        || n.contains("password")
}

/// The secrets of one execution; cheap to clone and share with its tasks.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    /// Remembers a secret value.
    pub fn add(&self, secret: &str) {
        if secret.is_empty() || secret == MASK {
            return;
        }
        let mut s = self.secrets.write().expect("not poisoned");
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Remembers every string inside a secret value.
    pub fn add_value(&self, v: &Value) {
        match v {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|i| self.add_value(i)),
            Value::Object(m) => m.values().for_each(|i| self.add_value(i)),
            _ => {}
        }
    }

    /// Learns the secrets in an action's parameters from its schema (`x-weft-secret`) and
    /// from credential headers, and returns the parameters with them masked.
    pub fn params(&self, schema: &Value, params: &Value) -> Value {
        self.learn(schema, schema, params);
        self.redact(params)
    }

    fn learn(&self, root: &Value, schema: &Value, v: &Value) {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => root.pointer(r.trim_start_matches('#')).unwrap_or(schema),
            None => schema,
        };
        if schema.get("x-weft-secret").and_then(Value::as_bool) == Some(true) {
            self.add_value(v);
            return;
        }
        let Value::Object(map) = v else { return };
        for (k, child) in map {
            if k.eq_ignore_ascii_case("headers")
                && let Value::Object(headers) = child
            {
                for (name, value) in headers {
                    if is_credential_header(name) {
                        self.add_value(value);
                        // `Bearer abc`: the token alone may appear elsewhere.
                        if let Some(token) = value
                            .as_str()
                            .and_then(|s| s.split_once(' '))
                            .map(|(_, t)| t)
                        {
                            self.add(token);
                        }
                    }
                }
            }
            let child_schema = schema.get("properties").and_then(|p| p.get(k)).or_else(|| {
                schema
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|s| s.get("$ref").is_some()))
            });
            if let Some(cs) = child_schema {
                self.learn(root, cs, child);
            }
        }
    }

    /// A copy of `v` with every known secret masked.
    pub fn redact(&self, v: &Value) -> Value {
        let secrets = self.secrets.read().expect("not poisoned");
        if secrets.is_empty() {
            return v.clone();
        }
        redact_with(&secrets, v)
    }

    /// `s` with every known secret masked.
    pub fn redact_str(&self, s: &str) -> String {
        let secrets = self.secrets.read().expect("not poisoned");
        mask_text(&secrets, s)
    }
}

fn mask_text(secrets: &[String], s: &str) -> String {
    let mut out = s.to_string();
    for secret in secrets {
        if out == *secret || (secret.len() >= MIN_SECRET_LEN && out.contains(secret.as_str())) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

fn redact_with(secrets: &[String], v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(mask_text(secrets, s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| redact_with(secrets, i)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, i)| (k.clone(), redact_with(secrets, i)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_marked_and_header_secrets_are_masked_everywhere() {
        let r = Redactor::default();
        let schema = json!({
            "properties": { "auth": { "$ref": "#/$defs/Auth" }, "url": {"type": "string"} },
            "$defs": { "Auth": { "properties": { "password": { "type": "string", "x-weft-secret": true } } } }
        });
        let params = json!({
            "url": "https://x/api",
            "auth": { "password": "hunter22" },
            "headers": { "Authorization": "Bearer tok-123456", "Accept": "json" }
        });
        let stored = r.params(&schema, &params);
        assert_eq!(stored["auth"]["password"], "***");
        assert_eq!(stored["headers"]["Authorization"], "***");
        assert_eq!(stored["headers"]["Accept"], "json");
        assert_eq!(
            r.redact(&json!({"echo": "token was tok-123456"})),
            json!({"echo": "token was ***"})
        );
        assert_eq!(r.redact_str("login hunter22 failed"), "login *** failed");
    }
}
