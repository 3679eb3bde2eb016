//! Requests from other systems on the `corral.requests` queue, answered on their
//! `reply_to` queue. They go through the same service functions as HTTP.
//!
//! Settlement: a request that was understood is acked once answered (even when the
//! answer is an error such as 404); a malformed one (undecodable, unknown operation,
//! missing token or argument) is answered and dead-lettered; one that failed because the
//! store is unavailable is retried, and dead-lettered after the configured attempts.

use std::sync::Arc;
use std::time::Duration;

use corral_bus::{ConsumeOptions, Consumer, Delivery, OutMessage, Topology};
use corral_model::backoff::delay_ms;
use corral_protocol::topology::{HEADER_TOKEN, HEADER_TRACEPARENT, REQUESTS_QUEUE};
use corral_protocol::{
    CONTENT_JSON, CONTENT_MSGPACK, Envelope, ExternalOp, ExternalReply, ExternalRequest, PROTOCOL_VERSION, ReplyError,
};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::AppState;
use crate::envelope::{Outcome, parse_json};
use crate::error::ApiError;
use crate::input::NewPod;
use crate::service::{self, Ctx};

/// Requests processed concurrently.
const MAX_IN_FLIGHT: usize = 64;
/// Reconnect backoff bounds.
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_MAX_MS: u64 = 5_000;
/// Longest wait for a reply to be taken by the bus.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Consumes `corral.requests` until `stop` is cancelled, re-consuming with backoff
/// whenever the bus is unavailable or the stream ends; then waits for in-flight requests.
pub async fn consume_requests(st: AppState, stop: CancellationToken) {
    let mut tasks = JoinSet::new();
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        match open(&st).await {
            Ok(consumer) => {
                tracing::info!(queue = REQUESTS_QUEUE, "consuming external requests");
                let received = pump(&st, consumer, &stop, &mut tasks, &limit).await;
                failures = if received { 1 } else { failures.saturating_add(1) };
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "cannot consume external requests; retrying");
            }
        }
        let delay = Duration::from_millis(delay_ms(failures, BACKOFF_BASE_MS, BACKOFF_MAX_MS));
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "external request task failed");
        }
    }
    tracing::info!("external request consumer stopped");
}

async fn open(st: &AppState) -> Result<Consumer, corral_bus::BusError> {
    st.bus().declare(&Topology { shards: st.config().spawner.shards }).await?;
    let opts = ConsumeOptions {
        prefetch: st.config().amqp.prefetch,
        exclusive: false,
        consumer_tag: format!("api-gateway-{}", uuid::Uuid::new_v4()),
        auto_ack: false,
    };
    st.bus().consume(REQUESTS_QUEUE, opts).await
}

/// Hands deliveries to tasks until the stream ends or `stop` fires. Returns whether any
/// delivery arrived (a stream that ends at once counts as a failure for backoff).
async fn pump(
    st: &AppState,
    consumer: Consumer,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
    limit: &Arc<Semaphore>,
) -> bool {
    let Consumer { mut stream, cancel } = consumer;
    let mut received = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "external request task failed");
                }
            }
            next = stream.next() => {
                let Some(delivery) = next else {
                    tracing::warn!(queue = REQUESTS_QUEUE, "request stream ended; re-consuming");
                    return received;
                };
                received = true;
                let permit = tokio::select! {
                    () = stop.cancelled() => break,
                    p = Arc::clone(limit).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let span = tracing::info_span!(
                    "external_request",
                    correlation_id = delivery.correlation_id.as_deref().unwrap_or(""),
                    tenant = tracing::field::Empty,
                );
                tasks.spawn(handle_delivery(st.clone(), delivery, permit).instrument(span));
            }
        }
    }
    // Unsettled deliveries go back to the queue when the consumer is cancelled.
    cancel();
    received
}

/// What to do with a delivery after processing it.
enum Verdict {
    /// Understood and answered (successfully or not): reply, then ack.
    Done(ExternalReply),
    /// Cannot ever succeed: reply, then dead-letter with the reason.
    Malformed(ExternalReply, String),
    /// Failed for a reason that may pass (store unavailable): retry.
    Transient(ApiError),
}

fn error_reply(status: u16, message: impl Into<String>) -> ExternalReply {
    ExternalReply {
        ok: false,
        pod: None,
        error: Some(ReplyError { status, message: message.into(), problems: Vec::new() }),
    }
}

fn malformed(status: u16, reason: impl Into<String>) -> Verdict {
    let reason = reason.into();
    Verdict::Malformed(error_reply(status, reason.clone()), reason)
}

/// Processes one delivery and settles it; never panics the consumer.
async fn handle_delivery(st: AppState, d: Delivery, _permit: OwnedSemaphorePermit) {
    let settled = match process(&st, &d).await {
        Verdict::Done(reply) => {
            send_reply(&st, &d, &reply).await;
            d.ack().await
        }
        Verdict::Malformed(reply, reason) => {
            tracing::warn!(reason = %reason, "malformed external request; dead-lettering");
            send_reply(&st, &d, &reply).await;
            d.dead_letter(&reason).await
        }
        Verdict::Transient(err) => {
            let max = st.config().spawner.max_delivery_attempts;
            tracing::warn!(error = %err, attempts = d.attempts, "external request failed transiently; retrying");
            if d.attempts.saturating_add(1) >= max {
                // This was the last attempt: the requester gets the failure instead of silence.
                send_reply(&st, &d, &error_reply(err.status.as_u16(), err.message.clone())).await;
            }
            d.retry(&err.message, max).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "cannot settle external request; the broker will redeliver it");
    }
}

async fn process(st: &AppState, d: &Delivery) -> Verdict {
    let req: ExternalRequest = match corral_protocol::decode(&d.body, d.content_type.as_deref()) {
        Ok(r) => r,
        Err(e) => return malformed(400, format!("undecodable request: {e}")),
    };
    let Some(token) = d.headers.get(HEADER_TOKEN) else {
        return malformed(401, format!("missing token: send it in the '{HEADER_TOKEN}' header"));
    };
    let caller = match crate::auth::authenticate_cached(st.config(), st.tokens(), token) {
        Ok(c) => c,
        Err(e) => return Verdict::Done(error_reply(401, e.to_string())),
    };
    tracing::Span::current().record("tenant", caller.tenant.as_str());
    let ctx = Ctx { caller, traceparent: d.headers.get(HEADER_TRACEPARENT).cloned() };
    let result = match req.op {
        ExternalOp::Spawn => {
            let Some(mut pod) = req.pod else {
                return malformed(400, "'spawn' needs the pod definition in 'pod'");
            };
            // The pod id may be given next to the definition instead of inside it.
            if let (Some(id), Some(obj)) = (req.pod_id, pod.as_object_mut()) {
                obj.entry("pod_id").or_insert(Value::String(id));
            }
            match serde_json::to_vec(&pod)
                .map_err(|e| ApiError::bad_request(e.to_string()))
                .and_then(|b| parse_json::<NewPod>(&b))
            {
                Ok(new) => service::create_pod(st, &ctx, new).await,
                Err(e) => Err(e),
            }
        }
        op => {
            let Some(pod_id) = req.pod_id else {
                return malformed(400, format!("'{}' needs 'pod_id'", op_name(op)));
            };
            match op {
                ExternalOp::Get => service::get_pod(st, &ctx, &pod_id).await,
                ExternalOp::Start => service::start_pod(st, &ctx, &pod_id).await,
                ExternalOp::Stop => service::stop_pod(st, &ctx, &pod_id).await,
                ExternalOp::Restart => service::restart_pod(st, &ctx, &pod_id, false).await,
                ExternalOp::Delete => service::delete_pod(st, &ctx, &pod_id).await,
                // Handled above; kept explicit so no arm can fall through to another operation.
                ExternalOp::Spawn => return malformed(400, "'spawn' needs the pod definition in 'pod'"),
            }
        }
    };
    match result {
        Ok(outcome) => Verdict::Done(success_reply(outcome)),
        Err(e) if e.is_transient() => Verdict::Transient(e),
        Err(e) => Verdict::Done(ExternalReply {
            ok: false,
            pod: None,
            error: Some(ReplyError { status: e.status.as_u16(), message: e.message, problems: e.problems }),
        }),
    }
}

fn op_name(op: ExternalOp) -> &'static str {
    match op {
        ExternalOp::Spawn => "spawn",
        ExternalOp::Get => "get",
        ExternalOp::Start => "start",
        ExternalOp::Stop => "stop",
        ExternalOp::Restart => "restart",
        ExternalOp::Delete => "delete",
    }
}

fn success_reply(outcome: Outcome) -> ExternalReply {
    let pod = outcome.result.is_object().then_some(outcome.result);
    if outcome.ok {
        ExternalReply { ok: true, pod, error: None }
    } else {
        ExternalReply {
            ok: false,
            pod,
            error: Some(ReplyError { status: 200, message: outcome.message, problems: Vec::new() }),
        }
    }
}

/// Replies in the request's encoding (JSON stays JSON; everything else gets MessagePack).
fn encode_reply(reply: &ExternalReply, request_content_type: Option<&str>) -> Result<(Vec<u8>, &'static str), String> {
    if request_content_type == Some(CONTENT_JSON) {
        serde_json::to_vec(&Envelope { v: PROTOCOL_VERSION, body: reply })
            .map(|b| (b, CONTENT_JSON))
            .map_err(|e| e.to_string())
    } else {
        corral_protocol::encode(reply).map(|b| (b, CONTENT_MSGPACK)).map_err(|e| e.to_string())
    }
}

async fn send_reply(st: &AppState, d: &Delivery, reply: &ExternalReply) {
    let Some(reply_to) = d.reply_to.as_deref().filter(|q| !q.is_empty()) else {
        return;
    };
    let (body, content_type) = match encode_reply(reply, d.content_type.as_deref()) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode reply");
            return;
        }
    };
    let msg = OutMessage {
        body,
        content_type: Some(content_type.to_string()),
        correlation_id: d.correlation_id.clone(),
        ..OutMessage::default()
    };
    match tokio::time::timeout(REPLY_TIMEOUT, st.bus().send_to_queue(reply_to, msg)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(reply_to, error = %e, "reply not delivered"),
        Err(_) => tracing::warn!(reply_to, "reply timed out"),
    }
}
