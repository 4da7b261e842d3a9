//! The client protocol of DESIGN "Client protocol": what browsers send, what they get back.
//!
//! Two vocabularies reach the server: the route-selected `action` form and the older `type`
//! form of the first clients. Both parse into one [`ClientMessage`]; every failure becomes an
//! [`ErrorFrame`] with a code of [`ErrorCode`], never a panic.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::time::EpochSecs;

/// The API's message routes besides `$default` (route selection: `$request.body.action`).
pub const MESSAGE_ROUTES: [&str; 6] = [
    "subscribe",
    "unsubscribe",
    "ping",
    "refresh",
    "typing",
    "subscribe_user",
];

/// The `type` values of the older message form.
pub const LEGACY_TYPES: [&str; 3] = ["join_project", "leave_project", "ping"];

/// Largest message body the subscribe route accepts (API Gateway's frame size).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 32 * 1024;

/// Client → server, route-selected by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionMessage {
    Subscribe {
        #[serde(alias = "projectId")]
        project_id: Uuid,
        /// Resume after this seq (DESIGN "Sequence and recovery").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    Unsubscribe {},
    Ping {},
    /// A new token for the same user, before the current one expires.
    Refresh {
        token: String,
    },
    /// The user is typing in the project's chat (DESIGN "Presence, typing, direct messages").
    Typing {
        #[serde(alias = "projectId")]
        project_id: Uuid,
    },
    /// The user's direct-message stream: its head, or with `since` the messages after it.
    SubscribeUser {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
}

/// Client → server, the older `type` form (reaches the `$default` route).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LegacyMessage {
    JoinProject {
        #[serde(alias = "projectId")]
        project_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    LeaveProject {},
    Ping {},
}

/// A client message, whichever form it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe {
        project_id: Uuid,
        since: Option<u64>,
        epoch: Option<String>,
    },
    Unsubscribe,
    Ping,
    Refresh {
        token: String,
    },
    Typing {
        project_id: Uuid,
    },
    SubscribeUser {
        since: Option<u64>,
        epoch: Option<String>,
    },
}

impl From<ActionMessage> for ClientMessage {
    fn from(m: ActionMessage) -> Self {
        match m {
            ActionMessage::Subscribe {
                project_id,
                since,
                epoch,
            } => ClientMessage::Subscribe {
                project_id,
                since,
                epoch,
            },
            ActionMessage::Unsubscribe {} => ClientMessage::Unsubscribe,
            ActionMessage::Ping {} => ClientMessage::Ping,
            ActionMessage::Refresh { token } => ClientMessage::Refresh { token },
            ActionMessage::Typing { project_id } => ClientMessage::Typing { project_id },
            ActionMessage::SubscribeUser { since, epoch } => {
                ClientMessage::SubscribeUser { since, epoch }
            }
        }
    }
}

impl From<LegacyMessage> for ClientMessage {
    fn from(m: LegacyMessage) -> Self {
        match m {
            LegacyMessage::JoinProject {
                project_id,
                since,
                epoch,
            } => ClientMessage::Subscribe {
                project_id,
                since,
                epoch,
            },
            LegacyMessage::LeaveProject {} => ClientMessage::Unsubscribe,
            LegacyMessage::Ping {} => ClientMessage::Ping,
        }
    }
}

impl ClientMessage {
    /// Parse a message body. Sizes are checked before any parsing.
    pub fn parse(body: &str) -> Result<Self, ErrorFrame> {
        if body.len() > MAX_CLIENT_MESSAGE_BYTES {
            return Err(ErrorFrame::new(
                ErrorCode::TooLarge,
                format!(
                    "message is {} bytes; the limit is {MAX_CLIENT_MESSAGE_BYTES}",
                    body.len()
                ),
            ));
        }
        let value: Value = serde_json::from_str(body).map_err(|e| {
            ErrorFrame::new(
                ErrorCode::BadRequest,
                format!("message is not valid JSON: {e}"),
            )
        })?;
        let Some(object) = value.as_object() else {
            return Err(ErrorFrame::new(
                ErrorCode::BadRequest,
                "message must be a JSON object",
            ));
        };
        let bad = |e: serde_json::Error| ErrorFrame::new(ErrorCode::BadRequest, e.to_string());
        let refuse = |message: String| Err(ErrorFrame::new(ErrorCode::BadRequest, message));
        // The common mistakes, named before serde's generic wording can describe them.
        for field in ["project_id", "projectId"] {
            if let Some(v) = object.get(field) {
                if v.as_str().is_none_or(|s| Uuid::parse_str(s).is_err()) {
                    return refuse(format!("{field} must be a UUID string, got {v}"));
                }
            }
        }
        if let Some(action) = object.get("action") {
            if action.as_str().is_none_or(|a| !MESSAGE_ROUTES.contains(&a)) {
                return refuse(format!(
                    "unknown action {action}: send one of {}",
                    MESSAGE_ROUTES.join(", ")
                ));
            }
        } else if let Some(kind) = object.get("type") {
            if kind.as_str().is_none_or(|k| !LEGACY_TYPES.contains(&k)) {
                return refuse(format!(
                    "unknown type {kind}: send {{\"action\": …}} with one of {}, or a type of {}",
                    MESSAGE_ROUTES.join(", "),
                    LEGACY_TYPES.join(", ")
                ));
            }
        }
        if object.contains_key("action") {
            Ok(serde_json::from_value::<ActionMessage>(value)
                .map_err(bad)?
                .into())
        } else if object.contains_key("type") {
            Ok(serde_json::from_value::<LegacyMessage>(value)
                .map_err(bad)?
                .into())
        } else {
            Err(ErrorFrame::new(
                ErrorCode::BadRequest,
                "message needs an \"action\" field",
            ))
        }
    }
}

/// Server → client replies to a client message (sent as the route response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// `message` repeats the type for clients that recognise the acknowledgement by
    /// `"message":"subscribed"` (the DevHive web app).
    Subscribed {
        #[serde(default = "subscribed")]
        message: String,
        project_id: Uuid,
        /// The project stream's head when the subscription was written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// With `since`: the events after it, in order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<Vec<Value>>,
        /// With `since`: they cannot be recovered; refetch everything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reset: Option<bool>,
        /// The distinct users with a connection subscribed to the project, the subscriber
        /// included; absent when presence is off or the project is past its presence bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        online: Option<Vec<Uuid>>,
    },
    /// The answer to `subscribe_user`: the user's direct-message stream (`user#U`), with the
    /// same `seq`/`epoch`/`recovered`/`reset` as `subscribed`.
    SubscribedUser {
        user_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<Vec<Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reset: Option<bool>,
    },
    /// The connection left its project: on request (no fields), or ended by the server
    /// (`project_id` and `reason`, e.g. `membership_revoked`).
    Unsubscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Pong,
    /// A `refresh` was accepted: nothing is delivered past `expires_at` (epoch seconds, a
    /// bare number).
    Refreshed {
        expires_at: EpochSecs,
    },
    Error(ErrorFrame),
}

/// Why the server ended a subscription: the user's membership of the project ended.
pub const REASON_MEMBERSHIP_REVOKED: &str = "membership_revoked";

fn subscribed() -> String {
    "subscribed".to_owned()
}

/// The machine-readable error codes of the `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    TooLarge,
    RateLimited,
    TokenExpired,
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire (`bad_request`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status that carries this code where a status is returned ($connect, status API).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::TokenExpired => 401,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// An error to report to the client: `{"type":"error","code":…,"message":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            code,
            message: message.into(),
        }
    }

    /// The token the connection authenticated with has expired.
    pub fn token_expired() -> Self {
        ErrorFrame::new(
            ErrorCode::TokenExpired,
            "the token has expired: send a refresh before it does, or reconnect with a new token",
        )
    }
}

impl From<ErrorFrame> for Reply {
    fn from(e: ErrorFrame) -> Self {
        Reply::Error(e)
    }
}

impl Reply {
    /// The acknowledgement of a subscription to `project_id`.
    pub fn subscribed(project_id: Uuid) -> Reply {
        Reply::Subscribed {
            message: subscribed(),
            project_id,
            seq: None,
            epoch: None,
            recovered: None,
            reset: None,
            online: None,
        }
    }

    /// The answer to an `unsubscribe`.
    pub fn unsubscribed() -> Reply {
        Reply::Unsubscribed {
            project_id: None,
            reason: None,
        }
    }

    /// The frame telling a connection the server ended its subscription to `project_id`.
    pub fn unsubscribed_by_server(project_id: Uuid, reason: &str) -> Reply {
        Reply::Unsubscribed {
            project_id: Some(project_id),
            reason: Some(reason.to_owned()),
        }
    }

    /// The frame a connection gets when its token has expired.
    pub fn token_expired() -> Reply {
        Reply::Error(ErrorFrame::token_expired())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replies are plain data and always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";

    #[test]
    fn both_vocabularies_parse_to_the_same_messages() {
        let p = Uuid::parse_str(P).unwrap();
        let cases = [
            (
                json!({"action": "subscribe", "project_id": P}),
                ClientMessage::Subscribe {
                    project_id: p,
                    since: None,
                    epoch: None,
                },
            ),
            (
                json!({"action": "subscribe", "projectId": P}),
                ClientMessage::Subscribe {
                    project_id: p,
                    since: None,
                    epoch: None,
                },
            ),
            (
                json!({"type": "join_project", "project_id": P}),
                ClientMessage::Subscribe {
                    project_id: p,
                    since: None,
                    epoch: None,
                },
            ),
            (json!({"action": "unsubscribe"}), ClientMessage::Unsubscribe),
            (json!({"type": "leave_project"}), ClientMessage::Unsubscribe),
            (json!({"action": "ping"}), ClientMessage::Ping),
            (json!({"type": "ping"}), ClientMessage::Ping),
            (
                json!({"action": "ping", "request_id": 7}),
                ClientMessage::Ping,
            ),
            (
                json!({"action": "refresh", "token": "t"}),
                ClientMessage::Refresh { token: "t".into() },
            ),
            (
                json!({"action": "typing", "project_id": P}),
                ClientMessage::Typing { project_id: p },
            ),
            (
                json!({"action": "subscribe_user"}),
                ClientMessage::SubscribeUser {
                    since: None,
                    epoch: None,
                },
            ),
            (
                json!({"action": "subscribe_user", "since": 4, "epoch": "e"}),
                ClientMessage::SubscribeUser {
                    since: Some(4),
                    epoch: Some("e".into()),
                },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(ClientMessage::parse(&body.to_string()), Ok(want), "{body}");
        }
    }

    #[test]
    fn replies_have_the_documented_wire_format() {
        let p = Uuid::parse_str(P).unwrap();
        let cases = [
            (
                Reply::subscribed(p),
                json!({"type": "subscribed", "message": "subscribed", "project_id": P}),
            ),
            (Reply::unsubscribed(), json!({"type": "unsubscribed"})),
            (
                Reply::unsubscribed_by_server(p, REASON_MEMBERSHIP_REVOKED),
                json!({"type": "unsubscribed", "project_id": P, "reason": "membership_revoked"}),
            ),
            (Reply::Pong, json!({"type": "pong"})),
            (
                Reply::Refreshed {
                    expires_at: EpochSecs(1_800_000_000),
                },
                json!({"type": "refreshed", "expires_at": 1_800_000_000}),
            ),
            (
                Reply::Error(ErrorFrame::new(ErrorCode::RateLimited, "slow down")),
                json!({"type": "error", "code": "rate_limited", "message": "slow down"}),
            ),
        ];
        for (reply, want) in cases {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&reply.to_json()).unwrap(),
                want
            );
        }
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        let message = |body: &str| ClientMessage::parse(body).unwrap_err().message;
        assert_eq!(
            message(r#"{"action":"dance"}"#),
            r#"unknown action "dance": send one of subscribe, unsubscribe, ping, refresh, typing, subscribe_user"#
        );
        assert_eq!(
            message(r#"{"action":"subscribe","project_id":"abc"}"#),
            r#"project_id must be a UUID string, got "abc""#
        );
        assert_eq!(
            message(r#"{"type":"join_project","projectId":42}"#),
            "projectId must be a UUID string, got 42"
        );
        assert!(
            message(r#"{"type":"dance"}"#)
                .starts_with(r#"unknown type "dance": send {"action": …}"#)
        );
        assert!(
            ClientMessage::parse(
                r#"{"type":"join_project","projectId":"6f1c2f59-7d7e-4f7b-9b0e-0c7d1f1d2a11"}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn codes_serialize_as_their_wire_names() {
        use ErrorCode::*;
        for code in [
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            TooLarge,
            RateLimited,
            TokenExpired,
            Unavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn client_messages_serialize_to_what_the_server_parses() {
        let p = Uuid::parse_str(P).unwrap();
        let action = serde_json::to_string(&ActionMessage::Subscribe {
            project_id: p,
            since: None,
            epoch: None,
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&action).unwrap(),
            json!({"action": "subscribe", "project_id": P})
        );
        let legacy = serde_json::to_string(&LegacyMessage::LeaveProject {}).unwrap();
        assert_eq!(
            ClientMessage::parse(&legacy),
            Ok(ClientMessage::Unsubscribe)
        );
    }
}
