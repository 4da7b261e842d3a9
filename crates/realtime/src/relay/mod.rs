//! The relay: drains the Postgres outbox into broadcaster invocations, losing nothing
//! (DESIGN "Outbox relay").
//!
//! The triggers write every change to `realtime_outbox` in the writing transaction and NOTIFY.
//! Here one claimer takes rows in id order ([`outbox::Outbox::claim`], `SKIP LOCKED`) and hands
//! each claim to its own task, at most `RELAY_CONCURRENCY` claims in flight, so one slow Invoke
//! holds back only its own rows. A claim becomes invocations ([`batch::plan`]: coalesced per
//! project, resource and action, an `event_id` derived from the outbox ids), which are sent
//! asynchronously; delivered rows are deleted and refused ones dead-lettered in the claim's
//! transaction. An Invoke that fails leaves its rows for the next claim after a capped
//! backoff. NOTIFY only wakes the claimer; it also polls every `RELAY_POLL_MS`, so a change
//! committed while the relay was down, restarting or failing over is delivered when it is back.
//!
//! The same code runs as the `relay` subcommand ([`Relay::run`], forever) and as the scheduled
//! `functions/relay` Lambda ([`Relay::run_until`] its deadline, so that runs overlap).

pub mod batch;
pub mod outbox;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::postgres::CHANNEL;
use crate::settings::{Bounded, ConfigError, DATABASE_URL, Env, required};
use outbox::{Claim, Outbox};
use realtime_client::{Invoker, PublishError};

pub use batch::MAX_IDS;

/// Claims in flight at once unless configured otherwise (`RELAY_CONCURRENCY`).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// How often the outbox is read without a NOTIFY (`RELAY_POLL_MS`).
pub const DEFAULT_POLL: Duration = Duration::from_millis(1000);
/// Outbox claims in flight at once (1..=64).
pub const RELAY_CONCURRENCY: &str = "RELAY_CONCURRENCY";
/// How often the outbox is read without a NOTIFY, in milliseconds (10..=60000).
pub const RELAY_POLL_MS: &str = "RELAY_POLL_MS";
pub use realtime_client::sdk::BROADCASTER_FUNCTION_NAME;

/// The relay's settings: `DATABASE_URL` to listen on and drain, `BROADCASTER_FUNCTION_NAME`
/// to invoke (both required), `RELAY_CONCURRENCY` and `RELAY_POLL_MS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database_url: String,
    pub function: String,
    pub concurrency: usize,
    pub poll: Duration,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[
        DATABASE_URL,
        BROADCASTER_FUNCTION_NAME,
        RELAY_CONCURRENCY,
        RELAY_POLL_MS,
    ];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        let database_url = crate::settings::database_url(env)?;
        let function = required(
            env,
            BROADCASTER_FUNCTION_NAME,
            "the function the relay invokes",
        )?;
        const CONCURRENCY: Bounded = Bounded::new(RELAY_CONCURRENCY, DEFAULT_CONCURRENCY, 1, 64);
        const POLL_MS: Bounded =
            Bounded::new(RELAY_POLL_MS, DEFAULT_POLL.as_millis() as usize, 10, 60_000);
        Ok(Settings {
            database_url: database_url.to_owned(),
            function: function.to_owned(),
            concurrency: CONCURRENCY.read(env)?,
            poll: Duration::from_millis(POLL_MS.read(env)? as u64),
        })
    }
}

/// Rows taken by one claim.
pub const CLAIM_ROWS: i64 = 1000;
/// After a failed claim, and between listener reconnects: 100 ms doubling to 5 s.
const BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
};

/// What a run did (the Lambda's result and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Drained {
    /// Outbox rows delivered (their invocations accepted) and deleted.
    pub delivered: u64,
    /// Invocations accepted.
    pub invocations: u64,
    /// Rows moved to the dead-letter table.
    pub dead: u64,
    /// Invocations that failed and were left for a retry.
    pub failed: u64,
}

impl Drained {
    /// The metrics of one run of the relay function ([`crate::metrics::Metrics::print`]): the run
    /// itself (`RelayRuns`, the heartbeat its alarm watches), what it did, and the age of the
    /// oldest row still waiting.
    pub fn metric_values(&self, oldest_age_seconds: f64) -> Vec<crate::metrics::MetricValue> {
        use serde_json::json;
        vec![
            ("RelayRuns", "Count", json!(1)),
            ("RelayDelivered", "Count", json!(self.delivered)),
            ("RelayDead", "Count", json!(self.dead)),
            ("RelayFailed", "Count", json!(self.failed)),
            (
                "OutboxOldestAgeSeconds",
                "Seconds",
                json!(oldest_age_seconds),
            ),
        ]
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    invocations: AtomicU64,
    dead: AtomicU64,
    failed: AtomicU64,
}

/// The relay: the outbox to drain, whom to invoke.
pub struct Relay {
    database_url: String,
    outbox: Outbox,
    invoker: Arc<dyn Invoker>,
    function: String,
    concurrency: usize,
    poll: Duration,
    ready: watch::Sender<bool>,
    /// Outbox rows finished (delivered or dead-lettered, committed) since the relay was made.
    done: watch::Sender<u64>,
    /// Consecutive failed claims or invocations; the claimer backs off while it is not zero.
    failures: Mutex<u32>,
}

impl Relay {
    pub fn new(
        database_url: impl Into<String>,
        invoker: Arc<dyn Invoker>,
        function: impl Into<String>,
        concurrency: usize,
        poll: Duration,
    ) -> Result<Self, sqlx::Error> {
        let database_url = database_url.into();
        let concurrency = concurrency.max(1);
        Ok(Relay {
            outbox: Outbox::connect_lazy(&database_url, concurrency)?,
            database_url,
            invoker,
            function: function.into(),
            concurrency,
            poll,
            ready: watch::Sender::new(false),
            done: watch::Sender::new(0),
            failures: Mutex::new(0),
        })
    }

    /// `true` while the listener is connected and listening.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Outbox rows finished (delivered or dead-lettered, and committed) so far.
    pub fn done(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Drain forever (the `relay` subcommand, the dev server).
    pub async fn run(&self) {
        self.run_until(None).await;
    }

    /// Drain until `deadline` (the Lambda's), then let the claims in flight finish.
    pub async fn run_until(&self, deadline: Option<Instant>) -> Drained {
        let wake = Arc::new(Notify::new());
        let counters = Counters::default();
        tokio::select! {
            () = listen(&self.database_url, &wake, &self.ready) => {}
            () = self.drain(&wake, deadline, &counters) => {}
        }
        self.ready.send_replace(false);
        Drained {
            delivered: counters.delivered.into_inner(),
            invocations: counters.invocations.into_inner(),
            dead: counters.dead.into_inner(),
            failed: counters.failed.into_inner(),
        }
    }

    fn backoff(&self) -> Option<Duration> {
        let failures = *self.failures.lock().unwrap_or_else(|p| p.into_inner());
        (failures > 0).then(|| BACKOFF.ceiling(failures))
    }

    fn record(&self, ok: bool) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        *failures = if ok { 0 } else { failures.saturating_add(1) };
    }

    /// The claimer: claim, hand off, repeat; wait for a NOTIFY or the poll when there is
    /// nothing to claim. Claims in flight run concurrently with it.
    async fn drain(&self, wake: &Notify, deadline: Option<Instant>, counters: &Counters) {
        let permits = Semaphore::new(self.concurrency);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let past = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
        let until_deadline = |d: Option<Instant>| async move {
            match d {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        // The first pass always runs, so that a run started close to its deadline still drains
        // what is waiting.
        let mut first = true;
        while first || !past(deadline) {
            first = false;
            if let Some(pause) = self.backoff() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = until_deadline(deadline) => break,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
                }
            }
            // A permit per claim in flight; finished claims give theirs back as they complete.
            let permit = loop {
                if let Ok(permit) = permits.try_acquire() {
                    break Some(permit);
                }
                tokio::select! {
                    Some(()) = in_flight.next() => {}
                    () = until_deadline(deadline) => break None,
                }
            };
            let Some(permit) = permit else { break };
            // Claims in flight keep running while the next claim is read.
            let claimed = {
                let claim = self.outbox.claim(CLAIM_ROWS);
                tokio::pin!(claim);
                loop {
                    tokio::select! {
                        claimed = &mut claim => break claimed,
                        Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                    }
                }
            };
            match claimed {
                Ok(Some(claim)) => {
                    in_flight.push(async move {
                        let _permit = permit;
                        self.deliver(claim, counters).await;
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(self.poll) => {}
                        () = until_deadline(deadline) => break,
                        Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "relay cannot read the outbox; retrying");
                    self.record(false);
                }
            }
        }
        while in_flight.next().await.is_some() {}
    }

    /// One claim: plan, invoke (asynchronously, several at once), then delete what was
    /// accepted and dead-letter what was refused, in the claim's transaction.
    async fn deliver(&self, claim: Claim, counters: &Counters) {
        let (planned, mut refused) =
            batch::plan(&claim.rows, &crate::rfc3339(crate::time::EpochMs::now()));
        for r in &refused {
            tracing::error!(outbox_ids = ?r.outbox_ids, error = %r.error, "outbox rows refused; moved to the dead-letter table");
        }
        let results: Vec<_> = futures::stream::iter(planned)
            .map(|p| async move {
                let bytes = p.payload.to_string().into_bytes();
                let result = self.invoker.invoke(&self.function, bytes, true).await;
                (p, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut delivered = Vec::new();
        let mut ok = true;
        for (p, result) in results {
            match result {
                Ok(_) => {
                    counters.invocations.fetch_add(1, Ordering::Relaxed);
                    delivered.extend(p.outbox_ids);
                }
                Err(PublishError::TooLarge(n)) => refused.push(batch::Refused {
                    outbox_ids: p.outbox_ids,
                    error: format!("payload: {n} bytes, over the invocation limit"),
                }),
                Err(e) => {
                    ok = false;
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, project_id = %p.payload["project_id"], outbox_ids = ?p.outbox_ids, "relay could not invoke the broadcaster; the rows wait for a retry");
                }
            }
        }
        let dead: usize = refused.iter().map(|r| r.outbox_ids.len()).sum();
        match claim.finish(&delivered, &refused).await {
            Ok(()) => {
                counters
                    .delivered
                    .fetch_add(delivered.len() as u64, Ordering::Relaxed);
                counters.dead.fetch_add(dead as u64, Ordering::Relaxed);
                self.done
                    .send_modify(|n| *n += (delivered.len() + dead) as u64);
                tracing::debug!(delivered = delivered.len(), dead, "outbox rows done");
            }
            Err(e) => {
                // The invocations went out; the rows come back and go out again with the same
                // event ids, which clients drop as repeats.
                ok = false;
                tracing::warn!(error = %e, rows = delivered.len(), "relay cannot delete delivered outbox rows; they will be sent again");
            }
        }
        self.record(ok);
    }
}

/// Hold a listener on the triggers' channel: every notification (and every reconnect, after
/// which changes may be waiting) wakes the claimer. Reconnects with capped backoff.
async fn listen(database_url: &str, wake: &Notify, ready: &watch::Sender<bool>) {
    let mut attempt = 0;
    loop {
        let listener = async {
            let mut l = PgListener::connect(database_url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                let delay = BACKOFF.ceiling(attempt);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "relay cannot listen; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        tracing::info!(channel = CHANNEL, "relay listening");
        ready.send_replace(true);
        wake.notify_one();
        while let Ok(Some(_)) = listener.try_recv().await {
            wake.notify_one();
        }
        ready.send_replace(false);
        tracing::warn!("relay lost its listener connection; the outbox is still polled");
    }
}
