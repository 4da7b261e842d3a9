//! A fixed in-memory `Membership`: the (project, user) pairs tests need, and a switch that
//! makes every check fail as a broken database would (fail closed is tested with it).

use std::collections::HashSet;
use std::sync::RwLock;

use async_trait::async_trait;
use uuid::Uuid;

use crate::connection::membership::{Membership, MembershipError};

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

    pub fn remove(&self, project_id: Uuid, user_id: Uuid) {
        self.members
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(project_id, user_id));
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
