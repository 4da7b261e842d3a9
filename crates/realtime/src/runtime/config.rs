//! The one place that reads the environment (DESIGN "Configuration").
//!
//! [`Config::from_env`] reads every variable once. Each accessor names the variable it is
//! missing, so a function fails at start with one clear line, and a function that does not use
//! a component does not need its variables. Components are built from it in
//! [`crate::runtime::wiring`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::connection::auth::{JwtConfig, MIN_SECRET_BYTES};
use crate::connection::store::MessageRate;

pub const CONNECTIONS_TABLE: &str = "CONNECTIONS_TABLE";
pub const JWT_SECRET: &str = "JWT_SECRET";
pub const JWT_ISSUER: &str = "JWT_ISSUER";
pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";
pub use realtime_client::sdk::BROADCASTER_FUNCTION_NAME;
pub const DATABASE_URL: &str = "DATABASE_URL";
/// Secrets Manager secrets holding `JWT_SECRET` and `DATABASE_URL` (read at cold start).
pub const JWT_SECRET_ARN: &str = "JWT_SECRET_ARN";
pub const DATABASE_URL_SECRET_ARN: &str = "DATABASE_URL_SECRET_ARN";
/// Where and under which names metrics go (EMF namespace; the `Stack` dimension).
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
pub const STACK_NAME: &str = "STACK_NAME";
pub const MEMBERSHIP: &str = "MEMBERSHIP";
pub const BROADCAST_CONCURRENCY: &str = "BROADCAST_CONCURRENCY";
pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
pub const CLIENT_MESSAGE_RATE: &str = "CLIENT_MESSAGE_RATE";
pub const RELAY_CONCURRENCY: &str = "RELAY_CONCURRENCY";
pub const EVENTS_TABLE: &str = "EVENTS_TABLE";
pub const EVENT_RETENTION_S: &str = "EVENT_RETENTION_S";
pub const RELAY_POLL_MS: &str = "RELAY_POLL_MS";
pub const PRESENCE_MAX_SUBSCRIBERS: &str = "PRESENCE_MAX_SUBSCRIBERS";
/// The SDK's own DynamoDB endpoint override; read here only to tell local runs apart.
pub const AWS_ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// Every variable the project reads (the SDK's own `AWS_*` and `RUST_LOG` aside).
pub const ALL_VARIABLES: &[&str] = &[
    CONNECTIONS_TABLE,
    JWT_SECRET,
    JWT_ISSUER,
    JWT_AUDIENCE,
    WEBSOCKET_ENDPOINT,
    BROADCASTER_FUNCTION_NAME,
    DATABASE_URL,
    JWT_SECRET_ARN,
    DATABASE_URL_SECRET_ARN,
    METRICS_NAMESPACE,
    STACK_NAME,
    MEMBERSHIP,
    BROADCAST_CONCURRENCY,
    MAX_CONNECTIONS_PER_USER,
    CLIENT_MESSAGE_RATE,
    RELAY_CONCURRENCY,
    RELAY_POLL_MS,
    EVENTS_TABLE,
    EVENT_RETENTION_S,
    PRESENCE_MAX_SUBSCRIBERS,
    AWS_ENDPOINT_URL_DYNAMODB,
];

/// A configuration problem, worded as the one line a function prints before it exits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    fn missing(var: &str, why: &str) -> Self {
        ConfigError(format!("{var} is not set ({why})"))
    }
}

/// How membership in a project is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipMode {
    /// `project_members` in Postgres at this URL.
    Postgres { database_url: String },
    /// No checks: every authenticated user may open every project. Explicit only.
    AllowAll,
}

/// The environment, read once.
#[derive(Debug, Clone, Default)]
pub struct Config {
    vars: HashMap<&'static str, String>,
    /// Every variable asked for, set or not (what a function needs; checked against template.yaml).
    asked: Arc<std::sync::Mutex<std::collections::BTreeSet<&'static str>>>,
}

impl Config {
    /// Read every variable of [`ALL_VARIABLES`] from the process environment. Empty values
    /// count as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Build from any lookup (tests, the dev server's defaults).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = ALL_VARIABLES
            .iter()
            .filter_map(|&name| {
                let value = lookup(name)?.trim().to_owned();
                (!value.is_empty()).then_some((name, value))
            })
            .collect();
        Config {
            vars,
            asked: Arc::default(),
        }
    }

    /// Return a copy with `name` set (the dev server fills in its defaults this way).
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.vars.insert(name, value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(known) = ALL_VARIABLES.iter().find(|v| **v == name) {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(known);
        }
        self.vars.get(name).map(String::as_str)
    }

    /// A variable's value without recording it as asked for (deciding whether a secret is
    /// to be read: the variables of what is not used are not needed).
    pub(crate) fn peek(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The variables asked for so far, by name.
    pub fn asked(&self) -> Vec<&'static str> {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }

    fn require(&self, name: &str, why: &str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::missing(name, why))
    }

    /// `CONNECTIONS_TABLE`: the DynamoDB table of DESIGN "Connections table".
    pub fn connections_table(&self) -> Result<&str, ConfigError> {
        self.require(CONNECTIONS_TABLE, "the DynamoDB connections table name")
    }

    /// `JWT_SECRET` (+ optional `JWT_ISSUER`, `JWT_AUDIENCE`).
    pub fn jwt(&self) -> Result<JwtConfig, ConfigError> {
        let secret = self.require(JWT_SECRET, "the HS256 secret that signs user tokens")?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError(format!(
                "{JWT_SECRET} is too short ({} bytes; HS256 needs at least {MIN_SECRET_BYTES})",
                secret.len()
            )));
        }
        Ok(JwtConfig {
            secret: secret.as_bytes().to_vec(),
            issuer: self.get(JWT_ISSUER).map(str::to_owned),
            audience: self.get(JWT_AUDIENCE).map(str::to_owned),
        })
    }

    /// `MEMBERSHIP` and `DATABASE_URL`: `postgres` is the default whenever a database URL is
    /// set; `none` must be said explicitly; neither is an error.
    pub fn membership_mode(&self) -> Result<MembershipMode, ConfigError> {
        match (self.get(MEMBERSHIP), self.get(DATABASE_URL)) {
            (Some("none"), _) => Ok(MembershipMode::AllowAll),
            (Some("postgres") | None, Some(url)) => Ok(MembershipMode::Postgres {
                database_url: url.to_owned(),
            }),
            (Some("postgres"), None) => Err(ConfigError::missing(
                DATABASE_URL,
                "MEMBERSHIP=postgres needs it",
            )),
            (None, None) => Err(ConfigError(format!(
                "neither {DATABASE_URL} nor {MEMBERSHIP}=none is set: membership checks need a database, \
                 or must be turned off explicitly"
            ))),
            (Some(other), _) => Err(ConfigError(format!(
                "{MEMBERSHIP} must be \"postgres\" or \"none\", not {other:?}"
            ))),
        }
    }

    /// `WEBSOCKET_ENDPOINT`: the Management API base URL the broadcaster posts to.
    pub fn websocket_endpoint(&self) -> Result<&str, ConfigError> {
        let url = self.require(WEBSOCKET_ENDPOINT, "the API Gateway Management API URL, https://{api}.execute-api.{region}.amazonaws.com/{stage}")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "{WEBSOCKET_ENDPOINT} must be an http(s) URL, not {url:?}"
            )));
        }
        Ok(url)
    }

    /// `DATABASE_URL`, required (the relay and `migrate`).
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.require(
            DATABASE_URL,
            "the Postgres database with project_members and the notify triggers",
        )
    }

    /// `BROADCAST_CONCURRENCY`: posts in flight per broadcast (optional, 1..=10000).
    pub fn broadcast_concurrency(&self) -> Result<usize, ConfigError> {
        match self.get(BROADCAST_CONCURRENCY) {
            None => Ok(crate::delivery::fanout::DEFAULT_CONCURRENCY),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{BROADCAST_CONCURRENCY} must be a number from 1 to 10000, not {v:?}"
                    ))
                }),
        }
    }

    fn bounded(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        self.in_range(name, default, 1..=1000)
    }

    fn in_range(
        &self,
        name: &str,
        default: usize,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{name} must be a number from {} to {}, not {v:?}",
                        range.start(),
                        range.end()
                    ))
                }),
        }
    }

    /// `EVENTS_TABLE`: the DynamoDB events table (recovery); unset turns recovery off.
    pub fn events_table(&self) -> Option<String> {
        self.get(EVENTS_TABLE).map(str::to_owned)
    }

    /// `EVENT_RETENTION_S`: how long events are kept for recovery (60..=1,209,600, default
    /// 86,400).
    pub fn event_retention_s(&self) -> Result<i64, ConfigError> {
        let default = crate::delivery::events::DEFAULT_RETENTION_S as usize;
        Ok(self.in_range(EVENT_RETENTION_S, default, 60..=1_209_600)? as i64)
    }

    /// `RELAY_CONCURRENCY`: outbox claims in flight at once (1..=64, default 8).
    pub fn relay_concurrency(&self) -> Result<usize, ConfigError> {
        self.in_range(RELAY_CONCURRENCY, crate::relay::DEFAULT_CONCURRENCY, 1..=64)
    }

    /// `RELAY_POLL_MS`: how often the relay reads the outbox without a NOTIFY (10..=60000,
    /// default 1000).
    pub fn relay_poll(&self) -> Result<std::time::Duration, ConfigError> {
        let default = crate::relay::DEFAULT_POLL.as_millis() as usize;
        let ms = self.in_range(RELAY_POLL_MS, default, 10..=60_000)?;
        Ok(std::time::Duration::from_millis(ms as u64))
    }

    /// `MAX_CONNECTIONS_PER_USER` (1..=1000, default 20): read by `$connect`.
    pub fn max_connections_per_user(&self) -> Result<usize, ConfigError> {
        self.bounded(
            MAX_CONNECTIONS_PER_USER,
            crate::connection::lifecycle::DEFAULT_MAX_CONNECTIONS_PER_USER,
        )
    }

    /// `PRESENCE_MAX_SUBSCRIBERS` (0..=10000, default 100): projects with more live connections
    /// get no presence or typing frames and no `online` list; 0 turns presence and typing off.
    /// Read by the message routes, `$disconnect` and the broadcaster.
    pub fn presence_max_subscribers(&self) -> Result<usize, ConfigError> {
        self.in_range(
            PRESENCE_MAX_SUBSCRIBERS,
            crate::delivery::presence::DEFAULT_MAX_SUBSCRIBERS,
            0..=10_000,
        )
    }

    /// `CLIENT_MESSAGE_RATE`: messages a second per connection (1..=1000, default 10;
    /// bursts of twice that). Read by the message routes.
    pub fn message_rate(&self) -> Result<MessageRate, ConfigError> {
        let default = MessageRate::default().per_second as usize;
        Ok(MessageRate::per_second(
            self.bounded(CLIENT_MESSAGE_RATE, default)? as u32,
        ))
    }

    /// `BROADCASTER_FUNCTION_NAME`: the function the relay invokes (required by `Wiring::relay`).
    pub fn broadcaster_function_name(&self) -> Option<&str> {
        self.get(BROADCASTER_FUNCTION_NAME)
    }
}

/// Shared AWS SDK configuration as Lambda provides it (`realtime_client::sdk::env_sdk_config`:
/// the variables Lambda sets, no credential chain linked). A host with other credentials (the
/// relay on ECS or EC2) gives its own configuration to
/// [`crate::runtime::wiring::Wiring::with_sdk`].
pub use realtime_client::sdk::env_sdk_config as sdk_config;

/// Unwrap a start-up result, or log the reason as one JSON line and exit with status 1.
/// Call [`crate::runtime::telemetry::init`] first.
pub fn or_exit<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn missing_variables_are_named() {
        let empty = config(&[]);
        assert!(
            empty
                .connections_table()
                .unwrap_err()
                .to_string()
                .contains("CONNECTIONS_TABLE")
        );
        assert!(empty.jwt().unwrap_err().to_string().contains("JWT_SECRET"));
        let blank = config(&[(CONNECTIONS_TABLE, "  ")]);
        assert!(blank.connections_table().is_err(), "blank counts as unset");
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = config(&[(JWT_SECRET, "short")])
            .jwt()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_SECRET") && err.contains("too short"),
            "{err}"
        );
        let jwt = config(&[(JWT_SECRET, SECRET), (JWT_ISSUER, "iss")])
            .jwt()
            .unwrap();
        assert_eq!(
            (jwt.issuer.as_deref(), jwt.audience.as_deref()),
            (Some("iss"), None)
        );
    }

    #[test]
    fn limits_default_and_refuse_nonsense() {
        let empty = config(&[]);
        assert_eq!(empty.max_connections_per_user(), Ok(20));
        let rate = empty.message_rate().unwrap();
        assert_eq!((rate.per_second, rate.burst), (10, 20));
        let set = config(&[(MAX_CONNECTIONS_PER_USER, "3"), (CLIENT_MESSAGE_RATE, "5")]);
        assert_eq!(set.max_connections_per_user(), Ok(3));
        assert_eq!(set.message_rate().unwrap().burst, 10);
        assert_eq!(config(&[]).presence_max_subscribers(), Ok(100));
        assert_eq!(
            config(&[(PRESENCE_MAX_SUBSCRIBERS, "0")]).presence_max_subscribers(),
            Ok(0)
        );
        let err = config(&[(PRESENCE_MAX_SUBSCRIBERS, "10001")])
            .presence_max_subscribers()
            .unwrap_err();
        assert!(err.to_string().contains(PRESENCE_MAX_SUBSCRIBERS), "{err}");
        for bad in ["0", "-1", "lots", "1001"] {
            let err = config(&[(CLIENT_MESSAGE_RATE, bad)])
                .message_rate()
                .unwrap_err();
            assert!(err.to_string().contains(CLIENT_MESSAGE_RATE), "{err}");
            let err = config(&[(MAX_CONNECTIONS_PER_USER, bad)])
                .max_connections_per_user()
                .unwrap_err();
            assert!(err.to_string().contains(MAX_CONNECTIONS_PER_USER), "{err}");
        }
    }

    #[test]
    fn membership_is_postgres_with_a_database_and_never_off_by_default() {
        let url = "postgres://db/devhive";
        let pg = MembershipMode::Postgres {
            database_url: url.into(),
        };
        assert_eq!(
            config(&[(DATABASE_URL, url)]).membership_mode(),
            Ok(pg.clone())
        );
        assert_eq!(
            config(&[(DATABASE_URL, url), (MEMBERSHIP, "postgres")]).membership_mode(),
            Ok(pg)
        );
        assert_eq!(
            config(&[(MEMBERSHIP, "none")]).membership_mode(),
            Ok(MembershipMode::AllowAll)
        );
        assert_eq!(
            config(&[(DATABASE_URL, url), (MEMBERSHIP, "none")]).membership_mode(),
            Ok(MembershipMode::AllowAll)
        );
        let neither = config(&[]).membership_mode().unwrap_err().to_string();
        assert!(
            neither.contains("DATABASE_URL") && neither.contains("MEMBERSHIP=none"),
            "{neither}"
        );
        assert!(
            config(&[(MEMBERSHIP, "postgres")])
                .membership_mode()
                .unwrap_err()
                .to_string()
                .contains("DATABASE_URL")
        );
        assert!(
            config(&[(MEMBERSHIP, "maybe")])
                .membership_mode()
                .unwrap_err()
                .to_string()
                .contains("MEMBERSHIP")
        );
    }
}
