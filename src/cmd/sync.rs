//! `weft sync autotask …` and `weft sync runs`: the PSA directory sync.

use std::process::ExitCode;

use miette::IntoDiagnostic;
use std::sync::Arc;

use serde_json::{Value, json};
use weft_engine::executor::Engine;
use weft_engine::store::Store;
use weft_service::sync::{self, KINDS, Mode, Options, SettingsChange, SyncReport};

use super::engine::EngineArgs;
use super::org::{service_failure, usage};

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
        /// User names or emails of other API-only resources that are not people, separated
        /// by commas, or `none` (the integration's own API user is always left out).
        #[arg(long, value_name = "NAMES")]
        skip_resources: Option<String>,
        /// `licenseType` values whose resources are not people (e.g. the API-user license),
        /// separated by commas, or `none`.
        #[arg(long, value_name = "TYPES")]
        skip_license_types: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
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
            .map(|r| format!("excluded {} {}", r.kind, r.id)),
        Action::Include { kind, id } => {
            let k = kind_name(kind);
            sync::include(store, k, &id).await.map(|lifted| {
                if lifted {
                    format!(
                        "{k} {id} is no longer excluded: the next sync matches or creates it (or lists it as pending)"
                    )
                } else {
                    format!("{k} {id} was not excluded")
                }
            })
        }
        Action::Create { kind, id } => {
            let k = match kind {
                CreateKind::Company => "company",
                CreateKind::User => "user",
                CreateKind::Configuration => "configuration",
            };
            sync::approve(store, k, &id).await.map(|_| {
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
            skip_resources,
            skip_license_types,
            json,
        } => {
            let flags = SettingsFlags {
                auto_create_clients,
                auto_create_users,
                auto_create_configurations,
                company_types,
                schedule,
                timezone,
                skip_resources,
                skip_license_types,
            };
            return settings(store, flags, json).await;
        }
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(service_failure(&e)),
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
        org: args.org.clone(),
        integration: args.integration.clone(),
    };
    let spin = super::progress::Progress::spinner(
        super::progress::wanted(args.json, false),
        if args.apply {
            "syncing with Autotask"
        } else {
            "reading Autotask"
        },
    );
    let read = Arc::new(RecordsRead {
        kinds: Default::default(),
        say: spin.printer(),
    });
    let before = autotask_requests();
    let shown = read.clone();
    spin.follow(move || {
        format!(
            "{}{} request(s)",
            shown.line(),
            autotask_requests().saturating_sub(before)
        )
    });
    let ran = sync::run_watched(engine, mode, &options, Some(read.as_ref())).await;
    spin.finish();
    match ran {
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
        Err(e) => Ok(service_failure(&e)),
    }
}

/// Records read so far, per Autotask entity: a line per kind as its reading ends, and the
/// spinner's running total.
struct RecordsRead {
    kinds: std::sync::Mutex<Vec<(String, usize)>>,
    say: super::progress::Printer,
}

impl RecordsRead {
    /// `Companies 120 · Resources 15 · ` (each kind as its reading ends).
    fn line(&self) -> String {
        self.kinds
            .lock()
            .unwrap()
            .iter()
            .map(|(k, n)| format!("{k} {n} · "))
            .collect()
    }
}

impl sync::Progress for RecordsRead {
    fn read(&self, kind: &str, records: usize) {
        self.say.println(format!("read {records} {kind}"));
        self.kinds.lock().unwrap().push((kind.to_string(), records));
    }
}

/// Autotask requests this process has sent.
fn autotask_requests() -> u64 {
    weft_actions::autotask::limits::usage()
        .iter()
        .map(|u| u.sent)
        .sum()
}

/// `weft sync autotask excluded`: the excluded companies and resources.
async fn list_excluded(store: &dyn Store, json: bool) -> miette::Result<ExitCode> {
    let rows = match sync::excluded(store).await {
        Ok(rows) => rows,
        Err(e) => return Ok(service_failure(&e)),
    };
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
                r.kind,
                r.external_id,
                r.name.as_deref().unwrap_or("")
            );
        }
        println!(
            "(`weft sync autotask create KIND ID` creates one at the next apply, `match` links it)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The flags of `weft sync autotask settings` (`None`: unchanged).
struct SettingsFlags {
    auto_create_clients: Option<OnOff>,
    auto_create_users: Option<OnOff>,
    auto_create_configurations: Option<OnOff>,
    company_types: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    skip_resources: Option<String>,
    skip_license_types: Option<String>,
}

/// `weft sync autotask settings`: applies the changes asked for (the service validates and
/// saves them) and prints the settings.
async fn settings(store: &dyn Store, flags: SettingsFlags, json: bool) -> miette::Result<ExitCode> {
    let change = match settings_change(flags) {
        Ok(c) => c,
        Err(e) => return Ok(usage(e)),
    };
    match sync::update_settings(store, change).await {
        Ok(s) => {
            print_settings(&s, json);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(service_failure(&e)),
    }
}

/// The flags as a [`SettingsChange`]: `on`/`off`, `--company-types 1,3|all`, `--schedule
/// CRON|off`; `Err` explains a malformed list of company types.
fn settings_change(f: SettingsFlags) -> Result<SettingsChange, String> {
    let on = |v: Option<OnOff>| v.map(|v| v == OnOff::On);
    let company_types = match f.company_types {
        None => None,
        Some(t) if t.trim().eq_ignore_ascii_case("all") || t.trim().is_empty() => Some(Vec::new()),
        Some(types) => Some(
            types
                .split(',')
                .map(|t| t.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    format!(
                        "--company-types takes numbers separated by commas (1 Customer, 2 Lead, 3 Prospect …) or `all`, not `{types}`"
                    )
                })?,
        ),
    };
    let schedule = f
        .schedule
        .map(|expr| (!expr.trim().eq_ignore_ascii_case("off")).then_some(expr));
    // `none` (or nothing) clears a list.
    let list = |v: Option<String>| {
        v.map(|v| {
            if v.trim().eq_ignore_ascii_case("none") {
                Vec::new()
            } else {
                v.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }
        })
    };
    let skip_license_types = match list(f.skip_license_types) {
        None => None,
        Some(types) => Some(
            types
                .iter()
                .map(|t| t.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    format!(
                        "--skip-license-types takes licenseType numbers separated by commas, or `none`, not `{}`",
                        types.join(",")
                    )
                })?,
        ),
    };
    Ok(SettingsChange {
        auto_create_clients: on(f.auto_create_clients),
        auto_create_users: on(f.auto_create_users),
        auto_create_configurations: on(f.auto_create_configurations),
        company_types,
        schedule,
        timezone: f.timezone,
        skip_resource_user_names: list(f.skip_resources),
        skip_license_types,
    })
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
        let or_none = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        println!(
            "skipped resources:          {} (and the integration's own API user)",
            or_none(s.skip_resource_user_names.clone())
        );
        println!(
            "skipped license types:      {}",
            or_none(s.skip_license_types.iter().map(i64::to_string).collect())
        );
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
