//! The WebSocket connection lifecycle: `$connect`, `$disconnect`, and the message routes
//! (`subscribe`, `unsubscribe`, `ping`, `refresh`, `typing`, `subscribe_user`, `$default`).
//!
//! Authorization holds for the connection's whole life (DESIGN "Connection life"): `$connect`
//! stores the token's `exp`, every message but `refresh` is refused once it has passed, a
//! `refresh` moves it, `$connect` and subscribe re-check membership after their write so that
//! they cannot outlive a removal they raced, and the per-user and per-connection limits are
//! enforced here, with their state in the store, so every Lambda instance sees the same counts.
//!
//! These functions take and return API Gateway's own event types, so the Lambdas pass events
//! straight through and the dev server builds the same events from real sockets. Replies travel
//! as the route response body (two-way routes). Bad input gets an `error` frame or a 4xx, a log
//! line with the ids involved, and no store change.
//!
//! One module per route and per client message (parse → decide → reply), as mini-redis has one
//! per command; [`route`] holds what they share, [`limits`] the bounds they enforce.

mod connect;
mod context;
mod disconnect;
mod limits;
mod message;
mod refresh;
mod route;
mod subscribe;
mod subscribe_user;
mod typing;
mod unsubscribe;

pub use crate::recovery::Position;
pub use connect::on_connect;
pub use disconnect::on_disconnect;
pub use limits::{
    CLIENT_MESSAGE_RATE, ConnectSettings, DEFAULT_MAX_CONNECTIONS_PER_USER, Limits,
    MAX_CONNECTIONS_PER_USER, MessageSettings, connect_rate,
};
pub use message::on_message;
pub use route::{ROUTE_CONNECT, ROUTE_DEFAULT, ROUTE_DISCONNECT, check_member, response};
