//! Recording proxy traffic as pool-instance activity, rate-limited, and counting the bytes
//! of websocket tunnels.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::Instrument;

use crate::AppState;
use crate::service::now_ms;

/// Most one activity write per instance per gateway in this interval: culling works in
/// seconds to hours, and a busy page must not turn every request into a store write.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(1);

/// Entries above which the limiter forgets instances it has not touched lately.
const FORGET_ABOVE: usize = 4096;

/// When each instance's activity was last written.
#[derive(Debug, Default)]
pub(super) struct Activity {
    last: Mutex<HashMap<String, Instant>>,
}

impl Activity {
    /// Whether a write for `key` is due now; if so, counts it as done.
    fn due(&self, key: &str) -> bool {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update: the map is
        // still usable, and activity is best effort.
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(key).is_some_and(|t| now.duration_since(*t) < TOUCH_INTERVAL) {
            return false;
        }
        last.insert(key.to_string(), now);
        if last.len() > FORGET_ABOVE {
            last.retain(|_, t| now.duration_since(*t) < TOUCH_INTERVAL);
        }
        true
    }
}

/// Records activity of one pool instance.
#[derive(Clone)]
pub(super) struct Toucher {
    pub(super) activity: Arc<Activity>,
    pub(super) app: AppState,
    pub(super) pool: String,
    pub(super) member: String,
}

impl Toucher {
    /// Writes the instance's activity in the background, unless written within
    /// [`TOUCH_INTERVAL`]; the request never waits for it.
    pub(super) fn touch(&self) {
        if !self.activity.due(&format!("{}\n{}", self.pool, self.member)) {
            return;
        }
        let span = tracing::info_span!("pool_touch", pool = %self.pool, member = %self.member);
        tokio::spawn(write_activity(self.app.clone(), self.pool.clone(), self.member.clone()).instrument(span));
    }
}

async fn write_activity(app: AppState, pool: String, member: String) {
    match app.store().pool_touch(&pool, &member, now_ms()).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!("instance is not claimed; activity not recorded"),
        Err(e) => tracing::warn!(error = %e, "cannot record instance activity"),
    }
}

/// A stream that raises a flag whenever bytes pass through it, either way.
pub(super) struct Counted<T> {
    inner: T,
    active: Arc<AtomicBool>,
}

impl<T> Counted<T> {
    pub(super) fn new(inner: T, active: Arc<AtomicBool>) -> Self {
        Self { inner, active }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_per_interval_per_instance() {
        let a = Activity::default();
        assert!(a.due("p\nm1"));
        assert!(!a.due("p\nm1"), "a second write within the interval is skipped");
        assert!(a.due("p\nm2"), "instances are limited separately");
    }
}
