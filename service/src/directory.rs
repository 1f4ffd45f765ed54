//! The directory the Autotask sync keeps per organization (contacts, configurations,
//! locations, users, companies) and the sync runs that filled it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use weft_engine::store::{self, Store};

use crate::ServiceError;

/// The directory kinds an org has.
pub const DIRECTORY_KINDS: &[&str] = &["contact", "configuration", "location", "user", "company"];

/// How many sync runs are listed when no limit is given.
pub const DEFAULT_RUNS: i64 = 50;

/// The most sync runs one listing answers.
pub const MAX_RUNS: i64 = 1000;

/// One record the sync keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DirectoryRecord {
    /// `autotask`.
    pub source: String,
    /// `company`, `user`, `contact`, `configuration` or `location`.
    pub kind: String,
    /// The PSA's id.
    pub external_id: String,
    /// The org it belongs to (companies: the org they map to).
    #[schema(required = true)]
    pub org_id: Option<String>,
    /// Display name.
    pub name: String,
    /// The fields weft keeps.
    #[schema(value_type = Object)]
    pub data: Value,
    /// False once deactivated or deleted in the PSA (records are never deleted).
    pub active: bool,
    /// `matched`, `created`, `excluded` or `pending`.
    pub state: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<store::DirectoryRecord> for DirectoryRecord {
    fn from(r: store::DirectoryRecord) -> Self {
        DirectoryRecord {
            source: r.source,
            kind: r.kind,
            external_id: r.external_id,
            org_id: r.org_id,
            name: r.name,
            data: r.data,
            active: r.active,
            state: r.state,
            updated_at: r.updated_at,
        }
    }
}

/// One run of a directory sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncRun {
    /// Row id.
    pub id: i64,
    /// `autotask`.
    pub source: String,
    /// The org whose integration was synced.
    pub org_id: String,
    /// `preview` or `apply`.
    pub mode: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once finished.
    #[schema(required = true)]
    pub finished_at: Option<String>,
    /// Per entity kind: created, matched, excluded, updated, deactivated, skipped.
    #[schema(value_type = Object)]
    pub counts: Value,
    /// Problems met (records skipped and why, failed calls).
    pub errors: Value,
}

impl From<store::SyncRun> for SyncRun {
    fn from(r: store::SyncRun) -> Self {
        SyncRun {
            id: r.id,
            source: r.source,
            org_id: r.org_id,
            mode: r.mode,
            started_at: r.started_at,
            finished_at: r.finished_at,
            counts: r.counts,
            errors: r.errors,
        }
    }
}

/// The directory kind `kind` names: singular or plural (`contacts`, `companies`).
///
/// # Errors
/// Usage: not a directory kind (the message lists them).
pub fn directory_kind(kind: &str) -> Result<&'static str, ServiceError> {
    let singular = kind.strip_suffix('s').unwrap_or(kind);
    let singular = if singular == "companie" {
        "company"
    } else {
        singular
    };
    DIRECTORY_KINDS
        .iter()
        .copied()
        .find(|k| *k == singular)
        .ok_or_else(|| {
            ServiceError::usage(format!(
                "unknown directory kind `{kind}` (contacts, configurations, locations, users, companies)"
            ))
        })
}

/// The `kind` records ([`directory_kind`]) the Autotask sync keeps for `org` (id or name).
///
/// # Errors
/// Not found (the org), usage (the kind), store.
pub async fn list(
    store: &dyn Store,
    org: &str,
    kind: &str,
) -> Result<Vec<DirectoryRecord>, ServiceError> {
    let record = store.org(org).await?;
    let kind = directory_kind(kind)?;
    Ok(store
        .directory("autotask", kind, Some(&record.id))
        .await?
        .into_iter()
        .map(DirectoryRecord::from)
        .collect())
}

/// How many sync runs to list: `limit` as given (text, as a query string has it), between 1
/// and [`MAX_RUNS`]; none: [`DEFAULT_RUNS`].
///
/// # Errors
/// Usage: not a number in that range.
pub fn runs_limit(limit: Option<&str>) -> Result<i64, ServiceError> {
    match limit {
        None => Ok(DEFAULT_RUNS),
        Some(l) => l
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_RUNS).contains(n))
            .ok_or_else(|| {
                ServiceError::usage(format!(
                    "`limit` must be between 1 and {MAX_RUNS}, got `{l}`"
                ))
            }),
    }
}

/// The newest `limit` directory sync runs ([`runs_limit`]), newest first.
///
/// # Errors
/// Store failures.
pub async fn sync_runs(store: &dyn Store, limit: i64) -> Result<Vec<SyncRun>, ServiceError> {
    Ok(store
        .sync_runs(limit.clamp(1, MAX_RUNS))
        .await?
        .into_iter()
        .map(SyncRun::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn kinds_are_singular_or_plural() {
        assert_eq!(directory_kind("contacts").unwrap(), "contact");
        assert_eq!(directory_kind("companies").unwrap(), "company");
        assert_eq!(directory_kind("user").unwrap(), "user");
        let e = directory_kind("tickets").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("contacts, configurations"), "{e}");
    }

    #[test]
    fn the_runs_limit_is_checked() {
        assert_eq!(runs_limit(None).unwrap(), DEFAULT_RUNS);
        assert_eq!(runs_limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-3", "ten"] {
            assert_eq!(runs_limit(Some(bad)).unwrap_err().kind(), ErrorKind::Usage);
        }
    }

    #[tokio::test]
    async fn an_orgs_directory_is_listed_by_kind() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        let new = crate::orgs::NewOrg {
            name: "Msp".into(),
            ..Default::default()
        };
        crate::orgs::create(store, new).await.unwrap();
        assert!(list(store, "Msp", "contacts").await.unwrap().is_empty());
        let kind = |r: Result<Vec<DirectoryRecord>, ServiceError>| r.unwrap_err().kind();
        assert_eq!(kind(list(store, "msp", "tickets").await), ErrorKind::Usage);
        assert_eq!(
            kind(list(store, "nowhere", "tickets").await),
            ErrorKind::NotFound
        );
        assert!(sync_runs(store, 5).await.unwrap().is_empty());
    }
}
