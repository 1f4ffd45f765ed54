//! Every filter, test and global function of weft's template environment, and the Python
//! string methods it adds, called with hostile arguments: sizes of 10**12 and 2**62,
//! negative and zero counts, NaN and infinities, very long strings, big lists and maps, data
//! nested deeper than [`MAX_DEPTH`], structures that share their parts, patterns and format
//! strings that ask for huge widths. Each call must return (`Ok` or `Err`), must not panic,
//! must finish within [`CASE_TIMEOUT`] and must not produce more than
//! [`MAX_OUTPUT_BYTES`].
//!
//! The names come from the environment itself (its `Debug` output lists filters and tests,
//! `globals()` the functions), and must match the tables below, which say which keyword
//! arguments each one takes: registering a filter, test or function without adding it here
//! fails `every_registered_name_is_covered`.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use minijinja::value::{Kwargs, Value};
use proptest::prelude::*;

use super::environment;
use super::limits::{MAX_DEPTH, MAX_ITEMS, MAX_OUTPUT_BYTES, MAX_WIDTH};

/// The longest a single call may take (debug build, shared machine).
const CASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Filters: name and the keyword arguments it takes (space-separated).
const FILTERS: &[(&str, &str)] = &[
    ("abs", ""),
    ("as_timezone", ""),
    ("attr", ""),
    ("b64decode", ""),
    ("b64encode", ""),
    ("base64", ""),
    ("basename", ""),
    ("batch", ""),
    ("bool", ""),
    ("capitalize", ""),
    ("center", ""),
    ("chain", ""),
    ("combine", "recursive list_merge"),
    ("convert_from_epoch", ""),
    ("convert_to_epoch", ""),
    ("count", ""),
    ("d", ""),
    ("dateformat", "format tz"),
    ("datetimeformat", "format tz"),
    ("decode_base64", ""),
    ("default", ""),
    ("dict2items", "key_name value_name"),
    ("dictsort", "case_sensitive by reverse"),
    ("difference", ""),
    ("dirname", ""),
    ("e", ""),
    ("escape", ""),
    ("filesizeformat", ""),
    ("first", ""),
    ("flatten", "levels skip_nulls"),
    ("float", "default"),
    ("format", "a"),
    ("format_datetime", "format tz"),
    ("from_json", ""),
    ("from_json_string", ""),
    ("from_yaml", ""),
    ("from_yaml_all", ""),
    ("from_yaml_string", ""),
    ("groupby", "attribute default case_sensitive"),
    ("hash", ""),
    ("hmac", "algorithm encoding"),
    ("indent", "width first blank"),
    ("int", "default base"),
    ("intersect", ""),
    ("items", ""),
    ("items2dict", "key_name value_name"),
    ("join", "d attribute"),
    ("json_dump", "indent sort_keys"),
    ("json_escape", ""),
    ("json_parse", ""),
    ("json_query", ""),
    ("json_stringify", "indent sort_keys"),
    ("jsonpath", ""),
    ("last", ""),
    ("length", ""),
    ("lines", ""),
    ("list", ""),
    ("lower", ""),
    ("mandatory", ""),
    ("map", "attribute default"),
    ("max", "attribute case_sensitive"),
    ("min", "attribute case_sensitive"),
    ("parse_csv", "delimiter header"),
    ("parse_datetime", "format tz"),
    ("pluralize", ""),
    ("pprint", ""),
    ("regex_escape", ""),
    ("regex_findall", "ignorecase multiline"),
    ("regex_match", "ignorecase multiline"),
    (
        "regex_replace",
        "pattern replacement ignorecase multiline count",
    ),
    ("regex_search", "ignorecase multiline"),
    ("reject", ""),
    ("rejectattr", ""),
    ("replace", "count"),
    ("reverse", ""),
    ("round", "precision method"),
    ("safe", ""),
    ("select", ""),
    ("selectattr", ""),
    ("slice", ""),
    ("sort", "attribute reverse case_sensitive"),
    ("split", ""),
    ("string", ""),
    ("striptags", ""),
    ("sum", "attribute start"),
    ("symmetric_difference", ""),
    ("ternary", ""),
    ("timeformat", "format tz"),
    ("title", ""),
    ("to_epoch", ""),
    ("to_human_time_from_seconds", ""),
    ("to_json", "indent sort_keys"),
    ("to_json_string", "indent sort_keys"),
    ("to_nice_json", "indent"),
    ("to_nice_yaml", "indent"),
    ("to_yaml", "indent sort_keys"),
    ("to_yaml_string", "indent sort_keys"),
    ("tojson", "indent"),
    ("trim", ""),
    ("truncate", "length killwords end leeway"),
    ("type_debug", ""),
    ("union", ""),
    ("unique", "attribute case_sensitive"),
    ("upper", ""),
    ("urldecode", ""),
    ("urlencode", ""),
    ("version_compare", ""),
    ("win_basename", ""),
    ("win_dirname", ""),
    ("wordcount", ""),
    (
        "wordwrap",
        "width break_long_words break_on_hyphens wrapstring",
    ),
    ("yaml_dump", "indent sort_keys"),
    ("yaml_parse", ""),
    ("zip", ""),
];

/// Tests (`x is name(…)`): name and keyword arguments.
const TESTS: &[(&str, &str)] = &[
    ("!=", ""),
    ("<", ""),
    ("<=", ""),
    ("==", ""),
    (">", ""),
    (">=", ""),
    ("boolean", ""),
    ("contains", ""),
    ("defined", ""),
    ("divisibleby", ""),
    ("endingwith", ""),
    ("eq", ""),
    ("equalto", ""),
    ("escaped", ""),
    ("even", ""),
    ("false", ""),
    ("filter", ""),
    ("float", ""),
    ("ge", ""),
    ("greaterthan", ""),
    ("gt", ""),
    ("in", ""),
    ("int", ""),
    ("integer", ""),
    ("iterable", ""),
    ("le", ""),
    ("lessthan", ""),
    ("lower", ""),
    ("lt", ""),
    ("mapping", ""),
    ("match", "ignorecase multiline"),
    ("ne", ""),
    ("none", ""),
    ("number", ""),
    ("odd", ""),
    ("regex", "ignorecase multiline match_type"),
    ("safe", ""),
    ("sameas", ""),
    ("search", "ignorecase multiline"),
    ("sequence", ""),
    ("startingwith", ""),
    ("string", ""),
    ("subset", ""),
    ("superset", ""),
    ("test", ""),
    ("true", ""),
    ("undefined", ""),
    ("upper", ""),
    ("version", ""),
    ("version_compare", ""),
];

/// Global functions: name and keyword arguments.
const FUNCTIONS: &[(&str, &str)] = &[
    ("cycler", ""),
    ("debug", ""),
    ("dict", "a"),
    ("failed", ""),
    ("form_link", "prefill single_use expires"),
    ("item", ""),
    ("joiner", ""),
    ("namespace", "a"),
    ("now", ""),
    ("range", ""),
    ("succeeded", ""),
    ("uuid4", ""),
];

/// The Python methods minijinja-contrib adds to strings, maps and lists (through weft's
/// unknown-method callback).
const METHODS: &[&str] = &[
    "capitalize",
    "count",
    "endswith",
    "find",
    "format",
    "get",
    "isalnum",
    "isalpha",
    "isascii",
    "isdigit",
    "islower",
    "isnumeric",
    "isspace",
    "isupper",
    "items",
    "join",
    "keys",
    "lower",
    "lstrip",
    "replace",
    "rfind",
    "rstrip",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "title",
    "upper",
    "values",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Filter,
    Test,
    Function,
    Method,
}

fn table(kind: Kind) -> Vec<(&'static str, Vec<&'static str>)> {
    let rows: Vec<(&'static str, &'static str)> = match kind {
        Kind::Filter => FILTERS.to_vec(),
        Kind::Test => TESTS.to_vec(),
        Kind::Function => FUNCTIONS.to_vec(),
        Kind::Method => METHODS.iter().map(|m| (*m, "")).collect(),
    };
    rows.into_iter()
        .map(|(name, kw)| (name, kw.split_whitespace().collect()))
        .collect()
}

/// The names of one `field: [..]` list in the environment's `Debug` output.
fn debug_list(debug: &str, field: &str) -> BTreeSet<String> {
    let marker = format!(" {field}: [");
    let start = debug
        .find(&marker)
        .unwrap_or_else(|| panic!("no `{field}` in the environment's Debug output"))
        + marker.len();
    let end = start + debug[start..].find(']').expect("closing bracket");
    debug[start..end]
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches('"').to_string())
        .collect()
}

fn registered(kind: Kind) -> BTreeSet<String> {
    let env = environment();
    match kind {
        Kind::Filter => debug_list(&format!("{env:?}"), "filters"),
        Kind::Test => debug_list(&format!("{env:?}"), "tests"),
        Kind::Function => env.globals().map(|(n, _)| n.to_string()).collect(),
        Kind::Method => METHODS.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn every_registered_name_is_covered() {
    for kind in [Kind::Filter, Kind::Test, Kind::Function] {
        let in_env = registered(kind);
        assert!(in_env.len() > 5, "{kind:?}: could not read the names");
        let covered: BTreeSet<String> = table(kind)
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let missing: Vec<_> = in_env.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "{kind:?} registered without abuse coverage (add to the table in abuse.rs): {missing:?}"
        );
        let stale: Vec<_> = covered.difference(&in_env).collect();
        assert!(stale.is_empty(), "{kind:?} no longer registered: {stale:?}");
    }
}

fn nested_list(depth: usize) -> Value {
    (0..depth).fold(Value::from(1), |inner, _| Value::from(vec![inner]))
}

fn nested_map(depth: usize) -> Value {
    (0..depth).fold(Value::from(1), |inner, _| {
        Value::from_iter([(Value::from("a"), inner)])
    })
}

/// A list whose two items are the same list, 16 levels down: 65,536 leaves, little memory.
fn shared(levels: usize) -> Value {
    (0..levels).fold(Value::from(vec![Value::from(1)]), |inner, _| {
        Value::from(vec![inner.clone(), inner])
    })
}

fn json(s: &str) -> Value {
    Value::from(minijinja::value::Serde(
        serde_json::from_str::<serde_json::Value>(s).expect("JSON"),
    ))
}

/// The hostile values, with a label for failure messages.
static NASTY: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    let mut v: Vec<(String, Value)> = Vec::new();
    let mut add = |label: &str, value: Value| v.push((label.to_string(), value));
    for (label, n) in [
        ("0", 0i128),
        ("1", 1),
        ("-1", -1),
        ("2", 2),
        ("3", 3),
        ("MAX_WIDTH", MAX_WIDTH as i128),
        ("MAX_WIDTH+1", MAX_WIDTH as i128 + 1),
        ("MAX_ITEMS+1", MAX_ITEMS as i128 + 1),
        ("10**7", 10_000_000),
        ("10**12", 1_000_000_000_000),
        ("-10**12", -1_000_000_000_000),
        ("2**62", 1 << 62),
        ("-2**62", -(1 << 62)),
        ("i64::MAX", i64::MAX as i128),
        ("i64::MIN", i64::MIN as i128),
        ("u64::MAX", u64::MAX as i128),
        ("i128::MAX", i128::MAX),
    ] {
        add(label, Value::from(n));
    }
    for (label, f) in [
        ("0.5", 0.5f64),
        ("-0.5", -0.5),
        ("1e300", 1e300),
        ("-1e300", -1e300),
        ("1e-300", 1e-300),
        ("NaN", f64::NAN),
        ("inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
    ] {
        add(label, Value::from(f));
    }
    add("true", Value::from(true));
    add("false", Value::from(false));
    add("none", Value::from(()));
    add("undefined", Value::UNDEFINED);
    for s in [
        "",
        "x",
        "hello world",
        "1000000000000",
        "-1",
        "nan",
        "%s",
        "%1000000000000d",
        "%.1000000000000f",
        "%-65536s%65536d",
        "{}",
        "{:1000000000000}",
        "{:>65537}",
        "{0}{1}{2}",
        "(",
        "a{1000000000}",
        "(a*)*b",
        "(?P<n>x)|\\g<n>\\1\\g<9>",
        "$0${x}$$",
        "2026-03-01T12:00:00Z",
        "%Y%m%d %H %1000000000Y %%",
        "UTC",
        "Mars/Base",
        "{\"a\": [1, {\"b\": null}], \"key\": \"k\", \"value\": 2}",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "$..*",
        "items[*].{a: @, b: @, c: @}",
        "a,b\n1,2\n3\n",
        "é\u{0}\u{1}<>&'\"\\\n\t\r",
        "sha512",
        "base64",
    ] {
        add(&format!("{s:?}"), Value::from(s));
    }
    add("'[' * 200", Value::from("[".repeat(200)));
    add("'[@,@]|' * 24", Value::from(vec!["[@,@]"; 24].join("|")));
    add("long text", Value::from("ab c\n".repeat(50_000)));
    add("long word", Value::from("x".repeat(200_000)));
    add("bytes", Value::from_bytes(vec![0, 255, 10, b'a']));
    add("[]", Value::from(Vec::<Value>::new()));
    add("[1, 2, 3]", json("[1, 2, 3]"));
    add("['a', 'b']", json("[\"a\", \"b\"]"));
    add("[none]", json("[null]"));
    add("[1, [2, [3]]]", json("[1, [2, [3]]]"));
    add(
        "[{key, value}]",
        json("[{\"key\": \"a\", \"value\": 1}, {\"key\": \"b\", \"value\": [2]}]"),
    );
    add(
        "range(20000)",
        Value::from((0..20_000).collect::<Vec<i64>>()),
    );
    add(
        "20000 strings",
        Value::from(
            (0..20_000)
                .map(|i| format!("s{i}"))
                .collect::<Vec<String>>(),
        ),
    );
    add("deepest list", nested_list(MAX_DEPTH));
    add("deepest map", nested_map(MAX_DEPTH));
    add("too deep list", nested_list(MAX_DEPTH + 1));
    add("too deep map", nested_map(MAX_DEPTH + 1));
    add("shared 2**16", shared(16));
    add("{}", json("{}"));
    add(
        "{a, b, c}",
        json("{\"a\": 1, \"b\": [1, 2], \"c\": {\"d\": null}}"),
    );
    add(
        "20000 keys",
        Value::from_iter((0..20_000).map(|i| (Value::from(format!("k{i}")), Value::from(i)))),
    );
    v
});

fn nasty(i: usize) -> &'static (String, Value) {
    &NASTY[i]
}

/// Small ordinary inputs, as the value a filter or test is applied to.
fn inputs() -> Vec<usize> {
    let want = ["\"hello world\"", "[1, 2, 3]", "{a, b, c}"];
    want.iter()
        .map(|w| {
            NASTY
                .iter()
                .position(|(l, _)| l == w)
                .unwrap_or_else(|| panic!("no nasty value {w}"))
        })
        .collect()
}

/// One call: what is called, on what, with which arguments.
#[derive(Clone, Debug)]
struct Case {
    kind: Kind,
    name: &'static str,
    input: usize,
    args: Vec<usize>,
    kwargs: Vec<(&'static str, usize)>,
}

impl Case {
    fn describe(&self) -> String {
        let mut args: Vec<String> = self.args.iter().map(|&a| nasty(a).0.clone()).collect();
        args.extend(
            self.kwargs
                .iter()
                .map(|(k, v)| format!("{k}={}", nasty(*v).0)),
        );
        let args = args.join(", ");
        let input = &nasty(self.input).0;
        match self.kind {
            Kind::Filter => format!("{input} | {}({args})", self.name),
            Kind::Test => format!("{input} is {}({args})", self.name),
            Kind::Function => format!("{}({args})", self.name),
            Kind::Method => format!("({input}).{}({args})", self.name),
        }
    }

    fn run(&self) -> Result<Value, minijinja::Error> {
        let env = environment();
        let mut state = env.empty_state();
        let mut all = Vec::new();
        if matches!(self.kind, Kind::Filter | Kind::Test) {
            all.push(nasty(self.input).1.clone());
        }
        all.extend(self.args.iter().map(|&a| nasty(a).1.clone()));
        if !self.kwargs.is_empty() {
            let kwargs: Kwargs = self
                .kwargs
                .iter()
                .map(|(k, v)| (k.to_string(), nasty(*v).1.clone()))
                .collect();
            all.push(Value::from(kwargs));
        }
        match self.kind {
            Kind::Filter => state.apply_filter(self.name, &all),
            Kind::Test => state.perform_test(self.name, &all).map(Value::from),
            Kind::Function => {
                let f = env
                    .globals()
                    .find(|(n, _)| *n == self.name)
                    .map(|(_, f)| f)
                    .expect("registered");
                f.call(&mut state, &all)
            }
            Kind::Method => nasty(self.input).1.call_method(&mut state, self.name, &all),
        }
    }
}

/// The size of a result: a string's length, or the length of the value as JSON.
fn output_size(v: &Value) -> usize {
    if let Some(s) = v.as_str() {
        return s.len();
    }
    match super::to_json(v) {
        Ok(j) => serde_json::to_string(&j).map_or(0, |s| s.len()),
        // Not data (a cycler, a namespace…), or larger than the data limit, which is more
        // than MAX_OUTPUT_BYTES: report it as too large.
        Err(e) if e.message.contains("larger than the limit") => usize::MAX,
        Err(_) => 0,
    }
}

/// Runs the cases on a worker thread with a 2 MiB stack (like tokio's), each within
/// [`CASE_TIMEOUT`]; returns the failures and the slowest case.
fn run_cases(cases: Vec<Case>) -> (Vec<String>, Option<(Duration, String)>) {
    enum Msg {
        Start(usize),
        Done(usize, Duration, Result<(), String>),
    }
    let (tx, rx) = mpsc::channel();
    let shared_cases = cases.clone();
    std::thread::Builder::new()
        .name("template-abuse".into())
        .stack_size(2 << 20)
        .spawn(move || {
            for (i, case) in shared_cases.iter().enumerate() {
                if tx.send(Msg::Start(i)).is_err() {
                    return;
                }
                let started = Instant::now();
                let outcome = match catch_unwind(AssertUnwindSafe(|| case.run())) {
                    Err(_) => Err("panicked".to_string()),
                    Ok(Err(_)) => Ok(()),
                    Ok(Ok(v)) => match output_size(&v) {
                        n if n > MAX_OUTPUT_BYTES => {
                            Err(format!("produced {n} bytes (limit {MAX_OUTPUT_BYTES})"))
                        }
                        _ => Ok(()),
                    },
                };
                if tx.send(Msg::Done(i, started.elapsed(), outcome)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn");
    let mut failures = Vec::new();
    let mut slowest: Option<(Duration, String)> = None;
    let mut current = None;
    loop {
        match rx.recv_timeout(CASE_TIMEOUT) {
            Ok(Msg::Start(i)) => current = Some(i),
            Ok(Msg::Done(i, took, outcome)) => {
                current = None;
                if let Err(why) = outcome {
                    failures.push(format!("{}: {why}", cases[i].describe()));
                }
                if slowest.as_ref().is_none_or(|(d, _)| took > *d) {
                    slowest = Some((took, cases[i].describe()));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let what = current.map_or_else(|| "?".to_string(), |i| cases[i].describe());
                failures.push(format!("{what}: still running after {CASE_TIMEOUT:?}"));
                // The worker is stuck; give up on the rest.
                break;
            }
        }
    }
    (failures, slowest)
}

/// For every name of `kind`: every nasty value as the input (no arguments), as the first
/// argument (on a few ordinary inputs), as both the input and the first argument (set
/// operations on two big lists), and as each keyword argument the name takes.
fn sweep(kind: Kind) -> Vec<Case> {
    let mut cases = Vec::new();
    let n = NASTY.len();
    let plain = inputs();
    for (name, kwargs) in table(kind) {
        let case = |input: usize, args: Vec<usize>, kwargs: Vec<(&'static str, usize)>| Case {
            kind,
            name,
            input,
            args,
            kwargs,
        };
        for v in 0..n {
            if kind != Kind::Function {
                cases.push(case(v, vec![], vec![]));
                cases.push(case(v, vec![v], vec![]));
            }
            for &input in &plain {
                cases.push(case(input, vec![v], vec![]));
                if kind == Kind::Function {
                    break;
                }
            }
            // a second argument too, on text
            cases.push(case(plain[0], vec![plain[0], v], vec![]));
            for &kw in &kwargs {
                cases.push(case(plain[0], vec![], vec![(kw, v)]));
                cases.push(case(plain[1], vec![], vec![(kw, v)]));
            }
        }
    }
    cases
}

fn check(kind: Kind, names: fn(&str) -> bool) {
    let started = Instant::now();
    let cases: Vec<Case> = sweep(kind).into_iter().filter(|c| names(c.name)).collect();
    let count = cases.len();
    let (failures, slowest) = run_cases(cases);
    eprintln!(
        "{kind:?}: {count} cases in {:?}; slowest {:?}",
        started.elapsed(),
        slowest
    );
    assert!(
        failures.is_empty(),
        "{} of {count} {kind:?} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// The filters are split in two so that the halves run in parallel.
#[test]
fn filters_a_to_k_survive_hostile_arguments() {
    check(Kind::Filter, |name| name < "l");
}

#[test]
fn filters_l_to_z_survive_hostile_arguments() {
    check(Kind::Filter, |name| name >= "l");
}

#[test]
fn tests_survive_hostile_arguments() {
    check(Kind::Test, |_| true);
}

#[test]
fn functions_survive_hostile_arguments() {
    check(Kind::Function, |_| true);
}

#[test]
fn methods_survive_hostile_arguments() {
    check(Kind::Method, |_| true);
}

/// Names of every kind with their keyword arguments, for the random cases.
static ALL: LazyLock<Vec<(Kind, &'static str, Vec<&'static str>)>> = LazyLock::new(|| {
    [Kind::Filter, Kind::Test, Kind::Function, Kind::Method]
        .into_iter()
        .flat_map(|kind| {
            table(kind)
                .into_iter()
                .map(move |(name, kw)| (kind, name, kw))
        })
        .collect()
});

/// Keyword arguments tried on every name, besides its own.
const COMMON_KWARGS: &[&str] = &["width", "indent", "count", "length", "levels"];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 384,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random combinations: any name, any input, up to three positional and two keyword
    /// arguments.
    #[test]
    fn random_calls_survive(
        which in 0..ALL.len(),
        input in 0..NASTY.len(),
        args in prop::collection::vec(0..NASTY.len(), 0..=3),
        kwargs in prop::collection::vec((0usize..64, 0..NASTY.len()), 0..=2),
    ) {
        let (kind, name, own) = &ALL[which];
        let names: Vec<&'static str> = own.iter().chain(COMMON_KWARGS).copied().collect();
        let mut kw: Vec<(&'static str, usize)> = Vec::new();
        for (k, v) in kwargs {
            let k = names[k % names.len()];
            if kw.iter().all(|(seen, _)| *seen != k) {
                kw.push((k, v));
            }
        }
        let case = Case { kind: *kind, name, input, args, kwargs: kw };
        let (failures, _) = run_cases(vec![case]);
        prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The harness really calls things: a width at the limit works, one above it is refused.
#[test]
fn the_harness_calls_what_it_names() {
    let at = |label: &str| {
        NASTY
            .iter()
            .position(|(l, _)| l == label)
            .expect("nasty value")
    };
    let case = |arg: &str| Case {
        kind: Kind::Filter,
        name: "center",
        input: at("\"x\""),
        args: vec![at(arg)],
        kwargs: vec![],
    };
    let ok = case("MAX_WIDTH").run().expect("center at the limit");
    assert_eq!(ok.as_str().map(str::len), Some(MAX_WIDTH));
    let err = case("MAX_WIDTH+1").run().unwrap_err();
    assert!(err.to_string().contains("limit of 65536"), "{err}");
    let kw = Case {
        kind: Kind::Filter,
        name: "indent",
        input: at("\"x\""),
        args: vec![],
        kwargs: vec![("width", at("10**12"))],
    };
    assert!(kw.run().unwrap_err().to_string().contains("indent: width"));
}

/// The cases from the report, through the real render path, with their messages.
#[test]
fn huge_sizes_are_refused_with_the_limit() {
    use super::eval_str;
    use serde_json::json;
    let fails = |src: &str| match eval_str(src, &json!({})) {
        Ok(v) => panic!("{src}: expected an error, got {v}"),
        Err(e) => e.message,
    };
    let cases: &[(&str, &str)] = &[
        (
            "{{ 'x' | center(10**12) }}",
            "center: width 1000000000000 is larger than the limit of 65536 characters",
        ),
        (
            "{{ {'a': [1]} | to_nice_json(indent=10**12) }}",
            "to_nice_json: indent 1000000000000 is larger than the limit of 65536 characters",
        ),
        (
            "{{ {'a': [1]} | to_json(indent=10**12) }}",
            "to_json: indent 1000000000000 is larger than the limit of 65536 characters",
        ),
        (
            "{{ {'a': [1]} | tojson(indent=10**12) }}",
            "tojson: indent 1000000000000 is larger than the limit of 65536 characters",
        ),
        (
            "{{ 'a\nb' | indent(10**12) }}",
            "indent: width 1000000000000 is larger than the limit of 65536 characters",
        ),
        (
            "{{ '%1000000000000d' | format(1) }}",
            "format: width or precision 1000000000000 is larger than the limit of 65536",
        ),
        (
            "{{ '{:1000000000000}'.format(1) }}",
            "str.format: width or precision 1000000000000 is larger than the limit",
        ),
        (
            "{{ [1, 2] | slice(10**12) }}",
            "slice: count 1000000000000 is larger than the limit of 1048576 items",
        ),
        (
            "{{ [1, 2] | batch(10**12, 0) }}",
            "batch: count 1000000000000 is larger than the limit of 1048576 items",
        ),
        (
            "{{ range(1000) | join('x' * 100000) }}",
            "join: the result would be larger than the limit of 16777216 bytes",
        ),
        (
            "{{ ('x ' * 10000) | wordwrap(width=1, wrapstring='y' * 10000) }}",
            "wordwrap: the result would be larger than the limit of 16777216 bytes",
        ),
        (
            "{{ ('x' * 100000) | regex_replace('', 'y' * 1000) }}",
            "regex_replace: the result would be larger than the limit of 16777216 bytes",
        ),
        (
            "{{ ('x' * 100000) | replace('x', 'y' * 1000) }}",
            "replace: the result would be larger than the limit of 16777216 bytes",
        ),
        (
            "{{ 1e300 | convert_from_epoch }}",
            "convert_from_epoch: timestamp out of range",
        ),
        ("{{ range(10**12) }}", "range has too many elements"),
        ("{{ 'x' * 10**12 }}", "ran out of fuel"),
    ];
    for (src, want) in cases {
        let msg = fails(src);
        assert!(msg.contains(want), "{src}: {msg}");
    }
    // A format jiff cannot write is an error, not a panic.
    for fmt in ["%Y %", "%K", "%::::z", "%Z", "%.3f %N", "%1000000000000Y"] {
        let _ = eval_str(&format!("{{{{ now('UTC', '{fmt}') }}}}"), &json!({}));
    }
    // Normal sizes are unchanged.
    assert_eq!(
        eval_str("{{ 'ab' | center(6) }}", &json!({})).unwrap(),
        json!("  ab  ")
    );
    assert_eq!(
        eval_str("{{ 'a\nb' | indent(2) }}", &json!({})).unwrap(),
        json!("a\n  b")
    );
}

/// Data that nests deeper than weft walks, or shares its parts so that it is far larger as
/// JSON than in memory, is refused instead of overflowing the stack or running for hours.
#[test]
fn deep_and_shared_values_are_refused() {
    use super::eval_str;
    use serde_json::json;
    let deep = format!(
        "{{% set ns = namespace(x=1) %}}{{% for i in range({}) %}}{{% set ns.x = [ns.x] %}}{{% endfor %}}",
        MAX_DEPTH + 10
    );
    for tail in [
        "{{ ns.x | to_json }}",
        "{{ ns.x | to_yaml }}",
        "{{ ns.x | tojson }}",
        "{{ ns.x | flatten }}",
        "{{ ns.x | json_query('@') }}",
    ] {
        let err = eval_str(&format!("{deep}{tail}"), &json!({})).unwrap_err();
        assert!(err.message.contains("nested more than"), "{tail}: {err}");
    }
    // The deepest allowed value goes through every walker, on a 2 MiB test thread.
    let deepest = format!(
        "{{% set ns = namespace(x=1) %}}{{% for i in range({}) %}}{{% set ns.x = [{{'a': ns.x}}] %}}{{% endfor %}}",
        MAX_DEPTH / 2
    );
    for tail in [
        "{{ ns.x }}",
        "{{ ns.x | to_json | length }}",
        "{{ ns.x | to_nice_json | length }}",
        "{{ ns.x | to_yaml | length }}",
        "{{ ns.x | tojson(indent=2) | length }}",
        "{{ ns.x | pprint | length }}",
        "{{ ns.x | flatten | length }}",
        "{{ ns.x | json_query('[0].a') | length }}",
        "{{ ns.x | jsonpath('$..a') | length }}",
        "{{ {'k': ns.x} | combine({'k': ns.x}, recursive=true) | length }}",
    ] {
        if let Err(e) = eval_str(&format!("{deepest}{tail}"), &json!({})) {
            panic!("{tail}: {e}");
        }
    }
    let shared = "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}";
    for tail in [
        "{{ ns.x | tojson | length }}",
        "{{ ns.x | pprint | length }}",
        "{{ ns.x | flatten | length }}",
    ] {
        let err = eval_str(&format!("{shared}{tail}"), &json!({})).unwrap_err();
        assert!(err.message.contains("limit"), "{tail}: {err}");
    }
}
