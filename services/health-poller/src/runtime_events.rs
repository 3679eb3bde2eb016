//! Runtime events: a container that exits or disappears is reported to its pod's actor.

use std::sync::Arc;

use corral_protocol::Observation;
use corral_runtime::RuntimeEvent;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::Ctx;
use crate::backoff::{reconnect_delay, sleep_unless_cancelled};

/// Follows the runtime's event stream until cancelled. When the stream fails or ends it
/// re-subscribes with backoff and asks for a resync, since events may have been missed.
pub(crate) async fn watch(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut failures = 0u32;
    let mut first = true;
    loop {
        match ctx.runtime.events().await {
            Ok(mut stream) => {
                tracing::info!("following runtime events");
                if !first {
                    ctx.resync_now.notify_one();
                }
                let mut received = false;
                loop {
                    let event = tokio::select! {
                        () = cancel.cancelled() => return,
                        e = stream.next() => match e {
                            Some(e) => e,
                            None => break,
                        },
                    };
                    received = true;
                    handle(&ctx, event).await;
                }
                if received {
                    failures = 0;
                }
                tracing::warn!("runtime event stream ended");
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow runtime events"),
        }
        first = false;
        failures = failures.saturating_add(1);
        if !sleep_unless_cancelled(reconnect_delay(failures), &cancel).await {
            return;
        }
    }
}

async fn handle(ctx: &Ctx, event: RuntimeEvent) {
    match event {
        RuntimeEvent::Started { .. } => {}
        RuntimeEvent::Exited { id, pod, exit_code, reason } => {
            ctx.probes.stop_container(&pod, &id);
            ctx.publisher.observe_or_log(&pod, &id, Observation::Exited { exit_code, reason }).await;
        }
        RuntimeEvent::Removed { id, pod } => {
            ctx.probes.stop_container(&pod, &id);
            ctx.publisher.observe_or_log(&pod, &id, Observation::Gone).await;
        }
    }
}
