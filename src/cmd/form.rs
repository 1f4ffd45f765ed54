//! `weft form list|show`: the deployed forms (deploy them with `weft deploy FILE`).

use std::process::ExitCode;

use weft_service::forms;

use super::engine::EngineArgs;
use super::org::service_failure;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every deployed form: name, version, title, how many fields.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// One deployed form and its fields (type, required, options, condition).
    Show {
        /// The form's name (`form:` in its file).
        name: String,
        /// Print JSON (as `GET /api/forms/{name}` answers).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// An org's standing link to a form (issued on first use): show it, rotate it (the old
    /// URL stops working at once), turn it off or on, give it an expiry.
    Link {
        /// The form.
        form: String,
        /// The org whose people fill it in.
        #[arg(long)]
        org: String,
        /// Issue a new URL; the old one stops working at once.
        #[arg(long)]
        rotate: bool,
        /// Turn the link off (it answers "not found").
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Turn the link back on.
        #[arg(long)]
        enable: bool,
        /// `never`, a date (the link works through that day, UTC), a time, or a duration
        /// from now (`30d`).
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON (as `GET /api/forms/{name}/links/{org}` answers).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Accepted submissions, newest first: values (secrets as ***), org, executions started.
    Submissions {
        /// Only this form's.
        #[arg(long)]
        form: Option<String>,
        /// Only this org's.
        #[arg(long)]
        org: Option<String>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON (as `GET /api/form-submissions` answers).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// The links issued, of one form and/or one org.
    Links {
        /// Only this form's.
        #[arg(long)]
        form: Option<String>,
        /// Only this org's.
        #[arg(long)]
        org: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(async {
        match cmd {
            Command::Link {
                form,
                org,
                rotate,
                disable,
                enable,
                expires,
                json,
                db,
            } => {
                let engine = super::engine::open(&db).await?;
                let base = weft_service::triggers::public_url();
                let mut view = None;
                if rotate {
                    view = match forms::rotate(&engine, &form, &org, &base).await {
                        Ok(v) => Some(v),
                        Err(e) => return Ok(service_failure(&e)),
                    };
                }
                if disable || enable || expires.is_some() {
                    let change = forms::LinkChange {
                        enabled: (disable || enable).then_some(enable),
                        expires,
                    };
                    view = match forms::change(&engine, &form, &org, &change, &base).await {
                        Ok(v) => Some(v),
                        Err(e) => return Ok(service_failure(&e)),
                    };
                }
                let view = match view {
                    Some(v) => v,
                    None => match forms::link(&engine, &form, &org, &base).await {
                        Ok(v) => v,
                        Err(e) => return Ok(service_failure(&e)),
                    },
                };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&view).expect("serializes")
                    );
                } else {
                    print_link(&view);
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Submissions {
                form,
                org,
                limit,
                json,
                db,
            } => {
                let engine = super::engine::open(&db).await?;
                let store = engine.store();
                let listed = match forms::submissions(
                    store.as_ref(),
                    form.as_deref(),
                    org.as_deref(),
                    limit,
                )
                .await
                {
                    Ok(l) => l,
                    Err(e) => return Ok(service_failure(&e)),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&listed).expect("serializes")
                    );
                } else if listed.is_empty() {
                    println!("no submissions");
                } else {
                    for s in &listed {
                        println!(
                            "{}  {} for {}  {}  executions: {}",
                            s.submitted_at,
                            s.form,
                            s.org,
                            s.values,
                            if s.execution_ids.is_empty() {
                                "none".to_string()
                            } else {
                                s.execution_ids.join(", ")
                            }
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Links {
                form,
                org,
                json,
                db,
            } => {
                let engine = super::engine::open(&db).await?;
                let base = weft_service::triggers::public_url();
                let listed =
                    match forms::links(&engine, form.as_deref(), org.as_deref(), &base).await {
                        Ok(l) => l,
                        Err(e) => return Ok(service_failure(&e)),
                    };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&listed).expect("serializes")
                    );
                } else if listed.is_empty() {
                    println!("no links issued (weft form link FORM --org ORG)");
                } else {
                    for l in &listed {
                        print_link(l);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::List { json, db } => {
                let engine = super::engine::open(&db).await?;
                let listed = match forms::list(engine.store().as_ref()).await {
                    Ok(l) => l,
                    Err(e) => return Ok(service_failure(&e)),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&listed).expect("serializes")
                    );
                } else if listed.is_empty() {
                    println!("no forms deployed (weft deploy forms/FILE.yaml)");
                } else {
                    println!("{:<28} {:>7} {:>6}  TITLE", "FORM", "VERSION", "FIELDS");
                    for f in &listed {
                        println!(
                            "{:<28} {:>7} {:>6}  {}",
                            f.name, f.version, f.fields, f.title
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Show { name, json, db } => {
                let engine = super::engine::open(&db).await?;
                let view = match forms::show(engine.store().as_ref(), &name).await {
                    Ok(v) => v,
                    Err(e) => return Ok(service_failure(&e)),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&view).expect("serializes")
                    );
                } else {
                    print_form(&view);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn print_form(view: &forms::FormView) {
    let s = &view.summary;
    println!("{} v{}: {}", s.name, s.version, s.title);
    if let Some(d) = &view.description {
        println!("{d}");
    }
    let mut section: Option<&str> = None;
    for f in &view.field_list {
        if f.section.as_deref() != section {
            section = f.section.as_deref();
            println!("\n{}", section.unwrap_or_default());
        }
        let mut notes = Vec::new();
        if f.required {
            notes.push("required".to_string());
        }
        if f.secret {
            notes.push("secret".to_string());
        }
        if let Some(o) = &f.options {
            notes.push(format!("options: {}", o.join(", ")));
        }
        if let Some(w) = &f.options_from {
            notes.push(format!("options from workflow {w}"));
        }
        if let Some(c) = &f.show_when {
            notes.push(format!("shown when {c}"));
        }
        let kind = serde_json::to_value(f.kind).ok();
        let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or_default();
        println!(
            "  {:<24} {:<12} {}  {}",
            f.name,
            kind,
            f.label,
            notes.join("; ")
        );
    }
}

fn print_link(l: &forms::FormLinkView) {
    let expiry = l
        .expires_at
        .as_deref()
        .map(|e| format!(", expires {e}"))
        .unwrap_or_default();
    println!("{} for {}: {} ({}{expiry})", l.form, l.org, l.url, l.state);
}
