//! Fixtures and fakes used only by tests.
//!
//! - [`memory_store`]: [`MemoryStore`], an in-memory [`corral_store::Store`].
//! - [`store_contract`]: the contract every store implementation passes.

pub mod memory_store;
pub mod store_contract;

pub use memory_store::MemoryStore;
