//! The store contract against [`RedisStore`], each test in its own namespace of the Redis
//! at `CORRAL_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Fails if Redis is down.

use std::sync::Arc;

use corral_store::Store;
use corral_store::redis::RedisStore;
use tracing::Instrument;

fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Runs `contract` on a store in a fresh namespace and deletes the namespace afterwards,
/// also when the contract fails (the panic is re-raised after the cleanup).
async fn with_redis_store<F, Fut>(contract: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let namespace = format!("corral-test-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&redis_url(), &namespace).await.expect("connect to the test redis");
    let span = tracing::info_span!("store_contract", %namespace);
    let outcome = tokio::spawn(contract(Arc::new(store.clone())).instrument(span)).await;
    store.clear_namespace().await.expect("clear the test namespace");
    if let Err(failed) = outcome {
        if failed.is_panic() {
            std::panic::resume_unwind(failed.into_panic());
        }
        panic!("contract task did not finish: {failed}");
    }
}

corral_testkit::store_contract_tests!(with_redis_store);
