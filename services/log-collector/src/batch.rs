//! Output batching: collects chunks until a batch is big or old enough to write.

use std::time::Duration;

use tokio::time::Instant;

/// A batch is written once it holds this many bytes...
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;
/// ...or once its oldest byte waited this long.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(250);

/// Pending output of one container, minus a prefix the store already holds.
#[derive(Debug)]
pub(crate) struct Batch {
    buf: Vec<u8>,
    /// Bytes of the stream still to drop (already stored by an earlier collector).
    skip: usize,
    /// When the oldest pending byte arrived.
    since: Option<Instant>,
    /// Most bytes held while the store refuses writes; older ones are dropped, as the
    /// store would drop them anyway.
    cap: usize,
    /// After a failed write, no size-triggered write before this instant (no hot loop
    /// against a store that is down).
    quiet_until: Option<Instant>,
}

impl Batch {
    pub(crate) fn new(skip: usize, cap: usize) -> Self {
        Self { buf: Vec::new(), skip, since: None, cap, quiet_until: None }
    }

    /// Adds a chunk of the stream; returns whether the batch should be written now.
    pub(crate) fn push(&mut self, mut bytes: &[u8], now: Instant) -> bool {
        let dropped = self.skip.min(bytes.len());
        self.skip -= dropped;
        bytes = &bytes[dropped..];
        if !bytes.is_empty() {
            self.buf.extend_from_slice(bytes);
            self.since.get_or_insert(now);
        }
        if self.buf.len() > self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
        self.buf.len() >= FLUSH_BYTES && self.quiet_until.is_none_or(|t| now >= t)
    }

    /// When the pending bytes must be written at the latest.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + FLUSH_AFTER)
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the pending bytes after they were written.
    pub(crate) fn written(&mut self) {
        self.buf.clear();
        self.since = None;
        self.quiet_until = None;
    }

    /// Keeps the pending bytes after a failed write, retrying after another interval.
    pub(crate) fn retry_later(&mut self, now: Instant) {
        self.since = Some(now);
        self.quiet_until = Some(now + FLUSH_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_spans_chunks() {
        let now = Instant::now();
        let mut b = Batch::new(7, 1 << 20);
        assert!(!b.push(b"hello", now));
        assert!(b.pending().is_empty());
        assert_eq!(b.deadline(), None, "nothing pending, nothing to flush");
        assert!(!b.push(b"\nworld\n", now));
        assert_eq!(b.pending(), b"orld\n");
        assert_eq!(b.deadline(), Some(now + FLUSH_AFTER));
    }

    #[test]
    fn flushes_at_size_and_resets() {
        let now = Instant::now();
        let mut b = Batch::new(0, 1 << 20);
        assert!(!b.push(&vec![b'x'; FLUSH_BYTES - 1], now));
        assert!(b.push(b"y", now + Duration::from_millis(10)));
        assert_eq!(b.deadline(), Some(now + FLUSH_AFTER), "deadline follows the oldest byte");
        b.written();
        assert!(b.pending().is_empty());
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn failed_writes_keep_at_most_cap_newest_bytes() {
        let now = Instant::now();
        let mut b = Batch::new(0, 4);
        b.push(b"abc", now);
        let failed_at = now + Duration::from_millis(300);
        b.retry_later(failed_at);
        b.push(b"def", failed_at);
        assert_eq!(b.pending(), b"cdef");
        assert_eq!(b.deadline(), Some(failed_at + FLUSH_AFTER));
    }

    #[test]
    fn no_size_triggered_write_right_after_a_failure() {
        let now = Instant::now();
        let mut b = Batch::new(0, 1 << 20);
        assert!(b.push(&vec![b'x'; FLUSH_BYTES], now));
        b.retry_later(now);
        assert!(!b.push(b"more", now + Duration::from_millis(1)));
        assert!(b.push(b"later", now + FLUSH_AFTER));
    }
}
