//! The per-user and per-connection bounds of DESIGN "Connection life", with their defaults:
//! what `$connect` and the message routes count against (DESIGN "Limits").

use crate::connection::store::MessageRate;
use crate::settings::{Bounded, ConfigError, Env, Settings};

/// Open connections one user may hold unless configured otherwise (`MAX_CONNECTIONS_PER_USER`).
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 20;
/// Read by `$connect`: open connections per user (1..=1000).
pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
/// Read by the message routes: messages a second per connection (1..=1000, bursts of twice
/// that).
pub const CLIENT_MESSAGE_RATE: &str = "CLIENT_MESSAGE_RATE";

/// The per-user and per-connection bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MAX_CONNECTIONS_PER_USER`: the next `$connect` gets 429.
    pub max_connections_per_user: usize,
    /// `CLIENT_MESSAGE_RATE`: past it a message gets `rate_limited` and is dropped.
    pub message_rate: MessageRate,
    /// `$connect`s one user may make: past it the next one gets 429.
    pub connect_rate: MessageRate,
}

/// `$connect`s per user: twice as many at once as the user may hold connections (every tab
/// reconnecting after a blip, and again), then one a second.
pub fn connect_rate(max_connections_per_user: usize) -> MessageRate {
    MessageRate {
        per_second: 1,
        burst: u32::try_from(max_connections_per_user.max(1).saturating_mul(2)).unwrap_or(u32::MAX),
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_user: DEFAULT_MAX_CONNECTIONS_PER_USER,
            message_rate: MessageRate::default(),
            connect_rate: connect_rate(DEFAULT_MAX_CONNECTIONS_PER_USER),
        }
    }
}

/// `$connect`'s settings: `MAX_CONNECTIONS_PER_USER` (1..=1000, default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectSettings {
    pub max_connections_per_user: usize,
}

impl Settings for ConnectSettings {
    const VARIABLES: &'static [&'static str] = &[MAX_CONNECTIONS_PER_USER];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        const MAX: Bounded = Bounded::new(
            MAX_CONNECTIONS_PER_USER,
            DEFAULT_MAX_CONNECTIONS_PER_USER,
            1,
            1000,
        );
        Ok(ConnectSettings {
            max_connections_per_user: MAX.read(env)?,
        })
    }
}

impl ConnectSettings {
    /// The bounds `$connect` counts against: the connections held and the `$connect` rate.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections_per_user: self.max_connections_per_user,
            connect_rate: connect_rate(self.max_connections_per_user),
            ..Limits::default()
        }
    }
}

/// The message routes' settings: `CLIENT_MESSAGE_RATE` (1..=1000 a second, default 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSettings {
    pub message_rate: MessageRate,
}

impl Settings for MessageSettings {
    const VARIABLES: &'static [&'static str] = &[CLIENT_MESSAGE_RATE];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        const RATE: Bounded = Bounded::new(
            CLIENT_MESSAGE_RATE,
            MessageRate::DEFAULT_PER_SECOND as usize,
            1,
            1000,
        );
        Ok(MessageSettings {
            message_rate: MessageRate::per_second(RATE.read(env)? as u32),
        })
    }
}

impl MessageSettings {
    /// The bounds the message routes count against.
    pub fn limits(&self) -> Limits {
        Limits {
            message_rate: self.message_rate,
            ..Limits::default()
        }
    }
}
