//! Capped versions of the minijinja and minijinja-contrib built-ins whose output size is set
//! by an argument rather than by the size of their input: `indent(width)`, `tojson(indent)`,
//! `pprint`, `format` (widths and precisions in the format string), `join` and `replace` (a
//! string repeated once per item or match), `batch`/`slice` (counts), `wordwrap`
//! (`wrapstring` repeated once per line) and the Python string methods `str.format`,
//! `str.replace` and `str.join`.
//!
//! Each checks the size its arguments ask for against [`super::limits`] before anything is
//! built and then hands the call to the original, so results are unchanged for normal input.
//! (The built-ins charge fuel for what they build, but the fuel budget is hundreds of
//! megabytes; these caps are tighter and their errors say what was refused.)
//!
//! Fuel: minijinja charges a filter for the string it is applied to, not for its other
//! arguments, so a loop could pass a 100 MB pattern to a filter a million times for little
//! fuel. Every filter, test and function weft registers (its own, through [`add_filter`],
//! [`add_test`] and [`add_function`], and these wrappers) is charged for the size of all its
//! arguments; `map`, `select`, `groupby` and the others that apply something to every item
//! are charged for their arguments once per item.

use std::borrow::Cow;
use std::fmt::Write as _;

use minijinja::functions::Function;
use minijinja::value::{
    FunctionArgs, FunctionResult, Kwargs, Rest, StringInput, ValueKind, ValueOrKwargs,
};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::limits::{
    self, LimitedString, MAX_DEPTH, MAX_ITEMS, MAX_OUTPUT_BYTES, check_format_string, check_output,
    check_width,
};

pub(super) fn register(env: &mut Environment<'static>) {
    add_filter(env, "indent", indent);
    add_filter(env, "tojson", tojson);
    add_filter(env, "pprint", pprint);
    add_filter(env, "format", format);
    add_filter(env, "join", join);
    add_filter(env, "replace", replace);
    add_filter(env, "batch", batch);
    add_filter(env, "slice", slice);
    add_filter(env, "wordwrap", wordwrap);
    add_function(env, "debug", debug);
    use minijinja::filters as f;
    add_per_item(env, "map", Value::from_function(f::map));
    add_per_item(env, "select", Value::from_function(f::select));
    add_per_item(env, "reject", Value::from_function(f::reject));
    add_per_item(env, "selectattr", Value::from_function(f::selectattr));
    add_per_item(env, "rejectattr", Value::from_function(f::rejectattr));
    // The registered `groupby` charges for the items it sorts; the public one does not, so
    // the wrapper does.
    add_per_item(env, "groupby", Value::from_function(f::groupby));
    add_per_item(env, "sort", Value::from_function(f::sort));
    add_per_item(env, "unique", Value::from_function(f::unique));
    add_per_item(env, "sum", Value::from_function(f::sum));
    add_per_item(env, "min", Value::from_function(f::min));
    add_per_item(env, "max", Value::from_function(f::max));
    env.set_unknown_method_callback(unknown_method);
}

/// What a value costs as an argument, in bytes: its length for text, a slot per item for a
/// list or map (their items were paid for when they were made), the values of keyword
/// arguments. `first` is the value a filter is applied to: minijinja charges for its text.
fn argument_cost(value: &Value, first: bool) -> u64 {
    const SLOT: u64 = 32;
    if value.is_kwargs() {
        let Ok(keys) = value.try_iter() else {
            return 0;
        };
        return keys
            .map(|k| argument_cost(&value.get_item(&k).unwrap_or_default(), false))
            .fold(0, u64::saturating_add);
    }
    match value.kind() {
        ValueKind::String if first => 0,
        ValueKind::String | ValueKind::Bytes => value
            .as_str()
            .map(str::len)
            .or_else(|| value.as_bytes().map(<[u8]>::len))
            .unwrap_or(0) as u64,
        ValueKind::Seq | ValueKind::Map => (value.len().unwrap_or(0) as u64).saturating_mul(SLOT),
        _ => 0,
    }
}

/// Charges one fuel per 64 bytes of arguments (minijinja's rate for data).
fn charge(state: &State, bytes: u64) -> Result<(), Error> {
    if bytes >= 64 {
        state.consume_fuel(bytes / 64)
    } else {
        Ok(())
    }
}

fn charge_arguments(state: &State, args: &[Value]) -> Result<(), Error> {
    let cost = args
        .iter()
        .enumerate()
        .map(|(i, a)| argument_cost(a, i == 0))
        .fold(0, u64::saturating_add);
    charge(state, cost)
}

/// Registers a filter that is charged fuel for the size of its arguments before it runs.
pub(super) fn add_filter<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, f: F)
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    env.add_filter(
        name,
        move |state: &mut State<'_, '_>, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args = args.into_values();
            charge_arguments(state, &args)?;
            inner.call(state, &args)
        },
    );
}

/// Registers a test that is charged fuel for the size of its arguments before it runs.
pub(super) fn add_test<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, f: F)
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    env.add_test(
        name,
        move |state: &mut State<'_, '_>, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args = args.into_values();
            charge_arguments(state, &args)?;
            inner.call(state, &args)
        },
    );
}

/// Registers a global function that is charged fuel for the size of its arguments.
pub(super) fn add_function<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, f: F)
where
    F: Function<Rv, Args>,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    env.add_function(
        name,
        move |state: &mut State<'_, '_>, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args = args.into_values();
            let cost = args
                .iter()
                .map(|a| argument_cost(a, false))
                .fold(0, u64::saturating_add);
            charge(state, cost)?;
            inner.call(state, &args)
        },
    );
}

/// Registers a built-in that applies its arguments (a filter or test name and its
/// arguments, an attribute) to every item, charged for those arguments once per item.
fn add_per_item(env: &mut Environment<'static>, name: &'static str, inner: Value) {
    env.add_filter(
        name,
        move |state: &mut State<'_, '_>, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args = args.into_values();
            if let Some((value, rest)) = args.split_first() {
                let mut each = rest
                    .iter()
                    .map(|a| argument_cost(a, false))
                    .fold(0, u64::saturating_add);
                if name == "groupby" {
                    // visiting an item, and comparing it log2(n) times while sorting
                    let n = value.len().unwrap_or(0).max(2) as u64;
                    each = each.saturating_add(32 + 64 * u64::from(n.ilog2()));
                }
                if each > 0 {
                    // counting stops where the fuel could not pay anyway
                    let n = count_items(value, 10_000_000) as u64;
                    charge(state, n.saturating_mul(each))?;
                }
            }
            inner.call(state, &args)
        },
    );
}

fn count_error(filter: &str, n: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{filter}: count {n} is larger than the limit of {MAX_ITEMS} items"),
    )
}

/// `indent(width=4, first=false, blank=false)`: `width` at most [`limits::MAX_WIDTH`], and the
/// result (one indentation per line) at most [`MAX_OUTPUT_BYTES`].
fn indent(args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    // The built-in's own argument parsing (it takes no state either).
    let (value, width, first, blank, kwargs): (
        StringInput<'_>,
        Option<usize>,
        Option<bool>,
        Option<bool>,
        Kwargs,
    ) = minijinja::value::from_args(&args)?;
    let w = match width {
        Some(w) => w,
        None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
    };
    check_width("indent", "width", w)?;
    let text = value.as_str();
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    check_output("indent", w.saturating_mul(lines).saturating_add(text.len()))?;
    minijinja::filters::indent(value, width, first, blank, kwargs)
}

/// The indentation `tojson` would use (the built-in's rules: `true` is 2, `false` none).
fn tojson_indent(indent: Option<Value>) -> Option<usize> {
    match indent {
        None => None,
        Some(v) => match bool::try_from(v.clone()).ok() {
            Some(true) => Some(2),
            Some(false) => None,
            None => usize::try_from(v).ok(),
        },
    }
}

/// `tojson(indent)`: `indent` at most [`limits::MAX_WIDTH`]; the output, estimated before
/// it is written, at most [`MAX_OUTPUT_BYTES`]; nesting at most [`MAX_DEPTH`].
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let requested = match &indent {
        Some(i) => Some(i.clone()),
        None => kwargs.peek::<Option<Value>>("indent")?,
    };
    let ind = tojson_indent(requested.clone());
    if let Some(n) = ind {
        check_width("tojson", "indent", n)?;
    } else if let Some(r) = requested.filter(|r| r.kind() == ValueKind::Number) {
        // Not a usize: the built-in refuses it, but say why if it is merely huge.
        if f64::try_from(r.clone()).is_ok_and(|f| f > limits::MAX_WIDTH as f64) {
            return Err(limits::width_error("tojson", "indent", &r.to_string()));
        }
    }
    estimate_json("tojson", value, ind, MAX_OUTPUT_BYTES)?;
    let rv = minijinja::filters::tojson(value, indent, kwargs)?;
    check_output("tojson", rv.as_str().map_or(0, str::len))?;
    Ok(rv)
}

/// `pprint`: output at most [`MAX_OUTPUT_BYTES`], nesting at most [`MAX_DEPTH`].
fn pprint(value: &Value) -> Result<String, Error> {
    estimate_json("pprint", value, Some(4), MAX_OUTPUT_BYTES)?;
    let mut out = LimitedString::default();
    if write!(out, "{value:#?}").is_err() || out.over {
        return Err(limits::output_error("pprint"));
    }
    Ok(out.out)
}

/// `debug(…)`: output at most [`MAX_OUTPUT_BYTES`], nesting at most [`MAX_DEPTH`].
fn debug(state: &State, args: Rest<Value>) -> Result<String, Error> {
    for arg in args.iter() {
        estimate_json("debug", arg, Some(4), MAX_OUTPUT_BYTES)?;
    }
    let mut out = LimitedString::default();
    let written = match args.len() {
        0 => write!(out, "{state:#?}"),
        1 => write!(out, "{:#?}", args.0[0]),
        _ => write!(out, "{:#?}", &args.0[..]),
    };
    if written.is_err() || out.over {
        return Err(limits::output_error("debug"));
    }
    Ok(out.out)
}

/// printf-style `format`: every width and precision at most [`limits::MAX_WIDTH`].
fn format(
    state: &mut State,
    format_str: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    if let Some(s) = format_str.as_str() {
        check_format_string("format", s, true)?;
    }
    let rv = minijinja::filters::format(state, format_str, args)?;
    check_output("format", rv.as_str().map_or(0, str::len))?;
    Ok(rv)
}

/// How many items iterating `value` gives, counting no further than `max + 1`.
fn count_items(value: &Value, max: usize) -> usize {
    match value.len() {
        Some(n) => n,
        None => value
            .try_iter()
            .map_or(0, |it| it.take(max.saturating_add(1)).count()),
    }
}

/// `join(d='', attribute=none)`: the separator, repeated once per item, at most
/// [`MAX_OUTPUT_BYTES`] in all.
fn join(
    state: &mut State,
    value: &Value,
    joiner: Option<StringInput<'_>>,
    attribute: Option<&str>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let sep = joiner.as_ref().map_or(0, |j| j.as_str().len());
    if sep > 0 && !value.is_undefined() && !value.is_none() {
        let n = count_items(value, MAX_OUTPUT_BYTES / sep);
        check_output("join", n.saturating_sub(1).saturating_mul(sep))?;
    }
    let rv = minijinja::filters::join(state, value, joiner, attribute, kwargs)?;
    check_output("join", rv.as_str().map_or(0, str::len))?;
    Ok(rv)
}

/// The size of `s.replacen(from, to, count)`, computed only as far as needed.
fn replaced_size(s: &str, from: &str, to: &str, count: usize) -> usize {
    if to.len() <= from.len() {
        return s.len();
    }
    let grow = to.len() - from.len();
    let upper = (s.len() / from.len().max(1) + 1).min(count);
    let size = |matches: usize| matches.saturating_mul(grow).saturating_add(s.len());
    if size(upper) <= MAX_OUTPUT_BYTES {
        return size(upper);
    }
    size(s.matches(from).take(count).count())
}

/// `replace(old, new, count=none)` (positional or keyword `count`, like the built-in): the
/// result at most [`MAX_OUTPUT_BYTES`].
fn replace(state: &mut State, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    type Args<'a> = (
        StringInput<'a>,
        StringInput<'a>,
        StringInput<'a>,
        Option<i64>,
        Kwargs,
    );
    let (value, from, to, count, kwargs) =
        <Args<'_> as FunctionArgs>::from_values_mut(Some(&*state), &args)?;
    let count = match count {
        Some(count) => Some(count),
        None => kwargs.get::<Option<i64>>("count")?,
    };
    kwargs.assert_all_used()?;
    let count = count
        .and_then(|c| usize::try_from(c).ok())
        .unwrap_or(usize::MAX);
    // weft renders without auto-escaping (see `mod.rs`), so there is no safe-string case.
    let size = replaced_size(value.as_str(), from.as_str(), to.as_str(), count);
    check_output("replace", size)?;
    // minijinja charges its own replace for the result: so does this one.
    charge(state, u64::try_from(size).unwrap_or(u64::MAX))?;
    Ok(Value::from(value.as_str().replacen(
        from.as_str(),
        to.as_str(),
        count,
    )))
}

/// `batch(count, fill_with=none)`: with a filler, `count` at most [`MAX_ITEMS`] (the last
/// batch is padded to `count` items).
fn batch(
    state: &State,
    value: Value,
    count: usize,
    fill_with: Option<Value>,
) -> Result<Value, Error> {
    if fill_with.is_some() && count > MAX_ITEMS {
        return Err(count_error("batch", count));
    }
    minijinja::filters::batch(state, value, count, fill_with)
}

/// `slice(count, fill_with=none)`: `count` (the number of lists made) at most [`MAX_ITEMS`].
fn slice(
    state: &State,
    value: Value,
    count: usize,
    fill_with: Option<Value>,
) -> Result<Value, Error> {
    if count > MAX_ITEMS {
        return Err(count_error("slice", count));
    }
    minijinja::filters::slice(state, value, count, fill_with)
}

/// minijinja-contrib's `wordwrap(width=79, break_long_words=true, break_on_hyphens=true,
/// wrapstring='\n')`: the result, with `wrapstring` once per line, at most
/// [`MAX_OUTPUT_BYTES`]. Wrapped with newlines first, then joined with `wrapstring` (the
/// lines never contain a newline, so this gives the same text).
fn wordwrap(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let wrapstring = kwargs.peek::<Option<String>>("wrapstring")?;
    let custom = wrapstring.as_deref().filter(|w| *w != "\n");
    let inner = match custom {
        None => kwargs,
        Some(_) => {
            let mut rest = Vec::new();
            for name in kwargs.args().filter(|n| *n != "wrapstring") {
                rest.push((name.to_string(), kwargs.peek::<Value>(name)?));
            }
            rest.into_iter().collect::<Kwargs>()
        }
    };
    let wrapped = minijinja_contrib::filters::wordwrap(value, inner)?;
    let text = wrapped.as_str().unwrap_or_default();
    match custom {
        None => {
            check_output("wordwrap", text.len())?;
            Ok(wrapped)
        }
        Some(ws) => {
            let breaks = text.bytes().filter(|&b| b == b'\n').count();
            check_output(
                "wordwrap",
                (text.len() - breaks).saturating_add(breaks.saturating_mul(ws.len())),
            )?;
            Ok(Value::from(text.split('\n').collect::<Vec<_>>().join(ws)))
        }
    }
}

/// minijinja-contrib's Python string methods, with `str.format` widths, `str.replace` and
/// `str.join` results capped like the filters of the same names.
fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    charge_arguments(state, args)?;
    let name: Cow<'static, str> = match method {
        "format" => "str.format".into(),
        "replace" => "str.replace".into(),
        "join" => "str.join".into(),
        other => format!("str.{other}").into(),
    };
    if let Some(s) = value.as_str() {
        match method {
            "format" => check_format_string(&name, s, false)?,
            "replace" => {
                if let Ok((old, new, count)) =
                    minijinja::value::from_args::<(&str, &str, Option<i32>)>(args)
                {
                    let count = count
                        .and_then(|c| usize::try_from(c).ok())
                        .unwrap_or(usize::MAX);
                    check_output(&name, replaced_size(s, old, new, count))?;
                }
            }
            "join" => {
                if let (Some(items), false) = (args.first(), s.is_empty()) {
                    let n = count_items(items, MAX_OUTPUT_BYTES / s.len());
                    check_output(&name, n.saturating_sub(1).saturating_mul(s.len()))?;
                }
            }
            _ => {}
        }
    }
    let rv = minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)?;
    if let Some(out) = rv.as_str() {
        check_output(&name, out.len())?;
    }
    Ok(rv)
}

/// An upper bound of the length of `value` written as JSON (strings with every escape it
/// could need), one item per line indented by `indent` when given. Fails as soon as the
/// bound passes `limit` (so a list that contains itself a million times over is not walked
/// to the end), or when the value is nested deeper than [`MAX_DEPTH`].
pub(super) fn estimate_json(
    filter: &str,
    value: &Value,
    indent: Option<usize>,
    limit: usize,
) -> Result<usize, Error> {
    let mut total = 0;
    estimate_walk(filter, value, indent, 0, limit, &mut total)?;
    Ok(total)
}

fn escaped_len(s: &str) -> usize {
    let escapes = s
        .bytes()
        .filter(|&b| b < 0x20 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&' | b'\''))
        .count();
    s.len()
        .saturating_add(escapes.saturating_mul(5))
        .saturating_add(2)
}

fn estimate_walk(
    filter: &str,
    value: &Value,
    indent: Option<usize>,
    depth: usize,
    limit: usize,
    total: &mut usize,
) -> Result<(), Error> {
    let add = |total: &mut usize, n: usize| {
        *total = total.saturating_add(n);
        if *total > limit {
            Err(limits::output_error(filter))
        } else {
            Ok(())
        }
    };
    if depth > MAX_DEPTH {
        return Err(limits::depth_error(filter));
    }
    // a separator plus, when indenting, a newline and the indentation of that level
    let line = |d: usize| indent.map_or(2, |i| i.saturating_mul(d).saturating_add(2));
    match value.kind() {
        ValueKind::String => add(total, escaped_len(value.as_str().unwrap_or_default())),
        ValueKind::Bytes => {
            let n = value.as_bytes().map_or(0, <[u8]>::len);
            add(total, n.saturating_mul(line(depth + 1).saturating_add(3)))
        }
        ValueKind::Plain => add(total, escaped_len(&value.to_string())),
        ValueKind::Seq | ValueKind::Iterable => {
            add(total, line(depth).saturating_add(2))?;
            let Ok(iter) = value.try_iter() else {
                return Ok(());
            };
            for item in iter {
                add(total, line(depth + 1))?;
                estimate_walk(filter, &item, indent, depth + 1, limit, total)?;
            }
            Ok(())
        }
        ValueKind::Map => {
            add(total, line(depth).saturating_add(2))?;
            let Ok(keys) = value.try_iter() else {
                return Ok(());
            };
            for key in keys {
                let key_len = match key.as_str() {
                    Some(s) => escaped_len(s),
                    None => key.to_string().len().saturating_add(4),
                };
                add(
                    total,
                    line(depth + 1).saturating_add(key_len).saturating_add(2),
                )?;
                let item = value.get_item(&key).unwrap_or(Value::UNDEFINED);
                estimate_walk(filter, &item, indent, depth + 1, limit, total)?;
            }
            Ok(())
        }
        // a number written out (JSON may add a sign to an exponent), `true`, `null`
        ValueKind::Number => add(total, value.to_string().len().saturating_add(2)),
        _ => add(total, 5),
    }
}
