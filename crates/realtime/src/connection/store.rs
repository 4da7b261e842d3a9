//! Where open connections live: the `ConnectionStore` port (DESIGN "Connections table").
//!
//! One item per connection; `project_id` is set once the connection subscribes, which puts it
//! in the sparse `project_id-index`. Items expire 24 h after connecting, but TTL deletion lags,
//! so every read filters `expires_at > now`. Listing a project is a stream of pages so that
//! fan-out can post while it pages instead of collecting every connection first.
//! Adapters: [`crate::aws::dynamo`] (production) and [`crate::memory`] (dev server, tests).

use async_trait::async_trait;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::time::{EpochMs, EpochSecs};

/// How long a connection item lives: API Gateway closes sockets after 2 h, so 24 h is a
/// generous upper bound for items whose `$disconnect` never ran.
pub const CONNECTION_TTL_SECONDS: i64 = 24 * 60 * 60;

/// Name of the sparse GSI on `project_id`.
pub const PROJECT_INDEX: &str = "project_id-index";

/// Name of the GSI on `user_id` (partition `user_id`, sort `connection_id`): the per-user
/// connection cap and revocation read a user's connections from it.
pub const USER_INDEX: &str = "user_id-index";

/// Name of the GSI on the minute each connection is due its reconnect hint (partition
/// `reconnect_at`, sort `connection_id`): the sweeper reads one partition a minute instead of
/// scanning the table.
pub const RECONNECT_INDEX: &str = "reconnect_at-index";

/// The epoch minute in which a connection opened at `connected_at` is due its reconnect hint:
/// [`RECONNECT_HINT_LEAD`](crate::wire::events::RECONNECT_HINT_LEAD) before API Gateway's
/// maximum duration (1 h 55 min after it opened).
pub fn reconnect_minute(connected_at: EpochMs) -> i64 {
    let after =
        crate::wire::events::MAX_CONNECTION_DURATION - crate::wire::events::RECONNECT_HINT_LEAD;
    connected_at
        .secs()
        .plus_secs(after.as_secs() as i64)
        .minute()
}

/// One connection, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: String,
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    pub connected_at: EpochMs,
    /// The TTL attribute.
    pub expires_at: EpochSecs,
    /// The `exp` of the token the connection authenticated with (moved by a `refresh`).
    /// Nothing is delivered to the connection from then on.
    pub token_exp: EpochSecs,
}

impl Connection {
    /// A connection opened at `connected_at`, expiring 24 h later.
    pub fn new(
        connection_id: impl Into<String>,
        user_id: Uuid,
        project_id: Option<Uuid>,
        connected_at: EpochMs,
    ) -> Self {
        let expires_at = connected_at.secs().plus_secs(CONNECTION_TTL_SECONDS);
        Connection {
            connection_id: connection_id.into(),
            user_id,
            project_id,
            connected_at,
            expires_at,
            token_exp: expires_at,
        }
    }

    /// The same connection, authorized until `token_exp`.
    pub fn with_token_exp(mut self, token_exp: EpochSecs) -> Self {
        self.token_exp = token_exp;
        self
    }

    pub fn is_live(&self, now: EpochSecs) -> bool {
        self.expires_at > now
    }

    /// Whether the connection's token has expired at `now`.
    pub fn token_expired(&self, now: EpochSecs) -> bool {
        self.token_exp <= now
    }
}

/// What the indexes hold for a connection (their projection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub connection_id: String,
    pub user_id: Uuid,
    /// The project the connection is subscribed to, where the index projects it (the user
    /// index does; in the project index it is the partition itself).
    pub project_id: Option<Uuid>,
    pub expires_at: EpochSecs,
    pub token_exp: EpochSecs,
}

impl From<&Connection> for Subscriber {
    fn from(c: &Connection) -> Self {
        Subscriber {
            connection_id: c.connection_id.clone(),
            user_id: c.user_id,
            project_id: c.project_id,
            expires_at: c.expires_at,
            token_exp: c.token_exp,
        }
    }
}

/// The message rate a connection may send (DESIGN "Connection life"), enforced with GCRA
/// (a token bucket kept as one timestamp): a message is admitted when the bucket's
/// theoretical arrival time `tat` minus now stays within `burst` intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRate {
    /// Messages per second, sustained.
    pub per_second: u32,
    /// Messages accepted at once from an idle connection.
    pub burst: u32,
}

impl Default for MessageRate {
    fn default() -> Self {
        MessageRate::per_second(Self::DEFAULT_PER_SECOND)
    }
}

impl MessageRate {
    /// Messages a second unless configured otherwise (`CLIENT_MESSAGE_RATE`).
    pub const DEFAULT_PER_SECOND: u32 = 10;

    /// `per_second` sustained, a burst of twice that.
    pub fn per_second(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        MessageRate {
            per_second,
            burst: per_second.saturating_mul(2),
        }
    }

    /// Milliseconds each message uses up.
    pub fn interval_ms(&self) -> i64 {
        (1000 / i64::from(self.per_second.max(1))).max(1)
    }

    /// The bucket's next `tat` if a message arriving at `now` is admitted; `None` when it is
    /// over the rate (the bucket is left as it was).
    pub fn admit(&self, tat: Option<EpochMs>, now: EpochMs) -> Option<EpochMs> {
        (tat.unwrap_or(now) <= self.latest_tat(now)).then(|| self.next_tat(tat, now))
    }

    /// The latest `tat` at which a bucket still admits a message arriving at `now`: its next
    /// `tat` (one interval on) then stays within the burst. [`Self::admit`] and the DynamoDB
    /// adapter's conditional update both compare against it.
    pub fn latest_tat(&self, now: EpochMs) -> EpochMs {
        now.plus_ms(self.window_ms() - self.interval_ms())
    }

    /// How many milliseconds after `now` a bucket at `tat` admits the next message (0: now).
    pub fn wait_ms(&self, tat: Option<EpochMs>, now: EpochMs) -> i64 {
        (self.next_tat(tat, now).ms_since(now) - self.window_ms()).max(0)
    }

    /// The bucket's `tat` once a message arriving at `now` is counted.
    fn next_tat(&self, tat: Option<EpochMs>, now: EpochMs) -> EpochMs {
        tat.unwrap_or(now).max(now).plus_ms(self.interval_ms())
    }

    /// The burst, in milliseconds of the bucket.
    fn window_ms(&self) -> i64 {
        self.interval_ms() * i64::from(self.burst.max(1))
    }
}

/// Whether a client message may be acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Within the rate; the connection as stored.
    Admitted(Connection),
    /// Over the rate: the message is dropped, the connection stays.
    Limited,
}

/// A page of a project's live subscribers; pages are never empty.
pub type Page = Vec<Subscriber>;

/// Stream of pages; ends at the last page, or after yielding the first error.
pub type PageStream<'a> = BoxStream<'a, Result<Page, StoreError>>;

/// Why a store operation failed. The cause is kept whole (its `source` chain for the logs);
/// what callers decide on is the variant, never the cause's text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The connection does not exist (closed, never opened, or expired).
    #[error("connection not found")]
    NotFound,
    /// The backing store failed; the operation may or may not have happened.
    #[error("connection store unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// Equal when of the same kind: causes are for logs, not for comparing.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Eq for StoreError {}

/// The error a store failed with, shared (a [`StoreError`] is cloned into every caller that
/// waited on it). `Display` writes the whole chain, `cause: its source: …`.
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(std::sync::Arc::new(error))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause(std::sync::Arc::from(Box::<
            dyn std::error::Error + Send + Sync,
        >::from(message)))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::from(message.to_owned())
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The connection store port, by role: a handler or component takes the roles it uses
/// ([`Records`], [`Subscriptions`], [`RateBuckets`], [`PresenceLedger`], [`Listings`]), and
/// [`ConnectionStore`] is all of them, what an adapter implements and the wiring holds.
/// Implementations: [`crate::aws::dynamo::DynamoStore`] (production, tests on DynamoDB Local)
/// and [`crate::memory::MemoryStore`] (dev server default, tests).
pub trait ConnectionStore:
    Records + Subscriptions + RateBuckets + PresenceLedger + Listings
{
}

impl<T: Records + Subscriptions + RateBuckets + PresenceLedger + Listings + ?Sized> ConnectionStore
    for T
{
}

/// A connection's own item: written at `$connect`, read, its token moved by a `refresh`, and
/// deleted (at `$disconnect`, on a 410, on expiry).
#[async_trait]
pub trait Records: Send + Sync {
    /// Record a new connection (overwrites an item with the same id).
    async fn insert(&self, connection: &Connection) -> Result<(), StoreError>;

    /// A live connection by id (strongly consistent read).
    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError>;

    /// Move the connection's `token_exp` (a `refresh`), if it still belongs to `user_id`.
    async fn refresh(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: EpochSecs,
    ) -> Result<Connection, StoreError>;

    /// Delete the connection if its token has expired at `now`; `true` when this call deleted
    /// it, so that of several broadcasts finding it expired exactly one closes it.
    async fn remove_expired(&self, connection_id: &str, now: EpochSecs)
    -> Result<bool, StoreError>;

    /// Delete the connection; deleting an absent one is not an error.
    async fn remove(&self, connection_id: &str) -> Result<(), StoreError>;

    /// Delete many connections (fan-out's 410s), in as few requests as the store allows.
    async fn remove_many(&self, connection_ids: &[String]) -> Result<(), StoreError> {
        for id in connection_ids {
            self.remove(id).await?;
        }
        Ok(())
    }
}

/// Which project a connection is subscribed to (the sparse project index).
#[async_trait]
pub trait Subscriptions: Send + Sync {
    /// Point a live connection at `project_id`. Fails with [`StoreError::NotFound`] and writes
    /// nothing when the connection is gone, so a late subscribe cannot resurrect it.
    async fn subscribe(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<Connection, StoreError>;

    /// Remove the connection from its project (and the index). Returns the connection as it
    /// was; [`StoreError::NotFound`] when it is gone.
    async fn unsubscribe(&self, connection_id: &str) -> Result<Connection, StoreError>;

    /// Remove the connection from `project_id` if it is still subscribed to it (revocation);
    /// `true` when this call ended the subscription.
    async fn unsubscribe_from(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<bool, StoreError>;
}

/// Rates kept in the store, so that every Lambda instance draws from the same bucket: a
/// connection's message rate and `typing` window (in its item) and named buckets (per-user
/// `$connect` and presence rates).
#[async_trait]
pub trait RateBuckets: Send + Sync {
    /// Count a client message against the connection's rate at `now` (one conditional write:
    /// the bucket lives in the item, so every Lambda instance sees the same one).
    /// [`StoreError::NotFound`] when the connection is gone.
    async fn admit(
        &self,
        connection_id: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Admission, StoreError>;

    /// Let one `typing` of the connection through: `true` when it is subscribed to
    /// `project_id` and its last `typing` let through was at least `window_ms` milliseconds
    /// before `now` (one conditional write on the item, so every Lambda instance sees the same
    /// window); `false` drops it.
    async fn typing(
        &self,
        connection_id: &str,
        project_id: Uuid,
        now: EpochMs,
        window_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Take one token from the rate bucket `bucket` (GCRA, as [`MessageRate::admit`]) at
    /// `now`: `None` when taken, `Some(ms)` to wait (milliseconds) before the next one is free.
    /// The bucket is one record in the store, so every Lambda instance draws from the same one
    /// (the per-user `$connect` rate and presence rate).
    async fn take_token(
        &self,
        bucket: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Option<i64>, StoreError>;
}

/// The presence last announced for a user in a project, so that of several handlers seeing
/// the same change exactly one announces it.
#[async_trait]
pub trait PresenceLedger: Send + Sync {
    /// The presence last announced for `user_id` in `project_id`: `Some(true)` online,
    /// `Some(false)` offline, `None` when none is on record.
    async fn announced_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<bool>, StoreError>;

    /// Record `online` as announced for `user_id` in `project_id` unless it already is (one
    /// conditional write); `true` when this call changed it, so that of several handlers
    /// seeing the same change exactly one announces it.
    async fn announce_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        online: bool,
        now: EpochMs,
    ) -> Result<bool, StoreError>;
}

/// Reads over many connections: a project's subscribers, a user's connections, everyone, the
/// connections due their reconnect hint, and the table's size.
#[async_trait]
pub trait Listings: Send + Sync {
    /// The live subscribers of `project_id`, page by page.
    fn project_subscribers(&self, project_id: Uuid) -> PageStream<'_>;

    /// At most `limit` live subscribers of `project_id`, in one read, and whether the project
    /// may hold more (presence reads no further than its bound).
    async fn project_sample(
        &self,
        project_id: Uuid,
        limit: usize,
    ) -> Result<(Page, bool), StoreError>;

    /// The live connections of `user_id`, subscribed or not, page by page (the user index).
    fn user_connections(&self, user_id: Uuid) -> PageStream<'_>;

    /// Every live connection, subscribed or not, page by page (a `resync` to everyone).
    fn all_subscribers(&self) -> PageStream<'_>;

    /// Live connections whose reconnect hint is due in epoch minute `minute`
    /// ([`reconnect_minute`]), in pages.
    fn reconnect_due(&self, minute: i64) -> PageStream<'_>;

    /// Number of connections in the store; may be approximate (see the adapter).
    async fn approximate_total(&self) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_admits_a_burst_then_one_per_interval() {
        let rate = MessageRate::per_second(10);
        assert_eq!((rate.interval_ms(), rate.burst), (100, 20));
        let (mut tat, now) = (None, EpochMs(1_000_000));
        let admitted = (0..100)
            .filter(|_| match rate.admit(tat, now) {
                Some(next) => {
                    tat = Some(next);
                    true
                }
                None => false,
            })
            .count();
        assert_eq!(admitted, 20);
        // One interval later exactly one more fits; an idle bucket is full again.
        assert!(rate.admit(tat, now.plus_ms(99)).is_none());
        assert_eq!(rate.admit(tat, now.plus_ms(100)), Some(now.plus_ms(2_100)));
        assert_eq!(
            rate.admit(tat, now.plus_ms(60_000)),
            Some(now.plus_ms(60_100))
        );
        // The wait tells when the next one fits.
        assert_eq!(rate.wait_ms(tat, now.plus_ms(50)), 50);
        assert_eq!(rate.wait_ms(tat, now.plus_ms(100)), 0);
    }
}
