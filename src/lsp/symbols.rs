//! Document symbols (the outline view): inputs, vars, tasks (with their action) and triggers
//! (with their type), each under its section.

use lsp_types::{DocumentSymbol, SymbolKind};
use weft_engine::yaml::Span;

use super::Document;
use super::outline::Origin;
use super::text::Lines;

/// The symbols of a workflow document (none for other kinds, or while it is not YAML).
pub fn symbols(doc: &Document) -> Vec<DocumentSymbol> {
    let Some(outline) = doc.fresh_outline() else {
        return Vec::new();
    };
    let lines = Lines::new(&doc.text);
    let symbol = |name: &str, detail: Option<String>, kind, whole: Span, name_span: Span| {
        let range = lines.byte_range(whole.offset..whole.offset + whole.len);
        let range = lsp_types::Range::new(range.start.min(lines.range(name_span).start), range.end);
        #[allow(deprecated)] // `deprecated` is a required field the protocol replaced with tags
        DocumentSymbol {
            name: if name.is_empty() {
                "(empty)".into()
            } else {
                name.to_string()
            },
            detail,
            kind,
            tags: None,
            deprecated: None,
            range,
            selection_range: lines.range(name_span),
            children: None,
        }
    };
    let through = |a: Span, b: Span| Span {
        len: (b.offset + b.len).saturating_sub(a.offset),
        ..a
    };
    let section = |name: &str, children: Vec<DocumentSymbol>| {
        let s = outline.section(name)?;
        let mut sym = symbol(
            name,
            None,
            SymbolKind::NAMESPACE,
            through(s.key, s.value),
            s.key,
        );
        sym.children = Some(children);
        Some(sym)
    };
    let ctx = |wanted: fn(&Origin) -> bool, kind| {
        outline
            .ctx
            .iter()
            .filter(|d| wanted(&d.origin))
            .map(|d| symbol(&d.name, None, kind, d.span, d.span))
            .collect::<Vec<_>>()
    };
    let inputs = ctx(|o| matches!(o, Origin::Input { .. }), SymbolKind::FIELD);
    let vars = ctx(|o| matches!(o, Origin::Var), SymbolKind::VARIABLE);
    let tasks = outline
        .tasks
        .iter()
        .map(|t| {
            let action = t.action.as_ref().map(|a| a.0.clone());
            symbol(
                &t.name,
                action,
                SymbolKind::FUNCTION,
                through(t.key, t.value),
                t.key,
            )
        })
        .collect();
    let triggers = outline
        .triggers
        .iter()
        .map(|t| {
            symbol(
                &t.name,
                t.ty.clone(),
                SymbolKind::EVENT,
                t.span,
                t.name_span,
            )
        })
        .collect();
    [
        section("input", inputs),
        section("vars", vars),
        section("tasks", tasks),
        section("triggers", triggers),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_and_triggers_nest_under_their_sections() {
        let src = "name: x\ninput:\n  alert: object\ntasks:\n  fetch:\n    action: core.noop\n  tell:\n    action: core.echo\ntriggers:\n  - { name: rmm, type: webhook }\n";
        let doc = Document::new(None, src.to_string());
        let syms = symbols(&doc);
        let names: Vec<_> = syms.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["input", "tasks", "triggers"]);
        let tasks = syms[1].children.as_ref().unwrap();
        assert_eq!(tasks[0].name, "fetch");
        assert_eq!(tasks[0].detail.as_deref(), Some("core.noop"));
        assert_eq!(
            tasks[0].selection_range,
            lsp_types::Range::new(
                lsp_types::Position::new(4, 2),
                lsp_types::Position::new(4, 7)
            )
        );
        assert!(tasks[0].range.end.line >= 5);
        let triggers = syms[2].children.as_ref().unwrap();
        assert_eq!(triggers[0].name, "rmm");
        assert_eq!(triggers[0].detail.as_deref(), Some("webhook"));
        for s in &syms {
            for c in s.children.iter().flatten() {
                assert!(s.range.start <= c.range.start && c.range.end <= s.range.end);
            }
        }
    }
}
