//! Who may open a project: the `Membership` port (DESIGN "Membership").
//!
//! Production checks `project_members` in Postgres; a database error denies (fail closed).
//! [`AllowAll`] turns checks off and is only ever built from an explicit `MEMBERSHIP=none`;
//! The in-memory [`MemberList`](crate::memory::MemberList) serves tests (feature `dev`).

use async_trait::async_trait;
use uuid::Uuid;

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
