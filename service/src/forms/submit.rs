//! Opening a form link and submitting it: the one rule the hosted page (and any other caller)
//! uses. A submission is checked by the form's rules, then starts every deployed workflow
//! whose `type: form` trigger names the form, is switched on and runs for the link's org —
//! each recorded as a trigger event with its execution, in one commit.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::executor::{Engine, Start, StartOptions};
use weft_engine::form::{FieldError, Form};
use weft_engine::form_link::{self, Signed, Use};
use weft_engine::model::{Trigger, TriggerKind};
use weft_engine::store::{
    FormLinkRecord, FormRecord, FormSubmission, OrgRecord, StoreErrorKind, TriggerEvent,
};
use weft_triggers::{Switches, webhook_access};

use super::options::{OptionsCache, dynamic_options};
use crate::ServiceError;

/// A link that takes submissions: the link, the org, the form's latest version.
#[derive(Debug, Clone)]
pub struct OpenLink {
    /// The org's standing link, when opened by it.
    pub link: Option<FormLinkRecord>,
    /// The facts of a signed link (`form_link(…)`, `weft form link --prefill`, a preview),
    /// when opened by one.
    pub signed: Option<Signed>,
    /// SHA-256 of the token: what the page's anti-forgery token is bound to.
    pub token_hash: String,
    /// The org whose people fill it in.
    pub org: OrgRecord,
    /// The stored form version.
    pub record: FormRecord,
    /// It, parsed.
    pub form: Form,
}

impl OpenLink {
    /// The values the link fixes: its signed prefill, of the fields the form has.
    pub fn fixed(&self) -> Map<String, Value> {
        self.signed
            .iter()
            .flat_map(|s| s.prefill.iter())
            .filter(|(k, _)| self.form.field(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `values` with the link's fixed values laid over them: what conditions, dynamic options
    /// and checks see, whatever was posted for a fixed field.
    pub fn with_fixed(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let mut all = values.clone();
        all.extend(self.fixed());
        all
    }

    /// `standing`, `signed`, `single_use` or `preview` (what `TRIGGER.form.link` says).
    pub fn kind(&self) -> &'static str {
        self.signed.as_ref().map_or("standing", |s| s.uses.as_str())
    }

    /// A preview: answers are checked, nothing starts, nothing is stored.
    pub fn is_preview(&self) -> bool {
        self.signed.as_ref().is_some_and(|s| s.uses == Use::Preview)
    }

    /// What a submission through it is stored under.
    fn submission_link(&self) -> String {
        self.signed
            .as_ref()
            .map_or_else(|| "standing".to_string(), Signed::submission_link)
    }
}

/// The message of a link that does not exist, was turned off, or belongs to an inactive org:
/// one answer, so a caller cannot tell which.
pub const NO_SUCH_LINK: &str =
    "this form link does not exist or was turned off: ask whoever sent it for a new one";

/// The link a token opens: an org's standing link (`wfl_…`) or a signed one (`wfs_…`).
///
/// # Errors
/// Not found ([`NO_SUCH_LINK`]) for an unknown, disabled or malformed token, an inactive org,
/// or a signed link withdrawn by rotating the org's standing link; conflict when the link
/// expired or a single-use link was used (the message says when); usage when a signed link
/// was changed or not made by this installation; store failures.
pub async fn open_link(engine: &Engine, token: &str) -> Result<OpenLink, ServiceError> {
    let gone = || ServiceError::not_found(NO_SUCH_LINK);
    let store = engine.store();
    let (link, signed, form_name, org_id) = if token.starts_with(form_link::SIGNED_PREFIX) {
        let signed = Signed::open(engine.secrets().as_ref(), token)
            .map_err(|e| ServiceError::usage(e.to_string()))?;
        if signed.expires_at <= engine.now().as_second() {
            let at = jiff::Timestamp::from_second(signed.expires_at)
                .map(|t| t.to_string())
                .unwrap_or_default();
            return Err(ServiceError::conflict(format!(
                "this form link expired on {at}: ask whoever sent it for a new one"
            )));
        }
        if let Some(standing) = store.form_link(&signed.form, &signed.org).await? {
            // Turning the org's link off closes the form to the org; rotating it withdraws
            // every signed link made before.
            let withdrawn = standing
                .rotated_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t.as_second() > signed.issued_at);
            if !standing.enabled || withdrawn {
                return Err(gone());
            }
        }
        if signed.uses == Use::SingleUse
            && let Some(used) = store
                .form_submission_by_link(&signed.submission_link())
                .await?
        {
            return Err(ServiceError::conflict(format!(
                "this form link was already used on {}: ask whoever sent it for a new one",
                used.submitted_at
            )));
        }
        let (form, org) = (signed.form.clone(), signed.org.clone());
        (None, Some(signed), form, org)
    } else {
        if !form_link::plausible_token(token) {
            return Err(gone());
        }
        let link = store
            .form_link_by_hash(&form_link::token_hash(token))
            .await?
            .filter(|l| l.enabled)
            .ok_or_else(gone)?;
        if let Some(at) = link.expires_at.as_deref()
            && at
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t <= engine.now())
        {
            return Err(ServiceError::conflict(format!(
                "this form link expired on {at}: ask whoever sent it for a new one"
            )));
        }
        let (form, org) = (link.form.clone(), link.org.clone());
        (Some(link), None, form, org)
    };
    let org = match store.org(&org_id).await {
        Ok(o) if o.active => o,
        Ok(_) => return Err(gone()),
        Err(e) if e.kind() == StoreErrorKind::NotFound => return Err(gone()),
        Err(e) => return Err(e.into()),
    };
    let record = store.form(&form_name, None).await.map_err(|e| {
        if e.kind() == StoreErrorKind::NotFound {
            gone()
        } else {
            e.into()
        }
    })?;
    let form = super::parse(&record)?;
    Ok(OpenLink {
        link,
        signed,
        token_hash: form_link::token_hash(token),
        org,
        record,
        form,
    })
}

/// What a submission came to.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Refused by the form's rules: show the form again with these messages.
    Refused(Vec<FieldError>),
    /// Accepted: the executions it started (none when no switched-on workflow runs for the
    /// org), and the values kept.
    Accepted {
        /// The stored submission's id.
        id: String,
        /// What came of the execution a `response: wait` trigger waited for.
        waited: Option<Waited>,
        /// Execution ids, in workflow order.
        executions: Vec<String>,
        /// The checked values (secret fields included: they went only to secret inputs).
        values: Map<String, Value>,
    },
    /// A preview's answers passed every check; nothing started and nothing was stored.
    Previewed {
        /// The checked values.
        values: Map<String, Value>,
    },
}

/// The end of the execution a `response: wait` form trigger waited for.
#[derive(Debug, Clone)]
pub enum Waited {
    /// It succeeded with this output.
    Output(Value),
    /// It failed (the person is told their answers arrived; the failure is the operator's).
    Failed,
    /// It did not end within the trigger's `timeout`.
    StillRunning,
}

/// How long `response: wait` waits when the trigger sets no `timeout`.
pub const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One workflow a submission starts.
struct Target {
    record: weft_engine::store::WorkflowRecord,
    workflow: std::sync::Arc<weft_engine::Workflow>,
    trigger: Trigger,
}

/// The deployed workflows whose enabled `type: form` trigger names `form` and runs for `org`.
async fn targets(
    engine: &Engine,
    form: &str,
    org: &OrgRecord,
) -> Result<Vec<Target>, ServiceError> {
    let store = engine.store();
    let switches = Switches::load(store.as_ref()).await?;
    let mut out = Vec::new();
    for record in store.list_workflows().await? {
        let Ok(wf) = engine.parsed(&record) else {
            continue;
        };
        for t in &wf.triggers {
            let TriggerKind::Form { form: name, .. } = &t.kind else {
                continue;
            };
            if name != form || !switches.enabled(&wf.name, t) {
                continue;
            }
            let owner = webhook_access::owner(store.as_ref(), t).await?;
            if webhook_access::runs_for(&t.run_for, owner.as_deref(), org) {
                out.push(Target {
                    record: record.clone(),
                    workflow: wf.clone(),
                    trigger: t.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The event a workflow sees as `TRIGGER`: `{type, form: {name, version, values, prefill,
/// submitted_at, link}, org}`. Secret fields are left out of it: they reach the workflow only
/// as secret inputs.
fn event(open: &OpenLink, values: &Map<String, Value>, now: &str) -> Value {
    let prefill = open
        .signed
        .as_ref()
        .map(|s| s.prefill.clone())
        .unwrap_or_default();
    form_event(
        &open.form,
        open.record.version,
        values,
        FormEventFacts {
            prefill,
            now,
            link: open.kind(),
            org: &open.org.id,
        },
    )
}

/// What a form event says besides the form and its values.
pub(crate) struct FormEventFacts<'a> {
    /// The link's signed prefill.
    pub prefill: Map<String, Value>,
    /// When it was submitted (RFC 3339).
    pub now: &'a str,
    /// The kind of link (`standing`, `single`…).
    pub link: &'a str,
    /// The org it was submitted for.
    pub org: &'a str,
}

/// `TRIGGER` of a submission of `form` (version `version`) with `values` (what `weft test`
/// hands a case that starts from a form, too).
pub(crate) fn form_event(
    form: &Form,
    version: i64,
    values: &Map<String, Value>,
    facts: FormEventFacts<'_>,
) -> Value {
    json!({
        "type": "form",
        "form": {
            "name": form.name,
            "version": version,
            "values": form.public_values(values),
            "prefill": facts.prefill,
            "submitted_at": facts.now,
            "link": facts.link,
        },
        "org": facts.org,
    })
}

/// The workflow inputs: the trigger's `input:` templates, else the values whose names are
/// declared inputs — a secret field only into an input declared `secret: true`.
fn inputs(
    target: &Target,
    open: &OpenLink,
    values: &Map<String, Value>,
    event: &Value,
    now: &str,
) -> Result<Map<String, Value>, ServiceError> {
    form_inputs(
        &target.workflow,
        &target.trigger,
        &open.form,
        values,
        event,
        now,
    )
}

/// [`inputs`] of `wf` started by its form trigger `trigger` for a submission of `form`.
pub(crate) fn form_inputs(
    wf: &weft_engine::Workflow,
    trigger: &Trigger,
    form: &Form,
    values: &Map<String, Value>,
    event: &Value,
    now: &str,
) -> Result<Map<String, Value>, ServiceError> {
    let secret = form.secret_fields();
    let mut out = if trigger.input.is_empty() {
        Map::new()
    } else {
        let ctx = context(&[("TRIGGER", to_value(event))], now, Extra::default());
        weft_triggers::event::inputs(wf, trigger, event, &ctx)
            .map_err(|e| ServiceError::usage(e.to_string()))?
    };
    for (k, v) in values {
        let Some(declared) = wf.input.get(k) else {
            continue;
        };
        if secret.contains(&k.as_str()) && !declared.secret {
            continue;
        }
        if trigger.input.is_empty() || secret.contains(&k.as_str()) {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(out)
}

/// Checks a submission through `token`'s link and starts what it starts.
///
/// # Errors
/// As [`open_link`]; usage: a trigger's `input:` cannot be rendered; store failures.
pub async fn submit(
    engine: &Engine,
    cache: &OptionsCache,
    token: &str,
    submitted: &Map<String, Value>,
) -> Result<Submitted, ServiceError> {
    let open = open_link(engine, token).await?;
    let fixed = open.fixed();
    let submitted = &open.with_fixed(submitted);
    // Dynamic choices are checked against what the generator answers for these values; a
    // generator that cannot answer refuses a value it could not vouch for.
    let mut known = IndexMap::new();
    let mut unavailable = Vec::new();
    for (field, loaded) in dynamic_options(engine, cache, &open, submitted).await {
        match loaded {
            Ok(choices) => {
                known.insert(field, choices);
            }
            Err(message) if submitted.get(&field).is_some_and(|v| !blank(v)) => {
                unavailable.push(FieldError { field, message });
            }
            Err(_) => {}
        }
    }
    let values = match open.form.check(submitted, &fixed, &known) {
        Ok(_) if !unavailable.is_empty() => return Ok(Submitted::Refused(unavailable)),
        Ok(v) => v,
        Err(mut errors) => {
            errors.extend(unavailable);
            return Ok(Submitted::Refused(errors));
        }
    };
    if open.is_preview() {
        return Ok(Submitted::Previewed { values });
    }
    let now = engine.now().to_string();
    let event = event(&open, &values, &now);
    // Stored before anything starts, so an accepted submission is never lost.
    let mut stored = FormSubmission {
        id: uuid::Uuid::new_v4().to_string(),
        form: open.form.name.clone(),
        form_version: open.record.version,
        org: open.org.id.clone(),
        link: open.submission_link(),
        values: Value::Object(
            open.form
                .redacted_values(&values, crate::variables::REDACTED),
        ),
        execution_ids: Vec::new(),
        submitted_at: now.clone(),
    };
    engine
        .store()
        .save_form_submission(&stored)
        .await
        .map_err(|e| match e.kind() {
            // Two submissions through one single-use link at once: the store let one in.
            StoreErrorKind::Conflict => ServiceError::conflict(
                "this form link was already used: ask whoever sent it for a new one",
            ),
            _ => e.into(),
        })?;
    let mut executions = Vec::new();
    let mut waiting = None;
    for target in targets(engine, &open.form.name, &open.org).await? {
        let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
        let mut recorded = TriggerEvent::new(
            &target.workflow.name,
            &target.trigger.name,
            "form",
            &open.org.id,
        );
        if let Some(reason) = weft_triggers::webhook::unmet_criteria(&target.trigger, &ctx) {
            recorded.outcome = "filtered".into();
            recorded.reason = Some(reason);
            recorded.status = 200;
            engine.store().record_event(&recorded, &[]).await?;
            continue;
        }
        let input = inputs(&target, &open, &values, &event, &now)?;
        let start = Start {
            workflow: target.record.clone(),
            input,
            opts: StartOptions {
                org: Some(open.org.id.clone()),
                trigger: Some(weft_triggers::event::with_integration(
                    &target.trigger,
                    &event,
                )),
            },
        };
        let ids = engine
            .enqueue(&recorded, vec![start])
            .await
            .map_err(|e| match e {
                // The form's values do not fit the workflow's inputs: the operator's to fix,
                // not the person's (and not an expired link, which is the page's conflict).
                weft_engine::executor::EngineError::Input(m) => ServiceError::usage(m),
                other => ServiceError::from(other),
            })?
            .unwrap_or_default();
        if waiting.is_none()
            && let TriggerKind::Form {
                response: weft_engine::model::WebhookResponse::Wait,
                wait_timeout,
                ..
            } = &target.trigger.kind
            && let Some(first) = ids.first()
        {
            waiting = Some((first.clone(), wait_timeout.unwrap_or(DEFAULT_WAIT)));
        }
        executions.extend(ids);
    }
    if !executions.is_empty() {
        stored.execution_ids = executions.clone();
        engine.store().save_form_submission(&stored).await?;
    }
    let waited = match waiting {
        None => None,
        Some((id, timeout)) => Some(match engine.wait_for(&id, timeout).await {
            Ok(Some(exec)) if exec.status == weft_engine::store::ExecStatus::Succeeded => {
                Waited::Output(exec.output.unwrap_or(Value::Null))
            }
            Ok(Some(_)) => Waited::Failed,
            Ok(None) | Err(_) => Waited::StillRunning,
        }),
    };
    Ok(Submitted::Accepted {
        id: stored.id,
        waited,
        executions,
        values,
    })
}

/// Nothing entered.
fn blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ErrorKind;

    const FORM: &str = "form: new-user\nfields:\n  - name: first_name\n    required: true\n  - name: remote\n    type: checkbox\n  - name: address\n    required: true\n    show_when: values.remote\n  - name: temp_password\n    secret: true\n";

    const ONBOARD: &str = "name: onboard\ninput:\n  first_name: { type: string, required: true }\n  temp_password: { type: string, secret: true }\ntriggers:\n  - type: form\n    form: new-user\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\n";

    const OTHER_FORM: &str = "name: other\ntriggers:\n  - type: form\n    form: offboarding\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\n";

    async fn setup() -> (Arc<Engine>, String) {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store, Arc::new(weft_actions::registry()));
        let s = engine.store();
        super::super::deploy(s.as_ref(), FORM, None).await.unwrap();
        crate::workflows::deploy(&engine, ONBOARD, None)
            .await
            .unwrap();
        crate::workflows::deploy(&engine, OTHER_FORM, None)
            .await
            .unwrap();
        for (name, parent) in [("MSP", None), ("Acme", Some("msp"))] {
            crate::orgs::create(
                s.as_ref(),
                crate::orgs::NewOrg {
                    name: name.into(),
                    parent: parent.map(str::to_string),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        let link = super::super::link(&engine, "new-user", "acme")
            .await
            .unwrap();
        let token = link.url.rsplit('/').next().unwrap().to_string();
        (engine, token)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn a_submission_starts_the_workflows_that_run_for_the_org() {
        let (engine, token) = setup().await;
        let got = submit(
            &engine,
            &OptionsCache::default(),
            &token,
            &obj(json!({"first_name": "Ada", "temp_password": "hunter2hunter2"})),
        )
        .await
        .unwrap();
        let Submitted::Accepted { executions, id, .. } = got else {
            panic!("refused: {got:?}");
        };
        let kept = engine
            .store()
            .form_submissions(Some("new-user"), None, 10)
            .await
            .unwrap();
        assert_eq!(
            (kept[0].id.as_str(), &kept[0].execution_ids),
            (id.as_str(), &executions)
        );
        assert_eq!(kept[0].values["temp_password"], "***");
        assert_eq!(kept[0].values["first_name"], "Ada");
        assert_eq!(executions.len(), 1, "only the workflow of this form");
        let exec = engine.store().execution(&executions[0]).await.unwrap();
        assert_eq!(exec.org, "acme");
        let trigger = exec.trigger.clone();
        assert_eq!(trigger["form"]["values"]["first_name"], "Ada");
        assert!(
            !trigger.to_string().contains("hunter2"),
            "a secret field stays out of TRIGGER: {trigger}"
        );
        let events = engine
            .store()
            .trigger_events("onboard", "form", 10)
            .await
            .unwrap();
        assert_eq!(
            (events[0].kind.as_str(), events[0].outcome.as_str()),
            ("form", "accepted")
        );
    }

    #[tokio::test]
    async fn refusals_and_dead_links_start_nothing() {
        let (engine, token) = setup().await;
        let cache = OptionsCache::default();
        let got = submit(&engine, &cache, &token, &obj(json!({"remote": "on"})))
            .await
            .unwrap();
        let Submitted::Refused(errors) = got else {
            panic!("accepted an incomplete submission");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["first_name", "address"]);
        assert!(
            engine
                .store()
                .trigger_events("onboard", "form", 10)
                .await
                .unwrap()
                .is_empty()
        );

        let e = submit(&engine, &cache, "wfl_nope", &Map::new())
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::NotFound, NO_SUCH_LINK)
        );
        super::super::change(
            &engine,
            "new-user",
            "acme",
            &super::super::LinkChange {
                enabled: Some(false),
                expires: None,
            },
        )
        .await
        .unwrap();
        let e = submit(&engine, &cache, &token, &obj(json!({"first_name": "Ada"})))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn dynamic_choices_are_checked_against_the_generator_for_the_org() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store, Arc::new(weft_actions::registry()));
        let s = engine.store();
        let form = "form: pick\nfields:\n  - name: team\n    type: select\n    options: [it, ops]\n  - name: manager\n    type: select\n    required: true\n    options_from: {workflow: managers, depends_on: [team]}\n";
        let generator = "name: managers\ninput:\n  team: { type: string }\ntasks:\n  a:\n    action: core.noop\noutput:\n  options: \"{{ [{'label': 'Lead of ' ~ CTX.team ~ ' at ' ~ ORG.name, 'value': CTX.team ~ '-lead'}] }}\"\n";
        let wf = "name: picked\ntriggers:\n  - type: form\n    form: pick\n    run_for: all_managed\ntasks:\n  a:\n    action: core.noop\n";
        super::super::deploy(s.as_ref(), form, None).await.unwrap();
        crate::workflows::deploy(&engine, generator, None)
            .await
            .unwrap();
        crate::workflows::deploy(&engine, wf, None).await.unwrap();
        for (name, parent) in [("MSP", None), ("Acme", Some("msp"))] {
            let new = crate::orgs::NewOrg {
                name: name.into(),
                parent: parent.map(str::to_string),
                ..Default::default()
            };
            crate::orgs::create(s.as_ref(), new).await.unwrap();
        }
        let link = super::super::link(&engine, "pick", "acme").await.unwrap();
        let token = link.url.rsplit('/').next().unwrap().to_string();
        let cache = OptionsCache::default();

        let open = open_link(&engine, &token).await.unwrap();
        let shown = dynamic_options(&engine, &cache, &open, &obj(json!({"team": "it"}))).await;
        let choices = shown["manager"].as_ref().unwrap();
        assert_eq!(
            choices[0].label, "Lead of it at Acme",
            "run in the org's context"
        );

        let got = submit(
            &engine,
            &cache,
            &token,
            &obj(json!({"team": "ops", "manager": "it-lead"})),
        )
        .await
        .unwrap();
        let Submitted::Refused(errors) = got else {
            panic!("accepted a choice the generator did not offer")
        };
        assert_eq!(errors[0].field, "manager");
        let got = submit(
            &engine,
            &cache,
            &token,
            &obj(json!({"team": "ops", "manager": "ops-lead"})),
        )
        .await
        .unwrap();
        assert!(matches!(got, Submitted::Accepted { .. }), "{got:?}");
    }
}
