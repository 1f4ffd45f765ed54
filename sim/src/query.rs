//! The query engine: validation and evaluation of Autotask filters.
//!
//! Semantics chosen where the reference is silent: string comparisons are case-insensitive
//! (SQL Server default collation); a null field value matches nothing except `notExist`
//! (SQL NULL semantics, so `noteq` does not match nulls); numbers given as strings are
//! compared as numbers on numeric fields; dates compare as instants (a bare date is midnight
//! UTC).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::data::UdfDefinition;
use crate::schema::Spec;

#[derive(Debug, Clone)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Field {
        field: String,
        udf: bool,
        data_type: &'static str,
        op: Op,
        value: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

/// Looks a key up case-insensitively.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Validates the `filter` array of a query body.
pub fn compile(spec: &Spec, udfs: &[UdfDefinition], filter: &Value) -> Result<Vec<Cond>, String> {
    let items = match filter {
        Value::Array(items) => items,
        Value::Null => return Err("filter is required.".into()),
        _ => return Err("filter must be an array.".into()),
    };
    if items.is_empty() {
        return Err("filter is required.".into());
    }
    let mut udf_count = 0;
    let conds = items
        .iter()
        .map(|i| compile_one(spec, udfs, i, &mut udf_count))
        .collect::<Result<Vec<_>, _>>()?;
    if udf_count > 1 {
        return Err("Only one user-defined field can be queried at a time.".into());
    }
    Ok(conds)
}

fn compile_one(
    spec: &Spec,
    udfs: &[UdfDefinition],
    item: &Value,
    udf_count: &mut usize,
) -> Result<Cond, String> {
    let obj = item
        .as_object()
        .ok_or_else(|| "Each filter item must be an object.".to_string())?;
    let op = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| "Filter item is missing op.".to_string())?;
    let lower = op.to_ascii_lowercase();
    if lower == "and" || lower == "or" {
        let items = get_ci(obj, "items")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("The '{op}' operator requires items."))?;
        if items.is_empty() {
            return Err(format!("The '{op}' operator requires items."));
        }
        let inner = items
            .iter()
            .map(|i| compile_one(spec, udfs, i, udf_count))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if lower == "and" {
            Cond::And(inner)
        } else {
            Cond::Or(inner)
        });
    }
    let op_enum = match lower.as_str() {
        "eq" => Op::Eq,
        "noteq" => Op::NotEq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "beginswith" => Op::BeginsWith,
        "endswith" => Op::EndsWith,
        "contains" => Op::Contains,
        "exist" => Op::Exist,
        "notexist" => Op::NotExist,
        "in" => Op::In,
        "notin" => Op::NotIn,
        _ => return Err(format!("Invalid filter operator: {op}.")),
    };
    let field = get_ci(obj, "field")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter item with op '{op}' is missing field."))?;
    let udf = match get_ci(obj, "udf") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("udf must be true or false.".into()),
    };
    let (name, data_type) = if udf {
        let def = udfs
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(field))
            .ok_or_else(|| format!("Unable to find {field} in the UserDefinedFields."))?;
        *udf_count += 1;
        (
            def.name.clone(),
            match def.udf_type.as_str() {
                "number" | "integer" | "decimal" => "double",
                "date" | "datetime" => "datetime",
                _ => "string",
            },
        )
    } else {
        let f = spec
            .field(field)
            .ok_or_else(|| format!("Unable to find {field} in the {} Entity.", spec.name))?;
        if !f.queryable {
            return Err(format!("The field {} is not queryable.", f.name));
        }
        (f.name.to_string(), f.data_type)
    };
    let value = get_ci(obj, "value").cloned().unwrap_or(Value::Null);
    match op_enum {
        Op::Exist | Op::NotExist => {}
        Op::In | Op::NotIn => {
            let arr = value
                .as_array()
                .ok_or_else(|| format!("The '{op}' operator requires an array value."))?;
            for v in arr {
                check_value(&name, data_type, v)?;
            }
        }
        _ => check_value(&name, data_type, &value)?,
    }
    Ok(Cond::Field {
        field: name,
        udf,
        data_type,
        op: op_enum,
        value,
    })
}

fn check_value(field: &str, data_type: &str, v: &Value) -> Result<(), String> {
    match (data_type, v) {
        (_, Value::Null) => Err(format!("A value is required for field {field}.")),
        ("boolean", Value::Bool(_)) => Ok(()),
        ("boolean", Value::String(s)) if s == "true" || s == "false" => Ok(()),
        ("boolean", _) => Err(format!(
            "The value for boolean field {field} must be true or false."
        )),
        ("integer" | "long" | "double", Value::Number(_)) => Ok(()),
        ("integer" | "long" | "double", Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
            Ok(())
        }
        ("integer" | "long" | "double", _) => {
            Err(format!("The value {v} is not valid for field {field}."))
        }
        (_, Value::Object(_) | Value::Array(_)) => {
            Err(format!("The value {v} is not valid for field {field}."))
        }
        _ => Ok(()),
    }
}

/// Does the record match every condition (top-level items are ANDed)?
pub fn matches_all(conds: &[Cond], rec: &Map<String, Value>) -> bool {
    conds.iter().all(|c| matches(c, rec))
}

fn matches(cond: &Cond, rec: &Map<String, Value>) -> bool {
    match cond {
        Cond::And(v) => v.iter().all(|c| matches(c, rec)),
        Cond::Or(v) => v.iter().any(|c| matches(c, rec)),
        Cond::Field {
            field,
            udf,
            data_type,
            op,
            value,
        } => {
            let actual = if *udf {
                udf_value(rec, field)
            } else {
                rec.get(field).cloned().unwrap_or(Value::Null)
            };
            let actual = match actual {
                Value::String(s) if s.is_empty() && *udf => Value::Null,
                v => v,
            };
            match op {
                Op::Exist => !actual.is_null(),
                Op::NotExist => actual.is_null(),
                _ if actual.is_null() => false,
                Op::In => value.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|v| compare(data_type, &actual, v) == Some(Ordering::Equal))
                }),
                Op::NotIn => value.as_array().is_some_and(|a| {
                    !a.iter()
                        .any(|v| compare(data_type, &actual, v) == Some(Ordering::Equal))
                }),
                Op::BeginsWith | Op::EndsWith | Op::Contains => {
                    let a = text(&actual).to_lowercase();
                    let b = text(value).to_lowercase();
                    match op {
                        Op::BeginsWith => a.starts_with(&b),
                        Op::EndsWith => a.ends_with(&b),
                        _ => a.contains(&b),
                    }
                }
                _ => match compare(data_type, &actual, value) {
                    None => false,
                    Some(o) => match op {
                        Op::Eq => o == Ordering::Equal,
                        Op::NotEq => o != Ordering::Equal,
                        Op::Gt => o == Ordering::Greater,
                        Op::Gte => o != Ordering::Less,
                        Op::Lt => o == Ordering::Less,
                        Op::Lte => o != Ordering::Greater,
                        _ => false,
                    },
                },
            }
        }
    }
}

pub fn udf_value(rec: &Map<String, Value>, name: &str) -> Value {
    rec.get("userDefinedFields")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().find(|u| {
                u.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
        .and_then(|u| u.get("value").cloned())
        .unwrap_or(Value::Null)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// Parses an Autotask date/time to nanoseconds since the epoch (UTC).
pub fn instant(v: &Value) -> Option<i128> {
    let s = v.as_str()?.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_nanosecond());
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_nanosecond());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_nanosecond());
    }
    None
}

fn compare(data_type: &str, actual: &Value, wanted: &Value) -> Option<Ordering> {
    match data_type {
        "integer" | "long" | "double" => number(actual)?.partial_cmp(&number(wanted)?),
        "boolean" => Some(boolean(actual)?.cmp(&boolean(wanted)?)),
        "datetime" => match (instant(actual), instant(wanted)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(
                text(actual)
                    .to_lowercase()
                    .cmp(&text(wanted).to_lowercase()),
            ),
        },
        _ => {
            // UDF "string" values may hold numbers; compare numerically when both are.
            if let (Value::Number(_), Some(b)) = (actual, number(wanted)) {
                return number(actual)?.partial_cmp(&b);
            }
            Some(
                text(actual)
                    .to_lowercase()
                    .cmp(&text(wanted).to_lowercase()),
            )
        }
    }
}
