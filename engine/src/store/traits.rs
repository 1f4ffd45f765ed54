//! The [`Store`] trait, split by concern: each sub-trait holds the methods of one part of
//! weft's state, and [`Store`] is all of them (what callers hold, as `Arc<dyn Store>`).
//! A `dyn Store` (or a `T: Store`) answers every sub-trait's methods as it is; calling them on
//! a concrete store (`SqliteStore`, `PostgresStore`) needs the sub-traits in scope: `use
//! weft_engine::store::prelude::*;`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::*;

/// Deployed workflows and forms, by name and version.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// Stores a workflow's source as a new version, unless it equals the latest version.
    async fn deploy_workflow(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord>;
    /// The latest version of a workflow, or a given version.
    async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord>;
    /// A workflow version by row id.
    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord>;
    /// Latest version of every workflow.
    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>>;
    /// Stores a form file's source as a new version, unless it equals the latest version
    /// (the same rule as [`WorkflowStore::deploy_workflow`]).
    async fn deploy_form(&self, name: &str, source: &str, path: Option<&str>)
    -> Result<FormRecord>;
    /// The latest version of a form, or a given version.
    async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord>;
    /// Latest version of every form, by name.
    async fn list_forms(&self) -> Result<Vec<FormRecord>>;
    /// The id of the newest stored workflow version (0 before any): deploying only ever adds
    /// rows, so it changes exactly when something is deployed, and callers may keep what they
    /// derived from [`WorkflowStore::list_workflows`] until it does.
    async fn last_deploy_id(&self) -> Result<i64> {
        Ok(self
            .list_workflows()
            .await?
            .iter()
            .map(|w| w.id)
            .max()
            .unwrap_or(0))
    }
}

/// Executions and their task runs: creating, claiming and leasing, finishing, reading,
/// cancelling and purging them.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Creates an execution (status running, held by `owner`) with its first task runs.
    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()>;
    /// Takes over an execution whose lease expired or whose owner is `stale_owner` (or one
    /// `owner` already holds). A pending execution with a concurrency limit is only taken
    /// while fewer than its limit of its group run.
    async fn claim_execution(
        &self,
        id: &str,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<&str>,
    ) -> Result<bool>;
    /// Extends the leases of every unfinished execution `owner` holds.
    async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64>;
    /// Unfinished executions held by `owner` whose cancel was requested.
    async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>>;
    /// Executions that are not finished, oldest first.
    async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>>;
    /// Inserts or updates task runs in one commit.
    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()>;
    /// Ends an execution (waking idle workers when it frees a concurrency slot).
    async fn finish_execution(
        &self,
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()>;
    /// One execution.
    async fn execution(&self, id: &str) -> Result<ExecutionRecord>;
    /// An execution's task runs, in (task outcome order, then task, item, attempt) order.
    async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>>;
    /// Executions, newest first.
    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>>;
    /// Child executions of an execution.
    async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>>;
    /// Asks an unfinished execution (and its sub-workflows) to stop.
    async fn request_cancel(&self, id: &str) -> Result<()>;
    /// Deletes finished executions that ended before `finished_before` (RFC 3339): of one
    /// org (`only`), or of every org but `except`.
    async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64>;
}

/// The work queue: trigger events (which start queued executions), claiming queued work and
/// waiting for it.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Deletes the trigger events recorded before `before` (RFC 3339) of one org (`only`) or
    /// of every org but `except` — keeping each trigger's newest de-duplicated event, which
    /// tells the cron scheduler the last slot it fired.
    async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64>;
    /// Records a trigger event and creates the executions it starts, in one commit; each
    /// execution points at the event, and the event's `execution_id` is the first one.
    /// Returns the event's row id, or `None` (and stores nothing) when an event with the same
    /// `dedupe_key` was already recorded for the trigger.
    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>>;
    /// A trigger's events, newest first.
    async fn trigger_events(
        &self,
        workflow: &str,
        trigger: &str,
        limit: i64,
    ) -> Result<Vec<TriggerEvent>>;
    /// The greatest `dedupe_key` starting with `prefix` recorded for a trigger (keys that
    /// embed an RFC 3339 UTC time sort by time: the last cron slot fired).
    async fn last_dedupe_key(
        &self,
        workflow: &str,
        trigger: &str,
        prefix: &str,
    ) -> Result<Option<String>>;

    /// Takes the oldest queued top-level execution whose concurrency group has room (pending
    /// ones held by a live owner are not queued), or a running one whose lease expired, for
    /// `owner`. Holds across processes sharing the store: a group never runs more than its
    /// limit, however many workers claim at once.
    async fn claim_next(
        &self,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>>;
    /// How many executions wait for a worker.
    async fn queue_depth(&self) -> Result<i64>;

    /// Waits until work may have been queued (by this process or another sharing the store),
    /// or `timeout` passed; a wake-up is a hint to look, not a promise of work. Backends that
    /// cannot hear other processes just sleep, and workers poll.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}

/// What triggers keep: switches, webhook secrets, registered Autotask webhooks, and form links
/// with the submissions that came through them.
#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Switches a trigger on or off (overrides the workflow's `enabled:`).
    async fn set_trigger_enabled(&self, workflow: &str, trigger: &str, enabled: bool)
    -> Result<()>;
    /// Every switch set through [`TriggerStore::set_trigger_enabled`]: `(workflow, trigger,
    /// enabled)`.
    async fn trigger_switches(&self) -> Result<Vec<(String, String, bool)>>;

    /// The secret of a webhook trigger for one org, if one was issued.
    async fn webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<Option<WebhookSecretRecord>>;
    /// The secret of a webhook trigger for one org, storing `sealed` first if there is none.
    /// True when stored now.
    async fn ensure_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
    ) -> Result<(WebhookSecretRecord, bool)>;
    /// Replaces the secret of a webhook trigger for one org by `sealed`; the one it replaces
    /// stays valid until `previous_until` (RFC 3339; `None`: refused at once).
    async fn rotate_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
        previous_until: Option<&str>,
    ) -> Result<WebhookSecretRecord>;

    /// Records (or replaces) the Autotask webhook registered for a trigger and org.
    async fn save_autotask_webhook(&self, webhook: &AutotaskWebhook) -> Result<()>;
    /// Every registered Autotask webhook.
    async fn autotask_webhooks(&self) -> Result<Vec<AutotaskWebhook>>;
    /// Forgets a registered Autotask webhook.
    async fn delete_autotask_webhook(&self, workflow: &str, trigger: &str, org: &str)
    -> Result<()>;

    /// An org's standing link to a form, if one was issued.
    async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>>;
    /// The link whose token hashes to `token_hash`, if any.
    async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>>;
    /// An org's standing link to a form, storing the given token first if there is none.
    /// True when stored now.
    async fn ensure_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<(FormLinkRecord, bool)>;
    /// Replaces the token of an org's link (issuing the link if there is none); the old
    /// token stops working at once and the generation moves on.
    async fn rotate_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<FormLinkRecord>;
    /// Turns an org's link on or off and sets (or clears) its expiry; not found when no link
    /// was issued.
    async fn set_form_link(
        &self,
        form: &str,
        org: &str,
        enabled: bool,
        expires_at: Option<&str>,
    ) -> Result<FormLinkRecord>;
    /// The links issued, of one form and/or one org, by form then org.
    async fn form_links(
        &self,
        form: Option<&str>,
        org: Option<&str>,
    ) -> Result<Vec<FormLinkRecord>>;
    /// Stores an accepted form submission (replacing its execution ids when stored again).
    /// Conflict when a submission through the same single-use link (`single_use:…`) is
    /// stored already.
    async fn save_form_submission(&self, submission: &FormSubmission) -> Result<()>;
    /// The submission that came through `link` (a single-use link is used up by it).
    async fn form_submission_by_link(&self, link: &str) -> Result<Option<FormSubmission>>;
    /// Accepted submissions, newest first, of one form and/or one org.
    async fn form_submissions(
        &self,
        form: Option<&str>,
        org: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FormSubmission>>;
}

/// Organizations and what belongs to them: variables, integrations, mappings to external
/// records (and exclusions), the synced directory and sync runs.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates or updates an org (by id). A name another org has is a conflict.
    async fn save_org(&self, org: &OrgRecord) -> Result<()>;
    /// An org by id, or by name (case-insensitively).
    async fn org(&self, id_or_name: &str) -> Result<OrgRecord>;
    /// Every org, parents before children, by name.
    async fn list_orgs(&self) -> Result<Vec<OrgRecord>>;
    /// Deletes an org with its variables, integrations and mapping; refused (conflict) while
    /// it has child orgs or unfinished executions.
    async fn delete_org(&self, id: &str) -> Result<()>;
    /// Sets a variable (`value` is JSON text, already sealed when `secret`).
    async fn set_org_var(&self, var: &OrgVar) -> Result<()>;
    /// Removes a variable; false when there was none.
    async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool>;
    /// An org's own variables, by key.
    async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>>;
    /// Creates or replaces an integration instance.
    async fn save_integration(&self, integration: &IntegrationRecord) -> Result<()>;
    /// Removes an integration instance; false when there was none.
    async fn delete_integration(&self, org_id: &str, kind: &str, name: &str) -> Result<bool>;
    /// Integration instances of one org, or of every org.
    async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>>;
    /// Links an org to an external record (replacing the org's link of that kind); an
    /// external record linked to another org is a conflict.
    async fn set_mapping(&self, mapping: &OrgMapping) -> Result<()>;
    /// Unlinks an org; false when it was not linked.
    async fn delete_mapping(&self, org_id: &str, kind: &str) -> Result<bool>;
    /// Every link of a kind.
    async fn mappings(&self, kind: &str) -> Result<Vec<OrgMapping>>;
    /// An org's links, one per kind.
    async fn org_mappings(&self, org_id: &str) -> Result<Vec<OrgMapping>>;
    /// Excludes an external record from matching and creation (kept across syncs).
    async fn exclude(&self, kind: &str, external_id: &str, name: Option<&str>) -> Result<()>;
    /// Lifts an exclusion; false when there was none.
    async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool>;
    /// Excluded external records of a kind: `(external_id, name)`.
    async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>>;
    /// Inserts or updates directory records (by source, kind and external id).
    async fn save_directory(&self, records: &[DirectoryRecord]) -> Result<()>;
    /// Directory records of a source and kind, optionally of one org.
    async fn directory(
        &self,
        source: &str,
        kind: &str,
        org_id: Option<&str>,
    ) -> Result<Vec<DirectoryRecord>>;
    /// Records the start of a sync run; returns its id.
    async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64>;
    /// Records how a sync run ended.
    async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()>;
    /// Sync runs, newest first.
    async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>>;
}

/// Installed crates.
#[async_trait]
pub trait CrateStore: Send + Sync {
    /// Records (inserts or replaces) a crate install.
    async fn save_crate_install(&self, install: &CrateInstall) -> Result<()>;
    /// Crate installs, by crate then org; only `org`'s when given.
    async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>>;
    /// Removes a crate install record; false when there was none.
    async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool>;
}

/// Installation-wide settings.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The value of a setting, storing `value` first if there is none. True when stored now.
    async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)>;
    /// The value of a setting, if set.
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Sets (or replaces) a setting.
    async fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    /// A number that moves whenever configuration changes — orgs, their variables,
    /// integrations, mappings, directory, forms and form links, trigger switches, webhook
    /// secrets — by any process (the database raises it): what was derived from them may be
    /// kept until it moves.
    async fn config_generation(&self) -> Result<i64>;
}

/// Limits every process on one database shares: numbered slots a holder keeps until a time
/// (at most `limit` requests in flight to an API, whichever process sends them), and counters
/// per minute (requests sent in a rolling hour). Keys are the caller's; they never come from
/// network input.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Takes one of the slots `0..limit` of `key` for `holder` until `until_ms` (ms since the
    /// epoch): a slot nobody holds, or one whose holder's time ended by `now_ms`. The slot
    /// taken, or `None` while all are held.
    async fn take_slot(
        &self,
        key: &str,
        limit: u32,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<u32>>;
    /// Gives back a slot `holder` took (nothing when another holder has it since).
    async fn free_slot(&self, key: &str, slot: u32, holder: &str) -> Result<()>;
    /// Adds `n` to `key`'s counter of `minute` (minutes since the epoch) and, when given,
    /// forgets its counters older than `forget_before`.
    async fn add_count(
        &self,
        key: &str,
        minute: i64,
        n: i64,
        forget_before: Option<i64>,
    ) -> Result<()>;
    /// The sum of `key`'s counters from `from_minute` on.
    async fn count_since(&self, key: &str, from_minute: i64) -> Result<i64>;
}

/// The storage seam: every concern's store in one (see the sub-traits for the methods).
pub trait Store:
    WorkflowStore
    + ExecutionStore
    + QueueStore
    + TriggerStore
    + OrgStore
    + CrateStore
    + SettingsStore
    + LimitStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: WorkflowStore
        + ExecutionStore
        + QueueStore
        + TriggerStore
        + OrgStore
        + CrateStore
        + SettingsStore
        + LimitStore
        + Send
        + Sync
        + 'static
{
}
