//! Who may open a project: the `Membership` port (DESIGN "Membership").
//!
//! Production checks `project_members` in Postgres; a database error denies (fail closed).
//! [`AllowAll`] turns checks off and is only ever built from an explicit `MEMBERSHIP=none`;
//! [`MemberList`] is a fixed in-memory list for tests.

use std::collections::HashSet;
use std::sync::RwLock;

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

/// A fixed list of (project, user) pairs; `fail` makes every check an error.
#[derive(Default)]
pub struct MemberList {
    members: RwLock<HashSet<(Uuid, Uuid)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemberList {
    pub fn new(members: impl IntoIterator<Item = (Uuid, Uuid)>) -> Self {
        MemberList {
            members: RwLock::new(members.into_iter().collect()),
            failing: Default::default(),
        }
    }

    pub fn add(&self, project_id: Uuid, user_id: Uuid) {
        self.members
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((project_id, user_id));
    }

    /// Make every check fail as a broken database would.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Membership for MemberList {
    async fn is_member(&self, project_id: Uuid, user_id: Uuid) -> Result<bool, MembershipError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MembershipError("member list set to fail".into()));
        }
        Ok(self
            .members
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(project_id, user_id)))
    }
}
