//! `weft schema [workflow|form]`

use std::process::ExitCode;

/// Which file's schema.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Kind {
    /// Workflow files.
    #[default]
    Workflow,
    /// Form files (`form: NAME`, `fields: [...]`).
    Form,
}

pub fn run(kind: Kind) -> miette::Result<ExitCode> {
    let schema = match kind {
        Kind::Workflow => weft_engine::schema::workflow_schema(weft_actions::registry().names()),
        Kind::Form => weft_engine::schema::form_schema(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("schema serializes")
    );
    Ok(ExitCode::SUCCESS)
}
