#!/usr/bin/env python3
"""Computes the expected results of tests/jinja/cases.yaml with Python Jinja2.

Usage: python3 tests/jinja/generate_cases.py [--check]   (--check: fail if the committed
expectations differ from what Jinja2 computes now; Python 3.11+, Jinja2 3.1, PyYAML, jmespath,
jsonpath-ng). Writes tests/jinja/expected.json, which engine/tests/template_conformance.rs
compares weft's results against.

weft's rules, applied here with Python Jinja2:

* A template that is exactly one ``{{ expr }}`` (whitespace around it allowed, no other
  ``{{``/``{%``) is evaluated with ``env.compile_expression(expr, undefined_to_none=False)``
  and its native value is the result (tuples, generators, ranges and dict views become
  lists). Anything else is rendered to a string.
* Undefined values follow minijinja's SemiStrict behaviour: printing, iterating, reading an
  attribute of, or converting an undefined value is an error; ``if x``, ``x is defined`` and
  ``x | default(..)`` work. A result that is (or contains) an undefined value, or that is not
  data (a function, a method...), is an error.
* Errors are recorded as ``{"error": true}``.

weft's filters that Jinja2 lacks (from_json, regex_search, combine, ...) are registered below
as Python reference implementations of weft's documented semantics (docs/templates.md);
keep them in step with engine/src/template/filters.rs.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email.utils
import hashlib
import hmac as hmac_mod
import io
import json
import math
import ntpath
import posixpath
import re
import sys
import types
import urllib.parse
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import jmespath
import jsonpath_ng.ext
import yaml

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases.yaml"
EXPECTED = HERE / "expected.json"


# --------------------------------------------------------------------------------------------
# Undefined handling: minijinja's SemiStrict


class SemiStrictUndefined(jinja2.StrictUndefined):
    """StrictUndefined that may be tested for truth (minijinja's SemiStrict): printing,
    iterating, comparing, converting or reading an attribute of it fails; `if x`,
    `x is defined` and `x | default(..)` work."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __int__(self) -> int:
        self._fail_with_undefined_error()

    def __float__(self) -> float:
        self._fail_with_undefined_error()


class FilterError(Exception):
    pass


def defined(v, name):
    if isinstance(v, jinja2.Undefined):
        raise jinja2.UndefinedError(f"{name}: the value is undefined")
    return v


def text(v, name):
    defined(v, name)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    raise FilterError(f"{name}: expected a string, got {type(v).__name__}")


def is_seq(v):
    return isinstance(v, (list, tuple)) or isinstance(v, types.GeneratorType)


# --------------------------------------------------------------------------------------------
# JSON / YAML / CSV


def from_json(v):
    if isinstance(v, (dict, list, tuple)):
        return v
    return json.loads(text(v, "from_json"))


def to_json(v, indent=None, sort_keys=False):
    defined(v, "to_json")
    return json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys)


def to_nice_json(v, indent=4):
    defined(v, "to_nice_json")
    return json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=True)


def json_escape(v):
    return json.dumps(text(v, "json_escape"), ensure_ascii=False)[1:-1]


def from_yaml(v):
    if isinstance(v, (dict, list, tuple)):
        return v
    return yaml.safe_load(text(v, "from_yaml"))


def from_yaml_all(v):
    return list(yaml.safe_load_all(text(v, "from_yaml_all")))


def to_yaml(v, indent=None, sort_keys=False):
    defined(v, "to_yaml")
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=sort_keys, allow_unicode=True)


def to_nice_yaml(v, indent=None):
    defined(v, "to_nice_yaml")
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True, allow_unicode=True)


def parse_csv(v, delimiter=",", header=True):
    if len(delimiter) != 1:
        raise FilterError("parse_csv: the delimiter must be one character")
    s = text(v, "parse_csv")
    if s.startswith("\ufeff"):
        s = s[1:]
    rows = [r for r in csv.reader(io.StringIO(s), delimiter=delimiter) if r not in ([], [""])]
    if not header:
        return rows
    if not rows:
        return []
    names, body = rows[0], rows[1:]
    return [{n: (row[i] if i < len(row) else None) for i, n in enumerate(names)} for row in body]


# --------------------------------------------------------------------------------------------
# Encodings and digests


def b64encode(v):
    return base64.b64encode(text(v, "b64encode").encode()).decode()


def b64decode(v):
    s = "".join(text(v, "b64decode").split()).replace("-", "+").replace("_", "/").rstrip("=")
    if len(s) % 4 == 1:
        raise FilterError("b64decode: invalid base64")
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s, validate=True).decode("utf-8")


def urldecode(v):
    return urllib.parse.unquote_plus(text(v, "urldecode"))


HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def hash_(v, algorithm="sha1"):
    alg = algorithm.lower()
    if alg not in HASHES:
        raise FilterError(f"hash: unknown algorithm {algorithm!r}")
    return hashlib.new(alg, text(v, "hash").encode()).hexdigest()


def hmac_(v, key, algorithm="sha256", encoding="hex"):
    alg = algorithm.lower()
    if alg not in HASHES:
        raise FilterError(f"hmac: unknown algorithm {algorithm!r}")
    digest = hmac_mod.new(text(key, "hmac").encode(), text(v, "hmac").encode(), alg).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    raise FilterError(f"hmac: unknown encoding {encoding!r}")


# --------------------------------------------------------------------------------------------
# Regular expressions (Ansible semantics)


def _flags(ignorecase=False, multiline=False):
    return (re.I if ignorecase else 0) | (re.M if multiline else 0)


def regex_search(v, pattern, *groups, ignorecase=False, multiline=False):
    s = text(v, "regex_search")
    wanted = []
    for g in groups:
        if g.startswith("\\g"):
            name = re.match(r"\\g<(\S+)>", g).group(1)
            wanted.append(int(name) if name.isdigit() else name)
        elif g.startswith("\\"):
            wanted.append(int(re.match(r"\\(\d+)", g).group(1)))
        else:
            raise FilterError("regex_search: unknown argument")
    m = re.search(pattern, s, _flags(ignorecase, multiline))
    if not m:
        return None
    if not wanted:
        return m.group()
    return [m.group(g) for g in wanted]


def regex_findall(v, pattern, ignorecase=False, multiline=False):
    found = re.findall(pattern, text(v, "regex_findall"), _flags(ignorecase, multiline))
    return [list(x) if isinstance(x, tuple) else x for x in found]


def regex_replace(v, pattern="", replacement="", ignorecase=False, multiline=False, count=0):
    return re.sub(pattern, replacement, text(v, "regex_replace"), count=count,
                  flags=_flags(ignorecase, multiline))


def regex_match(v, pattern, ignorecase=False, multiline=False):
    return bool(re.match(pattern, text(v, "regex_match"), _flags(ignorecase, multiline)))


def regex_escape(v):
    return re.escape(text(v, "regex_escape"))


def test_search(v, pattern, ignorecase=False, multiline=False):
    return bool(re.search(pattern, text(v, "search"), _flags(ignorecase, multiline)))


def test_regex(v, pattern, ignorecase=False, multiline=False, match_type="search"):
    fn = {"search": re.search, "match": re.match, "fullmatch": re.fullmatch}[match_type]
    return bool(fn(pattern, text(v, "regex"), _flags(ignorecase, multiline)))


# --------------------------------------------------------------------------------------------
# Dates and times: RFC 3339 strings, `Z` for UTC


UTC = dt.timezone.utc


def _tz(name):
    if name.lower() == "utc" or name == "Z":
        return UTC
    return ZoneInfo(name)


def _epoch(v):
    return dt.datetime.fromtimestamp(v, UTC)


def _to_dt(v, tz=UTC):
    defined(v, "datetime")
    if isinstance(v, bool):
        raise FilterError("expected a date/time")
    if isinstance(v, (int, float)):
        return _epoch(v)
    if not isinstance(v, str):
        raise FilterError("expected a date/time")
    s = v.strip()
    try:
        d = dt.datetime.fromisoformat(s)
    except ValueError:
        try:
            d = email.utils.parsedate_to_datetime(s)
        except (TypeError, ValueError) as e:
            raise FilterError(f"cannot parse {s!r}") from e
    if d.tzinfo is None:
        d = d.replace(tzinfo=tz)
    return d


def _iso(d):
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        s += (".%06d" % d.microsecond).rstrip("0")
    off = d.utcoffset()
    zone_name = getattr(d.tzinfo, "key", None)
    if off == dt.timedelta(0) and zone_name in (None, "UTC", "Etc/UTC"):
        return s + "Z"
    secs = int(off.total_seconds())
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    s += "%s%02d:%02d" % (sign, secs // 3600, secs % 3600 // 60)
    if secs % 60:
        s += ":%02d" % (secs % 60)
    return s


def parse_datetime(v, format=None, tz=None):
    zone = _tz(tz) if tz else UTC
    if format is not None and isinstance(v, str):
        d = dt.datetime.strptime(v, format)
        if d.tzinfo is None:
            d = d.replace(tzinfo=zone)
        elif d.utcoffset() == dt.timedelta(0):
            d = d.replace(tzinfo=UTC)
    else:
        d = _to_dt(v, zone)
    return _iso(d)


def format_datetime(v, format=None, tz=None):
    d = _to_dt(v)
    if tz:
        d = d.astimezone(_tz(tz))
    return _iso(d) if format is None else d.strftime(format)


def as_timezone(v, tz):
    return _iso(_to_dt(v).astimezone(_tz(tz)))


def convert_from_epoch(v, tz=None):
    defined(v, "convert_from_epoch")
    if isinstance(v, str):
        f = float(v.strip())
        v = int(f) if f.is_integer() else f
    d = _epoch(v)
    if tz:
        d = d.astimezone(_tz(tz))
    return _iso(d)


def convert_to_epoch(v):
    return math.floor(_to_dt(v).timestamp())


def to_human_time_from_seconds(v):
    defined(v, "to_human_time_from_seconds")
    n = math.floor(abs(v) + 0.5)
    if n == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if n >= size:
            parts.append(f"{n // size}{unit}")
            n %= size
    return ("-" if v < 0 else "") + " ".join(parts)


# --------------------------------------------------------------------------------------------
# Data shaping (Ansible semantics)


def _merge_hash(x, y, recursive, list_merge):
    if x == {} or x == y:
        return dict(y)
    x = dict(x)
    if not recursive and list_merge == "replace":
        x.update(y)
        return x
    for key, y_value in y.items():
        if key not in x:
            x[key] = y_value
            continue
        x_value = x[key]
        if isinstance(x_value, dict) and isinstance(y_value, dict):
            x[key] = _merge_hash(x_value, y_value, recursive, list_merge) if recursive else y_value
            continue
        if isinstance(x_value, list) and isinstance(y_value, list):
            if list_merge == "replace":
                x[key] = y_value
            elif list_merge == "append":
                x[key] = x_value + y_value
            elif list_merge == "prepend":
                x[key] = y_value + x_value
            elif list_merge == "append_rp":
                x[key] = [z for z in x_value if z not in y_value] + y_value
            elif list_merge == "prepend_rp":
                x[key] = y_value + [z for z in x_value if z not in y_value]
            continue
        x[key] = y_value
    return x


def combine(*terms, recursive=False, list_merge="replace"):
    if list_merge not in ("replace", "keep", "append", "prepend", "append_rp", "prepend_rp"):
        raise FilterError("combine: bad list_merge")
    dicts = []
    for t in terms:
        defined(t, "combine")
        if is_seq(t):
            dicts.extend(t)
        else:
            dicts.append(t)
    if any(not isinstance(d, dict) for d in dicts):
        raise FilterError("combine: expected maps")
    if not dicts:
        return {}
    it = reversed(dicts)
    result = next(it)
    for d in it:
        result = _merge_hash(d, result, recursive, list_merge)
    return result


def json_query(v, expr):
    return jmespath.search(expr, defined(v, "json_query"))


def jsonpath(v, path):
    return [m.value for m in jsonpath_ng.ext.parse(path).find(defined(v, "jsonpath"))]


def flatten(v, levels=None, skip_nulls=True):
    defined(v, "flatten")
    if not is_seq(v):
        raise FilterError("flatten: expected a list")
    out = []
    for element in v:
        if skip_nulls and (element is None or element in ("None", "null")):
            continue
        if is_seq(element):
            if levels is None:
                out.extend(flatten(element, skip_nulls=skip_nulls))
            elif levels >= 1:
                out.extend(flatten(element, levels=int(levels) - 1, skip_nulls=skip_nulls))
            else:
                out.append(element)
        else:
            out.append(element)
    return out


def dict2items(v, key_name="key", value_name="value"):
    if not isinstance(defined(v, "dict2items"), dict):
        raise FilterError("dict2items: expected a map")
    return [{key_name: k, value_name: x} for k, x in v.items()]


def items2dict(v, key_name="key", value_name="value"):
    out = {}
    for item in defined(v, "items2dict"):
        out[item[key_name]] = item[value_name]
    return out


def _unique(xs):
    out = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out


def union(a, b):
    return _unique(list(a) + list(b))


def intersect(a, b):
    return [x for x in _unique(a) if x in b]


def difference(a, b):
    return [x for x in _unique(a) if x not in b]


def symmetric_difference(a, b):
    both = intersect(a, b)
    return [x for x in union(a, b) if x not in both]


def zip_(v, *others):
    return [list(t) for t in zip(v, *others)]


def split(v, sep=None, maxsplit=-1):
    return text(v, "split").split(sep, maxsplit)


# --------------------------------------------------------------------------------------------
# Scalars, paths, versions


def ternary(v, true_val, false_val, none_val=None):
    if v is None and none_val is not None:
        return none_val
    return true_val if v else false_val


def to_bool(v):
    if isinstance(v, bool):
        return v
    if v is None or isinstance(v, jinja2.Undefined):
        return False
    if isinstance(v, str):
        v = v.lower()
    return v in ("yes", "on", "1", "true", 1)


def mandatory(v, msg=None):
    if isinstance(v, jinja2.Undefined):
        raise FilterError(msg or "mandatory: the value is undefined")
    return v


def type_debug(v):
    return type(v).__name__


def _version_parts(s):
    parts = []
    for tok in re.findall(r"\d+|[A-Za-z]+", s):
        parts.append((1, int(tok)) if tok.isdigit() else (0, tok.lower()))
    return parts


def version_compare(v, other, op="eq"):
    a, b = _version_parts(text(v, "version_compare")), _version_parts(text(other, "version_compare"))
    ops = {
        "==": a == b, "=": a == b, "eq": a == b,
        "!=": a != b, "<>": a != b, "ne": a != b,
        "<": a < b, "lt": a < b, "<=": a <= b, "le": a <= b,
        ">": a > b, "gt": a > b, ">=": a >= b, "ge": a >= b,
    }
    if op not in ops:
        raise FilterError(f"version_compare: unknown operator {op!r}")
    return ops[op]


WEFT_FILTERS = {
    "from_json": from_json, "json_parse": from_json, "from_json_string": from_json,
    "to_json": to_json, "json_stringify": to_json, "to_json_string": to_json,
    "json_dump": to_json, "to_nice_json": to_nice_json, "json_escape": json_escape,
    "from_yaml": from_yaml, "yaml_parse": from_yaml, "from_yaml_string": from_yaml,
    "from_yaml_all": from_yaml_all,
    "to_yaml": to_yaml, "to_yaml_string": to_yaml, "yaml_dump": to_yaml,
    "to_nice_yaml": to_nice_yaml, "parse_csv": parse_csv,
    "b64encode": b64encode, "base64": b64encode, "b64decode": b64decode,
    "decode_base64": b64decode, "urldecode": urldecode, "hash": hash_, "hmac": hmac_,
    "regex_search": regex_search, "regex_findall": regex_findall,
    "regex_replace": regex_replace, "regex_match": regex_match, "regex_escape": regex_escape,
    "parse_datetime": parse_datetime, "format_datetime": format_datetime,
    "as_timezone": as_timezone, "convert_from_epoch": convert_from_epoch,
    "convert_to_epoch": convert_to_epoch, "to_epoch": convert_to_epoch,
    "to_human_time_from_seconds": to_human_time_from_seconds,
    "combine": combine, "json_query": json_query, "jsonpath": jsonpath, "flatten": flatten,
    "dict2items": dict2items, "items2dict": items2dict, "union": union,
    "intersect": intersect, "difference": difference,
    "symmetric_difference": symmetric_difference, "zip": zip_, "split": split,
    "ternary": ternary, "bool": to_bool, "mandatory": mandatory, "type_debug": type_debug,
    "basename": posixpath.basename, "dirname": posixpath.dirname,
    "win_basename": lambda v: ntpath.basename(v), "win_dirname": lambda v: ntpath.dirname(v),
    "version_compare": version_compare,
}

WEFT_TESTS = {
    "match": regex_match, "search": test_search, "regex": test_regex,
    "version": version_compare, "version_compare": version_compare,
    "subset": lambda a, b: all(x in b for x in a),
    "superset": lambda a, b: all(x in a for x in b),
    "contains": lambda a, x: x in a,
}


# --------------------------------------------------------------------------------------------
# Evaluation with weft's rules


class NotData(Exception):
    pass


def to_data(v):
    """A native Jinja2 value as JSON data, the way weft converts results."""
    if isinstance(v, jinja2.Undefined):
        raise NotData("undefined")
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        return str(v)
    if isinstance(v, dict):
        return {_key(k): to_data(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, range, types.GeneratorType, type({}.keys()),
                      type({}.values()), type({}.items()), map, filter, zip)):
        return [to_data(x) for x in v]
    raise NotData(f"not data: {type(v).__name__}")


def _key(k):
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "none"
    return str(k)


def single_expression(s):
    """The expression of a template that is exactly one ``{{ expr }}`` (as weft decides)."""
    t = s.strip()
    if not (t.startswith("{{") and t.endswith("}}")):
        return None
    inner = t[2:-2]
    if inner.startswith("-"):
        inner = inner[1:]
    if inner.endswith("-"):
        inner = inner[:-1]
    if any(tok in inner for tok in ("{{", "}}", "{%", "%}")):
        return None
    return inner


def make_env():
    env = jinja2.Environment(
        undefined=SemiStrictUndefined,
        extensions=["jinja2.ext.loopcontrols"],
        autoescape=False,
    )
    env.filters.update(WEFT_FILTERS)
    env.tests.update(WEFT_TESTS)
    return env


def evaluate(env, template, ctx):
    """(result, error message or None)."""
    expr = single_expression(template)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if expr is not None:
                value = env.compile_expression(expr, undefined_to_none=False)(**ctx)
                return to_data(value), None
            return env.from_string(template).render(ctx), None
    except Exception as e:  # noqa: BLE001 - every failure is an expected error
        return None, f"{type(e).__name__}: {e}"


def main():
    spec = yaml.safe_load(CASES.read_text())
    contexts = spec["contexts"]
    env = make_env()
    out_cases = []
    seen = set()
    for case in spec["cases"]:
        cid = case["id"]
        if cid in seen:
            sys.exit(f"duplicate case id {cid}")
        seen.add(cid)
        ctx_ref = case.get("context", "msp")
        ctx = contexts[ctx_ref] if isinstance(ctx_ref, str) else ctx_ref
        value, err = evaluate(env, case["template"], ctx)
        entry = {"id": cid, "template": case["template"], "context": ctx_ref}
        if err is None:
            entry["expected"] = value
        else:
            entry["expected"] = {"error": True}
            entry["jinja2_error"] = err
        if "note" in case:
            entry["note"] = case["note"]
        out_cases.append(entry)
    for cid in (spec.get("differences") or {}):
        if cid not in seen:
            sys.exit(f"differences names an unknown case {cid}")
    doc = {
        "generated_by": "tests/jinja/generate_cases.py",
        "jinja2_version": jinja2.__version__,
        "contexts": contexts,
        "cases": out_cases,
    }
    text_out = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        if EXPECTED.read_text() != text_out:
            sys.exit(f"{EXPECTED.relative_to(HERE.parent.parent)} is out of date with Jinja2 "
                     f"{jinja2.__version__}: run python3 tests/jinja/generate_cases.py")
        print(f"{EXPECTED.relative_to(HERE.parent.parent)} matches Jinja2 {jinja2.__version__}")
        return
    EXPECTED.write_text(text_out)
    errors = sum(1 for c in out_cases if "jinja2_error" in c)
    print(f"wrote {EXPECTED.relative_to(HERE.parent.parent)}: {len(out_cases)} cases "
          f"({errors} expected errors)")


if __name__ == "__main__":
    main()
