//! Failed processing: retries with attempt counting, and dead-lettering.

use std::sync::Arc;

use corral_protocol::topology::{DEAD_LETTER_QUEUE, HEADER_ATTEMPTS, HEADER_ERROR, shard_queue};

use super::{consume, declared, next, publish_all, text};
use crate::Bus;
use crate::settle::HEADER_QUEUE;

/// `retry` redelivers with the attempt count raised until `max_attempts` failures, then the
/// message lands on the dead-letter queue with the reason and its origin in headers.
pub async fn retry_counts_attempts_then_dead_letters(bus: Arc<dyn Bus>) {
    const MAX: u32 = 3;
    declared(&bus).await;
    publish_all(&bus, 3, ["poison".to_owned()]).await;
    let mut consumer = consume(&bus, &shard_queue(3), 10).await;
    for attempt in 0..MAX {
        let got = next(&mut consumer, "retried delivery").await;
        assert_eq!(text(&got), "poison");
        assert_eq!(got.attempts, attempt, "attempt count of delivery {attempt}");
        if attempt > 0 {
            assert_eq!(got.headers.get(HEADER_ERROR).map(String::as_str), Some("boom"));
        }
        got.retry("boom", MAX).await.expect("retry");
    }

    let mut dead = consume(&bus, DEAD_LETTER_QUEUE, 10).await;
    let got = next(&mut dead, "dead-lettered message").await;
    assert_eq!(text(&got), "poison");
    assert_eq!(got.headers.get(HEADER_ERROR).map(String::as_str), Some("boom"));
    assert_eq!(got.headers.get(HEADER_QUEUE), Some(&shard_queue(3)));
    assert_eq!(got.headers.get(HEADER_ATTEMPTS).map(String::as_str), Some("3"));
    assert_eq!(got.attempts, MAX);
    got.ack().await.expect("ack dead letter");

    // The shard queue is empty again: the next message there is a new one.
    publish_all(&bus, 3, ["healthy".to_owned()]).await;
    let got = next(&mut consumer, "message after the poison").await;
    assert_eq!(text(&got), "healthy");
    assert_eq!(got.attempts, 0);
}

/// `dead_letter` skips retries, keeps the attempt count and does not requeue.
pub async fn dead_letter_at_once(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    publish_all(&bus, 0, ["malformed".to_owned()]).await;
    let mut consumer = consume(&bus, &shard_queue(0), 10).await;
    let got = next(&mut consumer, "malformed message").await;
    got.dead_letter("cannot decode").await.expect("dead letter");

    let mut dead = consume(&bus, DEAD_LETTER_QUEUE, 10).await;
    let got = next(&mut dead, "dead-lettered message").await;
    assert_eq!(text(&got), "malformed");
    assert_eq!(got.headers.get(HEADER_ERROR).map(String::as_str), Some("cannot decode"));
    assert_eq!(got.headers.get(HEADER_QUEUE), Some(&shard_queue(0)));
    assert_eq!(got.attempts, 0);
    got.ack().await.expect("ack dead letter");

    publish_all(&bus, 0, ["next".to_owned()]).await;
    let got = next(&mut consumer, "message after the dead-lettered one").await;
    assert_eq!(text(&got), "next", "the dead-lettered message must not be requeued");
    assert!(!got.redelivered);
}
