//! In-memory adapters: the dev server's default connection store and event store, and (feature `dev`) the
//! fixed member list tests use. They implement the same ports as the AWS and Postgres
//! adapters and are tested against the same suites.

pub mod events;
#[cfg(feature = "dev")]
mod membership;
mod secrets;
mod store;

pub use events::MemoryEventStore;
#[cfg(feature = "dev")]
pub use membership::MemberList;
pub use secrets::MemorySecrets;
pub use store::{DEFAULT_PAGE_SIZE, MemoryStore};
