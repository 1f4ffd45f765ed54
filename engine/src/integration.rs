//! Integration instances (Autotask tenants, OpenAI endpoints, Teams webhooks…) and how a task
//! finds the one it uses.
//!
//! The engine resolves, actions consume: an action asks its context for an integration of a
//! kind (`cx.integration("autotask")`) and gets settings plus secrets. Where instances come
//! from is a seam ([`Integrations`]): a file today, per-organization storage later.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::action::{ActionError, OrgRef};
use crate::store::LimitStore;

/// One configured integration instance.
#[derive(Clone, Deserialize)]
pub struct Integration {
    /// The kind: `autotask`, `openai`, `teams`, `slack`, `http`…
    pub kind: String,
    /// The instance name (several per kind are allowed); `default` when not given.
    #[serde(default = "default_name")]
    pub name: String,
    /// Non-secret settings (URLs, user names, ids).
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// Secret settings; never logged, stored or shown.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    /// Where limits shared with the other processes on the same database are kept (the
    /// store), when the instance was resolved by an engine.
    #[serde(skip)]
    shared_limits: Option<Arc<dyn LimitStore>>,
}

fn default_name() -> String {
    "default".into()
}

impl fmt::Debug for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integration")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field(
                "secrets",
                &self
                    .secrets
                    .keys()
                    .map(|k| (k, "***"))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

impl Integration {
    /// A new instance.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Integration {
            kind: kind.into(),
            name: name.into(),
            settings: Map::new(),
            secrets: BTreeMap::new(),
            shared_limits: None,
        }
    }

    /// The same instance, its API limits (requests in flight, requests per hour) shared
    /// through `limits` with every process on the same database.
    #[must_use]
    pub fn sharing_limits(mut self, limits: Arc<dyn LimitStore>) -> Self {
        self.shared_limits = Some(limits);
        self
    }

    /// Where this instance's API limits are shared across processes (none: this process
    /// only).
    pub fn shared_limits(&self) -> Option<&Arc<dyn LimitStore>> {
        self.shared_limits.as_ref()
    }

    /// Sets a non-secret setting.
    #[must_use]
    pub fn with_setting(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.settings.insert(key.to_string(), value.into());
        self
    }

    /// Sets a secret.
    #[must_use]
    pub fn with_secret(mut self, key: &str, value: impl Into<String>) -> Self {
        self.secrets.insert(key.to_string(), value.into());
        self
    }

    /// A setting as text.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str)
    }

    /// A secret.
    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).map(String::as_str)
    }

    /// Every secret value (for redaction).
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secrets.values().map(String::as_str)
    }

    /// A required setting or secret, with an error naming what is missing.
    ///
    /// # Errors
    /// When the key is absent.
    pub fn require(&self, key: &str) -> Result<&str, ActionError> {
        self.setting(key)
            .or_else(|| self.secret(key))
            .ok_or_else(|| {
                ActionError::failed(format!(
                    "the `{}` integration `{}` has no `{key}`",
                    self.kind, self.name
                ))
            })
    }
}

/// Where integration instances come from.
pub trait Integrations: Send + Sync {
    /// The instance of `kind` a task in `org` uses: `instance` when the task or trigger names
    /// one, else the org's default.
    ///
    /// # Errors
    /// No such instance, with a message naming the org and the kind.
    fn resolve(
        &self,
        kind: &str,
        org: &OrgRef,
        instance: Option<&str>,
    ) -> Result<Integration, ActionError>;

    /// Every secret of every instance, so executions can mask them in what they store.
    fn secret_values(&self) -> Vec<String>;
}

/// Instances from a YAML/JSON file (or built in code), the same for every org.
#[derive(Debug, Clone, Default)]
pub struct StaticIntegrations {
    instances: Vec<Integration>,
}

#[derive(Deserialize)]
struct IntegrationsFile {
    integrations: Vec<Integration>,
}

impl StaticIntegrations {
    /// From instances.
    pub fn new(instances: Vec<Integration>) -> Self {
        StaticIntegrations { instances }
    }

    /// From a file: `integrations: [{kind, name, settings: {...}, secrets: {...}}]`.
    ///
    /// # Errors
    /// Unreadable or malformed files (the message never contains secret values).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: IntegrationsFile = serde_yaml::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!(" at line {} column {}", l.line(), l.column())).unwrap_or_default();
            format!("{} is not a valid integrations file{at}: expected `integrations: [{{kind, name, settings, secrets}}]`", path.display())
        })?;
        Ok(StaticIntegrations {
            instances: file.integrations,
        })
    }

    /// Adds an instance.
    pub fn add(&mut self, integration: Integration) {
        self.instances
            .retain(|i| !(i.kind == integration.kind && i.name == integration.name));
        self.instances.push(integration);
    }
}

impl Integrations for StaticIntegrations {
    fn resolve(
        &self,
        kind: &str,
        org: &OrgRef,
        instance: Option<&str>,
    ) -> Result<Integration, ActionError> {
        let of_kind: Vec<&Integration> = self.instances.iter().filter(|i| i.kind == kind).collect();
        let found = match instance {
            Some(name) => of_kind.iter().find(|i| i.name == name),
            None => of_kind
                .iter()
                .find(|i| i.name == "default")
                .or(if of_kind.len() == 1 {
                    of_kind.first()
                } else {
                    None
                }),
        };
        found.map(|i| (*i).clone()).ok_or_else(|| {
            let what = instance
                .map(|n| format!("`{kind}` integration `{n}`"))
                .unwrap_or_else(|| format!("default `{kind}` integration"));
            let known: Vec<&str> = of_kind.iter().map(|i| i.name.as_str()).collect();
            let hint = if known.is_empty() {
                "configure one with --integrations FILE".to_string()
            } else {
                format!("instances: {}", known.join(", "))
            };
            ActionError::failed(format!(
                "no {what} for organization `{}` ({hint})",
                org.name
            ))
        })
    }

    fn secret_values(&self) -> Vec<String> {
        self.instances
            .iter()
            .flat_map(|i| i.secret_values().map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgRef {
        OrgRef {
            id: "o".into(),
            name: "Contoso".into(),
        }
    }

    #[test]
    fn resolves_named_default_and_only_instances_and_never_prints_secrets() {
        let s = StaticIntegrations::new(vec![
            Integration::new("autotask", "default").with_secret("secret", "s3cr3t-value"),
            Integration::new("autotask", "second").with_setting("username", "u@x"),
            Integration::new("openai", "azure"),
        ]);
        assert_eq!(s.resolve("autotask", &org(), None).unwrap().name, "default");
        assert_eq!(
            s.resolve("autotask", &org(), Some("second"))
                .unwrap()
                .setting("username"),
            Some("u@x")
        );
        assert_eq!(
            s.resolve("openai", &org(), None).unwrap().name,
            "azure",
            "the only instance"
        );
        let err = s.resolve("teams", &org(), None).unwrap_err();
        assert!(
            err.message.contains("Contoso") && err.message.contains("teams"),
            "{}",
            err.message
        );
        let debug = format!("{:?}", s.resolve("autotask", &org(), None).unwrap());
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert_eq!(s.secret_values(), vec!["s3cr3t-value".to_string()]);
    }
}
