//! `weft worker`: only executor workers. Several `weft worker` and `weft serve` processes on
//! one database share its queue: each execution is claimed by one of them under a lease that
//! its holder renews; when a process dies or hangs, another takes the execution over after
//! the lease and resumes it from its last committed step.

use std::process::ExitCode;

use weft_engine::executor::Workers;

use super::engine::{ClusterArgs, EngineArgs, redact_url};
use super::serve::{GRACE, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    db: EngineArgs,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> miette::Result<ExitCode> {
    let engine = args.cluster.apply(super::engine::open(&args.db).await?);
    // Executions of processes that died on this host continue here at once; others' after
    // their lease.
    match engine.adopt_orphans().await {
        Ok(0) => {}
        Ok(n) => eprintln!("resuming {n} interrupted execution(s)"),
        Err(e) => tracing::error!(error = %e, "cannot resume interrupted executions"),
    }
    let workers = Workers::new(engine.clone(), args.cluster.workers);
    println!(
        "worker {} running up to {} execution(s) at once from {} (lease {}s)",
        engine.owner(),
        args.cluster.workers.max(1),
        redact_url(&args.db.database),
        args.cluster.lease
    );
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    shutdown_signal().await;
    eprintln!(
        "shutting down: waiting up to {}s for running executions",
        GRACE.as_secs()
    );
    if !workers.shutdown(GRACE).await {
        eprintln!("executions still running are left to another worker (after their lease)");
    }
    Ok(ExitCode::SUCCESS)
}
