//! The store contract against [`MemoryStore`].

use std::sync::Arc;

use corral_store::Store;
use corral_testkit::MemoryStore;

async fn with_memory_store<F, Fut>(contract: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    contract(Arc::new(MemoryStore::new())).await;
}

corral_testkit::store_contract_tests!(with_memory_store);

/// The functions share one store in `run_all`, so they must not see each other's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_contract_on_one_shared_store() {
    corral_testkit::store_contract::run_all(Arc::new(MemoryStore::new())).await;
}
