//! What a run answers: per record kind, the counts, the names and each record that changes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::Mode;

/// What one entity kind's run did (or would do).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct KindReport {
    /// New records (orgs, users, directory records).
    pub created: usize,
    /// Records linked to existing ones (companies to orgs, resources to users).
    pub matched: usize,
    /// Known records whose data changed.
    pub updated: usize,
    /// Excluded records (listed, not imported).
    pub excluded: usize,
    /// Records newly marked inactive (deactivated or gone in the PSA).
    pub deactivated: usize,
    /// Records not imported (company not synced, inactive, invalid, filtered).
    pub skipped: usize,
    /// Known records with nothing to change.
    pub unchanged: usize,
    /// New records waiting to be created (auto-create off).
    pub pending: usize,
    /// Names of the records created (or to create).
    pub to_create: Vec<String>,
    /// `name → org or user` of the records matched (or to match).
    pub to_match: Vec<String>,
    /// Names of the excluded records.
    pub excluded_names: Vec<String>,
    /// Names of the pending records.
    pub pending_names: Vec<String>,
    /// Names of the records deactivated.
    pub deactivated_names: Vec<String>,
    /// Each record that changes (or would): its PSA id, name and the change (`create`,
    /// `pending`, `match`, `exclude`, `deactivate`), so a reviewer can exclude or approve
    /// one by id (`/api/sync/autotask/{kind}/{id}/exclude` or `/create`).
    pub items: Vec<PreviewItem>,
}

/// One record of a sync preview.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PreviewItem {
    /// The PSA's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `create`, `pending`, `match`, `exclude` or `deactivate`.
    pub change: &'static str,
}

impl KindReport {
    /// Lists one record that changes.
    pub(super) fn note(&mut self, id: &str, name: &str, change: &'static str) {
        self.items.push(PreviewItem {
            id: id.to_string(),
            name: name.to_string(),
            change,
        });
    }

    fn counts(&self) -> Value {
        json!({
            "created": self.created,
            "matched": self.matched,
            "updated": self.updated,
            "excluded": self.excluded,
            "deactivated": self.deactivated,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "pending": self.pending,
        })
    }
}

/// What a run did (or, previewed, would do).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncReport {
    /// The sync run's id.
    pub run_id: i64,
    /// The synced org.
    pub org: String,
    /// Preview or apply.
    pub mode: Mode,
    /// No apply had run for this org before.
    pub first_sync: bool,
    /// Per entity kind (company, user, contact, configuration, location).
    pub kinds: BTreeMap<String, KindReport>,
    /// Records not imported and why: `{kind, external_id, company_id, error}`.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Value>,
}

impl SyncReport {
    /// Counts per kind (what the sync run stores).
    pub fn counts(&self) -> Value {
        Value::Object(
            self.kinds
                .iter()
                .map(|(k, r)| (k.clone(), r.counts()))
                .collect(),
        )
    }
}
