//! Secrets in a map: the in-memory [`SecretStore`] for tests of cold-start reading and
//! rotation. It counts reads, so a test can see how often the secret was fetched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::connection::auth::SecretStore;

#[derive(Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, String>>,
    reads: AtomicUsize,
}

impl MemorySecrets {
    /// Set (or rotate) a secret.
    pub fn set(&self, id: &str, value: &str) {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), value.to_owned());
    }

    /// How many times a secret was read.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn secret(&self, id: &str) -> Result<String, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no secret {id}"))
    }
}
