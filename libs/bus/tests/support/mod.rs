//! Connecting to the test broker in a fresh namespace, and cleaning it up.

#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use corral_bus::Bus;
use corral_bus::amqp::AmqpBus;
use corral_bus::contract::{SHARDS, WAIT};

/// Bound on a whole test body.
const TEST_BOUND: Duration = Duration::from_secs(90);

pub fn amqp_url() -> String {
    std::env::var("CORRAL_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A bus in a namespace of its own; fails the test if the broker is not there.
pub async fn namespaced_bus() -> AmqpBus {
    let namespace = format!("test-{}", uuid::Uuid::new_v4());
    let url = amqp_url();
    tokio::time::timeout(WAIT, AmqpBus::connect(&url, &namespace))
        .await
        .expect("connecting to the test broker timed out")
        .expect("the test broker must be running (CORRAL_TEST_AMQP_URL)")
}

/// Runs `body` against a fresh namespaced bus and deletes the namespace afterwards, also
/// when `body` panics (the panic is re-raised after the cleanup).
pub async fn with_namespaced_bus<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Bus>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let bus = namespaced_bus().await;
    let outcome = tokio::spawn(tokio::time::timeout(TEST_BOUND, body(Arc::new(bus.clone())))).await;
    let cleanup = tokio::time::timeout(WAIT, bus.delete_namespace_for_tests(SHARDS)).await;
    match outcome {
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => panic!("test task failed: {join}"),
        Ok(Err(_)) => panic!("test body did not finish within {TEST_BOUND:?}"),
        Ok(Ok(())) => {}
    }
    cleanup.expect("namespace cleanup timed out").expect("namespace cleanup");
}
