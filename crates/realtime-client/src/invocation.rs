//! The broadcaster's invocation payload as a publisher writes it (DESIGN "Broadcaster
//! invocation"), its size limit, and how event ids are made. The broadcaster parses the same
//! shape (and the trigger form) in `realtime::wire::invocation`.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::events::EventType;

/// Largest invocation payload accepted (Lambda's asynchronous invocation limit).
pub const MAX_INVOCATION_BYTES: usize = 1024 * 1024;

/// Largest `data` a direct message may carry, serialized: unlike a project event, which over
/// API Gateway's 128 KB message becomes a `cache_invalidate` clients refetch from, a direct
/// message has nothing to refetch, so it must fit whole, with 1 KB left for its envelope
/// (`type`, `user_id`, `event_id`, `seq`, `timestamp`).
pub const MAX_DIRECT_DATA_BYTES: usize = 127 * 1024;

/// A direct message whose `data` is over [`MAX_DIRECT_DATA_BYTES`] (its size in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectMessageTooLarge(pub usize);

impl std::fmt::Display for DirectMessageTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a direct message's data is {} bytes; the limit is {MAX_DIRECT_DATA_BYTES} (its frame must fit API Gateway's 128 KB message): send an id the client fetches instead",
            self.0
        )
    }
}

impl std::error::Error for DirectMessageTooLarge {}

/// Whether a direct message's `data` fits [`MAX_DIRECT_DATA_BYTES`].
pub fn check_direct_data(data: &Value) -> Result<(), DirectMessageTooLarge> {
    let bytes = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_DIRECT_DATA_BYTES {
        return Err(DirectMessageTooLarge(bytes));
    }
    Ok(())
}

/// The `type` of a direct message.
pub const DIRECT_MESSAGE: &str = "direct_message";

const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_9b3d_4f7a_8c21_5e0d_7a9b_3c4d);

/// One event for every client of a project ([`Invocation::new`]), or a direct message for every
/// connection of one user ([`Invocation::direct`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    /// The project whose clients get the event; `None` for a direct message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
    /// A direct message's recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(rename = "type", serialize_with = "type_name")]
    pub event: EventType,
    pub data: Value,
    /// Repeats on a retried delivery, so clients drop duplicates.
    pub event_id: Uuid,
    /// The connection that caused the change, which already has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_connection_id: Option<String>,
}

fn type_name<S: serde::Serializer>(event: &EventType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(event.as_str())
}

impl Invocation {
    /// A new event with a fresh [`new_event_id`].
    pub fn new(project_id: Uuid, event: EventType, data: Value) -> Self {
        Invocation {
            project_id: Some(project_id),
            user_id: None,
            event,
            data,
            event_id: new_event_id(),
            exclude_connection_id: None,
        }
    }

    /// A direct message to every connection of `user_id` (`type` `direct_message`), kept in
    /// the user's own stream so that a client that was away recovers it.
    pub fn direct(user_id: Uuid, data: Value) -> Self {
        Invocation {
            project_id: None,
            user_id: Some(user_id),
            event: EventType::Custom(DIRECT_MESSAGE.to_owned()),
            data,
            event_id: new_event_id(),
            exclude_connection_id: None,
        }
    }

    /// The payload bytes, or [`PayloadTooLarge`] past [`MAX_INVOCATION_BYTES`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, PayloadTooLarge> {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        if bytes.len() > MAX_INVOCATION_BYTES {
            return Err(PayloadTooLarge(bytes.len()));
        }
        Ok(bytes)
    }
}

/// An invocation payload over [`MAX_INVOCATION_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTooLarge(pub usize);

impl std::fmt::Display for PayloadTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "broadcast payload is {} bytes; the limit is {MAX_INVOCATION_BYTES}",
            self.0
        )
    }
}

impl std::error::Error for PayloadTooLarge {}

/// A new, random event id (publishers give one to every event they send).
pub fn new_event_id() -> Uuid {
    Uuid::new_v4()
}

/// The event id of an invocation that carries none: derived from the request id, which Lambda
/// keeps for the retries of an asynchronous invocation, so retried deliveries repeat it.
pub fn event_id_for(request_id: &str) -> Uuid {
    if request_id.is_empty() {
        new_event_id()
    } else {
        Uuid::new_v5(&EVENT_ID_NAMESPACE, request_id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_is_the_documented_event_form() {
        let project = Uuid::from_u128(7);
        let mut invocation = Invocation::new(
            project,
            EventType::MessageCreated,
            json!({"id": "m1", "content": "hi"}),
        );
        let sent: Value = serde_json::from_slice(&invocation.to_bytes().unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({"project_id": project, "type": "message_created", "data": {"id": "m1", "content": "hi"},
                   "event_id": invocation.event_id})
        );
        invocation.exclude_connection_id = Some("abc=".into());
        let sent: Value = serde_json::from_slice(&invocation.to_bytes().unwrap()).unwrap();
        assert_eq!(sent["exclude_connection_id"], "abc=");
    }

    #[test]
    fn a_direct_message_is_addressed_to_the_user_alone() {
        let user = Uuid::from_u128(9);
        let invocation = Invocation::direct(user, json!({"text": "hi"}));
        let sent: Value = serde_json::from_slice(&invocation.to_bytes().unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({"user_id": user, "type": "direct_message", "data": {"text": "hi"},
                   "event_id": invocation.event_id})
        );
    }

    #[test]
    fn oversized_payloads_are_refused_with_their_size() {
        let big = Invocation::new(
            Uuid::nil(),
            EventType::TaskUpdated,
            json!("x".repeat(MAX_INVOCATION_BYTES)),
        );
        let err = big.to_bytes().unwrap_err();
        assert!(err.0 > MAX_INVOCATION_BYTES);
        assert!(err.to_string().contains("the limit is 1048576"), "{err}");
    }

    #[test]
    fn event_ids_repeat_for_a_request_id_and_differ_otherwise() {
        assert_eq!(event_id_for("req-1"), event_id_for("req-1"));
        assert_ne!(event_id_for("req-1"), event_id_for("req-2"));
        assert_ne!(event_id_for(""), event_id_for(""));
        assert_ne!(new_event_id(), new_event_id());
    }
}
