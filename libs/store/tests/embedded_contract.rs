//! The store contract against [`EmbeddedStore`], each test on a fresh file in its own
//! temporary directory.

use std::sync::Arc;

use corral_store::Store;
use corral_store::embedded::EmbeddedStore;
use tracing::Instrument;

/// Runs `contract` on a store in a fresh temporary directory, removed afterwards (also when
/// the contract fails: the panic is re-raised after the store is closed).
async fn with_embedded_store<F, Fut>(contract: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("nested").join("corral.redb");
    let store = EmbeddedStore::open(&path).expect("open the embedded store");
    let span = tracing::info_span!("store_contract", path = %path.display());
    let outcome = tokio::spawn(contract(Arc::new(store)).instrument(span)).await;
    if let Err(failed) = outcome {
        if failed.is_panic() {
            std::panic::resume_unwind(failed.into_panic());
        }
        panic!("contract task did not finish: {failed}");
    }
}

corral_testkit::store_contract_tests!(with_embedded_store);
