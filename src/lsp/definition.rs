//! Go to definition: a route's target → the task; `CTX.x` → where x is defined or published;
//! `TASKS.x` → the task; `core.workflow`'s `workflow:` → the sub-workflow's file.

use std::path::{Path, PathBuf};

use weft_engine::yaml::Span;

use super::{Document, qualifier, word_at};

/// Where a definition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// In the same document.
    Here(Span),
    /// The workflow of this `name:`, in a file near the document (see [`find_workflow`]).
    Workflow(String),
}

/// The definitions of what is at byte `offset`.
pub fn definition(doc: &Document, offset: usize) -> Vec<Target> {
    let Some(outline) = doc.fresh_outline() else {
        return Vec::new();
    };
    let contains = |span: Span| span.range().contains(&offset);
    for task in &outline.tasks {
        if let Some((name, _)) = task.targets.iter().find(|(_, s)| contains(*s)) {
            return outline
                .task(name)
                .map(|t| Target::Here(t.key))
                .into_iter()
                .collect();
        }
        let calls_workflow = task.action.as_ref().is_some_and(|a| a.0 == "core.workflow");
        if let Some((_, _, value)) = task
            .input
            .iter()
            .find(|(k, _, v)| calls_workflow && k == "workflow" && contains(v.span))
        {
            return value
                .as_str()
                .map(|name| Target::Workflow(name.to_string()))
                .into_iter()
                .collect();
        }
    }
    let Some(word) = word_at(&doc.text, offset) else {
        return Vec::new();
    };
    let name = &doc.text[word.clone()];
    match qualifier(&doc.text, word.start) {
        Some("CTX") => outline
            .ctx_defs(name)
            .map(|d| Target::Here(d.span))
            .collect(),
        Some("TASKS") => outline
            .task(name)
            .map(|t| Target::Here(t.key))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// The file defining workflow `name` and the span of its `name:` value: searched in `dir`
/// (the open file's folder), then in the folders beside it and beside each of its parents
/// (a crate's `workflows/` next to its `forms/`, a repository's `workflows/` seen from
/// `tests/`), nearest first. Unreadable files and folders are skipped.
pub fn find_workflow(dir: &Path, name: &str) -> Option<(PathBuf, Span)> {
    let mut searched = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    let mut up = dir;
    // Two levels up covers a crate's layout and a repository's; further would walk the disk.
    for _ in 0..2 {
        let Some(parent) = up.parent() else { break };
        folders.extend(subfolders(parent));
        up = parent;
    }
    for folder in folders {
        if searched.contains(&folder) {
            continue;
        }
        if let Some(found) = workflow_in(&folder, name) {
            return Some(found);
        }
        searched.push(folder);
    }
    None
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    out
}

fn workflow_in(dir: &Path, name: &str) -> Option<(PathBuf, Span)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files.into_iter().find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        // Parse only the files that can be it.
        if !text
            .lines()
            .any(|l| l.starts_with("name:") && l.contains(name))
        {
            return None;
        }
        let root = weft_engine::yaml::parse(&text).ok()?;
        let value = root.get("name").filter(|n| n.as_str() == Some(name))?;
        root.get("tasks")?;
        Some((path, value.span))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = "name: x\ninput: [alert]\ntasks:\n  a:\n    action: core.workflow\n    input: { workflow: child, input: {} }\n    next:\n      - publish: { alert: 1 }\n        do: [b]\n      - b\n  b:\n    action: core.echo\n    input:\n      message: \"{{ CTX.alert }} {{ TASKS.a.result }}\"\n";

    fn at(needle: &str, nth: usize) -> Vec<Target> {
        let doc = Document::new(None, WF.to_string());
        let offset = WF.match_indices(needle).nth(nth).expect("needle").0;
        definition(&doc, offset)
    }

    fn key_of(task: &str) -> Target {
        let doc = Document::new(None, WF.to_string());
        Target::Here(doc.outline.unwrap().task(task).unwrap().key)
    }

    #[test]
    fn targets_ctx_tasks_and_sub_workflows() {
        assert_eq!(at("b]", 0), [key_of("b")]);
        assert_eq!(
            at("- b", 0),
            Vec::<Target>::new(),
            "the dash is not the name"
        );
        assert_eq!(at("b\n  b:", 0), [key_of("b")]);
        assert_eq!(at("a.result", 0), [key_of("a")]);
        let ctx = at("alert }}", 0);
        assert_eq!(ctx.len(), 2, "the input and the publish: {ctx:?}");
        assert_eq!(at("child", 0), [Target::Workflow("child".into())]);
        assert!(at("name", 0).is_empty());
    }

    #[test]
    fn sub_workflows_are_found_beside_and_above() {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("workflows");
        let tests = dir.path().join("tests").join("cases");
        std::fs::create_dir_all(&flows).unwrap();
        std::fs::create_dir_all(&tests).unwrap();
        let child = "name: child\ntasks:\n  a:\n    action: core.noop\n";
        std::fs::write(flows.join("child.yaml"), child).unwrap();
        std::fs::write(flows.join("broken.yaml"), "name: child\n  : [").unwrap();
        let (path, span) = find_workflow(&flows, "child").unwrap();
        assert_eq!(path, flows.join("child.yaml"));
        assert_eq!(&child[span.range()], "child");
        assert_eq!(
            find_workflow(&tests, "child").unwrap().0,
            flows.join("child.yaml")
        );
        assert!(find_workflow(&flows, "nope").is_none());
    }
}
