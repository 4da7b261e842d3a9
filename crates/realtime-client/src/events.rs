//! The typed events a publisher sends (DESIGN "Client protocol", event types): the twelve
//! project events plus `resync`, any other well-formed name, and the resources and actions of
//! `cache_invalidate`. The broadcaster validates with these same definitions.

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

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On the wire an event type is its name.
impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EventType::parse(&name).map_err(serde::de::Error::custom)
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
}
