//! `weft executions list|show|cancel|rerun|purge|resume`

use std::fmt::Write;
use std::process::ExitCode;

use miette::IntoDiagnostic;
use serde_json::Value;
pub use weft_engine::executor::execution_json;
use weft_engine::executor::{EngineErrorKind, RerunOptions};
use weft_engine::store::{ExecStatus, ExecutionFilter, ExecutionRecord, TaskRun, TaskStatus};

use super::engine::EngineArgs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List executions, newest first.
    List {
        /// Only this status: pending, running, succeeded, failed, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Show an execution and its tasks (an id prefix is enough), or draw its task graph.
    Show {
        /// Execution id.
        id: String,
        /// Print JSON, with every attempt and item (the same as `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format: `text` (default), `json`, or the task graph with each task's status
        /// and each route's condition as `mermaid` (a flowchart) or `dot` (Graphviz).
        #[arg(long, value_enum)]
        format: Option<ShowFormat>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Cancel a running execution and its sub-workflows.
    Cancel {
        /// Execution id.
        id: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Run an execution again: whole, from a task (earlier results reused), or only the
    /// failed items of a with.items task.
    Rerun {
        /// Execution id.
        id: String,
        /// Reuse every result not downstream of this task and run from it.
        #[arg(long)]
        from: Option<String>,
        /// Re-run only the failed items of the failed with.items task.
        #[arg(long)]
        failed_items: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Delete finished executions older than a duration (e.g. 30d).
    Purge {
        /// How old (`30d`, `12h`).
        #[arg(long, value_name = "DURATION")]
        older_than: String,
        /// Only this organization's executions (id or name).
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Resume executions interrupted by a crash or a kill (done by every `weft run` too).
    Resume {
        #[command(flatten)]
        db: EngineArgs,
    },
}

/// What `weft executions show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    /// A summary line and one line per task.
    Text,
    /// The execution and every task run.
    Json,
    /// A Mermaid flowchart of the task graph.
    Mermaid,
    /// A Graphviz digraph of the task graph.
    Dot,
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::List {
            status,
            workflow,
            limit,
            json,
            db,
        } => {
            let status = match status.as_deref().map(|s| (s, ExecStatus::parse(s))) {
                None => None,
                Some((_, Some(s))) => Some(s),
                Some((s, None)) => {
                    eprintln!(
                        "error: unknown status `{s}` (pending, running, succeeded, failed, cancelled)"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let engine = super::engine::open(&db).await?;
            let filter = ExecutionFilter {
                status,
                workflow,
                limit: Some(limit),
                ..ExecutionFilter::default()
            };
            let list = engine
                .store()
                .list_executions(&filter)
                .await
                .into_diagnostic()?;
            print_list(&list, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            id,
            json,
            format,
            db,
        } => {
            let format = match (json, format) {
                (true, _) => ShowFormat::Json,
                (false, f) => f.unwrap_or(ShowFormat::Text),
            };
            let engine = super::engine::open(&db).await?;
            let exec = match engine.store().execution(&id).await {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let runs = engine.store().task_runs(&exec.id).await.into_diagnostic()?;
            match format {
                ShowFormat::Json => {
                    let mut v = execution_json(&exec, &runs);
                    v["task_runs"] = serde_json::to_value(&runs).expect("serializes");
                    println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
                }
                ShowFormat::Text => print!("{}", summary(&exec, &runs)),
                ShowFormat::Mermaid | ShowFormat::Dot => {
                    // The graph of the version this execution ran, not the latest deploy.
                    let record = engine
                        .store()
                        .workflow_by_id(exec.workflow_id)
                        .await
                        .into_diagnostic()?;
                    let wf = match engine.parsed(&record) {
                        Ok(wf) => wf,
                        Err(e) => {
                            eprintln!(
                                "error: cannot draw execution {}: its workflow no longer loads: {e}",
                                exec.id
                            );
                            return Ok(ExitCode::from(1));
                        }
                    };
                    let states = weft_engine::chart::states(&runs);
                    if format == ShowFormat::Mermaid {
                        print!("{}", weft_engine::chart::mermaid(&wf, &states));
                    } else {
                        print!("{}", weft_engine::chart::dot(&wf, &states));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id, db } => {
            let engine = super::engine::open(&db).await?;
            match engine.cancel(&id).await {
                Ok(e) => {
                    println!(
                        "{}: {}",
                        e.id,
                        if e.status.is_final() {
                            e.status.to_string()
                        } else {
                            "cancel requested".into()
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Rerun {
            id,
            from,
            failed_items,
            json,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            let new_id = match engine.rerun(&id, RerunOptions { from, failed_items }).await {
                Ok(n) => n,
                Err(e)
                    if matches!(e.kind(), EngineErrorKind::Usage | EngineErrorKind::Conflict) =>
                {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e).into_diagnostic(),
            };
            let exec = engine.run(&new_id).await.into_diagnostic()?;
            super::run::report(&engine, &exec, json).await
        }
        Command::Purge {
            older_than,
            org,
            db,
        } => purge(&older_than, org.as_deref(), &db).await,
        Command::Resume { db } => {
            let engine = super::engine::open(&db).await?;
            let resumed = engine.resume_orphans().await.into_diagnostic()?;
            if resumed.is_empty() {
                println!("nothing to resume");
            }
            for e in &resumed {
                println!("{}  {}  {}", e.id, e.workflow_name, e.status);
            }
            Ok(
                if resumed.iter().all(|e| e.status == ExecStatus::Succeeded) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
    }
}

/// `weft executions list`: a table, or JSON.
fn print_list(list: &[ExecutionRecord], json: bool) {
    if json {
        let v: Vec<Value> = list
            .iter()
            .map(|e| serde_json::to_value(e).expect("serializes"))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
    } else if list.is_empty() {
        println!("no executions");
    } else {
        println!(
            "{:<36}  {:<10}  {:<28}  {:<25}  DURATION",
            "ID", "STATUS", "WORKFLOW", "STARTED"
        );
        for e in list {
            let wf = format!(
                "{} v{}{}",
                e.workflow_name,
                e.workflow_version,
                if e.parent_id.is_some() { " (sub)" } else { "" }
            );
            println!(
                "{:<36}  {:<10}  {:<28}  {:<25}  {}",
                e.id,
                e.status,
                wf,
                e.created_at.get(..19).unwrap_or(&e.created_at),
                duration(e)
            );
        }
    }
}

/// `weft executions purge`: deletes finished executions older than `older_than` (of one org,
/// or all) and their trigger events.
async fn purge(older_than: &str, org: Option<&str>, db: &EngineArgs) -> miette::Result<ExitCode> {
    let Some(age) = weft_engine::model::parse_duration(older_than) else {
        eprintln!("error: `{older_than}` is not a duration (e.g. 30d, 12h)");
        return Ok(ExitCode::from(2));
    };
    let engine = super::engine::open(db).await?;
    let span = jiff::SignedDuration::try_from(age).into_diagnostic()?;
    let cutoff = jiff::Timestamp::now().checked_sub(span).into_diagnostic()?;
    let only = match org {
        None => None,
        Some(o) => match engine.store().org(o).await {
            Ok(found) => Some(found.id),
            Err(e) if e.kind() == weft_engine::store::StoreErrorKind::NotFound => {
                eprintln!("error: no organization `{o}` (weft org list)");
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e).into_diagnostic(),
        },
    };
    let scope = weft_engine::store::PurgeScope {
        only: only.clone(),
        ..Default::default()
    };
    let spin = super::progress::Progress::spinner(
        super::progress::wanted(false, false),
        &format!("purging executions finished before {cutoff}"),
    );
    let (n, events) = weft_engine::retention::purge(&engine, cutoff, &scope)
        .await
        .into_diagnostic()?;
    spin.finish();
    match only {
        Some(o) => println!(
            "purged {n} execution(s) of {o} finished before {cutoff}, and {events} trigger event(s)"
        ),
        None => println!(
            "purged {n} execution(s) finished before {cutoff}, and {events} trigger event(s)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(e: &ExecutionRecord) -> String {
    let (Some(s), Some(f)) = (e.started_at.as_deref(), e.finished_at.as_deref()) else {
        return "-".into();
    };
    match (s.parse::<jiff::Timestamp>(), f.parse::<jiff::Timestamp>()) {
        (Ok(s), Ok(f)) => {
            let ms = f.duration_since(s).as_millis();
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.2}s", ms as f64 / 1000.0)
            }
        }
        _ => "-".into(),
    }
}

/// The human summary of an execution.
pub fn summary(exec: &ExecutionRecord, runs: &[TaskRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "execution {}  {} v{}  {} in {}",
        exec.id,
        exec.workflow_name,
        exec.workflow_version,
        exec.status,
        duration(exec)
    );
    let list = weft_engine::executor::task_summaries(runs);
    let width = list
        .iter()
        .map(|(r, ..)| r.task.len())
        .max()
        .unwrap_or(4)
        .max(4);
    for (r, attempts, items) in list {
        let mark = match r.status {
            TaskStatus::Succeeded => "✓",
            TaskStatus::Failed => "✗",
            TaskStatus::Skipped => "-",
            TaskStatus::Running => "…",
            TaskStatus::Cancelled => "⊘",
        };
        let dur = r.duration_ms.map(|d| format!("{d}ms")).unwrap_or_default();
        let mut extra = Vec::new();
        if attempts > 1 {
            extra.push(format!("{attempts} attempts"));
        }
        if items > 0 {
            extra.push(format!("{items} items"));
        }
        if r.reused {
            extra.push("reused".into());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join(", "))
        };
        let err = r
            .error
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(|m| format!("  {m}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {mark} {:<width$}  {:<9} {:>8}{extra}{err}",
            r.task,
            r.status.as_str(),
            dur
        );
    }
    if let Some(o) = &exec.output
        && o.as_object().is_some_and(|m| !m.is_empty())
    {
        let _ = writeln!(out, "output: {o}");
    }
    if let Some(e) = &exec.error {
        let _ = writeln!(out, "error: {e}");
    }
    out
}
