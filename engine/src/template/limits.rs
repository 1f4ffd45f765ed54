//! Caps on what one filter, test, function or method call may build.
//!
//! The fuel limit ([`super::FUEL`]) stops a template that runs too long, but a single call can
//! ask for a huge amount of memory in one go before any fuel is charged: `'x' | center(10**12)`
//! used to abort the whole process on the failed allocation, taking every tenant's work with
//! it (and a resume would have repeated it). Every size that comes from data — a width, an
//! indentation, a count, a separator repeated once per item — is therefore checked against the
//! caps below *before* anything is allocated, and the call fails with an error that names the
//! filter, what was refused and the limit.
//!
//! The caps are far above what a workflow needs: weft's webhook and HTTP bodies are 1 MiB by
//! default, and nobody centres text in a field 65,536 characters wide.

use std::fmt;
use std::io;

use minijinja::{Error, ErrorKind};

/// The widest width, indentation or precision a filter, function or method accepts
/// (`center(width)`, `indent(width)`, `to_json(indent=…)`, `'%*d'`-style widths in `format`…).
pub const MAX_WIDTH: usize = 1 << 16;

/// The largest string, in bytes, a filter, function or method may build (16 MiB).
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// The most items a filter may build or walk in one call (list items, CSV cells, regex
/// matches, elements visited while merging or flattening).
pub const MAX_ITEMS: usize = 1 << 20;

/// The largest value, measured as its JSON text, that weft converts to data: a template's
/// native result, or the input of a filter that works on JSON data (`to_json`, `json_query`…).
/// Above [`MAX_OUTPUT_BYTES`] so that large results can still be passed along unchanged.
pub const MAX_DATA_BYTES: usize = 64 << 20;

/// The deepest nesting of lists and maps weft's own code walks. JSON and YAML parsed from
/// data stop at 128 levels already; this leaves room for a few levels added by a template.
pub const MAX_DEPTH: usize = 192;

fn refused(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Refuses a width-like argument above [`MAX_WIDTH`]: `center: width 1000000000000 is larger
/// than the limit of 65536 characters`.
pub(super) fn check_width(filter: &str, what: &str, n: usize) -> Result<usize, Error> {
    if n > MAX_WIDTH {
        Err(width_error(filter, what, &n.to_string()))
    } else {
        Ok(n)
    }
}

/// The error for a width-like argument above [`MAX_WIDTH`], given as text (it may not even fit
/// in a `usize`).
pub(super) fn width_error(filter: &str, what: &str, n: &str) -> Error {
    refused(format!(
        "{filter}: {what} {n} is larger than the limit of {MAX_WIDTH} characters"
    ))
}

/// The error for a string that would be larger than [`MAX_OUTPUT_BYTES`].
pub(super) fn output_error(filter: &str) -> Error {
    refused(format!(
        "{filter}: the result would be larger than the limit of {MAX_OUTPUT_BYTES} bytes"
    ))
}

/// Refuses a string of `n` bytes (or an estimate of one) above [`MAX_OUTPUT_BYTES`].
pub(super) fn check_output(filter: &str, n: usize) -> Result<(), Error> {
    if n > MAX_OUTPUT_BYTES {
        Err(output_error(filter))
    } else {
        Ok(())
    }
}

/// The error for more than [`MAX_ITEMS`] items.
pub(super) fn items_error(filter: &str, what: &str) -> Error {
    refused(format!(
        "{filter}: more than the limit of {MAX_ITEMS} {what}"
    ))
}

/// The error for data nested more than [`MAX_DEPTH`] levels deep.
pub(super) fn depth_error(filter: &str) -> Error {
    refused(format!(
        "{filter}: the value is nested more than the limit of {MAX_DEPTH} levels deep"
    ))
}

/// The error for data larger than [`MAX_DATA_BYTES`].
pub(super) fn data_error(filter: &str) -> Error {
    refused(format!(
        "{filter}: the value is larger than the limit of {MAX_DATA_BYTES} bytes (as JSON)"
    ))
}

/// A byte sink that refuses to grow beyond a limit: serializers write into it and fail with
/// an I/O error (and `hit` set) instead of building a huge string.
pub(super) struct LimitedBuf {
    pub(super) buf: Vec<u8>,
    pub(super) hit: bool,
    limit: usize,
}

impl LimitedBuf {
    pub(super) fn new(limit: usize) -> Self {
        LimitedBuf {
            buf: Vec::new(),
            hit: false,
            limit,
        }
    }
}

impl io::Write for LimitedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.hit = true;
            return Err(io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `fmt::Write` string that refuses to grow beyond [`MAX_OUTPUT_BYTES`] (for `strftime`
/// and other `Display` implementations whose output size depends on a format from data).
#[derive(Default)]
pub(super) struct LimitedString {
    pub(super) out: String,
    pub(super) over: bool,
}

impl fmt::Write for LimitedString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len().saturating_add(s.len()) > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// The widths and precisions written in a printf-style (`'%-10.3f'`) or `str.format`-style
/// (`'{:>10}'`) format string, checked against [`MAX_WIDTH`], with their sum checked against
/// [`MAX_OUTPUT_BYTES`]. Conservative: every run of digits inside a conversion specifier
/// counts (a digit fill character too), which can only make the check stricter.
pub(super) fn check_format_string(filter: &str, fmt: &str, printf: bool) -> Result<(), Error> {
    let bytes = fmt.as_bytes();
    let mut total = fmt.len();
    let mut i = 0;
    let mut spec_digits = |spec: &[u8]| -> Result<(), Error> {
        let mut j = 0;
        while j < spec.len() {
            if spec[j].is_ascii_digit() {
                let start = j;
                while j < spec.len() && spec[j].is_ascii_digit() {
                    j += 1;
                }
                let digits = std::str::from_utf8(&spec[start..j]).unwrap_or("0");
                let digits = digits.trim_start_matches('0');
                let n = if digits.len() > 9 {
                    return Err(width_error(filter, "width or precision", digits));
                } else {
                    digits.parse::<usize>().unwrap_or(0)
                };
                if n > MAX_WIDTH {
                    return Err(width_error(filter, "width or precision", digits));
                }
                total = total.saturating_add(n);
            } else {
                j += 1;
            }
        }
        Ok(())
    };
    while i < bytes.len() {
        if printf {
            if bytes[i] != b'%' {
                i += 1;
                continue;
            }
            i += 1;
            if bytes.get(i) == Some(&b'%') {
                // `%%` is a literal percent sign
                i += 1;
                continue;
            }
            if bytes.get(i) == Some(&b'(') {
                while i < bytes.len() && bytes[i] != b')' {
                    i += 1;
                }
                i += 1;
            }
            let start = i.min(bytes.len());
            while i < bytes.len() && b"#0- +0123456789.*hlL".contains(&bytes[i]) {
                i += 1;
            }
            spec_digits(&bytes[start..i])?;
        } else {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
                b'{' => {
                    let end = fmt[i..].find('}').map_or(bytes.len(), |e| i + e);
                    if let Some(colon) = fmt[i..end].find(':') {
                        spec_digits(&bytes[i + colon + 1..end])?;
                    }
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
    }
    check_output(filter, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings_are_checked_only_inside_specifiers() {
        let ok = |f: &str, printf: bool| check_format_string("format", f, printf).is_ok();
        assert!(ok("%5.2f and %-10s, 100%% of 1000000000000", true));
        assert!(ok("%%1000000000000d", true));
        assert!(ok("%(1000000000000)s", true));
        assert!(!ok("%1000000000000d", true));
        assert!(!ok("%.65537f", true));
        assert!(!ok("%0100000000d", true));
        assert!(ok(
            "{0:>10} {1000000000000} {{:1000000000000}} {:%Y-%m-%d}",
            false
        ));
        assert!(!ok("{:1000000000000}", false));
        assert!(!ok("{:>.65537}", false));
        assert!(ok("{:65536}{:65536}", false));
        let err = check_format_string("format", "%99999999999999999999d", true).unwrap_err();
        assert!(
            err.to_string().contains(
                "width or precision 99999999999999999999 is larger than the limit of 65536"
            ),
            "{err}"
        );
    }

    #[test]
    fn limited_sinks_stop_at_their_limit() {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let mut buf = LimitedBuf::new(4);
        assert!(buf.write_all(b"abcd").is_ok());
        assert!(buf.write_all(b"e").is_err());
        assert!(buf.hit);
        let mut s = LimitedString::default();
        assert!(write!(s, "{}", "x".repeat(MAX_OUTPUT_BYTES)).is_ok());
        assert!(write!(s, "y").is_err());
        assert!(s.over);
    }
}
