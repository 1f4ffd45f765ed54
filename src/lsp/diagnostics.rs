//! Diagnostics: what `weft validate` reports for the document's text — the same codes,
//! messages, severities and places — as LSP diagnostics.

use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
    Position, Range, Uri,
};
use weft_engine::Severity;

use super::text::Lines;
use super::{Catalog, Document, FileKind};

/// The diagnostics of a document saved as `uri` (which related places point into).
pub fn diagnostics(doc: &Document, catalog: &Catalog, uri: &Uri) -> Vec<Diagnostic> {
    let lines = Lines::new(&doc.text);
    let found = match doc.kind {
        FileKind::Workflow => weft_engine::load(&doc.text, &catalog.registry).diagnostics,
        FileKind::Form => weft_engine::load_form(&doc.text).diagnostics,
        FileKind::Manifest => return manifest(doc, &lines),
        // The file's name only picks the default workflow, which the checks do not need.
        FileKind::Test => {
            weft_service::workflow_tests::diagnostics(std::path::Path::new(""), &doc.text)
        }
        FileKind::Other => return Vec::new(),
    };
    found
        .into_iter()
        .map(|d| {
            let mut related: Vec<DiagnosticRelatedInformation> = d
                .related
                .iter()
                .map(|(span, label)| DiagnosticRelatedInformation {
                    location: Location::new(uri.clone(), lines.range(*span)),
                    message: label.clone(),
                })
                .collect();
            let range = lines.range(d.span);
            // The hint `weft validate` prints under the message: editors show related
            // information under the message too, so the message itself stays the same.
            if let Some(help) = &d.help {
                related.push(DiagnosticRelatedInformation {
                    location: Location::new(uri.clone(), range),
                    message: format!("help: {help}"),
                });
            }
            Diagnostic {
                range,
                severity: Some(match d.severity {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                }),
                code: Some(NumberOrString::String(d.code.to_string())),
                source: Some("weft".to_string()),
                message: d.message,
                related_information: (!related.is_empty()).then_some(related),
                ..Diagnostic::default()
            }
        })
        .collect()
}

/// A crate manifest's problems: they carry a line and column, not a span, so each covers
/// the rest of its word.
fn manifest(doc: &Document, lines: &Lines<'_>) -> Vec<Diagnostic> {
    let Err(errors) = weft_engine::bundle::parse_manifest(&doc.text, "crate.yaml") else {
        return Vec::new();
    };
    errors
        .into_iter()
        .map(|e| {
            let start = if e.line == 0 {
                Position::new(0, 0)
            } else {
                lines.line_column(e.line, e.column)
            };
            let rest = lines.line(start.line as usize);
            let start_byte = lines.offset(start) - lines.start(start.line as usize);
            let word = rest
                .get(start_byte..)
                .map_or(0, |r| r.find(char::is_whitespace).unwrap_or(r.len()));
            let end = lines.position(lines.offset(start) + word.max(1));
            Diagnostic {
                range: Range::new(start, end.max(start)),
                severity: Some(DiagnosticSeverity::ERROR),
                code: Some(NumberOrString::String("crate.manifest".to_string())),
                source: Some("weft".to_string()),
                message: e.message,
                ..Diagnostic::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn diags(path: Option<&str>, src: &str) -> Vec<Diagnostic> {
        let catalog = Catalog::new(weft_actions::registry());
        let doc = Document::new(path.map(std::path::Path::new), src.to_string());
        diagnostics(&doc, &catalog, &Uri::from_str("file:///w/x.yaml").unwrap())
    }

    fn code(d: &Diagnostic) -> &str {
        match &d.code {
            Some(NumberOrString::String(s)) => s,
            _ => "",
        }
    }

    #[test]
    fn the_validators_findings_with_their_places() {
        let src = "name: x\ntasks:\n  a:\n    action: core.noop\n    next: [nope]\n";
        let d = diags(None, src);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(code(&d[0]), "route.unknown_task");
        assert_eq!(d[0].range.start, Position::new(4, 11));
        assert_eq!(d[0].range.end, Position::new(4, 15));
        assert!(d[0].related_information.is_some(), "the help travels along");
    }

    #[test]
    fn columns_count_utf16_units() {
        let src = "name: x\ndescription: 😀😀\ntasks:\n  a:\n    action: core.noop\n    input: { é: 1 }\n";
        let d = diags(None, src);
        assert!(!d.is_empty());
        let line = "    input: { message: \"😀 {{ CTX.nope }}\" }";
        let src = format!("name: x\ntasks:\n  a:\n    action: core.echo\n{line}\n");
        let d = diags(None, &src);
        let unknown = d
            .iter()
            .find(|d| code(d) == "template.unknown_ctx")
            .expect("found");
        let before = &line[..line.find("CTX").unwrap()];
        assert_eq!(
            unknown.range.start,
            Position::new(4, before.encode_utf16().count() as u32)
        );
    }

    #[test]
    fn forms_manifests_and_other_yaml() {
        let d = diags(None, "form: f\nfields:\n  - { name: a, type: nope }\n");
        assert!(!d.is_empty());
        let d = diags(Some("/c/crate.yaml"), "name: Bad Name\nversion: 1.0.0\n");
        assert!(d.iter().all(|d| code(d) == "crate.manifest"), "{d:?}");
        assert!(!d.is_empty());
        assert!(diags(None, "services: {}\n").is_empty());
        assert!(diags(None, "name: x\ntasks:\n  a:\n    action: core.noop\n").is_empty());
    }
}
