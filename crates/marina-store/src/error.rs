//! The store's narrow error type and its conversion into Marina's error.

use marina_common::Error;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (name taken, address or port in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is busy.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A row holds a value the code does not understand.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "store unavailable");
                Error::Unavailable("the state store is unavailable; try again".into())
            }
            StoreError::Corrupt(m) => Error::internal(m),
        }
    }
}
