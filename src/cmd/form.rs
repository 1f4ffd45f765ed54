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
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(async {
        match cmd {
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
