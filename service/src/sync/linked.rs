//! The planner of the records that belong to a company — contacts, configuration items and
//! locations — each linked to the org of its company.

use std::collections::HashMap;

use serde_json::{Value, json};
use weft_engine::store::DirectoryRecord;

use super::Result;
use super::plan::{
    Context, KindPlan, Planned, by_id, data_of, full_name, id_of, is_active, record, str_field,
};

/// The contact fields read and kept.
pub(super) const CONTACT_FIELDS: &[&str] = &[
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
/// The configuration item fields read and kept.
pub(super) const CI_FIELDS: &[&str] = &[
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
/// The company location fields read and kept.
pub(super) const LOCATION_FIELDS: &[&str] = &[
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

/// Plans one kind of record that belongs to a company — contacts, configuration items or
/// locations — linked to the org of its company; records of companies not synced are not
/// imported.
pub(super) struct LinkedKind<'a> {
    /// `contact`, `configuration` or `location`.
    pub(super) kind: &'static str,
    /// The fields kept.
    pub(super) fields: &'static [&'static str],
    /// Company id → org id, for synced companies.
    pub(super) company_org: &'a HashMap<String, String>,
    /// Org id → name, for report labels.
    pub(super) org_names: &'a HashMap<String, String>,
}

impl LinkedKind<'_> {
    pub(super) async fn plan(
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
