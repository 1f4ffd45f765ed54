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
    /// Database URL: sqlite://PATH (created on first use), or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (add `?options[search_path]=SCHEMA` to
    /// use an existing schema other than `public`).
    #[arg(long, global = true, env = "WEFT_DATABASE_URL", default_value = DEFAULT_DATABASE)]
    pub database: String,
    /// Integration instances (Autotask credentials…): a YAML file
    /// `integrations: [{kind, name, settings: {...}, secrets: {...}}]`.
    #[arg(long, global = true, env = "WEFT_INTEGRATIONS", value_name = "FILE")]
    pub integrations: Option<std::path::PathBuf>,
}

/// How executions are shared between processes on one database (`weft serve`, `weft worker`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// How many executions this process runs at once.
    #[arg(long, default_value_t = 4, env = "WEFT_WORKERS")]
    pub workers: usize,
    /// Seconds this process holds an execution without renewing it (renewed every third);
    /// when a process dies or hangs, another takes its executions over after this long.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        env = "WEFT_LEASE_SECS"
    )]
    pub lease: u64,
}

impl ClusterArgs {
    /// The engine with this lease.
    pub fn apply(&self, engine: Arc<Engine>) -> Arc<Engine> {
        engine.with_lease(std::time::Duration::from_secs(self.lease))
    }
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
    // After the store: a passphrase's salt is kept in the database.
    let secrets = secret_box(&db.database, store.as_ref()).await?;
    let mut engine =
        Engine::new(store, Arc::new(weft_actions::registry())).with_secrets(Arc::new(secrets));
    if let Some(observer) = observer {
        engine = engine.with_observer(observer);
    }
    let engine = match (integrations, &db.integrations) {
        (Some(integrations), _) => engine.with_integrations(Arc::new(integrations)),
        (None, Some(path)) => {
            let integrations =
                StaticIntegrations::from_file(path).map_err(|e| miette::miette!("{e}"))?;
            engine.with_integrations(Arc::new(integrations))
        }
        (None, None) => engine,
    };
    // Form links made outside `weft serve` (which sets its own address) use WEFT_PUBLIC_URL.
    engine.set_public_url(&weft_service::triggers::public_url());
    Ok(engine)
}

/// The key secrets are sealed with: `WEFT_SECRET_KEY` (a 32-byte key in hex or base64, or a
/// passphrase stretched with Argon2id and the salt kept in `store`), else `secret.key` beside
/// a SQLite database file (created 0600 on first use), else `.weft/secret.key`.
pub async fn secret_box(
    database: &str,
    store: &dyn weft_engine::store::Store,
) -> miette::Result<weft_engine::secrets::KeyBox> {
    use weft_engine::secrets::KeyBox;
    if let Some(key) = std::env::var("WEFT_SECRET_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        return KeyBox::from_key_or_passphrase(&key, store)
            .await
            .map_err(|e| {
                let why = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                miette::miette!("{e}{why}")
            });
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .filter(|p| !p.contains(":memory:") && !p.contains("mode=memory"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .and_then(|p| {
            std::path::Path::new(p)
                .parent()
                .map(|d| d.join("secret.key"))
        })
        .unwrap_or_else(|| std::path::PathBuf::from(".weft/secret.key"));
    KeyBox::from_file(&path).map_err(|e| {
        let why = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        miette::miette!("{e}{why} (or set WEFT_SECRET_KEY)")
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
