//! `weft actions list|show`

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List every registered action.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Describe an action's parameters (types, required, defaults, descriptions).
    Show {
        /// The action's name, e.g. core.echo.
        name: String,
        /// Print the parameters' JSON Schema.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    let registry = weft_actions::registry();
    match cmd {
        Command::List { json } => {
            if json {
                let list: Vec<_> = registry
                    .specs()
                    .map(|s| serde_json::json!({"name": s.name, "description": s.description}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).expect("serializes")
                );
            } else {
                let width = registry.names().map(str::len).max().unwrap_or(0);
                for s in registry.specs() {
                    println!("{:width$}  {}", s.name, s.description);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { name, json } => {
            let Some(spec) = registry.get(&name) else {
                let hint = weft_engine::suggest::did_you_mean(&name, registry.names())
                    .unwrap_or_else(|| "`weft actions list` shows every action".into());
                eprintln!("error: unknown action `{name}`; {hint}");
                return Ok(ExitCode::from(2));
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&spec.params).expect("serializes")
                );
            } else {
                print!("{}", describe(spec));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Human-readable parameter documentation from the action's JSON Schema.
fn describe(spec: &weft_engine::ActionSpec) -> String {
    use std::fmt::Write;
    let mut out = format!("{}\n  {}\n\nParameters:\n", spec.name, spec.description);
    let required = spec.required_params();
    let props = spec.params.get("properties").and_then(|p| p.as_object());
    match props {
        Some(props) if !props.is_empty() => {
            for (name, prop) in props {
                let ty = type_of(prop, &spec.params);
                let req = if required.contains(&name.as_str()) {
                    "required"
                } else {
                    "optional"
                };
                let _ = write!(out, "  {name} ({ty}, {req}");
                if let Some(d) = prop.get("default") {
                    let _ = write!(out, ", default {d}");
                }
                out.push_str(")\n");
                if let Some(desc) = prop.get("description").and_then(|d| d.as_str()) {
                    for line in desc.lines() {
                        let _ = writeln!(out, "      {line}");
                    }
                }
            }
        }
        _ if spec.allows_extra_params() => out.push_str("  any parameters\n"),
        _ => out.push_str("  none\n"),
    }
    out
}

pub(crate) fn type_of(prop: &serde_json::Value, root: &serde_json::Value) -> String {
    if let Some(r) = prop.get("$ref").and_then(|r| r.as_str()) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let target = root.pointer(r.trim_start_matches('#'));
        if let Some(values) = target
            .and_then(|t| t.get("enum"))
            .and_then(|e| e.as_array())
        {
            let vals: Vec<String> = values
                .iter()
                .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                .collect();
            return format!("one of {}", vals.join("|"));
        }
        if let Some(values) = target
            .and_then(|t| t.get("oneOf"))
            .and_then(|e| e.as_array())
        {
            let vals: Vec<String> = values
                .iter()
                .filter_map(|v| v.get("const").and_then(|c| c.as_str()).map(str::to_string))
                .collect();
            if !vals.is_empty() {
                return format!("one of {}", vals.join("|"));
            }
        }
        return name.to_string();
    }
    match prop.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join("|"),
        _ if prop.get("anyOf").is_some() => {
            let parts: Vec<String> = prop["anyOf"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p.get("type").and_then(|t| t.as_str()) != Some("null"))
                .map(|p| type_of(p, root))
                .collect();
            parts.join("|")
        }
        _ => "any".into(),
    }
}
