//! `weft healthcheck`: asks a running `weft serve` whether it is alive, for container
//! health checks in images that have no curl.

use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to ask (any 2xx answer is healthy).
    #[arg(default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(async {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout.max(1)))
            .build()
        {
            Ok(c) => c,
            Err(e) => return Err(miette::miette!("cannot build an HTTP client: {e}")),
        };
        match client.get(&args.url).send().await {
            Ok(r) if r.status().is_success() => {
                println!("healthy: {} answered {}", args.url, r.status());
                Ok(ExitCode::SUCCESS)
            }
            Ok(r) => {
                println!("unhealthy: {} answered {}", args.url, r.status());
                Ok(ExitCode::FAILURE)
            }
            Err(e) => {
                println!("unhealthy: cannot reach {}: {e}", args.url);
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
