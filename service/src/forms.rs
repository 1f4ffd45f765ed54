//! Form use cases: deploying form files, listing and showing forms.
//!
//! Deploying a form is the same rule for `weft deploy` and `POST /api/forms`: a form that does
//! not validate is refused with its diagnostics and nothing is stored; a valid one is stored
//! as a new version, or left as is when it equals the latest.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use weft_engine::form::{Form, Item, Options};
use weft_engine::store::{FormRecord, Store, StoreErrorKind};

use crate::ServiceError;
use crate::workflows::{DeployError, Diagnostic, Invalid, located};

/// What [`deploy`] did.
#[derive(Debug, Clone)]
pub struct FormDeployment {
    /// The stored version (the latest when the source is unchanged).
    pub record: FormRecord,
    /// It, parsed.
    pub form: Arc<Form>,
    /// The warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// The source equals the latest version's: nothing new was stored.
    pub unchanged: bool,
}

/// Deploys a form file's YAML (`path`: the file it comes from; none: `request`).
///
/// # Errors
/// [`DeployError::Invalid`] with the diagnostics; store failures.
pub async fn deploy(
    store: &dyn Store,
    source: &str,
    path: Option<&str>,
) -> Result<FormDeployment, DeployError> {
    let loaded = weft_engine::load_form(source);
    let diagnostics = located(&loaded.diagnostics, path.unwrap_or("request"));
    let Some(form) = loaded.form else {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(DeployError::Invalid(Invalid {
            message: format!("the form is invalid: {errors} error(s)"),
            diagnostics,
        }));
    };
    let before = match store.form(&form.name, None).await {
        Ok(r) => Some(r.id),
        Err(e) if e.kind() == StoreErrorKind::NotFound => None,
        Err(e) => return Err(ServiceError::from(e).into()),
    };
    let record = store
        .deploy_form(&form.name, source, path)
        .await
        .map_err(ServiceError::from)?;
    Ok(FormDeployment {
        unchanged: before == Some(record.id),
        record,
        form: Arc::new(form),
        diagnostics,
    })
}

/// A deployed form in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FormSummary {
    /// Its name (`form:`).
    pub name: String,
    /// The latest version.
    pub version: i64,
    /// The page's heading.
    pub title: String,
    /// How many fields it asks (headings not counted).
    pub fields: usize,
    /// The file it was deployed from, if any.
    pub path: Option<String>,
    /// When the latest version was deployed (RFC 3339).
    pub deployed_at: String,
}

/// One field of a form, as `weft form show` and `GET /api/forms/{name}` describe it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldView {
    /// The key of its value.
    pub name: String,
    /// `text`, `select`, …
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: weft_engine::form::FieldKind,
    /// Its label.
    pub label: String,
    /// The section heading it is under, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Must it be filled in (when shown)?
    pub required: bool,
    /// Redacted like a secret input.
    pub secret: bool,
    /// Listed options (`value`s), for choice fields with a fixed list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// The options-generator workflow, for choice fields with dynamic options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options_from: Option<String>,
    /// The condition under which it is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_when: Option<String>,
}

/// A deployed form with its fields.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FormView {
    /// Name, version, title and where it came from.
    #[serde(flatten)]
    pub summary: FormSummary,
    /// Shown under the title.
    pub description: Option<String>,
    /// The fields, in page order.
    pub field_list: Vec<FieldView>,
}

/// The form a stored version holds. A version that no longer loads (a later weft reads it
/// differently) is a conflict naming it: deploy it again.
fn parse(record: &FormRecord) -> Result<Form, ServiceError> {
    weft_engine::load_form(&record.source).form.ok_or_else(|| {
        ServiceError::conflict(format!(
            "form `{}` v{} no longer loads: deploy it again (`weft validate` shows why)",
            record.name, record.version
        ))
    })
}

fn summary(record: &FormRecord, form: &Form) -> FormSummary {
    FormSummary {
        name: record.name.clone(),
        version: record.version,
        title: form.title.clone(),
        fields: form.fields().count(),
        path: record.path.clone(),
        deployed_at: record.created_at.clone(),
    }
}

/// Every deployed form (its latest version), by name. Versions that no longer load are left
/// out of the listing (showing one names the problem).
///
/// # Errors
/// Store failures.
pub async fn list(store: &dyn Store) -> Result<Vec<FormSummary>, ServiceError> {
    Ok(store
        .list_forms()
        .await?
        .iter()
        .filter_map(|r| parse(r).ok().map(|f| summary(r, &f)))
        .collect())
}

/// One deployed form with its fields.
///
/// # Errors
/// Not found (with the deployed names); a stored version that no longer loads; store
/// failures.
pub async fn show(store: &dyn Store, name: &str) -> Result<FormView, ServiceError> {
    let record = match store.form(name, None).await {
        Ok(r) => r,
        Err(e) if e.kind() == StoreErrorKind::NotFound => {
            let names: Vec<String> = store
                .list_forms()
                .await?
                .into_iter()
                .map(|f| f.name)
                .collect();
            let hint =
                weft_engine::diagnostic::did_you_mean(name, names.iter().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_else(|| "; deploy one with `weft deploy FILE`".into());
            return Err(ServiceError::not_found(format!(
                "no form named `{name}` is deployed{hint}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let form = parse(&record)?;
    let mut section = None;
    let mut fields = Vec::new();
    for item in &form.items {
        match item {
            Item::Heading { title, .. } => section = Some(title.clone()),
            Item::Field(f) => fields.push(FieldView {
                name: f.name.clone(),
                kind: f.kind,
                label: f.label.clone(),
                section: section.clone(),
                required: f.required,
                secret: f.secret,
                options: match &f.options {
                    Options::Static(c) => Some(c.iter().map(|c| c.value.clone()).collect()),
                    _ => None,
                },
                options_from: match &f.options {
                    Options::Dynamic { workflow, .. } => Some(workflow.clone()),
                    _ => None,
                },
                show_when: f.show_when.as_ref().map(|t| t.source().to_string()),
            }),
        }
    }
    Ok(FormView {
        summary: summary(&record, &form),
        description: form.description.clone(),
        field_list: fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const FORM: &str = "form: new-user\ntitle: New starter\nfields:\n  - section: Person\n  - name: first_name\n    required: true\n  - name: licence\n    type: select\n    options: [basic, premium]\n  - name: manager\n    type: select\n    options_from: org-contacts\n";

    async fn store() -> Arc<dyn Store> {
        weft_engine::store::open("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn a_form_is_deployed_once_listed_and_shown() {
        let store = store().await;
        let first = deploy(store.as_ref(), FORM, Some("forms/new-user.yaml"))
            .await
            .unwrap();
        assert!(!first.unchanged);
        let again = deploy(store.as_ref(), FORM, None).await.unwrap();
        assert!(again.unchanged);
        let listed = list(store.as_ref()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].title.as_str(), listed[0].fields),
            ("New starter", 3)
        );
        let shown = show(store.as_ref(), "new-user").await.unwrap();
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["name"], "new-user");
        assert_eq!(json["field_list"][0]["section"], "Person");
        assert_eq!(
            json["field_list"][1]["options"],
            serde_json::json!(["basic", "premium"])
        );
        assert_eq!(json["field_list"][2]["options_from"], "org-contacts");
        assert_eq!(json["field_list"][2]["type"], "select");
    }

    #[tokio::test]
    async fn an_invalid_form_is_refused_with_its_diagnostics_and_nothing_is_stored() {
        let store = store().await;
        let bad = "form: new-user\nfields:\n  - name: a\n    type: dropdown\n";
        let Err(DeployError::Invalid(invalid)) = deploy(store.as_ref(), bad, None).await else {
            panic!("deployed an invalid form");
        };
        assert_eq!(invalid.message, "the form is invalid: 1 error(s)");
        assert_eq!(
            (invalid.diagnostics[0].line, invalid.diagnostics[0].column),
            (4, 11)
        );
        assert!(list(store.as_ref()).await.unwrap().is_empty());
        deploy(store.as_ref(), FORM, None).await.unwrap();
        let e = show(store.as_ref(), "new-usr").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("new-user"), "{e}");
    }
}
