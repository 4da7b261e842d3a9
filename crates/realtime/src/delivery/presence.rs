//! Presence and typing (DESIGN "Presence, typing, direct messages"): a project's other
//! connections are told when a user's first connection subscribes to it or the last one leaves,
//! and when someone types; neither is stored nor numbered.
//!
//! A user is one presence however many tabs: whether the user still has another connection in
//! the project is read from the user index and confirmed item by item with strongly consistent
//! reads, so a tab that left a moment ago (still in the index) does not keep the user online.
//!
//! One user cannot flood a project: the state last announced is a record (one conditional
//! write picks the one handler that tells a change), and a user's presence changes and typing
//! frames each have a rate ([`PRESENCE_RATE`], [`TYPING_RATE`]), so one token causes at most
//! about 200 posts a second after a burst (docs/design.md "Limits").
//!
//! Nothing here waits: a Lambda that sleeps is billed for it and holds the account's
//! concurrency. A connection that closes is announced offline at once when it was the user's
//! last in the project; the receivers debounce it (`clients/web` shows an `offline` only when
//! no `online` follows within 3 s), so a reload is not shown as leaving and coming back
//! (DESIGN "Presence, typing, direct messages").
//!
//! Why a bound: each change is one post to every other connection of the project, so N users
//! arriving together cost about N²/2 posts. A project with more than
//! [`DEFAULT_MAX_SUBSCRIBERS`] (`PRESENCE_MAX_SUBSCRIBERS`) live connections gets no presence or
//! typing frames and no `online` list; the status endpoint still says who is there
//! (BENCHMARKS.md "Presence").

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use uuid::Uuid;

use crate::connection::store::{MessageRate, StoreError, Subscriber};
use crate::delivery::fanout::{Delivered, FanOut};
use crate::settings::{Bounded, ConfigError, Env};
use crate::time::{EpochMs, EpochSecs};
use crate::wire::events::{presence_frame, typing_frame};

/// Live connections past which a project has no presence or typing (`PRESENCE_MAX_SUBSCRIBERS`).
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 100;
/// Read by the message routes, `$connect`, `$disconnect`, the broadcaster and the sweeper
/// (0..=10000; 0 turns presence and typing off).
pub const PRESENCE_MAX_SUBSCRIBERS: &str = "PRESENCE_MAX_SUBSCRIBERS";
/// At most one `typing` per connection per this window reaches the others.
pub const TYPING_WINDOW_MS: i64 = 2_000;
/// Arrivals (`online`) announced for one user, across every project: as many at once as the
/// user may have connections (`MAX_CONNECTIONS_PER_USER`'s default, so that a browser opening
/// every tab at once is announced whole), then one a second. An `offline` follows an announced
/// `online` and takes no token, so a user's changes are at most twice this. Each is one post
/// per connection of the project (up to the subscriber bound), so this is what bounds the
/// posts one user's churn can cause (docs/design.md "Limits").
pub const PRESENCE_RATE: MessageRate = MessageRate {
    per_second: 1,
    burst: crate::connection::lifecycle::DEFAULT_MAX_CONNECTIONS_PER_USER as u32,
};
/// `typing` frames told for one user, across every connection and project, on top of each
/// connection's [`TYPING_WINDOW_MS`]: two at once, then one a second (the rest are dropped).
pub const TYPING_RATE: MessageRate = MessageRate {
    per_second: 1,
    burst: 2,
};
/// How long presence and typing posts may take: they run inside a route's invocation.
pub const POST_BUDGET: Duration = Duration::from_secs(3);
/// Connections found gone while telling a change, followed up as leaving, per change.
const MAX_FOLLOW_UPS: usize = 64;

/// Presence over a fan-out (its store and sender).
pub struct Presence {
    fanout: Arc<FanOut>,
    max_subscribers: usize,
}

impl Presence {
    pub fn new(fanout: Arc<FanOut>, max_subscribers: usize) -> Self {
        Presence {
            fanout,
            max_subscribers: max_subscribers.max(1),
        }
    }

    /// The project's live subscribers, or `None` past the bound: one read of at most
    /// bound + 1 items, so a large project costs presence no more than a small one.
    async fn audience(&self, project: Uuid) -> Result<Option<Vec<Subscriber>>, StoreError> {
        let (sample, more) = self
            .fanout
            .store
            .project_sample(project, self.max_subscribers + 1)
            .await?;
        Ok((!more && sample.len() <= self.max_subscribers).then_some(sample))
    }

    /// Whether `user` has a live connection other than `except` subscribed to `project`.
    async fn elsewhere(
        &self,
        user: Uuid,
        project: Uuid,
        except: Option<&str>,
    ) -> Result<bool, StoreError> {
        let store = &*self.fanout.store;
        let now = EpochSecs::now();
        let mut pages = store.user_connections(user);
        while let Some(page) = pages.next().await {
            for s in page? {
                if except == Some(s.connection_id.as_str())
                    || s.project_id.is_some_and(|p| p != project)
                {
                    continue;
                }
                if let Some(c) = store.get(&s.connection_id).await?
                    && c.project_id == Some(project)
                    && !c.token_expired(now)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Take one of `user`'s presence tokens: `false` when the user is over [`PRESENCE_RATE`]
    /// (never waited for: the arrival is not announced, the record keeps the last announced
    /// state, and the others' next `subscribed` lists the user).
    async fn within_rate(&self, user: Uuid) -> Result<bool, StoreError> {
        let bucket = format!("presence#{user}");
        let wait = self
            .fanout
            .store
            .take_token(&bucket, PRESENCE_RATE, EpochMs::now())
            .await?;
        Ok(wait.is_none())
    }

    /// Announce `user` `online` (or offline) in `project` to its connections but
    /// `connection_id`, unless that is already the announced state; within the user's rate;
    /// once however many handlers see the change (the store's conditional write picks one).
    /// `audience` when the caller has read it. The connections found gone.
    async fn change(
        &self,
        connection_id: Option<&str>,
        user: Uuid,
        project: Uuid,
        online: bool,
        audience: Option<Vec<Subscriber>>,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let store = &*self.fanout.store;
        if store.announced_presence(project, user).await? == Some(online) {
            return Ok(Vec::new());
        }
        // Only arrivals take the rate: an offline is announced only after an online was, so
        // offlines are bounded by it too, and a user who leaves is never left shown online.
        if online && !self.within_rate(user).await? {
            tracing::warn!(connection_id, user_id = %user, project_id = %project, online, "presence changing faster than its rate; this change is not announced");
            return Ok(Vec::new());
        }
        if !store
            .announce_presence(project, user, online, EpochMs::now())
            .await?
        {
            return Ok(Vec::new());
        }
        let audience = match audience {
            Some(audience) => audience,
            None => match self.audience(project).await? {
                Some(audience) => audience,
                None => return Ok(Vec::new()),
            },
        };
        let state = if online { "online" } else { "offline" };
        tracing::info!(connection_id, user_id = %user, project_id = %project, state, "presence");
        let frame = presence_frame(project, user, online);
        Ok(self.post(audience, &frame, connection_id).await)
    }

    /// Post `frame` to `audience` but `except`; the connections found gone or expired.
    async fn post(
        &self,
        audience: Vec<Subscriber>,
        frame: &str,
        except: Option<&str>,
    ) -> Vec<Subscriber> {
        let deadline = Instant::now() + POST_BUDGET;
        let pages = futures::stream::iter([Ok(audience)]).boxed();
        match self
            .fanout
            .deliver(pages, frame.as_bytes(), except, deadline)
            .await
        {
            Ok(Delivered { summary, left }) => {
                tracing::debug!(
                    delivered = summary.delivered,
                    gone = summary.gone,
                    "presence posted"
                );
                left
            }
            Err(e) => {
                tracing::error!(error = %e, "presence not posted");
                Vec::new()
            }
        }
    }

    /// `connection_id` of `user` has just subscribed to `project`: tell the others if the user
    /// was not announced online there already (two tabs subscribing at once: one tells).
    /// `renewed`: the connection was subscribed to it already (a client re-subscribing to fill
    /// a gap), nobody is told. The `online` list for the `subscribed` reply (the user
    /// included), or `None` past the bound or when the store cannot say.
    pub async fn joined(
        &self,
        connection_id: &str,
        user: Uuid,
        project: Uuid,
        renewed: bool,
    ) -> Option<Vec<Uuid>> {
        let audience = match self.audience(project).await {
            Ok(Some(audience)) => audience,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(connection_id, project_id = %project, error = %e, "cannot list the project for presence");
                return None;
            }
        };
        // Connections whose token has expired receive nothing more: their users are not online.
        let now = EpochSecs::now();
        let mut online: BTreeSet<Uuid> = audience
            .iter()
            .filter(|s| s.token_exp > now)
            .map(|s| s.user_id)
            .collect();
        online.insert(user);
        if !renewed {
            match self
                .change(Some(connection_id), user, project, true, Some(audience))
                .await
            {
                Ok(gone) => self.follow_up(Some(project), gone).await,
                Err(e) => {
                    tracing::error!(connection_id, user_id = %user, project_id = %project, error = %e, "cannot tell whether the user was online; presence not sent")
                }
            }
        }
        Some(online.into_iter().collect())
    }

    /// `connection_id` of `user` has left `project` (unsubscribed, closed, revoked, expired or
    /// found gone): tell the others if it was the user's last there.
    pub async fn left(&self, connection_id: &str, user: Uuid, project: Uuid) {
        self.gone(Some(connection_id.to_owned()), user, project)
            .await
    }

    /// Every connection of `user` in `project` was just ended (their membership was revoked):
    /// tell the others if none is left there.
    pub async fn revoked(&self, user: Uuid, project: Uuid) {
        self.gone(None, user, project).await
    }

    /// [`Self::left`] of `connection_id` (or of none), then of the connections found gone
    /// while telling it, up to [`MAX_FOLLOW_UPS`].
    async fn gone(&self, connection_id: Option<String>, user: Uuid, project: Uuid) {
        let mut todo = vec![(connection_id, user, project)];
        let mut done = 0;
        while let Some((connection_id, user, project)) = todo.pop() {
            done += 1;
            let gone = self.offline(connection_id.as_deref(), user, project).await;
            if done < MAX_FOLLOW_UPS {
                todo.extend(
                    gone.into_iter()
                        .map(|s| (Some(s.connection_id), s.user_id, project)),
                );
            }
        }
    }

    /// [`Presence::follow_up`] ending at `deadline` (a fan-out's: its invocation must still
    /// return before Lambda's timeout); what is left untold is logged.
    pub async fn follow_up_until(
        &self,
        project: Option<Uuid>,
        left: Vec<Subscriber>,
        deadline: std::time::Instant,
    ) {
        let told = self.follow_up(project, left);
        if tokio::time::timeout_at(deadline.into(), told)
            .await
            .is_err()
        {
            tracing::warn!("no time left to tell presence of the connections found gone");
        }
    }

    /// The connections a fan-out found gone or expired have left their project (`project`
    /// when the index did not say; a connection subscribed to none tells nobody).
    pub async fn follow_up(&self, project: Option<Uuid>, left: Vec<Subscriber>) {
        for s in left.into_iter().take(MAX_FOLLOW_UPS) {
            if let Some(project) = s.project_id.or(project) {
                self.left(&s.connection_id, s.user_id, project).await;
            }
        }
    }

    async fn offline(
        &self,
        connection_id: Option<&str>,
        user: Uuid,
        project: Uuid,
    ) -> Vec<Subscriber> {
        let told = match self.elsewhere(user, project, connection_id).await {
            Ok(true) => return Vec::new(),
            Ok(false) => self.change(connection_id, user, project, false, None).await,
            Err(e) => Err(e),
        };
        told.unwrap_or_else(|e| {
            tracing::error!(connection_id, user_id = %user, project_id = %project, error = %e, "cannot tell whether the user is still online; presence not sent");
            Vec::new()
        })
    }

    /// Tell `project`'s other connections that `user` is typing (the window was already
    /// checked). Past the bound nothing is sent.
    pub async fn typing(
        &self,
        connection_id: &str,
        user: Uuid,
        project: Uuid,
    ) -> Result<(), StoreError> {
        let bucket = format!("typing#{user}");
        let now = EpochMs::now();
        if self
            .fanout
            .store
            .take_token(&bucket, TYPING_RATE, now)
            .await?
            .is_some()
        {
            tracing::debug!(connection_id, user_id = %user, "typing over the user's rate; dropped");
            return Ok(());
        }
        if let Some(audience) = self.audience(project).await? {
            let gone = self
                .post(audience, &typing_frame(project, user), Some(connection_id))
                .await;
            self.follow_up(Some(project), gone).await;
        }
        Ok(())
    }
}

/// Presence's settings: `PRESENCE_MAX_SUBSCRIBERS` (0..=10000, default
/// [`DEFAULT_MAX_SUBSCRIBERS`]): projects with more live connections get no presence or typing
/// frames and no `online` list; 0 turns presence and typing off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub max_subscribers: usize,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[PRESENCE_MAX_SUBSCRIBERS];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        const MAX: Bounded =
            Bounded::new(PRESENCE_MAX_SUBSCRIBERS, DEFAULT_MAX_SUBSCRIBERS, 0, 10_000);
        Ok(Settings {
            max_subscribers: MAX.read(env)?,
        })
    }
}
