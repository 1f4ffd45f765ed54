//! `weft org add|list|show|rm|tag|set-parent` and `weft org var set|unset|list`: the
//! organization tree (the MSP at the root, its clients below) and the variables orgs
//! inherit. Secret variables are sealed with the engine's key and never printed.

use std::collections::HashMap;
use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;
use weft_engine::executor::Engine;
use weft_service::orgs::{self, NewOrg, OrgView};
use weft_service::variables::{self, OrgVariable, REDACTED};
use weft_service::{ErrorKind, ServiceError};

use super::engine::EngineArgs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add an organization. The first one added without --parent is the MSP (the root);
    /// clients go below it with --parent.
    Add {
        /// Display name (unique, case-insensitively).
        name: String,
        /// The parent organization (id or name).
        #[arg(long)]
        parent: Option<String>,
        /// A tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// The id to use (default: a slug of the name).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Show the organization tree, with tags and mapped Autotask companies.
    List {
        /// Print JSON (parents first).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Show an organization: fields, parents, variables (own and inherited), integrations
    /// and mapping. Secret values are shown as ***.
    Show {
        /// Id or name.
        org: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Delete an organization with its variables, integrations and mapping (refused while
    /// it has child organizations or pending/running executions).
    Rm {
        /// Id or name.
        org: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Add or remove tags.
    Tag {
        /// Id or name.
        org: String,
        /// Tags to add (repeatable).
        #[arg(long, value_name = "TAG")]
        add: Vec<String>,
        /// Tags to remove (repeatable).
        #[arg(long, value_name = "TAG")]
        remove: Vec<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Move an organization below another one (or make it a root with --root).
    SetParent {
        /// Id or name.
        org: String,
        /// The new parent (id or name); not the org itself nor one below it.
        #[arg(required_unless_present = "root", conflicts_with = "root")]
        parent: Option<String>,
        /// Make it a root organization (no parent).
        #[arg(long)]
        root: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Organization variables (ORG.VARIABLES in templates): inherited down the tree,
    /// nearest wins.
    #[command(subcommand)]
    Var(VarCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum VarCommand {
    /// Set a variable. VALUE is JSON if it parses (5, true, ["a"], {"k": 1}), else text;
    /// `-` reads it from stdin. --secret seals it at rest; it is never printed.
    Set {
        /// Id or name.
        org: String,
        /// Variable name (letters, digits, `_`).
        key: String,
        /// The value (`-`: read from stdin).
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Seal the value and show it as ***.
        #[arg(long)]
        secret: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Remove an organization's own variable (an inherited one shows through again).
    Unset {
        /// Id or name.
        org: String,
        /// Variable name.
        key: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// List an organization's variables, own and inherited, with the org each comes from.
    List {
        /// Id or name.
        org: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

/// Prints a refused or failed use case and answers its exit code: 2 for a usage error, else 1.
pub(crate) fn service_failure(e: &ServiceError) -> ExitCode {
    match e.kind() {
        ErrorKind::Usage => usage(e),
        ErrorKind::Store | ErrorKind::Unavailable => {
            eprintln!("error: {e}: {:?}", std::error::Error::source(e));
            ExitCode::from(1)
        }
        _ => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::Add {
            name,
            parent,
            tags,
            id,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            add(&engine, name, parent, tags, id).await
        }
        Command::List { json, db } => {
            let engine = super::engine::open(&db).await?;
            list(&engine, json).await
        }
        Command::Show { org, json, db } => {
            let engine = super::engine::open(&db).await?;
            show(&engine, &org, json).await
        }
        Command::Rm { org, db } => {
            let engine = super::engine::open(&db).await?;
            let record = tri!(orgs::remove(engine.store().as_ref(), &org).await);
            println!("removed organization {} ({})", record.name, record.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tag {
            org,
            add,
            remove,
            db,
        } => {
            if add.is_empty() && remove.is_empty() {
                return Ok(usage("give --add TAG and/or --remove TAG"));
            }
            let engine = super::engine::open(&db).await?;
            let record = tri!(orgs::retag(engine.store().as_ref(), &org, add, &remove).await).org;
            println!(
                "{} ({}) tags: {}",
                record.name,
                record.id,
                if record.tags.is_empty() {
                    "(none)".to_string()
                } else {
                    record.tags.join(", ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SetParent {
            org,
            parent,
            root,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            let parent = parent.filter(|_| !root);
            let updated =
                tri!(orgs::set_parent(engine.store().as_ref(), &org, parent.as_deref()).await);
            let record = updated.org;
            match updated.parent {
                Some(p) => println!(
                    "{} ({}) is now below {} ({})",
                    record.name, record.id, p.name, p.id
                ),
                None => println!("{} ({}) is now a root organization", record.name, record.id),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Var(v) => var(v).await,
    }
}

async fn add(
    engine: &Engine,
    name: String,
    parent: Option<String>,
    tags: Vec<String>,
    id: Option<String>,
) -> miette::Result<ExitCode> {
    let new = NewOrg {
        name,
        id,
        parent,
        tags,
    };
    let created = match weft_service::orgs::create(engine.store().as_ref(), new).await {
        Ok(c) => c,
        Err(e) => return Ok(service_failure(&e)),
    };
    let record = &created.org;
    match (&created.parent, created.other_roots.as_slice()) {
        (Some(p), _) => println!(
            "added organization {} ({}) below {} ({})",
            record.name, record.id, p.name, p.id
        ),
        (None, []) => println!(
            "added organization {} ({}) as the root (the MSP); add clients with --parent {}",
            record.name, record.id, record.id
        ),
        (None, roots) => {
            println!(
                "added organization {} ({}) as a root",
                record.name, record.id
            );
            eprintln!(
                "warning: `{}` has no parent, so it is another root next to {}; a client belongs below the MSP (`weft org set-parent {} {}`)",
                record.id,
                roots
                    .iter()
                    .map(|r| format!("`{}`", r.id))
                    .collect::<Vec<_>>()
                    .join(", "),
                record.id,
                roots[0].id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(engine: &Engine, as_json: bool) -> miette::Result<ExitCode> {
    let orgs = tri!(orgs::list(engine.store().as_ref()).await);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&orgs).expect("serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if orgs.is_empty() {
        println!("no organizations (add the MSP with `weft org add NAME`)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut children: HashMap<Option<String>, Vec<&OrgView>> = HashMap::new();
    for o in &orgs {
        children.entry(o.parent_id.clone()).or_default().push(o);
    }
    fn walk(
        parent: Option<String>,
        depth: usize,
        children: &HashMap<Option<String>, Vec<&OrgView>>,
    ) {
        for o in children.get(&parent).into_iter().flatten() {
            let mut line = format!("{}{} ({})", "  ".repeat(depth), o.name, o.id);
            if !o.tags.is_empty() {
                line.push_str(&format!("  [{}]", o.tags.join(", ")));
            }
            if let Some(company) = &o.autotask_company {
                line.push_str(&format!("  autotask: company {}", company.id));
                if let Some(n) = &company.name {
                    line.push_str(&format!(" \"{n}\""));
                }
            }
            if !o.active {
                line.push_str("  (inactive)");
            }
            println!("{line}");
            walk(Some(o.id.clone()), depth + 1, children);
        }
    }
    walk(None, 0, &children);
    Ok(ExitCode::SUCCESS)
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn show(engine: &Engine, org: &str, as_json: bool) -> miette::Result<ExitCode> {
    let detail = tri!(orgs::detail(engine.store().as_ref(), engine.secrets().as_ref(), org).await);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&detail).expect("serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let o = &detail.org;
    println!("{} ({})", o.name, o.id);
    let ancestors: Vec<String> = detail
        .ancestors
        .iter()
        .map(|a| format!("{} ({})", a.name, a.id))
        .collect();
    println!(
        "  parents:   {}",
        if ancestors.is_empty() {
            "(none: a root organization)".to_string()
        } else {
            ancestors.join(" < ")
        }
    );
    println!(
        "  tags:      {}",
        if o.tags.is_empty() {
            "(none)".into()
        } else {
            o.tags.join(", ")
        }
    );
    println!("  active:    {}", if o.active { "yes" } else { "no" });
    match &o.autotask_company {
        Some(company) => println!(
            "  autotask:  company {}{}",
            company.id,
            company
                .name
                .as_ref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default()
        ),
        None => println!("  autotask:  (not mapped)"),
    }
    for (kind, m) in &detail.mapping {
        if kind != "autotask" {
            println!("  {kind}:  {}", m.external_id);
        }
    }
    if let Some(attrs) = o.attributes.as_object().filter(|a| !a.is_empty()) {
        println!("  attributes:");
        for (k, v) in attrs {
            println!("    {k}: {}", show_value(v));
        }
    }
    println!("  created:   {}", o.created_at);
    println!();
    if detail.variables.is_empty() {
        println!("Variables: (none)");
    } else {
        println!("Variables:");
        print_vars(&detail.variables, &o.id);
    }
    println!();
    if detail.integrations.is_empty() {
        println!(
            "Integrations: (none; add one with `weft integration add KIND --org {}`)",
            o.id
        );
    } else {
        println!("Integrations:");
        for i in &detail.integrations {
            println!("  {}", super::integration::describe(i, &o.id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_vars(vars: &[OrgVariable], org: &str) {
    let rows: Vec<(String, String, String)> = vars
        .iter()
        .map(|v| {
            let value = if v.secret {
                REDACTED.to_string()
            } else {
                v.value.to_string()
            };
            let source = if v.from_org == org {
                format!("{} (own)", v.from_org)
            } else {
                format!("{} (inherited)", v.from_org)
            };
            (v.key.clone(), value, source)
        })
        .collect();
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(3);
    let vw = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 60);
    println!("  {:<kw$}  {:<vw$}  FROM", "KEY", "VALUE");
    for (k, v, from) in rows {
        println!("  {k:<kw$}  {v:<vw$}  {from}");
    }
}

/// Reads a value from stdin (for `-`), without its trailing newline.
pub(crate) fn read_stdin(what: &str) -> Result<String, ExitCode> {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return Err(usage(format!("cannot read {what} from stdin: {e}")));
    }
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(text.to_string())
}

async fn var(cmd: VarCommand) -> miette::Result<ExitCode> {
    match cmd {
        VarCommand::Set {
            org,
            key,
            value,
            secret,
            db,
        } => {
            let value = if value == "-" {
                match read_stdin("the value") {
                    Ok(v) => v,
                    Err(code) => return Ok(code),
                }
            } else {
                value
            };
            let parsed: Value =
                serde_json::from_str(&value).unwrap_or_else(|_| Value::String(value.clone()));
            let engine = super::engine::open(&db).await?;
            let set = tri!(
                variables::set_variable(
                    engine.store().as_ref(),
                    engine.secrets().as_ref(),
                    &org,
                    &key,
                    &parsed,
                    secret,
                )
                .await
            );
            if set.secret {
                println!("set secret variable {key} on {} (value hidden)", set.org);
            } else {
                println!("set {key} = {} on {}", set.value, set.org);
            }
            Ok(ExitCode::SUCCESS)
        }
        VarCommand::Unset { org, key, db } => {
            let engine = super::engine::open(&db).await?;
            let record = tri!(variables::unset_variable(engine.store().as_ref(), &org, &key).await);
            println!("removed {key} from {}", record.id);
            Ok(ExitCode::SUCCESS)
        }
        VarCommand::List { org, json, db } => {
            let engine = super::engine::open(&db).await?;
            let (record, vars) = tri!(variables::list(engine.store().as_ref(), &org).await);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&vars).expect("serializes")
                );
            } else if vars.is_empty() {
                println!("no variables for {} or its parents", record.id);
            } else {
                print_vars(&vars, &record.id);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
