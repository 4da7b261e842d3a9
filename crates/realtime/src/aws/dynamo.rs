//! DynamoDB `ConnectionStore`: the table and sparse GSI of DESIGN "Connections table".
//!
//! Subscribe and unsubscribe are conditional updates (`attribute_exists(connection_id)` and
//! not expired), so a subscribe racing a disconnect cannot recreate the item. Project listings
//! query the GSI one page at a time (1 MB by default, smaller when a page limit is set) and
//! filter `expires_at > now` on the server, because TTL deletion lags by up to days.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
#[cfg(feature = "dev")]
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use futures::StreamExt;
use uuid::Uuid;

use crate::connection::store::{
    Connection, ConnectionStore, PROJECT_INDEX, Page, PageStream, RECONNECT_INDEX, StoreError,
    Subscriber, reconnect_minute,
};
use crate::epoch_seconds;

pub const ATTR_CONNECTION_ID: &str = "connection_id";
pub const ATTR_USER_ID: &str = "user_id";
pub const ATTR_PROJECT_ID: &str = "project_id";
pub const ATTR_CONNECTED_AT: &str = "connected_at";
/// The epoch minute the connection is due its reconnect hint (key of [`RECONNECT_INDEX`]).
pub const ATTR_RECONNECT_AT: &str = "reconnect_at";
pub const ATTR_EXPIRES_AT: &str = "expires_at";
/// Non-key attributes projected into the GSI.
pub const INDEX_PROJECTION: [&str; 2] = [ATTR_USER_ID, ATTR_EXPIRES_AT];

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
        let (k, v) = Self::key(connection_id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k, v)
            .update_expression(update)
            .condition_expression("attribute_exists(connection_id) AND expires_at > :now")
            .set_expression_attribute_values(Some(values))
            .expression_attribute_values(":now", number(epoch_seconds()))
            .return_values(returning)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(connection_from_item)
                .ok_or_else(|| {
                    StoreError::Unavailable(format!("item {connection_id} has an unexpected shape"))
                }),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn scan_page(
        &self,
        start: Option<Item>,
        now: i64,
    ) -> Result<(Page, Option<Item>), StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("expires_at > :now")
            .projection_expression("connection_id, user_id, expires_at")
            .expression_attribute_values(":now", number(now))
            .set_exclusive_start_key(start)
            .set_limit(self.page_limit)
            .send()
            .await
            .map_err(unavailable)?;
        let page = out
            .items()
            .iter()
            .filter_map(subscriber_from_item)
            .collect();
        Ok((page, out.last_evaluated_key))
    }

    /// Page through a query or scan, skipping pages the filter emptied.
    fn pages<'a, F, Fut>(&'a self, read: F) -> PageStream<'a>
    where
        F: Fn(Option<Item>) -> Fut + Send + Sync + 'a,
        Fut: std::future::Future<Output = Result<(Page, Option<Item>), StoreError>> + Send + 'a,
    {
        let read = std::sync::Arc::new(read);
        // State: Some(start key) while pages remain; the first read starts with no key.
        futures::stream::unfold(Some(None::<Item>), move |state| {
            let read = read.clone();
            async move {
                let mut start = state?;
                loop {
                    match read(start).await {
                        Err(e) => return Some((Err(e), None)),
                        Ok((page, next)) if !page.is_empty() => {
                            return Some((Ok(page), next.map(Some)));
                        }
                        // A page whose items were all filtered out: keep going, or stop at the end.
                        Ok((_, Some(next))) => start = Some(next),
                        Ok((_, None)) => return None,
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
        now: i64,
    ) -> Result<(Page, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :p")
            .filter_expression("expires_at > :now")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":p", value)
            .expression_attribute_values(":now", number(now))
            .set_exclusive_start_key(start)
            .set_limit(self.page_limit)
            .send()
            .await
            .map_err(unavailable)?;
        let page = out
            .items()
            .iter()
            .filter_map(subscriber_from_item)
            .collect();
        Ok((page, out.last_evaluated_key))
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
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
        let (k, v) = Self::key(connection_id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let now = epoch_seconds();
        Ok(out
            .item
            .as_ref()
            .and_then(connection_from_item)
            .filter(|c| c.is_live(now)))
    }

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

    fn project_subscribers(&self, project_id: Uuid) -> PageStream<'_> {
        let now = epoch_seconds();
        let partition = AttributeValue::S(project_id.to_string());
        self.pages(move |start| {
            self.query_page(
                (PROJECT_INDEX, ATTR_PROJECT_ID, partition.clone()),
                start,
                now,
            )
        })
    }

    fn reconnect_due(&self, minute: i64) -> PageStream<'_> {
        let now = epoch_seconds();
        let partition = number(minute);
        self.pages(move |start| {
            self.query_page(
                (RECONNECT_INDEX, ATTR_RECONNECT_AT, partition.clone()),
                start,
                now,
            )
        })
    }

    fn all_subscribers(&self) -> PageStream<'_> {
        let now = epoch_seconds();
        self.pages(move |start| self.scan_page(start, now))
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
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
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
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "{} deletes left unprocessed",
                    requests.len()
                )));
            }
        }
        Ok(())
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

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&e).to_string())
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
        (ATTR_CONNECTED_AT.to_owned(), number(c.connected_at)),
        (
            ATTR_RECONNECT_AT.to_owned(),
            number(reconnect_minute(c.connected_at)),
        ),
        (ATTR_EXPIRES_AT.to_owned(), number(c.expires_at)),
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
    Some(Connection {
        connection_id: string(item, ATTR_CONNECTION_ID)?.to_owned(),
        user_id: uuid(item, ATTR_USER_ID)?,
        project_id: uuid(item, ATTR_PROJECT_ID),
        connected_at: int(item, ATTR_CONNECTED_AT).unwrap_or(0),
        expires_at: int(item, ATTR_EXPIRES_AT)?,
    })
}

fn subscriber_from_item(item: &Item) -> Option<Subscriber> {
    Some(Subscriber {
        connection_id: string(item, ATTR_CONNECTION_ID)?.to_owned(),
        user_id: uuid(item, ATTR_USER_ID)?,
        expires_at: int(item, ATTR_EXPIRES_AT)?,
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
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    };
    let index = |name: &str, partition: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(partition, KeyType::Hash)?)
            .key_schema(key(ATTR_CONNECTION_ID, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(
                        INDEX_PROJECTION.iter().map(|s| s.to_string()).collect(),
                    ))
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(ATTR_CONNECTION_ID)?)
        .attribute_definitions(attr(ATTR_PROJECT_ID)?)
        .attribute_definitions(attr(ATTR_RECONNECT_AT)?)
        .key_schema(key(ATTR_CONNECTION_ID, KeyType::Hash)?)
        .global_secondary_indexes(index(PROJECT_INDEX, ATTR_PROJECT_ID)?)
        .global_secondary_indexes(index(RECONNECT_INDEX, ATTR_RECONNECT_AT)?)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(ATTR_EXPIRES_AT)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
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
