//! In-memory `ConnectionStore`: the dev server's default store and the reference the
//! DynamoDB adapter is tested against. It pages like the real index (sorted by connection id,
//! a fixed number per page) so paging code is exercised without DynamoDB.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;
use futures::StreamExt;
use uuid::Uuid;

use crate::connection::store::{
    Admission, Connection, Listings, MessageRate, Page, PageStream, PresenceLedger, RateBuckets,
    Records, StoreError, Subscriber, Subscriptions, reconnect_minute,
};
use crate::time::{EpochMs, EpochSecs};

/// Default page size: about what a 1 MB DynamoDB page holds for this item shape.
pub const DEFAULT_PAGE_SIZE: usize = 5_000;

#[derive(Default)]
struct Inner {
    connections: HashMap<String, Connection>,
    /// The sparse project index: project → connection ids in index order.
    by_project: HashMap<Uuid, BTreeSet<String>>,
    /// The user index: user → connection ids.
    by_user: HashMap<Uuid, BTreeSet<String>>,
    /// Each connection's message-rate bucket (GCRA `tat`).
    rate_tat: HashMap<String, EpochMs>,
    /// When each connection's last `typing` was let through.
    typing_at: HashMap<String, EpochMs>,
    /// Rate buckets by name (GCRA `tat`).
    buckets: HashMap<String, EpochMs>,
    /// Presence last announced per (project, user).
    presence: HashMap<(Uuid, Uuid), bool>,
    /// When each connection was written, for [`MemoryStore::with_user_index_lag`].
    written_at: HashMap<String, std::time::Instant>,
}

impl Inner {
    fn forget(&mut self, connection_id: &str) -> Option<Connection> {
        let old = self.connections.remove(connection_id)?;
        self.unindex(&old);
        self.rate_tat.remove(connection_id);
        self.typing_at.remove(connection_id);
        self.written_at.remove(connection_id);
        if let Some(ids) = self.by_user.get_mut(&old.user_id) {
            ids.remove(connection_id);
            if ids.is_empty() {
                self.by_user.remove(&old.user_id);
            }
        }
        Some(old)
    }

    fn unindex(&mut self, connection: &Connection) {
        if let Some(project) = connection.project_id
            && let Some(ids) = self.by_project.get_mut(&project)
        {
            ids.remove(&connection.connection_id);
            if ids.is_empty() {
                self.by_project.remove(&project);
            }
        }
    }

    fn index(&mut self, connection: &Connection) {
        if let Some(project) = connection.project_id {
            self.by_project
                .entry(project)
                .or_default()
                .insert(connection.connection_id.clone());
        }
    }

    fn live_mut(&mut self, connection_id: &str, now: EpochSecs) -> Option<&mut Connection> {
        self.connections
            .get_mut(connection_id)
            .filter(|c| c.is_live(now))
    }
}

pub struct MemoryStore {
    inner: RwLock<Inner>,
    page_size: usize,
    user_index_lag: std::time::Duration,
    faults: Faults,
}

/// What DynamoDB may do and this store otherwise never does, on a test's request (`dev`).
#[derive(Default)]
struct Faults {
    /// A project listing's second page waits for this notification.
    second_page_after: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// `remove` never answers.
    removes_hang: bool,
    /// `insert` writes, then reports a timeout.
    inserts_time_out: bool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_page_size(DEFAULT_PAGE_SIZE)
    }

    /// A store whose project listing yields at most `page_size` subscribers per page.
    pub fn with_page_size(page_size: usize) -> Self {
        MemoryStore {
            inner: RwLock::default(),
            page_size: page_size.max(1),
            user_index_lag: std::time::Duration::ZERO,
            faults: Faults::default(),
        }
    }

    /// The same store whose user index shows a connection only `lag` after it was written,
    /// as DynamoDB's eventually consistent index may (tests of what must not depend on it).
    pub fn with_user_index_lag(mut self, lag: std::time::Duration) -> Self {
        self.user_index_lag = lag;
        self
    }

    /// The same store whose project listings hold their second page back until `notify` is
    /// notified (a fan-out that read every page before posting would wait forever).
    #[cfg(feature = "dev")]
    pub fn with_second_page_after(mut self, notify: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.faults.second_page_after = Some(notify);
        self
    }

    /// The same store whose `remove` never answers (a store that hangs after a fan-out).
    #[cfg(feature = "dev")]
    pub fn with_hanging_removes(mut self) -> Self {
        self.faults.removes_hang = true;
        self
    }

    /// The same store whose `insert` writes and then reports a timeout, as a DynamoDB
    /// `PutItem` that succeeded after the client gave up.
    #[cfg(feature = "dev")]
    pub fn with_inserts_timing_out(mut self) -> Self {
        self.faults.inserts_time_out = true;
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One page of `project_id` after `after` (exclusive); the next start key if more follow.
    fn page(
        &self,
        project_id: Uuid,
        after: Option<&str>,
        now: EpochSecs,
    ) -> (Page, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let inner = self.read();
        let Some(ids) = inner.by_project.get(&project_id) else {
            return (Vec::new(), None);
        };
        let lower = after.map_or(Unbounded, |a| Excluded(a.to_owned()));
        let mut page = Vec::new();
        let mut last = None;
        for (scanned, id) in ids.range((lower, Unbounded)).enumerate() {
            if scanned == self.page_size {
                return (page, last);
            }
            last = Some(id.clone());
            if let Some(c) = inner.connections.get(id).filter(|c| c.is_live(now)) {
                page.push(Subscriber::from(c));
            }
        }
        (page, None)
    }
}

#[async_trait]
impl Records for MemoryStore {
    async fn insert(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.forget(&connection.connection_id);
        inner
            .connections
            .insert(connection.connection_id.clone(), connection.clone());
        inner
            .by_user
            .entry(connection.user_id)
            .or_default()
            .insert(connection.connection_id.clone());
        inner.index(connection);
        inner
            .written_at
            .insert(connection.connection_id.clone(), std::time::Instant::now());
        if self.faults.inserts_time_out {
            return Err(StoreError::Unavailable("operation timed out".into()));
        }
        Ok(())
    }

    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let now = EpochSecs::now();
        Ok(self
            .read()
            .connections
            .get(connection_id)
            .filter(|c| c.is_live(now))
            .cloned())
    }

    async fn refresh(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: EpochSecs,
    ) -> Result<Connection, StoreError> {
        let mut inner = self.write();
        let connection = inner
            .live_mut(connection_id, EpochSecs::now())
            .filter(|c| c.user_id == user_id)
            .ok_or(StoreError::NotFound)?;
        connection.token_exp = token_exp;
        Ok(connection.clone())
    }

    async fn remove_expired(
        &self,
        connection_id: &str,
        now: EpochSecs,
    ) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let expired = inner
            .connections
            .get(connection_id)
            .is_some_and(|c| c.token_expired(now));
        if expired {
            inner.forget(connection_id);
        }
        Ok(expired)
    }

    async fn remove(&self, connection_id: &str) -> Result<(), StoreError> {
        if self.faults.removes_hang {
            std::future::pending::<()>().await;
        }
        self.write().forget(connection_id);
        Ok(())
    }
}

#[async_trait]
impl Subscriptions for MemoryStore {
    async fn subscribe(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<Connection, StoreError> {
        let mut inner = self.write();
        let connection = inner
            .live_mut(connection_id, EpochSecs::now())
            .ok_or(StoreError::NotFound)?;
        let old = connection.clone();
        connection.project_id = Some(project_id);
        let new = connection.clone();
        inner.unindex(&old);
        inner.index(&new);
        Ok(new)
    }

    async fn unsubscribe(&self, connection_id: &str) -> Result<Connection, StoreError> {
        let mut inner = self.write();
        let connection = inner
            .live_mut(connection_id, EpochSecs::now())
            .ok_or(StoreError::NotFound)?;
        let old = connection.clone();
        connection.project_id = None;
        inner.unindex(&old);
        Ok(old)
    }

    async fn unsubscribe_from(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let Some(connection) = inner
            .live_mut(connection_id, EpochSecs::now())
            .filter(|c| c.project_id == Some(project_id))
        else {
            return Ok(false);
        };
        let old = connection.clone();
        connection.project_id = None;
        inner.unindex(&old);
        Ok(true)
    }
}

#[async_trait]
impl RateBuckets for MemoryStore {
    async fn admit(
        &self,
        connection_id: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Admission, StoreError> {
        let mut inner = self.write();
        let connection = inner
            .live_mut(connection_id, now.secs())
            .ok_or(StoreError::NotFound)?
            .clone();
        let tat = inner.rate_tat.get(connection_id).copied();
        Ok(match rate.admit(tat, now) {
            Some(next) => {
                inner.rate_tat.insert(connection_id.to_owned(), next);
                Admission::Admitted(connection)
            }
            None => Admission::Limited,
        })
    }

    async fn typing(
        &self,
        connection_id: &str,
        project_id: Uuid,
        now: EpochMs,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let subscribed = inner
            .live_mut(connection_id, now.secs())
            .is_some_and(|c| c.project_id == Some(project_id));
        let last = inner.typing_at.get(connection_id).copied();
        if !subscribed || last.is_some_and(|t| t > now.minus_ms(window_ms)) {
            return Ok(false);
        }
        inner.typing_at.insert(connection_id.to_owned(), now);
        Ok(true)
    }

    async fn take_token(
        &self,
        bucket: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Option<i64>, StoreError> {
        let mut inner = self.write();
        let tat = inner.buckets.get(bucket).copied();
        match rate.admit(tat, now) {
            Some(next) => {
                inner.buckets.insert(bucket.to_owned(), next);
                Ok(None)
            }
            None => Ok(Some(rate.wait_ms(tat, now))),
        }
    }
}

#[async_trait]
impl PresenceLedger for MemoryStore {
    async fn announced_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<bool>, StoreError> {
        Ok(self.read().presence.get(&(project_id, user_id)).copied())
    }

    async fn announce_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        online: bool,
        _now: EpochMs,
    ) -> Result<bool, StoreError> {
        let mut inner = self.write();
        Ok(inner.presence.insert((project_id, user_id), online) != Some(online))
    }
}

#[async_trait]
impl Listings for MemoryStore {
    async fn project_sample(
        &self,
        project_id: Uuid,
        limit: usize,
    ) -> Result<(Page, bool), StoreError> {
        let mut live: Vec<Subscriber> = self
            .project_subscribers(project_id)
            .map(|page| page.unwrap_or_default())
            .concat()
            .await;
        let more = live.len() > limit;
        live.truncate(limit);
        Ok((live, more))
    }

    fn project_subscribers(&self, project_id: Uuid) -> PageStream<'_> {
        let now = EpochSecs::now();
        let pages = futures::stream::unfold(Some(None::<String>), move |state| async move {
            let mut after = state?;
            loop {
                let (page, next) = self.page(project_id, after.as_deref(), now);
                match (page.is_empty(), next) {
                    (false, next) => return Some((Ok(page), next.map(Some))),
                    (true, Some(next)) => after = Some(next),
                    (true, None) => return None,
                }
            }
        });
        // Only a test asks for the gate; without it the pages pass untouched.
        let Some(gate) = self.faults.second_page_after.clone() else {
            return pages.boxed();
        };
        pages
            .enumerate()
            .then(move |(i, page)| {
                let gate = (i == 1).then(|| gate.clone());
                async move {
                    if let Some(gate) = gate {
                        gate.notified().await;
                    }
                    page
                }
            })
            .boxed()
    }

    fn all_subscribers(&self) -> PageStream<'_> {
        self.live_pages(|_| true)
    }

    fn user_connections(&self, user_id: Uuid) -> PageStream<'_> {
        let now = EpochSecs::now();
        let inner = self.read();
        let live: Vec<Subscriber> = inner
            .by_user
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter(|id| {
                inner
                    .written_at
                    .get(*id)
                    .is_none_or(|at| at.elapsed() >= self.user_index_lag)
            })
            .filter_map(|id| inner.connections.get(id))
            .filter(|c| c.is_live(now))
            .map(Subscriber::from)
            .collect();
        drop(inner);
        self.paged(live)
    }

    fn reconnect_due(&self, minute: i64) -> PageStream<'_> {
        self.live_pages(|c| reconnect_minute(c.connected_at) == minute)
    }

    /// Exact for this store: every item, expired ones included, as DynamoDB's count would be.
    async fn approximate_total(&self) -> Result<u64, StoreError> {
        Ok(self.read().connections.len() as u64)
    }
}

impl MemoryStore {
    /// Live connections matching `filter`, sorted by id, in pages.
    fn live_pages(&self, filter: impl Fn(&Connection) -> bool) -> PageStream<'_> {
        let now = EpochSecs::now();
        let mut live: Vec<Subscriber> = self
            .read()
            .connections
            .values()
            .filter(|c| c.is_live(now) && filter(c))
            .map(Subscriber::from)
            .collect();
        live.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        self.paged(live)
    }

    fn paged(&self, live: Vec<Subscriber>) -> PageStream<'_> {
        let pages: Vec<Result<Page, StoreError>> = live
            .chunks(self.page_size)
            .map(|c| Ok(c.to_vec()))
            .collect();
        futures::stream::iter(pages).boxed()
    }
}
