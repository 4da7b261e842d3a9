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

/// Sent to every connection a few minutes before API Gateway's 2-hour cut, so that clients
/// open their next connection before this one is closed (make-before-break).
pub const RECONNECT_HINT: &str = r#"{"type":"reconnect","reason":"max_duration"}"#;
/// API Gateway's maximum connection duration.
pub const MAX_CONNECTION_DURATION: std::time::Duration =
    std::time::Duration::from_secs(2 * 60 * 60);
/// How long before [`MAX_CONNECTION_DURATION`] the hint goes out.
pub const RECONNECT_HINT_LEAD: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The ephemeral `presence` frame (DESIGN "Presence, typing, direct messages"): no `seq`,
/// never stored.
pub fn presence_frame(project: Uuid, user: Uuid, online: bool) -> String {
    let state = if online { "online" } else { "offline" };
    json!({"type": "presence", "project_id": project, "user_id": user, "state": state}).to_string()
}

/// The ephemeral `typing` frame.
pub fn typing_frame(project: Uuid, user: Uuid) -> String {
    json!({"type": "typing", "project_id": project, "user_id": user}).to_string()
}

/// The envelope's `project_id`: the project whose stream the event belongs to, or `*` for
/// the `resync` sent to every client. A direct message has none (the field is left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventScope {
    Project(Uuid),
    /// `*`: every client.
    Everyone,
}

impl EventScope {
    /// The project, when the event belongs to one.
    pub fn project(self) -> Option<Uuid> {
        match self {
            EventScope::Project(project) => Some(project),
            EventScope::Everyone => None,
        }
    }
}

impl std::fmt::Display for EventScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventScope::Project(project) => project.fmt(f),
            EventScope::Everyone => f.write_str("*"),
        }
    }
}

impl Serialize for EventScope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventScope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        match &*text {
            "*" => Ok(EventScope::Everyone),
            id => Uuid::parse_str(id)
                .map(EventScope::Project)
                .map_err(|_| serde::de::Error::custom("project_id must be a UUID or \"*\"")),
        }
    }
}

/// What every client receives, one JSON object per WebSocket message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// A project id, or `*` for a resync sent to every client; none (left out) for a direct
    /// message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<EventScope>,
    /// A direct message's recipient (DESIGN "Presence, typing, direct messages").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `cache_invalidate`: the record id, also at the top level (see [`Self::invalidation_shape`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// `cache_invalidate` of a coalesced batch: the record ids, also at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Value>,
    pub data: Value,
    pub event_id: Uuid,
    /// The event's place in its project's stream (DESIGN "Sequence and recovery"); absent
    /// for the global `resync` and when recovery is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub timestamp: String,
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events are plain JSON data")
    }

    /// The users whose membership of the project this event ends (DESIGN "Connection life"):
    /// `member_removed` names one in `data.user_id`; a `project_members` DELETE names them in
    /// its record ids, `"<project_id>:<user_id>"`.
    pub fn revoked_members(&self) -> Vec<Uuid> {
        let user = |v: &Value| v.as_str().and_then(|s| Uuid::parse_str(s).ok());
        if self.kind == EventType::MemberRemoved {
            let data = &self.data;
            return data
                .get("user_id")
                .or_else(|| data.get("userId"))
                .and_then(user)
                .into_iter()
                .collect();
        }
        if self.kind != EventType::CacheInvalidate
            || self.resource.as_deref() != Some("project_members")
            || self.action.as_deref() != Some("DELETE")
        {
            return Vec::new();
        }
        let member = |v: &Value| {
            let (project, u) = v.as_str()?.split_once(':')?;
            let project = Uuid::parse_str(project).ok()?;
            (self.project_id == Some(EventScope::Project(project)))
                .then(|| Uuid::parse_str(u).ok())
                .flatten()
        };
        let ids = self.ids.as_ref().and_then(Value::as_array);
        self.id
            .iter()
            .chain(ids.into_iter().flatten())
            .filter_map(member)
            .collect()
    }

    /// A `cache_invalidate` in the shape both of the DevHive web app's readers understand
    /// (DESIGN "Client protocol"): `resource`, `action`, `project_id` and `id` (or `ids`) at the
    /// top level, and the same inside `data` with its `timestamp`. Other types are unchanged.
    pub fn invalidation_shape(mut self) -> Event {
        if self.kind != EventType::CacheInvalidate {
            return self;
        }
        if !self.data.is_object() {
            self.data = json!({});
        }
        let field = |data: &Value, name: &str| data.get(name).filter(|v| !v.is_null()).cloned();
        let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
        self.resource = self
            .resource
            .take()
            .or_else(|| text(field(&self.data, "resource")));
        self.action = self
            .action
            .take()
            .or_else(|| text(field(&self.data, "action")));
        self.id = self.id.take().or_else(|| field(&self.data, "id"));
        self.ids = self.ids.take().or_else(|| field(&self.data, "ids"));
        let timestamp = field(&self.data, "timestamp").unwrap_or_else(|| json!(self.timestamp));
        let data = &mut self.data;
        data["project_id"] = json!(self.project_id);
        data["timestamp"] = timestamp;
        for (name, value) in [
            ("resource", self.resource.as_ref().map(|r| json!(r))),
            ("action", self.action.as_ref().map(|a| json!(a))),
            ("id", self.id.clone()),
            ("ids", self.ids.clone()),
        ] {
            if let Some(value) = value {
                data[name] = value;
            }
        }
        self
    }

    /// The `cache_invalidate` sent instead of this event when it is too large to post:
    /// same project, event id and time; the resource from the type, `data.id` when present.
    /// When even that is too large (a huge record id), the id is left out: clients invalidate
    /// the whole resource.
    pub fn invalidation(&self) -> Event {
        let id = self
            .data
            .get("id")
            .filter(|id| id.is_string() || id.is_number())
            .cloned();
        let build = |id: Option<Value>| {
            Event {
                kind: EventType::CacheInvalidate,
                project_id: self.project_id,
                user_id: None,
                resource: Some(
                    self.resource
                        .clone()
                        .unwrap_or_else(|| resource_of(self.kind.as_str()).to_owned()),
                ),
                action: Some(
                    self.action
                        .clone()
                        .unwrap_or_else(|| action_of(self.kind.as_str()).to_owned()),
                ),
                id,
                ids: None,
                data: json!({ "timestamp": self.timestamp }),
                event_id: self.event_id,
                seq: self.seq,
                timestamp: self.timestamp.clone(),
            }
            .invalidation_shape()
        };
        let with_id = build(id);
        if with_id.id.is_some() && with_id.to_json().len() > MAX_EVENT_BYTES {
            build(None)
        } else {
            with_id
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
    fn the_scope_is_a_project_id_or_a_star_on_the_wire() {
        let project = Uuid::new_v4();
        for (scope, wire) in [
            (EventScope::Project(project), json!(project.to_string())),
            (EventScope::Everyone, json!("*")),
        ] {
            assert_eq!(serde_json::to_value(scope).unwrap(), wire);
            assert_eq!(serde_json::from_value::<EventScope>(wire).unwrap(), scope);
        }
        let err = serde_json::from_value::<EventScope>(json!("")).unwrap_err();
        assert!(err.to_string().contains("UUID or \"*\""), "{err}");
        assert_eq!(EventScope::Everyone.project(), None);
    }

    #[test]
    fn oversized_events_become_invalidations() {
        let event = Event {
            kind: EventType::TaskUpdated,
            project_id: Some(EventScope::Project(Uuid::nil())),
            user_id: None,
            resource: None,
            action: None,
            id: None,
            ids: None,
            data: json!({"id": "t-1", "description": "x".repeat(200 * 1024)}),
            event_id: Uuid::new_v4(),
            seq: None,
            timestamp: "2026-11-22T05:00:00.000Z".into(),
        };
        let (json, replaced) = event.to_deliverable();
        assert!(replaced && json.len() < 1024);
        let sent: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            sent,
            json!({"type": "cache_invalidate", "project_id": Uuid::nil(), "resource": "task", "action": "UPDATE", "id": "t-1",
                   "data": {"resource": "task", "id": "t-1", "action": "UPDATE", "project_id": Uuid::nil(),
                            "timestamp": "2026-11-22T05:00:00.000Z"},
                   "event_id": event.event_id, "timestamp": "2026-11-22T05:00:00.000Z"})
        );
        let small = Event {
            data: json!({"id": "t-1"}),
            ..event.clone()
        };
        assert!(!small.to_deliverable().1);

        // A record id too large for even the replacement: the id is dropped, the resource is
        // invalidated, and the frame fits.
        let huge_id = Event {
            data: json!({"id": "i".repeat(300 * 1024)}),
            ..event
        };
        let (json, replaced) = huge_id.to_deliverable();
        assert!(
            replaced && json.len() <= MAX_EVENT_BYTES,
            "{} bytes",
            json.len()
        );
        let sent: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (sent["resource"].as_str(), sent.get("id")),
            (Some("task"), None)
        );
        assert_eq!(sent["data"].get("id"), None);
    }
}
