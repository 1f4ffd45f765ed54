//! A YAML document as a tree whose every node knows where it came from.
//!
//! serde_yaml loses locations below the first level of a typed model, so workflow files are
//! parsed into this tree first (with saphyr's event parser) and mapped to the model by hand;
//! every diagnostic can then point at the exact key or value. Aliases are expanded here, with
//! a budget on the total number of nodes, which is what refuses "billion laughs" documents.

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

/// A byte range in a source file, with the 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (at least 1 where the source allows it, so labels are visible).
    pub len: usize,
    /// 1-based line of the start.
    pub line: usize,
    /// 1-based column of the start, in characters.
    pub column: usize,
}

impl Span {
    /// The byte range of this span.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// How a scalar was written; templates map their error positions back through this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'...'`
    SingleQuoted,
    /// `"..."`
    DoubleQuoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

/// A node's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string, with how it was written.
    Str(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping; keys keep their order and their own spans.
    Map(Vec<(Node, Node)>),
}

/// A YAML node and its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: Kind,
    /// Where the node is in the source.
    pub span: Span,
}

impl Node {
    /// A short name of the node's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(..) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The string value, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s, _) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks up a key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Converts to JSON (keys rendered as strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            Kind::Null => J::Null,
            Kind::Bool(b) => J::Bool(*b),
            Kind::Int(i) => J::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Kind::Str(s, _) => J::String(s.clone()),
            Kind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A mapping key as text (YAML allows non-string keys; JSON does not).
    pub fn key_string(&self) -> String {
        match &self.kind {
            Kind::Str(s, _) => s.clone(),
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Seq(_) | Kind::Map(_) => format!("{}", self.to_json()),
        }
    }
}

/// Keys that appear more than once in a mapping: (first occurrence, repeated occurrence).
pub fn duplicate_keys(entries: &[(Node, Node)]) -> Vec<(&Node, &Node)> {
    let mut seen: std::collections::HashMap<String, &Node> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (k, _) in entries {
        match seen.entry(k.key_string()) {
            std::collections::hash_map::Entry::Occupied(first) => out.push((*first.get(), k)),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(k);
            }
        }
    }
    out
}

/// Why a document could not be read as a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// What went wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Stable code (`yaml::syntax`, `yaml::alias_budget`, …).
    pub code: &'static str,
    /// How to fix it, when we can say.
    pub help: Option<String>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.span.line, self.span.column
        )
    }
}

/// Limits that keep hostile documents cheap to refuse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum number of nodes after alias expansion.
    pub max_nodes: usize,
    /// Maximum nesting depth.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 200_000,
            max_depth: 128,
        }
    }
}

/// Maps saphyr's character positions to byte offsets.
struct LineIndex<'a> {
    src: &'a str,
    /// Byte offset at which each line starts (0-based line index).
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        for (i, b) in src.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        LineIndex { src, starts }
    }

    /// Byte offset of a 1-based line and 0-based character column.
    fn offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return self.src.len();
        };
        let rest = &self.src[start..];
        rest.char_indices()
            .nth(col)
            .map(|(i, _)| start + i)
            .unwrap_or_else(|| (start + rest.find('\n').unwrap_or(rest.len())).min(self.src.len()))
    }

    fn span(&self, s: YSpan) -> Span {
        let start = self.offset(s.start.line(), s.start.col());
        let end = self.offset(s.end.line(), s.end.col()).max(start);
        let mut len = end - start;
        if len == 0 && start < self.src.len() {
            len = self.src[start..].chars().next().map_or(0, char::len_utf8);
        }
        Span {
            offset: start,
            len,
            line: s.start.line(),
            column: s.start.col() + 1,
        }
    }

    fn point(&self, line: usize, col: usize) -> Span {
        let offset = self.offset(line, col).min(self.src.len());
        let len = self.src[offset..].chars().next().map_or(0, char::len_utf8);
        Span {
            offset,
            len,
            line,
            column: col + 1,
        }
    }
}

/// Parses one YAML document into a spanned tree. An empty document is `Null`.
pub fn parse(src: &str) -> Result<Node, YamlError> {
    parse_with_limits(src, Limits::default())
}

/// [`parse`] with explicit limits.
pub fn parse_with_limits(src: &str, limits: Limits) -> Result<Node, YamlError> {
    let index = LineIndex::new(src);
    let mut builder = Builder {
        index: &index,
        limits,
        anchors: Vec::new(),
        nodes: 0,
        stack: Vec::new(),
        root: None,
        documents: 0,
    };
    let parser = Parser::new_from_str(src);
    for event in parser {
        match event {
            Ok((ev, span)) => builder.on_event(ev, span)?,
            Err(e) => {
                let m = e.marker();
                return Err(YamlError {
                    message: format!("invalid YAML: {}", e.info()),
                    span: index.point(m.line(), m.col()),
                    code: "yaml::syntax",
                    help: syntax_help(e.info()),
                });
            }
        }
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Null,
        span: Span {
            offset: 0,
            len: 0,
            line: 1,
            column: 1,
        },
    }))
}

fn syntax_help(info: &str) -> Option<String> {
    if info.contains("mapping values are not allowed") {
        Some("a value that contains `: ` must be quoted, e.g. \"a: b\"".into())
    } else if info.contains("tab") {
        Some("YAML indentation uses spaces, never tabs".into())
    } else if info.contains("did not find expected") || info.contains("while parsing") {
        Some("check the indentation and that every quote and bracket is closed".into())
    } else {
        None
    }
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<Node>,
        start: Span,
    },
    Map {
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        start: Span,
    },
}

struct Builder<'i, 's> {
    index: &'i LineIndex<'s>,
    limits: Limits,
    anchors: Vec<(usize, Node, usize)>,
    nodes: usize,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
}

fn node_count(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Seq(items) => items.iter().map(node_count).sum(),
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| node_count(k) + node_count(v))
            .sum(),
        _ => 0,
    }
}

impl Builder<'_, '_> {
    fn on_event(&mut self, ev: Event<'_>, span: YSpan) -> Result<(), YamlError> {
        let sp = self.index.span(span);
        match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(YamlError {
                        message: "a workflow file holds one YAML document; found a second `---`"
                            .into(),
                        span: sp,
                        code: "yaml::multiple_documents",
                        help: Some("put each workflow in its own file".into()),
                    });
                }
                Ok(())
            }
            Event::Alias(id) => {
                let Some(pos) = self.anchors.iter().rposition(|(a, ..)| *a == id) else {
                    return Err(YamlError {
                        message: "alias refers to an unknown anchor".into(),
                        span: sp,
                        code: "yaml::syntax",
                        help: None,
                    });
                };
                self.charge(self.anchors[pos].2, sp)?;
                let mut node = self.anchors[pos].1.clone();
                node.span = sp;
                self.push(node)
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.charge(1, sp)?;
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let kind = scalar_kind(&value, style, tag.as_deref()).map_err(|m| YamlError {
                    message: m,
                    span: sp,
                    code: "yaml::tag",
                    help: Some("use plain YAML values; the only tags understood are !!str, !!int, !!float, !!bool and !!null".into()),
                })?;
                let node = Node { kind, span: sp };
                if anchor > 0 {
                    self.anchors.push((anchor, node.clone(), 1));
                }
                self.push(node)
            }
            Event::SequenceStart(anchor, _) => {
                self.charge(1, sp)?;
                self.depth_check(sp)?;
                self.stack.push(Frame::Seq {
                    anchor,
                    items: Vec::new(),
                    start: sp,
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.charge(1, sp)?;
                self.depth_check(sp)?;
                self.stack.push(Frame::Map {
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    start: sp,
                });
                Ok(())
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    anchor,
                    items,
                    start,
                }) = self.stack.pop()
                else {
                    unreachable!("the parser balances sequence events")
                };
                let node = Node {
                    kind: Kind::Seq(items),
                    span: self.extend(start, sp),
                };
                self.finish_collection(anchor, node)
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    anchor,
                    entries,
                    start,
                    ..
                }) = self.stack.pop()
                else {
                    unreachable!("the parser balances mapping events")
                };
                let node = Node {
                    kind: Kind::Map(merge_keys(entries)),
                    span: self.extend(start, sp),
                };
                self.finish_collection(anchor, node)
            }
        }
    }

    fn extend(&self, start: Span, end: Span) -> Span {
        let end_off = end.offset.max(start.offset);
        Span {
            len: (end_off - start.offset).max(start.len),
            ..start
        }
    }

    fn finish_collection(&mut self, anchor: usize, node: Node) -> Result<(), YamlError> {
        if anchor > 0 {
            let count = node_count(&node);
            self.anchors.push((anchor, node.clone(), count));
        }
        self.push(node)
    }

    fn charge(&mut self, n: usize, sp: Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError {
                message: format!(
                    "document expands to more than {} nodes (YAML aliases multiply content)",
                    self.limits.max_nodes
                ),
                span: sp,
                code: "yaml::too_large",
                help: Some(
                    "a workflow never needs this much data; remove the nested aliases (&anchor / *alias)"
                        .into(),
                ),
            });
        }
        Ok(())
    }

    fn depth_check(&self, sp: Span) -> Result<(), YamlError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(YamlError {
                message: format!("nesting deeper than {} levels", self.limits.max_depth),
                span: sp,
                code: "yaml::too_deep",
                help: None,
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        entries.push((key, node));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Applies YAML merge keys: `<<: *base` (or a list of them) contributes the entries the
/// mapping does not set itself.
fn merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| matches!(&k.kind, Kind::Str(s, Style::Plain) if s == "<<");
    if !entries
        .iter()
        .any(|(k, v)| is_merge(k) && matches!(v.kind, Kind::Map(_) | Kind::Seq(_)))
    {
        return entries;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(k, v)| is_merge(k) && matches!(v.kind, Kind::Map(_) | Kind::Seq(_)));
    for (_, source) in merges {
        let maps: Vec<Node> = match source.kind {
            Kind::Map(_) => vec![source],
            Kind::Seq(items) => items,
            _ => Vec::new(),
        };
        for map in maps {
            if let Kind::Map(inherited) = map.kind {
                for (k, v) in inherited {
                    if !own.iter().any(|(o, _)| o.key_string() == k.key_string()) {
                        own.push((k, v));
                    }
                }
            }
        }
    }
    own
}

fn scalar_kind(value: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Kind, String> {
    let s = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        ScalarStyle::Literal => Style::Literal,
        ScalarStyle::Folded => Style::Folded,
    };
    if let Some(tag) = tag {
        let name = tag
            .trim_start_matches("tag:yaml.org,2002:")
            .trim_start_matches("!!");
        return match name {
            "str" => Ok(Kind::Str(value.to_string(), s)),
            "int" => value
                .parse()
                .map(Kind::Int)
                .map_err(|_| format!("`{value}` is not an integer")),
            "float" => value
                .parse()
                .map(Kind::Float)
                .map_err(|_| format!("`{value}` is not a number")),
            "bool" => match value {
                "true" | "True" | "TRUE" => Ok(Kind::Bool(true)),
                "false" | "False" | "FALSE" => Ok(Kind::Bool(false)),
                _ => Err(format!("`{value}` is not a boolean")),
            },
            "null" => Ok(Kind::Null),
            _ => Err(format!("unsupported YAML tag `{tag}`")),
        };
    }
    if s != Style::Plain {
        return Ok(Kind::Str(value.to_string(), s));
    }
    Ok(plain_scalar(value))
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn plain_scalar(v: &str) -> Kind {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    let bytes = v.as_bytes();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits(unsigned) {
        if let Ok(i) = v.parse::<i64>() {
            return Kind::Int(i);
        }
        if let Ok(f) = v.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    if let Some(h) = v.strip_prefix("0x")
        && !h.is_empty()
        && h.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(i) = i64::from_str_radix(h, 16)
    {
        return Kind::Int(i);
    }
    if let Some(o) = v.strip_prefix("0o")
        && !o.is_empty()
        && let Ok(i) = i64::from_str_radix(o, 8)
    {
        return Kind::Int(i);
    }
    // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let first = bytes.first().copied().unwrap_or(b'x');
    if (first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.'))
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit())
        && !unsigned.starts_with(['e', 'E'])
        && let Ok(f) = v.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(v.to_string(), Style::Plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_keys_and_values() {
        let src = "a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\n";
        let root = parse(src).unwrap();
        let b = root.get("b").unwrap();
        let (ck, cv) = &b.as_map().unwrap()[0];
        assert_eq!((ck.span.line, ck.span.column), (3, 3));
        assert_eq!((cv.span.line, cv.span.column), (3, 6));
        assert_eq!(&src[cv.span.range()], "\"x\"");
        assert_eq!(cv.kind, Kind::Str("x".into(), Style::DoubleQuoted));
    }

    #[test]
    fn core_schema_scalars() {
        let root = parse("a: yes\nb: 0x1F\nc: 1.5e3\nd: ~\ne: '12'\nf: 12\ng: -3\n").unwrap();
        assert_eq!(
            root.get("a").unwrap().kind,
            Kind::Str("yes".into(), Style::Plain)
        );
        assert_eq!(root.get("b").unwrap().kind, Kind::Int(31));
        assert_eq!(root.get("c").unwrap().kind, Kind::Float(1500.0));
        assert_eq!(root.get("d").unwrap().kind, Kind::Null);
        assert_eq!(
            root.get("e").unwrap().kind,
            Kind::Str("12".into(), Style::SingleQuoted)
        );
        assert_eq!(root.get("f").unwrap().kind, Kind::Int(12));
        assert_eq!(root.get("g").unwrap().kind, Kind::Int(-3));
    }

    #[test]
    fn duplicate_keys_stay_in_the_tree_for_the_reader_to_report() {
        let root = parse("a: 1\nb: 2\na: 3\n").unwrap();
        let dups = duplicate_keys(root.as_map().unwrap());
        assert_eq!(dups.len(), 1);
        assert_eq!((dups[0].1.span.line, dups[0].1.span.column), (3, 1));
        assert_eq!(root.get("a").unwrap().kind, Kind::Int(1));
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_set() {
        let root =
            parse("base: &b { retry: 3, timeout: 30s }\ntask:\n  <<: *b\n  timeout: 5s\n").unwrap();
        let t = root.get("task").unwrap().to_json();
        assert_eq!(t, serde_json::json!({"timeout": "5s", "retry": 3}));
    }

    #[test]
    fn aliases_expand_within_budget() {
        let root = parse("x: &a [1, 2]\ny: *a\n").unwrap();
        assert_eq!(root.get("y").unwrap().to_json(), serde_json::json!([1, 2]));
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut src = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let err = parse(&src).unwrap_err();
        assert_eq!(err.code, "yaml::too_large");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.code, "yaml::syntax");
        assert!(err.span.line >= 1);
    }

    #[test]
    fn multibyte_text_keeps_byte_offsets_right() {
        let src = "title: \"héllo wörld\"\nnext: x\n";
        let root = parse(src).unwrap();
        let n = root.get("next").unwrap();
        assert_eq!(&src[n.span.range()], "x");
    }
}
