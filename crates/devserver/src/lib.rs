//! The local API Gateway: a real WebSocket endpoint and a real Management API in front of the
//! very handlers the Lambdas run (`realtime::runtime::handlers`, built by the same wiring).
//!
//! `sam local` cannot run WebSocket APIs, so this is how the system runs on a laptop and in
//! tests: every upgrade becomes the `$connect` event API Gateway would send, every frame a
//! message event, every close a `$disconnect`; `POST /@connections/{id}` reaches the socket the
//! way `PostToConnection` does, so AWS SDK clients work against it unchanged.

pub mod cli;
pub mod console;
pub mod cors;
pub mod events;
pub mod faults;
pub mod gateway;
pub mod guard;
pub mod hosts;
pub mod lambda_api;
pub mod management;
pub mod not_found;
pub mod server;
pub mod state;
pub mod tls;
pub mod ws;

pub use server::{DevServer, Running};
