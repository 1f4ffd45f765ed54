//! `weft sim`: serve the Autotask PSA simulator locally until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use miette::IntoDiagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// Tenant data file (JSON, the format of sim/data/tenant.json). Default: the seeded tenant.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Generate N extra contacts (copies of seeded ones) for scale tests.
    #[arg(long, default_value_t = 0)]
    extra_contacts: usize,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let mut config = weft_sim::SimConfig::default();
    if let Some(path) = &args.data {
        config.data = weft_sim::TenantData::from_file(path).into_diagnostic()?;
    }
    if args.extra_contacts > 0 {
        config = config.with_extra("Contacts", args.extra_contacts);
    }
    let sim = weft_sim::Simulator::new(config).into_diagnostic()?;
    let runtime = super::engine::runtime()?;
    runtime.block_on(async move {
        let running = sim.serve(args.listen).await.into_diagnostic()?;
        let (user, secret, code) = running.simulator.credentials();
        println!("Autotask simulator listening.");
        println!("  zone base URL:      {}", running.base_url);
        println!(
            "  zone lookup:        {}ATServicesRest/V1.0/zoneInformation?user={user}",
            running.root_url.clone() + "/"
        );
        println!("  UserName:           {user}");
        println!("  Secret:             {secret}");
        println!("  ApiIntegrationCode: {code}");
        println!(
            "  OpenAI-compatible:  {} (api key {})",
            running.openai_base_url(),
            weft_sim::DEFAULT_OPENAI_KEY
        );
        println!(
            "  Teams/Slack sinks:  {} , {}",
            running.teams_url("CHANNEL"),
            running.slack_url("CHANNEL")
        );
        println!(
            "Failure injection per request: header X-Sim-Fail: 429|thread|zone|500|latency=200ms"
        );
        println!("Press Ctrl-C to stop.");
        running.run_until_ctrl_c().await;
        Ok::<_, miette::Report>(ExitCode::SUCCESS)
    })
}
