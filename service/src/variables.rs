//! Organization variables (`ORG.VARIABLES` in templates): set on an org, inherited down the
//! tree (nearest wins). Secret values are sealed at rest and never shown: they read as
//! [`REDACTED`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use weft_engine::secrets::SecretBox;
use weft_engine::store::{OrgRecord, OrgVar, Store};

use crate::ServiceError;
use crate::orgs::{existing, org_chain};

/// What a secret value is shown as, everywhere (variables, integration secrets).
pub const REDACTED: &str = "***";

/// One variable as an org sees it: own or inherited, the value redacted when secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgVariable {
    /// Its name.
    pub key: String,
    /// The value (any JSON); `***` when secret.
    pub value: Value,
    /// Secret variables are sealed at rest and never shown.
    pub secret: bool,
    /// The org that sets it (the org itself or an ancestor).
    pub from_org: String,
    /// Set by an ancestor, not the org itself.
    pub inherited: bool,
}

/// A value to set (`PUT /api/orgs/{org}/variables/{key}`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct VariableValue {
    /// Any JSON value.
    pub value: Value,
    /// Seal the value and show it as `***` (default false).
    #[serde(default)]
    pub secret: Option<bool>,
}

/// A variable as [`set_variable`] stored it: the value redacted when secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VariableSet {
    /// The org's id.
    pub org: String,
    /// The variable's name.
    pub key: String,
    /// The value, or `***` when secret.
    pub value: Value,
    /// Sealed at rest.
    pub secret: bool,
}

/// The value as shown: stored JSON text read back, or [`REDACTED`] when secret.
fn shown(v: &OrgVar) -> Value {
    if v.secret {
        Value::String(REDACTED.into())
    } else {
        serde_json::from_str(&v.value).unwrap_or(Value::String(v.value.clone()))
    }
}

/// The variables of `chain[0]` (from [`org_chain`]): own and inherited, nearest wins, by
/// key; secret ones as `***` (they are never opened).
///
/// # Errors
/// Store failures.
pub async fn variables_of(
    store: &dyn Store,
    chain: &[OrgRecord],
) -> Result<Vec<OrgVariable>, ServiceError> {
    let mut out: BTreeMap<String, OrgVariable> = BTreeMap::new();
    for (depth, o) in chain.iter().enumerate().rev() {
        for v in store.org_vars(&o.id).await? {
            let value = shown(&v);
            out.insert(
                v.key.clone(),
                OrgVariable {
                    key: v.key,
                    value,
                    secret: v.secret,
                    from_org: o.id.clone(),
                    inherited: depth > 0,
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// The org `org` (id or name) and its variables ([`variables_of`]).
///
/// # Errors
/// Not found (the org), store.
pub async fn list(
    store: &dyn Store,
    org: &str,
) -> Result<(OrgRecord, Vec<OrgVariable>), ServiceError> {
    let chain = org_chain(store, org).await?;
    let vars = variables_of(store, &chain).await?;
    let org = chain
        .into_iter()
        .next()
        .expect("the chain starts with the org");
    Ok((org, vars))
}

/// Variable names usable in templates (`ORG.VARIABLES.name`).
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 128
}

/// Sets `org`'s own variable `key` to `value` (any JSON), sealed when `secret`.
///
/// # Errors
/// Usage (a name templates cannot read), not found (the org), store.
pub async fn set_variable(
    store: &dyn Store,
    sealer: &dyn SecretBox,
    org: &str,
    key: &str,
    value: &Value,
    secret: bool,
) -> Result<VariableSet, ServiceError> {
    if !valid_key(key) {
        return Err(ServiceError::usage(format!(
            "`{key}` is not a valid variable name: letters, digits and `_`, not starting with a digit"
        )));
    }
    let org = existing(store, org, "the variable's org").await?;
    let text = value.to_string();
    store
        .set_org_var(&OrgVar {
            org_id: org.id.clone(),
            key: key.to_string(),
            value: if secret { sealer.seal(&text) } else { text },
            secret,
        })
        .await?;
    Ok(VariableSet {
        org: org.id,
        key: key.to_string(),
        value: if secret {
            Value::String(REDACTED.into())
        } else {
            value.clone()
        },
        secret,
    })
}

/// Removes `org`'s own variable `key` (an inherited one stays where it is set).
///
/// # Errors
/// Not found (the org, or no such variable of its own), store.
pub async fn unset_variable(
    store: &dyn Store,
    org: &str,
    key: &str,
) -> Result<OrgRecord, ServiceError> {
    let org = existing(store, org, "the variable's org").await?;
    if !store.delete_org_var(&org.id, key).await? {
        return Err(ServiceError::not_found(format!(
            "organization `{}` has no variable `{key}` of its own",
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
    use serde_json::json;
    use weft_engine::secrets::KeyBox;

    #[tokio::test]
    async fn nearest_wins_and_secrets_are_redacted() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        let sealer = KeyBox::new([7; 32]);
        for (name, parent) in [("Msp", None), ("Client", Some("msp"))] {
            let new = NewOrg {
                name: name.into(),
                parent: parent.map(str::to_string),
                ..NewOrg::default()
            };
            create(store, new).await.unwrap();
        }
        set_variable(store, &sealer, "msp", "tz", &json!("UTC"), false)
            .await
            .unwrap();
        set_variable(store, &sealer, "msp", "queue", &json!(5), false)
            .await
            .unwrap();
        set_variable(store, &sealer, "client", "queue", &json!(7), false)
            .await
            .unwrap();
        let set = set_variable(store, &sealer, "client", "key", &json!("hunter2"), true)
            .await
            .unwrap();
        assert_eq!(set.value, json!(REDACTED));
        let (org, vars) = list(store, "Client").await.unwrap();
        assert_eq!(org.id, "client");
        let by = |k: &str| vars.iter().find(|v| v.key == k).unwrap().clone();
        assert_eq!(
            (by("queue").value, by("queue").inherited),
            (json!(7), false)
        );
        assert_eq!(
            (by("tz").from_org.as_str(), by("tz").inherited),
            ("msp", true)
        );
        assert_eq!(by("key").value, json!(REDACTED));
        assert!(!serde_json::to_string(&vars).unwrap().contains("hunter2"));
        let (_, root) = list(store, "msp").await.unwrap();
        assert_eq!(root.len(), 2, "nothing is inherited upwards");
        let kind = |e: ServiceError| e.kind();
        let bad = set_variable(store, &sealer, "msp", "2x", &json!(1), false).await;
        assert_eq!(kind(bad.unwrap_err()), ErrorKind::Usage);
        assert_eq!(
            kind(unset_variable(store, "client", "tz").await.unwrap_err()),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(list(store, "nowhere").await.unwrap_err()),
            ErrorKind::NotFound
        );
    }
}
