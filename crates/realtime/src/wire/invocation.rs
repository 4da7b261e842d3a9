//! What the broadcaster is invoked with (DESIGN "Broadcaster invocation"), validated.
//!
//! Three shapes arrive: the event form HTTP handlers send
//! (`{"project_id"|"projectId","type","data","exclude_connection_id","event_id"}`), the
//! trigger form (`{"resource","id","action","project_id","timestamp"}`, which becomes a
//! `cache_invalidate`), and the relay's `resync` to every client (`"project_id":"*"`).
//! Invalid input is answered with the field at fault and never retried: a malformed event
//! does not get better the second time.

use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::wire::events::{ACTIONS, Event, EventScope, EventType, RESOURCES};

/// The type of a direct message (DESIGN "Presence, typing, direct messages").
pub use realtime_client::DIRECT_MESSAGE;
pub use realtime_client::MAX_INVOCATION_BYTES;

/// Frames the server itself sends in reply or control; never accepted as event types.
pub const REPLY_TYPES: [&str; 9] = [
    "subscribed",
    "subscribed_user",
    "presence",
    "typing",
    "unsubscribed",
    "pong",
    "refreshed",
    "error",
    "reconnect",
];
/// Longest connection id accepted in `exclude_connection_id`.
const MAX_CONNECTION_ID: usize = 128;

/// Who receives the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Project(Uuid),
    /// Every connected client (`resync` only).
    Everyone,
    /// Every connection of one user (a direct message).
    User(Uuid),
}

/// A validated broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub audience: Audience,
    pub event: Event,
    pub exclude_connection_id: Option<String>,
}

/// Why an invocation was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, InvalidInput> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

impl Broadcast {
    /// Validate an invocation payload. `event_id` fills in when the payload has none (the
    /// broadcaster derives it from the invocation's request id, so a retried invocation
    /// repeats it); `now` is the RFC 3339 time of the broadcast.
    pub fn parse(payload: &Value, event_id: Uuid, now: &str) -> Result<Broadcast, InvalidInput> {
        let object = Self::object(payload)?;
        let event_id = match string(object, "event_id")? {
            Some(id) => Uuid::parse_str(id).map_err(|_| invalid("event_id", "must be a UUID"))?,
            None => event_id,
        };
        let exclude = string(object, "exclude_connection_id")?.filter(|s| !s.is_empty());
        if exclude.is_some_and(|e| e.len() > MAX_CONNECTION_ID) {
            return Err(invalid("exclude_connection_id", "is too long"));
        }
        let project_field = if object.contains_key("project_id") {
            "project_id"
        } else if object.contains_key("projectId") {
            "projectId"
        } else if object.contains_key("user_id") {
            return Self::direct(object, event_id, exclude, now);
        } else {
            "project_id"
        };
        let project = string(object, project_field)?.ok_or_else(|| {
            invalid(
                "project_id",
                "is required (or user_id, for a direct message)",
            )
        })?;
        let event = if object.contains_key("type") {
            Self::event(object, event_id, now)?
        } else if object.contains_key("resource") {
            Self::trigger(object, event_id, now)?
        } else {
            return Err(invalid(
                "type",
                "is required (or the trigger form's resource, id and action)",
            ));
        };
        let (audience, event) = Self::addressed(project, event)?;
        Ok(Broadcast {
            audience,
            event,
            exclude_connection_id: exclude.map(str::to_owned),
        })
    }

    /// The payload as a JSON object within [`MAX_INVOCATION_BYTES`].
    fn object(payload: &Value) -> Result<&Map<String, Value>, InvalidInput> {
        let size = serde_json::to_string(payload).map_or(usize::MAX, |s| s.len());
        if size > MAX_INVOCATION_BYTES {
            return Err(invalid(
                "payload",
                format!("{size} bytes; the limit is {MAX_INVOCATION_BYTES}"),
            ));
        }
        payload
            .as_object()
            .ok_or_else(|| invalid("payload", "must be a JSON object"))
    }

    /// The event form: a `type` that is an event type (not a direct message, not a reply),
    /// with an optional `resource` and `action` from their lists.
    fn event(
        object: &Map<String, Value>,
        event_id: Uuid,
        now: &str,
    ) -> Result<Event, InvalidInput> {
        let kind = string(object, "type")?.ok_or_else(|| invalid("type", "is required"))?;
        let event_type = EventType::parse(kind).map_err(|e| invalid("type", e))?;
        if kind == DIRECT_MESSAGE {
            return Err(invalid(
                "type",
                "a direct_message is addressed with user_id, and has no project_id",
            ));
        }
        if REPLY_TYPES.contains(&kind) {
            return Err(invalid(
                "type",
                format!("{kind:?} is a reply or control frame of the protocol, not an event type"),
            ));
        }
        let resource = string(object, "resource")?.map(str::to_owned);
        let action = string(object, "action")?.map(str::to_owned);
        if resource.as_deref().is_some_and(|r| !RESOURCES.contains(&r)) {
            return Err(invalid("resource", format!("must be one of {RESOURCES:?}")));
        }
        if action.as_deref().is_some_and(|a| !ACTIONS.contains(&a)) {
            return Err(invalid("action", format!("must be one of {ACTIONS:?}")));
        }
        Ok(Event {
            kind: event_type,
            project_id: None,
            user_id: None,
            resource,
            action,
            id: None,
            ids: None,
            data: object.get("data").cloned().unwrap_or_else(|| json!({})),
            event_id,
            seq: None,
            timestamp: now.to_owned(),
        })
    }

    /// Who receives `event` sent to `project`: every client for `"*"` (a `resync` only, with
    /// its fixed frame), else the project's, its id in canonical lower-case form. The event
    /// gets its scope here, and a `cache_invalidate` its shape.
    fn addressed(project: &str, event: Event) -> Result<(Audience, Event), InvalidInput> {
        if project == "*" {
            if event.kind != EventType::Resync {
                return Err(invalid("project_id", "\"*\" is only allowed for resync"));
            }
            // Every connection of every project gets the same fixed frame, whatever the
            // invoker put in it.
            let event = Event {
                project_id: Some(EventScope::Everyone),
                resource: None,
                action: None,
                id: None,
                ids: None,
                data: json!({}),
                ..event
            };
            return Ok((Audience::Everyone, event));
        }
        let project =
            Uuid::parse_str(project).map_err(|_| invalid("project_id", "must be a UUID"))?;
        // One spelling per project: the canonical lower-case form, echoed and compared.
        let mut event = Event {
            project_id: Some(EventScope::Project(project)),
            ..event
        }
        .invalidation_shape();
        if let Some(data) = event.data.get_mut("project_id")
            && data.is_string()
        {
            *data = json!(project);
        }
        Ok((Audience::Project(project), event))
    }

    /// The trigger form: a row change announced by `notify_cache_invalidation()`.
    /// A direct message (`{"user_id","type":"direct_message","data"}`): to every connection
    /// of the user, in the user's own stream.
    fn direct(
        object: &Map<String, Value>,
        event_id: Uuid,
        exclude: Option<&str>,
        now: &str,
    ) -> Result<Broadcast, InvalidInput> {
        let user = string(object, "user_id")?
            .and_then(|u| Uuid::parse_str(u).ok())
            .ok_or_else(|| invalid("user_id", "must be the recipient's user UUID"))?;
        match string(object, "type")? {
            None | Some(DIRECT_MESSAGE) => {}
            Some(other) => {
                return Err(invalid(
                    "type",
                    format!(
                        "a message addressed to user_id is a {DIRECT_MESSAGE:?}, not {other:?}"
                    ),
                ));
            }
        }
        let data = object.get("data").cloned().unwrap_or_else(|| json!({}));
        // Nothing to degrade it into: refused before anything is stored.
        realtime_client::invocation::check_direct_data(&data)
            .map_err(|e| invalid("data", e.to_string()))?;
        Ok(Broadcast {
            audience: Audience::User(user),
            event: Event {
                kind: EventType::Custom(DIRECT_MESSAGE.to_owned()),
                project_id: None,
                user_id: Some(user),
                resource: None,
                action: None,
                id: None,
                ids: None,
                data,
                event_id,
                seq: None,
                timestamp: now.to_owned(),
            },
            exclude_connection_id: exclude.map(str::to_owned),
        })
    }

    fn trigger(
        object: &Map<String, Value>,
        event_id: Uuid,
        now: &str,
    ) -> Result<Event, InvalidInput> {
        let resource =
            string(object, "resource")?.ok_or_else(|| invalid("resource", "is required"))?;
        if !RESOURCES.contains(&resource) {
            return Err(invalid("resource", format!("must be one of {RESOURCES:?}")));
        }
        let action = string(object, "action")?.ok_or_else(|| invalid("action", "is required"))?;
        if !ACTIONS.contains(&action) {
            return Err(invalid("action", format!("must be one of {ACTIONS:?}")));
        }
        let id = match object.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("id", "must be a non-empty string")),
        };
        let timestamp = string(object, "timestamp")?.unwrap_or(now);
        Ok(Event {
            kind: EventType::CacheInvalidate,
            project_id: None,
            user_id: None,
            resource: Some(resource.to_owned()),
            action: Some(action.to_owned()),
            id: Some(json!(id)),
            ids: None,
            data: json!({ "timestamp": timestamp }),
            event_id,
            seq: None,
            timestamp: now.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    const NOW: &str = "2026-11-22T05:00:00.000Z";

    fn parse(v: Value) -> Result<Broadcast, InvalidInput> {
        Broadcast::parse(&v, Uuid::nil(), NOW)
    }

    #[test]
    fn a_direct_message_is_addressed_to_a_user_and_needs_a_valid_one() {
        const U: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
        let b =
            parse(json!({"user_id": U, "type": "direct_message", "data": {"text": "hi"}})).unwrap();
        let user = Uuid::parse_str(U).unwrap();
        assert_eq!(b.audience, Audience::User(user));
        let frame: Value = serde_json::from_str(&b.event.to_json()).unwrap();
        assert_eq!(
            frame,
            json!({"type": "direct_message", "user_id": U, "data": {"text": "hi"},
                   "event_id": Uuid::nil(), "timestamp": NOW})
        );
        for (payload, field) in [
            (
                json!({"user_id": "nobody", "type": "direct_message"}),
                "user_id",
            ),
            (json!({"user_id": 7, "type": "direct_message"}), "user_id"),
            (json!({"user_id": U, "type": "task_created"}), "type"),
            (json!({"project_id": P, "type": "direct_message"}), "type"),
            (json!({"type": "direct_message"}), "project_id"),
            (json!({"user_id": U, "type": "presence"}), "type"),
            (json!({"project_id": P, "type": "typing"}), "type"),
        ] {
            assert_eq!(
                parse(payload.clone()).unwrap_err().field,
                field,
                "{payload}"
            );
        }
    }

    /// A direct message cannot become a `cache_invalidate` (there is nothing to refetch): one
    /// whose frame would not fit API Gateway's 128 KB message is refused, naming the limit;
    /// one at the limit is delivered whole and fits.
    #[test]
    fn a_direct_message_over_the_frame_limit_is_refused() {
        use realtime_client::MAX_DIRECT_DATA_BYTES;
        const U: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
        let text = |n: usize| json!("x".repeat(n - 2)); // n bytes serialized, quotes included
        let err = parse(json!({"user_id": U, "data": text(200 * 1024)})).unwrap_err();
        assert_eq!(err.field, "data");
        assert!(
            err.message.contains(&MAX_DIRECT_DATA_BYTES.to_string()),
            "{}",
            err.message
        );
        assert!(parse(json!({"user_id": U, "data": text(MAX_DIRECT_DATA_BYTES + 1)})).is_err());
        let mut b = parse(json!({"user_id": U, "data": text(MAX_DIRECT_DATA_BYTES)})).unwrap();
        b.event.seq = Some(u64::MAX);
        let (frame, replaced) = b.event.to_deliverable();
        assert!(!replaced && frame.len() <= crate::wire::events::MAX_EVENT_BYTES);
    }

    #[test]
    fn the_go_handlers_payload_is_accepted() {
        let b = parse(
            json!({"projectId": P, "type": "message_created", "data": {"id": "m1", "text": "hi"},
                             "exclude_connection_id": "abc="}),
        )
        .unwrap();
        assert_eq!(b.audience, Audience::Project(Uuid::parse_str(P).unwrap()));
        assert_eq!(b.exclude_connection_id.as_deref(), Some("abc="));
        assert_eq!(b.event.kind, EventType::MessageCreated);
        assert_eq!(b.event.data, json!({"id": "m1", "text": "hi"}));
        assert_eq!(
            (b.event.event_id, b.event.timestamp.as_str()),
            (Uuid::nil(), NOW)
        );
    }

    #[test]
    fn a_given_event_id_is_kept() {
        let id = Uuid::new_v4();
        let b = parse(json!({"project_id": P, "type": "task_updated", "event_id": id})).unwrap();
        assert_eq!(b.event.event_id, id);
        assert_eq!(b.event.data, json!({}));
    }

    #[test]
    fn trigger_payloads_become_cache_invalidate() {
        let b = parse(
            json!({"resource": "task", "id": "t-1", "action": "UPDATE", "project_id": P,
                             "timestamp": "2026-11-22T04:59:59Z"}),
        )
        .unwrap();
        let sent: Value = serde_json::from_str(&b.event.to_json()).unwrap();
        assert_eq!(
            sent,
            json!({"type": "cache_invalidate", "project_id": P, "resource": "task", "action": "UPDATE", "id": "t-1",
                   "data": {"resource": "task", "id": "t-1", "action": "UPDATE", "project_id": P,
                            "timestamp": "2026-11-22T04:59:59Z"},
                   "event_id": Uuid::nil(), "timestamp": NOW})
        );
        let camel = parse(
            json!({"resource": "project_members", "id": format!("{P}:u1"), "action": "INSERT", "projectId": P}),
        );
        assert_eq!(camel.unwrap().event.data["id"], format!("{P}:u1"));
    }

    /// The two readers of the DevHive web app: the flat one reads `resource`, `action`,
    /// `project_id` and `id` at the top level; the Go hub's nested one reads them inside `data`.
    fn both_readers(frame: &Value) -> [(Value, Value, Value, Value); 2] {
        let d = &frame["data"];
        let id = |v: &Value| {
            v.get("id")
                .or_else(|| v.get("ids"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        [
            (
                frame["resource"].clone(),
                frame["action"].clone(),
                frame["project_id"].clone(),
                id(frame),
            ),
            (
                d["resource"].clone(),
                d["action"].clone(),
                d["project_id"].clone(),
                id(d),
            ),
        ]
    }

    #[test]
    fn cache_invalidate_carries_its_record_for_both_readers() {
        let single: Value = serde_json::from_str(
            &parse(json!({"resource": "sprint", "id": "s-9", "action": "DELETE", "project_id": P}))
                .unwrap()
                .event
                .to_json(),
        )
        .unwrap();
        let want = (json!("sprint"), json!("DELETE"), json!(P), json!("s-9"));
        assert_eq!(both_readers(&single), [want.clone(), want]);
        assert_eq!(single["data"]["timestamp"], NOW);

        // The relay's coalesced form: `ids` in both places instead of `id`.
        let batch: Value = serde_json::from_str(
            &parse(json!({"project_id": P, "type": "cache_invalidate", "resource": "task", "action": "UPDATE",
                          "data": {"ids": ["t-1", "t-2"], "timestamp": "2026-11-22T04:59:59Z"}}))
            .unwrap()
            .event
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            batch,
            json!({"type": "cache_invalidate", "project_id": P, "resource": "task", "action": "UPDATE",
                   "ids": ["t-1", "t-2"],
                   "data": {"resource": "task", "ids": ["t-1", "t-2"], "action": "UPDATE", "project_id": P,
                            "timestamp": "2026-11-22T04:59:59Z"},
                   "event_id": Uuid::nil(), "timestamp": NOW})
        );
        let want = (
            json!("task"),
            json!("UPDATE"),
            json!(P),
            json!(["t-1", "t-2"]),
        );
        assert_eq!(both_readers(&batch), [want.clone(), want]);

        // Typed events keep their own shape.
        let typed: Value = serde_json::from_str(
            &parse(json!({"project_id": P, "type": "task_updated", "data": {"id": "t-1"}}))
                .unwrap()
                .event
                .to_json(),
        )
        .unwrap();
        assert!(typed.get("id").is_none() && typed.get("resource").is_none());
        assert_eq!(typed["data"], json!({"id": "t-1"}));
    }

    #[test]
    fn reply_types_are_not_event_types() {
        for kind in REPLY_TYPES {
            let err = parse(json!({"project_id": P, "type": kind, "data": {}})).unwrap_err();
            assert_eq!(err.field, "type", "{kind}");
            assert!(err.message.contains("reply"), "{}", err.message);
        }
    }

    #[test]
    fn project_ids_are_canonical_whatever_their_spelling() {
        let upper = P.to_uppercase();
        for spelling in [upper.clone(), format!("{{{upper}}}"), P.replace('-', "")] {
            let b = parse(json!({"project_id": spelling, "type": "task_updated"})).unwrap();
            assert_eq!(b.audience, Audience::Project(Uuid::parse_str(P).unwrap()));
            assert_eq!(b.event.project_id.unwrap().to_string(), P, "{spelling}");
        }
        let t =
            parse(json!({"resource": "task", "id": "t", "action": "UPDATE", "projectId": upper}))
                .unwrap();
        let sent: Value = serde_json::from_str(&t.event.to_json()).unwrap();
        assert_eq!(
            (
                sent["project_id"].as_str(),
                sent["data"]["project_id"].as_str()
            ),
            (Some(P), Some(P))
        );
    }

    #[test]
    fn resync_to_everyone_is_the_fixed_frame_whatever_it_carries() {
        let b = parse(
            json!({"project_id": "*", "type": "resync", "resource": "task", "action": "DELETE",
                             "data": {"html": "<script>", "id": "x"}}),
        )
        .unwrap();
        let sent: Value = serde_json::from_str(&b.event.to_json()).unwrap();
        assert_eq!(
            sent,
            json!({"type": "resync", "project_id": "*", "data": {}, "event_id": Uuid::nil(), "timestamp": NOW})
        );
    }

    #[test]
    fn resync_alone_may_address_everyone() {
        assert_eq!(
            parse(json!({"project_id": "*", "type": "resync"}))
                .unwrap()
                .audience,
            Audience::Everyone
        );
        assert_eq!(
            parse(json!({"project_id": "*", "type": "task_updated"}))
                .unwrap_err()
                .field,
            "project_id"
        );
    }

    #[test]
    fn invalid_input_names_the_field() {
        let cases = [
            (json!([1, 2]), "payload"),
            (json!({"type": "task_updated"}), "project_id"),
            (
                json!({"project_id": "nope", "type": "task_updated"}),
                "project_id",
            ),
            (
                json!({"project_id": 7, "type": "task_updated"}),
                "project_id",
            ),
            (json!({"project_id": P}), "type"),
            (json!({"project_id": P, "type": "Task Updated"}), "type"),
            (json!({"project_id": P, "type": 5}), "type"),
            (
                json!({"project_id": P, "type": "x", "event_id": "e1"}),
                "event_id",
            ),
            (
                json!({"project_id": P, "type": "x", "exclude_connection_id": 1}),
                "exclude_connection_id",
            ),
            (
                json!({"project_id": P, "type": "x", "exclude_connection_id": "a".repeat(200)}),
                "exclude_connection_id",
            ),
            (
                json!({"project_id": P, "type": "cache_invalidate", "resource": "tasks"}),
                "resource",
            ),
            (
                json!({"project_id": P, "resource": "tasks", "id": "1", "action": "UPDATE"}),
                "resource",
            ),
            (
                json!({"project_id": P, "resource": "task", "id": "1", "action": "upsert"}),
                "action",
            ),
            (
                json!({"project_id": P, "resource": "task", "action": "UPDATE"}),
                "id",
            ),
            (
                json!({"project_id": P, "type": "x", "data": "y".repeat(MAX_INVOCATION_BYTES)}),
                "payload",
            ),
        ];
        for (payload, field) in cases {
            let shown = payload.to_string().chars().take(80).collect::<String>();
            assert_eq!(parse(payload).unwrap_err().field, field, "{shown}");
        }
    }
}
