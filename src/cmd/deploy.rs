//! `weft deploy PATH...`: validates workflow files and stores each as a new version. A
//! running `weft serve` on the same database picks the new versions up (webhooks at the next
//! request, cron and Autotask webhooks at the next sync); running executions keep theirs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use weft_engine::executor::Engine;

use super::engine::EngineArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow files, or folders searched for *.yaml / *.yml files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    db: EngineArgs,
}

/// What deploying a set of files did.
#[derive(Debug, Default)]
pub struct Deployed {
    /// Files stored (or unchanged).
    pub ok: usize,
    /// Files that did not validate or could not be read.
    pub failed: usize,
}

/// Validates and deploys every workflow file under `paths`, reporting each on stderr:
/// `deployed NAME vN from FILE`, `unchanged …`, or every error of an invalid file. Invalid
/// files are skipped; the others are deployed.
pub async fn deploy_paths(engine: &Engine, paths: &[PathBuf], verbose_errors: bool) -> Deployed {
    let mut out = Deployed::default();
    for p in paths {
        let files = match super::validate::workflow_files(p) {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                eprintln!("skipped {}: no *.yaml or *.yml files", p.display());
                continue;
            }
            Err(e) => {
                eprintln!("skipped {}: cannot read it: {e}", p.display());
                out.failed += 1;
                continue;
            }
        };
        for file in files {
            if deploy_file(engine, &file, verbose_errors).await {
                out.ok += 1;
            } else {
                out.failed += 1;
            }
        }
    }
    out
}

async fn deploy_file(engine: &Engine, file: &Path, verbose_errors: bool) -> bool {
    let (loaded, diags) = match weft_engine::load_file(file, engine.registry()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped {}: cannot read it: {e}", file.display());
            return false;
        }
    };
    let Some(wf) = loaded.workflow else {
        if verbose_errors {
            for d in &diags {
                eprint!("{}", super::render_report(d));
            }
        }
        let first = loaded
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| {
                format!(
                    ": line {}:{}: {} [{}]",
                    d.span.line, d.span.column, d.message, d.code
                )
            })
            .unwrap_or_default();
        eprintln!("skipped {}: invalid{first}", file.display());
        return false;
    };
    let before = engine
        .store()
        .workflow(&wf.name, None)
        .await
        .ok()
        .map(|r| r.id);
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipped {}: cannot read it: {e}", file.display());
            return false;
        }
    };
    match engine
        .deploy(&source, Some(&file.display().to_string()))
        .await
    {
        Ok(r) if Some(r.id) == before => {
            eprintln!(
                "unchanged {} v{} from {}",
                r.name,
                r.version,
                file.display()
            );
            true
        }
        Ok(r) => {
            eprintln!("deployed {} v{} from {}", r.name, r.version, file.display());
            true
        }
        Err(e) => {
            eprintln!("skipped {}: {e}", file.display());
            false
        }
    }
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(async {
        let engine = super::engine::open(&args.db).await?;
        let done = deploy_paths(&engine, &args.paths, true).await;
        Ok(if done.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
