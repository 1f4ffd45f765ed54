//! The Autotask directory sync (what Passportal does with a PSA): Companies become orgs,
//! Resources become users, Contacts, Configuration Items and Company Locations are kept in
//! weft's directory, each linked to the org of its company.
//!
//! - Companies match orgs through an existing mapping, else by identical name (case and
//!   whitespace aside); company 0 (the MSP's own) matches the synced root org. The first
//!   apply creates every company the preview lists (a child org of the synced org) unless it
//!   is excluded; later runs create new companies only when auto-create clients is on (else
//!   they wait as `pending` in the directory). The same goes for users (auto-create users)
//!   and configuration items (auto-create configurations); contacts and locations of synced
//!   companies are always imported.
//! - Exclusions (`autotask` for companies, `autotask.resource` for users) are remembered.
//! - Records deactivated in (or gone from) the PSA are marked inactive, never deleted; the org
//!   of a deactivated company becomes inactive.
//! - A run with no PSA change changes nothing: records are saved only when their data
//!   changed.
//! - Every run (preview or apply) is recorded with its counts and errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weft_engine::action::now_rfc3339;
use weft_engine::executor::Engine;
use weft_engine::org::{RootOrgError, name_key, root_org, slug};
use weft_engine::store::{DirectoryRecord, OrgMapping, OrgRecord, Store, StoreError};

use super::client::Client;

/// The directory source and mapping kind of this sync.
pub const SOURCE: &str = "autotask";
/// Exclusion kind of companies (the same kind as org mappings).
pub const EXCLUDE_COMPANY: &str = "autotask";
/// Exclusion kind of resources (users).
pub const EXCLUDE_USER: &str = "autotask.resource";
/// The directory source of weft's own user records, which resources match by name.
pub const LOCAL_USERS: &str = "weft";

const SETTINGS_KEY: &str = "sync.autotask.settings";
const APPROVED_KEY: &str = "sync.autotask.approved";
const USER_MATCHES_KEY: &str = "sync.autotask.user_matches";
fn initialized_key(org: &str) -> String {
    format!("sync.autotask.initialized.{org}")
}

/// The entity kinds, in report order.
pub const KINDS: [&str; 5] = ["company", "user", "contact", "configuration", "location"];

const COMPANY_FIELDS: &[&str] = &[
    "companyName",
    "companyNumber",
    "companyType",
    "classification",
    "isActive",
    "phone",
    "webAddress",
    "address1",
    "address2",
    "city",
    "state",
    "postalCode",
    "countryID",
    "ownerResourceID",
];
const RESOURCE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "email",
    "userName",
    "title",
    "isActive",
    "resourceType",
];
const CONTACT_FIELDS: &[&str] = &[
    "companyID",
    "companyLocationID",
    "firstName",
    "lastName",
    "emailAddress",
    "phone",
    "mobilePhone",
    "title",
    "isActive",
    "primaryContact",
];
const CI_FIELDS: &[&str] = &[
    "companyID",
    "companyLocationID",
    "contactID",
    "configurationItemType",
    "referenceTitle",
    "referenceNumber",
    "serialNumber",
    "productID",
    "isActive",
    "rmmDeviceUID",
    "installDate",
    "warrantyExpirationDate",
];
const LOCATION_FIELDS: &[&str] = &[
    "companyID",
    "name",
    "address1",
    "address2",
    "city",
    "state",
    "postalCode",
    "countryID",
    "phone",
    "isActive",
    "isPrimary",
];
/// Company fields copied into the org's `attributes` (`ORG.ATTRIBUTES.city` …).
const ATTRIBUTE_FIELDS: &[&str] = &[
    "companyName",
    "companyNumber",
    "companyType",
    "classification",
    "phone",
    "webAddress",
    "address1",
    "address2",
    "city",
    "state",
    "postalCode",
    "countryID",
];

/// A sync failed before it could plan anything.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncError(pub String);

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        SyncError(msg)
    }
}

impl From<RootOrgError> for SyncError {
    fn from(e: RootOrgError) -> Self {
        match e {
            RootOrgError::Store(e) => e.into(),
            other => SyncError(other.to_string()),
        }
    }
}

/// Result alias.
pub type Result<T, E = SyncError> = std::result::Result<T, E>;

/// Preview (plan and report, change nothing) or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan and report only (the run is recorded as a preview).
    Preview,
    /// Plan and perform.
    Apply,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Preview => "preview",
            Mode::Apply => "apply",
        }
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Use this integration instance of the org instead of its default.
    pub integration: Option<String>,
}

/// The stored sync settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The nightly run's cron schedule (`None`: no scheduled run).
    pub schedule: Option<String>,
    /// The schedule's IANA time zone.
    pub timezone: String,
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
        }
    }
}

/// The sync settings (defaults when never set).
///
/// # Errors
/// Store failures.
pub async fn settings(store: &dyn Store) -> Result<Settings> {
    Ok(store
        .get_setting(SETTINGS_KEY)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Stores the sync settings.
///
/// # Errors
/// Store failures.
pub async fn save_settings(store: &dyn Store, s: &Settings) -> Result<()> {
    store
        .set_setting(SETTINGS_KEY, &serde_json::to_string(s).expect("serializes"))
        .await?;
    Ok(())
}

async fn json_setting<T: for<'a> Deserialize<'a> + Default>(
    store: &dyn Store,
    key: &str,
) -> Result<T> {
    Ok(store
        .get_setting(key)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

async fn set_json_setting<T: Serialize>(store: &dyn Store, key: &str, v: &T) -> Result<()> {
    store
        .set_setting(key, &serde_json::to_string(v).expect("serializes"))
        .await?;
    Ok(())
}

/// Records to create at the next apply whatever the auto-create toggles say (by kind).
pub type Approved = BTreeMap<String, Vec<String>>;

/// Marks a company, user or configuration item to be created at the next apply (and lifts its
/// exclusion).
///
/// # Errors
/// Store failures.
pub async fn approve(store: &dyn Store, kind: &str, external_id: &str) -> Result<()> {
    if let Some(ex) = exclusion_kind(kind) {
        store.unexclude(ex, external_id).await?;
    }
    let mut approved: Approved = json_setting(store, APPROVED_KEY).await?;
    let list = approved.entry(kind.to_string()).or_default();
    if !list.iter().any(|x| x == external_id) {
        list.push(external_id.to_string());
    }
    set_json_setting(store, APPROVED_KEY, &approved).await
}

/// Manual user matches: resource id → weft user record id.
///
/// # Errors
/// Store failures.
pub async fn user_matches(store: &dyn Store) -> Result<BTreeMap<String, String>> {
    json_setting(store, USER_MATCHES_KEY).await
}

/// Matches a resource to a weft user record (directory source `weft`, kind `user`) by hand.
///
/// # Errors
/// The user record does not exist; store failures.
pub async fn match_user(store: &dyn Store, resource_id: &str, user_id: &str) -> Result<()> {
    let users = store.directory(LOCAL_USERS, "user", None).await?;
    if !users.iter().any(|u| u.external_id == user_id) {
        return Err(SyncError(format!(
            "no weft user record `{user_id}` (directory source `{LOCAL_USERS}`, kind `user`)"
        )));
    }
    store.unexclude(EXCLUDE_USER, resource_id).await?;
    let mut m = user_matches(store).await?;
    m.insert(resource_id.to_string(), user_id.to_string());
    set_json_setting(store, USER_MATCHES_KEY, &m).await
}

/// Matches a company to an org by hand (replacing the org's previous link and lifting the
/// company's exclusion) — by the same rule as `weft mapping set`
/// ([`weft_engine::org::link_external`]): a company linked to another org is refused.
///
/// # Errors
/// Unknown org; the company is linked to another org; store failures.
pub async fn match_company(store: &dyn Store, company_id: &str, org: &str) -> Result<OrgRecord> {
    let org = store.org(org).await?;
    let name = store
        .directory(SOURCE, "company", None)
        .await?
        .into_iter()
        .find(|d| d.external_id == company_id)
        .map(|d| d.name);
    weft_engine::org::link_external(store, &org.id, SOURCE, company_id, name).await?;
    Ok(org)
}

/// The exclusion kind of a record kind (`company`, `user`).
pub fn exclusion_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "company" => Some(EXCLUDE_COMPANY),
        "user" => Some(EXCLUDE_USER),
        _ => None,
    }
}

/// Excludes a company or user from matching and creation (remembered across runs). A
/// company linked to an org is refused, as `weft mapping exclude` refuses it
/// ([`weft_engine::org::exclude_external`]): unlink it first.
///
/// # Errors
/// Store failures; a kind that cannot be excluded; a linked company.
pub async fn exclude(store: &dyn Store, kind: &str, external_id: &str) -> Result<()> {
    let ex = exclusion_kind(kind).ok_or_else(|| {
        SyncError(format!(
            "only companies and users can be excluded, not `{kind}`"
        ))
    })?;
    let known = store
        .directory(SOURCE, kind, None)
        .await?
        .into_iter()
        .find(|d| d.external_id == external_id);
    let name = known.as_ref().map(|d| d.name.as_str());
    if kind == "company" {
        weft_engine::org::exclude_external(store, ex, external_id, name).await?;
    } else {
        store.exclude(ex, external_id, name).await?;
    }
    if kind == "user" {
        let mut m = user_matches(store).await?;
        if m.remove(external_id).is_some() {
            set_json_setting(store, USER_MATCHES_KEY, &m).await?;
        }
    }
    Ok(())
}

/// What one entity kind's run did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
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
    /// one by id.
    pub items: Vec<PreviewItem>,
}

/// One record of a sync preview.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PreviewItem {
    /// The PSA's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `create`, `pending`, `match`, `exclude` or `deactivate`.
    pub change: &'static str,
}

impl KindReport {
    fn note(&mut self, id: &str, name: &str, change: &'static str) {
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
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// The sync run's id.
    pub run_id: i64,
    /// The synced org.
    pub org: String,
    /// Preview or apply.
    pub mode: Mode,
    /// No apply had run for this org before.
    pub first_sync: bool,
    /// Per entity kind, in [`KINDS`] order.
    pub kinds: BTreeMap<String, KindReport>,
    /// Records not imported and why.
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

fn is_active(v: &Value) -> bool {
    match v.get("isActive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => true,
    }
}

fn id_of(v: &Value) -> Option<String> {
    match v.get("id") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn str_field<'a>(v: &'a Value, f: &str) -> &'a str {
    v.get(f)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
}

fn full_name(v: &Value) -> String {
    let n = format!("{} {}", str_field(v, "firstName"), str_field(v, "lastName"));
    n.trim().to_string()
}

/// The fields weft keeps: the fetched ones, without `id` and user-defined fields.
fn data_of(v: &Value, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        m.insert((*f).to_string(), v.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

async fn fetch(client: &Client, entity: &str, fields: &[&str]) -> Result<Vec<Value>> {
    let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    client
        .query(entity, &[], &fields, None)
        .await
        .map_err(|e| SyncError(format!("cannot read Autotask {entity}: {e}")))
}

/// The plan of one record.
struct Planned {
    record: DirectoryRecord,
    old: Option<DirectoryRecord>,
    /// How reports name it.
    label: String,
}

/// Accumulates a kind's plan.
#[derive(Default)]
struct KindPlan {
    report: KindReport,
    save: Vec<DirectoryRecord>,
    seen: HashSet<String>,
}

impl KindPlan {
    /// Decides what a (non-excluded) record's change is and queues it when it changed.
    fn settle(&mut self, p: Planned, new_state_counts: &str) {
        let Planned { record, old, label } = p;
        self.seen.insert(record.external_id.clone());
        match &old {
            None => {
                match new_state_counts {
                    "created" => {
                        self.report.created += 1;
                        self.report.to_create.push(label.clone());
                        self.report.note(&record.external_id, &label, "create");
                    }
                    "pending" => {
                        self.report.pending += 1;
                        self.report.pending_names.push(label.clone());
                        self.report.note(&record.external_id, &label, "pending");
                    }
                    _ => {}
                }
                self.save.push(record);
            }
            Some(old) => {
                let changed = old.org_id != record.org_id
                    || old.name != record.name
                    || old.data != record.data
                    || old.active != record.active
                    || old.state != record.state;
                let became_created = (old.state == "pending" || old.state == "excluded")
                    && record.state == "created";
                if became_created {
                    self.report.created += 1;
                    self.report.to_create.push(label.clone());
                    self.report.note(&record.external_id, &label, "create");
                } else if record.state == "pending" {
                    self.report.pending += 1;
                    self.report.pending_names.push(label.clone());
                    self.report.note(&record.external_id, &label, "pending");
                } else if old.active && !record.active {
                    self.report.deactivated += 1;
                    self.report.deactivated_names.push(label.clone());
                    self.report.note(&record.external_id, &label, "deactivate");
                } else if changed {
                    self.report.updated += 1;
                } else {
                    self.report.unchanged += 1;
                }
                if changed {
                    let mut r = record;
                    r.updated_at = now_rfc3339();
                    self.save.push(r);
                }
            }
        }
    }

    /// A record left out of the import (inactive, filtered, of a company not synced …).
    fn skip(&mut self, id: &str) {
        self.seen.insert(id.to_string());
        self.report.skipped += 1;
    }

    /// An excluded record: listed, and its directory record (if any) marked excluded.
    fn exclude(&mut self, id: &str, name: &str, old: Option<&DirectoryRecord>) {
        self.seen.insert(id.to_string());
        self.report.excluded += 1;
        self.report.excluded_names.push(name.to_string());
        self.report.note(id, name, "exclude");
        if let Some(o) = old
            && o.state != "excluded"
        {
            let mut r = o.clone();
            r.state = "excluded".into();
            r.updated_at = now_rfc3339();
            self.save.push(r);
        }
    }

    /// A record newly linked to an existing org or user (`target` names it).
    fn matched(&mut self, id: &str, name: &str, target: &str, record: DirectoryRecord) {
        self.seen.insert(id.to_string());
        self.report.matched += 1;
        self.report.to_match.push(format!("{name} → {target}"));
        self.report.note(id, name, "match");
        self.save.push(record);
    }

    /// Known records the PSA no longer returns: inactive.
    fn gone(&mut self, known: &HashMap<String, DirectoryRecord>) {
        let mut ids: Vec<&String> = known.keys().collect();
        ids.sort();
        for id in ids {
            if self.seen.contains(id) {
                continue;
            }
            let old = &known[id];
            if old.active && old.state != "excluded" && old.state != "pending" {
                let mut r = old.clone();
                r.active = false;
                r.updated_at = now_rfc3339();
                self.report.deactivated += 1;
                self.report.deactivated_names.push(r.name.clone());
                self.report.note(&r.external_id, &r.name, "deactivate");
                self.save.push(r);
            }
        }
    }
}

fn record(
    kind: &str,
    id: &str,
    org: Option<String>,
    name: String,
    data: Value,
    active: bool,
    state: &str,
) -> DirectoryRecord {
    DirectoryRecord {
        source: SOURCE.into(),
        kind: kind.into(),
        external_id: id.into(),
        org_id: org,
        name,
        data,
        active,
        state: state.into(),
        updated_at: now_rfc3339(),
    }
}

/// Runs the sync for `org` (default: the root org) with the org's Autotask integration.
///
/// # Errors
/// No org or integration; the PSA cannot be read; store failures. Failures after the run
/// started are recorded in the run.
pub async fn run(
    engine: &Engine,
    org: Option<&str>,
    mode: Mode,
    options: &Options,
) -> Result<SyncReport> {
    let store = engine.store().as_ref();
    let org = match org {
        Some(o) => store.org(o).await.map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                SyncError(format!("no organization `{o}`"))
            }
            _ => e.into(),
        })?,
        None => root_org(store).await?,
    };
    let integration = engine
        .integration_for(&org.id, "autotask", options.integration.as_deref())
        .await
        .map_err(|e| SyncError(e.to_string()))?;
    let client = Client::from_integration(&integration).map_err(|e| SyncError(e.message))?;
    let run_id = store.start_sync_run(SOURCE, &org.id, mode.as_str()).await?;
    match sync(store, &client, &org, mode, run_id).await {
        Ok(report) => {
            store
                .finish_sync_run(run_id, &report.counts(), &json!(report.errors))
                .await?;
            Ok(report)
        }
        Err(e) => {
            store
                .finish_sync_run(run_id, &json!({}), &json!([{"error": e.0}]))
                .await?;
            Err(e)
        }
    }
}

/// Whether `--org`'s integration resolves (the nightly run only runs when it does).
pub async fn has_integration(engine: &Engine, org: &OrgRecord) -> bool {
    engine
        .integration_for(&org.id, "autotask", None)
        .await
        .is_ok()
}

/// What the PSA returned, one list per entity read.
struct Fetched {
    companies: Vec<Value>,
    resources: Vec<Value>,
    contacts: Vec<Value>,
    cis: Vec<Value>,
    locations: Vec<Value>,
}

impl Fetched {
    async fn read(client: &Client) -> Result<Fetched> {
        let (companies, resources, contacts, cis, locations) = tokio::try_join!(
            fetch(client, "Companies", COMPANY_FIELDS),
            fetch(client, "Resources", RESOURCE_FIELDS),
            fetch(client, "Contacts", CONTACT_FIELDS),
            fetch(client, "ConfigurationItems", CI_FIELDS),
            fetch(client, "CompanyLocations", LOCATION_FIELDS),
        )?;
        Ok(Fetched {
            companies,
            resources,
            contacts,
            cis,
            locations,
        })
    }
}

/// What every planner reads: the synced org and this run's settings and approvals.
struct Context<'a> {
    store: &'a dyn Store,
    root: &'a OrgRecord,
    settings: Settings,
    /// No apply has run for this org yet: everything the preview lists is created.
    first: bool,
    approved: Approved,
}

impl<'a> Context<'a> {
    async fn load(store: &'a dyn Store, root: &'a OrgRecord) -> Result<Context<'a>> {
        let settings = settings(store).await?;
        let first = store
            .get_setting(&initialized_key(&root.id))
            .await?
            .is_none();
        let approved: Approved = json_setting(store, APPROVED_KEY).await?;
        Ok(Context {
            store,
            root,
            settings,
            first,
            approved,
        })
    }

    /// Has a reviewer approved creating this pending record?
    fn is_approved(&self, kind: &str, id: &str) -> bool {
        self.approved
            .get(kind)
            .is_some_and(|l| l.iter().any(|x| x == id))
    }

    /// The directory records of `kind` from earlier runs, by PSA id.
    async fn known(&self, kind: &str) -> Result<HashMap<String, DirectoryRecord>> {
        Ok(self
            .store
            .directory(SOURCE, kind, None)
            .await?
            .into_iter()
            .map(|d| (d.external_id.clone(), d))
            .collect())
    }
}

/// What a run changes, gathered by the planners and written by [`apply`].
#[derive(Default)]
struct Changes {
    /// Every org as it will be (existing and new), for lookups by later planners.
    orgs: Vec<OrgRecord>,
    /// Orgs that are new or changed (an org may be listed more than once).
    org_saves: Vec<OrgRecord>,
    /// Company ↔ org links made by this run.
    new_mappings: Vec<OrgMapping>,
    /// Directory records that are new or changed.
    directory: Vec<DirectoryRecord>,
    /// Exclusions made by id before the record was known: `(exclusion kind, id, name)`.
    name_exclusions: Vec<(&'static str, String, String)>,
}

/// PSA records sorted by numeric id (records without one last), so that runs are stable.
fn by_id(items: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by_key(|c| c.get("id").and_then(Value::as_i64).unwrap_or(i64::MAX));
    sorted
}

async fn sync(
    store: &dyn Store,
    client: &Client,
    root: &OrgRecord,
    mode: Mode,
    run_id: i64,
) -> Result<SyncReport> {
    let fetched = Fetched::read(client).await?;
    let cx = Context::load(store, root).await?;
    let manual_users = user_matches(store).await?;
    let mut changes = Changes::default();
    let mut kinds: BTreeMap<String, KindReport> = BTreeMap::new();
    let mut errors: Vec<Value> = Vec::new();

    let companies = CompanyPlanner::new(&cx).await?.plan(&fetched.companies);
    let company_org = companies.company_org();
    let (report, excluded_companies) = companies.finish(&mut changes);
    kinds.insert("company".into(), report);

    let users = UserPlanner::new(&cx, manual_users)
        .await?
        .plan(&fetched.resources);
    let (report, unnamed_users) = users.finish(&mut changes);
    kinds.insert("user".into(), report);

    let org_names: HashMap<String, String> = changes
        .orgs
        .iter()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    for (kind, items, fields) in [
        ("contact", &fetched.contacts, CONTACT_FIELDS),
        ("configuration", &fetched.cis, CI_FIELDS),
        ("location", &fetched.locations, LOCATION_FIELDS),
    ] {
        let linked = LinkedKind {
            kind,
            fields,
            company_org: &company_org,
            org_names: &org_names,
        };
        let mut plan = linked.plan(&cx, items, &mut errors).await?;
        changes.directory.append(&mut plan.save);
        kinds.insert(kind.into(), plan.report);
    }

    changes.name_exclusions = name_exclusions(&fetched, &excluded_companies, &unnamed_users);
    if mode == Mode::Apply {
        apply(&cx, &changes).await?;
    }
    Ok(SyncReport {
        run_id,
        org: root.id.clone(),
        mode,
        first_sync: cx.first,
        kinds,
        errors,
    })
}

/// Exclusions made by id alone (before the record was known), with the name the PSA now
/// gives the record: companies, then resources, in the PSA's order.
fn name_exclusions(
    fetched: &Fetched,
    excluded_companies: &HashMap<String, Option<String>>,
    unnamed_users: &HashSet<String>,
) -> Vec<(&'static str, String, String)> {
    let companies = fetched.companies.iter().filter_map(|c| {
        let id = id_of(c)?;
        matches!(excluded_companies.get(&id), Some(None))
            .then(|| (EXCLUDE_COMPANY, id, str_field(c, "companyName").to_string()))
    });
    let users = fetched.resources.iter().filter_map(|r| {
        let id = id_of(r)?;
        unnamed_users
            .contains(&id)
            .then(|| (EXCLUDE_USER, id, full_name(r)))
    });
    companies.chain(users).collect()
}

/// Writes a planned run: exclusion names, then orgs (new ones, then changed ones), then
/// links, then the directory, then the first-sync mark; approvals are used up.
async fn apply(cx: &Context<'_>, changes: &Changes) -> Result<()> {
    let store = cx.store;
    for (kind, id, name) in &changes.name_exclusions {
        store.exclude(kind, id, Some(name)).await?;
    }
    let mut saved = HashSet::new();
    for o in changes
        .orgs
        .iter()
        .filter(|o| changes.org_saves.iter().any(|s| s.id == o.id))
    {
        if saved.insert(o.id.clone()) {
            store.save_org(o).await?;
        }
    }
    for m in &changes.new_mappings {
        store.set_mapping(m).await?;
    }
    if !changes.directory.is_empty() {
        store.save_directory(&changes.directory).await?;
    }
    if cx.first {
        store
            .set_setting(&initialized_key(&cx.root.id), &now_rfc3339())
            .await?;
    }
    if !cx.approved.is_empty() {
        set_json_setting(store, APPROVED_KEY, &Approved::new()).await?;
    }
    Ok(())
}

/// How a company came to have its org.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OrgLink {
    /// Linked to an org that already existed (by mapping, by name, or company 0 to the root).
    Matched,
    /// An org this sync created for it.
    Created,
}

/// Plans companies ↔ orgs: which org each company belongs to (creating orgs for new ones
/// when allowed), the org's attributes and active flag, and the company's directory record.
struct CompanyPlanner<'c, 'a> {
    cx: &'c Context<'a>,
    plan: KindPlan,
    known: HashMap<String, DirectoryRecord>,
    /// Excluded company ids, with the name recorded at exclusion (if any).
    excluded: HashMap<String, Option<String>>,
    orgs: Vec<OrgRecord>,
    org_saves: Vec<OrgRecord>,
    /// Company id → org id, existing mappings and new ones.
    org_of_ext: HashMap<String, String>,
    /// Orgs linked to some company (an org links to one company).
    mapped_orgs: HashSet<String>,
    new_mappings: Vec<OrgMapping>,
}

impl<'c, 'a> CompanyPlanner<'c, 'a> {
    async fn new(cx: &'c Context<'a>) -> Result<Self> {
        let store = cx.store;
        let orgs: Vec<OrgRecord> = store.list_orgs().await?;
        let mappings = store.mappings(SOURCE).await?;
        let excluded = store
            .exclusions(EXCLUDE_COMPANY)
            .await?
            .into_iter()
            .collect();
        let known = cx.known("company").await?;
        Ok(CompanyPlanner {
            cx,
            plan: KindPlan::default(),
            known,
            excluded,
            orgs,
            org_saves: Vec::new(),
            org_of_ext: mappings
                .iter()
                .map(|m| (m.external_id.clone(), m.org_id.clone()))
                .collect(),
            mapped_orgs: mappings.iter().map(|m| m.org_id.clone()).collect(),
            new_mappings: Vec::new(),
        })
    }

    /// Plans every company, then the ones gone from the PSA.
    fn plan(mut self, companies: &[Value]) -> Self {
        for c in by_id(companies) {
            self.company(c);
        }
        self.gone();
        self
    }

    fn company(&mut self, c: &Value) {
        let Some(id) = id_of(c) else { return };
        let name = str_field(c, "companyName").to_string();
        let name = if name.is_empty() {
            format!("Company {id}")
        } else {
            name
        };
        let active = is_active(c);
        let old = self.known.get(&id).cloned();
        if self.excluded.contains_key(&id) {
            self.plan.exclude(&id, &name, old.as_ref());
            return;
        }
        let (org_id, how) = match self.existing_org(&id, &name, old.as_ref()) {
            Some(found) => found,
            None => {
                if old.is_none() && (!active || !self.type_wanted(c)) {
                    self.plan.skip(&id);
                    return;
                }
                let cx = self.cx;
                if active
                    && (cx.first
                        || cx.settings.auto_create_clients
                        || cx.is_approved("company", &id))
                {
                    (self.create_org(&id, &name), OrgLink::Created)
                } else {
                    let data = data_of(c, COMPANY_FIELDS);
                    let r = record("company", &id, None, name, data, active, "pending");
                    let label = r.name.clone();
                    self.plan.settle(
                        Planned {
                            record: r,
                            old,
                            label,
                        },
                        "pending",
                    );
                    return;
                }
            }
        };
        self.map(&id, &name, &org_id);
        self.follow_company(&org_id, c, active);
        self.settle_link(c, &id, name, &org_id, how, old);
    }

    /// The org a company already belongs to: its mapping, the synced root for company 0,
    /// or an unlinked org of the same name.
    fn existing_org(
        &self,
        id: &str,
        name: &str,
        old: Option<&DirectoryRecord>,
    ) -> Option<(String, OrgLink)> {
        let root = self.cx.root;
        if let Some(org_id) = self.org_of_ext.get(id) {
            let how = match old {
                Some(o) if o.state == "created" => OrgLink::Created,
                _ => OrgLink::Matched,
            };
            return Some((org_id.clone(), how));
        }
        if id == "0" && root.parent_id.is_none() && !self.mapped_orgs.contains(&root.id) {
            return Some((root.id.clone(), OrgLink::Matched));
        }
        let key = name_key(name);
        self.orgs
            .iter()
            .find(|o| name_key(&o.name) == key && !self.mapped_orgs.contains(&o.id))
            .map(|o| (o.id.clone(), OrgLink::Matched))
    }

    /// Is the company of a type orgs are created for?
    fn type_wanted(&self, c: &Value) -> bool {
        let types = &self.cx.settings.company_types;
        types.is_empty()
            || c.get("companyType")
                .and_then(Value::as_i64)
                .is_some_and(|t| types.contains(&t))
    }

    /// A new org below the synced one, named after the company (its id added when the name
    /// or the slug is taken); returns its id.
    fn create_org(&mut self, id: &str, name: &str) -> String {
        let taken = |n: &str| self.orgs.iter().any(|o| name_key(&o.name) == name_key(n));
        let org_name = if taken(name) {
            format!("{name} ({id})")
        } else {
            name.to_string()
        };
        let mut oid = slug(&org_name);
        if oid.is_empty() {
            oid = format!("company-{id}");
        }
        if self.orgs.iter().any(|o| o.id == oid) {
            oid = format!("{oid}-{id}");
        }
        self.orgs.push(OrgRecord {
            id: oid.clone(),
            name: org_name,
            parent_id: Some(self.cx.root.id.clone()),
            tags: Vec::new(),
            attributes: json!({}),
            active: true,
            created_at: now_rfc3339(),
            updated_at: now_rfc3339(),
        });
        oid
    }

    /// Records the company ↔ org link unless it exists.
    fn map(&mut self, id: &str, name: &str, org_id: &str) {
        if self.org_of_ext.contains_key(id) {
            return;
        }
        self.org_of_ext.insert(id.to_string(), org_id.to_string());
        self.mapped_orgs.insert(org_id.to_string());
        self.new_mappings.push(OrgMapping {
            org_id: org_id.to_string(),
            kind: SOURCE.into(),
            external_id: id.to_string(),
            external_name: Some(name.to_string()),
            created_at: now_rfc3339(),
        });
    }

    /// The org keeps the company's fields and follows its active flag.
    fn follow_company(&mut self, org_id: &str, c: &Value, active: bool) {
        let Some(o) = self.orgs.iter_mut().find(|o| o.id == org_id) else {
            return;
        };
        let mut attrs = o.attributes.as_object().cloned().unwrap_or_default();
        for f in ATTRIBUTE_FIELDS {
            attrs.insert((*f).to_string(), c.get(*f).cloned().unwrap_or(Value::Null));
        }
        attrs.insert(
            "autotaskCompanyID".into(),
            c.get("id").cloned().unwrap_or(Value::Null),
        );
        let attrs = Value::Object(attrs);
        if o.attributes != attrs || o.active != active {
            o.attributes = attrs;
            o.active = active;
            o.updated_at = now_rfc3339();
            self.org_saves.push(o.clone());
        }
    }

    /// The company's directory record: a new link is reported as a match or a creation,
    /// anything else settles as usual.
    fn settle_link(
        &mut self,
        c: &Value,
        id: &str,
        name: String,
        org_id: &str,
        how: OrgLink,
        old: Option<DirectoryRecord>,
    ) {
        let org_name = self
            .orgs
            .iter()
            .find(|o| o.id == org_id)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| org_id.to_string());
        let state = match how {
            OrgLink::Created => "created",
            OrgLink::Matched => "matched",
        };
        let data = data_of(c, COMPANY_FIELDS);
        let active = is_active(c);
        let r = record(
            "company",
            id,
            Some(org_id.to_string()),
            name.clone(),
            data,
            active,
            state,
        );
        let is_new_link = old.as_ref().is_none_or(|o| {
            o.state == "pending" || o.state == "excluded" || o.org_id.as_deref() != Some(org_id)
        });
        match how {
            OrgLink::Matched if is_new_link => {
                self.plan.matched(id, &name, &org_name, r);
            }
            OrgLink::Created if is_new_link => {
                self.plan.seen.insert(id.to_string());
                self.plan.report.created += 1;
                self.plan.report.to_create.push(name.clone());
                self.plan.report.note(id, &name, "create");
                self.plan.save.push(r);
            }
            _ => {
                let label = r.name.clone();
                self.plan.settle(
                    Planned {
                        record: r,
                        old,
                        label,
                    },
                    state,
                );
            }
        }
    }

    /// Companies gone from the PSA: inactive, and so are their orgs.
    fn gone(&mut self) {
        let before = self.plan.save.len();
        self.plan.gone(&self.known);
        for r in &self.plan.save[before..] {
            if let Some(oid) = &r.org_id
                && let Some(o) = self.orgs.iter_mut().find(|o| &o.id == oid)
                && o.active
            {
                o.active = false;
                o.updated_at = now_rfc3339();
                self.org_saves.push(o.clone());
            }
        }
    }

    /// The org of each synced company (excluded and pending companies have none).
    fn company_org(&self) -> HashMap<String, String> {
        self.org_of_ext
            .iter()
            .filter(|(ext, _)| !self.excluded.contains_key(*ext))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Hands the planned orgs, links and records to `changes`; returns the report and the
    /// company exclusions.
    fn finish(mut self, changes: &mut Changes) -> (KindReport, HashMap<String, Option<String>>) {
        changes.directory.append(&mut self.plan.save);
        changes.orgs = self.orgs;
        changes.org_saves = self.org_saves;
        changes.new_mappings = self.new_mappings;
        (self.plan.report, self.excluded)
    }
}

/// Plans resources ↔ users: each resource is linked to a weft user (by hand, kept from an
/// earlier run, or by identical name) or recorded for one to be created.
struct UserPlanner<'c, 'a> {
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
    async fn new(cx: &'c Context<'a>, manual: BTreeMap<String, String>) -> Result<Self> {
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
    fn plan(mut self, resources: &[Value]) -> Self {
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
        if old.is_none() && str_field(r, "resourceType").eq_ignore_ascii_case("api") {
            // API-only users (integrations like this one) are not people.
            self.plan.skip(&id);
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
    fn finish(mut self, changes: &mut Changes) -> (KindReport, HashSet<String>) {
        changes.directory.append(&mut self.plan.save);
        (self.plan.report, self.unnamed)
    }
}

/// Plans one kind of record that belongs to a company — contacts, configuration items or
/// locations — linked to the org of its company; records of companies not synced are not
/// imported.
struct LinkedKind<'a> {
    /// `contact`, `configuration` or `location`.
    kind: &'static str,
    /// The fields kept.
    fields: &'static [&'static str],
    /// Company id → org id, for synced companies.
    company_org: &'a HashMap<String, String>,
    /// Org id → name, for report labels.
    org_names: &'a HashMap<String, String>,
}

impl LinkedKind<'_> {
    async fn plan(
        &self,
        cx: &Context<'_>,
        items: &[Value],
        errors: &mut Vec<Value>,
    ) -> Result<KindPlan> {
        let mut plan = KindPlan::default();
        let known = cx.known(self.kind).await?;
        for v in by_id(items) {
            let Some(id) = id_of(v) else { continue };
            let old = known.get(&id).cloned();
            self.item(cx, &mut plan, v, id, old, errors);
        }
        plan.gone(&known);
        Ok(plan)
    }

    fn item(
        &self,
        cx: &Context<'_>,
        plan: &mut KindPlan,
        v: &Value,
        id: String,
        old: Option<DirectoryRecord>,
        errors: &mut Vec<Value>,
    ) {
        let kind = self.kind;
        let active = is_active(v);
        let company = match v.get("companyID") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let name = self.name_of(v);
        if let Some(missing) = self.missing(v, &name) {
            plan.skip(&id);
            errors.push(json!({
                "kind": kind,
                "external_id": id,
                "company_id": company,
                "error": format!("configuration item {id} is missing {missing}: not imported"),
            }));
            return;
        }
        let Some(org_id) = self.company_org.get(&company).cloned() else {
            // Its company is not synced (excluded, pending, skipped): not imported.
            plan.skip(&id);
            return;
        };
        if old.is_none() && !active {
            plan.skip(&id);
            return;
        }
        let state = match &old {
            Some(o) if o.state != "pending" => o.state.clone(),
            _ if kind != "configuration"
                || cx.first
                || cx.settings.auto_create_configurations
                || cx.is_approved("configuration", &id) =>
            {
                "created".into()
            }
            _ => "pending".into(),
        };
        let name = if name.is_empty() {
            format!("{kind} {id}")
        } else {
            name
        };
        let org_name = self
            .org_names
            .get(&org_id)
            .map_or(org_id.as_str(), String::as_str);
        let label = format!("{name} ({org_name})");
        // Pending records belong to no org yet (templates see only imported ones).
        let org = (state != "pending").then_some(org_id);
        let rec = record(
            kind,
            &id,
            org,
            name,
            data_of(v, self.fields),
            active,
            &state,
        );
        plan.settle(
            Planned {
                record: rec,
                old,
                label,
            },
            &state,
        );
    }

    /// The record's name in the PSA (may be empty).
    fn name_of(&self, v: &Value) -> String {
        match self.kind {
            "contact" => full_name(v),
            "configuration" => str_field(v, "referenceTitle").to_string(),
            _ => str_field(v, "name").to_string(),
        }
    }

    /// For a configuration item, the required fields it lacks (the PSA allows them empty,
    /// weft's directory does not).
    fn missing(&self, v: &Value, name: &str) -> Option<String> {
        if self.kind != "configuration" {
            return None;
        }
        let mut missing = Vec::new();
        if v.get("configurationItemType").is_none_or(Value::is_null) {
            missing.push("configurationItemType (asset type)");
        }
        if name.is_empty() {
            missing.push("referenceTitle (reference name)");
        }
        (!missing.is_empty()).then(|| missing.join(" and "))
    }
}

/// The nightly run: at each slot of the configured schedule, applies the sync for the root
/// org when an Autotask integration resolves for it. Settings are re-read every minute, so
/// a changed schedule takes effect without a restart. Each slot runs once across processes
/// sharing the database. Never returns; abort the task to stop it.
pub async fn nightly(engine: Arc<Engine>) {
    let mut last = jiff::Timestamp::now();
    loop {
        let store = engine.store().as_ref();
        let wait = match settings(store).await {
            Ok(s) => match next_slot(&s, last) {
                Some(slot) => {
                    let now = jiff::Timestamp::now();
                    if slot <= now {
                        last = slot;
                        run_slot(&engine, slot).await;
                        std::time::Duration::from_secs(1)
                    } else {
                        let d = (slot - now).get_seconds().clamp(1, 60);
                        std::time::Duration::from_secs(u64::try_from(d).unwrap_or(60))
                    }
                }
                None => std::time::Duration::from_secs(60),
            },
            Err(e) => {
                tracing::error!(error = %e, "autotask sync: cannot read the settings");
                std::time::Duration::from_secs(60)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The first slot of the schedule after `after` (`None` when off or invalid).
pub fn next_slot(s: &Settings, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let expr = s.schedule.as_deref()?;
    let schedule = weft_engine::cron::Schedule::parse(expr).ok()?;
    let tz = jiff::tz::TimeZone::get(&s.timezone).ok()?;
    schedule.next_after(after, &tz)
}

async fn run_slot(engine: &Arc<Engine>, slot: jiff::Timestamp) {
    let store = engine.store().as_ref();
    let root = match root_org(store).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "autotask sync: no scheduled run");
            return;
        }
    };
    // The first sync is a person's decision (preview, then apply): the schedule only keeps
    // an initialized directory current.
    match store.get_setting(&initialized_key(&root.id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::info!(
                "autotask sync: skipped until the first `weft sync autotask --apply` has run"
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "autotask sync: store failure");
            return;
        }
    }
    if !has_integration(engine, &root).await {
        tracing::debug!("autotask sync: no Autotask integration for the root org");
        return;
    }
    // One process per slot (processes sharing the database).
    match store
        .ensure_setting(&format!("sync.autotask.slot.{}.{slot}", root.id), "")
        .await
    {
        Ok((_, true)) => {}
        Ok((_, false)) => return,
        Err(e) => {
            tracing::error!(error = %e, "autotask sync: store failure");
            return;
        }
    }
    match run(engine, Some(&root.id), Mode::Apply, &Options::default()).await {
        Ok(report) => {
            let c = report.counts();
            tracing::info!(run = report.run_id, counts = %c, errors = report.errors.len(), "autotask nightly sync done");
        }
        Err(e) => tracing::error!(error = %e, "autotask nightly sync failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_nightly_at_two_utc_and_off_means_none() {
        let s = Settings::default();
        let after: jiff::Timestamp = "2026-11-23T18:00:00Z".parse().unwrap();
        assert_eq!(
            next_slot(&s, after).unwrap().to_string(),
            "2026-11-24T02:00:00Z"
        );
        let london = Settings {
            schedule: Some("30 1 * * *".into()),
            timezone: "Europe/London".into(),
            ..Settings::default()
        };
        let summer: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            next_slot(&london, summer).unwrap().to_string(),
            "2026-07-02T00:30:00Z"
        );
        let off = Settings {
            schedule: None,
            ..Settings::default()
        };
        assert!(next_slot(&off, after).is_none());
    }
}
