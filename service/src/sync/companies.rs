//! The company planner: which org each Autotask company belongs to (by mapping, by name, the
//! root for company 0, or a new org when allowed), the org's attributes and active flag, and
//! the company's directory record.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use weft_engine::action::now_rfc3339;
use weft_engine::org::{name_key, slug};
use weft_engine::store::{DirectoryRecord, OrgMapping, OrgRecord};

use super::Result;
use super::plan::{
    Changes, Context, KindPlan, Planned, by_id, data_of, id_of, is_active, record, str_field,
};
use super::report::KindReport;
use super::{EXCLUDE_COMPANY, SOURCE};

/// The company fields read and kept.
pub(super) const COMPANY_FIELDS: &[&str] = &[
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
pub(super) struct CompanyPlanner<'c, 'a> {
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
    pub(super) async fn new(cx: &'c Context<'a>) -> Result<Self> {
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
    pub(super) fn plan(mut self, companies: &[Value]) -> Self {
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
    pub(super) fn company_org(&self) -> HashMap<String, String> {
        self.org_of_ext
            .iter()
            .filter(|(ext, _)| !self.excluded.contains_key(*ext))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Hands the planned orgs, links and records to `changes`; returns the report and the
    /// company exclusions.
    pub(super) fn finish(
        mut self,
        changes: &mut Changes,
    ) -> (KindReport, HashMap<String, Option<String>>) {
        changes.directory.append(&mut self.plan.save);
        changes.orgs = self.orgs;
        changes.org_saves = self.org_saves;
        changes.new_mappings = self.new_mappings;
        (self.plan.report, self.excluded)
    }
}
