//! `weft test`'s machine-readable reports: JSON, and JUnit XML for CI systems.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::run::{FileError, FileOutcome};

/// Counts over every file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Cases whose expectations held.
    pub passed: usize,
    /// Cases with a failed expectation.
    pub failed: usize,
    /// Files that could not be run (each counts as one error).
    pub errors: usize,
}

/// The counts of `files`.
pub fn totals(files: &[FileOutcome]) -> Totals {
    let mut t = Totals::default();
    for f in files {
        if f.error.is_some() {
            t.errors += 1;
        }
        for c in &f.cases {
            if c.passed() {
                t.passed += 1;
            } else {
                t.failed += 1;
            }
        }
    }
    t
}

/// Why a file could not run, as one text.
pub fn file_error_text(e: &FileError) -> String {
    match e {
        FileError::Other(why) => why.clone(),
        FileError::Invalid(diags) => diags
            .iter()
            .map(|d| {
                format!(
                    "line {}:{}: {} [{}]",
                    d.span.line, d.span.column, d.message, d.code
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Everything as one JSON document.
pub fn json(files: &[FileOutcome], coverage: Option<&[super::Coverage]>) -> Value {
    let t = totals(files);
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "file": f.path.display().to_string(),
                "workflow": f.workflow,
                "error": f.error.as_ref().map(file_error_text),
                "cases": f.cases.iter().map(|c| json!({
                    "name": c.name,
                    "line": c.line,
                    "passed": c.passed(),
                    "elapsed_ms": c.elapsed.as_secs_f64() * 1000.0,
                    "status": c.observed.as_ref().map(|o| o.status.clone()),
                    "output": c.observed.as_ref().map(|o| o.output.clone()),
                    "failures": c.failures.iter().map(|x| json!({
                        "line": x.line,
                        "column": x.column,
                        "message": x.what,
                        "expected": x.expected,
                        "got": x.got,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "passed": t.passed,
        "failed": t.failed,
        "errors": t.errors,
        "files": files,
    });
    if let Some(c) = coverage {
        out["coverage"] = serde_json::to_value(c).unwrap_or(Value::Null);
    }
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a `<testsuite>` per test file, a `<testcase>` per case (`classname` is the
/// workflow), a `<failure>` with every expectation that did not hold, an `<error>` for a
/// file that could not run.
pub fn junit(files: &[FileOutcome]) -> String {
    let t = totals(files);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"weft test\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        t.passed + t.failed + t.errors,
        t.failed,
        t.errors
    );
    for f in files {
        let file = xml(&f.path.display().to_string());
        let failed = f.cases.iter().filter(|c| !c.passed()).count();
        let time: f64 = f.cases.iter().map(|c| c.elapsed.as_secs_f64()).sum();
        let tests = f.cases.len() + usize::from(f.error.is_some());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{file}\" tests=\"{tests}\" failures=\"{failed}\" errors=\"{}\" time=\"{time:.3}\">",
            usize::from(f.error.is_some())
        );
        if let Some(e) = &f.error {
            let _ = writeln!(
                out,
                "    <testcase name=\"(file)\" classname=\"{}\" file=\"{file}\">\n      <error message=\"{}\"/>\n    </testcase>",
                xml(&f.workflow),
                xml(&file_error_text(e))
            );
        }
        for c in &f.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{file}\" line=\"{}\" time=\"{:.3}\"",
                xml(&c.name),
                xml(&f.workflow),
                c.line,
                c.elapsed.as_secs_f64()
            );
            if c.passed() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let first = &c.failures[0];
            let details: Vec<String> = c
                .failures
                .iter()
                .map(|x| {
                    let mut d = format!("{}:{}: {}", f.path.display(), x.line, x.what);
                    if let Some(e) = &x.expected {
                        d.push_str(&format!("\n  expected: {e}"));
                    }
                    if let Some(g) = &x.got {
                        d.push_str(&format!("\n  got:      {g}"));
                    }
                    d
                })
                .collect();
            let _ = writeln!(
                out,
                "      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml(&first.what),
                xml(&details.join("\n"))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_control_characters_replaced() {
        assert_eq!(
            xml("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{fffd}"
        );
    }
}
