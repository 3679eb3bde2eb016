//! Per-pod bookkeeping kept apart from the records: the shard recorded at creation and the
//! sequence counters of the action log and the output chunks.

use crate::StoreError;

/// One `pod_meta` row. Sequence numbers only grow while the pod exists, so rows are
/// appended at `next` and trimmed at `first` without renumbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    /// The shard the pod was created in (purge cleans it whatever shard it is told).
    pub(crate) shard: u32,
    /// Seq of the oldest kept action-log entry.
    pub(crate) actions_first: u64,
    /// Seq the next action-log entry gets.
    pub(crate) actions_next: u64,
    /// The instance the kept output belongs to (0: none yet).
    pub(crate) output_instance: u64,
    /// Seq of the oldest kept output chunk.
    pub(crate) output_first: u64,
    /// Seq the next output chunk gets.
    pub(crate) output_next: u64,
    /// Leading bytes of the oldest chunk that fell out of the cap.
    pub(crate) output_skip: u64,
    /// Output bytes served: the kept chunks' lengths minus `output_skip`.
    pub(crate) output_len: u64,
}

const LEN: usize = 4 + 7 * 8;

impl Meta {
    /// A new pod's row.
    pub(crate) fn new(shard: u32) -> Self {
        Self { shard, ..Self::default() }
    }

    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut out = [0; LEN];
        out[..4].copy_from_slice(&self.shard.to_le_bytes());
        let words = [
            self.actions_first,
            self.actions_next,
            self.output_instance,
            self.output_first,
            self.output_next,
            self.output_skip,
            self.output_len,
        ];
        for (slot, word) in out[4..].chunks_exact_mut(8).zip(words) {
            slot.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupt(format!("pod bookkeeping row has {} bytes, expected {LEN}", bytes.len()));
        let fixed: &[u8; LEN] = bytes.try_into().map_err(|_| bad())?;
        let (shard, rest) = fixed.split_first_chunk::<4>().ok_or_else(bad)?;
        let mut words = [0u64; 7];
        for (word, chunk) in words.iter_mut().zip(rest.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().map_err(|_| bad())?);
        }
        let [actions_first, actions_next, output_instance, output_first, output_next, output_skip, output_len] = words;
        Ok(Self {
            shard: u32::from_le_bytes(*shard),
            actions_first,
            actions_next,
            output_instance,
            output_first,
            output_next,
            output_skip,
            output_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let meta = Meta {
            shard: u32::MAX - 1,
            actions_first: 1,
            actions_next: 2,
            output_instance: u64::MAX,
            output_first: 4,
            output_next: 5,
            output_skip: 6,
            output_len: 7,
        };
        assert_eq!(Meta::decode(&meta.encode()).expect("decode"), meta);
    }

    #[test]
    fn wrong_length_is_corrupt() {
        assert!(matches!(Meta::decode(&[0; LEN - 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(Meta::decode(&[0; LEN + 1]), Err(StoreError::Corrupt(_))));
    }
}
