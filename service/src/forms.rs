//! Form use cases: deploying form files, listing and showing forms.
//!
//! Deploying a form is the same rule for `weft deploy` and `POST /api/forms`: a form that does
//! not validate is refused with its diagnostics and nothing is stored; a valid one is stored
//! as a new version, or left as is when it equals the latest.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_engine::executor::Engine;
use weft_engine::form::{Form, Item, Options};
use weft_engine::store::{FormRecord, Store, StoreErrorKind};

mod options;
pub(crate) mod submit;

pub use options::{Loaded, OptionsCache, dynamic_options};
pub use submit::{DEFAULT_WAIT, NO_SUCH_LINK, OpenLink, Submitted, Waited, open_link, submit};

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
            let hint = weft_engine::suggest::did_you_mean(name, names.iter().map(String::as_str))
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

/// An org's standing link to a form, as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FormLinkView {
    /// The form.
    pub form: String,
    /// The org whose people fill it in.
    pub org: String,
    /// The link to send them (`{public url}/forms/{token}`).
    pub url: String,
    /// `active`, `disabled` or `expired`.
    pub state: String,
    /// Off: the link answers "not found".
    pub enabled: bool,
    /// After this (RFC 3339) the link answers "expired".
    pub expires_at: Option<String>,
    /// 1, then one more per rotation.
    pub generation: i64,
    /// RFC 3339.
    pub created_at: String,
    /// When it was last rotated (RFC 3339).
    pub rotated_at: Option<String>,
}

/// A change to a link: turn it on or off, set or clear its expiry.
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkChange {
    /// On or off.
    pub enabled: Option<bool>,
    /// `never`, an RFC 3339 time, a date (the link works through that day, UTC), or a
    /// duration from now (`30d`, `12h`).
    pub expires: Option<String>,
}

/// The form and the org a link is for: the form deployed, the org registered and active.
async fn target(store: &dyn Store, form: &str, org: &str) -> Result<String, ServiceError> {
    show(store, form).await?;
    let record = store.org(org).await.map_err(|e| {
        if e.kind() == StoreErrorKind::NotFound {
            ServiceError::not_found(format!("no organization `{org}` (see `weft org list`)"))
        } else {
            e.into()
        }
    })?;
    if !record.active {
        return Err(ServiceError::conflict(format!(
            "organization `{}` is inactive: its people cannot be sent a form",
            record.id
        )));
    }
    Ok(record.id)
}

fn view(
    engine: &Engine,
    link: &weft_engine::store::FormLinkRecord,
) -> Result<FormLinkView, ServiceError> {
    let token = engine.secrets().open(&link.token).map_err(|e| {
        ServiceError::internal(
            "a form link cannot be opened with this installation's key",
            e,
        )
    })?;
    let expired = link
        .expires_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t <= engine.now());
    let state = if !link.enabled {
        "disabled"
    } else if expired {
        "expired"
    } else {
        "active"
    };
    Ok(FormLinkView {
        form: link.form.clone(),
        org: link.org.clone(),
        url: weft_engine::form_link::url(&engine.public_url(), &token),
        state: state.into(),
        enabled: link.enabled,
        expires_at: link.expires_at.clone(),
        generation: link.generation,
        created_at: link.created_at.clone(),
        rotated_at: link.rotated_at.clone(),
    })
}

/// A new link token as it is stored: its hash (looked up by) and itself, sealed.
fn fresh_token(engine: &Engine) -> (String, String) {
    let token = weft_engine::form_link::new_token();
    (
        weft_engine::form_link::token_hash(&token),
        engine.secrets().seal(&token),
    )
}

/// An org's standing link to a form, issued now if it has none.
///
/// # Errors
/// The form is not deployed; no such org, or it is inactive; store and key failures.
pub async fn link(engine: &Engine, form: &str, org: &str) -> Result<FormLinkView, ServiceError> {
    let org = target(engine.store().as_ref(), form, org).await?;
    let (hash, sealed) = fresh_token(engine);
    let (record, _) = engine
        .store()
        .ensure_form_link(form, &org, &hash, &sealed)
        .await?;
    view(engine, &record)
}

/// A new token for an org's link: the old URL stops working at once (and so do single-use
/// links signed under it).
///
/// # Errors
/// As [`link`].
pub async fn rotate(engine: &Engine, form: &str, org: &str) -> Result<FormLinkView, ServiceError> {
    let org = target(engine.store().as_ref(), form, org).await?;
    let (hash, sealed) = fresh_token(engine);
    let record = engine
        .store()
        .rotate_form_link(form, &org, &hash, &sealed)
        .await?;
    view(engine, &record)
}

/// Turns an org's link on or off, sets or clears its expiry (issuing the link first if it
/// has none).
///
/// # Errors
/// As [`link`]; usage: a bad expiry.
pub async fn change(
    engine: &Engine,
    form: &str,
    org: &str,
    change: &LinkChange,
) -> Result<FormLinkView, ServiceError> {
    let current = link(engine, form, org).await?;
    let expires_at = match &change.expires {
        Some(e) => weft_engine::form_link::parse_expiry(e, engine.now())
            .map_err(|e| ServiceError::usage(e.to_string()))?
            .map(|t| t.to_string()),
        None => current.expires_at.clone(),
    };
    let enabled = change.enabled.unwrap_or(current.enabled);
    let record = engine
        .store()
        .set_form_link(form, &current.org, enabled, expires_at.as_deref())
        .await?;
    view(engine, &record)
}

/// What a signed link is made of (the same as `form_link(…)` in a template).
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSignedLink {
    /// Values fixed by the link: a form field's cannot be changed on the page; every key
    /// reaches the workflow as `TRIGGER.form.prefill` (e.g. `{"ticket_id": 4711}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub prefill: Map<String, Value>,
    /// Accepted once.
    #[serde(default)]
    pub single_use: bool,
    /// An RFC 3339 time, a date or a duration from now (`7d`); 30 days when not given.
    pub expires: Option<String>,
}

/// A signed link made for an org's people.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignedLinkView {
    /// The form.
    pub form: String,
    /// The org.
    pub org: String,
    /// The link to send (`{public url}/forms/wfs_…`).
    pub url: String,
    /// `signed`, `single_use` or `preview`.
    pub kind: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// A signed link to `form` for `org` — the rule `form_link(…)` in templates follows, for
/// operators (`weft form link --prefill`, the API) and the console's preview (`preview`: a
/// link whose submissions are checked and go nowhere, for an hour).
///
/// # Errors
/// As [`link`]; usage: a prefill too large, a bad or past expiry, `never`.
pub async fn signed_link(
    engine: &Engine,
    form: &str,
    org: &str,
    new: &NewSignedLink,
    preview: bool,
) -> Result<SignedLinkView, ServiceError> {
    use weft_engine::form_link::{OrgForms, Use, parse_expiry};
    let org = target(engine.store().as_ref(), form, org).await?;
    let now = engine.now();
    let expires_at = if preview {
        now.checked_add(jiff::SignedDuration::from_hours(1)).ok()
    } else {
        match new.expires.as_deref().map(|e| parse_expiry(e, now)) {
            None => None,
            Some(Ok(Some(at))) => Some(at),
            Some(Ok(None)) => {
                return Err(ServiceError::usage(
                    "a signed link must expire: give a date or a duration (e.g. 90d)",
                ));
            }
            Some(Err(e)) => return Err(ServiceError::usage(e.to_string())),
        }
    };
    let uses = match (preview, new.single_use) {
        (true, _) => Use::Preview,
        (false, true) => Use::SingleUse,
        (false, false) => Use::Reusable,
    };
    let forms = OrgForms::load(
        engine.store().as_ref(),
        engine.secrets().clone(),
        &engine.public_url(),
        &org,
    )
    .await?;
    let (url, signed) = forms
        .sign(form, new.prefill.clone(), uses, now, expires_at)
        .map_err(ServiceError::usage)?;
    Ok(SignedLinkView {
        form: form.to_string(),
        org,
        url,
        kind: uses.as_str().to_string(),
        expires_at: jiff::Timestamp::from_second(signed.expires_at)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    })
}

/// The links issued, of one form and/or one org.
///
/// # Errors
/// Store and key failures.
pub async fn links(
    engine: &Engine,
    form: Option<&str>,
    org: Option<&str>,
) -> Result<Vec<FormLinkView>, ServiceError> {
    engine
        .store()
        .form_links(form, org)
        .await?
        .iter()
        .map(|l| view(engine, l))
        .collect()
}

/// An accepted submission, as `weft form submissions` and the API list it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SubmissionView {
    /// Its id.
    pub id: String,
    /// The form.
    pub form: String,
    /// The form version it was checked against.
    pub form_version: i64,
    /// The org whose link it came through.
    pub org: String,
    /// `standing`: the org's link.
    pub link: String,
    /// The values (secret fields as `***`).
    #[schema(value_type = Object)]
    pub values: serde_json::Value,
    /// The executions it started.
    pub execution_ids: Vec<String>,
    /// RFC 3339.
    pub submitted_at: String,
}

/// The most submissions listed at once.
pub const MAX_LISTED: i64 = 1000;

/// Accepted submissions, newest first, of one form and/or one org (`limit` 1 to
/// [`MAX_LISTED`]).
///
/// # Errors
/// Usage: a limit out of range; store failures.
pub async fn submissions(
    store: &dyn Store,
    form: Option<&str>,
    org: Option<&str>,
    limit: i64,
) -> Result<Vec<SubmissionView>, ServiceError> {
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(ServiceError::usage(format!(
            "the limit must be between 1 and {MAX_LISTED}, not {limit}"
        )));
    }
    Ok(store
        .form_submissions(form, org, limit)
        .await?
        .into_iter()
        .map(|s| SubmissionView {
            id: s.id,
            form: s.form,
            form_version: s.form_version,
            org: s.org,
            link: s.link,
            values: s.values,
            execution_ids: s.execution_ids,
            submitted_at: s.submitted_at,
        })
        .collect())
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

    async fn engine_with_org() -> Arc<Engine> {
        let store = store().await;
        let engine = Engine::new(store, Arc::new(weft_engine::Registry::new()));
        deploy(engine.store().as_ref(), FORM, None).await.unwrap();
        crate::orgs::create(
            engine.store().as_ref(),
            crate::orgs::NewOrg {
                name: "Acme".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        engine
    }

    #[tokio::test]
    async fn a_link_is_issued_once_rotated_and_switched() {
        let engine = engine_with_org().await;
        engine.set_public_url("https://weft.example/");
        let first = link(&engine, "new-user", "acme").await.unwrap();
        assert!(
            first.url.starts_with("https://weft.example/forms/wfl_"),
            "{}",
            first.url
        );
        assert_eq!((first.state.as_str(), first.generation), ("active", 1));
        let again = link(&engine, "new-user", "Acme").await.unwrap();
        assert_eq!(again.url, first.url, "the standing link is kept");
        let token = first.url.rsplit('/').next().unwrap();
        let found = engine
            .store()
            .form_link_by_hash(&weft_engine::form_link::token_hash(token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.form.as_str(), found.org.as_str()),
            ("new-user", "acme")
        );

        let rotated = rotate(&engine, "new-user", "acme").await.unwrap();
        assert_ne!(rotated.url, first.url);
        assert_eq!(rotated.generation, 2);

        let off = change(
            &engine,
            "new-user",
            "acme",
            &LinkChange {
                enabled: Some(false),
                expires: Some("30d".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(off.state, "disabled");
        assert!(off.expires_at.is_some());
        let listed = links(&engine, None, Some("acme")).await.unwrap();
        assert_eq!(listed, vec![off]);

        let e = link(&engine, "new-user", "globex").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = link(&engine, "no-form", "acme").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
