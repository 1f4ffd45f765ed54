//! A store whose every call holds a paused clock still.
//!
//! `weft test` runs executions on a Tokio runtime whose clock is paused: when nothing is left
//! to do but wait for a timer, the clock jumps to it, so a `retry` delay of ten minutes passes
//! at once. A store call waits on another thread (SQLite's), which to the runtime also looks
//! like nothing to do; without a hold the clock would jump while a row is being written and
//! fire a task's `timeout` that had not really passed. A blocking task that lives as long
//! as the call is what keeps Tokio from advancing a paused clock, so each call runs beside one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use weft_engine::store::*;

/// Runs `call` while a paused clock may not jump (see the module's docs).
pub async fn holding<T>(call: impl Future<Output = T>) -> T {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = tokio::task::spawn_blocking(move || {
        let _ = released.recv();
    });
    let out = call.await;
    drop(release);
    // The hold ends when the blocking task does; waiting for it means the clock moves only
    // once the call's effects are visible.
    let _ = holder.await;
    out
}

/// Wraps a store so that its calls never let a paused clock jump.
pub struct Held {
    inner: Arc<dyn Store>,
}

impl Held {
    /// `inner`, held.
    pub fn new(inner: Arc<dyn Store>) -> Held {
        Held { inner }
    }

    async fn held<T>(&self, call: impl Future<Output = T>) -> T {
        holding(call).await
    }
}

#[async_trait]
impl WorkflowStore for Held {
    async fn deploy_workflow(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord> {
        self.held(self.inner.deploy_workflow(name, source, path))
            .await
    }
    async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord> {
        self.held(self.inner.workflow(name, version)).await
    }
    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord> {
        self.held(self.inner.workflow_by_id(id)).await
    }
    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>> {
        self.held(self.inner.list_workflows()).await
    }
    async fn deploy_form(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<FormRecord> {
        self.held(self.inner.deploy_form(name, source, path)).await
    }
    async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord> {
        self.held(self.inner.form(name, version)).await
    }
    async fn list_forms(&self) -> Result<Vec<FormRecord>> {
        self.held(self.inner.list_forms()).await
    }
    async fn last_deploy_id(&self) -> Result<i64> {
        self.held(self.inner.last_deploy_id()).await
    }
}

#[async_trait]
impl ExecutionStore for Held {
    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()> {
        self.held(self.inner.create_execution(e, runs)).await
    }
    async fn claim_execution(
        &self,
        id: &str,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<&str>,
    ) -> Result<bool> {
        self.held(
            self.inner
                .claim_execution(id, owner, lease_until_ms, now_ms, stale_owner),
        )
        .await
    }
    async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64> {
        self.held(self.inner.renew_leases(owner, lease_until_ms))
            .await
    }
    async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>> {
        self.held(self.inner.cancel_requests(owner)).await
    }
    async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>> {
        self.held(self.inner.unfinished_executions()).await
    }
    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()> {
        self.held(self.inner.record_task_runs(runs)).await
    }
    async fn finish_execution(
        &self,
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        self.held(
            self.inner
                .finish_execution(id, status, output, error, finished_at),
        )
        .await
    }
    async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
        self.held(self.inner.execution(id)).await
    }
    async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>> {
        self.held(self.inner.task_runs(execution_id)).await
    }
    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        self.held(self.inner.list_executions(filter)).await
    }
    async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>> {
        self.held(self.inner.children(id)).await
    }
    async fn request_cancel(&self, id: &str) -> Result<()> {
        self.held(self.inner.request_cancel(id)).await
    }
    async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64> {
        self.held(self.inner.purge(finished_before, scope)).await
    }
}

#[async_trait]
impl QueueStore for Held {
    async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64> {
        self.held(self.inner.purge_trigger_events(before, scope))
            .await
    }
    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>> {
        self.held(self.inner.record_event(event, executions)).await
    }
    async fn trigger_events(
        &self,
        workflow: &str,
        trigger: &str,
        limit: i64,
    ) -> Result<Vec<TriggerEvent>> {
        self.held(self.inner.trigger_events(workflow, trigger, limit))
            .await
    }
    async fn last_dedupe_key(
        &self,
        workflow: &str,
        trigger: &str,
        prefix: &str,
    ) -> Result<Option<String>> {
        self.held(self.inner.last_dedupe_key(workflow, trigger, prefix))
            .await
    }
    async fn claim_next(
        &self,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>> {
        self.held(self.inner.claim_next(owner, lease_until_ms, now_ms))
            .await
    }
    async fn queue_depth(&self) -> Result<i64> {
        self.held(self.inner.queue_depth()).await
    }
    async fn wait_for_work(&self, timeout: Duration) {
        self.held(self.inner.wait_for_work(timeout)).await
    }
}

#[async_trait]
impl TriggerStore for Held {
    async fn set_trigger_enabled(
        &self,
        workflow: &str,
        trigger: &str,
        enabled: bool,
    ) -> Result<()> {
        self.held(self.inner.set_trigger_enabled(workflow, trigger, enabled))
            .await
    }
    async fn trigger_switches(&self) -> Result<Vec<(String, String, bool)>> {
        self.held(self.inner.trigger_switches()).await
    }
    async fn webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<Option<WebhookSecretRecord>> {
        self.held(self.inner.webhook_secret(workflow, trigger, org))
            .await
    }
    async fn ensure_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
    ) -> Result<(WebhookSecretRecord, bool)> {
        self.held(
            self.inner
                .ensure_webhook_secret(workflow, trigger, org, sealed),
        )
        .await
    }
    async fn rotate_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
        previous_until: Option<&str>,
    ) -> Result<WebhookSecretRecord> {
        self.held(
            self.inner
                .rotate_webhook_secret(workflow, trigger, org, sealed, previous_until),
        )
        .await
    }
    async fn save_autotask_webhook(&self, webhook: &AutotaskWebhook) -> Result<()> {
        self.held(self.inner.save_autotask_webhook(webhook)).await
    }
    async fn autotask_webhooks(&self) -> Result<Vec<AutotaskWebhook>> {
        self.held(self.inner.autotask_webhooks()).await
    }
    async fn delete_autotask_webhook(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<()> {
        self.held(self.inner.delete_autotask_webhook(workflow, trigger, org))
            .await
    }
    async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>> {
        self.held(self.inner.form_link(form, org)).await
    }
    async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>> {
        self.held(self.inner.form_link_by_hash(token_hash)).await
    }
    async fn ensure_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<(FormLinkRecord, bool)> {
        self.held(self.inner.ensure_form_link(form, org, token_hash, sealed))
            .await
    }
    async fn rotate_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<FormLinkRecord> {
        self.held(self.inner.rotate_form_link(form, org, token_hash, sealed))
            .await
    }
    async fn set_form_link(
        &self,
        form: &str,
        org: &str,
        enabled: bool,
        expires_at: Option<&str>,
    ) -> Result<FormLinkRecord> {
        self.held(self.inner.set_form_link(form, org, enabled, expires_at))
            .await
    }
    async fn form_links(
        &self,
        form: Option<&str>,
        org: Option<&str>,
    ) -> Result<Vec<FormLinkRecord>> {
        self.held(self.inner.form_links(form, org)).await
    }
    async fn save_form_submission(&self, submission: &FormSubmission) -> Result<()> {
        self.held(self.inner.save_form_submission(submission)).await
    }
    async fn form_submission_by_link(&self, link: &str) -> Result<Option<FormSubmission>> {
        self.held(self.inner.form_submission_by_link(link)).await
    }
    async fn form_submissions(
        &self,
        form: Option<&str>,
        org: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FormSubmission>> {
        self.held(self.inner.form_submissions(form, org, limit))
            .await
    }
}

#[async_trait]
impl OrgStore for Held {
    async fn save_org(&self, org: &OrgRecord) -> Result<()> {
        self.held(self.inner.save_org(org)).await
    }
    async fn org(&self, id_or_name: &str) -> Result<OrgRecord> {
        self.held(self.inner.org(id_or_name)).await
    }
    async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
        self.held(self.inner.list_orgs()).await
    }
    async fn delete_org(&self, id: &str) -> Result<()> {
        self.held(self.inner.delete_org(id)).await
    }
    async fn set_org_var(&self, var: &OrgVar) -> Result<()> {
        self.held(self.inner.set_org_var(var)).await
    }
    async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool> {
        self.held(self.inner.delete_org_var(org_id, key)).await
    }
    async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>> {
        self.held(self.inner.org_vars(org_id)).await
    }
    async fn save_integration(&self, integration: &IntegrationRecord) -> Result<()> {
        self.held(self.inner.save_integration(integration)).await
    }
    async fn delete_integration(&self, org_id: &str, kind: &str, name: &str) -> Result<bool> {
        self.held(self.inner.delete_integration(org_id, kind, name))
            .await
    }
    async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>> {
        self.held(self.inner.integrations(org_id)).await
    }
    async fn set_mapping(&self, mapping: &OrgMapping) -> Result<()> {
        self.held(self.inner.set_mapping(mapping)).await
    }
    async fn delete_mapping(&self, org_id: &str, kind: &str) -> Result<bool> {
        self.held(self.inner.delete_mapping(org_id, kind)).await
    }
    async fn mappings(&self, kind: &str) -> Result<Vec<OrgMapping>> {
        self.held(self.inner.mappings(kind)).await
    }
    async fn org_mappings(&self, org_id: &str) -> Result<Vec<OrgMapping>> {
        self.held(self.inner.org_mappings(org_id)).await
    }
    async fn exclude(&self, kind: &str, external_id: &str, name: Option<&str>) -> Result<()> {
        self.held(self.inner.exclude(kind, external_id, name)).await
    }
    async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool> {
        self.held(self.inner.unexclude(kind, external_id)).await
    }
    async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>> {
        self.held(self.inner.exclusions(kind)).await
    }
    async fn save_directory(&self, records: &[DirectoryRecord]) -> Result<()> {
        self.held(self.inner.save_directory(records)).await
    }
    async fn directory(
        &self,
        source: &str,
        kind: &str,
        org_id: Option<&str>,
    ) -> Result<Vec<DirectoryRecord>> {
        self.held(self.inner.directory(source, kind, org_id)).await
    }
    async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64> {
        self.held(self.inner.start_sync_run(source, org_id, mode))
            .await
    }
    async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()> {
        self.held(self.inner.finish_sync_run(id, counts, errors))
            .await
    }
    async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>> {
        self.held(self.inner.sync_runs(limit)).await
    }
}

#[async_trait]
impl CrateStore for Held {
    async fn save_crate_install(&self, install: &CrateInstall) -> Result<()> {
        self.held(self.inner.save_crate_install(install)).await
    }
    async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>> {
        self.held(self.inner.crate_installs(org)).await
    }
    async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool> {
        self.held(self.inner.delete_crate_install(crate_name, org))
            .await
    }
}

#[async_trait]
impl SettingsStore for Held {
    async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)> {
        self.held(self.inner.ensure_setting(key, value)).await
    }
    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        self.held(self.inner.get_setting(key)).await
    }
    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.held(self.inner.set_setting(key, value)).await
    }
    async fn config_generation(&self) -> Result<i64> {
        self.held(self.inner.config_generation()).await
    }
}

#[async_trait]
impl LimitStore for Held {
    async fn take_slot(
        &self,
        key: &str,
        limit: u32,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<u32>> {
        self.held(self.inner.take_slot(key, limit, holder, now_ms, until_ms))
            .await
    }
    async fn free_slot(&self, key: &str, slot: u32, holder: &str) -> Result<()> {
        self.held(self.inner.free_slot(key, slot, holder)).await
    }
    async fn add_count(
        &self,
        key: &str,
        minute: i64,
        n: i64,
        forget_before: Option<i64>,
    ) -> Result<()> {
        self.held(self.inner.add_count(key, minute, n, forget_before))
            .await
    }
    async fn count_since(&self, key: &str, from_minute: i64) -> Result<i64> {
        self.held(self.inner.count_since(key, from_minute)).await
    }
}
