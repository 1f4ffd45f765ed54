//! Integration instances: what each kind needs before it is stored, storing it with its
//! secrets sealed, and showing it with its secrets by name only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_engine::action::now_rfc3339;
use weft_engine::org::seal_secrets;
use weft_engine::secrets::SecretBox;
use weft_engine::store::{IntegrationRecord, OrgRecord, Store};

use crate::ServiceError;
use crate::orgs::null_as_default;
use crate::variables::REDACTED;

/// The integration kinds weft knows.
pub const KINDS: &[&str] = &["autotask", "openai", "teams", "slack", "email", "http"];

/// The closest known kind to `kind`, for "did you mean".
pub fn suggest_kind(kind: &str) -> Option<&'static str> {
    weft_engine::suggest::closest(kind, KINDS.iter().copied())
}

/// Is `kind` a known integration kind? The message says which are, and the closest one.
///
/// # Errors
/// The message for people.
pub fn known_kind(kind: &str) -> Result<(), String> {
    if KINDS.contains(&kind) {
        return Ok(());
    }
    let hint = weft_engine::suggest::did_you_mean(kind, KINDS.iter().copied())
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Err(format!(
        "unknown integration kind `{kind}` (known: {}){hint}",
        KINDS.join(", ")
    ))
}

/// Is `text` an absolute http(s) URL with a host?
pub fn valid_url(text: &str) -> bool {
    text.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

/// The setting keys holding a URL.
const URL_KEYS: &[&str] = &[
    "url",
    "webhook_url",
    "base_url",
    "zone_url",
    "discovery_url",
];

/// Settings an `autotask` instance understands: the ones the client reads.
const AUTOTASK_KEYS: &[&str] = weft_actions::autotask::Config::SETTINGS;

/// The URL of a teams/slack/http instance (`url`, `webhook_url` or `base_url`, a setting or
/// a secret), if any.
pub fn instance_url<'a>(
    settings: &'a Map<String, Value>,
    secrets: &'a BTreeMap<String, String>,
) -> Option<(&'static str, &'a str)> {
    ["url", "webhook_url", "base_url"]
        .into_iter()
        .find_map(|k| {
            settings
                .get(k)
                .and_then(Value::as_str)
                .or_else(|| secrets.get(k).map(String::as_str))
                .map(|v| (k, v))
        })
}

/// Checks an integration instance before it is stored: a known kind; for `autotask`,
/// `username`, `integration_code` and the secret `secret` (optional `zone_url`,
/// `discovery_url`); for `teams` and `slack`, a URL (`url` or `webhook_url`); every URL
/// parses. Returns warnings (unknown keys) or the problem.
///
/// # Errors
/// The problem, for people (it never contains secret values).
pub fn check_integration(
    kind: &str,
    settings: &Map<String, Value>,
    secrets: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    known_kind(kind)?;
    if let Some(k) = settings.keys().find(|k| secrets.contains_key(*k)) {
        return Err(format!("`{k}` is given both as a setting and as a secret"));
    }
    let mut warnings = Vec::new();
    for k in URL_KEYS {
        if let Some(v) = settings.get(*k) {
            match v.as_str() {
                Some(s) if valid_url(s) => {}
                _ => return Err(format!("`{k}` is not an http(s) URL: {v}")),
            }
        }
        if secrets.get(*k).is_some_and(|s| !valid_url(s)) {
            return Err(format!("the secret `{k}` is not an http(s) URL"));
        }
    }
    let has = |k: &str| settings.get(k).is_some_and(|v| !v.is_null()) || secrets.contains_key(k);
    match kind {
        "autotask" => {
            let missing: Vec<&str> = ["username", "integration_code"]
                .into_iter()
                .filter(|k| !has(k))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "an `autotask` integration needs {} (the API user's name and the API integration code)",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            for k in ["username", "integration_code"] {
                if settings.get(k).is_some_and(|v| !v.is_string()) {
                    return Err(format!("`{k}` must be text"));
                }
            }
            if settings.contains_key("secret") {
                return Err(
                    "the Autotask API secret must be a secret, not a setting (`--secret secret=-` reads it from stdin)"
                        .into(),
                );
            }
            if !secrets.contains_key("secret") {
                return Err(
                    "an `autotask` integration needs the secret `secret` (the API user's password)"
                        .into(),
                );
            }
            for k in settings.keys().chain(secrets.keys()) {
                if !AUTOTASK_KEYS.contains(&k.as_str()) {
                    warnings.push(format!(
                        "`{k}` is not an Autotask setting weft reads (known: {})",
                        AUTOTASK_KEYS.join(", ")
                    ));
                }
            }
        }
        "email" => {
            let missing: Vec<&str> = ["host", "from"].into_iter().filter(|k| !has(k)).collect();
            if !missing.is_empty() {
                return Err(format!(
                    "an `email` integration needs {} (the SMTP server and the sender address)",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            if settings.contains_key("password") {
                return Err(
                    "the SMTP password must be a secret, not a setting (`--secret password=-` reads it from stdin)"
                        .into(),
                );
            }
        }
        "teams" | "slack" if instance_url(settings, secrets).is_none() => {
            return Err(format!(
                "a `{kind}` integration needs its incoming webhook URL: `url` (or `webhook_url`)"
            ));
        }
        _ => {}
    }
    Ok(warnings)
}

/// An integration instance to add (or replace) (`POST /api/integrations`,
/// `weft integration add`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NewIntegration {
    /// The org it belongs to (id or name).
    pub org: String,
    /// Its kind (`autotask`, `openai`, `teams`, `slack`, `email`, `http`).
    pub kind: String,
    /// Its name; omitted: `default`. A blank name is refused.
    #[serde(default)]
    pub name: Option<String>,
    /// Settings, stored as given.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Secrets, sealed at rest and never answered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: BTreeMap<String, String>,
}

/// An integration instance as shown: its settings, and its secrets by name only, each `***`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Integration)]
pub struct IntegrationView {
    /// The org it belongs to.
    pub org: String,
    /// Its kind.
    pub kind: String,
    /// Instance name (`default` unless named).
    pub name: String,
    /// Non-secret settings.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The names of the secret settings, each `***`; values are never answered.
    pub secrets: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// Present (true) when the secrets were sealed with another key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_unreadable: Option<bool>,
    /// In an org's detail: the instance belongs to an ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited: Option<bool>,
    /// On creation: settings weft does not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    /// On creation: it replaced an instance of the same kind and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<bool>,
    /// An Autotask instance's hourly request budget and its use, as this process last saw
    /// them (absent before its first request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ApiUsage>,
}

/// An integration's secret settings, opened in memory only; `None` when they cannot be
/// opened (another key).
fn opened_secrets(
    record: &IntegrationRecord,
    secrets: &dyn SecretBox,
) -> Option<BTreeMap<String, Value>> {
    match &record.secrets {
        None => Some(BTreeMap::new()),
        Some(sealed) => serde_json::from_str(&secrets.open(sealed).ok()?).ok(),
    }
}

/// An API's request budget and its use (Autotask: per rolling hour, every integration of the
/// tenant's database counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiUsage {
    /// Requests in the rolling hour, estimated (the API's own count or weft's, the larger).
    pub used: u64,
    /// Requests allowed per rolling hour.
    pub budget: u64,
    /// Requests this process has in flight.
    pub in_flight: u64,
    /// Background requests this process delayed because the budget ran low.
    pub paced: u64,
}

/// The usage of `record`'s tenant: its API user reached with its own secret (`opened`), so
/// an org that names another org's API user never sees their usage.
fn api_usage(record: &IntegrationRecord, opened: &BTreeMap<String, Value>) -> Option<ApiUsage> {
    if record.kind != "autotask" {
        return None;
    }
    let user = record.settings.get("username")?.as_str()?;
    let secret = opened.get("secret")?.as_str()?;
    let u = weft_actions::autotask::limits::usage_of(user, secret)?;
    Some(ApiUsage {
        used: u.used,
        budget: u.budget,
        in_flight: u.in_flight.values().map(|n| *n as u64).sum(),
        paced: u.paced,
    })
}

/// An instance as shown: its secrets as `{key: "***"}`, never the values.
pub fn view(record: &IntegrationRecord, secrets: &dyn SecretBox) -> IntegrationView {
    // Opened once, for the names of the secrets and for the tenant's usage.
    let opened = opened_secrets(record, secrets);
    IntegrationView {
        org: record.org_id.clone(),
        kind: record.kind.clone(),
        name: record.name.clone(),
        settings: record.settings.clone(),
        secrets: opened
            .iter()
            .flat_map(BTreeMap::keys)
            .map(|k| (k.clone(), REDACTED.to_string()))
            .collect(),
        created_at: record.created_at.clone(),
        secrets_unreadable: opened.is_none().then_some(true),
        inherited: None,
        warnings: None,
        replaced: None,
        usage: opened.as_ref().and_then(|o| api_usage(record, o)),
    }
}

/// The instances of `org` (id or name; none or empty: of every org), as shown ([`view`]).
///
/// # Errors
/// Not found (the org), store.
pub async fn list(
    store: &dyn Store,
    secrets: &dyn SecretBox,
    org: Option<&str>,
) -> Result<Vec<IntegrationView>, ServiceError> {
    let org = match org.filter(|o| !o.is_empty()) {
        Some(o) => Some(store.org(o).await?.id),
        None => None,
    };
    Ok(store
        .integrations(org.as_deref())
        .await?
        .iter()
        .map(|i| view(i, secrets))
        .collect())
}

/// What [`add`] stored.
#[derive(Debug, Clone)]
pub struct AddedIntegration {
    /// The org it belongs to.
    pub org: OrgRecord,
    /// The stored instance (secrets sealed).
    pub record: IntegrationRecord,
    /// It replaced an instance of the same kind and name.
    pub replaced: bool,
    /// Settings weft does not read, for the caller to show.
    pub warnings: Vec<String>,
}

impl AddedIntegration {
    /// The stored instance as shown ([`view`]) with its warnings and whether it replaced one.
    pub fn view(&self, secrets: &dyn SecretBox) -> IntegrationView {
        IntegrationView {
            warnings: Some(self.warnings.clone()),
            replaced: Some(self.replaced),
            ..view(&self.record, secrets)
        }
    }
}

/// Checks ([`check_integration`]) and stores an integration instance of an existing org,
/// replacing one of the same kind and name. No name is `default`; a blank one is refused
/// (it would silently replace the default instance).
///
/// # Errors
/// Usage (a blank name, unknown kind, missing or misplaced settings), not found (the org),
/// store.
pub async fn add(
    store: &dyn Store,
    sealer: &dyn SecretBox,
    new: NewIntegration,
) -> Result<AddedIntegration, ServiceError> {
    let name = match new.name.as_deref().map(str::trim) {
        None => "default".to_string(),
        Some("") => {
            return Err(ServiceError::usage(
                "the instance name is empty: give one, or leave it out for `default`",
            ));
        }
        Some(n) => n.to_string(),
    };
    let warnings =
        check_integration(&new.kind, &new.settings, &new.secrets).map_err(ServiceError::usage)?;
    let org = crate::orgs::existing(store, &new.org, "the integration's org").await?;
    let replaced = store
        .integrations(Some(&org.id))
        .await?
        .iter()
        .any(|i| i.kind == new.kind && i.name == name);
    let record = IntegrationRecord {
        org_id: org.id.clone(),
        kind: new.kind,
        name,
        settings: Value::Object(new.settings),
        secrets: seal_secrets(&new.secrets, sealer),
        created_at: now_rfc3339(),
    };
    store.save_integration(&record).await?;
    Ok(AddedIntegration {
        org,
        record,
        replaced,
        warnings,
    })
}

/// Removes the `kind` instance `name` of `org`.
///
/// # Errors
/// Not found (the org, or no such instance); store.
pub async fn remove(
    store: &dyn Store,
    org: &str,
    kind: &str,
    name: &str,
) -> Result<OrgRecord, ServiceError> {
    let org = crate::orgs::existing(store, org, "the integration's org").await?;
    if !store.delete_integration(&org.id, kind, name).await? {
        return Err(ServiceError::not_found(format!(
            "organization `{}` has no {kind} integration `{name}`",
            org.id
        )));
    }
    Ok(org)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::orgs::{NewOrg, create};
    use weft_engine::secrets::KeyBox;

    fn teams(org: &str, name: Option<&str>) -> NewIntegration {
        let mut settings = Map::new();
        settings.insert("url".into(), Value::String("https://x.example/h".into()));
        NewIntegration {
            org: org.into(),
            kind: "teams".into(),
            name: name.map(str::to_string),
            settings,
            secrets: BTreeMap::from([("token".to_string(), "s3cret-value".to_string())]),
        }
    }

    #[tokio::test]
    async fn instances_are_named_and_shown_with_their_secrets_by_name_only() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        let sealer = KeyBox::new([3; 32]);
        let new = NewOrg {
            name: "Msp".into(),
            ..NewOrg::default()
        };
        create(store, new).await.unwrap();
        let added = add(store, &sealer, teams("msp", None)).await.unwrap();
        assert_eq!(
            (added.record.name.as_str(), added.replaced),
            ("default", false)
        );
        let shown = added.view(&sealer);
        assert_eq!(
            shown.secrets.get("token").map(String::as_str),
            Some(REDACTED)
        );
        assert_eq!(shown.replaced, Some(false));
        assert!(!serde_json::to_string(&shown).unwrap().contains("s3cret"));
        let again = add(store, &sealer, teams("Msp", Some(" default ")))
            .await
            .unwrap();
        assert!(again.replaced);
        let blank = add(store, &sealer, teams("msp", Some("  "))).await;
        assert_eq!(blank.unwrap_err().kind(), ErrorKind::Usage);

        let listed = list(store, &sealer, Some("")).await.unwrap();
        assert_eq!(listed.len(), 1, "an empty org filter lists every org's");
        let json = serde_json::to_value(&listed[0]).unwrap();
        assert!(json.get("secrets_unreadable").is_none() && json.get("warnings").is_none());
        let other_key = KeyBox::new([4; 32]);
        let unreadable = list(store, &other_key, Some("msp")).await.unwrap();
        assert_eq!(unreadable[0].secrets_unreadable, Some(true));
        assert!(unreadable[0].secrets.is_empty());
        let missing = list(store, &sealer, Some("nowhere")).await;
        assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    }
}
