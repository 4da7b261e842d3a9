//! Wire formats: what clients send and receive ([`client`]), the events fanned out to them
//! ([`events`]), and the broadcaster's invocation payload ([`invocation`]). The typed event
//! names and the payload limit are `realtime-client`'s, re-exported here: one definition.

pub mod client;
pub mod events;
pub mod invocation;
