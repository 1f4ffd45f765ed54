//! Opening the store and the engine the way every command does.

use std::sync::Arc;

use miette::{IntoDiagnostic, WrapErr};
use weft_engine::executor::Engine;
use weft_engine::executor::observe::Observer;
use weft_engine::integration::StaticIntegrations;

/// The database used when neither `--database` nor `WEFT_DATABASE_URL` says otherwise.
pub const DEFAULT_DATABASE: &str = "sqlite://.weft/weft.db";

/// `--database` and `--integrations`, shared by the commands that use the engine.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Database URL: sqlite://PATH (created on first use).
    #[arg(long, global = true, env = "WEFT_DATABASE_URL", default_value = DEFAULT_DATABASE)]
    pub database: String,
    /// Integration instances (Autotask credentials…): a YAML file
    /// `integrations: [{kind, name, settings: {...}, secrets: {...}}]`.
    #[arg(long, global = true, env = "WEFT_INTEGRATIONS", value_name = "FILE")]
    pub integrations: Option<std::path::PathBuf>,
}

/// Opens the store and builds an engine with every shipped action.
pub async fn open(db: &EngineArgs) -> miette::Result<Arc<Engine>> {
    open_observed(db, None).await
}

/// As [`open`], the engine reporting executions and tasks to `observer` (metrics).
pub async fn open_observed(
    db: &EngineArgs,
    observer: Option<Arc<dyn Observer>>,
) -> miette::Result<Arc<Engine>> {
    open_with(db, observer, None).await
}

/// As [`open_observed`]; `integrations`, when given, replaces `--integrations`.
pub async fn open_with(
    db: &EngineArgs,
    observer: Option<Arc<dyn Observer>>,
    integrations: Option<StaticIntegrations>,
) -> miette::Result<Arc<Engine>> {
    let store = weft_engine::store::open(&db.database)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot open the database {}", redact_url(&db.database)))?;
    let mut engine = Engine::new(store, Arc::new(weft_actions::registry()));
    if let Some(observer) = observer {
        engine = engine.with_observer(observer);
    }
    if let Some(integrations) = integrations {
        return Ok(engine.with_integrations(Arc::new(integrations)));
    }
    Ok(match &db.integrations {
        Some(path) => {
            let integrations =
                StaticIntegrations::from_file(path).map_err(|e| miette::miette!("{e}"))?;
            engine.with_integrations(Arc::new(integrations))
        }
        None => engine,
    })
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// A runtime for commands that use the engine.
pub fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}
