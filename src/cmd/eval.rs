//! `weft eval TEMPLATE [--context FILE|-]`

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use miette::{IntoDiagnostic, NamedSource, SourceSpan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The template, e.g. '{{ CTX.tickets | map(attribute="id") | list }}'.
    template: String,
    /// JSON or YAML file whose top-level keys are the names in scope (`-` reads stdin).
    #[arg(long, short)]
    context: Option<PathBuf>,
    /// Pretty-print the JSON result.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(template::error))]
struct TemplateFailure {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    at: Option<SourceSpan>,
}

fn read_context(path: &PathBuf) -> miette::Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).into_diagnostic()?;
        s
    } else {
        std::fs::read_to_string(path)
            .into_diagnostic()
            .map_err(|e| e.wrap_err(format!("cannot read context file {}", path.display())))?
    };
    let value: serde_json::Value = serde_yaml::from_str(&text)
        .into_diagnostic()
        .map_err(|e| e.wrap_err(format!("{} is not JSON or YAML", path.display())))?;
    if !(value.is_object() || value.is_null()) {
        miette::bail!(
            "the context must be a mapping of names to values (e.g. {{\"CTX\": {{...}}}})"
        );
    }
    Ok(value)
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let ctx = match &args.context {
        Some(p) => read_context(p)?,
        None => serde_json::json!({}),
    };
    match weft_engine::template::eval_str(&args.template, &ctx) {
        Ok(v) => {
            let out = if args.pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            };
            println!("{}", out.expect("JSON values serialize"));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let failure = TemplateFailure {
                message: e.message.clone(),
                src: NamedSource::new("template", args.template.clone()),
                at: e
                    .range
                    .map(|r| SourceSpan::new(r.start.into(), r.len().max(1))),
            };
            eprint!("{}", super::render_report(&failure));
            Ok(ExitCode::from(1))
        }
    }
}
