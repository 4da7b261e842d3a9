//! The per-user and per-connection bounds of DESIGN "Connection life", with their defaults:
//! what `$connect` and the message routes count against (README "Limits").

use crate::connection::store::MessageRate;

/// Open connections one user may hold unless configured otherwise (`MAX_CONNECTIONS_PER_USER`).
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 20;

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
