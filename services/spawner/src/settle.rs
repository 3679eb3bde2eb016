//! Settling the bus delivery behind a message once the pod's actor has handled it. A
//! delivery carries one message, or a batch of kicks or observations for several pods
//! ([`corral_protocol::ShardMessage::Kicks`], [`corral_protocol::ShardMessage::Observations`]):
//! a batch is acked once every message in it was handled, and retried (all of it: kicks and
//! observations are idempotent, the machine ignoring what it already knows) when any failed.

use std::collections::BTreeMap;

use corral_bus::Delivery;
use corral_model::PodKey;
use corral_protocol::topology::HEADER_TRACEPARENT;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// What an actor settles after handling a message.
pub enum Settle {
    /// The whole delivery.
    Delivery(Delivery),
    /// One message of a batch; the shard consumer settles the delivery.
    Part { traceparent: Option<String>, done: oneshot::Sender<Result<(), String>> },
}

impl Settle {
    /// Makes `span` a child of the trace context the message carries, if any.
    pub fn continue_trace(&self, span: &tracing::Span) {
        match self {
            Self::Delivery(d) => corral_telemetry::extract_parent(span, &d.headers),
            Self::Part { traceparent: Some(tp), .. } => {
                let headers = BTreeMap::from([(HEADER_TRACEPARENT.to_owned(), tp.clone())]);
                corral_telemetry::extract_parent(span, &headers);
            }
            Self::Part { traceparent: None, .. } => {}
        }
    }

    /// The message was handled and its effects are stored.
    pub async fn handled(self, pod: &PodKey) {
        match self {
            Self::Delivery(d) => {
                if let Err(e) = d.ack().await {
                    tracing::warn!(pod = %pod, error = %e, "ack failed; the message will be redelivered");
                }
            }
            Self::Part { done, .. } => {
                // The consumer only stops waiting when its shard is released: then the
                // broker redelivers the batch anyway.
                let _ = done.send(Ok(()));
            }
        }
    }

    /// Handling failed with `reason`: the delivery goes back to the queue (or, after
    /// `max_attempts`, to the dead-letter exchange).
    pub async fn failed(self, reason: &str, max_attempts: u32) {
        match self {
            Self::Delivery(d) => {
                let _ = d.retry(reason, max_attempts).await;
            }
            Self::Part { done, .. } => {
                let _ = done.send(Err(reason.to_owned()));
            }
        }
    }
}

/// A batch delivery split into one [`Settle::Part`] per message, and the future that settles
/// the delivery once every part has been answered. A part dropped unanswered (its actor
/// gone with the message in its mailbox) counts as a failure, so the batch is retried.
pub fn split(
    delivery: Delivery,
    traceparents: Vec<Option<String>>,
    max_attempts: u32,
) -> (Vec<Settle>, BoxFuture<'static, ()>) {
    let mut parts = Vec::with_capacity(traceparents.len());
    let mut answers = Vec::with_capacity(traceparents.len());
    for traceparent in traceparents {
        let (done, answer) = oneshot::channel();
        parts.push(Settle::Part { traceparent, done });
        answers.push(answer);
    }
    let settle = async move {
        let mut failure = None;
        for answer in futures::future::join_all(answers).await {
            match answer {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => failure = failure.or(Some(reason)),
                Err(_) => failure = failure.or(Some("a message of the batch was dropped unhandled".to_owned())),
            }
        }
        let outcome = match &failure {
            None => delivery.ack().await,
            Some(reason) => delivery.retry(reason, max_attempts).await,
        };
        if let Err(e) = outcome {
            tracing::warn!(queue = %delivery.queue, error = %e, "cannot settle a batch; the broker will redeliver it");
        }
    };
    (parts, Box::pin(settle))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use corral_bus::{Acker, BusError};
    use futures::FutureExt as _;

    use super::*;

    /// Records how the delivery was settled.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    #[async_trait]
    impl Acker for Recorder {
        async fn ack(&self) -> Result<(), BusError> {
            self.0.lock().expect("lock").push("ack".into());
            Ok(())
        }
        async fn retry(&self, _msg: &Delivery, reason: &str, max_attempts: u32) -> Result<(), BusError> {
            self.0.lock().expect("lock").push(format!("retry({reason}, {max_attempts})"));
            Ok(())
        }
        async fn dead_letter(&self, _msg: &Delivery, reason: &str) -> Result<(), BusError> {
            self.0.lock().expect("lock").push(format!("dead_letter({reason})"));
            Ok(())
        }
    }

    fn batch(parts: usize) -> (Recorder, Vec<Settle>, BoxFuture<'static, ()>) {
        let rec = Recorder::default();
        let delivery = Delivery {
            body: Vec::new(),
            content_type: None,
            headers: BTreeMap::new(),
            reply_to: None,
            correlation_id: None,
            redelivered: false,
            attempts: 0,
            queue: "corral.shard.0".into(),
            acker: Box::new(rec.clone()),
        };
        let (parts, settle) = split(delivery, vec![None; parts], 5);
        (rec, parts, settle)
    }

    fn settled(rec: &Recorder) -> Vec<String> {
        rec.0.lock().expect("lock").clone()
    }

    #[tokio::test]
    async fn a_batch_is_acked_once_after_its_last_kick() {
        let key = PodKey::new("t", "p");
        let (rec, parts, mut settle) = batch(3);
        let mut parts = parts.into_iter();
        for part in parts.by_ref().take(2) {
            part.handled(&key).await;
        }
        assert!((&mut settle).now_or_never().is_none(), "settled with a kick still in hand");
        assert!(settled(&rec).is_empty());
        for part in parts {
            part.handled(&key).await;
        }
        settle.await;
        assert_eq!(settled(&rec), ["ack"]);
    }

    #[tokio::test]
    async fn a_failed_kick_retries_the_whole_batch_with_its_reason() {
        let key = PodKey::new("t", "p");
        let (rec, mut parts, settle) = batch(3);
        parts.pop().expect("a part").failed("store unavailable", 5).await;
        for part in parts {
            part.handled(&key).await;
        }
        settle.await;
        assert_eq!(settled(&rec), ["retry(store unavailable, 5)"]);
    }

    #[tokio::test]
    async fn a_kick_dropped_unhandled_retries_the_batch() {
        let key = PodKey::new("t", "p");
        let (rec, mut parts, settle) = batch(2);
        drop(parts.pop());
        parts.pop().expect("a part").handled(&key).await;
        settle.await;
        assert_eq!(settled(&rec), ["retry(a message of the batch was dropped unhandled, 5)"]);
    }
}
