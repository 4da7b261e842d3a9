//! Who may open a project: the `Membership` port (DESIGN "Membership").
//!
//! Production checks `project_members` in Postgres; a database error denies (fail closed).
//! [`AllowAll`] turns checks off and is only ever built from an explicit `MEMBERSHIP=none`;
//! The in-memory [`MemberList`](crate::memory::MemberList) serves tests (feature `dev`).

use async_trait::async_trait;
use uuid::Uuid;

use crate::settings::{ConfigError, DATABASE_URL, Env, Settings};

/// `postgres` (the default with a `DATABASE_URL`) or `none` (no checks).
pub const MEMBERSHIP: &str = "MEMBERSHIP";

/// How membership in a project is checked (membership's [`Settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipMode {
    /// `project_members` in Postgres at this URL.
    Postgres { database_url: String },
    /// No checks: every authenticated user may open every project. Explicit only.
    AllowAll,
}

impl Settings for MembershipMode {
    const VARIABLES: &'static [&'static str] = &[MEMBERSHIP, DATABASE_URL];

    /// `postgres` is the default whenever a database URL is set; `none` must be said
    /// explicitly; neither is an error.
    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        match (env.var(MEMBERSHIP), env.var(DATABASE_URL)) {
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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("membership check unavailable: {0}")]
pub struct MembershipError(pub String);

#[async_trait]
pub trait Membership: Send + Sync {
    /// Is `user_id` a member of `project_id`? An error means "could not tell": callers deny.
    async fn is_member(&self, project_id: Uuid, user_id: Uuid) -> Result<bool, MembershipError>;
}

/// No membership checks (`MEMBERSHIP=none`). Says so in a warning every time it is built.
pub struct AllowAll(());

impl AllowAll {
    pub fn new() -> Self {
        tracing::warn!(
            membership = "none",
            "membership checks are OFF: every authenticated user may open every project"
        );
        AllowAll(())
    }
}

impl Default for AllowAll {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Membership for AllowAll {
    async fn is_member(&self, _project_id: Uuid, _user_id: Uuid) -> Result<bool, MembershipError> {
        Ok(true)
    }
}
