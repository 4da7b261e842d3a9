//! DynamoDB `EventStore`: the events table of DESIGN "Events table". Partition `stream`
//! (`project#<uuid>`), sort `seq`; item `seq = 0` is the head (`last_seq`, `epoch`); each event
//! item holds the frame as delivered, its `event_id` and `expires_at` (TTL). A retried
//! invocation is recognised by an item `event#<event_id>` (seq 0) that names its seq.
//!
//! Append: move the head on by one (an atomic `ADD`, so concurrent appends get distinct
//! consecutive seqs), then write the event and its id item in one transaction, the id item only
//! if absent. A repeated event id (a retried invocation, or a duplicate racing it) fails that
//! condition: it leaves an empty frame at its seq (recovery skips it) and returns the first
//! one's seq and frame.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use uuid::Uuid;

use crate::aws::dynamo::unavailable;
use crate::connection::store::StoreError;
use crate::delivery::events::{Appended, EventStore, Head, MAX_RECOVERED_EVENTS, Recovery, Stream};
use crate::time::EpochSecs;

pub const ATTR_STREAM: &str = "stream";
pub const ATTR_SEQ: &str = "seq";
pub const ATTR_EVENT: &str = "event";
pub const ATTR_EVENT_ID: &str = "event_id";
pub const ATTR_LAST_SEQ: &str = "last_seq";
pub const ATTR_EPOCH: &str = "epoch";
pub const ATTR_FOR_SEQ: &str = "for_seq";
pub const ATTR_EXPIRES_AT: &str = "expires_at";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoEventStore {
    client: Client,
    table: String,
    retention_s: i64,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item at `seq` of `partition`: a [`Stream`]'s key, or an `event#<id>` marker.
fn key(partition: &str, seq: u64) -> Item {
    Item::from([
        (ATTR_STREAM.into(), s(partition)),
        (ATTR_SEQ.into(), n(seq)),
    ])
}

fn int(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>, retention_s: i64) -> Self {
        DynamoEventStore {
            client,
            table: table.into(),
            retention_s,
        }
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let now = EpochSecs::now().0 as u64;
        // TTL deletion lags: an expired item is as good as gone.
        Ok(out
            .item
            .filter(|i| int(i, ATTR_EXPIRES_AT).is_none_or(|e| e > now)))
    }

    /// The first seq and frame of `event_id` in `stream`, if it was appended (and is kept).
    async fn appended(
        &self,
        stream: &Stream,
        event_id: Uuid,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let Some(marker) = self.get(key(&format!("event#{event_id}"), 0)).await? else {
            return Ok(None);
        };
        let Some(seq) = int(&marker, ATTR_FOR_SEQ) else {
            return Ok(None);
        };
        let event = self.get(key(stream.as_str(), seq)).await?;
        Ok(event.and_then(|e| text(&e, ATTR_EVENT).map(|f| (seq, f.to_owned()))))
    }

    /// The head, created (seq 0, a new epoch) when the stream has none.
    async fn head_or_create(&self, stream: &Stream, add: u64) -> Result<Head, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(stream.as_str(), 0)))
            .update_expression("SET #e = if_not_exists(#e, :e) ADD #l :add")
            .expression_attribute_names("#e", ATTR_EPOCH)
            .expression_attribute_names("#l", ATTR_LAST_SEQ)
            .expression_attribute_values(":e", s(Uuid::new_v4().simple().to_string()))
            .expression_attribute_values(":add", n(add))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(unavailable)?;
        let item = out.attributes.unwrap_or_default();
        match (int(&item, ATTR_LAST_SEQ), text(&item, ATTR_EPOCH)) {
            (Some(seq), Some(epoch)) => Ok(Head {
                seq,
                epoch: epoch.to_owned(),
            }),
            _ => Err(StoreError::Unavailable(
                format!("head of {stream} has an unexpected shape").into(),
            )),
        }
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn append(
        &self,
        stream: &Stream,
        event_id: Uuid,
        render: &(dyn Fn(u64) -> String + Send + Sync),
    ) -> Result<Appended, StoreError> {
        // Two round trips: move the head, then write event and id marker together. A repeated
        // event id is found by the marker's condition (rare: Lambda retries), not looked up first.
        let head = self.head_or_create(stream, 1).await?;
        let seq = head.seq;
        let frame = render(seq);
        let expires_at = EpochSecs::now().plus_secs(self.retention_s);
        let mut event = key(stream.as_str(), seq);
        event.insert(ATTR_EVENT.into(), s(&frame));
        event.insert(ATTR_EVENT_ID.into(), s(event_id.to_string()));
        event.insert(ATTR_EXPIRES_AT.into(), n(expires_at.0));
        let mut marker = key(&format!("event#{event_id}"), 0);
        marker.insert(ATTR_FOR_SEQ.into(), n(seq));
        marker.insert(ATTR_EXPIRES_AT.into(), n(expires_at.0));
        // `stream` is a DynamoDB reserved word: conditions name it through `#s`.
        let put = |item: Item, absent: bool| {
            let builder = Put::builder().table_name(&self.table).set_item(Some(item));
            let builder = if absent {
                builder
                    .condition_expression("attribute_not_exists(#s)")
                    .expression_attribute_names("#s", ATTR_STREAM)
            } else {
                builder
            };
            builder
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Unavailable(crate::connection::store::Cause::new(e)))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(event, false)?)
            .transact_items(put(marker, true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Appended {
                seq,
                epoch: head.epoch,
                frame,
                repeated: false,
            }),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                // The event id was appended before (a retry) or meanwhile: leave an empty frame
                // at this seq (recovery skips it) and deliver under the first one's.
                let mut gap = key(stream.as_str(), seq);
                gap.insert(ATTR_EVENT.into(), s(""));
                gap.insert(ATTR_EXPIRES_AT.into(), n(expires_at.0));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(gap))
                    .send()
                    .await
                    .map_err(unavailable)?;
                let (seq, frame) = self.appended(stream, event_id).await?.ok_or_else(|| {
                    StoreError::Unavailable(
                        format!("event {event_id} lost its race and its winner").into(),
                    )
                })?;
                Ok(Appended {
                    seq,
                    epoch: head.epoch,
                    frame,
                    repeated: true,
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn head(&self, stream: &Stream) -> Result<Head, StoreError> {
        match self.get(key(stream.as_str(), 0)).await? {
            Some(item) => match (int(&item, ATTR_LAST_SEQ), text(&item, ATTR_EPOCH)) {
                (seq, Some(epoch)) => Ok(Head {
                    seq: seq.unwrap_or(0),
                    epoch: epoch.to_owned(),
                }),
                _ => self.head_or_create(stream, 0).await,
            },
            None => self.head_or_create(stream, 0).await,
        }
    }

    async fn since(
        &self,
        stream: &Stream,
        epoch: &str,
        since: u64,
    ) -> Result<(Head, Recovery), StoreError> {
        // The head and the events after `since`, read at once (one round trip, not two).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#s = :s AND #q > :since")
            .filter_expression("expires_at > :now")
            .expression_attribute_names("#s", ATTR_STREAM)
            .expression_attribute_names("#q", ATTR_SEQ)
            .expression_attribute_values(":s", s(stream.as_str()))
            .expression_attribute_values(":since", n(since))
            .expression_attribute_values(":now", n(EpochSecs::now().0))
            .consistent_read(true)
            .limit((MAX_RECOVERED_EVENTS + 1) as i32)
            .send();
        let (head, out) = futures::join!(self.head(stream), query);
        let head = head?;
        if head.epoch != epoch || head.seq < since || head.seq - since > MAX_RECOVERED_EVENTS as u64
        {
            return Ok((head, Recovery::Reset));
        }
        let frames = out
            .map_err(unavailable)?
            .items()
            .iter()
            .filter_map(|i| Some((int(i, ATTR_SEQ)?, text(i, ATTR_EVENT)?.to_owned())))
            .filter(|(seq, _)| *seq <= head.seq)
            .collect();
        let found = crate::recovery::from_frames(since, head.seq, frames);
        Ok((head, found))
    }
}

/// Create the events table as template.yaml declares it (dev server and tests).
#[cfg(feature = "dev")]
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let def = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(|e| StoreError::Unavailable(crate::connection::store::Cause::new(e)))
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| StoreError::Unavailable(crate::connection::store::Cause::new(e)))
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(def(ATTR_STREAM, ScalarAttributeType::S)?)
        .attribute_definitions(def(ATTR_SEQ, ScalarAttributeType::N)?)
        .key_schema(key(ATTR_STREAM, KeyType::Hash)?)
        .key_schema(key(ATTR_SEQ, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(unavailable)?;
    crate::aws::dynamo::enable_ttl(client, table, ATTR_EXPIRES_AT).await
}
