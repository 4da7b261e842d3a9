//! A connection's life: who connects ([`auth`]), whether they may open a project
//! ([`membership`]), where open connections are kept ([`store`]), the routes from `$connect`
//! to `$disconnect` ([`lifecycle`]), and who is connected now ([`status`]).

pub mod auth;
pub mod lifecycle;
pub mod membership;
pub mod status;
pub mod store;
