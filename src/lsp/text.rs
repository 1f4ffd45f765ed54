//! Positions: the engine counts bytes (and 1-based lines and character columns), LSP counts
//! 0-based lines and UTF-16 code units. Every conversion clamps, so a position past the end
//! of a line or of the file (an editor a keystroke ahead of us) lands on the nearest place
//! instead of panicking.

use lsp_types::{Position, Range};
use weft_engine::yaml::Span;

/// Where each line of a text starts.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    /// The text of 0-based line `line` without its line break (empty past the end).
    pub fn line(&self, line: usize) -> &'a str {
        let Some(&start) = self.starts.get(line) else {
            return "";
        };
        let end = self
            .starts
            .get(line + 1)
            .map_or(self.text.len(), |next| next - 1);
        self.text[start..end]
            .strip_suffix('\r')
            .unwrap_or(&self.text[start..end])
    }

    pub fn count(&self) -> usize {
        self.starts.len()
    }

    /// The byte offset where 0-based line `line` starts.
    pub fn start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.text.len())
    }

    /// The 0-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// The LSP position of a byte offset (rounded down to a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.starts[line];
        let character = self.text[start..offset].encode_utf16().count();
        Position::new(to_u32(line), to_u32(character))
    }

    /// The byte offset of an LSP position; a character past the line's end is its end, a
    /// line past the text's end is the text's end.
    pub fn offset(&self, pos: Position) -> usize {
        let line = pos.line as usize;
        if line >= self.starts.len() {
            return self.text.len();
        }
        let text = self.line(line);
        let mut units = 0;
        for (i, c) in text.char_indices() {
            if units >= pos.character as usize {
                return self.starts[line] + i;
            }
            units += c.len_utf16();
        }
        self.starts[line] + text.len()
    }

    /// The LSP position of a 1-based line and 1-based character column (how the engine and
    /// `weft validate` name a place).
    pub fn line_column(&self, line: usize, column: usize) -> Position {
        let line = line.saturating_sub(1);
        if line >= self.starts.len() {
            return self.position(self.text.len());
        }
        let character = self
            .line(line)
            .chars()
            .take(column.saturating_sub(1))
            .map(char::len_utf16)
            .sum::<usize>();
        Position::new(to_u32(line), to_u32(character))
    }

    /// The range of an engine span: it starts where `weft validate` says (line, column) and
    /// ends after its bytes.
    pub fn range(&self, span: Span) -> Range {
        let start = if span.line == 0 {
            self.position(span.offset)
        } else {
            self.line_column(span.line, span.column)
        };
        let end = self
            .position(span.offset.saturating_add(span.len))
            .max(start);
        Range::new(start, end)
    }

    /// The range of a byte range.
    pub fn byte_range(&self, range: std::ops::Range<usize>) -> Range {
        Range::new(self.position(range.start), self.position(range.end))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "a: é😀x\nb: 1\r\nc";
        let lines = Lines::new(text);
        let x = text.find('x').unwrap();
        // é is one unit, 😀 two.
        assert_eq!(lines.position(x), Position::new(0, 6));
        assert_eq!(lines.offset(Position::new(0, 6)), x);
        assert_eq!(lines.line(1), "b: 1");
        assert_eq!(lines.position(text.len()), Position::new(2, 1));
        assert_eq!(lines.line_column(1, 6), Position::new(0, 6));
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let text = "ab\ncd";
        let lines = Lines::new(text);
        assert_eq!(lines.offset(Position::new(0, 99)), 2);
        assert_eq!(lines.offset(Position::new(99, 0)), text.len());
        assert_eq!(lines.position(999), Position::new(1, 2));
        // Inside a multibyte character: rounded down to its start.
        let lines = Lines::new("é");
        assert_eq!(lines.position(1), Position::new(0, 0));
        let span = Span {
            offset: 1,
            len: 100,
            line: 9,
            column: 9,
        };
        // A span past the end of the text is an empty range at its end.
        assert_eq!(
            lines.range(span),
            Range::new(Position::new(0, 1), Position::new(0, 1))
        );
    }
}
