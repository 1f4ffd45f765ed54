//! The sync settings: the auto-create toggles, the company types orgs are created for, the
//! API-only resources that are not people and the nightly schedule — read, changed (validated once, for the CLI and the API) and saved.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use weft_engine::store::Store;

use super::Result;
use crate::ServiceError;

const SETTINGS_KEY: &str = "sync.autotask.settings";

/// The stored sync settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Settings {
    /// After the first sync, create orgs for new companies.
    pub auto_create_clients: bool,
    /// After the first sync, create users for new resources.
    pub auto_create_users: bool,
    /// After the first sync, import new configuration items.
    pub auto_create_configurations: bool,
    /// Only create orgs for companies of these types (`1` Customer, `3` Prospect …); empty:
    /// every type. Matching ignores it.
    pub company_types: Vec<i64>,
    /// Cron schedule of the nightly run; null: none.
    pub schedule: Option<String>,
    /// The schedule's IANA time zone.
    pub timezone: String,
    /// User names or emails of API-only resources (other integrations) that are not people:
    /// no user is made for them. The integration's own API user is always left out.
    pub skip_resource_user_names: Vec<String>,
    /// `licenseType` values whose resources are not people (e.g. the tenant's API-user
    /// license; its value is in `Resources/entityInformation/fields`).
    pub skip_license_types: Vec<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auto_create_clients: false,
            auto_create_users: false,
            auto_create_configurations: false,
            company_types: Vec::new(),
            schedule: Some("0 2 * * *".into()),
            timezone: "UTC".into(),
            skip_resource_user_names: Vec::new(),
            skip_license_types: Vec::new(),
        }
    }
}

/// A change of the settings: the fields given replace the stored ones (the API's `PUT`
/// body; the CLI's `weft sync autotask settings --…` flags).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// After the first sync, create orgs for new companies.
    pub auto_create_clients: Option<bool>,
    /// After the first sync, create users for new resources.
    pub auto_create_users: Option<bool>,
    /// After the first sync, import new configuration items.
    pub auto_create_configurations: Option<bool>,
    /// Only create orgs for companies of these types; empty: every type.
    pub company_types: Option<Vec<i64>>,
    /// Cron schedule of the nightly run; null: none (absent: unchanged).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub schedule: Option<Option<String>>,
    /// The schedule's IANA time zone (`Europe/London`).
    pub timezone: Option<String>,
    /// User names or emails of API-only resources that are not people.
    pub skip_resource_user_names: Option<Vec<String>>,
    /// `licenseType` values whose resources are not people.
    pub skip_license_types: Option<Vec<i64>>,
}

/// A field that is present, even as null (`Some(None)`); absent is `None` (by `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl SettingsChange {
    /// Applies the change to `s`.
    ///
    /// # Errors
    /// Usage: a schedule that is not a cron expression, an unknown time zone.
    fn apply_to(self, s: &mut Settings) -> Result<()> {
        if let Some(v) = self.auto_create_clients {
            s.auto_create_clients = v;
        }
        if let Some(v) = self.auto_create_users {
            s.auto_create_users = v;
        }
        if let Some(v) = self.auto_create_configurations {
            s.auto_create_configurations = v;
        }
        if let Some(types) = self.company_types {
            s.company_types = types;
        }
        if let Some(names) = self.skip_resource_user_names {
            s.skip_resource_user_names = names
                .into_iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
        }
        if let Some(types) = self.skip_license_types {
            s.skip_license_types = types;
        }
        if let Some(schedule) = self.schedule {
            s.schedule = match schedule {
                Some(expr) => {
                    let expr = expr.trim().to_string();
                    weft_engine::cron::Schedule::parse(&expr)
                        .map_err(|e| ServiceError::usage(e.to_string()))?;
                    Some(expr)
                }
                None => None,
            };
        }
        if let Some(tz) = self.timezone {
            let tz = tz.trim().to_string();
            if jiff::tz::TimeZone::get(&tz).is_err() {
                return Err(ServiceError::usage(format!(
                    "unknown time zone `{tz}` (an IANA name: Europe/London)"
                )));
            }
            s.timezone = tz;
        }
        Ok(())
    }
}

/// The sync settings (defaults when never set).
///
/// # Errors
/// Store failures.
pub async fn settings(store: &dyn Store) -> Result<Settings> {
    json_setting(store, SETTINGS_KEY).await
}

/// Stores the sync settings.
///
/// # Errors
/// Store failures.
pub async fn save_settings(store: &dyn Store, s: &Settings) -> Result<()> {
    set_json_setting(store, SETTINGS_KEY, s).await
}

/// Changes the settings (saved when they changed); returns them as they are now.
///
/// # Errors
/// Usage: a malformed value (nothing is saved). Store failures.
pub async fn update_settings(store: &dyn Store, change: SettingsChange) -> Result<Settings> {
    let mut s = settings(store).await?;
    let before = s.clone();
    change.apply_to(&mut s)?;
    if s != before {
        save_settings(store, &s).await?;
    }
    Ok(s)
}

/// A setting holding JSON (its default when unset or unreadable).
pub(super) async fn json_setting<T: for<'a> Deserialize<'a> + Default>(
    store: &dyn Store,
    key: &str,
) -> Result<T> {
    Ok(store
        .get_setting(key)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Stores a setting as JSON.
pub(super) async fn set_json_setting<T: Serialize>(
    store: &dyn Store,
    key: &str,
    v: &T,
) -> Result<()> {
    store
        .set_setting(key, &serde_json::to_string(v).expect("serializes"))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_null_switches_the_schedule_off() {
        let mut s = Settings::default();
        let c: SettingsChange =
            serde_json::from_str(r#"{"auto_create_clients": true, "schedule": null}"#).unwrap();
        c.apply_to(&mut s).unwrap();
        assert!(s.auto_create_clients && s.schedule.is_none());
        assert_eq!(s.timezone, "UTC");
        let c: SettingsChange = serde_json::from_str(r#"{"timezone": "Europe/London"}"#).unwrap();
        c.apply_to(&mut s).unwrap();
        assert!(s.schedule.is_none(), "absent: unchanged");
        assert!(serde_json::from_str::<SettingsChange>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn a_bad_schedule_or_time_zone_is_a_usage_error() {
        for bad in [
            r#"{"schedule": "99 * * * *"}"#,
            r#"{"timezone": "Mars/Olympus"}"#,
        ] {
            let c: SettingsChange = serde_json::from_str(bad).unwrap();
            let e = c.apply_to(&mut Settings::default()).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Usage, "{bad}");
        }
    }
}
