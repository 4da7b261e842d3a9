//! Server → client events (DESIGN "Server → client events"): the envelope every client
//! receives, the event types, and the `cache_invalidate` that replaces an event too large to
//! post (API Gateway refuses messages over 128 KB; clients refetch instead).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Largest message API Gateway delivers to a client.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// The event types of DESIGN, and any other well-formed name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    MessageCreated,
    MemberAdded,
    MemberRemoved,
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    SprintCreated,
    SprintUpdated,
    SprintDeleted,
    ProjectUpdated,
    ProjectDeleted,
    CacheInvalidate,
    Resync,
    /// Any other type matching `^[a-z][a-z0-9_]{0,63}$`.
    Custom(String),
}

const NAMED: [(EventType, &str); 13] = [
    (EventType::MessageCreated, "message_created"),
    (EventType::MemberAdded, "member_added"),
    (EventType::MemberRemoved, "member_removed"),
    (EventType::TaskCreated, "task_created"),
    (EventType::TaskUpdated, "task_updated"),
    (EventType::TaskDeleted, "task_deleted"),
    (EventType::SprintCreated, "sprint_created"),
    (EventType::SprintUpdated, "sprint_updated"),
    (EventType::SprintDeleted, "sprint_deleted"),
    (EventType::ProjectUpdated, "project_updated"),
    (EventType::ProjectDeleted, "project_deleted"),
    (EventType::CacheInvalidate, "cache_invalidate"),
    (EventType::Resync, "resync"),
];

impl EventType {
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Custom(name) => name,
            known => NAMED
                .iter()
                .find(|(t, _)| t == known)
                .map(|(_, n)| *n)
                .expect("every named type is listed"),
        }
    }

    /// The type named `name`; `Custom` for names outside DESIGN's list.
    pub fn parse(name: &str) -> Result<Self, String> {
        if !is_valid_type(name) {
            return Err(format!("{name:?} does not match ^[a-z][a-z0-9_]{{0,63}}$"));
        }
        Ok(NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| EventType::Custom(name.to_owned()), |(t, _)| t.clone()))
    }
}

/// `^[a-z][a-z0-9_]{0,63}$`
pub fn is_valid_type(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Resources named in `cache_invalidate` events.
pub const RESOURCES: [&str; 5] = ["project", "sprint", "task", "message", "project_members"];
/// Actions named in `cache_invalidate` events.
pub const ACTIONS: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];

/// The resource an event type is about (`task_updated` → `task`, `member_added` →
/// `project_members`); the type's prefix for other names.
pub fn resource_of(event_type: &str) -> &str {
    let prefix = event_type.rsplit_once('_').map_or(event_type, |(p, _)| p);
    match prefix {
        "member" | "project_member" | "project_members" => "project_members",
        other => other,
    }
}

/// The table action an event type stands for (`*_created`/`*_added` → INSERT, …).
pub fn action_of(event_type: &str) -> &'static str {
    match event_type.rsplit_once('_').map(|(_, s)| s) {
        Some("created" | "added") => "INSERT",
        Some("deleted" | "removed") => "DELETE",
        _ => "UPDATE",
    }
}

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
    fn types_round_trip_and_validate() {
        for (t, name) in NAMED.iter() {
            assert_eq!(t.as_str(), *name);
            assert_eq!(EventType::parse(name).unwrap(), *t);
        }
        assert_eq!(
            EventType::parse("comment_posted").unwrap(),
            EventType::Custom("comment_posted".into())
        );
        for bad in [
            "",
            "Task",
            "1task",
            "task-updated",
            "task updated",
            &"a".repeat(65),
            "tâche",
        ] {
            assert!(EventType::parse(bad).is_err(), "{bad:?}");
        }
        assert!(is_valid_type(&"a".repeat(64)));
    }

    #[test]
    fn resources_and_actions_follow_the_type() {
        let cases = [
            ("message_created", "message", "INSERT"),
            ("member_added", "project_members", "INSERT"),
            ("member_removed", "project_members", "DELETE"),
            ("task_updated", "task", "UPDATE"),
            ("sprint_deleted", "sprint", "DELETE"),
            ("project_updated", "project", "UPDATE"),
            ("comment_posted", "comment", "UPDATE"),
        ];
        for (t, resource, action) in cases {
            assert_eq!((resource_of(t), action_of(t)), (resource, action), "{t}");
        }
    }

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
