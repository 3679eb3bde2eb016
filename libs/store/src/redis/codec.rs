//! Turning Redis replies into records and Redis errors into [`StoreError`]s.

use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde::{Serialize, de::DeserializeOwned};

use crate::{PodRecord, StoreError, Versioned};

/// Maps a Redis error: anything that says the server cannot be reached or cannot serve right
/// now is `Unavailable` (callers retry); a reply of the wrong shape is `Corrupt`.
pub(crate) fn map_err(err: RedisError) -> StoreError {
    let kind = err.kind();
    if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() || err.is_connection_refusal() {
        return StoreError::Unavailable(err.to_string());
    }
    match kind {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt(err.to_string()),
        _ if err.code() == Some("WRONGTYPE") => StoreError::Corrupt(err.to_string()),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown,
        ) => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Unavailable(format!("redis refused the request: {err}")),
    }
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("cannot decode {what}: {e}")))
}

/// The pod hash fields `dv`, `d`, `ov`, `o` as returned by HMGET.
pub(crate) type PodFields = (Option<u64>, Option<String>, Option<u64>, Option<String>);

/// A pod record from its hash fields; `None` if the pod does not exist.
pub(crate) fn pod_record(what: &str, fields: PodFields) -> Result<Option<PodRecord>, StoreError> {
    match fields {
        (None, None, None, None) => Ok(None),
        (Some(dv), Some(d), Some(ov), Some(o)) => Ok(Some(PodRecord {
            desired: Versioned { version: dv, value: decode(&format!("desired state of {what}"), &d)? },
            observed: Versioned { version: ov, value: decode(&format!("observed state of {what}"), &o)? },
        })),
        _ => Err(StoreError::Corrupt(format!("record of {what} is missing fields"))),
    }
}
