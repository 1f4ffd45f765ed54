//! `weft schema`

use std::process::ExitCode;

pub fn run() -> miette::Result<ExitCode> {
    let registry = weft_actions::registry();
    let schema = weft_engine::schema::workflow_schema(registry.names());
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("schema serializes")
    );
    Ok(ExitCode::SUCCESS)
}
