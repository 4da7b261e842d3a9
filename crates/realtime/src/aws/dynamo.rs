//! DynamoDB `ConnectionStore`: the table and sparse GSI of DESIGN "Connections table".
//!
//! Subscribe and unsubscribe are conditional updates (`attribute_exists(connection_id)` and
//! not expired), so a subscribe racing a disconnect cannot recreate the item. Project listings
//! query the GSI one page at a time (1 MB by default, smaller when a page limit is set) and
//! filter `expires_at > now` on the server, because TTL deletion lags by up to days.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
#[cfg(feature = "dev")]
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use futures::StreamExt;
use uuid::Uuid;

use crate::connection::store::{
    Admission, CONNECTION_TTL_SECONDS, Cause, Connection, Listings, MessageRate, PROJECT_INDEX,
    Page, PageStream, PresenceLedger, RECONNECT_INDEX, RateBuckets, Records, StoreError,
    Subscriber, Subscriptions, USER_INDEX, reconnect_minute,
};
use crate::settings::{ConfigError, Env, required};
use crate::time::{EpochMs, EpochSecs};

/// The DynamoDB table of DESIGN "Connections table".
pub const CONNECTIONS_TABLE: &str = "CONNECTIONS_TABLE";

/// The store's settings: `CONNECTIONS_TABLE` (required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub table: String,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[CONNECTIONS_TABLE];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        let table = required(
            env,
            CONNECTIONS_TABLE,
            "the DynamoDB connections table name",
        )?;
        Ok(Settings {
            table: table.to_owned(),
        })
    }
}

pub const ATTR_CONNECTION_ID: &str = "connection_id";
pub const ATTR_USER_ID: &str = "user_id";
pub const ATTR_PROJECT_ID: &str = "project_id";
pub const ATTR_CONNECTED_AT: &str = "connected_at";
/// The epoch minute the connection is due its reconnect hint (key of [`RECONNECT_INDEX`]).
pub const ATTR_RECONNECT_AT: &str = "reconnect_at";
pub const ATTR_EXPIRES_AT: &str = "expires_at";
/// The token's `exp` (epoch seconds): nothing is delivered past it.
pub const ATTR_TOKEN_EXP: &str = "token_exp";
/// The message-rate bucket (GCRA theoretical arrival time, epoch ms); never projected.
pub const ATTR_RATE_TAT: &str = "rate_tat";
/// Presence last announced for a (project, user) record (BOOL); never projected.
pub const ATTR_PRESENCE_ONLINE: &str = "presence_online";
/// Between retries of a batch's unprocessed deletes: 50 ms doubling (5 attempts).
const UNPROCESSED_BACKOFF: crate::backoff::Backoff = crate::backoff::Backoff {
    base: std::time::Duration::from_millis(50),
    cap: std::time::Duration::from_millis(800),
};
/// How long a rate bucket record outlives its last use (it only matters for a burst).
const BUCKET_TTL_SECONDS: i64 = 60 * 60;

/// Records that are not connections share the table under keys no API Gateway connection id
/// takes (those are base64-like, never with `~` or `#`): rate buckets and announced presence.
/// They carry no `user_id`, so no index holds them and every listing skips them (the table's
/// approximate item count includes them); `expires_at` lets TTL delete them.
fn record_key(kind: &str, name: &str) -> String {
    format!("~{kind}#{name}")
}

fn presence_key(project_id: Uuid, user_id: Uuid) -> String {
    record_key("presence", &format!("{project_id}#{user_id}"))
}

fn conditional_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

/// Attributes the indexes project (each index leaves out its own partition key, which
/// DynamoDB projects anyway).
pub const INDEX_PROJECTION: [&str; 4] = [
    ATTR_USER_ID,
    ATTR_PROJECT_ID,
    ATTR_EXPIRES_AT,
    ATTR_TOKEN_EXP,
];
/// Every index of the table with its partition key.
pub const INDEXES: [(&str, &str); 3] = [
    (PROJECT_INDEX, ATTR_PROJECT_ID),
    (USER_INDEX, ATTR_USER_ID),
    (RECONNECT_INDEX, ATTR_RECONNECT_AT),
];

/// The non-key attributes of the index partitioned on `partition`.
pub fn index_projection(partition: &str) -> Vec<String> {
    INDEX_PROJECTION
        .iter()
        .filter(|a| **a != partition)
        .map(|a| a.to_string())
        .collect()
}

type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    client: Client,
    table: String,
    page_limit: Option<i32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            page_limit: None,
        }
    }

    /// Cap each GSI query page at `limit` items evaluated (tests use it to force many pages).
    pub fn with_page_limit(mut self, limit: i32) -> Self {
        self.page_limit = Some(limit.max(1));
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The item under `key`, read strongly consistent.
    async fn read(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let (k, v) = Self::key(key);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    fn key(connection_id: &str) -> (String, AttributeValue) {
        (
            ATTR_CONNECTION_ID.to_owned(),
            AttributeValue::S(connection_id.to_owned()),
        )
    }

    /// A conditional update of a live item, returning the item's old or new image.
    async fn update_live(
        &self,
        connection_id: &str,
        update: &str,
        values: Item,
        returning: ReturnValue,
    ) -> Result<Connection, StoreError> {
        self.update_live_if(connection_id, update, None, values, returning)
            .await
    }

    /// [`Self::update_live`] with a further `condition`; [`StoreError::NotFound`] when the
    /// item is gone or the condition does not hold.
    async fn update_live_if(
        &self,
        connection_id: &str,
        update: &str,
        condition: Option<&str>,
        values: Item,
        returning: ReturnValue,
    ) -> Result<Connection, StoreError> {
        let (k, v) = Self::key(connection_id);
        let live = "attribute_exists(connection_id) AND expires_at > :now";
        let condition = match condition {
            Some(c) => format!("{live} AND ({c})"),
            None => live.to_owned(),
        };
        let mut values = values;
        values
            .entry(":now".to_owned())
            .or_insert_with(|| number(EpochSecs::now().0));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k, v)
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(returning)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(connection_from_item)
                .ok_or_else(|| {
                    StoreError::Unavailable(
                        format!("item {connection_id} has an unexpected shape").into(),
                    )
                }),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn scan_page(&self, start: Option<Item>, now: EpochSecs) -> Result<Listed, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("expires_at > :now")
            .projection_expression("connection_id, user_id, project_id, expires_at, token_exp")
            .expression_attribute_values(":now", number(now.0))
            .set_exclusive_start_key(start)
            .set_limit(self.page_limit)
            .send()
            .await
            .map_err(unavailable)?;
        let (page, malformed) = subscribers(out.items());
        Ok((page, malformed, out.last_evaluated_key))
    }

    /// Page through a query or scan, skipping pages the filter emptied; the items skipped as
    /// malformed are told once, with their count, when the listing ends.
    fn pages<'a, F, Fut>(&'a self, read: F) -> PageStream<'a>
    where
        F: Fn(Option<Item>) -> Fut + Send + Sync + 'a,
        Fut: std::future::Future<Output = Result<Listed, StoreError>> + Send + 'a,
    {
        let read = std::sync::Arc::new(read);
        // State: the start key while pages remain (the first read starts with none), and the
        // malformed items skipped so far.
        futures::stream::unfold(Some((None::<Item>, 0)), move |state| {
            let read = read.clone();
            async move {
                let (mut start, mut malformed) = state?;
                loop {
                    let listed = read(start).await;
                    if let Ok((_, skipped, _)) = &listed {
                        malformed += skipped;
                    }
                    match listed {
                        Ok((page, _, next)) if !page.is_empty() && next.is_some() => {
                            return Some((Ok(page), next.map(|n| (Some(n), malformed))));
                        }
                        // A page whose items were all filtered out: keep going.
                        Ok((page, _, Some(next))) if page.is_empty() => start = Some(next),
                        end => {
                            warn_malformed(malformed);
                            return match end {
                                Ok((page, _, _)) if page.is_empty() => None,
                                other => Some((other.map(|(page, _, _)| page), None)),
                            };
                        }
                    }
                }
            }
        })
        .boxed()
    }

    /// One page of an index's partition `key = value`, live items only.
    async fn query_page(
        &self,
        (index, key, value): (&str, &str, AttributeValue),
        start: Option<Item>,
        now: EpochSecs,
        limit: Option<i32>,
    ) -> Result<Listed, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :p")
            .filter_expression("expires_at > :now")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":p", value)
            .expression_attribute_values(":now", number(now.0))
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .send()
            .await
            .map_err(unavailable)?;
        let (page, malformed) = subscribers(out.items());
        Ok((page, malformed, out.last_evaluated_key))
    }
}

#[async_trait]
impl Records for DynamoStore {
    async fn insert(&self, c: &Connection) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_from_connection(c)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let item = self.read(connection_id).await?;
        let now = EpochSecs::now();
        Ok(item
            .as_ref()
            .and_then(connection_from_item)
            .filter(|c| c.is_live(now)))
    }

    async fn refresh(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: EpochSecs,
    ) -> Result<Connection, StoreError> {
        let values = Item::from([
            (":e".to_owned(), number(token_exp.0)),
            (":u".to_owned(), AttributeValue::S(user_id.to_string())),
        ]);
        self.update_live_if(
            connection_id,
            "SET token_exp = :e",
            Some("user_id = :u"),
            values,
            ReturnValue::AllNew,
        )
        .await
    }

    async fn remove_expired(
        &self,
        connection_id: &str,
        now: EpochSecs,
    ) -> Result<bool, StoreError> {
        let (k, v) = Self::key(connection_id);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(k, v)
            .condition_expression("token_exp <= :now")
            .expression_attribute_values(":now", number(now.0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn remove(&self, connection_id: &str) -> Result<(), StoreError> {
        let (k, v) = Self::key(connection_id);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(k, v)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// BatchWriteItem, 25 deletes a request; unprocessed items are retried a few times.
    async fn remove_many(&self, connection_ids: &[String]) -> Result<(), StoreError> {
        for chunk in connection_ids.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|id| {
                    let (k, v) = Self::key(id);
                    let delete = DeleteRequest::builder()
                        .key(k, v)
                        .build()
                        .map_err(|e| StoreError::Unavailable(Cause::new(e)))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0..5u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(UNPROCESSED_BACKOFF.ceiling(attempt)).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::Unavailable(
                    format!("{} deletes left unprocessed", requests.len()).into(),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Subscriptions for DynamoStore {
    async fn subscribe(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<Connection, StoreError> {
        let values = Item::from([(":p".to_owned(), AttributeValue::S(project_id.to_string()))]);
        self.update_live(
            connection_id,
            "SET project_id = :p",
            values,
            ReturnValue::AllNew,
        )
        .await
    }

    async fn unsubscribe(&self, connection_id: &str) -> Result<Connection, StoreError> {
        self.update_live(
            connection_id,
            "REMOVE project_id",
            Item::new(),
            ReturnValue::AllOld,
        )
        .await
    }

    async fn unsubscribe_from(
        &self,
        connection_id: &str,
        project_id: Uuid,
    ) -> Result<bool, StoreError> {
        let values = Item::from([(":p".to_owned(), AttributeValue::S(project_id.to_string()))]);
        match self
            .update_live_if(
                connection_id,
                "REMOVE project_id",
                Some("project_id = :p"),
                values,
                ReturnValue::AllOld,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl RateBuckets for DynamoStore {
    /// GCRA in two conditional writes at most: an idle bucket (`rate_tat <= now`) restarts
    /// at `now + interval`; a busy one moves on by one interval if that stays within the
    /// burst. When neither condition holds, a read tells a closed connection from a limited one.
    async fn admit(
        &self,
        connection_id: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Admission, StoreError> {
        let interval = rate.interval_ms();
        let idle = Item::from([
            (":now".to_owned(), number(now.secs().0)),
            (":now_ms".to_owned(), number(now.0)),
            (":next".to_owned(), number(now.plus_ms(interval).0)),
        ]);
        match self
            .update_live_if(
                connection_id,
                "SET rate_tat = :next",
                Some("attribute_not_exists(rate_tat) OR rate_tat <= :now_ms"),
                idle,
                ReturnValue::AllNew,
            )
            .await
        {
            Ok(c) => return Ok(Admission::Admitted(c)),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let busy = Item::from([
            (":now".to_owned(), number(now.secs().0)),
            (":i".to_owned(), number(interval)),
            (":limit".to_owned(), number(rate.latest_tat(now).0)),
        ]);
        match self
            .update_live_if(
                connection_id,
                "SET rate_tat = rate_tat + :i",
                Some("rate_tat <= :limit"),
                busy,
                ReturnValue::AllNew,
            )
            .await
        {
            Ok(c) => Ok(Admission::Admitted(c)),
            Err(StoreError::NotFound) => match self.get(connection_id).await? {
                Some(_) => Ok(Admission::Limited),
                None => Err(StoreError::NotFound),
            },
            Err(e) => Err(e),
        }
    }

    async fn typing(
        &self,
        connection_id: &str,
        project_id: Uuid,
        now: EpochMs,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        let values = Item::from([
            (":now".to_owned(), number(now.secs().0)),
            (":now_ms".to_owned(), number(now.0)),
            (":cut".to_owned(), number(now.minus_ms(window_ms).0)),
            (":p".to_owned(), AttributeValue::S(project_id.to_string())),
        ]);
        match self
            .update_live_if(
                connection_id,
                "SET typing_at = :now_ms",
                Some("project_id = :p AND (attribute_not_exists(typing_at) OR typing_at <= :cut)"),
                values,
                ReturnValue::AllNew,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// GCRA as [`Self::admit`], on a record of its own that the first take creates.
    async fn take_token(
        &self,
        bucket: &str,
        rate: MessageRate,
        now: EpochMs,
    ) -> Result<Option<i64>, StoreError> {
        let (k, v) = Self::key(&record_key("rate", bucket));
        let interval = rate.interval_ms();
        let expires = number(now.secs().plus_secs(BUCKET_TTL_SECONDS).0);
        let idle = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k.clone(), v.clone())
            .update_expression("SET rate_tat = :next, expires_at = :exp")
            .condition_expression("attribute_not_exists(rate_tat) OR rate_tat <= :now_ms")
            .expression_attribute_values(":next", number(now.plus_ms(interval).0))
            .expression_attribute_values(":now_ms", number(now.0))
            .expression_attribute_values(":exp", expires.clone())
            .send()
            .await;
        match idle {
            Ok(_) => return Ok(None),
            Err(e) if conditional_failed(&e) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let busy = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k.clone(), v.clone())
            .update_expression("SET rate_tat = rate_tat + :i, expires_at = :exp")
            .condition_expression("rate_tat <= :limit")
            .expression_attribute_values(":i", number(interval))
            .expression_attribute_values(":limit", number(rate.latest_tat(now).0))
            .expression_attribute_values(":exp", expires)
            .send()
            .await;
        match busy {
            Ok(_) => Ok(None),
            Err(e) if conditional_failed(&e) => {
                let item = self.read(&record_key("rate", bucket)).await?;
                let tat = item
                    .as_ref()
                    .and_then(|i| int(i, ATTR_RATE_TAT))
                    .map(EpochMs);
                Ok(Some(rate.wait_ms(tat, now).max(1)))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl PresenceLedger for DynamoStore {
    async fn announced_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<bool>, StoreError> {
        let item = self.read(&presence_key(project_id, user_id)).await?;
        let now = EpochSecs::now();
        Ok(item
            .filter(|i| int(i, ATTR_EXPIRES_AT).is_some_and(|e| EpochSecs(e) > now))
            .and_then(|i| i.get(ATTR_PRESENCE_ONLINE)?.as_bool().ok().copied()))
    }

    async fn announce_presence(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        online: bool,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let (k, v) = Self::key(&presence_key(project_id, user_id));
        let now = now.secs();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k, v)
            .update_expression("SET presence_online = :o, expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(presence_online) OR presence_online <> :o OR expires_at <= :now",
            )
            .expression_attribute_values(":o", AttributeValue::Bool(online))
            .expression_attribute_values(":now", number(now.0))
            .expression_attribute_values(":exp", number(now.plus_secs(CONNECTION_TTL_SECONDS).0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl Listings for DynamoStore {
    fn project_subscribers(&self, project_id: Uuid) -> PageStream<'_> {
        let now = EpochSecs::now();
        let partition = AttributeValue::S(project_id.to_string());
        self.pages(move |start| {
            self.query_page(
                (PROJECT_INDEX, ATTR_PROJECT_ID, partition.clone()),
                start,
                now,
                self.page_limit,
            )
        })
    }

    /// One query with `Limit`: DynamoDB counts items before the expiry filter, so expired
    /// items can make the sample smaller, never larger.
    async fn project_sample(
        &self,
        project_id: Uuid,
        limit: usize,
    ) -> Result<(Page, bool), StoreError> {
        let partition = AttributeValue::S(project_id.to_string());
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let (page, malformed, next) = self
            .query_page(
                (PROJECT_INDEX, ATTR_PROJECT_ID, partition),
                None,
                EpochSecs::now(),
                Some(limit),
            )
            .await?;
        warn_malformed(malformed);
        Ok((page, next.is_some()))
    }

    fn reconnect_due(&self, minute: i64) -> PageStream<'_> {
        let now = EpochSecs::now();
        let partition = number(minute);
        self.pages(move |start| {
            self.query_page(
                (RECONNECT_INDEX, ATTR_RECONNECT_AT, partition.clone()),
                start,
                now,
                self.page_limit,
            )
        })
    }

    fn user_connections(&self, user_id: Uuid) -> PageStream<'_> {
        let now = EpochSecs::now();
        let partition = AttributeValue::S(user_id.to_string());
        self.pages(move |start| {
            self.query_page(
                (USER_INDEX, ATTR_USER_ID, partition.clone()),
                start,
                now,
                self.page_limit,
            )
        })
    }

    fn all_subscribers(&self) -> PageStream<'_> {
        let now = EpochSecs::now();
        self.pages(move |start| self.scan_page(start, now))
    }

    /// DescribeTable's `ItemCount`: DynamoDB refreshes it about every six hours, so the number
    /// is approximate (and counts expired items not yet deleted by TTL).
    async fn approximate_total(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.table.and_then(|t| t.item_count).unwrap_or(0).max(0) as u64)
    }
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A failed DynamoDB call as a [`StoreError`], the SDK's error kept as its cause.
pub(crate) fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(Cause::new(e))
}

fn item_from_connection(c: &Connection) -> Item {
    let mut item = Item::from([
        (
            ATTR_CONNECTION_ID.to_owned(),
            AttributeValue::S(c.connection_id.clone()),
        ),
        (
            ATTR_USER_ID.to_owned(),
            AttributeValue::S(c.user_id.to_string()),
        ),
        (ATTR_CONNECTED_AT.to_owned(), number(c.connected_at.0)),
        (
            ATTR_RECONNECT_AT.to_owned(),
            number(reconnect_minute(c.connected_at)),
        ),
        (ATTR_EXPIRES_AT.to_owned(), number(c.expires_at.0)),
        (ATTR_TOKEN_EXP.to_owned(), number(c.token_exp.0)),
    ]);
    if let Some(p) = c.project_id {
        item.insert(ATTR_PROJECT_ID.to_owned(), AttributeValue::S(p.to_string()));
    }
    item
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn int(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn uuid(item: &Item, name: &str) -> Option<Uuid> {
    Uuid::parse_str(string(item, name)?).ok()
}

fn connection_from_item(item: &Item) -> Option<Connection> {
    let expires_at = EpochSecs(int(item, ATTR_EXPIRES_AT)?);
    Some(Connection {
        connection_id: string(item, ATTR_CONNECTION_ID)?.to_owned(),
        user_id: uuid(item, ATTR_USER_ID)?,
        project_id: uuid(item, ATTR_PROJECT_ID),
        connected_at: EpochMs(int(item, ATTR_CONNECTED_AT).unwrap_or(0)),
        expires_at,
        // Items written before tokens were tracked live no longer than the item.
        token_exp: int(item, ATTR_TOKEN_EXP).map_or(expires_at, EpochSecs),
    })
}

/// One page of a listing: its connections, how many items were skipped as malformed, and
/// where the next page starts.
type Listed = (Page, usize, Option<Item>);

/// The connections of `items`, and how many were skipped as malformed (no connection id, a
/// `user_id` that is not a UUID, no `expires_at`).
fn subscribers(items: &[Item]) -> (Page, usize) {
    let page: Page = items.iter().filter_map(subscriber_from_item).collect();
    let malformed = items.len() - page.len();
    (page, malformed)
}

/// One line for a listing that skipped malformed items: without it a fan-out answers
/// `recipients: 0` and nothing says why.
fn warn_malformed(count: usize) {
    if count > 0 {
        tracing::warn!(
            count,
            "connection items skipped as malformed (no connection_id or expires_at, or a user_id that is not a UUID)"
        );
    }
}

fn subscriber_from_item(item: &Item) -> Option<Subscriber> {
    let expires_at = EpochSecs(int(item, ATTR_EXPIRES_AT)?);
    Some(Subscriber {
        connection_id: string(item, ATTR_CONNECTION_ID)?.to_owned(),
        user_id: uuid(item, ATTR_USER_ID)?,
        project_id: uuid(item, ATTR_PROJECT_ID),
        expires_at,
        token_exp: int(item, ATTR_TOKEN_EXP).map_or(expires_at, EpochSecs),
    })
}

/// Create the connections table exactly as DESIGN describes it (key, sparse GSI with its
/// projection, on-demand billing, encryption, TTL on `expires_at`). For the dev server and
/// tests; production tables come from template.yaml.
#[cfg(feature = "dev")]
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        let kind = if name == ATTR_RECONNECT_AT {
            ScalarAttributeType::N
        } else {
            ScalarAttributeType::S
        };
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(|e| StoreError::Unavailable(Cause::new(e)))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Unavailable(Cause::new(e)))
    };
    let index = |name: &str, partition: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(partition, KeyType::Hash)?)
            .key_schema(key(ATTR_CONNECTION_ID, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(index_projection(partition)))
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Unavailable(Cause::new(e)))
    };
    let mut create = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(ATTR_CONNECTION_ID)?)
        .key_schema(key(ATTR_CONNECTION_ID, KeyType::Hash)?);
    for (name, partition) in INDEXES {
        create = create
            .attribute_definitions(attr(partition)?)
            .global_secondary_indexes(index(name, partition)?);
    }
    create
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(unavailable)?;
    enable_ttl(client, table, ATTR_EXPIRES_AT).await
}

/// Turn on TTL for `table` on `attribute` (dev server and tests; template.yaml does it on AWS).
#[cfg(feature = "dev")]
pub(crate) async fn enable_ttl(
    client: &Client,
    table: &str,
    attribute: &str,
) -> Result<(), StoreError> {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .map_err(|e| StoreError::Unavailable(Cause::new(e)))?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Create the connections table unless it exists; `true` when it was created. Dev server only.
#[cfg(feature = "dev")]
pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(false),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
            create_table(client, table).await.map(|()| true)
        }
        Err(e) => Err(unavailable(e)),
    }
}
