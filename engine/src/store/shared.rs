//! The store core: what SQLite and PostgreSQL do alike, written once.
//!
//! Both backends keep the same tables the same way (JSON and timestamps as text, statuses by
//! name; booleans are `BOOLEAN` on PostgreSQL and `INTEGER` 0/1 on SQLite, which sqlx binds
//! and reads as `bool` on both), and SQLite takes `$1`-style placeholders as PostgreSQL does.
//! So one SQL text serves both for nearly every statement, and so does the Rust around it:
//!
//! * each concern's trait is implemented by a macro here ([`workflow_store!`],
//!   [`execution_store!`], [`queue_store!`], [`trigger_store!`], [`org_store!`],
//!   [`crate_store!`], [`settings_store!`]) that expands, inside the backend's module, to the
//!   shared methods plus the ones the backend writes itself (given in braces). A macro rather
//!   than generic functions: the bodies compile against each concrete pool, with none of the
//!   bounds sqlx would want for a generic executor. [`store_helpers!`] and
//!   [`insert_execution_row!`] do the same for the helpers those methods call;
//! * statements built piece by piece are generic functions over [`sqlx::Database`]
//!   ([`push_task_runs`] here, `purge_batch` in the parent module);
//! * the column lists, the deploy rule's [`Versioned`] tables and the foreign-key error
//!   mapping ([`fk_not_found`]) are plain items.
//!
//! What stays per backend, and why:
//!
//! * claiming (`claim_execution`, `claim_next`): SQLite has one writer, so a single `UPDATE`
//!   counts a concurrency group and claims under it; PostgreSQL takes candidates `FOR UPDATE
//!   SKIP LOCKED` and counts a group under its advisory lock;
//! * waking workers: PostgreSQL announces queued work and freed concurrency slots with
//!   `NOTIFY` (in `insert_execution` and `finish_execution`) and listens in `wait_for_work`;
//!   SQLite workers poll (the trait's default);
//! * the execution path's writes: on SQLite the writer (`sqlite_writer.rs`) group-commits
//!   trigger events with their executions (`record_event`), new executions
//!   (`create_execution`), claims, task runs and execution ends on a rusqlite connection;
//!   PostgreSQL writes them in transactions of the pool, task runs in statements of at most
//!   1000 rows (its parameter limit);
//! * the execution path's reads go through `read_rows` (and `read_int`), which each backend
//!   defines: SQLite reads on rusqlite connections of its own, inline; PostgreSQL on the pool;
//! * opening: connect options, migrations, SQLite's file permissions and migration lock,
//!   PostgreSQL's schemas.
//!
//! The few spellings that differ inside shared statements are items each backend module
//! defines under the same names, which the macros use:
//!
//! * `Db`: the backend's [`sqlx::Database`];
//! * `ID_PREFIX_MATCH`: the condition matching executions whose id starts with `$1` (ASCII
//!   case ignored: SQLite's `LIKE`, PostgreSQL's `ILIKE` without an escape character);
//! * `CANCEL_ROOT`: the first row of the recursive cancel tree (`$1`; PostgreSQL needs its
//!   type and collation spelled out to match the `id` column);
//! * `limit_arg`: a `LIMIT` argument where a negative limit means none (SQLite takes a
//!   negative limit as none; PostgreSQL takes `NULL`);
//! * `stored_text`: a message as stored (PostgreSQL text cannot hold NUL characters);
//! * `lock_versions`: what a deploy takes before choosing the next version (PostgreSQL: an
//!   advisory lock per name; SQLite: nothing);
//! * `read_rows(sql, args, map)` and `read_int(sql)`: a read of the execution path, its
//!   arguments given as [`Arg`]s and its rows mapped by a mapper of `rows.rs`;

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{StoreError, TASK_RUN_COLUMNS, TASK_RUN_UPSERT, TaskRun, json_to_text};

/// The columns of `executions`, in the order every backend writes and reads them.
pub(super) const EXECUTION_COLUMNS: &str = "id, workflow_id, workflow_name, workflow_version, status, org, input, vars, trigger, output, error, parent_id, parent_task, rerun_of, cancel_requested, owner, lease_until_ms, created_at, started_at, finished_at, concurrency_key, concurrency_limit, sealed";

/// An argument of a read through a backend's `read_rows`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// A new execution: the columns of [`EXECUTION_COLUMNS`] but output and cancel_requested,
/// then event_id, as `$1`…`$22`.
pub(super) static INSERT_EXECUTION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO executions ({EXECUTION_COLUMNS}, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12, $13, FALSE, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    )
});

/// A trigger event; nothing for a dedupe key seen before (its id otherwise).
pub(super) const INSERT_EVENT: &str = "INSERT INTO trigger_events (workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING id";

/// The columns of `webhook_secrets`.
pub(super) const WEBHOOK_SECRET_COLUMNS: &str =
    "workflow, trigger, org, secret, previous, previous_until, created_at, rotated_at";

/// The columns of `orgs` (qualified: [`org_store!`] joins them with the org tree).
pub(super) const ORG_COLUMNS: &str = "orgs.id, orgs.name, orgs.parent_id, orgs.tags, orgs.attributes, orgs.active, orgs.created_at, orgs.updated_at";

/// The versioned sources: workflows and forms keep their versions by one rule.
#[derive(Debug, Clone, Copy)]
pub(super) enum Versioned {
    Workflows,
    Forms,
}

impl Versioned {
    pub(super) fn table(self) -> &'static str {
        match self {
            Versioned::Workflows => "workflows",
            Versioned::Forms => "forms",
        }
    }
}

/// A foreign-key failure on `what` as "not found".
pub(super) fn fk_not_found(e: sqlx::Error, what: &str, id: &str) -> StoreError {
    match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::not_found(format!("{what} `{id}`"))
        }
        other => other.into(),
    }
}

/// Appends an upsert of `runs` (one statement, however many rows) to an empty builder.
pub(super) fn push_task_runs<'a, 'r, DB: Database>(
    qb: &mut QueryBuilder<'a, DB>,
    runs: impl IntoIterator<Item = &'r TaskRun>,
) where
    String: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB>,
    Option<i64>: Encode<'a, DB>,
{
    qb.push(format!("INSERT INTO task_runs ({TASK_RUN_COLUMNS}) "));
    qb.push_values(runs, |mut b, r| {
        b.push_bind(r.execution_id.clone())
            .push_bind(r.task.clone())
            .push_bind(r.item)
            .push_bind(r.attempt)
            .push_bind(r.status.as_str())
            .push_bind(r.seq)
            .push_bind(json_to_text(&r.input))
            .push_bind(json_to_text(&r.result))
            .push_bind(json_to_text(&r.error))
            .push_bind(json_to_text(&r.routes))
            .push_bind(json_to_text(&r.publish))
            .push_bind(r.reused)
            .push_bind(r.started_at.clone())
            .push_bind(r.finished_at.clone())
            .push_bind(r.duration_ms);
    });
    // A finished row is never turned back into a running one.
    qb.push(TASK_RUN_UPSERT);
}

/// The inherent helpers of a backend's store type: `deploy_version` (the deploy rule of
/// workflows and forms) and `mappings_where`.
macro_rules! store_helpers {
    ($store:ident) => {
        impl $store {
            /// Stores `source` as the next version of `name`, unless it equals the latest
            /// version; the row id of the version that holds it.
            async fn deploy_version(
                &self,
                kind: Versioned,
                name: &str,
                source: &str,
                path: Option<&str>,
            ) -> Result<i64> {
                use sha2::Digest;
                let table = kind.table();
                let hash = hex::encode(sha2::Sha256::digest(source.as_bytes()));
                let mut tx = begin_write(&self.pool).await?;
                lock_versions(&mut tx, kind, name).await?;
                let latest = sqlx::query(&format!("SELECT id, version, source_hash FROM {table} WHERE name = $1 ORDER BY version DESC LIMIT 1"))
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = &latest
                    && row.try_get::<String, _>("source_hash")? == hash
                {
                    let id: i64 = row.try_get("id")?;
                    tx.commit().await?;
                    return Ok(id);
                }
                let version = latest.map_or(Ok(0), |r| r.try_get::<i64, _>("version"))? + 1;
                let id: i64 = sqlx::query_scalar(&format!("INSERT INTO {table} (name, version, source, source_hash, path, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"))
                    .bind(name)
                    .bind(version)
                    .bind(source)
                    .bind(&hash)
                    .bind(path)
                    .bind(now_rfc3339())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }

            /// Mappings whose `column` (`kind` or `org_id`) is `value`.
            async fn mappings_where(&self, column: &str, value: &str) -> Result<Vec<OrgMapping>> {
                let rows = sqlx::query(&format!("SELECT org_id, kind, external_id, external_name, created_at FROM org_mappings WHERE {column} = $1 ORDER BY org_id, kind"))
                    .bind(value)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OrgMapping {
                            org_id: r.try_get("org_id")?,
                            kind: r.try_get("kind")?,
                            external_id: r.try_get("external_id")?,
                            external_name: r.try_get("external_name")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(super) use store_helpers;

/// `insert_execution_row(conn, e, event_id)`: inserts an execution, running when it has an
/// owner, else queued (pending); returns the status it was stored with.
macro_rules! insert_execution_row {
    () => {
        async fn insert_execution_row(
            conn: &mut <Db as sqlx::Database>::Connection,
            e: &NewExecution,
            event_id: Option<i64>,
        ) -> Result<ExecStatus> {
            let status = e.initial_status();
            let (owner, lease) = match &e.error {
                Some(_) => (None, None),
                None => (e.owner.as_ref(), e.lease_until_ms),
            };
            sqlx::query(&INSERT_EXECUTION)
                .bind(&e.id)
                .bind(e.workflow.id)
                .bind(&e.workflow.name)
                .bind(e.workflow.version)
                .bind(status.as_str())
                .bind(&e.org)
                .bind(e.input.to_string())
                .bind(e.vars.to_string())
                .bind(e.trigger.to_string())
                .bind(stored_text(e.error.as_deref()))
                .bind(&e.parent_id)
                .bind(&e.parent_task)
                .bind(&e.rerun_of)
                .bind(owner)
                .bind(lease)
                .bind(&e.created_at)
                .bind((status != ExecStatus::Pending).then_some(&e.created_at))
                .bind(e.error.as_ref().map(|_| &e.created_at))
                .bind(&e.concurrency_key)
                .bind(e.concurrency_limit)
                .bind(&e.sealed)
                .bind(event_id)
                .execute(&mut *conn)
                .await?;
            Ok(status)
        }
    };
}
pub(super) use insert_execution_row;

/// [`WorkflowStore`](super::WorkflowStore) for `$store`: entirely shared.
macro_rules! workflow_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::WorkflowStore for $store {
            async fn deploy_workflow(
                &self,
                name: &str,
                source: &str,
                path: Option<&str>,
            ) -> Result<WorkflowRecord> {
                let id = self
                    .deploy_version(Versioned::Workflows, name, source, path)
                    .await?;
                self.workflow_by_id(id).await
            }

            async fn deploy_form(
                &self,
                name: &str,
                source: &str,
                path: Option<&str>,
            ) -> Result<FormRecord> {
                let id = self
                    .deploy_version(Versioned::Forms, name, source, path)
                    .await?;
                let row = sqlx::query("SELECT * FROM forms WHERE id = $1")
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?;
                workflow_from_row(&row)
            }

            async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord> {
                let row = match version {
                    Some(v) => {
                        sqlx::query("SELECT * FROM forms WHERE name = $1 AND version = $2")
                            .bind(name)
                            .bind(v)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query("SELECT * FROM forms WHERE name = $1 ORDER BY version DESC LIMIT 1")
                            .bind(name)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                };
                let row = row.ok_or_else(|| StoreError::not_found(format!("form `{name}`")))?;
                workflow_from_row(&row)
            }

            async fn list_forms(&self) -> Result<Vec<FormRecord>> {
                let rows = sqlx::query("SELECT f.* FROM forms f WHERE f.version = (SELECT MAX(version) FROM forms x WHERE x.name = f.name) ORDER BY f.name")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(workflow_from_row).collect()
            }

            async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord> {
                let found = match version {
                    Some(v) => {
                        self.read_rows(
                            "SELECT * FROM workflows WHERE name = $1 AND version = $2",
                            &[Arg::Text(name), Arg::Int(v)],
                            |r| workflow_from_row(r),
                        )
                        .await?
                    }
                    None => {
                        self.read_rows(
                            "SELECT * FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1",
                            &[Arg::Text(name)],
                            |r| workflow_from_row(r),
                        )
                        .await?
                    }
                };
                found
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::not_found(format!("workflow `{name}`")))
            }

            async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord> {
                self.read_rows(
                    "SELECT * FROM workflows WHERE id = $1",
                    &[Arg::Int(id)],
                    |r| workflow_from_row(r),
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::not_found(format!("workflow version {id}")))
            }

            async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>> {
                let rows = sqlx::query("SELECT w.* FROM workflows w WHERE w.version = (SELECT MAX(version) FROM workflows x WHERE x.name = w.name) ORDER BY w.name")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(workflow_from_row).collect()
            }

            async fn last_deploy_id(&self) -> Result<i64> {
                self.read_int("SELECT COALESCE(MAX(id), 0) FROM workflows").await
            }

            $($own)*
        }
    };
}
pub(super) use workflow_store;

/// [`ExecutionStore`](super::ExecutionStore) for `$store`; the backend writes
/// `claim_execution`, `record_task_runs` and `finish_execution`.
macro_rules! execution_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::ExecutionStore for $store {
            async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64> {
                let done = sqlx::query("UPDATE executions SET lease_until_ms = $1 WHERE owner = $2 AND status IN ('pending', 'running')")
                    .bind(lease_until_ms)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT id FROM executions WHERE owner = $1 AND cancel_requested AND status IN ('pending', 'running')")
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>> {
                let rows = sqlx::query(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE status IN ('pending', 'running') ORDER BY created_at"))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(execution_from_row).collect()
            }

            async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
                // Users may type the first characters of an id, as with git commits.
                let sql = if id.len() >= 36 {
                    format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1")
                } else {
                    format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE {ID_PREFIX_MATCH} LIMIT 2")
                };
                let found = self
                    .read_rows(&sql, &[Arg::Text(id)], |r| execution_from_row(r))
                    .await?;
                match <[ExecutionRecord; 1]>::try_from(found) {
                    Ok([one]) => Ok(one),
                    Err(found) if found.is_empty() => {
                        Err(StoreError::not_found(format!("execution `{id}`")))
                    }
                    Err(_) => Err(StoreError::Conflict(format!(
                        "`{id}` matches several executions; give more of the id"
                    ))),
                }
            }

            async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>> {
                self.read_rows(
                    &format!(
                        "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE execution_id = $1 \
                         ORDER BY COALESCE(started_at, finished_at) NULLS FIRST, attempt, task, item"
                    ),
                    &[Arg::Text(execution_id)],
                    |r| task_run_from_row(r),
                )
                .await
            }

            async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
                let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions WHERE TRUE"
                ));
                if let Some(s) = filter.status {
                    qb.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(w) = &filter.workflow {
                    qb.push(" AND workflow_name = ").push_bind(w.clone());
                }
                if let Some(o) = &filter.org {
                    qb.push(" AND org = ").push_bind(o.clone());
                }
                if filter.top_level_only {
                    qb.push(" AND parent_id IS NULL");
                }
                if let Some(t) = &filter.created_after {
                    qb.push(" AND created_at >= ").push_bind(t.clone());
                }
                qb.push(" ORDER BY created_at DESC, id LIMIT ")
                    .push_bind(limit_arg(filter.limit.unwrap_or(50)))
                    .push(" OFFSET ")
                    .push_bind(filter.offset.unwrap_or(0).max(0));
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(execution_from_row).collect()
            }

            async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions WHERE parent_id = $1 ORDER BY created_at"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(execution_from_row).collect()
            }

            async fn request_cancel(&self, id: &str) -> Result<()> {
                let exec = self.execution(id).await?;
                if exec.status.is_final() {
                    return Err(StoreError::Conflict(format!(
                        "execution {} already {}",
                        exec.id, exec.status
                    )));
                }
                sqlx::query(&format!(
                    "WITH RECURSIVE tree(id) AS (SELECT {CANCEL_ROOT} UNION ALL SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id) \
                     UPDATE executions SET cancel_requested = TRUE WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running')",
                ))
                .bind(&exec.id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64> {
                // In batches, oldest first: each holds the write lock briefly, so running
                // executions keep committing their steps between them.
                let mut total = 0;
                loop {
                    let mut qb = purge_batch::<Db>(finished_before, scope);
                    let done = qb.build().execute(&self.pool).await?.rows_affected();
                    total += done;
                    if done < PURGE_BATCH as u64 {
                        return Ok(total);
                    }
                    tokio::task::yield_now().await;
                }
            }

            $($own)*
        }
    };
}
pub(super) use execution_store;

/// [`QueueStore`](super::QueueStore) for `$store`; the backend writes `claim_next` (and
/// `wait_for_work` when it can hear other processes).
macro_rules! queue_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::QueueStore for $store {
            async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64> {
                let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(
                    // Keeps each trigger's greatest de-duplication key: the row `last_dedupe_key` reads.
                    "DELETE FROM trigger_events WHERE (dedupe_key IS NULL OR EXISTS (SELECT 1 FROM trigger_events k WHERE k.workflow = trigger_events.workflow AND k.trigger = trigger_events.trigger AND k.dedupe_key > trigger_events.dedupe_key)) AND created_at < ",
                );
                qb.push_bind(before.to_string());
                if let Some(org) = &scope.only {
                    qb.push(" AND org = ").push_bind(org.clone());
                }
                for org in &scope.except {
                    qb.push(" AND org <> ").push_bind(org.clone());
                }
                Ok(qb.build().execute(&self.pool).await?.rows_affected())
            }

            async fn trigger_events(
                &self,
                workflow: &str,
                trigger: &str,
                limit: i64,
            ) -> Result<Vec<TriggerEvent>> {
                let rows = sqlx::query("SELECT id, workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at FROM trigger_events WHERE workflow = $1 AND trigger = $2 ORDER BY id DESC LIMIT $3")
                    .bind(workflow)
                    .bind(trigger)
                    .bind(limit_arg(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(trigger_event_from_row).collect()
            }

            async fn last_dedupe_key(
                &self,
                workflow: &str,
                trigger: &str,
                prefix: &str,
            ) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT MAX(dedupe_key) FROM trigger_events WHERE workflow = $1 AND trigger = $2 AND substr(dedupe_key, 1, length($3)) = $3")
                    .bind(workflow)
                    .bind(trigger)
                    .bind(prefix)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn queue_depth(&self) -> Result<i64> {
                Ok(
                    sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE status = 'pending'")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            $($own)*
        }
    };
}
pub(super) use queue_store;

/// [`TriggerStore`](super::TriggerStore) for `$store`: entirely shared.
macro_rules! trigger_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::TriggerStore for $store {
            async fn set_trigger_enabled(
                &self,
                workflow: &str,
                trigger: &str,
                enabled: bool,
            ) -> Result<()> {
                sqlx::query("INSERT INTO trigger_switches (workflow, trigger, enabled, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, trigger) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at")
                    .bind(workflow)
                    .bind(trigger)
                    .bind(enabled)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn trigger_switches(&self) -> Result<Vec<(String, String, bool)>> {
                self.read_rows(
                    "SELECT workflow, trigger, enabled FROM trigger_switches",
                    &[],
                    |r| $crate::store::rows::switch_from_row(r),
                )
                .await
            }

            async fn webhook_secret(
                &self,
                workflow: &str,
                trigger: &str,
                org: &str,
            ) -> Result<Option<WebhookSecretRecord>> {
                sqlx::query(&format!(
                    "SELECT {WEBHOOK_SECRET_COLUMNS} FROM webhook_secrets WHERE workflow = $1 AND trigger = $2 AND org = $3"
                ))
                .bind(workflow)
                .bind(trigger)
                .bind(org)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| webhook_secret_from_row(&r))
                .transpose()
            }

            async fn ensure_webhook_secret(
                &self,
                workflow: &str,
                trigger: &str,
                org: &str,
                sealed: &str,
            ) -> Result<(WebhookSecretRecord, bool)> {
                let inserted = sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow, trigger, org) DO NOTHING")
                    .bind(workflow)
                    .bind(trigger)
                    .bind(org)
                    .bind(sealed)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1;
                let record = self
                    .webhook_secret(workflow, trigger, org)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("webhook secret vanished".into()))?;
                Ok((record, inserted))
            }

            async fn rotate_webhook_secret(
                &self,
                workflow: &str,
                trigger: &str,
                org: &str,
                sealed: &str,
                previous_until: Option<&str>,
            ) -> Result<WebhookSecretRecord> {
                let now = now_rfc3339();
                // One statement: issues the secret if there is none, else keeps the old one as
                // `previous` only while it has a grace period.
                sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (workflow, trigger, org) DO UPDATE SET previous = CASE WHEN CAST($6 AS TEXT) IS NULL THEN NULL ELSE webhook_secrets.secret END, previous_until = $6, secret = excluded.secret, rotated_at = excluded.rotated_at")
                    .bind(workflow)
                    .bind(trigger)
                    .bind(org)
                    .bind(sealed)
                    .bind(&now)
                    .bind(previous_until)
                    .execute(&self.pool)
                    .await?;
                self.webhook_secret(workflow, trigger, org)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("webhook secret vanished".into()))
            }

            async fn save_autotask_webhook(&self, w: &AutotaskWebhook) -> Result<()> {
                sqlx::query("INSERT INTO autotask_webhooks (workflow, trigger, org, integration, entity, webhook_id, guid, secret, url, config_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (workflow, trigger, org) DO UPDATE SET integration = EXCLUDED.integration, entity = EXCLUDED.entity, webhook_id = EXCLUDED.webhook_id, guid = EXCLUDED.guid, secret = EXCLUDED.secret, url = EXCLUDED.url, config_hash = EXCLUDED.config_hash, created_at = EXCLUDED.created_at")
                    .bind(&w.workflow)
                    .bind(&w.trigger)
                    .bind(&w.org)
                    .bind(&w.integration)
                    .bind(&w.entity)
                    .bind(w.webhook_id)
                    .bind(&w.guid)
                    .bind(&w.secret)
                    .bind(&w.url)
                    .bind(&w.config_hash)
                    .bind(&w.created_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn autotask_webhooks(&self) -> Result<Vec<AutotaskWebhook>> {
                let rows = sqlx::query("SELECT workflow, trigger, org, integration, entity, webhook_id, guid, secret, url, config_hash, created_at FROM autotask_webhooks ORDER BY workflow, trigger, org")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(AutotaskWebhook {
                            workflow: r.try_get("workflow")?,
                            trigger: r.try_get("trigger")?,
                            org: r.try_get("org")?,
                            integration: r.try_get("integration")?,
                            entity: r.try_get("entity")?,
                            webhook_id: r.try_get("webhook_id")?,
                            guid: r.try_get("guid")?,
                            secret: r.try_get("secret")?,
                            url: r.try_get("url")?,
                            config_hash: r.try_get("config_hash")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn delete_autotask_webhook(
                &self,
                workflow: &str,
                trigger: &str,
                org: &str,
            ) -> Result<()> {
                sqlx::query(
                    "DELETE FROM autotask_webhooks WHERE workflow = $1 AND trigger = $2 AND org = $3",
                )
                .bind(workflow)
                .bind(trigger)
                .bind(org)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>> {
                sqlx::query("SELECT * FROM form_links WHERE form = $1 AND org = $2")
                    .bind(form)
                    .bind(org)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| form_link_from_row(&r))
                    .transpose()
            }

            async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>> {
                sqlx::query("SELECT * FROM form_links WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| form_link_from_row(&r))
                    .transpose()
            }

            async fn ensure_form_link(
                &self,
                form: &str,
                org: &str,
                token_hash: &str,
                sealed: &str,
            ) -> Result<(FormLinkRecord, bool)> {
                let inserted = sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (form, org) DO NOTHING")
                    .bind(form)
                    .bind(org)
                    .bind(token_hash)
                    .bind(sealed)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1;
                let record = self
                    .form_link(form, org)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("form link vanished".into()))?;
                Ok((record, inserted))
            }

            async fn rotate_form_link(
                &self,
                form: &str,
                org: &str,
                token_hash: &str,
                sealed: &str,
            ) -> Result<FormLinkRecord> {
                let now = now_rfc3339();
                sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (form, org) DO UPDATE SET token_hash = excluded.token_hash, token = excluded.token, generation = form_links.generation + 1, rotated_at = excluded.rotated_at")
                    .bind(form)
                    .bind(org)
                    .bind(token_hash)
                    .bind(sealed)
                    .bind(&now)
                    .bind(&now)
                    .execute(&self.pool)
                    .await?;
                self.form_link(form, org)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("form link vanished".into()))
            }

            async fn set_form_link(
                &self,
                form: &str,
                org: &str,
                enabled: bool,
                expires_at: Option<&str>,
            ) -> Result<FormLinkRecord> {
                sqlx::query(
                    "UPDATE form_links SET enabled = $1, expires_at = $2 WHERE form = $3 AND org = $4",
                )
                .bind(enabled)
                .bind(expires_at)
                .bind(form)
                .bind(org)
                .execute(&self.pool)
                .await?;
                self.form_link(form, org).await?.ok_or_else(|| {
                    StoreError::not_found(format!("a link to form `{form}` for organization `{org}`"))
                })
            }

            async fn form_links(
                &self,
                form: Option<&str>,
                org: Option<&str>,
            ) -> Result<Vec<FormLinkRecord>> {
                let rows = sqlx::query("SELECT * FROM form_links WHERE (CAST($1 AS TEXT) IS NULL OR form = $1) AND (CAST($2 AS TEXT) IS NULL OR org = $2) ORDER BY form, org")
                    .bind(form)
                    .bind(org)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(form_link_from_row).collect()
            }

            async fn save_form_submission(&self, s: &FormSubmission) -> Result<()> {
                sqlx::query("INSERT INTO form_submissions (id, form, form_version, org, link, data, execution_ids, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET execution_ids = excluded.execution_ids")
                    .bind(&s.id)
                    .bind(&s.form)
                    .bind(s.form_version)
                    .bind(&s.org)
                    .bind(&s.link)
                    .bind(s.values.to_string())
                    .bind(serde_json::json!(s.execution_ids).to_string())
                    .bind(&s.submitted_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| match e {
                        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                            format!("form link `{}` was used already", s.link),
                        ),
                        other => other.into(),
                    })?;
                Ok(())
            }

            async fn form_submission_by_link(&self, link: &str) -> Result<Option<FormSubmission>> {
                sqlx::query("SELECT * FROM form_submissions WHERE link = $1")
                    .bind(link)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| form_submission_from_row(&r))
                    .transpose()
            }

            async fn form_submissions(
                &self,
                form: Option<&str>,
                org: Option<&str>,
                limit: i64,
            ) -> Result<Vec<FormSubmission>> {
                let rows = sqlx::query("SELECT * FROM form_submissions WHERE (CAST($1 AS TEXT) IS NULL OR form = $1) AND (CAST($2 AS TEXT) IS NULL OR org = $2) ORDER BY submitted_at DESC, id DESC LIMIT $3")
                    .bind(form)
                    .bind(org)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(form_submission_from_row).collect()
            }

            $($own)*
        }
    };
}
pub(super) use trigger_store;

/// [`OrgStore`](super::OrgStore) for `$store`: entirely shared.
macro_rules! org_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::OrgStore for $store {
            async fn save_org(&self, o: &OrgRecord) -> Result<()> {
                let res = sqlx::query("INSERT INTO orgs (id, name, parent_id, tags, attributes, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id, tags = EXCLUDED.tags, attributes = EXCLUDED.attributes, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at")
                    .bind(&o.id)
                    .bind(&o.name)
                    .bind(&o.parent_id)
                    .bind(json_to_text(&Some(&o.tags)))
                    .bind(o.attributes.to_string())
                    .bind(o.active)
                    .bind(&o.created_at)
                    .bind(&o.updated_at)
                    .execute(&self.pool)
                    .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                        format!("another organization is already named `{}`", o.name),
                    )),
                    Err(e) => Err(fk_not_found(
                        e,
                        "parent organization",
                        o.parent_id.as_deref().unwrap_or_default(),
                    )),
                }
            }

            async fn org(&self, id_or_name: &str) -> Result<OrgRecord> {
                self.read_rows(
                    &format!(
                        "SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1 OR lower(name) = lower($2) ORDER BY id = $1 DESC LIMIT 1"
                    ),
                    &[Arg::Text(id_or_name), Arg::Text(id_or_name.trim())],
                    |r| org_from_row(r),
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::not_found(format!("organization `{id_or_name}`")))
            }

            async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
                self.read_rows(
                    &format!(
                        "WITH RECURSIVE tree(id, depth) AS (SELECT id, 0 FROM orgs WHERE parent_id IS NULL \
                         UNION ALL SELECT o.id, t.depth + 1 FROM orgs o JOIN tree t ON o.parent_id = t.id) \
                         SELECT {ORG_COLUMNS} FROM orgs JOIN tree USING (id) ORDER BY tree.depth, lower(orgs.name)"
                    ),
                    &[],
                    |r| org_from_row(r),
                )
                .await
            }

            async fn delete_org(&self, id: &str) -> Result<()> {
                let mut tx = begin_write(&self.pool).await?;
                let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs WHERE parent_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if children > 0 {
                    return Err(StoreError::Conflict(format!(
                        "organization `{id}` has {children} child organization(s): remove or move them first"
                    )));
                }
                let running: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM executions WHERE org = $1 AND status IN ('pending', 'running')",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if running > 0 {
                    return Err(StoreError::Conflict(format!(
                        "organization `{id}` has {running} execution(s) waiting or running: cancel them or let them finish first"
                    )));
                }
                let done = sqlx::query("DELETE FROM orgs WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("organization `{id}`")));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn set_org_var(&self, v: &OrgVar) -> Result<()> {
                sqlx::query("INSERT INTO org_vars (org_id, key, value, secret, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (org_id, key) DO UPDATE SET value = EXCLUDED.value, secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at")
                    .bind(&v.org_id)
                    .bind(&v.key)
                    .bind(&v.value)
                    .bind(v.secret)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| fk_not_found(e, "organization", &v.org_id))?;
                Ok(())
            }

            async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM org_vars WHERE org_id = $1 AND key = $2")
                    .bind(org_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>> {
                let rows = sqlx::query(
                    "SELECT org_id, key, value, secret FROM org_vars WHERE org_id = $1 ORDER BY key",
                )
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OrgVar {
                            org_id: r.try_get("org_id")?,
                            key: r.try_get("key")?,
                            value: r.try_get("value")?,
                            secret: r.try_get("secret")?,
                        })
                    })
                    .collect()
            }

            async fn save_integration(&self, i: &IntegrationRecord) -> Result<()> {
                sqlx::query("INSERT INTO integrations (org_id, kind, name, settings, secrets, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (org_id, kind, name) DO UPDATE SET settings = EXCLUDED.settings, secrets = EXCLUDED.secrets, updated_at = EXCLUDED.updated_at")
                    .bind(&i.org_id)
                    .bind(&i.kind)
                    .bind(&i.name)
                    .bind(i.settings.to_string())
                    .bind(&i.secrets)
                    .bind(&i.created_at)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| fk_not_found(e, "organization", &i.org_id))?;
                Ok(())
            }

            async fn delete_integration(&self, org_id: &str, kind: &str, name: &str) -> Result<bool> {
                let done =
                    sqlx::query("DELETE FROM integrations WHERE org_id = $1 AND kind = $2 AND name = $3")
                        .bind(org_id)
                        .bind(kind)
                        .bind(name)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>> {
                let rows = sqlx::query("SELECT org_id, kind, name, settings, secrets, created_at FROM integrations WHERE CAST($1 AS TEXT) IS NULL OR org_id = $1 ORDER BY org_id, kind, name")
                    .bind(org_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(IntegrationRecord {
                            org_id: r.try_get("org_id")?,
                            kind: r.try_get("kind")?,
                            name: r.try_get("name")?,
                            settings: json_col(r, "settings")?.unwrap_or(Value::Null),
                            secrets: r.try_get("secrets")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn set_mapping(&self, m: &OrgMapping) -> Result<()> {
                let res = sqlx::query("INSERT INTO org_mappings (org_id, kind, external_id, external_name, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (org_id, kind) DO UPDATE SET external_id = EXCLUDED.external_id, external_name = EXCLUDED.external_name, created_at = EXCLUDED.created_at")
                    .bind(&m.org_id)
                    .bind(&m.kind)
                    .bind(&m.external_id)
                    .bind(&m.external_name)
                    .bind(&m.created_at)
                    .execute(&self.pool)
                    .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err(StoreError::Conflict(format!(
                            "{} record {} is already mapped to another organization",
                            m.kind, m.external_id
                        )))
                    }
                    Err(e) => Err(fk_not_found(e, "organization", &m.org_id)),
                }
            }

            async fn delete_mapping(&self, org_id: &str, kind: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM org_mappings WHERE org_id = $1 AND kind = $2")
                    .bind(org_id)
                    .bind(kind)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn mappings(&self, kind: &str) -> Result<Vec<OrgMapping>> {
                self.mappings_where("kind", kind).await
            }

            async fn org_mappings(&self, org_id: &str) -> Result<Vec<OrgMapping>> {
                self.mappings_where("org_id", org_id).await
            }

            async fn exclude(&self, kind: &str, external_id: &str, name: Option<&str>) -> Result<()> {
                sqlx::query("INSERT INTO mapping_exclusions (kind, external_id, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, external_id) DO UPDATE SET name = COALESCE(EXCLUDED.name, mapping_exclusions.name)")
                    .bind(kind)
                    .bind(external_id)
                    .bind(name)
                    .bind(now_rfc3339())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool> {
                let done =
                    sqlx::query("DELETE FROM mapping_exclusions WHERE kind = $1 AND external_id = $2")
                        .bind(kind)
                        .bind(external_id)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>> {
                let rows = sqlx::query(
                    "SELECT external_id, name FROM mapping_exclusions WHERE kind = $1 ORDER BY external_id",
                )
                .bind(kind)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("external_id")?, r.try_get("name")?)))
                    .collect()
            }

            async fn save_directory(&self, records: &[DirectoryRecord]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for chunk in records.chunks(500) {
                    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(
                        "INSERT INTO directory (source, kind, external_id, org_id, name, data, active, state, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.source.clone())
                            .push_bind(r.kind.clone())
                            .push_bind(r.external_id.clone())
                            .push_bind(r.org_id.clone())
                            .push_bind(r.name.clone())
                            .push_bind(r.data.to_string())
                            .push_bind(r.active)
                            .push_bind(r.state.clone())
                            .push_bind(r.updated_at.clone());
                    });
                    qb.push(
                        " ON CONFLICT (source, kind, external_id) DO UPDATE SET org_id = EXCLUDED.org_id, \
                         name = EXCLUDED.name, data = EXCLUDED.data, active = EXCLUDED.active, \
                         state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                    );
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn directory(
                &self,
                source: &str,
                kind: &str,
                org_id: Option<&str>,
            ) -> Result<Vec<DirectoryRecord>> {
                let rows = sqlx::query("SELECT source, kind, external_id, org_id, name, data, active, state, updated_at FROM directory WHERE source = $1 AND kind = $2 AND (CAST($3 AS TEXT) IS NULL OR org_id = $3) ORDER BY lower(name), external_id")
                    .bind(source)
                    .bind(kind)
                    .bind(org_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(DirectoryRecord {
                            source: r.try_get("source")?,
                            kind: r.try_get("kind")?,
                            external_id: r.try_get("external_id")?,
                            org_id: r.try_get("org_id")?,
                            name: r.try_get("name")?,
                            data: json_col(r, "data")?.unwrap_or(Value::Null),
                            active: r.try_get("active")?,
                            state: r.try_get("state")?,
                            updated_at: r.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO sync_runs (source, org_id, mode, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(source)
                .bind(org_id)
                .bind(mode)
                .bind(now_rfc3339())
                .fetch_one(&self.pool)
                .await?)
            }

            async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()> {
                sqlx::query(
                    "UPDATE sync_runs SET finished_at = $1, counts = $2, errors = $3 WHERE id = $4",
                )
                .bind(now_rfc3339())
                .bind(counts.to_string())
                .bind(errors.to_string())
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>> {
                let rows = sqlx::query("SELECT id, source, org_id, mode, started_at, finished_at, counts, errors FROM sync_runs ORDER BY id DESC LIMIT $1")
                    .bind(limit_arg(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SyncRun {
                            id: r.try_get("id")?,
                            source: r.try_get("source")?,
                            org_id: r.try_get("org_id")?,
                            mode: r.try_get("mode")?,
                            started_at: r.try_get("started_at")?,
                            finished_at: r.try_get("finished_at")?,
                            counts: json_col(r, "counts")?.unwrap_or(Value::Null),
                            errors: json_col(r, "errors")?.unwrap_or(Value::Null),
                        })
                    })
                    .collect()
            }

            $($own)*
        }
    };
}
pub(super) use org_store;

/// [`CrateStore`](super::CrateStore) for `$store`: entirely shared.
macro_rules! crate_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::CrateStore for $store {
            async fn save_crate_install(&self, i: &CrateInstall) -> Result<()> {
                sqlx::query("INSERT INTO crate_installs (crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (crate, org) DO UPDATE SET version = EXCLUDED.version, params = EXCLUDED.params, run_for = EXCLUDED.run_for, enabled = EXCLUDED.enabled, detached = EXCLUDED.detached, source = EXCLUDED.source, workflows = EXCLUDED.workflows, updated_at = EXCLUDED.updated_at")
                    .bind(&i.crate_name)
                    .bind(&i.org)
                    .bind(&i.version)
                    .bind(i.params.to_string())
                    .bind(i.run_for.to_string())
                    .bind(i.enabled)
                    .bind(i.detached)
                    .bind(&i.source)
                    .bind(i.workflows.to_string())
                    .bind(&i.installed_at)
                    .bind(&i.updated_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>> {
                let rows = sqlx::query("SELECT crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at FROM crate_installs WHERE (CAST($1 AS TEXT) IS NULL OR org = $1) ORDER BY crate, org")
                    .bind(org)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CrateInstall {
                            crate_name: r.try_get("crate")?,
                            org: r.try_get("org")?,
                            version: r.try_get("version")?,
                            params: json_col(r, "params")?.unwrap_or(Value::Null),
                            run_for: json_col(r, "run_for")?.unwrap_or(Value::Null),
                            enabled: r.try_get("enabled")?,
                            detached: r.try_get("detached")?,
                            source: r.try_get("source")?,
                            workflows: json_col(r, "workflows")?.unwrap_or(Value::Null),
                            installed_at: r.try_get("installed_at")?,
                            updated_at: r.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM crate_installs WHERE crate = $1 AND org = $2")
                    .bind(crate_name)
                    .bind(org)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            $($own)*
        }
    };
}
pub(super) use crate_store;

/// [`SettingsStore`](super::SettingsStore) for `$store`: entirely shared.
macro_rules! settings_store {
    ($store:ident { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::SettingsStore for $store {
            async fn get_setting(&self, key: &str) -> Result<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)> {
                let inserted = sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1;
                let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?;
                Ok((stored, inserted))
            }

            async fn config_generation(&self) -> Result<i64> {
                self.read_int("SELECT n FROM config_generation WHERE id = 1").await
            }

            $($own)*
        }
    };
}
pub(super) use settings_store;

/// [`LimitStore`](super::LimitStore) for `$store`: entirely shared.
macro_rules! limit_store {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::LimitStore for $store {
            async fn take_slot(
                &self,
                key: &str,
                limit: u32,
                holder: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<Option<u32>> {
                // One round trip: the lowest slot nobody holds, taken only if it is still
                // free or lapsed when written (another process may take it first: then no
                // row comes back and the caller tries again).
                let slot: Option<i64> = sqlx::query_scalar(
                    "WITH RECURSIVE slots (slot) AS ( \
                         SELECT CAST(0 AS BIGINT) UNION ALL SELECT slot + 1 FROM slots WHERE slot + 1 < $2 \
                     ) \
                     INSERT INTO limit_slots (key, slot, holder, until_ms) \
                     SELECT $1, slot, $3, $4 FROM slots WHERE NOT EXISTS ( \
                         SELECT 1 FROM limit_slots l WHERE l.key = $1 AND l.slot = slots.slot AND l.until_ms > $5 \
                     ) ORDER BY slot LIMIT 1 \
                     ON CONFLICT (key, slot) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms \
                     WHERE limit_slots.until_ms <= $5 \
                     RETURNING slot",
                )
                .bind(key)
                .bind(i64::from(limit))
                .bind(holder)
                .bind(until_ms)
                .bind(now_ms)
                .fetch_optional(self.limits_pool())
                .await?;
                Ok(slot.and_then(|s| u32::try_from(s).ok()))
            }

            async fn free_slot(&self, key: &str, slot: u32, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM limit_slots WHERE key = $1 AND slot = $2 AND holder = $3")
                    .bind(key)
                    .bind(i64::from(slot))
                    .bind(holder)
                    .execute(self.limits_pool())
                    .await?;
                Ok(())
            }

            async fn add_count(
                &self,
                key: &str,
                minute: i64,
                n: i64,
                forget_before: Option<i64>,
            ) -> Result<()> {
                // Two statements, each its own commit, no transaction around them: a caller
                // cancelled between them leaves nothing open (a transaction dropped half-way
                // would keep SQLite's write lock on an idle pooled connection).
                sqlx::query(
                    "INSERT INTO limit_counts (key, minute, n) VALUES ($1, $2, $3) \
                     ON CONFLICT (key, minute) DO UPDATE SET n = limit_counts.n + EXCLUDED.n",
                )
                .bind(key)
                .bind(minute)
                .bind(n)
                .execute(self.limits_pool())
                .await?;
                if let Some(before) = forget_before {
                    sqlx::query("DELETE FROM limit_counts WHERE key = $1 AND minute < $2")
                        .bind(key)
                        .bind(before)
                        .execute(self.limits_pool())
                        .await?;
                }
                Ok(())
            }

            async fn count_since(&self, key: &str, from_minute: i64) -> Result<i64> {
                let n: Option<i64> = sqlx::query_scalar(
                    "SELECT CAST(SUM(n) AS BIGINT) FROM limit_counts WHERE key = $1 AND minute >= $2",
                )
                .bind(key)
                .bind(from_minute)
                .fetch_one(self.limits_pool())
                .await?;
                Ok(n.unwrap_or(0))
            }
        }
    };
}
pub(super) use limit_store;
