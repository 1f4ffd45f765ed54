//! `weft serve`: the JSON API and webhook triggers, executions run by in-process workers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use weft_engine::executor::Engine;
use weft_server::{AppState, Metrics, Workers};

use super::engine::EngineArgs;

/// How long running executions may finish after a shutdown signal.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// The flags `weft serve` shares with `weft config show` (each also an environment variable
/// and a `weft.toml` key: see `crate::config::SETTINGS`).
#[derive(Debug, clap::Args)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", env = "WEFT_LISTEN")]
    listen: String,
    /// The base URL Autotask reaches this server at, for its webhook callouts
    /// (default: `http://` and the bound address).
    #[arg(long, value_name = "URL", env = "WEFT_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    cluster: super::engine::ClusterArgs,
    /// Delete finished executions older than this (`90d`), hourly; an org's `retention`
    /// variable (inherited; `365d`, `forever`) overrides it for that org. Default: keep all.
    #[arg(long, value_name = "DURATION", env = "WEFT_RETENTION")]
    retention: Option<String>,
    #[command(flatten)]
    db: EngineArgs,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    settings: Settings,
    /// A folder of workflow files deployed at start (invalid ones are reported and skipped).
    #[arg(long, value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Also serve the bundled Autotask simulator (seeded MSP tenant, on a free port) and use
    /// it as the `autotask` integration — unless `--integrations` names real ones.
    #[arg(long)]
    sim: bool,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(args))
}

async fn run_async(args: Args) -> miette::Result<ExitCode> {
    let retention = match args
        .settings
        .retention
        .as_deref()
        .filter(|r| !r.trim().is_empty())
    {
        None => None,
        Some(r) => Some(weft_engine::model::parse_duration(r).ok_or_else(|| {
            miette::miette!("--retention `{r}` is not a duration (like 90d or 12h)")
        })?),
    };
    let metrics = Arc::new(Metrics::new());
    // The simulator serves until the process ends.
    let (_sim, sim_integrations) = if args.sim {
        let (running, integrations) = start_sim(&args).await?;
        (Some(running), integrations)
    } else {
        (None, None)
    };
    let engine = args.settings.cluster.apply(
        super::engine::open_with(&args.settings.db, Some(metrics.clone()), sim_integrations)
            .await?,
    );
    let env_token = std::env::var("WEFT_API_TOKEN").ok();
    let (token_hash, generated) =
        weft_server::api_token(engine.store().as_ref(), env_token.as_deref())
            .await
            .into_diagnostic()
            .wrap_err("cannot set up the API token")?;
    let listener = tokio::net::TcpListener::bind(&args.settings.listen)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot listen on {}", args.settings.listen))?;
    let addr = listener.local_addr().into_diagnostic()?;
    let base = format!("http://{addr}");
    let workers = Workers::new(engine.clone(), args.settings.cluster.workers);
    // Cron triggers: each slot fires once across workers (see weft_triggers::cron).
    let cron_stop = weft_triggers::cron::CancellationToken::new();
    let cron = weft_triggers::cron::Scheduler::new(
        engine.clone(),
        Arc::new(weft_engine::action::SystemClock),
    )
    .spawn(cron_stop.clone());
    // Retention: hourly, by the default and each org's own `retention` variable.
    let retention_job = spawn_retention(engine.clone(), retention, cron_stop.clone());
    // The nightly Autotask directory sync (`weft sync autotask settings --schedule`).
    let psa_sync = tokio::spawn(weft_service::sync::nightly(engine.clone()));
    let public = args
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| base.clone());
    let state =
        AppState::with_token_hash(engine.clone(), workers.clone(), token_hash, public.clone())
            .with_trusted_proxies(trusted_proxies()?)
            .with_metrics(metrics)
            .with_metrics_token(std::env::var("WEFT_METRICS_TOKEN").ok().as_deref());

    if args.sim {
        seed_sim_orgs(&engine).await;
    }
    let mut issued = Vec::new();
    if let Some(dir) = &args.workflows {
        issued = super::deploy::deploy_paths(&engine, std::slice::from_ref(dir), false, false)
            .await
            .issued;
    }

    // Autotask webhooks of the deployed Autotask triggers, kept in step in the background.
    let autotask_sync = weft_triggers::autotask::keep_in_sync(
        engine.clone(),
        public.clone(),
        Duration::from_secs(10),
        cron_stop.clone(),
        |result| match result {
            Ok(report) => {
                use std::io::Write;
                report.lines().iter().for_each(|l| println!("{l}"));
                let _ = std::io::stdout().flush();
            }
            Err(e) => eprintln!("{e}"),
        },
    );
    println!("listening on {base}");
    println!("console: {base}/");
    if let Some(token) = &generated {
        println!("API token (shown once; set WEFT_API_TOKEN to choose your own): {token}");
    }
    print_webhooks(&engine, &public, &issued).await?;
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    // Executions left by a killed process continue here, on the workers.
    match engine.adopt_orphans().await {
        Ok(0) => {}
        Ok(n) => eprintln!("resuming {n} interrupted execution(s)"),
        Err(e) => tracing::error!(error = %e, "cannot resume interrupted executions"),
    }

    // The peer address lets webhook failures be limited per source.
    let app =
        weft_server::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .into_diagnostic()?;
    cron_stop.cancel();
    psa_sync.abort();
    let _ = cron.await;
    let _ = retention_job.await;
    let _ = autotask_sync.await;
    eprintln!(
        "shutting down: waiting up to {}s for running executions",
        GRACE.as_secs()
    );
    if !workers.shutdown(GRACE).await {
        eprintln!("executions still running are left to resume at the next start");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--sim`: starts the Autotask simulator (with its OpenAI endpoint and chat sinks) and,
/// unless integrations come from elsewhere, integrations that point at it.
async fn start_sim(
    args: &Args,
) -> miette::Result<(
    weft_sim::RunningSim,
    Option<weft_engine::integration::StaticIntegrations>,
)> {
    let running = weft_sim::Simulator::new(weft_sim::SimConfig::default())
        .into_diagnostic()?
        .serve(([127, 0, 0, 1], 0).into())
        .await
        .into_diagnostic()
        .wrap_err("cannot start the Autotask simulator")?;
    let (user, secret, code) = running.simulator.credentials();
    println!(
        "Autotask simulator: {} (user {user}, integration code {code})",
        running.base_url
    );
    let autotask = weft_engine::integration::Integration::new("autotask", "default")
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("discovery_url", running.base_url.clone())
        .with_secret("secret", secret);
    // The simulator's OpenAI-compatible endpoint and Teams/Slack sinks, so crates that
    // use a model or notify a channel work against it too.
    let openai = weft_engine::integration::Integration::new("openai", "default")
        .with_setting("base_url", running.openai_base_url())
        .with_setting("model", "gpt-4o-mini")
        .with_secret("api_key", weft_sim::DEFAULT_OPENAI_KEY);
    let teams = weft_engine::integration::Integration::new("teams", "default")
        .with_setting("url", running.teams_url("weft"));
    let slack = weft_engine::integration::Integration::new("slack", "default")
        .with_setting("url", running.slack_url("weft"));
    println!(
        "  OpenAI-compatible endpoint: {} ; Teams sink: {} ; Slack sink: {}",
        running.openai_base_url(),
        running.teams_url("weft"),
        running.slack_url("weft")
    );
    let integrations = match &args.settings.db.integrations {
        Some(_) => None,
        None => Some(weft_engine::integration::StaticIntegrations::new(vec![
            autotask, openai, teams, slack,
        ])),
    };
    Ok((running, integrations))
}

/// The hourly retention job, by the default `retention` and each org's own, until `stop`.
fn spawn_retention(
    engine: Arc<Engine>,
    retention: Option<Duration>,
    stop: weft_triggers::cron::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match weft_engine::retention::apply(&engine, retention).await {
                Ok(done) => {
                    for p in done.iter().filter(|p| p.count + p.events > 0) {
                        tracing::info!(org = p.org.as_deref().unwrap_or("(default)"), before = %p.before, purged = p.count, events = p.events, "retention: finished executions and trigger events deleted");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention: cannot purge"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                () = stop.cancelled() => break,
            }
        }
    })
}

/// Prints each webhook's URL; a secret is printed only when it is issued (once per trigger
/// and org); `weft trigger secret WF TRIGGER --org ORG` shows or rotates it later.
async fn print_webhooks(
    engine: &Arc<Engine>,
    public: &str,
    deployed: &[weft_service::workflows::IssuedSecret],
) -> miette::Result<()> {
    for record in engine.store().list_workflows().await.into_diagnostic()? {
        let Ok(wf) = engine.parsed(&record) else {
            continue;
        };
        let mut issued = weft_triggers::webhook_access::issue_missing(engine, &wf)
            .await
            .map_err(|e| miette::miette!("cannot issue webhook secrets: {e}"))?;
        // Those issued by the deploy of `--workflows` just now are shown here, once.
        issued.extend(deployed.iter().filter(|i| i.workflow == wf.name).cloned());
        for t in &wf.triggers {
            if let weft_engine::model::TriggerKind::Webhook { .. } = t.kind {
                println!(
                    "webhook {}.{}: POST {public}/hooks/{}/{{org}}",
                    wf.name, t.name, t.name
                );
            }
            for i in issued.iter().filter(|i| i.trigger == t.name) {
                println!(
                    "webhook {}.{} for {}: POST {public}/hooks/{}/{} (x-weft-secret: {}; shown once: `weft trigger secret {} {} --org {}` shows it again)",
                    i.workflow,
                    i.trigger,
                    i.org,
                    i.trigger,
                    i.org,
                    i.secret,
                    i.workflow,
                    i.trigger,
                    i.org
                );
            }
        }
    }
    Ok(())
}

/// `WEFT_TRUSTED_PROXIES`: the reverse proxies (comma-separated addresses) whose
/// `X-Forwarded-For` tells where a webhook request came from.
fn trusted_proxies() -> miette::Result<Vec<std::net::IpAddr>> {
    let Ok(list) = std::env::var("WEFT_TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse().map_err(|_| {
                miette::miette!(
                    "WEFT_TRUSTED_PROXIES: `{a}` is not an IP address (give the proxies' addresses, comma-separated)"
                )
            })
        })
        .collect()
}

/// With `--sim` and no organization yet: the simulator's tenant as an org tree, so that the
/// examples' per-org webhooks have orgs to run for — the MSP (the tenant's own company 0) at
/// the root and an org per active Customer company below it, each mapped to its company.
async fn seed_sim_orgs(engine: &weft_engine::executor::Engine) {
    let store = engine.store();
    match store.list_orgs().await {
        Ok(orgs) if orgs.is_empty() => {}
        Ok(_) => return,
        Err(e) => {
            eprintln!("cannot read the organizations: {e}");
            return;
        }
    }
    // Created and linked by the same rules as `weft org add` and `weft mapping set`.
    let root = weft_service::orgs::NewOrg {
        name: "BrightPath IT Services".into(),
        id: Some("msp".into()),
        ..Default::default()
    };
    let created = match weft_service::orgs::create(store.as_ref(), root).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot create the simulator's MSP org: {e}");
            return;
        }
    };
    let name = Some(created.org.name.clone());
    if let Err(e) =
        weft_engine::org::link_external(store.as_ref(), "msp", "autotask", "0", name).await
    {
        eprintln!("cannot map the simulator's MSP org to its company: {e}");
        return;
    }
    let filter = weft_service::mapping::CompanyFilter {
        company_type: Some("Customer".into()),
        ..Default::default()
    };
    match weft_service::mapping::create_unmatched(engine, &filter, false).await {
        Ok(created) => println!(
            "organizations from the simulator: msp (BrightPath IT Services) and {} client(s) below it",
            created.created.len()
        ),
        Err(e) => eprintln!("cannot create the simulator's client orgs: {e}"),
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
