//! Every way a token can be wrong is answered 401 at `$connect` with nothing written; a good
//! token in either place (query or `Sec-WebSocket-Protocol`) connects.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime::connection::auth::{Authenticator, DEV_JWT_SECRET, JwtConfig};
use realtime::connection::lifecycle::{Limits, on_connect};
use realtime::connection::membership::AllowAll;
use serde_json::{Value, json};
use uuid::Uuid;

const ISSUER: &str = "https://devhive.example/auth";
const AUDIENCE: &str = "devhive-realtime";

fn config() -> JwtConfig {
    JwtConfig {
        secret: DEV_JWT_SECRET.as_bytes().to_vec(),
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
    }
}

/// Now in epoch seconds, the unit of the claims.
fn now() -> i64 {
    realtime::time::EpochSecs::now().0
}

fn good_claims() -> Value {
    json!({"sub": common::USER, "exp": now() + 600, "iat": now(), "iss": ISSUER, "aud": AUDIENCE})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn sign_with(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, DEV_JWT_SECRET.as_bytes(), claims)
}

fn b64(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

/// Replace the header of a signed token, keeping its payload and signature.
fn with_header(token: &str, header: Value) -> String {
    let mut parts = token.splitn(3, '.');
    let (_, payload, sig) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    format!("{}.{payload}.{sig}", b64(&header))
}

/// A `$connect` event with the token in the query (`query`) and/or the subprotocol header.
fn connect_event(
    id: &str,
    query: Option<&str>,
    protocol: Option<&str>,
) -> realtime::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest {
    let mut event = common::with_connection(common::ws_fixture("connect-no-project"), id);
    event.query_string_parameters = match query {
        Some(t) => [("token".to_owned(), t.to_owned())]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
            .into(),
        None => Default::default(),
    };
    if let Some(p) = protocol {
        event
            .headers
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    event
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_nothing_is_written() {
    let good = sign(&good_claims());
    let other_user_token = sign(&with(good_claims(), "sub", json!(Uuid::new_v4())));
    let [h, p, s]: [&str; 3] = good.splitn(3, '.').collect::<Vec<_>>().try_into().unwrap();
    let tampered_payload = format!(
        "{h}.{}.{s}",
        b64(&with(good_claims(), "sub", json!(Uuid::new_v4())))
    );
    let mut flipped = s.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let tampered_signature = format!("{h}.{p}.{}", String::from_utf8(flipped).unwrap());
    let huge = sign(&with(good_claims(), "padding", json!("x".repeat(9 * 1024))));
    assert!(huge.len() > realtime::connection::auth::MAX_TOKEN_BYTES);

    let cases: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("no token", None, None),
        ("empty query token", Some(String::new()), None),
        (
            "subprotocol offered without token",
            None,
            Some("devhive".into()),
        ),
        ("garbage", Some("not-a-jwt".into()), None),
        ("two segments", Some(format!("{h}.{p}")), None),
        ("four segments", Some(format!("{good}.{s}")), None),
        ("header not base64 JSON", Some(format!("%%%.{p}.{s}")), None),
        (
            "alg none, no signature",
            Some(format!(
                "{}.{p}.",
                b64(&json!({"alg": "none", "typ": "JWT"}))
            )),
            None,
        ),
        (
            "alg none, with signature",
            Some(with_header(&good, json!({"alg": "none", "typ": "JWT"}))),
            None,
        ),
        (
            "RS256 header",
            Some(with_header(&good, json!({"alg": "RS256", "typ": "JWT"}))),
            None,
        ),
        (
            "HS384 with the right secret",
            Some(sign_with(
                Algorithm::HS384,
                DEV_JWT_SECRET.as_bytes(),
                &good_claims(),
            )),
            None,
        ),
        (
            "HS512 with the right secret",
            Some(sign_with(
                Algorithm::HS512,
                DEV_JWT_SECRET.as_bytes(),
                &good_claims(),
            )),
            None,
        ),
        (
            "wrong key",
            Some(sign_with(
                Algorithm::HS256,
                b"another-secret-of-thirty-two-bytes!!",
                &good_claims(),
            )),
            None,
        ),
        (
            "expired",
            Some(sign(&with(good_claims(), "exp", json!(now() - 3600)))),
            None,
        ),
        (
            "expired beyond leeway",
            Some(sign(&with(good_claims(), "exp", json!(now() - 90)))),
            None,
        ),
        (
            "not yet valid",
            Some(sign(&with(good_claims(), "nbf", json!(now() + 3600)))),
            None,
        ),
        (
            "missing exp",
            Some(sign(&without(good_claims(), "exp"))),
            None,
        ),
        (
            "exp as a string",
            Some(sign(&with(good_claims(), "exp", json!("9999999999")))),
            None,
        ),
        (
            "missing sub",
            Some(sign(&without(good_claims(), "sub"))),
            None,
        ),
        (
            "sub not a UUID",
            Some(sign(&with(good_claims(), "sub", json!("alice")))),
            None,
        ),
        (
            "sub a number",
            Some(sign(&with(good_claims(), "sub", json!(42)))),
            None,
        ),
        (
            "wrong issuer",
            Some(sign(&with(
                good_claims(),
                "iss",
                json!("https://evil.example"),
            ))),
            None,
        ),
        (
            "missing issuer",
            Some(sign(&without(good_claims(), "iss"))),
            None,
        ),
        (
            "wrong audience",
            Some(sign(&with(good_claims(), "aud", json!("someone-else")))),
            None,
        ),
        (
            "missing audience",
            Some(sign(&without(good_claims(), "aud"))),
            None,
        ),
        ("tampered payload", Some(tampered_payload), None),
        ("tampered signature", Some(tampered_signature), None),
        ("oversized token", Some(huge), None),
        (
            "Bearer prefix in query",
            Some(format!("Bearer {good}")),
            None,
        ),
        (
            "query and header disagree",
            Some(good.clone()),
            Some(format!("devhive, {other_user_token}")),
        ),
        (
            "two tokens in the header",
            None,
            Some(format!("devhive, {good}, {other_user_token}")),
        ),
        (
            "bad token in the header",
            None,
            Some(format!(
                "devhive, {tampered_signature_header}",
                tampered_signature_header = "x.y.z"
            )),
        ),
    ];
    assert!(cases.len() >= 20);

    let (store, client, table) = common::dynamo_store().await;
    let membership = AllowAll::new();
    let authenticator = Authenticator::new(&config());
    for (i, (name, query, protocol)) in cases.iter().enumerate() {
        let event = connect_event(&format!("conn-{i}"), query.as_deref(), protocol.as_deref());
        let response = on_connect(
            &*store,
            None,
            &membership,
            &authenticator,
            &Limits::default(),
            &event,
        )
        .await;
        assert_eq!(response.status_code, 401, "{name}: expected 401");
        assert_eq!(
            common::body_json(&response.body)["code"],
            "unauthorized",
            "{name}"
        );
        assert!(
            response.headers.get("sec-websocket-protocol").is_none(),
            "{name}: no subprotocol on refusal"
        );
    }
    assert_eq!(
        common::count_items(&client, &table).await,
        0,
        "refused connections write nothing"
    );

    // The same good token, in either place or both, connects.
    let ok = [
        ("query", Some(good.clone()), None, false),
        ("header", None, Some(format!("devhive, {good}")), true),
        (
            "both, equal",
            Some(good.clone()),
            Some(format!("devhive, {good}")),
            true,
        ),
        (
            "subprotocol only offered",
            Some(good.clone()),
            Some("devhive".to_owned()),
            true,
        ),
        (
            "expired within leeway",
            Some(sign(&with(good_claims(), "exp", json!(now() - 5)))),
            None,
            false,
        ),
        // RFC 7519 §4.1.3: `aud` may be an array, of which one must be ours.
        (
            "audience in an array",
            Some(sign(&with(
                good_claims(),
                "aud",
                json!(["other", AUDIENCE]),
            ))),
            None,
            false,
        ),
        // RFC 7519 §2: NumericDate may be a non-integer.
        (
            "non-integer exp and nbf",
            Some(sign(&with(
                with(good_claims(), "exp", json!(now() as f64 + 600.5)),
                "nbf",
                json!(now() as f64 - 0.25),
            ))),
            None,
            false,
        ),
    ];
    for (i, (name, query, protocol, selects)) in ok.iter().enumerate() {
        let id = format!("ok-{i}");
        let event = connect_event(&id, query.as_deref(), protocol.as_deref());
        let response = on_connect(
            &*store,
            None,
            &membership,
            &authenticator,
            &Limits::default(),
            &event,
        )
        .await;
        assert_eq!(response.status_code, 200, "{name}");
        assert_eq!(
            response.headers.get("sec-websocket-protocol").is_some(),
            *selects,
            "{name}"
        );
        use realtime::connection::store::Records;
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().user_id,
            common::USER,
            "{name}"
        );
    }
}

#[test]
fn minted_tokens_verify_and_carry_the_user() {
    let user = Uuid::new_v4();
    let token = realtime::connection::auth::mint(&config(), user, 60);
    assert_eq!(Authenticator::new(&config()).verify(&token), Ok(user));
    let unconfigured = JwtConfig {
        issuer: None,
        audience: None,
        ..config()
    };
    assert_eq!(
        Authenticator::new(&unconfigured).verify(&token),
        Ok(user),
        "iss/aud only checked when configured"
    );
}

/// A refusal says what to do: the missing claim by name, and how to pass the token when it is
/// missing or offered under another subprotocol.
#[test]
fn refusals_name_the_claim_and_the_fix() {
    use realtime::connection::auth::{AuthError, token_from_request};
    let auth = Authenticator::new(&config());
    for claim in ["exp", "sub"] {
        match auth.verify(&sign(&without(good_claims(), claim))) {
            Err(AuthError::Invalid(m)) => assert!(
                m.starts_with(&format!("missing claim {claim} (tokens need")),
                "{claim}: {m}"
            ),
            other => panic!("{claim}: {other:?}"),
        }
    }
    assert!(
        auth.verify("not-a-jwt")
            .unwrap_err()
            .to_string()
            .contains("not a JWT (header.payload.signature")
    );
    let none = http::HeaderMap::new();
    let missing = token_from_request(None, &none).err().unwrap().to_string();
    assert!(
        missing.starts_with(
            "missing token: pass it as ?token=<jwt>, or offer the subprotocols [\"devhive\", <jwt>]"
        ),
        "{missing}"
    );
    let mut other = http::HeaderMap::new();
    other.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        "chat, eyJ.x.y".parse().unwrap(),
    );
    let wrong = token_from_request(None, &other).err().unwrap().to_string();
    assert!(
        wrong.contains("does not offer \"devhive\"") && !wrong.contains("eyJ"),
        "{wrong}"
    );
    assert!(
        token_from_request(Some("t"), &other).is_ok(),
        "a query token still works"
    );
}

/// A secret named by `JWT_SECRET_ARN` is read at start; after a rotation, a token signed with
/// the new secret makes the authenticator re-read it once and accept; forged tokens cause at
/// most one read per interval.
#[tokio::test]
async fn a_rotated_secret_is_read_again_when_a_signature_fails_at_most_once_an_interval() {
    use realtime::connection::auth::AuthError;
    use realtime::memory::MemorySecrets;
    use realtime::runtime::config::{self, Config};
    use realtime::runtime::wiring::Wiring;
    use std::sync::Arc;
    use std::time::Duration;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt";
    const DB_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db";
    let first = "a-first-secret-of-at-least-thirty-two-bytes";
    let second = "a-second-secret-of-at-least-thirty-two-bytes";
    let secrets = Arc::new(MemorySecrets::default());
    secrets.set(ARN, first);
    secrets.set(DB_ARN, "postgres://u:p@db.internal/devhive");
    let env = Config::default()
        .with(config::JWT_SECRET_ARN, ARN)
        .with(config::DATABASE_URL_SECRET_ARN, DB_ARN)
        .with(config::MEMBERSHIP, "none");
    let wiring = Wiring::new(&env)
        .with_secrets(secrets.clone())
        .with_store(Arc::new(realtime::memory::MemoryStore::default()));
    let resolved = wiring.config().await.unwrap();
    assert_eq!(resolved.get(config::JWT_SECRET), Some(first));
    assert_eq!(
        resolved.get(config::DATABASE_URL).unwrap(),
        "postgres://u:p@db.internal/devhive"
    );
    assert_eq!(secrets.reads(), 2, "each secret read once at start");
    let connect = wiring.connect().await.unwrap();
    let user = Uuid::new_v4();
    let token_with = |secret: &str| {
        sign_with(
            Algorithm::HS256,
            secret.as_bytes(),
            &with(good_claims(), "sub", json!(user)),
        )
    };
    let auth = &connect.authenticator;
    assert_eq!(
        auth.authenticate_current(&token_with(first))
            .await
            .unwrap()
            .user,
        user
    );

    // Rotated: within the interval, no re-read (a forged token cannot make it read).
    secrets.set(ARN, second);
    for _ in 0..50 {
        assert!(
            auth.authenticate_current(&token_with(second))
                .await
                .is_err()
        );
    }
    assert_eq!(secrets.reads(), 2, "no re-read within the interval");

    // Once the interval has passed: one re-read, then the new secret verifies.
    let config = JwtConfig {
        secret: first.as_bytes().to_vec(),
        issuer: None,
        audience: None,
    };
    let quick = Authenticator::new(&config)
        .rotating(secrets.clone(), ARN)
        .with_reread_interval(Duration::ZERO);
    assert_eq!(
        quick
            .authenticate_current(&token_with(second))
            .await
            .unwrap()
            .user,
        user
    );
    assert_eq!(secrets.reads(), 3);
    match quick
        .authenticate_current(&token_with("a-forged-secret-of-at-least-thirty-two-bytes"))
        .await
    {
        Err(e @ AuthError::BadSignature) => {
            assert_eq!(e.to_string(), "invalid token: bad signature")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(secrets.reads(), 4, "a failed signature re-reads once");
}

/// A secret that cannot be read fails the start, naming the variable.
#[tokio::test]
async fn an_unreadable_secret_fails_the_start_naming_its_variable() {
    use realtime::memory::MemorySecrets;
    use realtime::runtime::config::{self, Config};
    use realtime::runtime::wiring::Wiring;
    let wiring = Wiring::new(&Config::default().with(config::JWT_SECRET_ARN, "arn:missing"))
        .with_secrets(std::sync::Arc::new(MemorySecrets::default()));
    let err = wiring.config().await.unwrap_err().to_string();
    assert!(
        err.contains("cannot read JWT_SECRET_ARN (arn:missing): no secret arn:missing"),
        "{err}"
    );
}
