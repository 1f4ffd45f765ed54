//! The filters and tests templates can use, each with a one-line description: what editors
//! complete and explain (`weft lsp`), and the names "did you mean" suggestions are taken
//! from. minijinja cannot list what an environment holds, so the names are written here; a
//! name that the environment does not have is never offered (see [`filters`]).

/// A filter or test and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The name written after `|` (a filter) or `is` (a test).
    pub name: &'static str,
    /// One line: what it does, with its arguments.
    pub doc: &'static str,
}

const fn e(name: &'static str, doc: &'static str) -> Entry {
    Entry { name, doc }
}

const FILTERS: &[Entry] = &[
    e("abs", "The absolute value of a number."),
    e(
        "as_timezone",
        "A date (RFC 3339, RFC 2822 or Unix seconds) in another time zone: `as_timezone('Europe/Paris')`.",
    ),
    e(
        "attr",
        "An attribute of a value by name: `x | attr('id')` (undefined when missing).",
    ),
    e(
        "b64decode",
        "Decodes base64 (padding optional, URL-safe alphabet accepted) to UTF-8 text.",
    ),
    e("b64encode", "Encodes text as base64 (alias `base64`)."),
    e("base64", "Encodes text as base64 (alias of `b64encode`)."),
    e(
        "basename",
        "The last component of a `/` path: `'/a/b.txt' | basename` is `b.txt`.",
    ),
    e(
        "batch",
        "Splits a list into lists of N items: `batch(3)`, `batch(3, fill_with)`.",
    ),
    e(
        "bool",
        "Converts to a boolean the Ansible way (`'yes'`, `'on'`, `'1'`, `'true'` are true).",
    ),
    e(
        "capitalize",
        "The first character upper case, the rest lower case.",
    ),
    e(
        "center",
        "Centers text in a field of N characters: `center(40)`.",
    ),
    e(
        "chain",
        "Chains lists (or maps, strings) into one iterable: `a | chain(b, c)`.",
    ),
    e(
        "combine",
        "Merges maps, later ones win: `a | combine(b, recursive=true, list_merge='append')`.",
    ),
    e(
        "convert_from_epoch",
        "Unix seconds to an RFC 3339 date (UTC, or the zone given): `convert_from_epoch('Asia/Tokyo')`.",
    ),
    e(
        "convert_to_epoch",
        "A date to whole Unix seconds (alias `to_epoch`).",
    ),
    e("count", "The number of items (alias of `length`)."),
    e("d", "Alias of `default`."),
    e(
        "dateformat",
        "Formats a date: `dateformat(format='%Y-%m-%d', tz='UTC')` (minijinja-contrib).",
    ),
    e(
        "datetimeformat",
        "Formats a date and time: `datetimeformat(format='%Y-%m-%d %H:%M', tz='UTC')`.",
    ),
    e(
        "decode_base64",
        "Decodes base64 to UTF-8 text (alias of `b64decode`).",
    ),
    e(
        "default",
        "A fallback for an undefined value: `default('x')`; `default('x', true)` also replaces empty and false values.",
    ),
    e(
        "dict2items",
        "A map to a list of `{key, value}` entries (`key_name=`, `value_name=`).",
    ),
    e(
        "dictsort",
        "A map's `(key, value)` pairs sorted by key (`by='value'`, `reverse=true`).",
    ),
    e(
        "difference",
        "The items of a list that are not in another: `a | difference(b)`.",
    ),
    e("dirname", "All but the last component of a `/` path."),
    e("e", "Alias of `escape`."),
    e("escape", "Escapes `&`, `<`, `>`, `\"` and `'` for HTML."),
    e(
        "filesizeformat",
        "A byte count as a human size: `1.2 MB` (`filesizeformat(true)` for KiB/MiB).",
    ),
    e(
        "first",
        "The first item of a list or the first character of text.",
    ),
    e(
        "flatten",
        "Flattens nested lists (`flatten(1)` one level); nulls dropped unless `skip_nulls=false`.",
    ),
    e(
        "float",
        "Converts to a float; `0.0` (or the default given) for text that is not a number.",
    ),
    e(
        "format",
        "printf-style formatting: `'%s is %d' | format(name, n)`.",
    ),
    e(
        "format_datetime",
        "Formats a date with strftime in a zone: `format_datetime('%d %b %Y', 'Europe/Paris')`.",
    ),
    e(
        "from_json",
        "Parses JSON text (a list or map passes through unchanged).",
    ),
    e("from_json_string", "Alias of `from_json`."),
    e(
        "from_yaml",
        "Parses YAML text (YAML 1.2, `<<` merge keys applied).",
    ),
    e(
        "from_yaml_all",
        "Parses every document of a multi-document YAML text into a list.",
    ),
    e("from_yaml_string", "Alias of `from_yaml`."),
    e(
        "groupby",
        "Groups a list of maps by an attribute: `groupby('status')` → `[{grouper, list}]`.",
    ),
    e(
        "hash",
        "Hex digest: `hash('sha256')` (`md5`, `sha1` default, `sha224`, `sha256`, `sha384`, `sha512`).",
    ),
    e(
        "hmac",
        "Hex HMAC: `body | hmac(secret, 'sha256')`; `hmac(secret, 'sha1', 'base64')` for base64.",
    ),
    e(
        "indent",
        "Indents every line but the first by N spaces: `indent(4)`.",
    ),
    e(
        "int",
        "Converts to an integer; `0` (or the default given) for text that is not a number; `int(base=16)`.",
    ),
    e(
        "intersect",
        "The items two lists share: `a | intersect(b)`.",
    ),
    e(
        "items",
        "A map's `(key, value)` pairs, for `{% for k, v in m | items %}`.",
    ),
    e(
        "items2dict",
        "A list of `{key, value}` entries to a map (`key_name=`, `value_name=`).",
    ),
    e(
        "join",
        "Joins a list into text: `join(', ')`; `join(', ', attribute='name')`.",
    ),
    e("json_dump", "Alias of `to_json`."),
    e(
        "json_escape",
        "Escapes text to embed it in a JSON string (`\"` → `\\\"`).",
    ),
    e("json_parse", "Alias of `from_json`."),
    e(
        "json_query",
        "Queries data with JMESPath: `json_query('items[?isActive].id')`.",
    ),
    e("json_stringify", "Alias of `to_json`."),
    e(
        "jsonpath",
        "The list of matches of an RFC 9535 JSONPath: `jsonpath('$.items[*].id')`.",
    ),
    e(
        "last",
        "The last item of a list or the last character of text.",
    ),
    e(
        "length",
        "The number of items of a list or map, or characters of text.",
    ),
    e("lines", "Splits text into a list of lines."),
    e(
        "list",
        "Converts to a list (a map's keys, a text's characters).",
    ),
    e("lower", "Lower case."),
    e(
        "mandatory",
        "Fails with a message when the value is undefined: `mandatory('owner is required')`.",
    ),
    e(
        "map",
        "Applies a filter to each item, or takes an attribute: `map(attribute='id')`, `map('upper')`.",
    ),
    e("max", "The largest item (`attribute=`, `case_sensitive=`)."),
    e(
        "min",
        "The smallest item (`attribute=`, `case_sensitive=`).",
    ),
    e(
        "parse_csv",
        "Parses CSV text into a list of maps by header (`parse_csv(';')`, `header=false` for lists).",
    ),
    e(
        "parse_datetime",
        "Reads a date to RFC 3339: `parse_datetime('%m/%d/%Y %H:%M')`, `parse_datetime(tz='Europe/Paris')`.",
    ),
    e(
        "pluralize",
        "A plural suffix for a count: `n | pluralize` is `s` unless n is 1 (`pluralize('y', 'ies')`).",
    ),
    e(
        "pprint",
        "A readable representation of a value, for debugging.",
    ),
    e(
        "regex_escape",
        "Escapes the characters regular expressions treat specially.",
    ),
    e(
        "regex_findall",
        "Every match of a regular expression: `regex_findall('\\d+')` (groups → their matches).",
    ),
    e(
        "regex_match",
        "Does a regular expression match at the start of the text? `regex_match('ERR-\\d+')`.",
    ),
    e(
        "regex_replace",
        "Replaces matches of a regular expression: `regex_replace('(\\w+), (\\w+)', '\\\\2 \\\\1')`.",
    ),
    e(
        "regex_search",
        "The first match of a regular expression, or `none`: `regex_search('\\d+')`.",
    ),
    e(
        "reject",
        "The items a test rejects: `reject('none')`, `reject('eq', 3)`.",
    ),
    e(
        "rejectattr",
        "The items whose attribute a test rejects: `rejectattr('status', 'eq', 'closed')`.",
    ),
    e(
        "replace",
        "Replaces text: `replace('old', 'new')`, `replace('a', 'b', 1)` for the first only.",
    ),
    e("reverse", "A list or text in reverse order."),
    e(
        "round",
        "Rounds a number: `round(2)`, `round(0, 'floor')` / `'ceil'`.",
    ),
    e(
        "safe",
        "Marks text as safe (weft does not auto-escape; kept for Jinja2 compatibility).",
    ),
    e(
        "select",
        "The items a test accepts: `select('odd')`, `select('gt', 3)`; without a test, the truthy ones.",
    ),
    e(
        "selectattr",
        "The items whose attribute a test accepts: `selectattr('status', 'eq', 'open')`.",
    ),
    e("slice", "Splits a list into N slices: `slice(3)`."),
    e(
        "sort",
        "Sorts a list: `sort(attribute='priority,id', reverse=true, case_sensitive=false)`.",
    ),
    e(
        "split",
        "Splits text: `split(',')`, `split(',', 1)`; without an argument on whitespace.",
    ),
    e("string", "Converts to text."),
    e("striptags", "Removes HTML tags and collapses whitespace."),
    e("sum", "Adds the items up (`attribute=`, `start=`)."),
    e(
        "symmetric_difference",
        "The items in exactly one of two lists: `a | symmetric_difference(b)`.",
    ),
    e(
        "ternary",
        "Chooses by truth: `ok | ternary('yes', 'no')` (third value for none).",
    ),
    e(
        "timeformat",
        "Formats a time: `timeformat(format='%H:%M', tz='UTC')` (minijinja-contrib).",
    ),
    e("title", "Title Case: each word capitalized."),
    e(
        "to_epoch",
        "A date to whole Unix seconds (alias of `convert_to_epoch`).",
    ),
    e(
        "to_human_time_from_seconds",
        "A number of seconds as `1d 2h 3m 4s`.",
    ),
    e(
        "to_json",
        "Serializes to JSON text: `to_json(indent=2)`, `to_json(sort_keys=true)`.",
    ),
    e("to_json_string", "Alias of `to_json`."),
    e(
        "to_nice_json",
        "Serializes to JSON indented by 4 with keys sorted.",
    ),
    e("to_nice_yaml", "Serializes to YAML with keys sorted."),
    e(
        "to_yaml",
        "Serializes to YAML text: `to_yaml(sort_keys=true)`.",
    ),
    e("to_yaml_string", "Alias of `to_yaml`."),
    e(
        "tojson",
        "Serializes to JSON text (minijinja's; `to_json` takes more options).",
    ),
    e(
        "trim",
        "Removes leading and trailing whitespace (or the characters given).",
    ),
    e(
        "truncate",
        "Shortens text to N characters: `truncate(200)`, `truncate(20, true)`, `truncate(20, end=' [more]')`.",
    ),
    e(
        "type_debug",
        "The type name of a value (`string`, `number`, `map`, …).",
    ),
    e(
        "union",
        "The items of two lists without duplicates: `a | union(b)`.",
    ),
    e(
        "unique",
        "A list without duplicates (`attribute=`, `case_sensitive=`).",
    ),
    e("upper", "Upper case."),
    e("urldecode", "Decodes percent-encoding (`+` as a space)."),
    e(
        "urlencode",
        "Percent-encodes text, or a map as a query string.",
    ),
    e(
        "version_compare",
        "Compares version strings: `version_compare('2.1', '>=')` (`strict=`, `version_type=`).",
    ),
    e("win_basename", "The last component of a Windows `\\` path."),
    e(
        "win_dirname",
        "All but the last component of a Windows `\\` path.",
    ),
    e("wordcount", "The number of words."),
    e("wordwrap", "Wraps text at N characters: `wordwrap(72)`."),
    e("yaml_dump", "Alias of `to_yaml`."),
    e("yaml_parse", "Alias of `from_yaml`."),
    e(
        "zip",
        "Pairs the items of lists: `['a', 'b'] | zip([1, 2]) | list` → `[['a', 1], ['b', 2]]`.",
    ),
];

const TESTS: &[Entry] = &[
    e("boolean", "Is the value `true` or `false`?"),
    e(
        "contains",
        "Does a list contain the value? `ids is contains(7)`.",
    ),
    e("defined", "Is the value defined? (`CTX.owner is defined`)"),
    e(
        "divisibleby",
        "Is the number divisible by N? `n is divisibleby(3)`.",
    ),
    e("endingwith", "Does the text end with the given text?"),
    e(
        "eq",
        "Is the value equal to the argument? (alias `equalto`, `==`)",
    ),
    e("equalto", "Alias of `eq`."),
    e("even", "Is the number even?"),
    e("false", "Is the value `false`?"),
    e("filter", "Is there a filter of this name?"),
    e("float", "Is the value a float?"),
    e("ge", "Is the value greater than or equal to the argument?"),
    e("greaterthan", "Alias of `gt`."),
    e("gt", "Is the value greater than the argument?"),
    e(
        "in",
        "Is the value in the list, map or text given? `x is in([1, 2])`.",
    ),
    e("int", "Alias of `integer`."),
    e("integer", "Is the value an integer?"),
    e(
        "iterable",
        "Can the value be iterated (a list, map or text)?",
    ),
    e("le", "Is the value less than or equal to the argument?"),
    e("lessthan", "Alias of `lt`."),
    e("lower", "Is the text all lower case?"),
    e("lt", "Is the value less than the argument?"),
    e("mapping", "Is the value a map?"),
    e(
        "match",
        "Does a regular expression match at the start? `host is match('SRV\\d+')`.",
    ),
    e("ne", "Is the value different from the argument?"),
    e("none", "Is the value `none`?"),
    e("number", "Is the value a number?"),
    e("odd", "Is the number odd?"),
    e(
        "regex",
        "Does a regular expression match? `regex(pattern, match_type='search'|'match'|'fullmatch')`.",
    ),
    e("safe", "Is the text marked safe?"),
    e("sameas", "Is the value the same object as the argument?"),
    e(
        "search",
        "Does a regular expression match anywhere? `summary is search('disk', ignorecase=true)`.",
    ),
    e("sequence", "Is the value a list (or text)?"),
    e("startingwith", "Does the text start with the given text?"),
    e("string", "Is the value text?"),
    e(
        "subset",
        "Are all items of the list in another? `a is subset(b)`.",
    ),
    e(
        "superset",
        "Does the list hold every item of another? `a is superset(b)`.",
    ),
    e("test", "Is there a test of this name?"),
    e("true", "Is the value `true`?"),
    e("undefined", "Is the value undefined?"),
    e("upper", "Is the text all upper case?"),
    e(
        "version",
        "Compares version strings: `v is version('2.0', '>=')`.",
    ),
    e("version_compare", "Alias of the `version` test."),
];

/// The filters the template environment has, by name (the test below holds the list to
/// the environment).
pub fn filters() -> impl Iterator<Item = &'static Entry> {
    FILTERS.iter()
}

/// The tests the template environment has, by name.
pub fn tests() -> impl Iterator<Item = &'static Entry> {
    TESTS.iter()
}

/// A filter's entry, if the environment has it.
pub fn filter(name: &str) -> Option<&'static Entry> {
    filters().find(|e| e.name == name)
}

/// A test's entry, if the environment has it.
pub fn test(name: &str) -> Option<&'static Entry> {
    tests().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_exists_once_and_in_order() {
        for (list, test) in [(FILTERS, false), (TESTS, true)] {
            for pair in list.windows(2) {
                assert!(
                    pair[0].name < pair[1].name,
                    "{} before {}",
                    pair[0].name,
                    pair[1].name
                );
            }
            for entry in list {
                assert!(
                    super::super::exists(entry.name, test),
                    "{} is not registered",
                    entry.name
                );
                assert!(!entry.doc.is_empty() && !entry.doc.contains('\n'));
            }
        }
        assert_eq!(filter("truncate").map(|e| e.name), Some("truncate"));
        assert_eq!(test("defined").map(|e| e.name), Some("defined"));
        assert!(filter("no_such_filter").is_none());
    }
}
