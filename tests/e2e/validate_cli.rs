//! End-to-end tests of `weft validate`, `weft schema`, `weft eval` and `weft actions`, run
//! against the real binary.
//!
//! - `workflows/` holds the example workflows: all must be valid, warning-free, and valid
//!   against the JSON Schema `weft schema` prints.
//! - `tests/corpus/invalid/` holds one-mistake workflows and `tests/corpus/warnings/`
//!   suspicious-but-valid ones; each file's header says which diagnostic it must produce and
//!   where (see tests/corpus/README.md).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `weft` run from the repository root, so file names in its output are relative.
fn weft() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.current_dir(root());
    cmd
}

fn run(args: &[&str]) -> Output {
    weft()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Files with a `.yaml`/`.yml` extension directly in `dir` (relative to the repo root), sorted;
/// not the workflow test files beside them (`*.test.yaml`, run by `weft test`).
fn yaml_files(dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.is_file()
                && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                && !weft_engine::is_test_file_name(&p.to_string_lossy())
        })
        .map(|p| {
            format!(
                "{dir}/{}",
                p.file_name().expect("file name").to_string_lossy()
            )
        })
        .collect();
    out.sort();
    out
}

/// `weft validate --format json FILES...`: exit code and diagnostics, or why the output is
/// not a list of diagnostics (a crash, say).
fn try_validate_json(files: &[&str]) -> Result<(Option<i32>, Vec<Value>), String> {
    let mut args = vec!["validate", "--format", "json"];
    args.extend_from_slice(files);
    let out = run(&args);
    let code = out.status.code();
    let bad = |why: String| {
        let err = stderr(&out);
        let err: String = err.lines().take(12).collect::<Vec<_>>().join("\n        ");
        format!("weft validate exited with {code:?} and {why}\n        stderr: {err}")
    };
    let json: Value =
        serde_json::from_str(&stdout(&out)).map_err(|e| bad(format!("printed no JSON ({e})")))?;
    let diags = json
        .as_array()
        .ok_or_else(|| bad(format!("printed JSON that is not a list: {json}")))?
        .clone();
    for d in &diags {
        for key in [
            "file", "line", "column", "severity", "code", "message", "help",
        ] {
            if d.get(key).is_none() {
                return Err(bad(format!("printed a diagnostic without `{key}`: {d}")));
            }
        }
    }
    Ok((code, diags))
}

/// [`try_validate_json`], failing the test on a crash.
fn validate_json(files: &[&str]) -> (Option<i32>, Vec<Value>) {
    try_validate_json(files).unwrap_or_else(|e| panic!("{files:?}: {e}"))
}

fn show(d: &Value) -> String {
    format!(
        "{} {} {}:{} {}",
        d["severity"].as_str().unwrap_or("?"),
        d["code"].as_str().unwrap_or("?"),
        d["line"],
        d["column"],
        d["message"].as_str().unwrap_or("")
    )
}

fn show_all(diags: &[Value]) -> String {
    if diags.is_empty() {
        return "      (no diagnostics)".into();
    }
    diags
        .iter()
        .map(|d| format!("      {}", show(d)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_error(d: &Value) -> bool {
    d["severity"] == "error"
}

// ---------------------------------------------------------------------------------------------
// Corpus headers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug)]
struct Expect {
    severity: Severity,
    code: String,
    line: u64,
    column: u64,
}

#[derive(Debug, Default)]
struct Header {
    expects: Vec<Expect>,
    message_contains: Vec<String>,
    help_contains: Vec<String>,
    diagnostics: Option<usize>,
}

/// Reads the leading comment lines of a corpus file.
fn header(path: &str) -> Result<Header, String> {
    let text = std::fs::read_to_string(root().join(path)).map_err(|e| e.to_string())?;
    let mut h = Header::default();
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim();
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            k @ ("expect" | "expect-warning") => {
                let severity = if k == "expect" {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                let (code, pos) = value
                    .split_once(' ')
                    .ok_or_else(|| format!("bad `# {k}:` line: {line}"))?;
                let (l, c) = pos
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| format!("bad position in: {line}"))?;
                h.expects.push(Expect {
                    severity,
                    code: code.to_string(),
                    line: l.parse().map_err(|_| format!("bad line in: {line}"))?,
                    column: c.parse().map_err(|_| format!("bad column in: {line}"))?,
                });
            }
            "message-contains" => h.message_contains.push(value.to_string()),
            "help-contains" => h.help_contains.push(value.to_string()),
            "diagnostics" => {
                h.diagnostics = Some(value.parse().map_err(|_| format!("bad count: {line}"))?)
            }
            _ => {}
        }
    }
    if h.expects.is_empty() {
        return Err("no `# expect:` / `# expect-warning:` header on the first line".into());
    }
    Ok(h)
}

/// Checks one corpus file; returns the problems found (empty when it behaves as its header says).
fn check_corpus_file(path: &str, severity: Severity) -> Vec<String> {
    let h = match header(path) {
        Ok(h) => h,
        Err(e) => return vec![format!("{path}: {e}")],
    };
    let mut problems = Vec::new();
    if h.expects.len() != 1 {
        problems.push(format!(
            "{path}: a corpus file expects exactly one diagnostic, the header lists {}",
            h.expects.len()
        ));
    }
    let want = &h.expects[0];
    if want.severity != severity {
        problems.push(format!(
            "{path}: header says `{}` but the file is in the {} set",
            if want.severity == Severity::Error {
                "# expect:"
            } else {
                "# expect-warning:"
            },
            severity.as_str()
        ));
    }
    let (code, diags) = match try_validate_json(&[path]) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!(
                "{path}: {e}\n    expected {} {} {}:{}",
                want.severity.as_str(),
                want.code,
                want.line,
                want.column
            ));
            return problems;
        }
    };
    let expected_exit = if severity == Severity::Error { 1 } else { 0 };
    let mut reasons: Vec<String> = Vec::new();
    if code != Some(expected_exit) {
        reasons.push(format!("exit code {code:?}, expected {expected_exit}"));
    }
    if severity == Severity::Warning && diags.iter().any(is_error) {
        reasons.push("the warnings set must produce no errors".into());
    }
    let hit = diags.iter().find(|d| {
        d["code"] == want.code.as_str()
            && d["line"] == want.line
            && d["column"] == want.column
            && d["severity"] == want.severity.as_str()
    });
    match hit {
        None => {
            let same_code: Vec<String> = diags
                .iter()
                .filter(|d| d["code"] == want.code.as_str())
                .map(|d| format!("{}:{}", d["line"], d["column"]))
                .collect();
            if same_code.is_empty() {
                reasons.push(format!("no `{}` diagnostic", want.code));
            } else {
                reasons.push(format!(
                    "`{}` reported at {} instead of {}:{}",
                    want.code,
                    same_code.join(", "),
                    want.line,
                    want.column
                ));
            }
        }
        Some(d) => {
            let message = d["message"].as_str().unwrap_or_default();
            for text in &h.message_contains {
                if !message.contains(text.as_str()) {
                    reasons.push(format!("message `{message}` does not contain `{text}`"));
                }
            }
            let help = d["help"].as_str().unwrap_or_default();
            for text in &h.help_contains {
                if !help.contains(text.as_str()) {
                    reasons.push(format!("help `{help}` does not contain `{text}`"));
                }
            }
        }
    }
    if let Some(n) = h.diagnostics
        && diags.len() != n
    {
        reasons.push(format!(
            "expected exactly {n} diagnostic(s), got {}",
            diags.len()
        ));
    }
    if !reasons.is_empty() {
        problems.push(format!(
            "{path}: {}\n    expected {} {} {}:{}\n    got:\n{}",
            reasons.join("; "),
            want.severity.as_str(),
            want.code,
            want.line,
            want.column,
            show_all(&diags)
        ));
    }
    problems
}

fn check_corpus_dir(dir: &str, severity: Severity, min_files: usize) {
    let files = yaml_files(dir);
    assert!(
        files.len() >= min_files,
        "{dir} holds {} files, expected at least {min_files}",
        files.len()
    );
    let problems: Vec<String> = files
        .iter()
        .flat_map(|f| check_corpus_file(f, severity))
        .collect();
    assert!(
        problems.is_empty(),
        "{} of {} corpus files in {dir} do not behave as their header says:\n\n{}\n",
        problems.len(),
        files.len(),
        problems.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// (a) the example workflows

#[test]
fn example_workflows_are_valid_and_warning_free() {
    let files = yaml_files("workflows");
    assert!(
        files.len() >= 6,
        "expected at least 6 example workflows, found {files:?}"
    );

    let out = run(&["validate", "workflows/"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "weft validate workflows/ failed:\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    let expected: Vec<String> = files.iter().map(|f| format!("OK {f}")).collect();
    assert_eq!(
        lines,
        expected,
        "expected exactly one plain `OK <file>` line per workflow (no warnings)\nstderr:\n{}",
        stderr(&out)
    );

    // No warnings either: nothing in JSON, and --deny-warnings passes.
    let (code, diags) = validate_json(&["workflows/"]);
    assert_eq!(code, Some(0));
    assert!(
        diags.is_empty(),
        "example workflows must have no diagnostics at all:\n{}",
        show_all(&diags)
    );
    let out = run(&["validate", "--deny-warnings", "workflows/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn example_workflows_start_with_the_schema_header_and_a_description() {
    let mut problems = Vec::new();
    for f in yaml_files("workflows") {
        let text = std::fs::read_to_string(root().join(&f)).expect("readable");
        let mut lines = text.lines();
        if lines.next() != Some("# yaml-language-server: $schema=../weft-workflow.schema.json") {
            problems.push(format!(
                "{f}: first line must be the yaml-language-server header"
            ));
        }
        let comment_lines = lines
            .take_while(|l| l.starts_with('#'))
            .filter(|l| l.trim_start_matches('#').trim().len() > 10)
            .count();
        if comment_lines == 0 {
            problems.push(format!(
                "{f}: needs a top-of-file comment saying what it shows"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The examples together use every construct of the language; this keeps it that way.
#[test]
fn example_workflows_cover_every_construct() {
    let mut all = String::new();
    for f in yaml_files("workflows") {
        all.push_str(&std::fs::read_to_string(root().join(&f)).expect("readable"));
        all.push('\n');
    }
    let needles = [
        "secret: true",
        "enum: [",
        "required: true",
        "default:",
        "vars:",
        "description:",
        "on: success",
        "on: failure",
        "on: always",
        "when: \"{{",
        "publish:",
        "do: [",
        "join: all",
        // A numeric join (ticket-triage's `record`). site-availability-probe's `join: 2` over
        // conditional routes became a `join: all` that counts (a partial join fails the run).
        "join: 1",
        "concurrency:",
        "item()",
        "max_delay:",
        "backoff:",
        "delay:",
        "timeout:",
        "transition_mode: first",
        "run_as_org:",
        "integration: ",
        "integration:\n      autotask:",
        "output:",
        "type: always_pass",
        "type: webhook",
        "secret: required",
        "criteria:",
        "response: wait",
        "max_body:",
        "rate_limit:",
        "type: cron",
        "timezone:",
        "catch_up:",
        "type: autotask.ticket",
        "events: [",
        "fields: [",
        "run_for: all_managed",
        "run_for: owner",
        "run_for: [",
        "action: core.workflow",
        "workflow: notify-teams",
        "action: core.mock",
        "action: http.request",
        "selectattr(",
        "map(attribute=",
        "default(",
        "tojson",
        "{% for ",
    ];
    let missing: Vec<&str> = needles
        .iter()
        .copied()
        .filter(|n| !all.contains(n))
        .collect();
    assert!(missing.is_empty(), "no example workflow uses: {missing:?}");
}

// ---------------------------------------------------------------------------------------------
// (b) the corpus

#[test]
fn invalid_corpus_reports_each_expected_error() {
    check_corpus_dir("tests/corpus/invalid", Severity::Error, 40);
}

#[test]
fn warnings_corpus_reports_each_expected_warning_and_no_error() {
    check_corpus_dir("tests/corpus/warnings", Severity::Warning, 5);
}

/// Every code the validator can produce has at least one corpus file.
///
/// The codes are read from the engine's source (every string literal shaped like
/// `area.name` in the files that emit diagnostics), so a new code without a corpus file fails
/// here. Warnings are the codes passed to `Diagnostic::warning`.
#[test]
fn corpus_covers_every_diagnostic_code() {
    const AREAS: &[&str] = &[
        "yaml", "schema", "workflow", "task", "action", "route", "dag", "join", "template", "when",
        "input", "trigger", "publish", "webhook", "form",
    ];
    let mut all: Vec<String> = Vec::new();
    let mut warning_codes: Vec<String> = Vec::new();
    for file in [
        "engine/src/parse.rs",
        "engine/src/parse/form.rs",
        "engine/src/validate.rs",
        "engine/src/lib.rs",
    ] {
        let src = std::fs::read_to_string(root().join(file)).expect("engine source");
        for (i, literal) in src.split('"').enumerate().filter(|(i, _)| i % 2 == 1) {
            let Some((area, name)) = literal.split_once('.') else {
                continue;
            };
            let shaped = AREAS.contains(&area)
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !shaped || all.iter().any(|c| c == literal) {
                continue;
            }
            // The text just before the literal tells a warning from an error.
            let before: String = src.split('"').take(i).collect::<Vec<_>>().join("\"");
            let tail = &before[before.len().saturating_sub(60)..];
            if tail.contains("Diagnostic::warning(") {
                warning_codes.push(literal.to_string());
            }
            all.push(literal.to_string());
        }
    }
    assert!(
        all.len() >= 45,
        "expected to find the diagnostic codes in the engine, found {all:?}"
    );
    let warnings_expected: Vec<&str> = warning_codes.iter().map(String::as_str).collect();
    let errors_expected: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|c| !warnings_expected.contains(c))
        .collect();
    let codes = |dir: &str| -> Vec<String> {
        yaml_files(dir)
            .iter()
            .filter_map(|f| header(f).ok())
            .flat_map(|h| h.expects.into_iter().map(|e| e.code))
            .collect()
    };
    let errors = codes("tests/corpus/invalid");
    let warnings = codes("tests/corpus/warnings");
    let missing: Vec<&str> = errors_expected
        .iter()
        .filter(|c| !errors.iter().any(|e| e == *c))
        .chain(
            warnings_expected
                .iter()
                .filter(|c| !warnings.iter().any(|w| w == *c)),
        )
        .copied()
        .collect();
    assert!(missing.is_empty(), "no corpus file for: {missing:?}");
    // The two template.syntax placements the validator must map back into the file.
    let syntax_files: Vec<String> = yaml_files("tests/corpus/invalid")
        .into_iter()
        .filter(|f| f.contains("template-syntax"))
        .collect();
    assert!(
        syntax_files.iter().any(|f| f.contains("double-quoted"))
            && syntax_files.iter().any(|f| f.contains("block")),
        "template.syntax needs a double-quoted and a block-scalar case: {syntax_files:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) several files at once, (f) several mistakes in one file

#[test]
fn validating_several_broken_files_reports_every_file() {
    let files = [
        "tests/corpus/invalid/route-unknown-task.yaml",
        "tests/corpus/invalid/dag-cycle.yaml",
        "tests/corpus/invalid/yaml-syntax-unquoted-colon.yaml",
        "tests/corpus/invalid/trigger-invalid-timezone.yaml",
    ];
    let (code, diags) = validate_json(&files);
    assert_eq!(code, Some(1));
    let mut missing = Vec::new();
    for f in files {
        let want = &header(f).expect("header").expects[0];
        let found = diags.iter().any(|d| {
            d["file"] == f
                && d["code"] == want.code.as_str()
                && d["line"] == want.line
                && d["column"] == want.column
        });
        if !found {
            missing.push(format!("{f}: {} {}:{}", want.code, want.line, want.column));
        }
    }
    assert!(
        missing.is_empty(),
        "missing from one run over {} files:\n{}\ngot:\n{}",
        files.len(),
        missing.join("\n"),
        show_all(&diags)
    );

    // Text output: one FAILED line per file, and a valid file among them still gets its OK.
    let mut args = vec!["validate", "workflows/notify-teams.yaml"];
    args.extend_from_slice(&files);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l == "OK workflows/notify-teams.yaml"),
        "{text}"
    );
    for f in files {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("FAILED {f}:"))),
            "no FAILED line for {f}:\n{text}"
        );
    }
    let err = stderr(&out);
    for code in [
        "route.unknown_task",
        "dag.cycle",
        "yaml.syntax",
        "trigger.invalid_timezone",
    ] {
        assert!(err.contains(code), "stderr does not mention {code}:\n{err}");
    }
}

#[test]
fn several_mistakes_in_one_file_are_all_reported() {
    let path = "tests/corpus/several-mistakes.yaml";
    let h = header(path).expect("header");
    assert!(
        h.expects.len() >= 5,
        "the fixture should list several mistakes"
    );
    let (code, diags) = validate_json(&[path]);
    assert_eq!(code, Some(1));
    let missing: Vec<String> = h
        .expects
        .iter()
        .filter(|e| {
            !diags.iter().any(|d| {
                d["code"] == e.code.as_str() && d["line"] == e.line && d["column"] == e.column
            })
        })
        .map(|e| format!("{} {}:{}", e.code, e.line, e.column))
        .collect();
    assert!(
        missing.is_empty(),
        "not reported: {missing:?}\ngot:\n{}",
        show_all(&diags)
    );
    assert_eq!(
        diags.len(),
        h.expects.len(),
        "unexpected extra diagnostics:\n{}",
        show_all(&diags)
    );
    // Diagnostics come in file order.
    let positions: Vec<(u64, u64)> = diags
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap()))
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "diagnostics are not in file order");
}

// ---------------------------------------------------------------------------------------------
// (d) the JSON Schema, (e) the committed copy

fn printed_schema() -> (String, Value) {
    let out = run(&["schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let json = serde_json::from_str(&text).expect("weft schema prints JSON");
    (text, json)
}

#[test]
fn schema_is_valid_json_schema_and_accepts_every_example() {
    let (_, schema) = printed_schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("weft schema is not a valid JSON Schema: {e}");
    }
    let validator = jsonschema::draft7::new(&schema)
        .unwrap_or_else(|e| panic!("weft schema does not compile as draft 7: {e}"));
    let mut problems = Vec::new();
    for f in yaml_files("workflows") {
        let text = std::fs::read_to_string(root().join(&f)).expect("readable");
        let instance: Value = match serde_yaml::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{f}: serde_yaml cannot read it: {e}"));
                continue;
            }
        };
        for e in validator.iter_errors(&instance) {
            problems.push(format!("{f}: at `{}`: {e}", e.instance_path()));
        }
    }
    assert!(
        problems.is_empty(),
        "example workflows rejected by the schema:\n{}",
        problems.join("\n")
    );
}

/// Structural mistakes the editor can flag from the schema alone are rejected by it too.
#[test]
fn schema_rejects_structural_mistakes() {
    let (_, schema) = printed_schema();
    let validator = jsonschema::draft7::new(&schema).expect("compiles");
    let mut accepted = Vec::new();
    for f in [
        "tests/corpus/invalid/schema-unknown-key-retries.yaml",
        "tests/corpus/invalid/schema-type-concurrency.yaml",
        "tests/corpus/invalid/schema-invalid-value-on.yaml",
        "tests/corpus/invalid/schema-duration-timeout.yaml",
        "tests/corpus/invalid/schema-invalid-name-input.yaml",
        "tests/corpus/invalid/schema-missing-key-action.yaml",
        "tests/corpus/invalid/workflow-version.yaml",
        "tests/corpus/invalid/workflow-invalid-name.yaml",
        "tests/corpus/invalid/workflow-no-tasks.yaml",
        "tests/corpus/invalid/task-invalid-name.yaml",
        "tests/corpus/invalid/trigger-unknown-type.yaml",
        "tests/corpus/invalid/when-not-template.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(f)).expect("readable");
        let instance: Value = serde_yaml::from_str(&text).expect("plain YAML");
        if validator.is_valid(&instance) {
            accepted.push(f);
        }
    }
    assert!(
        accepted.is_empty(),
        "the schema accepts these broken workflows: {accepted:?}"
    );
}

#[test]
fn committed_schema_is_current() {
    let (printed, _) = printed_schema();
    let committed =
        std::fs::read_to_string(root().join("weft-workflow.schema.json")).unwrap_or_default();
    assert!(
        committed == printed,
        "weft-workflow.schema.json is out of date: run `weft schema > weft-workflow.schema.json`"
    );
}

// ---------------------------------------------------------------------------------------------
// (g) weft eval

fn eval(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = weft();
    cmd.arg("eval").args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("weft eval starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("weft eval finishes")
}

fn eval_ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = eval(args, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "weft eval {args:?} failed:\n{}",
        stderr(&out)
    );
    stdout(&out).trim_end().to_string()
}

#[test]
fn eval_prints_native_values_and_strings_as_json() {
    assert_eq!(eval_ok(&["{{ [1,2] }}"], None), "[1,2]");
    assert_eq!(eval_ok(&["n={{ 1 }}"], None), "\"n=1\"");
    assert_eq!(eval_ok(&["{{ {'a': none} }}"], None), "{\"a\":null}");
    assert_eq!(eval_ok(&["plain text"], None), "\"plain text\"");
}

#[test]
fn eval_reads_a_yaml_context_file() {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    writeln!(
        file,
        "CTX:\n  tickets:\n    - {{ id: 101, status: open }}\n    - {{ id: 102, status: closed }}\n    - {{ id: 103, status: open }}\nORG:\n  name: Contoso Dental"
    )
    .expect("write");
    let path = file.path().to_str().expect("utf-8 path");
    assert_eq!(
        eval_ok(
            &[
                "{{ CTX.tickets | selectattr('status', 'eq', 'open') | map(attribute='id') | list }}",
                "--context",
                path
            ],
            None
        ),
        "[101,103]"
    );
    assert_eq!(
        eval_ok(
            &["{{ ORG.name }}: {{ CTX.tickets | length }}", "-c", path],
            None
        ),
        "\"Contoso Dental: 3\""
    );
}

#[test]
fn eval_reads_the_context_from_stdin() {
    let ctx = "ORG:\n  VARIABLES:\n    queue_id: 29683481\nCTX: { severity: high }\n";
    assert_eq!(
        eval_ok(
            &["{{ ORG.VARIABLES.queue_id }}", "--context", "-"],
            Some(ctx)
        ),
        "29683481"
    );
    assert_eq!(
        eval_ok(&["{{ CTX.severity | upper }}", "--context", "-"], Some(ctx)),
        "\"HIGH\""
    );
    // JSON is YAML too.
    assert_eq!(
        eval_ok(&["{{ x * 2 }}", "--context", "-"], Some("{\"x\": 21}")),
        "42"
    );
}

#[test]
fn eval_of_an_undefined_name_fails_and_names_it() {
    for (template, name) in [
        ("{{ ticket_title }}", "ticket_title"),
        ("Hello {{ CTX.contact.first_name }}", "first_name"),
    ] {
        let out = eval(&[template, "--context", "-"], Some("CTX: {}\n"));
        assert_eq!(
            out.status.code(),
            Some(1),
            "weft eval {template:?} should exit 1; stdout: {}",
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains(name),
            "stderr of weft eval {template:?} does not name `{name}`:\n{err}"
        );
        assert!(stdout(&out).trim().is_empty(), "nothing on stdout on error");
    }
}

// ---------------------------------------------------------------------------------------------
// (h) weft actions

#[test]
fn actions_list_shows_every_core_action() {
    let out = run(&["actions", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for action in [
        "core.noop",
        "core.echo",
        "core.fail",
        "core.sleep",
        "core.mock",
        "core.workflow",
        "http.request",
    ] {
        assert!(names.contains(&action), "`{action}` not listed:\n{text}");
    }

    let out = run(&["actions", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert!(
        json.as_array()
            .expect("a list")
            .iter()
            .any(|a| a["name"] == "core.workflow"),
        "{json}"
    );
}

#[test]
fn actions_show_documents_required_parameters() {
    let out = run(&["actions", "show", "http.request"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let url = text
        .lines()
        .find(|l| l.trim_start().starts_with("url ("))
        .unwrap_or_else(|| panic!("`url` is not documented:\n{text}"));
    assert!(
        url.contains("required"),
        "`url` is not marked required: {url}"
    );
    let method = text
        .lines()
        .find(|l| l.trim_start().starts_with("method ("))
        .unwrap_or_else(|| panic!("`method` is not documented:\n{text}"));
    assert!(method.contains("optional"), "{method}");

    let out = run(&["actions", "show", "http.requets"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("http.request"),
        "an unknown action should suggest the close one: {}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Form files: `weft validate` reads them, `weft schema form` describes them.

#[test]
fn form_files_validate_with_their_locations() {
    let out = run(&["validate", "forms"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("OK forms/new-user.yaml"),
        "{}",
        stdout(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-form.yaml");
    std::fs::write(
        &bad,
        "form: onboarding\nfields:\n  - name: start\n    type: dat\n  - name: laptop\n    show_when: values.remtoe\n",
    )
    .unwrap();
    let out = run(&["validate", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let diags: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let at = |code: &str| {
        diags
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == code)
            .map(|d| {
                (
                    d["line"].as_u64().unwrap(),
                    d["column"].as_u64().unwrap(),
                    d["help"].as_str().unwrap_or_default().to_string(),
                )
            })
            .unwrap_or_else(|| panic!("no {code} in {diags}"))
    };
    let (line, column, help) = at("schema.invalid_value");
    assert_eq!((line, column), (4, 11));
    assert!(help.contains("date"), "{help}");
    let (line, _, _) = at("form.unknown_field");
    assert_eq!(line, 6);
}

#[test]
fn the_form_schema_is_valid_and_accepts_the_example_forms() {
    let out = run(&["schema", "form"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let schema: Value = serde_json::from_str(&stdout(&out)).unwrap();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("weft schema form is not a valid JSON Schema: {e}");
    }
    let validator = jsonschema::draft7::new(&schema).unwrap();
    for f in yaml_files("forms") {
        let instance: Value =
            serde_yaml::from_str(&std::fs::read_to_string(root().join(&f)).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{f}: {errors:?}");
    }
    let typo: Value =
        serde_json::json!({"form": "f", "fields": [{"name": "a", "type": "dropdown"}]});
    assert!(
        !validator.is_valid(&typo),
        "an unknown field type is flagged by the schema"
    );
}
