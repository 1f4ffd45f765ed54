//! `weft form list|show|link|preview|links|submissions`: the deployed forms (deploy them with
//! `weft deploy FILE`), each org's link, the submissions. Every rule is `weft_service::forms`'.

use std::process::ExitCode;

use weft_service::forms;

use super::engine::EngineArgs;

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
    /// URL stops working at once, and so do the signed links made before), turn it off or
    /// on, give it an expiry. With `--prefill` or `--single-use`: a signed link instead, as
    /// `form_link(…)` makes in templates.
    Link {
        /// The form.
        form: String,
        /// The org whose people fill it in.
        #[arg(long)]
        org: String,
        /// Issue a new URL; the old one stops working at once.
        #[arg(long, conflicts_with_all = ["prefill", "single_use"])]
        rotate: bool,
        /// Turn the link off (it answers "not found").
        #[arg(long, conflicts_with_all = ["enable", "prefill", "single_use"])]
        disable: bool,
        /// Turn the link back on.
        #[arg(long, conflicts_with_all = ["prefill", "single_use"])]
        enable: bool,
        /// `never`, a date (the link works through that day, UTC), a time, or a duration
        /// from now (`30d`). A signed link must expire (30 days when not given).
        #[arg(long)]
        expires: Option<String>,
        /// A signed link with this value fixed: `ticket_id=4711` (JSON values are read as
        /// JSON, anything else as text). Repeatable.
        #[arg(long, value_name = "FIELD=VALUE")]
        prefill: Vec<String>,
        /// A signed link accepted once.
        #[arg(long)]
        single_use: bool,
        /// Print JSON (as `GET /api/forms/{name}/links/{org}` answers).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// A preview link: the form as an org's people see it (dynamic options from that org),
    /// for an hour; submissions are checked and go nowhere.
    Preview {
        /// The form.
        form: String,
        /// The org whose context fills the dynamic options.
        #[arg(long)]
        org: String,
        /// Print JSON.
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

/// `FIELD=VALUE` pairs as a prefill: JSON values as JSON, anything else as text.
fn parse_prefill(pairs: &[String]) -> miette::Result<serde_json::Map<String, serde_json::Value>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or_else(|| {
                miette::miette!("--prefill {p:?}: write FIELD=VALUE, e.g. --prefill ticket_id=4711")
            })?;
            let value = serde_json::from_str(v)
                .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
            Ok((k.trim().to_string(), value))
        })
        .collect()
}

fn print_signed(made: &forms::SignedLinkView) {
    println!("{}", made.url);
    println!(
        "  {} link to form {} for {}, until {}",
        made.kind.replace('_', "-"),
        made.form,
        made.org,
        made.expires_at
    );
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

/// Prints `value` as JSON, or for people with `text`.
fn answer<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce(&T)) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serializes")
        );
    } else {
        text(value);
    }
    ExitCode::SUCCESS
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::List { json, db } => {
            let engine = super::engine::open(&db).await?;
            let listed = tri!(forms::list(engine.store().as_ref()).await);
            Ok(answer(json, &listed, |listed| print_forms(listed)))
        }
        Command::Show { name, json, db } => {
            let engine = super::engine::open(&db).await?;
            let view = tri!(forms::show(engine.store().as_ref(), &name).await);
            Ok(answer(json, &view, print_form))
        }
        Command::Link {
            form,
            org,
            rotate,
            disable,
            enable,
            expires,
            prefill,
            single_use,
            json,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            if single_use || !prefill.is_empty() {
                let new = forms::NewSignedLink {
                    prefill: parse_prefill(&prefill)?,
                    single_use,
                    expires,
                };
                let made = tri!(forms::signed_link(&engine, &form, &org, &new, false).await);
                return Ok(answer(json, &made, print_signed));
            }
            if rotate {
                tri!(forms::rotate(&engine, &form, &org).await);
            }
            let view = if disable || enable || expires.is_some() {
                let change = forms::LinkChange {
                    enabled: (disable || enable).then_some(enable),
                    expires,
                };
                tri!(forms::change(&engine, &form, &org, &change).await)
            } else {
                tri!(forms::link(&engine, &form, &org).await)
            };
            Ok(answer(json, &view, print_link))
        }
        Command::Preview {
            form,
            org,
            json,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            let none = forms::NewSignedLink::default();
            let made = tri!(forms::signed_link(&engine, &form, &org, &none, true).await);
            Ok(answer(json, &made, print_signed))
        }
        Command::Links {
            form,
            org,
            json,
            db,
        } => {
            let engine = super::engine::open(&db).await?;
            let listed = tri!(forms::links(&engine, form.as_deref(), org.as_deref()).await);
            Ok(answer(json, &listed, |listed| {
                if listed.is_empty() {
                    println!("no links issued (weft form link FORM --org ORG)");
                }
                listed.iter().for_each(print_link);
            }))
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
            let listed = tri!(
                forms::submissions(store.as_ref(), form.as_deref(), org.as_deref(), limit).await
            );
            Ok(answer(json, &listed, |listed| print_submissions(listed)))
        }
    }
}

fn print_forms(listed: &[forms::FormSummary]) {
    if listed.is_empty() {
        println!("no forms deployed (weft deploy forms/FILE.yaml)");
        return;
    }
    println!("{:<28} {:>7} {:>6}  TITLE", "FORM", "VERSION", "FIELDS");
    for f in listed {
        println!(
            "{:<28} {:>7} {:>6}  {}",
            f.name, f.version, f.fields, f.title
        );
    }
}

fn print_submissions(listed: &[forms::SubmissionView]) {
    if listed.is_empty() {
        println!("no submissions");
    }
    for s in listed {
        let executions = if s.execution_ids.is_empty() {
            "none".to_string()
        } else {
            s.execution_ids.join(", ")
        };
        println!(
            "{}  {} for {}  {}  executions: {executions}",
            s.submitted_at, s.form, s.org, s.values
        );
    }
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
