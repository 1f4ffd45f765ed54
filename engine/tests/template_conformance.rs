//! Jinja conformance: every case of tests/jinja/cases.yaml, rendered by weft, must give the
//! result Python Jinja2 gave (tests/jinja/expected.json, made by
//! tests/jinja/generate_cases.py), or — for the cases listed under `differences` in
//! cases.yaml — the result recorded there. All mismatches are reported at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as J;
use weft_engine::template::eval_str;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/jinja")
}

fn is_error_marker(v: &J) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.get("error") == Some(&J::Bool(true)))
}

/// What weft produced, in the corpus's notation: the value, or `{"error": true}`.
fn run(template: &str, ctx: &J) -> (J, Option<String>) {
    match eval_str(template, ctx) {
        Ok(v) => (v, None),
        Err(e) => (serde_json::json!({"error": true}), Some(e.message)),
    }
}

#[derive(serde::Deserialize)]
struct Difference {
    weft: J,
    reason: String,
}

#[test]
fn weft_matches_jinja2_on_the_corpus() {
    let dir = corpus_dir();
    let expected: J = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("read expected.json"),
    )
    .expect("expected.json is JSON");
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("cases.yaml")).expect("read cases.yaml"),
    )
    .expect("cases.yaml is YAML");
    let differences: BTreeMap<String, Difference> = match spec.get("differences") {
        Some(d) if !d.is_null() => serde_yaml::from_value(d.clone()).expect("differences"),
        _ => BTreeMap::new(),
    };
    let yaml_ids: Vec<String> = spec["cases"]
        .as_sequence()
        .expect("cases")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();

    let contexts = expected["contexts"].as_object().expect("contexts");
    let cases = expected["cases"].as_array().expect("cases");
    let json_ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        yaml_ids, json_ids,
        "expected.json is stale: run python3 tests/jinja/generate_cases.py"
    );
    assert!(cases.len() >= 120, "the corpus has {} cases", cases.len());

    let mut failures = Vec::new();
    let mut used = 0;
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let template = case["template"].as_str().unwrap();
        let ctx = match &case["context"] {
            J::String(name) => contexts
                .get(name)
                .unwrap_or_else(|| panic!("{id}: unknown context {name}"))
                .clone(),
            inline => inline.clone(),
        };
        let jinja2 = &case["expected"];
        let (got, message) = run(template, &ctx);
        let (want, source) = match differences.get(id) {
            Some(d) => {
                used += 1;
                if d.reason.trim().is_empty() {
                    failures.push(format!("{id}: the difference has no reason"));
                }
                if d.weft == *jinja2 {
                    failures.push(format!(
                        "{id}: listed under differences, but Jinja2 gives the same result {jinja2}; remove the entry"
                    ));
                }
                (&d.weft, "differences")
            }
            None => (jinja2, "Jinja2"),
        };
        let ok = if is_error_marker(want) {
            message.is_some()
        } else {
            got == *want
        };
        if !ok {
            failures.push(format!(
                "{id}: {template:?}\n    want ({source}): {want}\n    got: {}{}",
                got,
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            ));
        }
    }
    assert_eq!(
        used,
        differences.len(),
        "every entry under differences must name a case"
    );
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases differ:\n\n{}\n",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
