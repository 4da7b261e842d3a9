//! Who is connecting: HS256 JWT validation and the two places a browser can put its token.
//!
//! The token travels either in the `token` query parameter or, to keep it out of URLs and
//! access logs, as the second entry of `Sec-WebSocket-Protocol: devhive, <jwt>`; in that case
//! the `$connect` response must select the `devhive` subprotocol or the browser drops the socket.

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::settings::{ConfigError, Env, Settings, required};
use crate::time::EpochSecs;

/// The HS256 secret that signs user tokens (at least [`MIN_SECRET_BYTES`]).
pub const JWT_SECRET: &str = "JWT_SECRET";
/// The `iss` a token must carry, when set.
pub const JWT_ISSUER: &str = "JWT_ISSUER";
/// The `aud` a token must carry, when set.
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";

/// The subprotocol name clients offer next to their token.
pub const SUBPROTOCOL: &str = "devhive";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The development secret: the default `JWT_SECRET` of the dev server and its `token` command,
/// and the key of the tokens in `tests/events/*.json`. Never deploy it.
#[cfg(feature = "dev")]
pub const DEV_JWT_SECRET: &str = "devhive-realtime-development-secret-do-not-deploy";
/// Shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key of at least the hash size.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// Where a secret's current value is read from (Secrets Manager; a map in tests): the JWT
/// secret is read again through it when it rotates.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret's current string value, or why it cannot be read.
    async fn secret(&self, id: &str) -> Result<String, String>;
}

/// The JWT settings (auth's [`Settings`]).
#[derive(Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub secret: Vec<u8>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Settings for JwtConfig {
    const VARIABLES: &'static [&'static str] = &[JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE];

    /// `JWT_SECRET` (required, at least [`MIN_SECRET_BYTES`]), `JWT_ISSUER` and `JWT_AUDIENCE`.
    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        let secret = required(env, JWT_SECRET, "the HS256 secret that signs user tokens")?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError(format!(
                "{JWT_SECRET} is too short ({} bytes; HS256 needs at least {MIN_SECRET_BYTES})",
                secret.len()
            )));
        }
        Ok(JwtConfig {
            secret: secret.as_bytes().to_vec(),
            issuer: env.var(JWT_ISSUER).map(str::to_owned),
            audience: env.var(JWT_AUDIENCE).map(str::to_owned),
        })
    }
}

/// Why a request is not authenticated. The text is safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "missing token: pass it as ?token=<jwt>, or offer the subprotocols [\"devhive\", <jwt>] (Sec-WebSocket-Protocol: devhive, <jwt>)"
    )]
    Missing,
    /// An HTTP request (the status endpoint) without `Authorization`.
    #[error("missing token: send it as Authorization: Bearer <jwt>")]
    MissingBearer,
    #[error("token too large")]
    TooLarge,
    #[error("token given twice with different values")]
    Conflicting,
    /// The signature does not verify (a forged token, or one signed with a rotated secret).
    #[error("invalid token: bad signature")]
    BadSignature,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Claims this service reads. Others are ignored. Shapes follow RFC 7519: dates may be
/// non-integer NumericDates, `aud` a string or an array (jsonwebtoken validates both; these
/// types only have to accept them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: NumericDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// RFC 7519 NumericDate: seconds since the epoch, integer or not; kept in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NumericDate(pub u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(d)?;
        if seconds.is_finite() && seconds >= 0.0 && seconds < u64::MAX as f64 {
            Ok(NumericDate(seconds as u64))
        } else {
            Err(serde::de::Error::custom("not a NumericDate"))
        }
    }
}

/// `aud`: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Where the token was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource<'a> {
    pub token: &'a str,
    /// The client offered the `devhive` subprotocol; the response must select it.
    pub select_subprotocol: bool,
}

/// A verified token: its user and its `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user: Uuid,
    pub expires_at: EpochSecs,
}

/// Shortest time between two re-reads of a rotating secret: a flood of forged tokens causes
/// at most one read a minute.
pub const SECRET_REREAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Verifies HS256 tokens against one secret (and issuer/audience when configured). With
/// [`Authenticator::rotating`], a token whose signature fails makes it re-read the secret (at
/// most once per [`SECRET_REREAD_INTERVAL`]) and try once more.
pub struct Authenticator {
    key: std::sync::RwLock<DecodingKey>,
    validation: Validation,
    rotation: Option<Rotation>,
}

struct Rotation {
    secrets: std::sync::Arc<dyn SecretStore>,
    id: String,
    interval: std::time::Duration,
    last_read: std::sync::Mutex<std::time::Instant>,
}

impl Authenticator {
    pub fn new(config: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience is also a required claim: jsonwebtoken checks the
        // value only when the claim is present.
        let mut required = vec!["exp", "sub"];
        match &config.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Authenticator {
            key: std::sync::RwLock::new(DecodingKey::from_secret(&config.secret)),
            validation,
            rotation: None,
        }
    }

    /// Re-read the secret `id` from `secrets` when a signature fails (the secret was read
    /// just now, at start).
    pub fn rotating(
        mut self,
        secrets: std::sync::Arc<dyn SecretStore>,
        id: impl Into<String>,
    ) -> Self {
        self.rotation = Some(Rotation {
            secrets,
            id: id.into(),
            interval: SECRET_REREAD_INTERVAL,
            last_read: std::sync::Mutex::new(std::time::Instant::now()),
        });
        self
    }

    /// Another interval between re-reads than [`SECRET_REREAD_INTERVAL`] (tests).
    pub fn with_reread_interval(mut self, interval: std::time::Duration) -> Self {
        if let Some(rotation) = &mut self.rotation {
            rotation.interval = interval;
        }
        self
    }

    /// [`Authenticator::authenticate`], re-reading a rotating secret once when the signature
    /// fails (the secret may have been rotated since it was read). What every route uses.
    pub async fn authenticate_current(&self, token: &str) -> Result<Identity, AuthError> {
        match self.authenticate(token) {
            Err(AuthError::BadSignature) if self.reread().await => self.authenticate(token),
            other => other,
        }
    }

    /// Read the rotating secret again, unless it was read within the interval; whether the
    /// key changed.
    async fn reread(&self) -> bool {
        let Some(rotation) = &self.rotation else {
            return false;
        };
        {
            let mut last = rotation.last_read.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < rotation.interval {
                return false;
            }
            *last = std::time::Instant::now();
        }
        match rotation.secrets.secret(&rotation.id).await {
            Ok(secret) if secret.len() >= MIN_SECRET_BYTES => {
                *self.key.write().unwrap_or_else(|p| p.into_inner()) =
                    DecodingKey::from_secret(secret.as_bytes());
                tracing::info!(secret = %rotation.id, "re-read the JWT secret after a signature failed");
                true
            }
            Ok(_) => {
                tracing::error!(secret = %rotation.id, "the rotated JWT secret is too short; keeping the current one");
                false
            }
            Err(error) => {
                tracing::warn!(secret = %rotation.id, %error, "cannot re-read the JWT secret");
                false
            }
        }
    }

    /// Validate `token` and return the user id (`sub`, which must be a UUID). For tests.
    #[cfg(feature = "dev")]
    pub fn verify(&self, token: &str) -> Result<Uuid, AuthError> {
        self.authenticate(token).map(|identity| identity.user)
    }

    /// Validate `token` and return who it names and until when.
    pub fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let data = {
            let key = self.key.read().unwrap_or_else(|p| p.into_inner());
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
        }
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::BadSignature,
            kind => AuthError::Invalid(describe(kind)),
        })?;
        let user = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| AuthError::Invalid("sub is not a UUID".into()))?;
        Ok(Identity {
            user,
            expires_at: EpochSecs(i64::try_from(data.claims.exp.0).unwrap_or(i64::MAX)),
        })
    }
}

fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not yet valid".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not allowed".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        K::Json(e) => match e.to_string().split('`').nth(1) {
            Some(field) if e.to_string().starts_with("missing field") => {
                format!("missing claim {field} (tokens need a UUID sub and an exp)")
            }
            _ => format!("unreadable claims: {e}"),
        },
        K::InvalidToken | K::Base64(_) | K::Utf8(_) => {
            "malformed: not a JWT (header.payload.signature, base64url)".into()
        }
        _ => "malformed".into(),
    }
}

/// Find the token in the query string or the `Sec-WebSocket-Protocol` header.
///
/// `query_token` is the `token` query parameter. The header form is `devhive, <jwt>`; a header
/// that offers `devhive` alone only asks for the subprotocol. Both places filled with different
/// tokens is refused.
pub fn token_from_request<'a>(
    query_token: Option<&'a str>,
    headers: &'a HeaderMap,
) -> Result<TokenSource<'a>, AuthError> {
    let mut select_subprotocol = false;
    let mut header_token = None;
    let mut other_subprotocols = false;
    if let Some(value) = headers.get(http::header::SEC_WEBSOCKET_PROTOCOL) {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Invalid("unreadable Sec-WebSocket-Protocol".into()))?;
        let mut offered = value.split(',').map(str::trim).filter(|s| !s.is_empty());
        other_subprotocols = !offered.clone().any(|p| p == SUBPROTOCOL);
        if !other_subprotocols {
            select_subprotocol = true;
            let mut others = offered.by_ref().filter(|p| *p != SUBPROTOCOL);
            header_token = others.next();
            if others.next().is_some() {
                return Err(AuthError::Invalid(
                    "more than one token in Sec-WebSocket-Protocol".into(),
                ));
            }
        }
    }
    let token = match (query_token, header_token) {
        (Some(q), Some(h)) if q != h => return Err(AuthError::Conflicting),
        (Some(q), _) => q,
        (None, Some(h)) => h,
        (None, None) if other_subprotocols => {
            return Err(AuthError::Invalid(
                "Sec-WebSocket-Protocol does not offer \"devhive\": offer [\"devhive\", <jwt>] \
                 (new WebSocket(url, [\"devhive\", jwt])) or pass ?token=<jwt>"
                    .into(),
            ));
        }
        (None, None) => return Err(AuthError::Missing),
    };
    Ok(TokenSource {
        token,
        select_subprotocol,
    })
}

/// The `Authorization: Bearer <jwt>` token of an HTTP request.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingBearer)?
        .to_str()
        .map_err(|_| AuthError::Invalid("unreadable Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::Invalid("expected a Bearer token".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid("expected a Bearer token".into()));
    }
    Ok(token.trim())
}

/// Sign a token for `user` valid for `ttl_seconds` (the dev server's `token` command and tests).
#[cfg(feature = "dev")]
pub fn mint(config: &JwtConfig, user: Uuid, ttl_seconds: u64) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user.to_string(),
        exp: NumericDate(now + ttl_seconds),
        nbf: None,
        iat: Some(NumericDate(now)),
        iss: config.issuer.clone(),
        aud: config.audience.clone().map(Audience::One),
    };
    mint_claims(&config.secret, &claims)
}

/// Sign arbitrary claims with HS256.
#[cfg(feature = "dev")]
pub fn mint_claims<T: Serialize>(secret: &[u8], claims: &T) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing with an HMAC key cannot fail")
}
