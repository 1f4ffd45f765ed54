//! `weft integration add|list|rm|test`: integration instances (Autotask tenants, Teams and
//! Slack webhooks, OpenAI endpoints, HTTP APIs) that belong to an organization and are
//! inherited by the orgs below it. Secrets are sealed at rest and printed as ***.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};
use weft_engine::integration::{Integration, Integrations};
use weft_engine::org::OrgContext;
use weft_service::integrations::{IntegrationView, NewIntegration, instance_url, valid_url};
use weft_service::variables::REDACTED;

use super::engine::EngineArgs;
use super::org::{read_stdin, service_failure, usage};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add (or replace) an integration instance of an organization. Kinds: autotask,
    /// openai, teams, slack, http. `--secret KEY=-` reads the value from stdin, so it stays
    /// out of the shell history.
    ///
    /// autotask needs --set username=... --set integration_code=... --secret secret=-
    /// (optional zone_url, discovery_url); teams and slack need --set url=... (their incoming
    /// webhook URL, or --secret url=-).
    Add {
        /// autotask, openai, teams, slack or http.
        kind: String,
        /// The organization it belongs to (id or name); orgs below it inherit it.
        #[arg(long)]
        org: String,
        /// Instance name, when an org has several of a kind.
        #[arg(long, default_value = "default")]
        name: String,
        /// A setting KEY=VALUE (repeatable). Numbers, true/false, [..] and {..} are JSON;
        /// the rest (and URLs, user names, codes) is text.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// A secret KEY=VALUE, or KEY=- to read it from stdin (repeatable; several `-` read
        /// one line each).
        #[arg(long = "secret", value_name = "KEY=VALUE")]
        secrets: Vec<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// List integration instances (secrets as ***).
    List {
        /// Only this organization's own instances.
        #[arg(long)]
        org: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Remove an integration instance.
    Rm {
        /// The kind.
        kind: String,
        /// The organization (id or name).
        #[arg(long)]
        org: String,
        /// Instance name.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Resolve the instance a task in ORG would use (the org's own, the nearest parent's,
    /// else --integrations) and check it: for autotask, zone discovery, the API version
    /// and a credential check; for teams, slack and http, the URL. Exit 0 ok, 1 failed.
    Test {
        /// The kind.
        kind: String,
        /// The organization a task runs for (id or name).
        #[arg(long)]
        org: String,
        /// The instance a task or trigger names (default: the org's default).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

fn known_kind(kind: &str) -> Result<(), ExitCode> {
    weft_service::integrations::known_kind(kind).map_err(usage)
}

/// Keys whose values stay text even when they look like numbers.
fn text_key(key: &str) -> bool {
    key.ends_with("url")
        || matches!(
            key,
            "username" | "integration_code" | "name" | "channel" | "model" | "tenant"
        )
}

fn split_pair(pair: &str, flag: &str) -> Result<(String, String), ExitCode> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(usage(format!("{flag} takes KEY=VALUE, got `{}`", {
            // Never echo what may be a secret value.
            if flag == "--secret" { "<hidden>" } else { pair }
        }))),
    }
}

fn parse_settings(pairs: &[String]) -> Result<Map<String, Value>, ExitCode> {
    let mut out = Map::new();
    for p in pairs {
        let (k, v) = split_pair(p, "--set")?;
        let value =
            match serde_json::from_str::<Value>(&v) {
                Ok(
                    j @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_)),
                ) if !text_key(&k) => j,
                Ok(Value::String(s)) if v.trim_start().starts_with('"') => Value::String(s),
                _ => Value::String(v),
            };
        out.insert(k, value);
    }
    Ok(out)
}

fn parse_secrets(pairs: &[String]) -> Result<BTreeMap<String, String>, ExitCode> {
    let mut parsed = Vec::new();
    for p in pairs {
        parsed.push(split_pair(p, "--secret")?);
    }
    let from_stdin = parsed.iter().filter(|(_, v)| v == "-").count();
    let mut lines: Vec<String> = Vec::new();
    if from_stdin == 1 {
        lines.push(read_stdin("the secret")?);
    } else if from_stdin > 1 {
        let text = read_stdin("the secrets")?;
        lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        if lines.len() < from_stdin {
            return Err(usage(format!(
                "{from_stdin} secrets read from stdin (KEY=-) but it has {} line(s)",
                lines.len()
            )));
        }
    }
    let mut lines = lines.into_iter();
    let mut out = BTreeMap::new();
    for (k, v) in parsed {
        let v = if v == "-" {
            lines.next().unwrap_or_default()
        } else {
            v
        };
        if v.is_empty() {
            return Err(usage(format!("the secret `{k}` is empty")));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// One line describing an instance, secrets as ***.
pub(crate) fn describe(i: &IntegrationView, org: &str) -> String {
    let mut line = format!("{}/{}", i.kind, i.name);
    if i.org != org {
        line.push_str(&format!("  (from {})", i.org));
    }
    let settings: Vec<String> = i
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    if !settings.is_empty() {
        line.push_str(&format!("  settings: {}", settings.join(" ")));
    }
    let secrets: Vec<String> = i
        .secrets
        .keys()
        .map(|k| format!("{k}={REDACTED}"))
        .collect();
    if !secrets.is_empty() {
        line.push_str(&format!("  secrets: {}", secrets.join(" ")));
    }
    if i.secrets_unreadable == Some(true) {
        line.push_str("  secrets: (sealed with another key)");
    }
    line
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::Add {
            kind,
            org,
            name,
            settings,
            secrets,
            db,
        } => add(kind, org, name, settings, secrets, db).await,
        Command::List { org, json, db } => {
            let engine = super::engine::open(&db).await?;
            let list = tri!(
                weft_service::integrations::list(
                    engine.store().as_ref(),
                    engine.secrets().as_ref(),
                    org.as_deref(),
                )
                .await
            );
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).expect("serializes")
                );
            } else if list.is_empty() {
                println!("no integrations");
            } else {
                for i in &list {
                    println!("{:<20}  {}", i.org, describe(i, &i.org));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm {
            kind,
            org,
            name,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            let store = engine.store();
            match weft_service::integrations::remove(store.as_ref(), &org, &kind, &name).await {
                Ok(record) => {
                    println!("removed {kind} integration `{name}` of {}", record.id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(service_failure(&e)),
            }
        }
        Command::Test {
            kind,
            org,
            name,
            db,
        } => test(kind, org, name, db).await,
    }
}

/// `weft integration test KIND --org ORG`: resolves the instance the org would use and tries it.
async fn test(
    kind: String,
    org: String,
    name: Option<String>,
    db: EngineArgs,
) -> miette::Result<ExitCode> {
    if let Err(code) = known_kind(&kind) {
        return Ok(code);
    }
    let engine = super::engine::open(&db).await?;
    let ctx = match OrgContext::load(engine.store().as_ref(), engine.secrets().as_ref(), &org).await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if !ctx.registered {
        eprintln!(
            "warning: no organization `{org}` is registered: only --integrations instances apply"
        );
    }
    let resolver = engine.org_integrations(&ctx);
    let instance = match resolver.resolve(&kind, &ctx.org_ref(), name.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}", e.message);
            return Ok(ExitCode::from(1));
        }
    };
    let source = ctx
        .integrations
        .iter()
        .find(|(_, i)| i.kind == instance.kind && i.name == instance.name)
        .map(|(o, _)| {
            if *o == ctx.org.id {
                format!("organization {o}")
            } else {
                format!("organization {o} (inherited)")
            }
        })
        .unwrap_or_else(|| "the --integrations file".to_string());
    println!(
        "using {}/{} from {source} for {}",
        instance.kind, instance.name, ctx.org.id
    );
    let ok = match kind.as_str() {
        "autotask" => test_autotask(&instance).await,
        "openai" => {
            let key = instance.secret("api_key").is_some() || instance.setting("api_key").is_some();
            let url_ok = instance
                .setting("base_url")
                .or_else(|| instance.setting("url"))
                .is_none_or(valid_url);
            if !url_ok {
                println!("FAILED: its base_url is not an http(s) URL");
            } else if !key {
                println!("FAILED: it has no secret `api_key`");
            } else {
                println!("ok: api_key set (no network check for openai)");
            }
            url_ok && key
        }
        _ => {
            let secrets: BTreeMap<String, String> = ["url", "webhook_url", "base_url"]
                .into_iter()
                .filter_map(|k| instance.secret(k).map(|v| (k.to_string(), v.into())))
                .collect();
            match instance_url(&instance.settings, &secrets) {
                None => {
                    println!("FAILED: it has no URL (`url`, `webhook_url` or `base_url`)");
                    false
                }
                Some((key, url)) if valid_url(url) => {
                    if secrets.contains_key(key) {
                        println!("ok: `{key}` (secret) is a valid URL");
                    } else {
                        println!("ok: `{key}` {url} is a valid URL");
                    }
                    true
                }
                Some((key, _)) => {
                    println!("FAILED: `{key}` is not an http(s) URL");
                    false
                }
            }
        }
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `weft integration add KIND --org ORG …`: parses the flags, then [`weft_service::integrations::add`].
async fn add(
    kind: String,
    org: String,
    name: String,
    settings: Vec<String>,
    secrets: Vec<String>,
    db: EngineArgs,
) -> miette::Result<ExitCode> {
    if let Err(code) = known_kind(&kind) {
        return Ok(code);
    }
    let settings = match parse_settings(&settings) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let secrets = match parse_secrets(&secrets) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let engine = super::engine::open(&db).await?;
    let secret_names: Vec<String> = secrets.keys().cloned().collect();
    let new = NewIntegration {
        org,
        kind: kind.clone(),
        name: Some(name),
        settings,
        secrets,
    };
    let added = match weft_service::integrations::add(
        engine.store().as_ref(),
        engine.secrets().as_ref(),
        new,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return Ok(service_failure(&e)),
    };
    for w in &added.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} {kind} integration `{}` of {} ({}){}",
        if added.replaced { "replaced" } else { "added" },
        added.record.name,
        added.org.name,
        added.org.id,
        if secret_names.is_empty() {
            String::new()
        } else {
            format!(" with secret(s) {} (sealed)", secret_names.join(", "))
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn test_autotask(i: &Integration) -> bool {
    // A test answers quickly: one retry, a short time limit.
    let client = match weft_actions::autotask::Client::from_integration_with(i, |config| {
        config.max_retries = config.max_retries.min(1);
        config.timeout = config.timeout.min(Duration::from_secs(20));
    }) {
        Ok(c) => c,
        Err(e) => {
            println!("FAILED: {}", e.message);
            return false;
        }
    };
    match client.zone().await {
        Ok(zone) => println!("zone: {zone}"),
        Err(e) => {
            println!("FAILED: zone discovery: {e}");
            return false;
        }
    }
    match client.version_info().await {
        Ok(v) => {
            let versions: Vec<String> = v["apiVersions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
                .collect();
            if versions.is_empty() {
                println!("API version: {v}");
            } else {
                println!("API version: {}", versions.join(", "));
            }
        }
        Err(e) => {
            println!("FAILED: GET VersionInformation: {e}");
            return false;
        }
    }
    match client
        .count("Companies", &[weft_actions::autotask::Filter::all()])
        .await
    {
        Ok(n) => {
            println!("credentials: ok ({n} companies visible)");
            match client.threshold_information().await {
                Ok(t) => println!(
                    "requests this hour: {} of {} ({}%; every integration of this Autotask database counts)",
                    t.count,
                    t.limit,
                    t.count
                        .saturating_mul(100)
                        .checked_div(t.limit)
                        .unwrap_or(0)
                ),
                Err(e) => println!("requests this hour: unknown ({e})"),
            }
            true
        }
        Err(e) => {
            println!("FAILED: credentials: {e}");
            false
        }
    }
}
