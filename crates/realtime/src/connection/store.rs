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

/// How long a connection item lives: API Gateway closes sockets after 2 h, so 24 h is a
/// generous upper bound for items whose `$disconnect` never ran.
pub const CONNECTION_TTL_SECONDS: i64 = 24 * 60 * 60;

/// Name of the sparse GSI on `project_id`.
pub const PROJECT_INDEX: &str = "project_id-index";

/// Name of the GSI on the minute each connection is due its reconnect hint (partition
/// `reconnect_at`, sort `connection_id`): the sweeper reads one partition a minute instead of
/// scanning the table.
pub const RECONNECT_INDEX: &str = "reconnect_at-index";

/// The epoch minute in which a connection opened at `connected_at` (epoch ms) is due its
/// reconnect hint: [`RECONNECT_HINT_LEAD`](crate::wire::events::RECONNECT_HINT_LEAD) before
/// API Gateway's maximum duration (1 h 55 min after it opened).
pub fn reconnect_minute(connected_at: i64) -> i64 {
    let after =
        crate::wire::events::MAX_CONNECTION_DURATION - crate::wire::events::RECONNECT_HINT_LEAD;
    (connected_at.div_euclid(1000) + after.as_secs() as i64).div_euclid(60)
}

/// One connection, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: String,
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    /// Epoch milliseconds.
    pub connected_at: i64,
    /// Epoch seconds; the TTL attribute.
    pub expires_at: i64,
}

impl Connection {
    /// A connection opened at `connected_at` (epoch ms), expiring 24 h later.
    pub fn new(
        connection_id: impl Into<String>,
        user_id: Uuid,
        project_id: Option<Uuid>,
        connected_at: i64,
    ) -> Self {
        Connection {
            connection_id: connection_id.into(),
            user_id,
            project_id,
            connected_at,
            expires_at: connected_at.div_euclid(1000) + CONNECTION_TTL_SECONDS,
        }
    }

    pub fn is_live(&self, now_seconds: i64) -> bool {
        self.expires_at > now_seconds
    }
}

/// What the project index holds for a connection (its projection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub connection_id: String,
    pub user_id: Uuid,
    pub expires_at: i64,
}

/// A page of a project's live subscribers; pages are never empty.
pub type Page = Vec<Subscriber>;

/// Stream of pages; ends at the last page, or after yielding the first error.
pub type PageStream<'a> = BoxStream<'a, Result<Page, StoreError>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The connection does not exist (closed, never opened, or expired).
    #[error("connection not found")]
    NotFound,
    /// The backing store failed; the operation may or may not have happened.
    #[error("connection store unavailable: {0}")]
    Unavailable(String),
}

/// The connection store port. Implementations: [`crate::aws::dynamo::DynamoStore`]
/// (production, tests on DynamoDB Local) and [`crate::memory::MemoryStore`] (dev server
/// default, tests).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Record a new connection (overwrites an item with the same id).
    async fn insert(&self, connection: &Connection) -> Result<(), StoreError>;

    /// A live connection by id (strongly consistent read).
    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError>;

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

    /// Delete the connection; deleting an absent one is not an error.
    async fn remove(&self, connection_id: &str) -> Result<(), StoreError>;

    /// Delete many connections (fan-out's 410s), in as few requests as the store allows.
    async fn remove_many(&self, connection_ids: &[String]) -> Result<(), StoreError> {
        for id in connection_ids {
            self.remove(id).await?;
        }
        Ok(())
    }

    /// The live subscribers of `project_id`, page by page.
    fn project_subscribers(&self, project_id: Uuid) -> PageStream<'_>;

    /// Every live connection, subscribed or not, page by page (a `resync` to everyone).
    fn all_subscribers(&self) -> PageStream<'_>;

    /// Live connections whose reconnect hint is due in epoch minute `minute`
    /// ([`reconnect_minute`]), in pages.
    fn reconnect_due(&self, minute: i64) -> PageStream<'_>;

    /// Number of connections in the store; may be approximate (see the adapter).
    async fn approximate_total(&self) -> Result<u64, StoreError>;
}
