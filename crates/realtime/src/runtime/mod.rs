//! Running the library: the environment read once ([`config`]), the one wiring from
//! configuration to handlers ([`wiring`]), the Lambda entry points ([`handlers`]) and the
//! deadline they work to ([`deadline`]), and JSON logs ([`telemetry`]).

pub mod config;
pub mod deadline;
pub mod handlers;
pub mod secrets;
pub mod telemetry;
pub mod wiring;
