//! Fan-out: one event to every live connection of a project, as fast as API Gateway allows
//! and without ever evicting a connection that is merely slow.
//!
//! The project index is read page by page in one task while posts run in another, so posting
//! starts with the first page and memory holds at most a couple of pages. Posts run with
//! bounded concurrency. A 410 marks the connection gone (removed in batches at the end);
//! throttling, 5xx and timeouts are retried with full-jitter exponential backoff until the
//! invocation's deadline; every other outcome leaves the connection alone. A connection whose
//! token has expired gets `token_expired` and is closed instead of the event.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::connection::store::{ConnectionStore, Page, PageStream, StoreError, Subscriber};
use crate::delivery::revocation;
use crate::delivery::sender::{ConnectionSender, PostOutcome, Retries, post_until};
use crate::metrics::{DEFAULT_METRICS_NAMESPACE, LOCAL_STACK, Metrics};
use crate::settings::{Bounded, ConfigError, Env};
use crate::wire::invocation::Audience;

/// Posts in flight at once unless configured otherwise. Picked from the sweep in BENCHMARKS.md:
/// with API Gateway's ~20 ms round trip and its 10,000 requests/s account throttle, 400 reaches
/// 10,000 clients fastest (more only meets the throttle sooner) at ~35 MB peak memory.
pub const DEFAULT_CONCURRENCY: usize = 400;
/// Posts in flight per broadcast (1..=10000).
pub const BROADCAST_CONCURRENCY: &str = "BROADCAST_CONCURRENCY";
/// Pages read ahead of the posts.
const PAGES_AHEAD: usize = 2;

/// The broadcaster's answer: `{"recipients","delivered","gone","failed"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Live connections the event was meant for (the excluded one not counted).
    pub recipients: usize,
    pub delivered: usize,
    /// Connections that answered 410 and were removed.
    pub gone: usize,
    /// Connections not reached before the deadline, or refused for another reason; kept.
    pub failed: usize,
    /// Connections whose token had expired: told `token_expired` and closed instead.
    #[serde(default)]
    pub expired: usize,
    /// Subscriptions the event ended (a `member_removed`, a `project_members` DELETE).
    #[serde(default)]
    pub revoked: usize,
    /// Posts answered 429 (each retry counted), the `Throttled` metric.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A 410 from a connection opened less than this long ago (epoch seconds) is not taken as
/// gone: its `$connect` may still be running (API Gateway answers 410 until it returns, and
/// its integrations time out at 29 s). It is counted `failed` and kept; a connection that
/// really went away is removed by its `$disconnect`, a later broadcast, or its TTL.
pub const CONNECTING_GRACE_S: i64 = 30;

/// How long after the posts' deadline removing gone connections may still take (below the
/// deadline margin the functions keep, `runtime::deadline::DEADLINE_MARGIN`).
pub const CLEANUP_GRACE: Duration = Duration::from_millis(1000);

/// The fan-out engine: a store to read, a sender to post with.
pub struct FanOut {
    pub store: Arc<dyn ConnectionStore>,
    pub sender: Arc<dyn ConnectionSender>,
    /// Posts in flight at once; at least 1 ([`Self::with_concurrency`]).
    concurrency: usize,
    /// How throttled and failed posts are retried.
    backoff: Backoff,
    /// Where its metric lines go.
    pub metrics: Metrics,
}

#[derive(Default)]
struct Tally {
    recipients: AtomicUsize,
    delivered: AtomicUsize,
    failed: AtomicUsize,
    expired: AtomicUsize,
    throttled: AtomicUsize,
    /// A post was retried for another reason than throttling (told once).
    retrying: AtomicBool,
    gone: Mutex<Vec<String>>,
    /// The connections this fan-out ended (gone or token expired): they left their project.
    left: Mutex<Vec<Subscriber>>,
}

/// What a fan-out did.
#[derive(Debug)]
pub struct Delivered {
    pub summary: Summary,
    /// The connections it found gone or expired: presence counts them as leaving.
    pub left: Vec<Subscriber>,
}

impl FanOut {
    pub fn new(store: Arc<dyn ConnectionStore>, sender: Arc<dyn ConnectionSender>) -> Self {
        FanOut {
            store,
            sender,
            concurrency: DEFAULT_CONCURRENCY,
            backoff: Backoff::default(),
            metrics: Metrics::new(DEFAULT_METRICS_NAMESPACE, LOCAL_STACK, "broadcaster"),
        }
    }

    /// Metric lines under `metrics`' namespace and dimensions.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// At most `concurrency` posts in flight (0 is taken as 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Retry throttled and failed posts on `backoff`.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The connections `audience` names, page by page: what [`Self::deliver`] posts to for a
    /// broadcast.
    pub fn recipients(&self, audience: &Audience) -> PageStream<'_> {
        match *audience {
            Audience::Project(project) => self.store.project_subscribers(project),
            Audience::Everyone => self.store.all_subscribers(),
            Audience::User(user) => self.store.user_connections(user),
        }
    }

    /// Deliver `payload` to every connection of `pages` but `exclude`: a broadcast's
    /// [`recipients`](Self::recipients), the reconnect sweep's, presence's and typing's
    /// audiences. Posts stop being retried at `deadline`. A store error while listing ends the
    /// fan-out with that error after the posts already started have finished.
    pub async fn deliver(
        &self,
        mut pages: PageStream<'_>,
        payload: &[u8],
        exclude: Option<&str>,
        deadline: Instant,
    ) -> Result<Delivered, StoreError> {
        let tally = Arc::new(Tally::default());
        let payload: Arc<[u8]> = payload.into();
        let exclude: Option<Arc<str>> = exclude.map(Into::into);
        let (tx, mut rx) = mpsc::channel::<Page>(PAGES_AHEAD);
        let read = async move {
            while let Some(page) = pages.next().await {
                if tx.send(page?).await.is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        };
        let subscribers = stream::poll_fn(move |cx| rx.poll_recv(cx)).flat_map(stream::iter);
        let post = subscribers.for_each_concurrent(self.concurrency, |s| {
            let job = Job {
                tally: tally.clone(),
                store: self.store.clone(),
                sender: self.sender.clone(),
                backoff: self.backoff,
                payload: payload.clone(),
                exclude: exclude.clone(),
                deadline,
            };
            job.run(s)
        });
        let (read, ()) = futures::join!(read, post);

        let tally = Arc::into_inner(tally).expect("every post has finished");
        let gone = tally.gone.into_inner().unwrap_or_else(|p| p.into_inner());
        // The clean-up may run past the posts' deadline by at most CLEANUP_GRACE, which is
        // less than the broadcaster's margin: the invocation still returns before Lambda's
        // timeout (a timed-out invocation would be retried and sent to everyone again).
        let cleanup = tokio::time::timeout_at(
            (deadline.max(Instant::now()) + CLEANUP_GRACE).into(),
            self.store.remove_many(&gone),
        );
        match cleanup.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, count = gone.len(), "cannot remove gone connections; TTL will expire them")
            }
            Err(_) => {
                tracing::warn!(
                    count = gone.len(),
                    "no time left to remove gone connections; TTL will expire them"
                )
            }
        }
        read?;
        let left = tally.left.into_inner().unwrap_or_else(|p| p.into_inner());
        let summary = Summary {
            recipients: tally.recipients.into_inner(),
            delivered: tally.delivered.into_inner(),
            gone: gone.len(),
            failed: tally.failed.into_inner(),
            expired: tally.expired.into_inner(),
            revoked: 0,
            throttled: tally.throttled.into_inner(),
        };
        Ok(Delivered { summary, left })
    }
}

/// The frame clients get for `event`: the event, or its `cache_invalidate` when over 128 KB.
pub fn deliverable(event: &crate::wire::events::Event) -> String {
    let (payload, replaced) = event.to_deliverable();
    if replaced {
        tracing::warn!(
            project_id = event.project_id.map(|p| p.to_string()),
            event_id = %event.event_id,
            event_type = %event.kind,
            "event over 128 KB: sending cache_invalidate instead"
        );
    }
    payload
}

/// One post and its bookkeeping. It owns everything it uses: a future made in a closure
/// would carry the closure's borrowed lifetimes in its type, and rustc then cannot prove
/// the whole broadcast `Send` for callers that spawn it.
struct Job {
    tally: Arc<Tally>,
    store: Arc<dyn ConnectionStore>,
    sender: Arc<dyn ConnectionSender>,
    backoff: Backoff,
    payload: Arc<[u8]>,
    exclude: Option<Arc<str>>,
    deadline: Instant,
}

impl Job {
    async fn run(self, s: Subscriber) {
        if self.exclude.as_deref() == Some(s.connection_id.as_str()) {
            return;
        }
        let tally = &self.tally;
        // Authorization is decided at every delivery: past its token's `exp` a connection
        // gets `token_expired` and is closed, never the event.
        let now = crate::time::EpochSecs::now();
        if s.token_exp <= now {
            let (store, sender) = (&*self.store, &*self.sender);
            if revocation::expire(store, sender, &s.connection_id, now, self.deadline).await {
                tally.expired.fetch_add(1, Ordering::Relaxed);
                tally.left.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
            return;
        }
        tally.recipients.fetch_add(1, Ordering::Relaxed);
        match post_until(
            &*self.sender,
            self.backoff,
            &s.connection_id,
            &self.payload,
            self.deadline,
            Retries {
                throttled: &tally.throttled,
                retrying: &tally.retrying,
            },
        )
        .await
        {
            PostOutcome::Delivered => {
                tally.delivered.fetch_add(1, Ordering::Relaxed);
            }
            PostOutcome::Gone
                if s.expires_at
                    .minus_secs(crate::connection::store::CONNECTION_TTL_SECONDS)
                    > now.minus_secs(CONNECTING_GRACE_S) =>
            {
                tracing::debug!(connection_id = %s.connection_id, "410 from a connection still connecting; kept");
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
            PostOutcome::Gone => {
                let mut gone = tally.gone.lock().unwrap_or_else(|p| p.into_inner());
                gone.push(s.connection_id.clone());
                drop(gone);
                tally.left.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
            PostOutcome::Throttled
            | PostOutcome::Retry(_)
            | PostOutcome::Failed(_)
            | PostOutcome::Closed => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Fan-out's settings: `BROADCAST_CONCURRENCY` (1..=10000, default [`DEFAULT_CONCURRENCY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Posts in flight at once; also the most connections the sender holds open.
    pub concurrency: usize,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[BROADCAST_CONCURRENCY];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        const CONCURRENCY: Bounded =
            Bounded::new(BROADCAST_CONCURRENCY, DEFAULT_CONCURRENCY, 1, 10_000);
        Ok(Settings {
            concurrency: CONCURRENCY.read(env)?,
        })
    }
}
