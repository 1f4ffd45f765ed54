//! `weft test --update`: writes what each case's execution did (its status and output) into
//! the case's `expect:`, snapshot style, leaving the rest of the file as it was written.

use serde_json::{Map, Value};
use weft_engine::yaml::{Kind, Node};

use super::file::TestFile;
use super::run::FileOutcome;

/// The test file's text with each run case's `expect.status` and `expect.output` set to what
/// happened; `None` when nothing changes.
pub fn updated(file: &TestFile, outcome: &FileOutcome) -> Option<String> {
    let src = &file.source;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for case in &file.cases {
        let Some(seen) = outcome
            .cases
            .iter()
            .find(|c| c.name == case.name)
            .and_then(|c| c.observed.as_ref())
        else {
            continue;
        };
        let mut want = Map::new();
        want.insert("status".into(), Value::String(seen.status.clone()));
        if !seen.output.is_null() {
            want.insert("output".into(), seen.output.clone());
        }
        let Some(entries) = case.node.as_map() else {
            continue;
        };
        match entries.iter().find(|(k, _)| k.as_str() == Some("expect")) {
            Some((_, expect)) if is_flow(src, expect) || expect.as_map().is_none() => {
                let mut merged = match expect.to_json() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                merged.extend(want);
                let (start, end) = extent(src, expect);
                edits.push((start, end, flow(&Value::Object(merged))));
            }
            Some((_, expect)) => {
                let inner = expect.as_map().unwrap_or_default();
                let indent = inner.first().map_or(0, |(k, _)| k.span.column - 1);
                for (key, value) in want {
                    match inner.iter().find(|(k, _)| k.as_str() == Some(key.as_str())) {
                        Some((_, old)) => {
                            let (start, end) = extent(src, old);
                            edits.push((start, end, flow(&value)));
                        }
                        None => {
                            let at = line_end(src, extent(src, expect).1);
                            edits.push((
                                at,
                                at,
                                format!("\n{}{key}: {}", " ".repeat(indent), flow(&value)),
                            ));
                        }
                    }
                }
            }
            None => {
                let indent = entries.first().map_or(0, |(k, _)| k.span.column - 1);
                let last = entries.iter().map(|(_, v)| extent(src, v).1).max();
                let at = line_end(src, last.unwrap_or(case.node.span.offset));
                let pad = " ".repeat(indent);
                let mut text = format!("\n{pad}expect:");
                for (key, value) in want {
                    text.push_str(&format!("\n{pad}  {key}: {}", flow(&value)));
                }
                edits.push((at, at, text));
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = src.clone();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    (out != *src).then_some(out)
}

/// A value as one line of YAML (JSON is YAML's flow style).
fn flow(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn is_flow(src: &str, node: &Node) -> bool {
    matches!(src.as_bytes().get(node.span.offset), Some(b'{' | b'['))
}

/// The byte range a value is written in: a flow collection up to its closing bracket, a
/// block collection up to the end of its last value, a scalar as it is spanned.
fn extent(src: &str, node: &Node) -> (usize, usize) {
    let start = node.span.offset;
    if is_flow(src, node) {
        let end = node.span.offset + node.span.len;
        let close = if src.as_bytes().get(start) == Some(&b'{') {
            '}'
        } else {
            ']'
        };
        let end = src[end.min(src.len())..]
            .find(close)
            .map_or(end, |i| end + i + 1);
        return (start, end.min(src.len()));
    }
    (start, last_end(node).min(src.len()))
}

fn last_end(node: &Node) -> usize {
    let own = node.span.offset + node.span.len;
    match &node.kind {
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| last_end(k).max(last_end(v)))
            .max()
            .unwrap_or(node.span.offset),
        Kind::Seq(items) => items.iter().map(last_end).max().unwrap_or(node.span.offset),
        _ => own,
    }
}

fn line_end(src: &str, at: usize) -> usize {
    let at = at.min(src.len());
    src[at..].find('\n').map_or(src.len(), |i| at + i)
}
