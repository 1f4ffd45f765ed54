//! Where the cursor is, read from indentation and the text before it rather than from a YAML
//! parse: typing leaves the document half-written (`action: autotask.` then nothing, a key
//! without its colon yet), and completion must still know it is in task `x`'s `input:`.

use super::text::Lines;

/// One line as far as YAML's block structure goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line<'a> {
    /// Columns (bytes) of the `- ` sequence markers the line opens with.
    dashes: [Option<usize>; 4],
    /// Column where the content after indentation and markers starts.
    indent: usize,
    /// The mapping key the line starts with, if any.
    key: Option<&'a str>,
    /// What follows `key:` (or the whole content when there is no key), trimmed.
    value: &'a str,
    /// Column of `value`.
    value_col: usize,
    /// Nothing but whitespace or a comment.
    blank: bool,
}

impl Line<'_> {
    fn first_dash(&self) -> Option<usize> {
        self.dashes[0]
    }
}

fn read_line(text: &str) -> Line<'_> {
    let mut col = text.len() - text.trim_start_matches(' ').len();
    let mut dashes = [None; 4];
    let mut n = 0;
    while let Some(rest) = text[col..].strip_prefix('-') {
        if !(rest.is_empty() || rest.starts_with(' ')) {
            break;
        }
        if n < dashes.len() {
            dashes[n] = Some(col);
            n += 1;
        }
        col += 1 + (rest.len() - rest.trim_start_matches(' ').len());
    }
    let content = &text[col..];
    let blank = content.trim().is_empty() && n == 0 || content.starts_with('#');
    let key_end = key_end(content);
    let (key, value_col) = match key_end {
        Some(end) => {
            let key = content[..end]
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            let after = &content[end + 1..];
            (
                Some(key),
                col + end + 1 + (after.len() - after.trim_start().len()),
            )
        }
        None => (None, col),
    };
    Line {
        dashes,
        indent: col,
        key,
        value: text[value_col..].trim_end(),
        value_col,
        blank,
    }
}

/// Where the `:` ending a mapping key is, if the content starts with a key.
fn key_end(content: &str) -> Option<usize> {
    if content.starts_with(['{', '[', '"', '\'', '#', '|', '>'])
        && !content.starts_with(['"', '\''])
    {
        return None;
    }
    let bytes = content.as_bytes();
    let mut i = 0;
    if let Some(q @ (b'"' | b'\'')) = bytes.first().copied() {
        i = 1 + content[1..].find(q as char)?;
    }
    while i < bytes.len() {
        match bytes[i] {
            b':' if bytes.get(i + 1).is_none_or(|b| *b == b' ' || *b == b'\t') => {
                return Some(i);
            }
            b'{' | b'[' | b'#' | b'"' | b'\'' if i > 0 && bytes[i - 1] == b' ' => return None,
            _ => i += 1,
        }
    }
    None
}

/// A key above the cursor that encloses it, or `-` for a sequence item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    pub key: String,
    /// The 0-based line it is written on.
    pub line: usize,
}

/// What is being typed at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spot {
    /// A mapping key (`partial` typed so far).
    Key { partial: String },
    /// The value of `key:` (`partial` typed so far; inside `[...]`, the current item).
    Value { key: String, partial: String },
    /// A sequence item without a key (`- partial`).
    Item { partial: String },
    /// Inside `{{ … }}` or `{% … %}`: the expression text from its start to the cursor.
    Template { expr: String },
}

/// The cursor's place in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Enclosing keys, outermost first (`["tasks", "fetch", "input"]`).
    pub path: Vec<Ancestor>,
    pub spot: Spot,
    /// Byte offset where the word being typed starts (what a completion replaces).
    pub word_start: usize,
}

impl Cursor {
    /// The enclosing keys as strings, outermost first.
    pub fn keys(&self) -> Vec<&str> {
        self.path.iter().map(|a| a.key.as_str()).collect()
    }
}

/// Reads the cursor's place at byte `offset` of `text`.
pub fn cursor(text: &str, offset: usize) -> Cursor {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let lines = Lines::new(text);
    let line_no = lines.line_of(offset);
    let prefix = &text[lines.start(line_no)..offset];
    let here = read_line(prefix);
    let mut path = ancestors(&lines, line_no, &here);
    if let Some(expr) = open_template(&text[..offset]) {
        let word = expr.len() - expr.trim_end_matches(is_word_char).len();
        return Cursor {
            path,
            spot: Spot::Template {
                expr: expr.to_string(),
            },
            word_start: offset - word,
        };
    }
    let word_len = |s: &str| {
        s.len()
            - s.trim_end_matches(|c: char| !c.is_whitespace() && !"[],{}:\"'".contains(c))
                .len()
    };
    let spot = match here.key {
        Some(key) => {
            let value = here.value;
            if let Some(inner) = value.strip_prefix('{') {
                // A flow mapping: `input: { message: "hi", ti`.
                path.push(Ancestor {
                    key: key.to_string(),
                    line: line_no,
                });
                let entry = inner.rsplit(',').next().unwrap_or("").trim_start();
                match entry.split_once(':') {
                    Some((k, v)) => Spot::Value {
                        key: k.trim().to_string(),
                        partial: v.trim_start().to_string(),
                    },
                    None => Spot::Key {
                        partial: entry.to_string(),
                    },
                }
            } else if let Some(inner) = value.strip_prefix('[') {
                Spot::Value {
                    key: key.to_string(),
                    partial: inner.rsplit(',').next().unwrap_or("").trim().to_string(),
                }
            } else {
                Spot::Value {
                    key: key.to_string(),
                    partial: value.to_string(),
                }
            }
        }
        None if here.first_dash().is_some() => Spot::Item {
            partial: here.value.to_string(),
        },
        None => Spot::Key {
            partial: here.value.to_string(),
        },
    };
    Cursor {
        path,
        // The word ends at the cursor: after a space nothing is being typed, however the
        // line's value reads trimmed.
        word_start: offset - word_len(prefix),
        spot,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The keys enclosing line `line_no` (whose text before the cursor reads as `here`).
fn ancestors(lines: &Lines<'_>, line_no: usize, here: &Line<'_>) -> Vec<Ancestor> {
    let mut out = Vec::new();
    let items = |line: &Line<'_>, limit: usize, at: usize, out: &mut Vec<Ancestor>| {
        for _ in line.dashes.iter().flatten().filter(|d| **d < limit) {
            out.push(Ancestor {
                key: "-".to_string(),
                line: at,
            });
        }
    };
    items(here, usize::MAX, line_no, &mut out);
    let mut limit = here.first_dash().unwrap_or(here.indent);
    for at in (0..line_no).rev() {
        if limit == 0 {
            break;
        }
        let line = read_line(lines.line(at));
        if line.blank {
            continue;
        }
        match line.key {
            Some(key) if line.indent < limit => {
                out.push(Ancestor {
                    key: key.to_string(),
                    line: at,
                });
                items(&line, usize::MAX, at, &mut out);
                limit = line.first_dash().unwrap_or(line.indent);
            }
            _ => {
                if line.first_dash().is_some_and(|d| d < limit) {
                    items(&line, limit, at, &mut out);
                    limit = line.first_dash().unwrap_or(limit);
                } else if line.key.is_none() && line.indent < limit && line.first_dash().is_none() {
                    // A scalar continuation less indented than us: the structure above it
                    // is not ours to guess.
                    break;
                }
            }
        }
    }
    out.reverse();
    out
}

/// The expression of a `{{` or `{%` opened before the end of `before` and not yet closed.
fn open_template(before: &str) -> Option<&str> {
    // Templates are short; looking further back only costs time on large files.
    let mut from = before.len().saturating_sub(4096);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    let window = &before[from..];
    let open = window.rfind("{{").max(window.rfind("{%"))?;
    let expr = &window[open + 2..];
    (!expr.contains("}}") && !expr.contains("%}")).then_some(expr)
}

/// What a name written in a template expression after `before` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind<'a> {
    /// After `|`.
    Filter,
    /// After `is` or `is not`.
    Test,
    /// After a dotted name and `.`: that name (`CTX`, `TASKS.fetch`).
    Member(&'a str),
    /// Anything else: a name in scope.
    Root,
}

pub fn name_kind(before: &str) -> NameKind<'_> {
    if let Some(q) = qualifier(before) {
        return NameKind::Member(q);
    }
    let before = before.trim_end();
    if before.ends_with('|') {
        return NameKind::Filter;
    }
    let mut words = before.rsplit(char::is_whitespace);
    match (words.next(), words.next()) {
        (Some("is"), _) | (Some("not"), Some("is")) => NameKind::Test,
        _ => NameKind::Root,
    }
}

/// The dotted name `before` ends with, followed by a `.`: for `{{ CTX.ticket.`,
/// `Some("CTX.ticket")`.
pub fn qualifier(before: &str) -> Option<&str> {
    let before = before.strip_suffix('.')?;
    let is_part = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let q = &before[before.trim_end_matches(is_part).len()..];
    (!q.is_empty()).then_some(q)
}

/// The value of `key` directly inside the block that starts at line `parent` (a task's
/// `action`, a trigger's `type`), read from the text; for a `-` item, the item's own line
/// counts too.
pub fn child_value<'a>(text: &'a str, parent: usize, key: &str) -> Option<&'a str> {
    let lines = Lines::new(text);
    let head = read_line(lines.line(parent));
    // `- type: cron` opens the item: its own key is one of the item's.
    if head.first_dash().is_some() && head.key == Some(key) {
        return Some(unquote(head.value));
    }
    let parent_indent = head.first_dash().unwrap_or(head.indent);
    let mut child_indent = None;
    for at in parent + 1..lines.count() {
        let line = read_line(lines.line(at));
        if line.blank {
            continue;
        }
        let indent = line.first_dash().unwrap_or(line.indent);
        if indent <= parent_indent {
            break;
        }
        if line.first_dash().is_some() {
            continue;
        }
        let first = *child_indent.get_or_insert(line.indent);
        if line.indent == first && line.key == Some(key) {
            return Some(unquote(line.value));
        }
    }
    None
}

fn unquote(s: &str) -> &str {
    let s = s.split(" #").next().unwrap_or(s).trim();
    s.trim_matches(|c| c == '"' || c == '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cursor at `‸` in `src`.
    fn at(src: &str) -> (String, Cursor) {
        let offset = src.find('‸').expect("a cursor");
        let text = src.replacen('‸', "", 1);
        let c = cursor(&text, offset);
        (text, c)
    }

    #[test]
    fn action_values_and_input_keys() {
        let (_, c) = at("name: x\ntasks:\n  fetch:\n    action: autotask.‸\n");
        assert_eq!(c.keys(), ["tasks", "fetch"]);
        assert_eq!(
            c.spot,
            Spot::Value {
                key: "action".into(),
                partial: "autotask.".into()
            }
        );
        assert_eq!(
            c.word_start,
            "name: x\ntasks:\n  fetch:\n    action: ".len()
        );

        let (text, c) = at("tasks:\n  fetch:\n    action: core.echo\n    input:\n      mes‸\n");
        assert_eq!(c.keys(), ["tasks", "fetch", "input"]);
        assert_eq!(
            c.spot,
            Spot::Key {
                partial: "mes".into()
            }
        );
        assert_eq!(
            child_value(&text, c.path[1].line, "action"),
            Some("core.echo")
        );

        let (_, c) = at("tasks:\n  fetch:\n    input: { message: hi, ‸\n");
        assert_eq!(c.keys(), ["tasks", "fetch", "input"]);
        assert_eq!(c.spot, Spot::Key { partial: "".into() });

        // After a space the word being typed is empty: a completion is inserted, replacing
        // nothing written before it.
        let src = "tasks:\n  fetch:\n    action: core.noop ‸\n";
        let (_, c) = at(src);
        assert_eq!(c.word_start, src.find('‸').unwrap());
        let src = "tasks:\n  fetch:\n    input:\n      mes ‸\n";
        let (_, c) = at(src);
        assert_eq!(c.word_start, src.find('‸').unwrap());
    }

    #[test]
    fn routes_and_sequence_items() {
        let (_, c) = at("tasks:\n  a:\n    next:\n      - when: x\n        do: [b, c‸\n");
        assert_eq!(c.keys(), ["tasks", "a", "next", "-"]);
        assert_eq!(
            c.spot,
            Spot::Value {
                key: "do".into(),
                partial: "c".into()
            }
        );
        let (_, c) = at("tasks:\n  a:\n    next:\n      - do:\n          - ‸\n");
        assert_eq!(c.keys(), ["tasks", "a", "next", "-", "do", "-"]);
        assert_eq!(c.spot, Spot::Item { partial: "".into() });

        let (text, c) = at("triggers:\n  - name: n\n    type: cron\n    sch‸\n");
        assert_eq!(c.keys(), ["triggers", "-"]);
        assert_eq!(child_value(&text, c.path[1].line, "type"), Some("cron"));
    }

    #[test]
    fn templates_are_found_across_quotes_and_lines() {
        let (_, c) = at("vars:\n  a: \"{{ CTX.x | trunc‸\"\n");
        assert_eq!(
            c.spot,
            Spot::Template {
                expr: " CTX.x | trunc".into()
            }
        );
        let (_, c) = at("vars:\n  a: |\n    {% if x is def‸\n");
        assert!(matches!(c.spot, Spot::Template { .. }));
        let (_, c) = at("vars:\n  a: \"{{ x }} ‸\"\n");
        assert!(matches!(c.spot, Spot::Value { .. }));
    }

    #[test]
    fn what_a_name_in_a_template_is() {
        assert_eq!(name_kind(" x | "), NameKind::Filter);
        assert_eq!(name_kind(" x|"), NameKind::Filter);
        assert_eq!(name_kind(" x is not "), NameKind::Test);
        assert_eq!(name_kind(" x is "), NameKind::Test);
        assert_eq!(name_kind(" CTX.a."), NameKind::Member("CTX.a"));
        assert_eq!(name_kind(" this "), NameKind::Root);
        assert_eq!(name_kind(""), NameKind::Root);
    }

    #[test]
    fn any_text_and_offset_is_read_without_panicking() {
        let texts = [
            "",
            "\n\n",
            "é:\n  - - x: [",
            "{{",
            "- - - - - - a",
            ":\n:",
            "a: '\n",
        ];
        for text in texts {
            for offset in 0..=text.len() + 2 {
                let c = cursor(text, offset);
                let _ = c.keys();
                for a in &c.path {
                    let _ = child_value(text, a.line, "action");
                }
            }
        }
    }
}
