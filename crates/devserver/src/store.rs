//! The dev server's DynamoDB store, healed when its table disappears: DynamoDB Local keeps
//! tables in memory, so restarting it loses the table under a running dev server. Every
//! operation that finds the table gone re-creates it (as at start) and is tried once more,
//! listings included. Production tables come from template.yaml
//! and are never created by code.

use async_trait::async_trait;
use realtime::aws::dynamo::{DynamoStore, ensure_table};
use realtime::connection::store::{
    Admission, Connection, Listings, MessageRate, PageStream, PresenceLedger, RateBuckets, Records,
    StoreError, Subscriptions,
};
use realtime::time::{EpochMs, EpochSecs};
use uuid::Uuid;

pub struct HealingStore(pub DynamoStore);

fn table_lost(result: &Result<impl Sized, StoreError>) -> bool {
    matches!(result, Err(StoreError::TableMissing(_)))
}

impl HealingStore {
    /// Re-create the table after `result` found it gone; `true` when it now exists.
    async fn healed<T>(&self, result: &Result<T, StoreError>) -> bool {
        if !table_lost(result) {
            return false;
        }
        match ensure_table(self.0.client(), self.0.table()).await {
            Ok(created) => {
                tracing::warn!(
                    table = self.0.table(),
                    created,
                    "the connections table was gone (DynamoDB Local restarted?): re-created it, empty"
                );
                true
            }
            Err(error) => {
                tracing::error!(%error, table = self.0.table(), "the connections table is gone and cannot be re-created");
                false
            }
        }
    }
}

/// Run `$op` on the inner store; once more after healing a lost table.
macro_rules! healing {
    ($self:ident, $op:expr) => {{
        let first = $op;
        if $self.healed(&first).await {
            $op
        } else {
            first
        }
    }};
}

#[async_trait]
impl Records for HealingStore {
    async fn insert(&self, c: &Connection) -> Result<(), StoreError> {
        healing!(self, self.0.insert(c).await)
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        healing!(self, self.0.get(id).await)
    }

    async fn refresh(
        &self,
        id: &str,
        user: Uuid,
        exp: EpochSecs,
    ) -> Result<Connection, StoreError> {
        healing!(self, self.0.refresh(id, user, exp).await)
    }

    async fn remove_expired(&self, id: &str, now: EpochSecs) -> Result<bool, StoreError> {
        healing!(self, self.0.remove_expired(id, now).await)
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        healing!(self, self.0.remove(id).await)
    }

    async fn remove_many(&self, ids: &[String]) -> Result<(), StoreError> {
        healing!(self, self.0.remove_many(ids).await)
    }
}

#[async_trait]
impl Subscriptions for HealingStore {
    async fn subscribe(&self, id: &str, project: Uuid) -> Result<Connection, StoreError> {
        healing!(self, self.0.subscribe(id, project).await)
    }

    async fn unsubscribe(&self, id: &str) -> Result<Connection, StoreError> {
        healing!(self, self.0.unsubscribe(id).await)
    }

    async fn unsubscribe_from(&self, id: &str, project: Uuid) -> Result<bool, StoreError> {
        healing!(self, self.0.unsubscribe_from(id, project).await)
    }
}

#[async_trait]
impl RateBuckets for HealingStore {
    async fn admit(
        &self,
        id: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Admission, StoreError> {
        healing!(self, self.0.admit(id, rate, now).await)
    }

    async fn typing(
        &self,
        id: &str,
        p: Uuid,
        now: EpochMs,
        window: i64,
    ) -> Result<bool, StoreError> {
        healing!(self, self.0.typing(id, p, now, window).await)
    }

    async fn take_token(
        &self,
        bucket: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Option<i64>, StoreError> {
        healing!(self, self.0.take_token(bucket, rate, now).await)
    }
}

#[async_trait]
impl PresenceLedger for HealingStore {
    async fn announced_presence(&self, p: Uuid, user: Uuid) -> Result<Option<bool>, StoreError> {
        healing!(self, self.0.announced_presence(p, user).await)
    }

    async fn announce_presence(
        &self,
        p: Uuid,
        user: Uuid,
        online: bool,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        healing!(self, self.0.announce_presence(p, user, online, now).await)
    }
}

#[async_trait]
impl Listings for HealingStore {
    async fn project_sample(
        &self,
        p: Uuid,
        limit: usize,
    ) -> Result<(realtime::connection::store::Page, bool), StoreError> {
        healing!(self, self.0.project_sample(p, limit).await)
    }

    fn project_subscribers(&self, project: Uuid) -> PageStream<'_> {
        self.heal_listing(move || self.0.project_subscribers(project))
    }

    fn all_subscribers(&self) -> PageStream<'_> {
        self.heal_listing(|| self.0.all_subscribers())
    }

    fn user_connections(&self, user: Uuid) -> PageStream<'_> {
        self.heal_listing(move || self.0.user_connections(user))
    }

    fn reconnect_due(&self, minute: i64) -> PageStream<'_> {
        self.heal_listing(move || self.0.reconnect_due(minute))
    }

    async fn approximate_total(&self) -> Result<u64, StoreError> {
        healing!(self, self.0.approximate_total().await)
    }
}

impl HealingStore {
    /// A listing that re-creates a lost table when its first page finds it gone, and then
    /// lists again (the new table is empty, but the caller gets an answer, not an error).
    fn heal_listing<'a, F>(&'a self, make: F) -> PageStream<'a>
    where
        F: Fn() -> PageStream<'a> + Send + Sync + 'a,
    {
        use futures::StreamExt;
        futures::stream::once(async move {
            let mut pages = make();
            match pages.next().await {
                Some(first) if self.healed(&first).await => make(),
                Some(first) => futures::stream::iter([first]).chain(pages).boxed(),
                None => futures::stream::empty().boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}
