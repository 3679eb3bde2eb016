//! Waiting between reconnection attempts without delaying shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

const BASE_MS: u64 = 100;
const MAX_MS: u64 = 10_000;

/// Delay before reconnection attempt `failures` (1-based): exponential, capped at 10 s.
pub(crate) fn reconnect_delay(failures: u32) -> Duration {
    Duration::from_millis(corral_model::backoff::delay_ms(failures, BASE_MS, MAX_MS))
}

/// Sleeps for `delay`; returns false if cancelled first.
pub(crate) async fn sleep_unless_cancelled(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
