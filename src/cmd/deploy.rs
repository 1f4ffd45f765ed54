//! `weft deploy PATH...`: validates workflow and form files and stores each as a new version. A
//! running `weft serve` on the same database picks the new versions up (webhooks at the next
//! request, cron and Autotask webhooks at the next sync); running executions keep theirs.
//! Deploying is `weft_service::workflows::deploy`, as `POST /api/workflows`: it also issues
//! the webhook secrets still missing (shown once).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use weft_engine::executor::Engine;
use weft_service::workflows::{self as service, DeployError, IssuedSecret};

use super::engine::EngineArgs;
use super::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow and form files, or folders searched for *.yaml / *.yml files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// No progress bar (it is drawn only at a terminal anyway).
    #[arg(long, short = 'q')]
    quiet: bool,
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
    /// The webhook secrets issued by these deploys (to be shown once).
    pub issued: Vec<IssuedSecret>,
}

/// Validates and deploys every workflow file under `paths`, reporting each on stderr:
/// `deployed NAME vN from FILE`, `unchanged …`, or every error of an invalid file. Invalid
/// files are skipped; the others are deployed.
/// With `shown`, a progress bar over the files (at a terminal).
pub async fn deploy_paths(
    engine: &Engine,
    paths: &[PathBuf],
    verbose_errors: bool,
    shown: bool,
) -> Deployed {
    let mut out = Deployed::default();
    let mut found = Vec::new();
    for p in paths {
        match super::validate::workflow_files(p) {
            Ok(f) if !f.is_empty() => found.extend(f),
            Ok(_) => eprintln!("skipped {}: no *.yaml or *.yml files", p.display()),
            Err(e) => {
                eprintln!("skipped {}: cannot read it: {e}", p.display());
                out.failed += 1;
            }
        }
    }
    let say = Progress::new(shown, Some(found.len() as u64), "files");
    for file in found {
        say.message(file.display().to_string());
        match deploy_file(engine, &file, verbose_errors, &say).await {
            Some(issued) => {
                out.ok += 1;
                out.issued.extend(issued);
            }
            None => out.failed += 1,
        }
        say.inc(1);
    }
    out
}

/// Deploys one file; the secrets it issued, or `None` when it was skipped.
async fn deploy_file(
    engine: &Engine,
    file: &Path,
    verbose_errors: bool,
    say: &Progress,
) -> Option<Vec<IssuedSecret>> {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            say.println(format!("skipped {}: cannot read it: {e}", file.display()));
            return None;
        }
    };
    let label = file.display().to_string();
    if weft_engine::is_form_source(&source) {
        return deploy_form(engine, file, &source, verbose_errors, say).await;
    }
    match service::deploy(engine, &source, Some(&label)).await {
        Ok(done) => {
            let r = &done.record;
            let verb = if done.unchanged {
                "unchanged"
            } else {
                "deployed"
            };
            say.println(format!(
                "{verb} {} v{} from {}",
                r.name,
                r.version,
                file.display()
            ));
            Some(done.secrets_issued)
        }
        Err(e) => {
            refused(engine, file, &e, verbose_errors, say);
            None
        }
    }
}

/// Deploys one form file; `None` when it was skipped.
async fn deploy_form(
    engine: &Engine,
    file: &Path,
    source: &str,
    verbose_errors: bool,
    say: &Progress,
) -> Option<Vec<IssuedSecret>> {
    let label = file.display().to_string();
    match weft_service::forms::deploy(engine.store().as_ref(), source, Some(&label)).await {
        Ok(done) => {
            let r = &done.record;
            let verb = if done.unchanged {
                "unchanged"
            } else {
                "deployed"
            };
            say.println(format!(
                "{verb} form {} v{} from {}",
                r.name,
                r.version,
                file.display()
            ));
            Some(Vec::new())
        }
        Err(e) => {
            refused(engine, file, &e, verbose_errors, say);
            None
        }
    }
}

/// Reports why a file was not deployed: every finding (with `verbose_errors`) and a summary
/// line naming the first error.
fn refused(engine: &Engine, file: &Path, e: &DeployError, verbose_errors: bool, say: &Progress) {
    match e {
        DeployError::Invalid(invalid) => {
            if verbose_errors && let Ok(diags) = weft_engine::check_file(file, engine.registry()) {
                for d in &diags {
                    say.println(super::render_report(d).trim_end());
                }
            }
            let first = invalid
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| format!(": line {}:{}: {} [{}]", d.line, d.column, d.message, d.code))
                .unwrap_or_default();
            say.println(format!("skipped {}: invalid{first}", file.display()));
        }
        DeployError::Failed(e) => say.println(format!("skipped {}: {e}", file.display())),
    }
}

/// Prints the webhook secrets issued now, once each, with the URL their org's sender posts
/// to (under `public`).
pub fn print_issued(issued: &[IssuedSecret], public: &str) {
    for i in issued {
        println!(
            "webhook {}.{} for {}: POST {} (x-weft-secret: {}; shown once: `weft trigger secret {} {} --org {}` shows it again)",
            i.workflow,
            i.trigger,
            i.org,
            weft_service::triggers::hook_url(public, &i.trigger, &i.org),
            i.secret,
            i.workflow,
            i.trigger,
            i.org
        );
    }
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(async {
        let engine = super::engine::open(&args.db).await?;
        let shown = super::progress::wanted(false, args.quiet);
        let done = deploy_paths(&engine, &args.paths, true, shown).await;
        print_issued(&done.issued, &weft_service::triggers::public_url());
        Ok(if done.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
