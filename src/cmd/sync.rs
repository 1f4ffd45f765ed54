//! `weft sync autotask …` and `weft sync runs`: the PSA directory sync.

use std::process::ExitCode;

use miette::IntoDiagnostic;
use serde_json::{Value, json};
use weft_actions::autotask::sync::{self, KINDS, Mode, Options, SyncReport};
use weft_engine::executor::Engine;
use weft_engine::store::Store;

use super::engine::EngineArgs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sync Autotask companies, resources, contacts, configuration items and locations into
    /// weft's orgs and directory: `--preview` (the default) shows what would be created,
    /// matched and excluded; `--apply` does it.
    Autotask(AutotaskArgs),
    /// Past sync runs, newest first.
    Runs {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AutotaskArgs {
    #[command(subcommand)]
    action: Option<Action>,
    /// The org whose Autotask integration is synced (default: the root org).
    #[arg(long)]
    org: Option<String>,
    /// Show what a sync would do and change nothing (the default).
    #[arg(long, conflicts_with = "apply")]
    preview: bool,
    /// Perform the sync.
    #[arg(long)]
    apply: bool,
    /// Use this Autotask integration instance instead of the org's default.
    #[arg(long)]
    integration: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: EngineArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    Company,
    User,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CreateKind {
    Company,
    User,
    Configuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Exclude a company or resource from matching and creation (remembered across runs).
    Exclude {
        #[arg(value_enum)]
        kind: Kind,
        /// The Autotask company or resource id.
        id: String,
    },
    /// Lift an exclusion: the record is matched or created by the usual rules again.
    Include {
        #[arg(value_enum)]
        kind: Kind,
        /// The Autotask company or resource id.
        id: String,
    },
    /// Create a pending or excluded company, resource or configuration item at the next
    /// apply, whatever the auto-create settings say.
    Create {
        #[arg(value_enum)]
        kind: CreateKind,
        /// The Autotask id.
        id: String,
    },
    /// Match a company to an org (`match company ID ORG`) or a resource to a weft user
    /// record (`match user RESOURCE_ID USER_ID`: a directory record of source `weft`).
    Match {
        #[arg(value_enum)]
        kind: Kind,
        /// The Autotask company or resource id.
        id: String,
        /// The org (companies) or the weft user record id (users).
        target: String,
    },
    /// List the excluded companies and resources.
    Excluded {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show or change the auto-create toggles and the nightly schedule.
    Settings {
        /// After the first sync, create orgs for new companies.
        #[arg(long, value_enum)]
        auto_create_clients: Option<OnOff>,
        /// After the first sync, create users for new resources.
        #[arg(long, value_enum)]
        auto_create_users: Option<OnOff>,
        /// After the first sync, import new configuration items.
        #[arg(long, value_enum)]
        auto_create_configurations: Option<OnOff>,
        /// Create orgs only for companies of these types (`1,3`: customers and prospects;
        /// `all`: every type).
        #[arg(long, value_name = "TYPES")]
        company_types: Option<String>,
        /// The nightly run's cron schedule (`0 2 * * *`), or `off`.
        #[arg(long)]
        schedule: Option<String>,
        /// The schedule's IANA time zone (`Europe/London`).
        #[arg(long)]
        timezone: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

fn fail(msg: impl std::fmt::Display) -> miette::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(1))
}

fn usage(msg: impl std::fmt::Display) -> miette::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(2))
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::Runs { limit, json, db } => {
            let engine = super::engine::open(&db).await?;
            let runs = engine.store().sync_runs(limit).await.into_diagnostic()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).expect("serializes")
                );
            } else if runs.is_empty() {
                println!("no sync runs");
            } else {
                println!(
                    "{:<5}  {:<9}  {:<8}  {:<20}  {:<20}  SUMMARY",
                    "ID", "SOURCE", "MODE", "ORG", "STARTED"
                );
                for r in &runs {
                    println!(
                        "{:<5}  {:<9}  {:<8}  {:<20}  {:<20}  {}",
                        r.id,
                        r.source,
                        r.mode,
                        r.org_id,
                        r.started_at
                            .get(..19)
                            .map_or(r.started_at.clone(), |t| format!("{t}Z")),
                        run_summary(&r.counts, &r.errors, r.finished_at.is_some())
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Autotask(args) => autotask(args).await,
    }
}

fn run_summary(counts: &Value, errors: &Value, finished: bool) -> String {
    if !finished {
        return "running (or interrupted)".into();
    }
    let mut parts = Vec::new();
    for key in ["created", "matched", "updated", "deactivated", "pending"] {
        let n: u64 = counts
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|k| k.get(key).and_then(Value::as_u64))
                    .sum()
            })
            .unwrap_or(0);
        if n > 0 {
            parts.push(format!("{n} {key}"));
        }
    }
    let errs = errors.as_array().map_or(0, Vec::len);
    if errs > 0 {
        parts.push(format!("{errs} error(s)"));
    }
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join(", ")
    }
}

async fn autotask(args: AutotaskArgs) -> miette::Result<ExitCode> {
    let engine = super::engine::open(&args.db).await?;
    let store = engine.store().as_ref();
    let Some(action) = args.action else {
        return preview_or_apply(&engine, &args).await;
    };
    let kind_name = |k: Kind| match k {
        Kind::Company => "company",
        Kind::User => "user",
    };
    let result = match action {
        Action::Exclude { kind, id } => sync::exclude(store, kind_name(kind), &id)
            .await
            .map(|()| format!("excluded {} {id}", kind_name(kind))),
        Action::Include { kind, id } => {
            let ex = sync::exclusion_kind(kind_name(kind)).expect("companies and users");
            match store.unexclude(ex, &id).await {
                Ok(true) => Ok(format!(
                    "{} {id} is no longer excluded: the next sync matches or creates it (or lists it as pending)",
                    kind_name(kind)
                )),
                Ok(false) => Ok(format!("{} {id} was not excluded", kind_name(kind))),
                Err(e) => Err(e.into()),
            }
        }
        Action::Create { kind, id } => {
            let k = match kind {
                CreateKind::Company => "company",
                CreateKind::User => "user",
                CreateKind::Configuration => "configuration",
            };
            sync::approve(store, k, &id).await.map(|()| {
                format!("{k} {id} will be created at the next `weft sync autotask --apply`")
            })
        }
        Action::Match { kind, id, target } => match kind {
            Kind::Company => sync::match_company(store, &id, &target)
                .await
                .map(|o| format!("company {id} matched to org `{}` ({})", o.name, o.id)),
            Kind::User => sync::match_user(store, &id, &target)
                .await
                .map(|()| format!("resource {id} matched to user `{target}`")),
        },
        Action::Excluded { json } => return list_excluded(store, json).await,
        Action::Settings {
            auto_create_clients,
            auto_create_users,
            auto_create_configurations,
            company_types,
            schedule,
            timezone,
            json,
        } => {
            let change = SettingsChange {
                auto_create_clients,
                auto_create_users,
                auto_create_configurations,
                company_types,
                schedule,
                timezone,
            };
            return settings(store, change, json).await;
        }
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

/// `weft sync autotask [--apply]`: runs the sync and prints its report.
async fn preview_or_apply(engine: &Engine, args: &AutotaskArgs) -> miette::Result<ExitCode> {
    let mode = if args.apply {
        Mode::Apply
    } else {
        Mode::Preview
    };
    let options = Options {
        integration: args.integration.clone(),
    };
    match sync::run(engine, args.org.as_deref(), mode, &options).await {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializes")
                );
            } else {
                print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

/// `weft sync autotask excluded`: the excluded companies and resources.
async fn list_excluded(store: &dyn Store, json: bool) -> miette::Result<ExitCode> {
    let mut rows = Vec::new();
    for (kind, ex) in [
        ("company", sync::EXCLUDE_COMPANY),
        ("user", sync::EXCLUDE_USER),
    ] {
        for (id, name) in store.exclusions(ex).await.into_diagnostic()? {
            rows.push(json!({"kind": kind, "external_id": id, "name": name}));
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("serializes")
        );
    } else if rows.is_empty() {
        println!("nothing excluded");
    } else {
        println!("{:<8}  {:<12}  NAME", "KIND", "ID");
        for r in &rows {
            println!(
                "{:<8}  {:<12}  {}",
                r["kind"].as_str().unwrap_or_default(),
                r["external_id"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or("")
            );
        }
        println!(
            "(`weft sync autotask create KIND ID` creates one at the next apply, `match` links it)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The changes `weft sync autotask settings` asks for (`None`: unchanged).
struct SettingsChange {
    auto_create_clients: Option<OnOff>,
    auto_create_users: Option<OnOff>,
    auto_create_configurations: Option<OnOff>,
    company_types: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
}

/// `weft sync autotask settings`: applies the changes asked for, saves the settings when
/// they changed, and prints them.
async fn settings(
    store: &dyn Store,
    change: SettingsChange,
    json: bool,
) -> miette::Result<ExitCode> {
    let mut s = match sync::settings(store).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let before = s.clone();
    if let Err(e) = change_settings(&mut s, change) {
        return usage(e);
    }
    if s != before
        && let Err(e) = sync::save_settings(store, &s).await
    {
        return fail(e);
    }
    print_settings(&s, json);
    Ok(ExitCode::SUCCESS)
}

/// Applies `c` to `s`; `Err` explains a malformed value.
fn change_settings(s: &mut sync::Settings, c: SettingsChange) -> Result<(), String> {
    if let Some(v) = c.auto_create_clients {
        s.auto_create_clients = v == OnOff::On;
    }
    if let Some(v) = c.auto_create_users {
        s.auto_create_users = v == OnOff::On;
    }
    if let Some(v) = c.auto_create_configurations {
        s.auto_create_configurations = v == OnOff::On;
    }
    if let Some(types) = c.company_types {
        if types.trim().eq_ignore_ascii_case("all") || types.trim().is_empty() {
            s.company_types = Vec::new();
        } else {
            let mut out = Vec::new();
            for t in types.split(',') {
                match t.trim().parse::<i64>() {
                    Ok(n) => out.push(n),
                    Err(_) => {
                        return Err(format!(
                            "--company-types takes numbers separated by commas (1 Customer, 2 Lead, 3 Prospect …) or `all`, not `{types}`"
                        ));
                    }
                }
            }
            s.company_types = out;
        }
    }
    if let Some(expr) = c.schedule {
        if expr.trim().eq_ignore_ascii_case("off") {
            s.schedule = None;
        } else {
            if let Err(e) = weft_engine::cron::Schedule::parse(&expr) {
                return Err(e.to_string());
            }
            s.schedule = Some(expr.trim().to_string());
        }
    }
    if let Some(tz) = c.timezone {
        if jiff::tz::TimeZone::get(&tz).is_err() {
            return Err(format!(
                "unknown time zone `{tz}` (an IANA name: Europe/London)"
            ));
        }
        s.timezone = tz;
    }
    Ok(())
}

fn print_settings(s: &sync::Settings, json: bool) {
    if json {
        let mut v = serde_json::to_value(s).expect("serializes");
        v["next_run"] = json!(sync::next_slot(s, jiff::Timestamp::now()).map(|t| t.to_string()));
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
    } else {
        let on = |b: bool| if b { "on" } else { "off" };
        println!("auto-create clients:        {}", on(s.auto_create_clients));
        println!("auto-create users:          {}", on(s.auto_create_users));
        println!(
            "auto-create configurations: {}",
            on(s.auto_create_configurations)
        );
        println!(
            "company types:              {}",
            if s.company_types.is_empty() {
                "all".to_string()
            } else {
                s.company_types
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }
        );
        match (&s.schedule, sync::next_slot(s, jiff::Timestamp::now())) {
            (Some(expr), Some(next)) => println!(
                "schedule:                   {expr} ({}; next run {next}, by `weft serve`)",
                s.timezone
            ),
            (Some(expr), None) => {
                println!("schedule:                   {expr} ({})", s.timezone);
            }
            (None, _) => println!("schedule:                   off"),
        }
    }
}

const SHOWN: usize = 20;

fn print_names(label: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    println!("  {label}:");
    for n in names.iter().take(SHOWN) {
        println!("    {n}");
    }
    if names.len() > SHOWN {
        println!("    … and {} more", names.len() - SHOWN);
    }
}

fn print_report(r: &SyncReport) {
    let preview = r.mode == Mode::Preview;
    if preview {
        println!(
            "Autotask sync preview for org `{}`{} (nothing changed; run with --apply to perform it)",
            r.org,
            if r.first_sync {
                ": first sync, the apply creates every record listed unless excluded"
            } else {
                ""
            }
        );
    } else {
        println!(
            "Autotask sync applied for org `{}` (run {})",
            r.org, r.run_id
        );
    }
    let (c, m) = if preview {
        ("to create", "to match")
    } else {
        ("created", "matched")
    };
    for kind in KINDS {
        let Some(k) = r.kinds.get(kind) else { continue };
        println!(
            "{kind}: {} {c}, {} {m}, {} updated, {} deactivated, {} excluded, {} pending, {} skipped, {} unchanged",
            k.created,
            k.matched,
            k.updated,
            k.deactivated,
            k.excluded,
            k.pending,
            k.skipped,
            k.unchanged
        );
        if preview {
            print_names(m, &k.to_match);
            print_names(c, &k.to_create);
            print_names("excluded", &k.excluded_names);
            print_names("pending (auto-create off)", &k.pending_names);
            print_names("to deactivate", &k.deactivated_names);
        }
    }
    if !r.errors.is_empty() {
        println!("{} record(s) not imported:", r.errors.len());
        for e in r.errors.iter().take(SHOWN) {
            println!("  {}", e["error"].as_str().unwrap_or_default());
        }
        if r.errors.len() > SHOWN {
            println!("  … and {} more", r.errors.len() - SHOWN);
        }
    }
}
