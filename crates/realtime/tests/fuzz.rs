//! The fuzz suite: random and mutated inputs at every boundary where outside data enters —
//! client messages, broadcaster invocations, trigger notifications through the relay, and
//! tokens. Nothing panics, every refusal is a clear error (a code or a field, and a message),
//! and nothing invalid is accepted. Bounded to a few thousand cases per boundary, so that it
//! runs in seconds in `make test`.

use proptest::prelude::*;
use proptest::test_runner::Config;
use realtime::connection::auth::{Authenticator, JwtConfig};
use realtime::relay::batch::{Row, plan};
use realtime::wire::client::ClientMessage;
use realtime::wire::events::EventScope;
use realtime::wire::invocation::{Audience, Broadcast};
use serde_json::{Value, json};
use uuid::Uuid;

const P: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const SECRET: &str = "0123456789abcdef0123456789abcdef-fuzz";

fn config() -> Config {
    Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any JSON value, a few levels deep, with the keys and values the parsers look for.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("action".to_owned()),
        Just("type".to_owned()),
        Just("project_id".to_owned()),
        Just("projectId".to_owned()),
        Just("data".to_owned()),
        Just("id".to_owned()),
        Just("ids".to_owned()),
        Just("resource".to_owned()),
        Just("event_id".to_owned()),
        Just("exclude_connection_id".to_owned()),
        Just("timestamp".to_owned()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(P)),
        Just(json!(P.to_uppercase())),
        Just(json!("*")),
        Just(json!("subscribe")),
        Just(json!("task")),
        Just(json!("UPDATE")),
        Just(json!("resync")),
        Just(json!("error")),
        Just(json!("cache_invalidate")),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A valid text with one byte range replaced by arbitrary bytes (kept UTF-8).
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    (0..seed.len(), 0..8usize, ".{0,8}").prop_map(move |(at, len, with)| {
        let mut bytes = seed.as_bytes().to_vec();
        let end = (at + len).min(bytes.len());
        bytes.splice(at..end, with.bytes());
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_messages_never_panic_and_refusals_say_why(
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string()),
            mutated(r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}"#),
            mutated(r#"{"type":"join_project","projectId":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}"#),
            ".{0,64}",
        ]
    ) {
        if let Err(frame) = ClientMessage::parse(&body) {
            let sent: Value = serde_json::to_value(&frame).unwrap();
            prop_assert!(sent["code"].as_str().is_some_and(|c| !c.is_empty()), "{sent}");
            prop_assert!(sent["message"].as_str().is_some_and(|m| !m.is_empty()), "{sent}");
        }
    }

    #[test]
    fn invocations_never_panic_and_refusals_name_the_field(
        payload in prop_oneof![
            json_value(),
            mutated(r#"{"project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","type":"task_updated","data":{"id":"t-1"}}"#)
                .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
            mutated(r#"{"resource":"task","id":"t-1","action":"UPDATE","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}"#)
                .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
            mutated(r#"{"user_id":"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb","type":"direct_message","data":{"text":"hi"}}"#)
                .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        ]
    ) {
        match Broadcast::parse(&payload, Uuid::nil(), "2026-11-25T00:00:00Z") {
            Err(invalid) => {
                prop_assert!(!invalid.field.is_empty() && !invalid.message.is_empty());
            }
            Ok(b) => {
                // What is accepted is well-formed: a canonical project (or `*` for resync
                // only) and a frame that serializes as JSON.
                match b.audience {
                    Audience::Project(p) => {
                        prop_assert_eq!(b.event.project_id, Some(EventScope::Project(p)));
                        let frame: Value = serde_json::from_str(&b.event.to_json()).unwrap();
                        prop_assert_eq!(&frame["project_id"], &json!(p.to_string()));
                    }
                    Audience::Everyone => {
                        prop_assert_eq!(b.event.kind.as_str(), "resync");
                        prop_assert_eq!(b.event.project_id, Some(EventScope::Everyone));
                    }
                    Audience::User(u) => {
                        prop_assert_eq!(b.event.kind.as_str(), "direct_message");
                        prop_assert_eq!(b.event.user_id, Some(u));
                    }
                }
                let frame: Value = serde_json::from_str(&b.event.to_deliverable().0).unwrap();
                prop_assert!(frame["type"].is_string());
            }
        }
    }

    #[test]
    fn outbox_rows_through_the_relay_never_panic(
        payloads in prop::collection::vec(prop_oneof![
            json_value(),
            mutated(r#"{"resource":"task","id":"t-1","action":"UPDATE","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","timestamp":"t"}"#)
                .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        ], 1..8)
    ) {
        let rows: Vec<Row> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Row { id: i as i64 + 1, payload })
            .collect();
        let (planned, refused) = plan(&rows, "now");
        // Whatever the relay makes of them, the broadcaster accepts, or the rows are refused
        // with a reason; every row is accounted for exactly once.
        for p in &planned {
            prop_assert!(Broadcast::parse(&p.payload, Uuid::nil(), "now").is_ok());
        }
        prop_assert!(refused.iter().all(|r| !r.error.is_empty()));
        let mut ids: Vec<i64> = planned
            .iter()
            .flat_map(|p| p.outbox_ids.clone())
            .chain(refused.iter().flat_map(|r| r.outbox_ids.clone()))
            .collect();
        ids.sort();
        prop_assert_eq!(ids, (1..=rows.len() as i64).collect::<Vec<_>>());
    }

    #[test]
    fn tokens_never_panic_and_tampering_is_refused(
        token in prop_oneof![
            ".{0,200}",
            Just(good_token()),
            (0..200usize, ".{1,4}").prop_map(|(at, with)| {
                let mut good = good_token();
                let at = at.min(good.len() - 1);
                good.replace_range(at..at + 1, &with);
                good
            }),
        ]
    ) {
        let authenticator = Authenticator::new(&jwt());
        // The same token is the same bytes in each part (base64url may spell them two ways).
        let same = token == good_token() || parts(&token).is_some_and(|p| Some(p) == parts(&good_token()));
        match authenticator.verify(&token) {
            Ok(user) => {
                prop_assert!(same, "a tampered token was accepted: {}", token);
                prop_assert_eq!(user, Uuid::parse_str(P).unwrap());
            }
            Err(e) => {
                prop_assert!(token != good_token(), "the untouched token was refused: {}", e);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

fn jwt() -> JwtConfig {
    JwtConfig {
        secret: SECRET.as_bytes().to_vec(),
        issuer: None,
        audience: None,
    }
}

/// One token for the whole run (minted once: its `iat` and `exp` must not move between cases).
fn good_token() -> String {
    static GOOD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        realtime::connection::auth::mint(&jwt(), Uuid::parse_str(P).unwrap(), 3600)
    });
    GOOD.clone()
}

/// A JWT's three parts decoded (base64url, padding optional), or `None` when it has not three
/// decodable parts.
fn parts(token: &str) -> Option<Vec<Vec<u8>>> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    parts.iter().map(|p| engine.decode(p).ok()).collect()
}

/// `since` and `epoch` at the edges a client can send: every u64 (0, 2^53, 2^64 - 1) is taken
/// as given, to be answered by the store (`reset` past the head, never an overflow: see
/// event_store.rs); a negative, fractional, out-of-range or string `since`, or a non-string
/// `epoch`, is a `bad_request` naming what is wrong, on both subscribe forms.
#[test]
fn since_and_epoch_at_the_edges() {
    for since in [json!(0), json!(1u64 << 53), json!(u64::MAX)] {
        for body in [
            json!({"action": "subscribe", "project_id": P, "since": since, "epoch": "e"}),
            json!({"action": "subscribe_user", "since": since, "epoch": "e"}),
            json!({"type": "join_project", "project_id": P, "since": since}),
        ] {
            let parsed =
                ClientMessage::parse(&body.to_string()).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            let got = match parsed {
                ClientMessage::Subscribe { since, .. }
                | ClientMessage::SubscribeUser { since, .. } => since,
                other => panic!("{body}: {other:?}"),
            };
            assert_eq!(got, since.as_u64(), "{body}");
        }
    }
    let refused = [
        r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":-1}"#,
        r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":1.5}"#,
        r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":18446744073709551616}"#,
        r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":"7"}"#,
        r#"{"action":"subscribe","project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":1e400}"#,
        r#"{"action":"subscribe_user","since":-9007199254740993}"#,
        r#"{"action":"subscribe_user","since":3,"epoch":7}"#,
        r#"{"type":"join_project","projectId":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","since":"x"}"#,
    ];
    for body in refused {
        let frame = ClientMessage::parse(body).expect_err(body);
        let sent: Value = serde_json::to_value(&frame).unwrap();
        assert_eq!(sent["code"], "bad_request", "{body}: {sent}");
        assert!(
            sent["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}: {sent}"
        );
    }
}
