//! Server → client events (DESIGN "Server → client events"): the envelope every client
//! receives and the `cache_invalidate` that replaces an event too large to
//! post (API Gateway refuses messages over 128 KB; clients refetch instead).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

pub use realtime_client::events::{
    ACTIONS, EventType, RESOURCES, action_of, is_valid_type, resource_of,
};

/// Largest message API Gateway delivers to a client.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// What every client receives, one JSON object per WebSocket message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    /// A project id, or `*` for a resync sent to every client.
    pub project_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub data: Value,
    pub event_id: Uuid,
    pub timestamp: String,
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events are plain JSON data")
    }

    /// The `cache_invalidate` sent instead of this event when it is too large to post:
    /// same project, event id and time; the resource from the type, `data.id` when present.
    pub fn invalidation(&self) -> Event {
        let mut data = json!({ "timestamp": self.timestamp });
        if let Some(id) = self
            .data
            .get("id")
            .filter(|id| id.is_string() || id.is_number())
        {
            data["id"] = id.clone();
        }
        Event {
            kind: EventType::CacheInvalidate.as_str().to_owned(),
            project_id: self.project_id.clone(),
            resource: Some(
                self.resource
                    .clone()
                    .unwrap_or_else(|| resource_of(&self.kind).to_owned()),
            ),
            action: Some(
                self.action
                    .clone()
                    .unwrap_or_else(|| action_of(&self.kind).to_owned()),
            ),
            data,
            event_id: self.event_id,
            timestamp: self.timestamp.clone(),
        }
    }

    /// The serialized event, replaced by [`Self::invalidation`] when over [`MAX_EVENT_BYTES`].
    /// The flag says whether it was replaced.
    pub fn to_deliverable(&self) -> (String, bool) {
        let json = self.to_json();
        if json.len() <= MAX_EVENT_BYTES {
            (json, false)
        } else {
            (self.invalidation().to_json(), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_events_become_invalidations() {
        let event = Event {
            kind: "task_updated".into(),
            project_id: Uuid::nil().to_string(),
            resource: None,
            action: None,
            data: json!({"id": "t-1", "description": "x".repeat(200 * 1024)}),
            event_id: Uuid::new_v4(),
            timestamp: "2026-11-22T05:00:00.000Z".into(),
        };
        let (json, replaced) = event.to_deliverable();
        assert!(replaced && json.len() < 1024);
        let sent: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            sent,
            json!({"type": "cache_invalidate", "project_id": Uuid::nil(), "resource": "task", "action": "UPDATE",
                   "data": {"id": "t-1", "timestamp": "2026-11-22T05:00:00.000Z"},
                   "event_id": event.event_id, "timestamp": "2026-11-22T05:00:00.000Z"})
        );
        let small = Event {
            data: json!({"id": "t-1"}),
            ..event
        };
        assert!(!small.to_deliverable().1);
    }
}
