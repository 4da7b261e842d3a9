//! What one client message is handled with: the ports, and the route and connection it came on.
//! Each message's module takes it (see `message.rs` for the dispatch).

use crate::connection::auth::Authenticator;
use crate::connection::membership::Membership;
use crate::connection::store::ConnectionStore;
use crate::delivery::events::EventStore;
use crate::delivery::presence::Presence;

pub(super) struct Context<'a> {
    pub store: &'a dyn ConnectionStore,
    pub events: Option<&'a dyn EventStore>,
    pub presence: Option<&'a Presence>,
    pub membership: &'a dyn Membership,
    pub authenticator: &'a Authenticator,
    pub route: &'a str,
    pub connection_id: &'a str,
}
