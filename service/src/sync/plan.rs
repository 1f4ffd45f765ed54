//! One run's plan: what the PSA returned, what every planner reads ([`Context`]), how a
//! kind's records settle ([`KindPlan`]), the planners in order (companies, users, then the
//! records linked to companies) and the writes of an apply.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};
use weft_actions::autotask::Client;
use weft_engine::action::now_rfc3339;
use weft_engine::store::{DirectoryRecord, OrgMapping, OrgRecord, Store};

use super::companies::{COMPANY_FIELDS, CompanyPlanner};
use super::linked::{CI_FIELDS, CONTACT_FIELDS, LOCATION_FIELDS, LinkedKind};
use super::records::{APPROVED_KEY, Approvals, user_matches};
use super::report::{KindReport, SyncReport};
use super::settings::{Settings, json_setting, set_json_setting, settings};
use super::users::{RESOURCE_FIELDS, UserPlanner};
use super::{EXCLUDE_COMPANY, EXCLUDE_USER, Mode, Result, SOURCE, initialized_key};
use crate::ServiceError;

pub(super) fn is_active(v: &Value) -> bool {
    match v.get("isActive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => true,
    }
}

pub(super) fn id_of(v: &Value) -> Option<String> {
    match v.get("id") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn str_field<'a>(v: &'a Value, f: &str) -> &'a str {
    v.get(f)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
}

pub(super) fn full_name(v: &Value) -> String {
    let n = format!("{} {}", str_field(v, "firstName"), str_field(v, "lastName"));
    n.trim().to_string()
}

/// The fields weft keeps: the fetched ones, without `id` and user-defined fields.
pub(super) fn data_of(v: &Value, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        m.insert((*f).to_string(), v.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

async fn fetch(
    client: &Client,
    entity: &str,
    fields: &[&str],
    progress: Option<&dyn super::Progress>,
) -> Result<Vec<Value>> {
    let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    let records = client
        .query(entity, &[], &fields, None)
        .await
        .map_err(|e| ServiceError::upstream(format!("cannot read Autotask {entity}: {e}"), e))?;
    if let Some(p) = progress {
        p.read(entity, records.len());
    }
    Ok(records)
}

/// The plan of one record.
pub(super) struct Planned {
    /// The record as it will be.
    pub(super) record: DirectoryRecord,
    /// The record as an earlier run left it.
    pub(super) old: Option<DirectoryRecord>,
    /// How reports name it.
    pub(super) label: String,
}

/// Accumulates a kind's plan.
#[derive(Default)]
pub(super) struct KindPlan {
    /// What the kind's run reports.
    pub(super) report: KindReport,
    /// Records that are new or changed.
    pub(super) save: Vec<DirectoryRecord>,
    /// PSA ids this run saw (the rest are gone).
    pub(super) seen: HashSet<String>,
}

impl KindPlan {
    /// Decides what a (non-excluded) record's change is and queues it when it changed.
    pub(super) fn settle(&mut self, p: Planned, new_state_counts: &str) {
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
    pub(super) fn skip(&mut self, id: &str) {
        self.seen.insert(id.to_string());
        self.report.skipped += 1;
    }

    /// An excluded record: listed, and its directory record (if any) marked excluded.
    pub(super) fn exclude(&mut self, id: &str, name: &str, old: Option<&DirectoryRecord>) {
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
    pub(super) fn matched(&mut self, id: &str, name: &str, target: &str, record: DirectoryRecord) {
        self.seen.insert(id.to_string());
        self.report.matched += 1;
        self.report.to_match.push(format!("{name} → {target}"));
        self.report.note(id, name, "match");
        self.save.push(record);
    }

    /// Known records the PSA no longer returns: inactive.
    pub(super) fn gone(&mut self, known: &HashMap<String, DirectoryRecord>) {
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

pub(super) fn record(
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

/// What the PSA returned, one list per entity read.
struct Fetched {
    companies: Vec<Value>,
    resources: Vec<Value>,
    contacts: Vec<Value>,
    cis: Vec<Value>,
    locations: Vec<Value>,
}

impl Fetched {
    async fn read(client: &Client, progress: Option<&dyn super::Progress>) -> Result<Fetched> {
        let (companies, resources, contacts, cis, locations) = tokio::try_join!(
            fetch(client, "Companies", COMPANY_FIELDS, progress),
            fetch(client, "Resources", RESOURCE_FIELDS, progress),
            fetch(client, "Contacts", CONTACT_FIELDS, progress),
            fetch(client, "ConfigurationItems", CI_FIELDS, progress),
            fetch(client, "CompanyLocations", LOCATION_FIELDS, progress),
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
pub(super) struct Context<'a> {
    /// The database.
    pub(super) store: &'a dyn Store,
    /// The synced org.
    pub(super) root: &'a OrgRecord,
    /// The sync settings.
    pub(super) settings: Settings,
    /// The integration's API user name (its `username` setting): that resource is no person.
    pub(super) api_user: String,
    /// No apply has run for this org yet: everything the preview lists is created.
    pub(super) first: bool,
    /// Records a reviewer approved for creation.
    pub(super) approved: Approvals,
}

impl<'a> Context<'a> {
    async fn load(
        store: &'a dyn Store,
        root: &'a OrgRecord,
        api_user: &str,
    ) -> Result<Context<'a>> {
        let settings = settings(store).await?;
        let first = store
            .get_setting(&initialized_key(&root.id))
            .await?
            .is_none();
        let approved: Approvals = json_setting(store, APPROVED_KEY).await?;
        Ok(Context {
            store,
            root,
            settings,
            api_user: api_user.to_string(),
            first,
            approved,
        })
    }

    /// Has a reviewer approved creating this pending record?
    pub(super) fn is_approved(&self, kind: &str, id: &str) -> bool {
        self.approved
            .get(kind)
            .is_some_and(|l| l.iter().any(|x| x == id))
    }

    /// The directory records of `kind` from earlier runs, by PSA id.
    pub(super) async fn known(&self, kind: &str) -> Result<HashMap<String, DirectoryRecord>> {
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
pub(super) struct Changes {
    /// Every org as it will be (existing and new), for lookups by later planners.
    pub(super) orgs: Vec<OrgRecord>,
    /// Orgs that are new or changed (an org may be listed more than once).
    pub(super) org_saves: Vec<OrgRecord>,
    /// Company ↔ org links made by this run.
    pub(super) new_mappings: Vec<OrgMapping>,
    /// Directory records that are new or changed.
    pub(super) directory: Vec<DirectoryRecord>,
    /// Exclusions made by id before the record was known: `(exclusion kind, id, name)`.
    name_exclusions: Vec<(&'static str, String, String)>,
}

/// PSA records sorted by numeric id (records without one last), so that runs are stable.
pub(super) fn by_id(items: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by_key(|c| c.get("id").and_then(Value::as_i64).unwrap_or(i64::MAX));
    sorted
}

/// Plans a run (and, applied, performs it).
pub(super) async fn sync(
    store: &dyn Store,
    client: &Client,
    root: &OrgRecord,
    mode: Mode,
    run_id: i64,
    progress: Option<&dyn super::Progress>,
) -> Result<SyncReport> {
    let fetched = Fetched::read(client, progress).await?;
    let cx = Context::load(store, root, &client.config().username).await?;
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
        set_json_setting(store, APPROVED_KEY, &Approvals::new()).await?;
    }
    Ok(())
}
