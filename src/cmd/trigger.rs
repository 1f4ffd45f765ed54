//! `weft trigger list|enable|disable|fire|secret|events`: the deployed workflows' triggers from the
//! command line, on the same database a `weft serve` uses.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::IntoDiagnostic;
use serde_json::json;
use weft_engine::executor::Workers;
use weft_engine::model::{Trigger, TriggerKind};
use weft_engine::{Workflow, executor::Engine};
use weft_server::trigger_type;
use weft_triggers::Switches;

use super::engine::EngineArgs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every trigger of the deployed workflows: type, on/off, schedule and next slot, URL.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Switch a trigger on (stored; outlives redeploys; overrides the workflow's `enabled:`).
    Enable {
        /// The workflow.
        workflow: String,
        /// The trigger.
        trigger: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Switch a trigger off.
    Disable {
        /// The workflow.
        workflow: String,
        /// The trigger.
        trigger: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Fire a cron trigger now (its criteria, input and run_for, `TRIGGER.manual` true; the
    /// schedule is untouched). The executions are queued for `weft serve`/`weft worker`;
    /// with --wait they run here and their outcome is printed (exit 1 if one failed).
    Fire {
        /// The workflow.
        workflow: String,
        /// The trigger.
        trigger: String,
        /// Run the executions in this process and wait for them.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// The webhook secret of one org's sender (issued now if it has none), or a new one with
    /// --rotate. Each (trigger, org) pair has its own: give each client's sender its own.
    Secret {
        /// The workflow.
        workflow: String,
        /// The webhook trigger.
        trigger: String,
        /// The org whose sender uses it (the trigger must run for it).
        #[arg(long)]
        org: String,
        /// Issue a new secret; the old one is refused at once (or after --grace).
        #[arg(long)]
        rotate: bool,
        /// With --rotate: how long the old secret is still accepted (`15m`, `1h`, `7d`).
        #[arg(long, value_name = "DURATION", requires = "rotate")]
        grace: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// What reached a trigger recently and what came of it (accepted, rejected, filtered).
    Events {
        /// The workflow.
        workflow: String,
        /// The trigger.
        trigger: String,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        db: EngineArgs,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

/// The latest deployed version of `workflow`, parsed, and its trigger `trigger`.
async fn find(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
) -> Result<(weft_engine::store::WorkflowRecord, Arc<Workflow>, Trigger), String> {
    let record =
        engine.store().workflow(workflow, None).await.map_err(|_| {
            format!("no workflow named `{workflow}` is deployed (weft deploy FILE)")
        })?;
    let wf = weft_engine::load(&record.source, engine.registry())
        .workflow
        .map(Arc::new)
        .ok_or_else(|| format!("the deployed `{workflow}` does not load; deploy it again"))?;
    let t = wf
        .triggers
        .iter()
        .find(|t| t.name == trigger)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = wf.triggers.iter().map(|t| t.name.as_str()).collect();
            format!(
                "workflow `{workflow}` has no trigger `{trigger}` (it has: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })?;
    Ok((record, wf, t))
}

fn failed(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::Secret {
            workflow,
            trigger,
            org,
            rotate,
            grace,
            json,
            db,
        } => {
            let rotate = rotate.then_some(grace.as_deref());
            secret(&db, &workflow, &trigger, &org, rotate, json).await
        }
        Command::List { json, db } => list(&db, json).await,
        Command::Enable {
            workflow,
            trigger,
            db,
        } => switch(&db, &workflow, &trigger, true).await,
        Command::Disable {
            workflow,
            trigger,
            db,
        } => switch(&db, &workflow, &trigger, false).await,
        Command::Fire {
            workflow,
            trigger,
            wait,
            db,
        } => fire(&db, &workflow, &trigger, wait).await,
        Command::Events {
            workflow,
            trigger,
            limit,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            if let Err(e) = find(&engine, &workflow, &trigger).await {
                return Ok(failed(e));
            }
            let events = engine
                .store()
                .trigger_events(&workflow, &trigger, limit)
                .await
                .into_diagnostic()?;
            if events.is_empty() {
                println!("nothing has reached {workflow}.{trigger} yet");
            }
            for e in events {
                println!(
                    "{}  {:<9} {:<8} {:<16} {}{}",
                    e.created_at,
                    e.kind,
                    e.outcome,
                    e.org,
                    e.execution_id.as_deref().unwrap_or("-"),
                    e.reason.map(|r| format!("  ({r})")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `weft trigger list`: every trigger of the deployed workflows, its switch and where it
/// listens or when it fires next.
async fn list(db: &EngineArgs, json: bool) -> miette::Result<ExitCode> {
    let engine = super::engine::open(db).await?;
    let store = engine.store();
    let switches = Switches::load(store.as_ref()).await.into_diagnostic()?;
    let mut rows = Vec::new();
    for record in store.list_workflows().await.into_diagnostic()? {
        let Some(wf) = weft_engine::load(&record.source, engine.registry()).workflow else {
            continue;
        };
        for t in &wf.triggers {
            let mut row = json!({
                "workflow": wf.name,
                "trigger": t.name,
                "type": trigger_type(&t.kind),
                "enabled": switches.enabled(&wf.name, t),
            });
            match &t.kind {
                TriggerKind::Cron {
                    schedule, timezone, ..
                } => {
                    let tz_name = timezone.as_deref().unwrap_or("UTC");
                    row["schedule"] = json!(format!("{schedule} ({tz_name})"));
                    let next = weft_triggers::cron::next_slot(t, engine.now())
                        .map(|z| z.strftime("%Y-%m-%d %H:%M %Z").to_string());
                    row["next"] = json!(next);
                }
                TriggerKind::Webhook { .. } => {
                    row["path"] = json!(format!("/hooks/{}/{{org}}", t.name));
                }
                _ => {}
            }
            rows.push(row);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).into_diagnostic()?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no deployed workflow has a trigger");
    }
    for r in &rows {
        let detail = r["schedule"]
            .as_str()
            .map(|s| format!("{s}, next {}", r["next"].as_str().unwrap_or("never")))
            .or_else(|| r["path"].as_str().map(|p| format!("POST {p}")))
            .unwrap_or_default();
        println!(
            "{:<40} {:<24} {:<22} {:<4} {detail}",
            r["workflow"].as_str().unwrap_or_default(),
            r["trigger"].as_str().unwrap_or_default(),
            r["type"].as_str().unwrap_or_default(),
            if r["enabled"] == true { "on" } else { "off" },
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft trigger fire`: fires a cron trigger now and, with `wait`, runs its executions here.
async fn fire(
    db: &EngineArgs,
    workflow: &str,
    trigger: &str,
    wait: bool,
) -> miette::Result<ExitCode> {
    let engine = super::engine::open(db).await?;
    let (record, wf, t) = match find(&engine, workflow, trigger).await {
        Ok(found) => found,
        Err(e) => return Ok(failed(e)),
    };
    if !matches!(t.kind, TriggerKind::Cron { .. }) {
        return Ok(failed(format!(
            "`{trigger}` is a {} trigger: only cron triggers fire by hand; run the workflow instead (weft run {workflow})",
            trigger_type(&t.kind)
        )));
    }
    let fired = weft_triggers::cron::fire_now(&engine, &record, &wf, &t)
        .await
        .into_diagnostic()?;
    println!(
        "fired {workflow}.{trigger}: {}, {} execution(s)",
        fired.outcome,
        fired.executions.len()
    );
    if !wait {
        for id in &fired.executions {
            println!("  {id} queued (run by weft serve or weft worker on this database)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let workers = Workers::new(engine.clone(), 4);
    let mut code = ExitCode::SUCCESS;
    for id in &fired.executions {
        let exec = loop {
            if let Some(e) = engine
                .wait_for(id, Duration::from_secs(3600))
                .await
                .into_diagnostic()?
            {
                break e;
            }
        };
        println!(
            "  {id} {} (org {}){}",
            exec.status,
            exec.org,
            exec.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if exec.status != weft_engine::store::ExecStatus::Succeeded {
            code = ExitCode::from(1);
        }
    }
    workers.shutdown(Duration::from_secs(10)).await;
    Ok(code)
}

async fn secret(
    db: &EngineArgs,
    workflow: &str,
    trigger: &str,
    org: &str,
    rotate: Option<Option<&str>>,
    json: bool,
) -> miette::Result<ExitCode> {
    let grace = match rotate.flatten() {
        None => None,
        Some(g) => match weft_engine::model::parse_duration(g) {
            Some(d) => Some(d),
            None => {
                eprintln!("error: --grace `{g}` is not a duration (like 15m, 1h or 7d)");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let engine = super::engine::open(db).await?;
    let (_, _, t) = match find(&engine, workflow, trigger).await {
        Ok(found) => found,
        Err(e) => return Ok(failed(e)),
    };
    let issued = match rotate {
        None => weft_triggers::webhook_access::secret(&engine, workflow, &t, org).await,
        Some(_) => weft_triggers::webhook_access::rotate(&engine, workflow, &t, org, grace).await,
    };
    let issued = match issued {
        Ok(i) => i,
        Err(e) => return Ok(failed(e)),
    };
    if json {
        println!("{}", json!(issued));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "POST {}/hooks/{trigger}/{}",
        weft_triggers::public_url(),
        issued.org
    );
    println!("x-weft-secret: {}", issued.secret);
    match (&issued.previous_valid_until, rotate.is_some()) {
        (Some(until), true) => println!("(rotated; the previous secret is accepted until {until})"),
        (None, true) => println!("(rotated; the previous secret is refused from now on)"),
        _ if issued.created => println!("(issued now)"),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn switch(
    db: &EngineArgs,
    workflow: &str,
    trigger: &str,
    on: bool,
) -> miette::Result<ExitCode> {
    let engine = super::engine::open(db).await?;
    if let Err(e) = find(&engine, workflow, trigger).await {
        return Ok(failed(e));
    }
    engine
        .store()
        .set_trigger_enabled(workflow, trigger, on)
        .await
        .into_diagnostic()?;
    println!(
        "{workflow}.{trigger} {} (a running weft serve follows within seconds)",
        if on { "enabled" } else { "disabled" }
    );
    Ok(ExitCode::SUCCESS)
}
