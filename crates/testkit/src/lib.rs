//! Test and benchmark support, kept out of everything that ships: a local Lambda Runtime API
//! ([`runtime_api`]) that runs the real function binaries as the Lambda service would.

pub mod runtime_api;
