//! Diagnostics: what is wrong with a workflow file, where, and how to fix it.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceSpan};
use serde::Serialize;

use crate::yaml::Span;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot be used.
    Error,
    /// Suspicious but valid.
    Warning,
}

/// One finding, located in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `route.unknown_task`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Where (the primary label).
    pub span: Span,
    /// How to fix it.
    pub help: Option<String>,
    /// Other places worth pointing at.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            help: None,
            related: Vec::new(),
        }
    }

    /// A warning.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// Adds advice.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds advice when there is some.
    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Points at a second place.
    #[must_use]
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// Is this an error (not a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic attached to its file, for display (miette) and JSON output.
#[derive(Debug, Clone)]
pub struct FileDiagnostic {
    /// The finding.
    pub diagnostic: Diagnostic,
    /// The file's name as given by the user.
    pub file: Arc<str>,
    /// The file's text.
    pub source: Arc<str>,
}

impl fmt::Display for FileDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for FileDiagnostic {}

fn source_span(span: Span) -> SourceSpan {
    SourceSpan::new(span.offset.into(), span.len)
}

impl miette::Diagnostic for FileDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(None, source_span(self.diagnostic.span));
        let related = self
            .diagnostic
            .related
            .iter()
            .map(|(s, l)| LabeledSpan::new_with_span(Some(l.clone()), source_span(*s)));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

impl miette::SourceCode for FileDiagnostic {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .source
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

impl FileDiagnostic {
    /// The JSON form printed by `weft validate --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let d = &self.diagnostic;
        serde_json::json!({
            "file": &*self.file,
            "line": d.span.line,
            "column": d.span.column,
            "severity": d.severity,
            "code": d.code,
            "message": d.message,
            "help": d.help,
        })
    }
}

/// The SARIF 2.1.0 log of `weft validate --format sarif` (code scanning, editors): one rule
/// per diagnostic code that occurs, one result per diagnostic, located by its span.
pub fn sarif(diags: &[FileDiagnostic], tool_version: &str) -> serde_json::Value {
    use serde_json::json;
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut rule_index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut results = Vec::new();
    for fd in diags {
        let d = &fd.diagnostic;
        let index = *rule_index.entry(d.code).or_insert_with(|| {
            // A code's help differs by occurrence ("did you mean `x`?"), so the rule carries
            // the first one and each result's message carries its own.
            let help = d.help.clone().unwrap_or_else(|| {
                "see the Diagnostics section of weft's README for this code".to_string()
            });
            rules.push(json!({
                "id": d.code,
                "name": d.code,
                "shortDescription": { "text": d.code },
                "help": { "text": help },
                "defaultConfiguration": { "level": sarif_level(d.severity) },
            }));
            rules.len() - 1
        });
        let text = match &d.help {
            Some(h) => format!("{}\nhelp: {h}", d.message),
            None => d.message.clone(),
        };
        let (end_line, end_column) = end_of(&fd.source, d.span);
        results.push(json!({
            "ruleId": d.code,
            "ruleIndex": index,
            "level": sarif_level(d.severity),
            "message": { "text": text },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": sarif_uri(&fd.file) },
                    "region": {
                        "startLine": d.span.line,
                        "startColumn": d.span.column,
                        "endLine": end_line,
                        "endColumn": end_column,
                    },
                },
            }],
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "weft",
                    "version": tool_version,
                    "informationUri": "https://github.com/weft-dev/weft",
                    "rules": rules,
                },
            },
            // Span columns count characters, not SARIF's default UTF-16 code units.
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// SARIF's end of a region: the line and the (exclusive) column just past the span, both
/// 1-based, columns in characters.
fn end_of(source: &str, span: Span) -> (usize, usize) {
    let mut end = (span.offset + span.len).min(source.len());
    // A span is in bytes; never cut a character (a bad span must not panic here).
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    if line < span.line || (line == span.line && column <= span.column) {
        // An empty span (an end of file, say) still covers its first character.
        return (span.line, span.column + 1);
    }
    (line, column)
}

/// A relative URI reference for a path as the user gave it: `/` separators, and the
/// characters a URI reserves escaped.
fn sarif_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '\\' => out.push('/'),
            ' ' | '%' | '#' | '?' | '[' | ']' => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_regions_end_after_the_span() {
        let source = "a: 1\nbé: x\n";
        let span = Span {
            offset: 5,
            len: 3,
            line: 2,
            column: 1,
        };
        assert_eq!(end_of(source, span), (2, 3), "é is one column");
        let empty = Span {
            offset: 12,
            len: 0,
            line: 3,
            column: 1,
        };
        assert_eq!(end_of(source, empty), (3, 2));
        assert_eq!(sarif_uri("my flows\\a#1.yaml"), "my%20flows/a%231.yaml");
    }
}
