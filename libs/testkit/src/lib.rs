//! Fixtures and fakes used only by tests.
//!
//! - [`memory_store`]: [`MemoryStore`], an in-memory [`corral_store::Store`].
//! - [`store_contract`]: the contract every store implementation passes.
//! - [`gated_bus`]: [`GatedBus`], a memory bus whose publishes wait for the test's permit.

pub mod gated_bus;
pub mod memory_store;
pub mod store_contract;

pub use gated_bus::{Gate, GatedBus};
pub use memory_store::MemoryStore;
