//! The user planner: each Autotask resource is linked to a weft user (by hand, kept from an
//! earlier run, or by identical name) or recorded for one to be created.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use weft_engine::org::name_key;
use weft_engine::store::DirectoryRecord;

use super::Result;
use super::plan::{
    Changes, Context, KindPlan, Planned, by_id, data_of, full_name, id_of, is_active, record,
    str_field,
};
use super::report::KindReport;
use super::settings::Settings;
use super::{EXCLUDE_USER, LOCAL_USERS};

/// The resource fields read and kept.
pub(super) const RESOURCE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "email",
    "userName",
    "title",
    "isActive",
    "resourceType",
    "licenseType",
];

/// Is resource `r` a person weft should have a user for? Not the integration's own API user
/// (`api_user`, the `username` setting, matched against the resource's `userName` and
/// `email`: Autotask has no field that marks API users), nor a resource the settings name by
/// user name or email (`skip_resource_user_names`) or by `licenseType`
/// (`skip_license_types`, e.g. the tenant's API-user license).
pub(super) fn is_person(r: &Value, api_user: &str, settings: &Settings) -> bool {
    let names = [str_field(r, "userName"), str_field(r, "email")];
    let named = |n: &str| {
        let n = n.trim();
        !n.is_empty() && names.iter().any(|x| x.trim().eq_ignore_ascii_case(n))
    };
    if named(api_user) || settings.skip_resource_user_names.iter().any(|n| named(n)) {
        return false;
    }
    let license = r.get("licenseType").and_then(|v| match v {
        Value::String(s) => s.trim().parse().ok(),
        v => v.as_i64(),
    });
    !license.is_some_and(|l| settings.skip_license_types.contains(&l))
}

/// Plans resources ↔ users: each resource is linked to a weft user (by hand, kept from an
/// earlier run, or by identical name) or recorded for one to be created.
pub(super) struct UserPlanner<'c, 'a> {
    cx: &'c Context<'a>,
    plan: KindPlan,
    known: HashMap<String, DirectoryRecord>,
    excluded: HashSet<String>,
    /// Excluded by id before the resource was known.
    unnamed: HashSet<String>,
    /// weft's own users.
    local_users: Vec<DirectoryRecord>,
    /// weft users already linked to a resource.
    claimed: HashSet<String>,
    /// Links made by hand: resource id → user id.
    manual: BTreeMap<String, String>,
}

impl<'c, 'a> UserPlanner<'c, 'a> {
    pub(super) async fn new(cx: &'c Context<'a>, manual: BTreeMap<String, String>) -> Result<Self> {
        let known = cx.known("user").await?;
        let exclusions = cx.store.exclusions(EXCLUDE_USER).await?;
        let unnamed = exclusions
            .iter()
            .filter(|(_, n)| n.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let excluded = exclusions.into_iter().map(|(id, _)| id).collect();
        let local_users = cx.store.directory(LOCAL_USERS, "user", None).await?;
        let claimed = known
            .values()
            .filter_map(|u| {
                u.data
                    .get("matchedUser")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        Ok(UserPlanner {
            cx,
            plan: KindPlan::default(),
            known,
            excluded,
            unnamed,
            local_users,
            claimed,
            manual,
        })
    }

    /// Plans every resource, then the ones gone from the PSA.
    pub(super) fn plan(mut self, resources: &[Value]) -> Self {
        for r in by_id(resources) {
            self.resource(r);
        }
        self.plan.gone(&self.known);
        self
    }

    fn resource(&mut self, r: &Value) {
        let Some(id) = id_of(r) else { return };
        let name = full_name(r);
        let active = is_active(r);
        let old = self.known.get(&id).cloned();
        if self.excluded.contains(&id) {
            self.plan.exclude(&id, &name, old.as_ref());
            return;
        }
        if !is_person(r, &self.cx.api_user, &self.cx.settings) {
            // API users (this integration's own, and those the settings name) are not people:
            // none is created for them, and one synced before is excluded now.
            match old.as_ref() {
                Some(o) => self.plan.exclude(&id, &name, Some(o)),
                None => self.plan.skip(&id),
            }
            return;
        }
        let mut data = data_of(r, RESOURCE_FIELDS);
        let previous = old
            .as_ref()
            .and_then(|o| o.data.get("matchedUser"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let root_id = Some(self.cx.root.id.clone());
        if let Some(u) = self.linked_user(&id, &name, old.as_ref(), previous.clone()) {
            self.claimed.insert(u.clone());
            data.as_object_mut()
                .expect("object")
                .insert("matchedUser".into(), json!(u));
            let user_name = self
                .local_users
                .iter()
                .find(|x| x.external_id == u)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| u.clone());
            let rec = record("user", &id, root_id, name.clone(), data, active, "matched");
            if previous.as_deref() != Some(u.as_str()) {
                self.plan.matched(&id, &name, &user_name, rec);
            } else {
                let label = rec.name.clone();
                self.plan.settle(
                    Planned {
                        record: rec,
                        old,
                        label,
                    },
                    "matched",
                );
            }
            return;
        }
        let cx = self.cx;
        let state = match &old {
            Some(o) if o.state == "created" || o.state == "matched" => "created",
            _ if !active && old.is_none() => {
                self.plan.skip(&id);
                return;
            }
            _ if cx.first || cx.settings.auto_create_users || cx.is_approved("user", &id) => {
                "created"
            }
            _ => "pending",
        };
        let rec = record("user", &id, root_id, name.clone(), data, active, state);
        self.plan.settle(
            Planned {
                record: rec,
                old,
                label: name,
            },
            state,
        );
    }

    /// The weft user a resource is linked to: by hand, kept from an earlier run, or (unless
    /// a user was created for it) an unclaimed user of the same name.
    fn linked_user(
        &self,
        id: &str,
        name: &str,
        old: Option<&DirectoryRecord>,
        previous: Option<String>,
    ) -> Option<String> {
        let by_name = || {
            self.local_users
                .iter()
                .find(|u| {
                    name_key(&u.name) == name_key(name) && !self.claimed.contains(&u.external_id)
                })
                .map(|u| u.external_id.clone())
        };
        self.manual.get(id).cloned().or(previous).or_else(|| {
            if old.is_some_and(|o| o.state == "created") {
                None
            } else {
                by_name()
            }
        })
    }

    /// Hands the planned records to `changes`; returns the report and the resources
    /// excluded before they were known.
    pub(super) fn finish(mut self, changes: &mut Changes) -> (KindReport, HashSet<String>) {
        changes.directory.append(&mut self.plan.save);
        (self.plan.report, self.unnamed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integrations_own_api_user_is_never_a_person() {
        let s = Settings::default();
        let api = json!({"userName": "weftapi", "email": "API@weft.test", "licenseType": 7});
        assert!(!is_person(&api, "api@weft.test", &s), "by email");
        assert!(!is_person(&api, "WeftAPI", &s), "by user name");
        let person = json!({"userName": "jdoe", "email": "jdoe@msp.test", "licenseType": 1});
        assert!(is_person(&person, "api@weft.test", &s));
        assert!(
            is_person(&person, "", &s),
            "an empty username matches nobody"
        );
        // The guessed `resourceType` no longer decides anything.
        let typed = json!({"userName": "x", "resourceType": "API"});
        assert!(is_person(&typed, "api@weft.test", &s));
    }

    #[test]
    fn other_api_resources_are_left_out_as_the_settings_say() {
        let s = Settings {
            skip_resource_user_names: vec!["rmm-sync@msp.test".into()],
            skip_license_types: vec![7],
            ..Settings::default()
        };
        let rmm = json!({"userName": "rmm", "email": "RMM-sync@msp.test", "licenseType": 1});
        assert!(!is_person(&rmm, "api@weft.test", &s), "by name");
        let licensed = json!({"userName": "psa-bot", "email": "bot@msp.test", "licenseType": "7"});
        assert!(
            !is_person(&licensed, "api@weft.test", &s),
            "by license type"
        );
        let person = json!({"userName": "jdoe", "email": "jdoe@msp.test", "licenseType": 1});
        assert!(is_person(&person, "api@weft.test", &s));
        assert!(is_person(&licensed, "api@weft.test", &Settings::default()));
    }
}
