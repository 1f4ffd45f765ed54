//! The analysis behind `weft lsp`: pure functions from a document's text and a position to
//! completions, hovers, definitions, symbols and diagnostics. The protocol loop
//! (`cmd::lsp`) only moves messages; everything here can be tested without I/O.

pub mod completion;
pub mod context;
pub mod definition;
pub mod diagnostics;
pub mod hover;
pub mod outline;
pub mod symbols;
pub mod text;

use std::path::Path;

use outline::Outline;
use weft_engine::Registry;

/// The kinds of file the server understands; each feature dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A workflow (a `tasks:` key, or the workflow schema header).
    Workflow,
    /// A form file (a top-level `form:` key and no `tasks:`).
    Form,
    /// A crate's `crate.yaml`.
    Manifest,
    /// A workflow test file (`*.test.yaml`, run by `weft test`).
    Test,
    /// Any other YAML (the editor may send us every YAML file): left alone.
    Other,
}

impl FileKind {
    /// What `text`, saved as `path`, is. A file that does not parse yet is judged by its
    /// lines, so a workflow with a syntax error still gets its diagnostics.
    /// `root` is the text parsed, when it parses.
    fn of(path: Option<&Path>, text: &str, root: Option<&weft_engine::yaml::Node>) -> FileKind {
        if path
            .and_then(Path::file_name)
            .is_some_and(|n| n == "crate.yaml")
        {
            return FileKind::Manifest;
        }
        if path
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .is_some_and(weft_engine::is_test_file_name)
        {
            return FileKind::Test;
        }
        let top_key = |key: &str| {
            text.lines()
                .any(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
        };
        if root.is_some_and(weft_engine::is_form_root) || (top_key("form") && !top_key("tasks")) {
            FileKind::Form
        } else if top_key("tasks")
            || text
                .lines()
                .take_while(|l| l.starts_with('#') || l.trim().is_empty())
                .any(|l| l.contains("weft-workflow.schema"))
        {
            FileKind::Workflow
        } else {
            FileKind::Other
        }
    }
}

/// What the server knows before any document: the actions and the files' schemas.
pub struct Catalog {
    pub registry: Registry,
    /// Each action's documentation (Markdown), made once: completion offers every action.
    pub action_docs: std::collections::HashMap<String, String>,
    /// The workflow schema, with the registered action names.
    pub workflow_schema: serde_json::Value,
    pub form_schema: serde_json::Value,
}

impl Catalog {
    pub fn new(registry: Registry) -> Catalog {
        let workflow_schema = weft_engine::schema::workflow_schema(registry.names());
        let action_docs = registry
            .specs()
            .map(|s| (s.name.clone(), hover::action_doc(s)))
            .collect();
        Catalog {
            action_docs,
            registry,
            workflow_schema,
            form_schema: weft_engine::schema::form_schema(),
        }
    }
}

/// An open document.
#[derive(Debug, Clone)]
pub struct Document {
    pub text: String,
    pub kind: FileKind,
    /// The outline of the last text that parsed as YAML: names (tasks, CTX) stay offered
    /// while the text is broken mid-edit.
    pub outline: Option<Outline>,
    /// Whether `outline` was read from `text` itself (its spans are only good then).
    pub fresh: bool,
}

impl Document {
    pub fn new(path: Option<&Path>, text: String) -> Document {
        let mut doc = Document {
            text: String::new(),
            kind: FileKind::Other,
            outline: None,
            fresh: false,
        };
        doc.update(path, text);
        doc
    }

    /// Replaces the text (the editor sends the whole document on every change).
    pub fn update(&mut self, path: Option<&Path>, text: String) {
        // One parse per change, for the kind and the outline both.
        let root = weft_engine::yaml::parse(&text).ok();
        self.kind = FileKind::of(path, &text, root.as_ref());
        match root {
            Some(root) if self.kind == FileKind::Workflow => {
                self.outline = Some(Outline::read(&root));
                self.fresh = true;
            }
            _ => self.fresh = false,
        }
        self.text = text;
    }

    /// The outline, only if it describes the current text (for features that use spans).
    pub fn fresh_outline(&self) -> Option<&Outline> {
        self.outline.as_ref().filter(|_| self.fresh)
    }
}

/// The identifier (`[A-Za-z0-9_]`) around byte `offset`, as a byte range.
pub fn word_at(text: &str, offset: usize) -> Option<std::ops::Range<usize>> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    let start = offset - (text[..offset].len() - text[..offset].trim_end_matches(is_word).len());
    let end = offset + (text[offset..].len() - text[offset..].trim_start_matches(is_word).len());
    (start < end).then_some(start..end)
}

/// The dotted name a word at `start` is the last part of: for `CTX.ticket.id` with the word
/// `ticket`, `Some("CTX")`.
pub fn qualifier(text: &str, start: usize) -> Option<&str> {
    context::qualifier(&text[..start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds() {
        let wf = "name: a\ntasks:\n  x:\n    action: core.noop\n";
        assert_eq!(Document::new(None, wf.to_string()).kind, FileKind::Workflow);
        assert_eq!(
            Document::new(None, "tasks: [\n".to_string()).kind,
            FileKind::Workflow
        );
        let header = "# yaml-language-server: $schema=../weft-workflow.schema.json\nname: a\n";
        assert_eq!(
            Document::new(None, header.to_string()).kind,
            FileKind::Workflow
        );
        assert_eq!(
            Document::new(None, "form: f\nfields: []\n".to_string()).kind,
            FileKind::Form
        );
        assert_eq!(
            Document::new(None, "form: f\nfields: [\n".to_string()).kind,
            FileKind::Form
        );
        assert_eq!(
            Document::new(Some(Path::new("/x/crate.yaml")), "name: c\n".to_string()).kind,
            FileKind::Manifest
        );
        assert_eq!(
            Document::new(None, "services: {}\n".to_string()).kind,
            FileKind::Other
        );
    }

    #[test]
    fn words_and_qualifiers() {
        let text = "{{ CTX.ticket.id }}";
        let at = text.find("ticket").unwrap() + 2;
        let w = word_at(text, at).unwrap();
        assert_eq!(&text[w.clone()], "ticket");
        assert_eq!(qualifier(text, w.start), Some("CTX"));
        let id = text.find("id").unwrap();
        assert_eq!(qualifier(text, id), Some("CTX.ticket"));
        assert_eq!(word_at("a é", 3), None);
        assert_eq!(word_at("", 5), None);
    }

    /// Every feature at every place of every corpus and example file, and of each of their
    /// prefixes (a file being typed), answers without panicking.
    #[test]
    fn no_text_or_position_makes_a_feature_panic() {
        let catalog = Catalog::new(weft_actions::registry());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let uri: lsp_types::Uri = "file:///w/x.yaml".parse().expect("uri");
        let mut texts: Vec<String> = ["tests/corpus/invalid", "tests/corpus/warnings", "workflows"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).expect("dir"))
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect();
        texts.push("tasks:\n  é😀: {action: \"{{ CTX.é | \", input: [\n".to_string());
        for text in &texts {
            let prefixes = (0..text.len())
                .step_by(97)
                .filter(|i| text.is_char_boundary(*i));
            for cut in prefixes.chain([text.len()]) {
                let doc = Document::new(None, text[..cut].to_string());
                let _ = completion::complete(&doc, &catalog, cut);
                let _ = diagnostics::diagnostics(&doc, &catalog, &uri);
                let _ = symbols::symbols(&doc);
            }
            let doc = Document::new(None, text.clone());
            for offset in (0..text.len() + 3).step_by(5) {
                let _ = completion::complete(&doc, &catalog, offset);
                let _ = hover::hover(&doc, &catalog, offset);
                let _ = definition::definition(&doc, offset);
            }
        }
        // Test files, as saved beside their workflows (completion reads the workflow).
        for entry in std::fs::read_dir(root.join("workflows")).expect("dir") {
            let path = entry.expect("entry").path();
            if !weft_engine::is_test_file_name(&path.to_string_lossy()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let doc = Document::new(Some(&path), text.clone());
            assert_eq!(doc.kind, FileKind::Test);
            assert!(diagnostics::diagnostics(&doc, &catalog, &uri).is_empty());
            for offset in (0..text.len() + 3).step_by(7) {
                let _ = completion::complete_test(&doc, &catalog, offset, Some(&path));
            }
        }
    }
}
