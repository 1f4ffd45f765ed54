//! Parameter types shared by several actions.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, de};

/// A duration written as `500ms`, `30s`, `5m`, `1h30m`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationParam(pub Duration);

impl DurationParam {
    /// Parses a duration's text (see [`weft_engine::model::parse_duration`]).
    pub fn parse(text: &str) -> Option<Self> {
        weft_engine::model::parse_duration(text).map(DurationParam)
    }
}

impl<'de> Deserialize<'de> for DurationParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = DurationParam;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `500ms`, `30s`, `5m`, or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationParam, E> {
                DurationParam::parse(s).ok_or_else(|| {
                    E::custom(format!(
                        "invalid duration `{s}`: write `500ms`, `30s`, `5m`, `1h30m` or a number of seconds"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<DurationParam, E> {
                Ok(DurationParam(Duration::from_secs(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<DurationParam, E> {
                u64::try_from(n)
                    .map(|n| DurationParam(Duration::from_secs(n)))
                    .map_err(|_| E::custom(format!("invalid duration {n}: it is negative")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<DurationParam, E> {
                Duration::try_from_secs_f64(n)
                    .map(DurationParam)
                    .map_err(|_| {
                        E::custom(format!("invalid duration {n}: not a number of seconds"))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for DurationParam {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number"] })
    }
}

/// Formats a duration briefly: `250ms`, `30s`, `1.5s`, `5m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 || !ms.is_multiple_of(1000) {
        if ms >= 1000 {
            return format!("{}s", d.as_secs_f64());
        }
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A text value that may also be written as a number or `true`/`false` (header values):
/// numbers and booleans become their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text, E> {
                Ok(Text(s))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Text, E> {
                Ok(Text(
                    serde_json::Number::from_f64(n)
                        .map_or_else(|| n.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Text, E> {
                Ok(Text(b.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// A JSON scalar as the text it stands for in a URL or header: strings as they are,
/// numbers and booleans as their JSON text; `None` for anything else.
pub fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_from_text_and_numbers() {
        let d = |v| serde_json::from_value::<DurationParam>(v).map(|d| d.0);
        assert_eq!(d(json!("500ms")).unwrap(), Duration::from_millis(500));
        assert_eq!(d(json!("30s")).unwrap(), Duration::from_secs(30));
        assert_eq!(d(json!("5m")).unwrap(), Duration::from_secs(300));
        assert_eq!(d(json!("2")).unwrap(), Duration::from_secs(2));
        assert_eq!(d(json!(2)).unwrap(), Duration::from_secs(2));
        assert_eq!(d(json!(0.25)).unwrap(), Duration::from_millis(250));
        let err = d(json!("5 minutes")).unwrap_err().to_string();
        assert!(err.contains("invalid duration `5 minutes`"), "{err}");
        assert!(d(json!(-1)).is_err());
        assert!(d(json!(-0.5)).is_err());
        assert!(d(json!(true)).is_err());
    }

    #[test]
    fn durations_format_briefly() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn text_accepts_scalars() {
        let t = |v| serde_json::from_value::<Text>(v).map(|t| t.0);
        assert_eq!(t(json!("a")).unwrap(), "a");
        assert_eq!(t(json!(3)).unwrap(), "3");
        assert_eq!(t(json!(-3)).unwrap(), "-3");
        assert_eq!(t(json!(1.5)).unwrap(), "1.5");
        assert_eq!(t(json!(true)).unwrap(), "true");
        assert!(t(json!(null)).is_err());
        assert!(t(json!([1])).is_err());
    }
}
