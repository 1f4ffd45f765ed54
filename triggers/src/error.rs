//! The one error type of trigger acceptance.

use weft_engine::store::StoreError;

/// Why a trigger request was refused or failed. The HTTP server maps each variant to a status;
/// messages never carry a secret or internal details (those stay in the source, logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// The request is malformed (a bad grace period, an unreadable body).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong webhook secret or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// No such trigger, or it does not run for the org named.
    #[error("{0}")]
    NotFound(String),
    /// Wrong state (a trigger that takes no secret asked for one).
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(u64),
    /// The trigger's rate limit is spent.
    #[error("rate limit exceeded")]
    RateLimited,
    /// The event does not fit the workflow's inputs.
    #[error("{0}")]
    InvalidInput(String),
    /// Something failed inside (sealing a secret); the detail is for the log.
    #[error("internal error")]
    Internal(String),
    /// The store failed or is unavailable.
    #[error(transparent)]
    Store(#[from] StoreError),
}
