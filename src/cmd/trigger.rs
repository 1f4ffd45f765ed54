//! `weft trigger list|enable|disable|fire|secret|events`: the deployed workflows' triggers from the
//! command line, on the same database a `weft serve` uses.

use std::process::ExitCode;
use std::time::Duration;

use miette::IntoDiagnostic;
use serde_json::json;
use weft_engine::executor::Workers;
use weft_service::triggers as service;

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
            let events = tri!(service::events(&engine, &workflow, &trigger, limit).await);
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
    // Webhooks: the path alone (the server's public URL is its own setting).
    let triggers = tri!(service::list(&engine, "").await);
    let rows: Vec<serde_json::Value> = triggers
        .into_iter()
        .map(|t| {
            let mut row = json!({
                "workflow": t.workflow,
                "trigger": t.name,
                "type": t.kind,
                "enabled": t.enabled,
            });
            if let (Some(schedule), Some(tz)) = (&t.schedule, &t.timezone) {
                row["schedule"] = json!(format!("{schedule} ({tz})"));
                row["next"] = json!(t.next_local);
            }
            if let Some(path) = &t.url {
                row["path"] = json!(path);
            }
            row
        })
        .collect();
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
    let fired = tri!(service::fire(&engine, workflow, trigger).await);
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

/// `weft trigger secret`: one org's webhook secret, or a new one with `rotate`.
async fn secret(
    db: &EngineArgs,
    workflow: &str,
    trigger: &str,
    org: &str,
    rotate: Option<Option<&str>>,
    json: bool,
) -> miette::Result<ExitCode> {
    let grace = tri!(rotate.flatten().map(service::parse_grace).transpose());
    let engine = super::engine::open(db).await?;
    let base = service::public_url();
    let issued = tri!(match rotate {
        None => service::secret(&engine, workflow, trigger, org, &base).await,
        Some(_) => service::rotate(&engine, workflow, trigger, org, grace, &base).await,
    });
    if json {
        println!("{}", json!(issued));
        return Ok(ExitCode::SUCCESS);
    }
    println!("POST {}", issued.url);
    println!("x-weft-secret: {}", issued.secret);
    match (&issued.previous_valid_until, rotate.is_some()) {
        (Some(until), true) => println!("(rotated; the previous secret is accepted until {until})"),
        (None, true) => println!("(rotated; the previous secret is refused from now on)"),
        _ if issued.created => println!("(issued now)"),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft trigger enable|disable`.
async fn switch(
    db: &EngineArgs,
    workflow: &str,
    trigger: &str,
    on: bool,
) -> miette::Result<ExitCode> {
    let engine = super::engine::open(db).await?;
    tri!(service::switch(&engine, workflow, trigger, on, "").await);
    println!(
        "{workflow}.{trigger} {} (a running weft serve follows within seconds)",
        if on { "enabled" } else { "disabled" }
    );
    Ok(ExitCode::SUCCESS)
}
