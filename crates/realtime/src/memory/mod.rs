//! In-memory adapters: the dev server's default connection store, and (feature `dev`) the
//! fixed member list tests use. They implement the same ports as the AWS and Postgres
//! adapters and are tested against the same suites.

#[cfg(feature = "dev")]
mod membership;
mod store;

#[cfg(feature = "dev")]
pub use membership::MemberList;
pub use store::{DEFAULT_PAGE_SIZE, MemoryStore};
