//! `weft run PATH|NAME`

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use miette::IntoDiagnostic;
use serde_json::{Map, Value};
use weft_engine::executor::{Engine, EngineErrorKind, StartOptions};
use weft_engine::store::{ExecStatus, ExecutionRecord, WorkflowRecord};

use super::engine::EngineArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow file (deployed first, with the other workflows in its folder, so
    /// sub-workflows resolve), or the name of a deployed workflow.
    workflow: String,
    /// An input, `key=value` (repeatable); the value is read as JSON unless the input is a string.
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// All inputs as one JSON object (merged under --input).
    #[arg(long, value_name = "JSON")]
    input_json: Option<String>,
    /// The organization to run for.
    #[arg(long)]
    org: Option<String>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Print nothing but errors (no live view of the tasks, no summary): the exit code tells
    /// how it ended (0 succeeded, 1 failed, 2 usage or validation error).
    #[arg(long, short = 'q', conflicts_with = "json")]
    quiet: bool,
    #[command(flatten)]
    db: EngineArgs,
}

/// Deploys `path` and the valid workflows beside it; returns `path`'s record.
async fn deploy_file(
    engine: &Engine,
    path: &Path,
) -> miette::Result<Result<WorkflowRecord, ExitCode>> {
    let registry = engine.registry();
    let (loaded, diags) = weft_engine::load_file(path, registry).into_diagnostic()?;
    if loaded.has_errors() {
        for d in &diags {
            eprint!("{}", super::render_report(d));
        }
        eprintln!(
            "error: {} is not a valid workflow; nothing was run",
            path.display()
        );
        return Ok(Err(ExitCode::from(2)));
    }
    if let Some(dir) = path.parent() {
        // `weft run file.yaml` has an empty parent: the current directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        for sibling in super::validate::workflow_files(dir).unwrap_or_default() {
            if sibling.file_name() == path.file_name()
                && sibling.parent().map(|p| p.canonicalize().ok()) == Some(dir.canonicalize().ok())
            {
                continue;
            }
            if let Ok(source) = std::fs::read_to_string(&sibling) {
                // Siblings that do not validate are simply not deployed.
                let _ = engine
                    .deploy(&source, Some(&sibling.display().to_string()))
                    .await;
            }
        }
    }
    let source = std::fs::read_to_string(path).into_diagnostic()?;
    let record = engine
        .deploy(&source, Some(&path.display().to_string()))
        .await
        .into_diagnostic()?;
    Ok(Ok(record))
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> miette::Result<ExitCode> {
    // At a terminal, each task is shown as it starts and ends.
    let live = super::progress::wanted(args.json, args.quiet)
        .then(|| Arc::new(super::progress::LiveTasks::new(&args.workflow)));
    let engine = super::engine::open_observed(
        &args.db,
        live.clone()
            .map(|l| l as Arc<dyn weft_engine::executor::observe::Observer>),
    )
    .await?;
    for resumed in engine.resume_orphans().await.into_diagnostic()? {
        eprintln!(
            "resumed interrupted execution {} ({}): {}",
            resumed.id, resumed.workflow_name, resumed.status
        );
    }
    let path = Path::new(&args.workflow);
    let record = if path.is_file() {
        match deploy_file(&engine, path).await? {
            Ok(r) => r,
            Err(code) => return Ok(code),
        }
    } else {
        match engine.store().workflow(&args.workflow, None).await {
            Ok(r) => r,
            Err(_) => {
                eprintln!(
                    "error: `{}` is neither a workflow file nor a deployed workflow",
                    args.workflow
                );
                return Ok(ExitCode::from(2));
            }
        }
    };
    if let Some(live) = &live {
        live.run_of(&record.name);
    }
    let wf = weft_engine::load(&record.source, engine.registry())
        .workflow
        .expect("deployed workflows are valid");
    let mut input: Map<String, Value> = match &args.input_json {
        Some(j) => match serde_json::from_str::<Value>(j) {
            Ok(Value::Object(m)) => m,
            _ => {
                eprintln!("error: --input-json must be a JSON object");
                return Ok(ExitCode::from(2));
            }
        },
        None => Map::new(),
    };
    for kv in &args.inputs {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("error: --input takes key=value, got `{kv}`");
            return Ok(ExitCode::from(2));
        };
        input.insert(
            k.to_string(),
            weft_engine::executor::coerce_input(&wf, k, v),
        );
    }
    let opts = StartOptions {
        org: args.org.clone(),
        trigger: None,
    };
    let exec = match engine.execute(&record, input, opts).await {
        Ok(e) => e,
        Err(e) if e.kind() == EngineErrorKind::Usage => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e).into_diagnostic(),
    };
    if args.quiet {
        return Ok(exit_code(&exec));
    }
    report(&engine, &exec, args.json).await
}

/// 0 when the execution succeeded, else 1.
fn exit_code(exec: &ExecutionRecord) -> ExitCode {
    if exec.status == ExecStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints an execution (summary or JSON) and returns the exit code for its status.
pub async fn report(
    engine: &Engine,
    exec: &ExecutionRecord,
    json: bool,
) -> miette::Result<ExitCode> {
    let runs = engine.store().task_runs(&exec.id).await.into_diagnostic()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&super::executions::execution_json(exec, &runs))
                .expect("serializes")
        );
    } else {
        print!("{}", super::executions::summary(exec, &runs));
    }
    Ok(exit_code(exec))
}
