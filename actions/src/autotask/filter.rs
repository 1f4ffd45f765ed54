//! The Autotask query filter grammar: workflow JSON ([`FilterInput`]) is validated into the
//! typed [`Filter`] before any request is sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{AutotaskError, ErrorKind};

/// One filter condition as written in a workflow.
///
/// A field condition is `{op, field, value}` (`op`: `eq`, `noteq`, `gt`, `gte`, `lt`, `lte`,
/// `beginsWith`, `endsWith`, `contains`, `exist`, `notExist`, `in`, `notIn`; `exist` and
/// `notExist` take no value; `in`/`notIn` take a non-empty list). A group is
/// `{op: "and"|"or", items: [...]}`. Set `udf: true` on a condition on a user-defined field
/// (at most one per query).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    /// The operator: a field operator (`eq`, `noteq`, `gt`, `gte`, `lt`, `lte`, `beginsWith`,
    /// `endsWith`, `contains`, `exist`, `notExist`, `in`, `notIn`) or a group (`and`, `or`).
    pub op: String,
    /// The field a condition tests (camelCase API name, or the UDF's name with `udf: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The value to compare with; a list for `in`/`notIn`; absent for `exist`/`notExist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// True when `field` is a user-defined field (only one per query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udf: Option<bool>,
    /// The conditions of an `and`/`or` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<FilterInput>>,
}

/// Field operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `field = value` (strings compare case-insensitively in Autotask).
    Eq,
    /// `field != value`.
    NotEq,
    /// `field > value`.
    Gt,
    /// `field >= value`.
    Gte,
    /// `field < value`.
    Lt,
    /// `field <= value`.
    Lte,
    /// The string field starts with the value.
    BeginsWith,
    /// The string field ends with the value.
    EndsWith,
    /// The string field contains the value.
    Contains,
    /// The field has a value (takes no `value`).
    Exist,
    /// The field is empty (takes no `value`).
    NotExist,
    /// The field equals one of the values in an array.
    In,
    /// The field equals none of the values in an array.
    NotIn,
}

impl FieldOp {
    const ALL: [FieldOp; 13] = [
        FieldOp::Eq,
        FieldOp::NotEq,
        FieldOp::Gt,
        FieldOp::Gte,
        FieldOp::Lt,
        FieldOp::Lte,
        FieldOp::BeginsWith,
        FieldOp::EndsWith,
        FieldOp::Contains,
        FieldOp::Exist,
        FieldOp::NotExist,
        FieldOp::In,
        FieldOp::NotIn,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldOp::Eq => "eq",
            FieldOp::NotEq => "noteq",
            FieldOp::Gt => "gt",
            FieldOp::Gte => "gte",
            FieldOp::Lt => "lt",
            FieldOp::Lte => "lte",
            FieldOp::BeginsWith => "beginsWith",
            FieldOp::EndsWith => "endsWith",
            FieldOp::Contains => "contains",
            FieldOp::Exist => "exist",
            FieldOp::NotExist => "notExist",
            FieldOp::In => "in",
            FieldOp::NotIn => "notIn",
        }
    }

    fn parse(s: &str) -> Option<FieldOp> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s))
    }
}

/// Group operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOp {
    /// Every condition must hold.
    And,
    /// At least one condition must hold.
    Or,
}

/// A validated filter condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// A condition on one field.
    Field {
        /// The comparison.
        op: FieldOp,
        /// The field name, as Autotask spells it.
        field: String,
        /// `None` exactly for `exist`/`notExist`.
        value: Option<Value>,
        /// Whether `field` names a user-defined field rather than a built-in one.
        udf: bool,
    },
    /// An `and`/`or` group.
    Group {
        /// How the conditions combine.
        op: GroupOp,
        /// The conditions, at least one.
        items: Vec<Filter>,
    },
}

impl Filter {
    /// `field op value`.
    pub fn field(field: &str, op: FieldOp, value: impl Into<Value>) -> Filter {
        Filter::Field {
            op,
            field: field.to_string(),
            value: Some(value.into()),
            udf: false,
        }
    }

    /// `{"op":"gte","field":"id","value":0}`: every record.
    pub fn all() -> Filter {
        Filter::field("id", FieldOp::Gte, 0)
    }

    /// The Autotask JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::Field {
                op,
                field,
                value,
                udf,
            } => {
                let mut m = Map::new();
                m.insert("op".into(), json!(op.as_str()));
                m.insert("field".into(), json!(field));
                if let Some(v) = value {
                    m.insert("value".into(), v.clone());
                }
                if *udf {
                    m.insert("udf".into(), json!(true));
                }
                Value::Object(m)
            }
            Filter::Group { op, items } => json!({
                "op": match op { GroupOp::And => "and", GroupOp::Or => "or" },
                "items": items.iter().map(Filter::to_json).collect::<Vec<_>>(),
            }),
        }
    }

    fn count_udfs(&self) -> usize {
        match self {
            Filter::Field { udf, .. } => usize::from(*udf),
            Filter::Group { items, .. } => items.iter().map(Filter::count_udfs).sum(),
        }
    }
}

fn invalid(path: &str, message: impl std::fmt::Display) -> AutotaskError {
    AutotaskError::new(
        ErrorKind::Validation,
        format!("invalid filter at {path}: {message}"),
    )
}

/// Validates a workflow filter list (named `filter` in messages).
///
/// # Errors
/// Unknown operators, missing or misplaced values and fields, empty groups and `in`-lists,
/// more than one UDF condition; the message names the condition's path (`filter[1].items[0]`).
pub fn parse_filters(input: &[FilterInput]) -> Result<Vec<Filter>, AutotaskError> {
    let out = input
        .iter()
        .enumerate()
        .map(|(i, f)| parse_one(f, &format!("filter[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let udfs: usize = out.iter().map(Filter::count_udfs).sum();
    if udfs > 1 {
        return Err(invalid(
            "filter",
            format!(
                "{udfs} conditions have `udf: true`; Autotask allows one user-defined field per query"
            ),
        ));
    }
    Ok(out)
}

fn parse_one(f: &FilterInput, path: &str) -> Result<Filter, AutotaskError> {
    let op = f.op.trim();
    if op.eq_ignore_ascii_case("and") || op.eq_ignore_ascii_case("or") {
        if f.field.is_some() || f.value.is_some() || f.udf.is_some() {
            return Err(invalid(
                path,
                format!("the `{op}` group takes `items`, not `field`, `value` or `udf`"),
            ));
        }
        let items = f.items.as_deref().unwrap_or_default();
        if items.is_empty() {
            return Err(invalid(
                path,
                format!("the `{op}` group needs at least one item"),
            ));
        }
        let items = items
            .iter()
            .enumerate()
            .map(|(i, it)| parse_one(it, &format!("{path}.items[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let op = if op.eq_ignore_ascii_case("and") {
            GroupOp::And
        } else {
            GroupOp::Or
        };
        return Ok(Filter::Group { op, items });
    }
    let Some(fop) = FieldOp::parse(op) else {
        let known: Vec<&str> = FieldOp::ALL.iter().map(|o| o.as_str()).collect();
        return Err(invalid(
            path,
            format!(
                "unknown operator `{op}` (expected one of {}, and, or)",
                known.join(", ")
            ),
        ));
    };
    if f.items.is_some() {
        return Err(invalid(
            path,
            format!("`{op}` is a field operator; only `and`/`or` take `items`"),
        ));
    }
    let field = match f.field.as_deref().map(str::trim) {
        Some(field) if !field.is_empty() => field.to_string(),
        _ => return Err(invalid(path, format!("`{op}` needs a `field`"))),
    };
    let value = match fop {
        FieldOp::Exist | FieldOp::NotExist => {
            if f.value.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(invalid(path, format!("`{op}` takes no `value`")));
            }
            None
        }
        FieldOp::In | FieldOp::NotIn => match &f.value {
            Some(Value::Array(list)) if !list.is_empty() => {
                if let Some(bad) = list.iter().find(|v| !is_scalar(v)) {
                    return Err(invalid(
                        path,
                        format!(
                            "`{op}` list items must be strings, numbers or booleans, not {bad}"
                        ),
                    ));
                }
                Some(Value::Array(list.clone()))
            }
            Some(Value::Array(_)) => {
                return Err(invalid(
                    path,
                    format!("`{op}` needs a non-empty list of values"),
                ));
            }
            None | Some(Value::Null) => {
                return Err(invalid(
                    path,
                    format!("`{op}` on `{field}` needs a `value` (a list)"),
                ));
            }
            Some(other) => {
                return Err(invalid(
                    path,
                    format!("`{op}` needs a list of values, not {other}"),
                ));
            }
        },
        _ => match &f.value {
            None | Some(Value::Null) => {
                return Err(invalid(
                    path,
                    format!("`{op}` on `{field}` needs a `value`"),
                ));
            }
            Some(v) if is_scalar(v) => Some(v.clone()),
            Some(v) => {
                return Err(invalid(
                    path,
                    format!("`{op}` needs a string, number or boolean value, not {v}"),
                ));
            }
        },
    };
    Ok(Filter::Field {
        op: fop,
        field,
        value,
        udf: f.udf.unwrap_or(false),
    })
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Vec<Filter>, AutotaskError> {
        let input: Vec<FilterInput> = serde_json::from_value(v).unwrap();
        parse_filters(&input)
    }

    #[test]
    fn accepts_the_grammar_and_serializes_canonically() {
        let f = parse(json!([
            {"op": "eq", "field": "companyType", "value": 1},
            {"op": "OR", "items": [
                {"op": "contains", "field": "companyName", "value": "acme"},
                {"op": "beginswith", "field": "companyName", "value": "ab"}
            ]},
            {"op": "exist", "field": "phone"},
            {"op": "in", "field": "id", "value": [1, 2]},
            {"op": "eq", "field": "Ranking", "value": "Gold", "udf": true}
        ]))
        .unwrap();
        let wire: Vec<Value> = f.iter().map(Filter::to_json).collect();
        assert_eq!(
            Value::Array(wire),
            json!([
                {"op": "eq", "field": "companyType", "value": 1},
                {"op": "or", "items": [
                    {"op": "contains", "field": "companyName", "value": "acme"},
                    {"op": "beginsWith", "field": "companyName", "value": "ab"}
                ]},
                {"op": "exist", "field": "phone"},
                {"op": "in", "field": "id", "value": [1, 2]},
                {"op": "eq", "field": "Ranking", "value": "Gold", "udf": true}
            ])
        );
        assert_eq!(
            Filter::all().to_json(),
            json!({"op": "gte", "field": "id", "value": 0})
        );
    }

    #[test]
    fn rejects_bad_filters_naming_the_path() {
        let cases = [
            (
                json!([{"op": "like", "field": "a", "value": 1}]),
                "filter[0]",
                "unknown operator `like`",
            ),
            (
                json!([{"op": "eq", "field": "a"}]),
                "filter[0]",
                "needs a `value`",
            ),
            (
                json!([{"op": "eq", "value": 1}]),
                "filter[0]",
                "needs a `field`",
            ),
            (
                json!([{"op": "exist", "field": "a", "value": 1}]),
                "filter[0]",
                "takes no `value`",
            ),
            (
                json!([{"op": "in", "field": "a", "value": []}]),
                "filter[0]",
                "non-empty list",
            ),
            (
                json!([{"op": "in", "field": "a", "value": 3}]),
                "filter[0]",
                "list of values",
            ),
            (
                json!([{"op": "eq", "field": "a", "value": 1}, {"op": "or", "items": [{"op": "eq", "field": "b", "value": 2}, {"op": "gt", "field": "c"}]}]),
                "filter[1].items[1]",
                "needs a `value`",
            ),
            (
                json!([{"op": "and", "items": []}]),
                "filter[0]",
                "at least one item",
            ),
            (
                json!([{"op": "eq", "field": "a", "value": 1, "udf": true}, {"op": "and", "items": [{"op": "eq", "field": "b", "value": 1, "udf": true}]}]),
                "filter",
                "one user-defined field",
            ),
            (
                json!([{"op": "eq", "field": "a", "value": {"x": 1}}]),
                "filter[0]",
                "string, number or boolean",
            ),
        ];
        for (input, path, msg) in cases {
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Validation);
            assert!(
                err.message.contains(&format!("at {path}:")),
                "{input}: {}",
                err.message
            );
            assert!(err.message.contains(msg), "{input}: {}", err.message);
        }
    }
}
