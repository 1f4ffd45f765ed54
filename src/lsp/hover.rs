//! Hover: what the thing under the cursor is — an action (its description and parameters),
//! a parameter, a filter or test, a `CTX.` name (where it comes from), a task.

use std::fmt::Write as _;

use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Range};
use weft_engine::ActionSpec;
use weft_engine::template::catalog;

use super::context::NameKind;
use super::outline::{Origin, Outline};
use super::text::Lines;
use super::{Catalog, Document, qualifier, word_at};

/// The hover at byte `offset`, if there is something to say.
pub fn hover(doc: &Document, catalog: &Catalog, offset: usize) -> Option<Hover> {
    let empty = Outline::default();
    let outline = doc.fresh_outline().unwrap_or(&empty);
    let lines = Lines::new(&doc.text);
    let contains = |span: weft_engine::yaml::Span| span.range().contains(&offset);
    for task in &outline.tasks {
        if let Some((name, span)) = task.action.as_ref().filter(|(_, s)| contains(*s)) {
            let text = match catalog.action_docs.get(name.as_str()) {
                Some(doc) => doc.clone(),
                None => format!("`{name}` is not a registered action (`weft actions list`)"),
            };
            return Some(markdown(text, lines.range(*span)));
        }
        let action = task
            .action
            .as_ref()
            .and_then(|(a, _)| catalog.registry.get(a));
        if let Some(((name, span, _), spec)) = task
            .input
            .iter()
            .find(|(_, span, _)| contains(*span))
            .zip(action)
        {
            let prop = spec.params.get("properties")?.get(name)?;
            let ty = crate::cmd::actions::type_of(prop, &spec.params);
            let mut text = format!("**{name}** ({ty}) — parameter of `{}`", spec.name);
            if let Some(d) = prop.get("description").and_then(|d| d.as_str()) {
                let _ = write!(text, "\n\n{d}");
            }
            return Some(markdown(text, lines.range(*span)));
        }
    }
    let word = word_at(&doc.text, offset)?;
    let name = &doc.text[word.clone()];
    let range = lines.byte_range(word.clone());
    match qualifier(&doc.text, word.start) {
        Some("CTX") => {
            return ctx_doc(doc.fresh_outline()?, name).map(|t| markdown(t, range));
        }
        Some("TASKS") => {
            let task = doc.fresh_outline()?.task(name)?;
            let action = task.action.as_ref().map_or("no action", |a| a.0.as_str());
            return Some(markdown(
                format!("task **{name}** (`{action}`): `.status`, `.result`, `.error`"),
                range,
            ));
        }
        _ => {}
    }
    let in_template = matches!(
        super::context::cursor(&doc.text, word.start).spot,
        super::context::Spot::Template { .. }
    );
    if !in_template {
        return None;
    }
    let (entry, what) = match super::context::name_kind(&doc.text[..word.start]) {
        NameKind::Filter => (catalog::filter(name)?, "filter"),
        NameKind::Test => (catalog::test(name)?, "test"),
        _ => return None,
    };
    Some(markdown(
        format!("{what} **{}**\n\n{}", entry.name, entry.doc),
        range,
    ))
}

fn markdown(value: String, range: Range) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: Some(range),
    }
}

/// An action's description and parameter table (Markdown).
pub fn action_doc(spec: &ActionSpec) -> String {
    let mut out = format!("**{}**\n\n{}\n", spec.name, spec.description);
    let required = spec.required_params();
    let props = spec.params.get("properties").and_then(|p| p.as_object());
    match props {
        Some(props) if !props.is_empty() => {
            out.push_str("\n| parameter | type | | description |\n| --- | --- | --- | --- |\n");
            for (name, prop) in props {
                let ty = crate::cmd::actions::type_of(prop, &spec.params);
                let req = if required.contains(&name.as_str()) {
                    "required"
                } else {
                    "optional"
                };
                let desc = prop
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("")
                    .replace('\n', " ")
                    .replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| `{name}` | {} | {req} | {desc} |",
                    ty.replace('|', "\\|")
                );
            }
        }
        _ if spec.allows_extra_params() => out.push_str("\nAny parameters.\n"),
        _ => out.push_str("\nNo parameters.\n"),
    }
    out
}

/// Where a `CTX.` name comes from, in a few words.
pub fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Input { ty: Some(ty), .. } => format!("workflow input ({ty})"),
        Origin::Input { ty: None, .. } => "workflow input".to_string(),
        Origin::Var => "var".to_string(),
        Origin::Published { task } => format!("published by task `{task}`"),
    }
}

fn ctx_doc(outline: &Outline, name: &str) -> Option<String> {
    let defs: Vec<_> = outline.ctx_defs(name).collect();
    if defs.is_empty() {
        return Some(format!(
            "`CTX.{name}` is never defined: not an input, a var, or published by a route"
        ));
    }
    let mut out = format!("**CTX.{name}**");
    for d in defs {
        let _ = write!(out, "\n\n{}", origin_text(&d.origin));
        if let Origin::Input {
            description: Some(desc),
            ..
        } = &d.origin
        {
            let _ = write!(out, ": {desc}");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hover_at(src: &str, needle: &str) -> Option<String> {
        let catalog = Catalog::new(weft_actions::registry());
        let doc = Document::new(None, src.to_string());
        let offset = src.find(needle).expect("needle") + 1;
        hover(&doc, &catalog, offset).map(|h| match h.contents {
            HoverContents::Markup(m) => m.value,
            _ => unreachable!(),
        })
    }

    const WF: &str = "name: x\ninput:\n  alert: { type: object, description: The RMM alert }\ntasks:\n  a:\n    action: core.fail\n    input:\n      message: \"{{ CTX.alert | to_json }} {{ CTX.ticket is defined }}\"\n    next:\n      - publish: { ticket: 1 }\n        do: b\n  b:\n    action: core.noop\n";

    #[test]
    fn actions_parameters_filters_and_ctx() {
        let action = hover_at(WF, "core.fail").unwrap();
        assert!(action.starts_with("**core.fail**"), "{action}");
        assert!(action.contains("| `message` |"), "{action}");
        let param = hover_at(WF, "message:").unwrap();
        assert!(param.contains("parameter of `core.fail`"), "{param}");
        let filter = hover_at(WF, "to_json").unwrap();
        assert!(filter.starts_with("filter **to_json**"), "{filter}");
        let test = hover_at(WF, "defined").unwrap();
        assert!(test.starts_with("test **defined**"), "{test}");
        let input = hover_at(WF, "alert |").unwrap();
        assert!(
            input.contains("workflow input (object): The RMM alert"),
            "{input}"
        );
        let published = hover_at(WF, "ticket is").unwrap();
        assert!(published.contains("published by task `a`"), "{published}");
        assert_eq!(hover_at(WF, "name: x"), None);
    }
}
