//! redb errors and JSON records turned into [`StoreError`]s.

use serde::{Serialize, de::DeserializeOwned};

use crate::StoreError;

/// Maps any redb error: damage to the file, or a file that is not a store, is `Corrupt`;
/// everything else (I/O, a closed or locked database) is `Unavailable`.
pub(crate) fn db_err(err: impl Into<redb::Error>) -> StoreError {
    match err.into() {
        redb::Error::Corrupted(what) => StoreError::Corrupt(format!("embedded store file: {what}")),
        redb::Error::UpgradeRequired(version) => {
            StoreError::Corrupt(format!("embedded store file has unsupported redb format {version}"))
        }
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            StoreError::Corrupt(format!("embedded store file: {io}"))
        }
        other => StoreError::Unavailable(format!("embedded store: {other}")),
    }
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("cannot decode {what}: {e}")))
}
