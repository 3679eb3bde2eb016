//! Where a failed delivery goes next. Shared by every bus so that attempt counting and
//! dead-lettering look the same whichever implementation a service runs on.

use corral_protocol::topology::{DEAD_LETTER_EXCHANGE, HEADER_ATTEMPTS, HEADER_ERROR, HEADER_TOKEN};

use crate::{Delivery, OutMessage};

/// Header naming the (logical) queue a dead-lettered message came from, so an operator can
/// put it back after fixing the cause.
pub(crate) const HEADER_QUEUE: &str = "x-corral-queue";

/// Where [`plan_retry`] sends a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Back onto the queue it came from (default exchange, routing key = queue).
    SameQueue,
    /// To the dead-letter exchange.
    DeadLetter,
}

impl Target {
    /// The exchange that takes the message there, routing by the queue's (physical) name:
    /// the default exchange routes straight back to the queue.
    pub(crate) fn exchange(self) -> &'static str {
        match self {
            Self::SameQueue => "",
            Self::DeadLetter => DEAD_LETTER_EXCHANGE,
        }
    }
}

/// Decides the fate of a delivery whose processing failed and builds the message to
/// publish: the attempt count always goes up by one, and `max_attempts` failures in total
/// dead-letter it (so `max_attempts = 1` never retries).
pub(crate) fn plan_retry(delivery: &Delivery, reason: &str, max_attempts: u32) -> (Target, OutMessage) {
    let attempts = delivery.attempts.saturating_add(1);
    let target = if attempts >= max_attempts { Target::DeadLetter } else { Target::SameQueue };
    let mut msg = republished(delivery, attempts, reason);
    if target == Target::DeadLetter {
        msg.headers.insert(HEADER_QUEUE.to_owned(), delivery.queue.clone());
        strip_secrets(&mut msg);
    }
    (target, msg)
}

/// The message that goes to the dead-letter exchange when a delivery is given up at once;
/// its attempt count is left as it was since this is not a processing retry.
pub(crate) fn dead_letter_message(delivery: &Delivery, reason: &str) -> OutMessage {
    let mut msg = republished(delivery, delivery.attempts, reason);
    msg.headers.insert(HEADER_QUEUE.to_owned(), delivery.queue.clone());
    strip_secrets(&mut msg);
    msg
}

/// A dead-letter queue is read by operators and kept for long: credentials carried by the
/// original message (the caller's token) must not end up there. Retries keep them, since the
/// next attempt needs them.
fn strip_secrets(msg: &mut OutMessage) {
    msg.headers.retain(|k, _| !k.eq_ignore_ascii_case(HEADER_TOKEN) && !k.eq_ignore_ascii_case("authorization"));
}

fn republished(delivery: &Delivery, attempts: u32, reason: &str) -> OutMessage {
    let mut headers = delivery.headers.clone();
    headers.insert(HEADER_ATTEMPTS.to_owned(), attempts.to_string());
    headers.insert(HEADER_ERROR.to_owned(), reason.to_owned());
    OutMessage {
        body: delivery.body.clone(),
        content_type: delivery.content_type.clone(),
        headers,
        reply_to: delivery.reply_to.clone(),
        correlation_id: delivery.correlation_id.clone(),
    }
}

/// Reads the attempt count a message carries; anything unparsable counts as zero because a
/// foreign publisher's garbage must not make a message look exhausted.
pub(crate) fn attempts_from_header(value: Option<&str>) -> u32 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Acker, BusError};

    struct NoAcker;

    #[async_trait::async_trait]
    impl Acker for NoAcker {
        async fn ack(&self) -> Result<(), BusError> {
            Ok(())
        }
        async fn retry(&self, _: &Delivery, _: &str, _: u32) -> Result<(), BusError> {
            Ok(())
        }
        async fn dead_letter(&self, _: &Delivery, _: &str) -> Result<(), BusError> {
            Ok(())
        }
    }

    fn delivery(attempts: u32) -> Delivery {
        Delivery {
            body: b"b".to_vec(),
            content_type: Some("text/plain".into()),
            headers: BTreeMap::from([("k".to_owned(), "v".to_owned()), (HEADER_TOKEN.to_owned(), "secret".to_owned())]),
            reply_to: Some("r".into()),
            correlation_id: Some("c".into()),
            redelivered: false,
            attempts,
            queue: "q".into(),
            acker: Box::new(NoAcker),
        }
    }

    #[test]
    fn retries_until_the_last_attempt_then_dead_letters() {
        let (target, msg) = plan_retry(&delivery(0), "boom", 3);
        assert_eq!(target, Target::SameQueue);
        assert_eq!(msg.headers.get(HEADER_ATTEMPTS).map(String::as_str), Some("1"));
        assert_eq!(msg.headers.get(HEADER_ERROR).map(String::as_str), Some("boom"));
        assert_eq!(msg.headers.get("k").map(String::as_str), Some("v"));
        assert!(!msg.headers.contains_key(HEADER_QUEUE));
        assert!(msg.headers.contains_key(HEADER_TOKEN), "a retry keeps the token for the next attempt");

        let (target, msg) = plan_retry(&delivery(2), "boom", 3);
        assert_eq!(target, Target::DeadLetter);
        assert_eq!(msg.headers.get(HEADER_ATTEMPTS).map(String::as_str), Some("3"));
        assert_eq!(msg.headers.get(HEADER_QUEUE).map(String::as_str), Some("q"));
        assert!(!msg.headers.contains_key(HEADER_TOKEN), "tokens never reach the dead-letter queue");
        assert_eq!(msg.reply_to.as_deref(), Some("r"));
        assert_eq!(msg.correlation_id.as_deref(), Some("c"));
    }

    #[test]
    fn max_attempts_of_one_or_zero_never_retries() {
        assert_eq!(plan_retry(&delivery(0), "x", 1).0, Target::DeadLetter);
        assert_eq!(plan_retry(&delivery(0), "x", 0).0, Target::DeadLetter);
    }

    #[test]
    fn dead_letter_keeps_the_attempt_count() {
        let msg = dead_letter_message(&delivery(4), "bad");
        assert_eq!(msg.headers.get(HEADER_ATTEMPTS).map(String::as_str), Some("4"));
        assert_eq!(msg.headers.get(HEADER_ERROR).map(String::as_str), Some("bad"));
        assert!(!msg.headers.contains_key(HEADER_TOKEN), "tokens never reach the dead-letter queue");
    }

    #[test]
    fn attempts_header_parsing_is_lenient() {
        assert_eq!(attempts_from_header(Some("7")), 7);
        assert_eq!(attempts_from_header(Some(" 2 ")), 2);
        assert_eq!(attempts_from_header(Some("-1")), 0);
        assert_eq!(attempts_from_header(Some("lots")), 0);
        assert_eq!(attempts_from_header(None), 0);
    }
}
