//! Typed request bodies: one rule for every JSON body the API reads.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The largest API request body: axum's default limit (a workflow's YAML is the biggest
/// thing sent).
pub const MAX_API_BODY: usize = 2 * 1024 * 1024;

/// A JSON request body of type `T`. An empty body reads as `{}` (so a type whose fields are
/// all optional accepts it); text that is not JSON is `400 bad_request`; JSON that does not
/// fit `T` (a missing or mistyped field) is `422 invalid_input` naming the field, line and
/// column; over [`MAX_API_BODY`] is `413`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> Body<T> {
    /// Reads `bytes` by the rule above.
    ///
    /// # Errors
    /// As above.
    pub fn parse(bytes: &[u8]) -> Result<T, ApiError> {
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            bytes
        };
        serde_json::from_slice(bytes).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::BadRequest(format!("the body is not JSON: {e}"))
            } else {
                ApiError::InvalidInput(format!("the body does not fit: {e}"))
            }
        })
    }
}

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::TooLarge(MAX_API_BODY as u64))?;
        Body::parse(&bytes).map(Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Named {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn empty_reads_as_an_empty_object() {
        let e = Body::<Named>::parse(b"  ").unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("missing field `name`"), "{e}");
    }

    #[test]
    fn not_json_is_bad_request_and_a_misfit_names_the_field() {
        assert_eq!(
            Body::<Named>::parse(b"{nope").unwrap_err().code(),
            "bad_request"
        );
        let e = Body::<Named>::parse(br#"{"name": "a", "tags": 3}"#).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("line 1 column"), "{e}");
        let ok = Body::<Named>::parse(br#"{"name": "a"}"#).unwrap();
        assert_eq!((ok.name.as_str(), ok.tags.len()), ("a", 0));
    }
}
