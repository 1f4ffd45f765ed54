//! Who may send to a webhook trigger: for which organizations, and with which secret.
//!
//! `POST /hooks/{trigger}/{org}` starts one execution, for the org in the URL — so the URL
//! must not be able to choose an org the trigger does not run for. The rules, decided here
//! and nowhere else (the webhook handler, `weft trigger secret`, the API and `weft serve`
//! call them):
//!
//! - the org must be registered and active;
//! - it must be one the trigger runs for: `run_for: owner` the owner org (the root org, the
//!   MSP), a list its orgs, `all_managed` any managed (child) org;
//! - a webhook without a secret (`secret: none`) runs only for its owner org: the root org,
//!   or the first org of its `run_for` list (a crate install's org); with several root orgs
//!   (and no list) there is no owner, so it runs for none (see `weft_engine::org::owner_org`);
//! - a webhook with `secret: required` has one secret per (trigger, org), sealed at rest,
//!   issued on request (never by an incoming request) and rotated at once or after a grace
//!   period during which the previous one is still accepted.

use std::time::Duration;

use weft_engine::executor::Engine;
use weft_engine::model::{RunFor, Trigger, TriggerKind, WebhookSecret};
use weft_engine::store::{OrgRecord, Store, StoreErrorKind, WebhookSecretRecord};

use crate::{TriggerError, constant_time_eq};

/// The longest trigger name or org id a webhook URL may carry.
pub const MAX_SEGMENT: usize = 128;

/// Is `s` a possible trigger name or org id: 1 to [`MAX_SEGMENT`] letters, digits, `-`,
/// `_` or `.`. Anything else is refused before it is looked up or stored.
pub fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Does `trigger` demand a secret.
fn requires_secret(trigger: &Trigger) -> bool {
    matches!(
        trigger.kind,
        TriggerKind::Webhook {
            secret: WebhookSecret::Required,
            ..
        }
    )
}

/// The owner org of a trigger: the first org of its `run_for` list, else the root org.
///
/// # Errors
/// Store failures.
pub async fn owner(store: &dyn Store, trigger: &Trigger) -> Result<Option<String>, TriggerError> {
    if let RunFor::Orgs(list) = &trigger.run_for
        && let Some(first) = list.first()
    {
        return Ok(Some(first.clone()));
    }
    Ok(weft_engine::org::owner_org(store).await?.map(|o| o.id))
}

fn names(org: &OrgRecord, name: &str) -> bool {
    org.id == name || org.name == name
}

/// Does a trigger with this `run_for` and `owner` (see [`owner`]) run for `org`? The one rule
/// for webhooks and forms.
pub fn runs_for(run_for: &RunFor, owner: Option<&str>, org: &OrgRecord) -> bool {
    match run_for {
        RunFor::Owner => owner.is_some_and(|o| names(org, o)),
        RunFor::Orgs(list) => list.iter().any(|o| names(org, o)),
        RunFor::AllManaged => org.parent_id.is_some(),
    }
}

/// Whether `trigger` runs for `org`, given its owner; the reason when it does not.
fn entitles(trigger: &Trigger, owner: Option<&str>, org: &OrgRecord) -> Result<(), String> {
    let is_owner = owner.is_some_and(|o| names(org, o));
    if !requires_secret(trigger) && !is_owner {
        return Err(format!(
            "webhook trigger `{}` takes requests without a secret, so it runs only for its owner org{}",
            trigger.name,
            owner.map_or_else(
                || " (there is none: no single root organization)".to_string(),
                |o| format!(" `{o}`")
            )
        ));
    }
    if runs_for(&trigger.run_for, owner, org) {
        Ok(())
    } else {
        Err(format!(
            "webhook trigger `{}` does not run for organization `{}` (run_for: {})",
            trigger.name,
            org.id,
            run_for_text(&trigger.run_for)
        ))
    }
}

fn run_for_text(run_for: &RunFor) -> String {
    match run_for {
        RunFor::Owner => "owner".into(),
        RunFor::AllManaged => "all_managed".into(),
        RunFor::Orgs(list) => list.join(", "),
    }
}

/// The org a webhook request for `org` (the URL's segment) runs for: registered, active and
/// one the trigger runs for. Anything else is "not found", so a caller cannot tell an org
/// that exists from one that does not.
///
/// # Errors
/// [`TriggerError::NotFound`] with the reason; store failures.
pub async fn entitled_org(
    store: &dyn Store,
    trigger: &Trigger,
    org: &str,
) -> Result<OrgRecord, TriggerError> {
    let not_found = || {
        TriggerError::NotFound(format!(
            "webhook trigger `{}` does not run for organization `{org}`: no such active organization",
            trigger.name
        ))
    };
    if !valid_segment(org) {
        return Err(not_found());
    }
    let record = match store.org(org).await {
        Ok(r) if r.active => r,
        Ok(_) => return Err(not_found()),
        Err(e) if e.kind() == StoreErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    // The owner is looked up only when a rule needs it (one query fewer per request for a
    // secret-checked `all_managed` or listed trigger).
    let needs_owner = !requires_secret(trigger) || trigger.run_for == RunFor::Owner;
    let owner = if needs_owner {
        owner(store, trigger).await?
    } else {
        None
    };
    entitles(trigger, owner.as_deref(), &record).map_err(TriggerError::NotFound)?;
    Ok(record)
}

/// Every registered, active org `trigger` accepts requests for (for listing and for issuing
/// secrets at start).
///
/// # Errors
/// Store failures.
pub async fn entitled_orgs(
    store: &dyn Store,
    trigger: &Trigger,
) -> Result<Vec<OrgRecord>, TriggerError> {
    let owner = owner(store, trigger).await?;
    Ok(store
        .list_orgs()
        .await?
        .into_iter()
        .filter(|o| o.active && entitles(trigger, owner.as_deref(), o).is_ok())
        .collect())
}

/// A webhook secret as shown to the user who configures a sender.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedSecret {
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// The org whose sender uses it.
    pub org: String,
    /// The secret (`x-weft-secret`).
    pub secret: String,
    /// When it was issued.
    pub created_at: String,
    /// When it was last rotated.
    pub rotated_at: Option<String>,
    /// Until when the secret it replaced is still accepted.
    pub previous_valid_until: Option<String>,
    /// Issued by this call.
    pub created: bool,
}

fn open(
    engine: &Engine,
    record: &WebhookSecretRecord,
    created: bool,
) -> Result<IssuedSecret, TriggerError> {
    let secret = engine
        .secrets()
        .open(&record.secret)
        .map_err(|e| TriggerError::Internal(format!("webhook secret: {e}")))?;
    Ok(IssuedSecret {
        workflow: record.workflow.clone(),
        trigger: record.trigger.clone(),
        org: record.org.clone(),
        secret,
        created_at: record.created_at.clone(),
        rotated_at: record.rotated_at.clone(),
        previous_valid_until: record.previous_until.clone(),
        created,
    })
}

fn new_secret() -> String {
    crate::random_token("whsec_")
}

/// Checks the trigger demands a secret and runs for `org`; the org's record.
async fn secret_target(
    engine: &Engine,
    workflow: &str,
    trigger: &Trigger,
    org: &str,
) -> Result<OrgRecord, TriggerError> {
    if !matches!(trigger.kind, TriggerKind::Webhook { .. }) {
        return Err(TriggerError::Conflict(format!(
            "trigger `{}` of workflow `{workflow}` is not a webhook: only webhook triggers have secrets",
            trigger.name
        )));
    }
    if !requires_secret(trigger) {
        return Err(TriggerError::Conflict(format!(
            "webhook trigger `{}` of workflow `{workflow}` takes no secret (`secret: none`); add `secret: required` to give each org's sender one",
            trigger.name
        )));
    }
    entitled_org(engine.store().as_ref(), trigger, org).await
}

/// The secret of `trigger` for `org`, issued now if it has none.
///
/// # Errors
/// Not a webhook with `secret: required`; the trigger does not run for the org; store and
/// key failures.
pub async fn secret(
    engine: &Engine,
    workflow: &str,
    trigger: &Trigger,
    org: &str,
) -> Result<IssuedSecret, TriggerError> {
    let org = secret_target(engine, workflow, trigger, org).await?;
    let sealed = engine.secrets().seal(&new_secret());
    let (record, created) = engine
        .store()
        .ensure_webhook_secret(workflow, &trigger.name, &org.id, &sealed)
        .await?;
    open(engine, &record, created)
}

/// Replaces the secret of `trigger` for `org` by a new one. The old one is refused at once,
/// or still accepted for `grace`.
///
/// # Errors
/// As [`secret`].
pub async fn rotate(
    engine: &Engine,
    workflow: &str,
    trigger: &Trigger,
    org: &str,
    grace: Option<Duration>,
) -> Result<IssuedSecret, TriggerError> {
    let org = secret_target(engine, workflow, trigger, org).await?;
    let until = match grace.filter(|g| !g.is_zero()) {
        None => None,
        Some(g) => Some(
            jiff::SignedDuration::try_from(g)
                .ok()
                .and_then(|g| engine.now().checked_add(g).ok())
                .ok_or_else(|| TriggerError::BadRequest("the grace period is too long".into()))?
                .to_string(),
        ),
    };
    let sealed = engine.secrets().seal(&new_secret());
    let record = engine
        .store()
        .rotate_webhook_secret(workflow, &trigger.name, &org.id, &sealed, until.as_deref())
        .await?;
    open(engine, &record, true)
}

/// Issues the secrets not issued yet of every webhook trigger of `wf` that demands one, for
/// every org it runs for; returns those issued now (`weft serve` shows them once).
///
/// # Errors
/// Store and key failures.
pub async fn issue_missing(
    engine: &Engine,
    wf: &weft_engine::Workflow,
) -> Result<Vec<IssuedSecret>, TriggerError> {
    let mut out = Vec::new();
    for t in wf.triggers.iter().filter(|t| requires_secret(t)) {
        for org in entitled_orgs(engine.store().as_ref(), t).await? {
            let issued = secret(engine, &wf.name, t, &org.id).await?;
            if issued.created {
                out.push(issued);
            }
        }
    }
    Ok(out)
}

/// Checks the `x-weft-secret` a request for `org` presented (compared in constant time with
/// the org's secret, and with the previous one during its grace period). Never issues one.
///
/// # Errors
/// [`TriggerError::Unauthorized`]: missing, wrong, or none issued for the org; store and key
/// failures.
pub async fn check(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
    org: &str,
    given: Option<&[u8]>,
) -> Result<(), TriggerError> {
    let Some(given) = given else {
        return Err(TriggerError::Unauthorized(
            "missing x-weft-secret header".into(),
        ));
    };
    let Some(record) = engine
        .store()
        .webhook_secret(workflow, trigger, org)
        .await?
    else {
        return Err(TriggerError::Unauthorized(format!(
            "no secret has been issued for organization `{org}` on this trigger: get it with `weft trigger secret {workflow} {trigger} --org {org}`"
        )));
    };
    let opens = |sealed: &str| {
        engine
            .secrets()
            .open(sealed)
            .map_err(|e| TriggerError::Internal(format!("webhook secret: {e}")))
    };
    if constant_time_eq(given, opens(&record.secret)?.as_bytes()) {
        return Ok(());
    }
    let until = record
        .previous_until
        .as_deref()
        .and_then(|u| u.parse::<jiff::Timestamp>().ok());
    if let (Some(previous), Some(until)) = (&record.previous, until)
        && until > engine.now()
        && constant_time_eq(given, opens(previous)?.as_bytes())
    {
        return Ok(());
    }
    Err(TriggerError::Unauthorized("wrong webhook secret".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_bounded_slugs() {
        assert!(valid_segment("acme-dental"));
        assert!(valid_segment("rmm-alert--acme_2.x"));
        assert!(!valid_segment(""));
        assert!(!valid_segment(&"a".repeat(MAX_SEGMENT + 1)));
        assert!(!valid_segment("acme dental"));
        assert!(!valid_segment("../x"));
        assert!(!valid_segment("ac%6de"));
    }
}
