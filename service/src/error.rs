//! The one error type of the use cases.

use weft_engine::store::{StoreError, StoreErrorKind};

/// What kind of failure, for callers to map: the CLI to an exit code (usage 2, else 1), the
/// API to a status (usage 422, not found 404, conflict 409, unavailable 503, else 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong (a missing name, an unknown kind, a bad value).
    Usage,
    /// Something it names does not exist.
    NotFound,
    /// It contradicts what is stored (a duplicate id, a cycle).
    Conflict,
    /// Another system (Autotask) refused or failed.
    Upstream,
    /// The database cannot be reached; nothing was changed.
    Unavailable,
    /// The database failed.
    Store,
}

/// A use case refused or failed: a message for people (never a secret) and its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ServiceError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServiceError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A wrong request.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// It contradicts what is stored.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// Another system refused or failed: `message` says which and why (never a secret).
    pub fn upstream(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ServiceError {
            source: Some(Box::new(source)),
            ..Self::new(ErrorKind::Upstream, message)
        }
    }

    /// Something inside weft failed (a secret that cannot be opened, a record weft cannot
    /// read): `message` says what; the source is for logs.
    pub fn internal(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ServiceError {
            source: Some(Box::new(source)),
            ..Self::new(ErrorKind::Store, message)
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        let kind = match e.kind() {
            StoreErrorKind::NotFound => ErrorKind::NotFound,
            StoreErrorKind::Conflict => ErrorKind::Conflict,
            StoreErrorKind::Unavailable => ErrorKind::Unavailable,
            _ => ErrorKind::Store,
        };
        let message = match kind {
            ErrorKind::Store => "the database failed".to_string(),
            ErrorKind::Unavailable => "the database is unavailable; nothing was changed".into(),
            _ => e.to_string(),
        };
        ServiceError {
            kind,
            message,
            source: Some(Box::new(e)),
        }
    }
}

impl From<weft_triggers::TriggerError> for ServiceError {
    fn from(e: weft_triggers::TriggerError) -> Self {
        use weft_triggers::TriggerError as T;
        match e {
            T::Store(s) => s.into(),
            T::BadRequest(m) | T::InvalidInput(m) => ServiceError::usage(m),
            T::NotFound(m) => ServiceError::not_found(m),
            T::Conflict(m) => ServiceError::conflict(m),
            other => ServiceError {
                kind: ErrorKind::Store,
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

impl From<weft_engine::executor::EngineError> for ServiceError {
    /// A stored workflow that cannot take the inputs or the state it is given is a conflict
    /// (what is stored must change, not the request); the store's own kinds; else an internal
    /// failure, the detail kept as the source.
    fn from(e: weft_engine::executor::EngineError) -> Self {
        use weft_engine::executor::EngineError as E;
        match e {
            E::Store(s) => s.into(),
            E::Input(m) | E::Conflict(m) => ServiceError::conflict(m),
            other => ServiceError::internal("the engine failed", other),
        }
    }
}
