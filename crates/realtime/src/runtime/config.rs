//! The one place that reads the environment (DESIGN "Configuration").
//!
//! [`Config::from_env`] reads every variable once; each component's [`Settings`] says which
//! variables it reads, their defaults and valid values, and [`Config::read`] maps the
//! environment onto them. A missing or invalid value is one line naming its variable, so a
//! function fails at start, and a function that does not use a component does not need its
//! variables. Components are built from their settings in [`crate::runtime::wiring`].

use std::collections::HashMap;
use std::sync::Arc;

pub use crate::aws::dynamo::CONNECTIONS_TABLE;
pub use crate::aws::management_api::WEBSOCKET_ENDPOINT;
pub use crate::connection::auth::{JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET};
pub use crate::connection::lifecycle::{CLIENT_MESSAGE_RATE, MAX_CONNECTIONS_PER_USER};
pub use crate::connection::membership::{MEMBERSHIP, MembershipMode};
pub use crate::delivery::events::{EVENT_RETENTION_S, EVENTS_TABLE};
pub use crate::delivery::fanout::BROADCAST_CONCURRENCY;
pub use crate::delivery::presence::PRESENCE_MAX_SUBSCRIBERS;
pub use crate::metrics::{METRICS_NAMESPACE, STACK_NAME};
pub use crate::relay::{BROADCASTER_FUNCTION_NAME, RELAY_CONCURRENCY, RELAY_POLL_MS};
pub use crate::settings::{ConfigError, DATABASE_URL, Env, Settings};

/// Secrets Manager secrets holding `JWT_SECRET` and `DATABASE_URL` (read at cold start by
/// [`crate::runtime::secrets`]): where a value comes from, not a component's setting.
pub const JWT_SECRET_ARN: &str = "JWT_SECRET_ARN";
pub const DATABASE_URL_SECRET_ARN: &str = "DATABASE_URL_SECRET_ARN";
/// The SDK's own DynamoDB endpoint override; read here only to tell local runs apart.
pub const AWS_ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// Every variable the project reads (the SDK's own `AWS_*` and `RUST_LOG` aside): each
/// component's [`Settings::VARIABLES`] and the three above (a test checks that none is left
/// out).
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

    /// A component's settings, read from this environment.
    pub fn read<S: Settings>(&self) -> Result<S, ConfigError> {
        S::read(self)
    }
}

impl Env for Config {
    fn var(&self, name: &'static str) -> Option<&str> {
        self.get(name)
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
    use crate::connection::auth::JwtConfig;
    use crate::connection::lifecycle::{ConnectSettings, MessageSettings};
    use crate::delivery::{events, fanout, presence};

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn every_component_variable_is_read_from_the_environment() {
        let components: &[&[&str]] = &[
            crate::aws::dynamo::Settings::VARIABLES,
            crate::aws::management_api::Settings::VARIABLES,
            JwtConfig::VARIABLES,
            MembershipMode::VARIABLES,
            ConnectSettings::VARIABLES,
            MessageSettings::VARIABLES,
            events::Settings::VARIABLES,
            fanout::Settings::VARIABLES,
            presence::Settings::VARIABLES,
            crate::metrics::Settings::VARIABLES,
            crate::relay::Settings::VARIABLES,
        ];
        for name in components.iter().flat_map(|vars| vars.iter()) {
            assert!(
                ALL_VARIABLES.contains(name),
                "{name} is not in ALL_VARIABLES"
            );
            let set = config(&[(name, "1")]);
            assert_eq!(set.get(name), Some("1"), "{name} is not read");
        }
    }

    #[test]
    fn missing_variables_are_named() {
        let empty = config(&[]);
        let table = empty.read::<crate::aws::dynamo::Settings>().unwrap_err();
        assert!(table.to_string().contains("CONNECTIONS_TABLE"), "{table}");
        let jwt = empty.read::<JwtConfig>().unwrap_err();
        assert!(jwt.to_string().contains("JWT_SECRET"), "{jwt}");
        let blank = config(&[(CONNECTIONS_TABLE, "  ")]);
        assert!(
            blank.read::<crate::aws::dynamo::Settings>().is_err(),
            "blank counts as unset"
        );
        let relay = config(&[(DATABASE_URL, "postgres://db")]).read::<crate::relay::Settings>();
        let relay = relay.unwrap_err().to_string();
        assert!(relay.contains(BROADCASTER_FUNCTION_NAME), "{relay}");
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = config(&[(JWT_SECRET, "short")])
            .read::<JwtConfig>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("JWT_SECRET") && err.contains("too short"),
            "{err}"
        );
        let jwt = config(&[(JWT_SECRET, SECRET), (JWT_ISSUER, "iss")])
            .read::<JwtConfig>()
            .unwrap();
        assert_eq!(
            (jwt.issuer.as_deref(), jwt.audience.as_deref()),
            (Some("iss"), None)
        );
    }

    #[test]
    fn limits_default_and_refuse_nonsense() {
        let empty = config(&[]);
        let connect = empty.read::<ConnectSettings>().unwrap();
        assert_eq!(connect.max_connections_per_user, 20);
        let rate = empty.read::<MessageSettings>().unwrap().message_rate;
        assert_eq!((rate.per_second, rate.burst), (10, 20));
        let set = config(&[(MAX_CONNECTIONS_PER_USER, "3"), (CLIENT_MESSAGE_RATE, "5")]);
        assert_eq!(
            set.read::<ConnectSettings>()
                .unwrap()
                .max_connections_per_user,
            3
        );
        assert_eq!(
            set.read::<MessageSettings>().unwrap().message_rate.burst,
            10
        );
        let presence = |vars: &[(&str, &str)]| config(vars).read::<presence::Settings>();
        assert_eq!(presence(&[]).unwrap().max_subscribers, 100);
        assert_eq!(
            presence(&[(PRESENCE_MAX_SUBSCRIBERS, "0")])
                .unwrap()
                .max_subscribers,
            0
        );
        let err = presence(&[(PRESENCE_MAX_SUBSCRIBERS, "10001")]).unwrap_err();
        assert!(err.to_string().contains(PRESENCE_MAX_SUBSCRIBERS), "{err}");
        for bad in ["0", "-1", "lots", "1001"] {
            let err = config(&[(CLIENT_MESSAGE_RATE, bad)])
                .read::<MessageSettings>()
                .unwrap_err();
            assert!(err.to_string().contains(CLIENT_MESSAGE_RATE), "{err}");
            let err = config(&[(MAX_CONNECTIONS_PER_USER, bad)])
                .read::<ConnectSettings>()
                .unwrap_err();
            assert!(err.to_string().contains(MAX_CONNECTIONS_PER_USER), "{err}");
        }
        let fanout = config(&[(BROADCAST_CONCURRENCY, "10001")]).read::<fanout::Settings>();
        assert!(
            fanout
                .unwrap_err()
                .to_string()
                .contains(BROADCAST_CONCURRENCY)
        );
        let events = config(&[(EVENT_RETENTION_S, "59")]).read::<events::Settings>();
        assert!(events.unwrap_err().to_string().contains(EVENT_RETENTION_S));
        let endpoint = config(&[(WEBSOCKET_ENDPOINT, "wss://x")])
            .read::<crate::aws::management_api::Settings>();
        assert!(endpoint.unwrap_err().to_string().contains("http(s) URL"));
    }

    #[test]
    fn membership_is_postgres_with_a_database_and_never_off_by_default() {
        let url = "postgres://db/devhive";
        let pg = MembershipMode::Postgres {
            database_url: url.into(),
        };
        let mode = |vars: &[(&str, &str)]| config(vars).read::<MembershipMode>();
        assert_eq!(mode(&[(DATABASE_URL, url)]), Ok(pg.clone()));
        assert_eq!(
            mode(&[(DATABASE_URL, url), (MEMBERSHIP, "postgres")]),
            Ok(pg)
        );
        assert_eq!(mode(&[(MEMBERSHIP, "none")]), Ok(MembershipMode::AllowAll));
        assert_eq!(
            mode(&[(DATABASE_URL, url), (MEMBERSHIP, "none")]),
            Ok(MembershipMode::AllowAll)
        );
        let neither = mode(&[]).unwrap_err().to_string();
        assert!(
            neither.contains("DATABASE_URL") && neither.contains("MEMBERSHIP=none"),
            "{neither}"
        );
        assert!(
            mode(&[(MEMBERSHIP, "postgres")])
                .unwrap_err()
                .to_string()
                .contains("DATABASE_URL")
        );
        assert!(
            mode(&[(MEMBERSHIP, "maybe")])
                .unwrap_err()
                .to_string()
                .contains("MEMBERSHIP")
        );
    }
}
