//! The broadcaster function's behaviour, shared by the Lambda and the dev server's Invoke
//! API: validate the invocation, fan out, end the subscriptions of members it removes, and report one summary (the JSON result, one log
//! line, and one CloudWatch Embedded Metric Format line).

use std::time::{Duration, Instant};

use realtime_client::event_id_for;
use serde_json::{Value, json};

use crate::connection::store::StoreError;
use crate::delivery::events::{EventStore, project_stream, user_stream};
use crate::delivery::fanout::{FanOut, Summary, deliverable};
use crate::delivery::presence::Presence;
use crate::delivery::revocation;
use crate::metrics::Metrics;
use crate::wire::invocation::{Audience, Broadcast};

/// Time kept back from the invocation's deadline to report and clean up.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
// Removing gone connections after the deadline fits in the margin.
const _: () =
    assert!(crate::delivery::fanout::CLEANUP_GRACE.as_millis() < DEADLINE_MARGIN.as_millis());
/// Deadline when the caller gives none (tests, `Context::default()`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25);

/// The deadline to stop retrying: the Lambda deadline (epoch ms; 0 when unknown) less a margin
/// ([`DEADLINE_MARGIN`], or a third of the time left when that is shorter, as under a local
/// emulator's short timeouts).
pub fn deadline_from(lambda_deadline_ms: u64) -> Instant {
    deadline_with_margin(lambda_deadline_ms, DEADLINE_MARGIN)
}

/// The Lambda deadline (epoch ms; 0 when unknown) less `margin`, or less a third of the time
/// left when that is shorter.
pub fn deadline_with_margin(lambda_deadline_ms: u64, margin: Duration) -> Instant {
    let left = time_left(lambda_deadline_ms);
    Instant::now() + left - margin.min(left / 3)
}

/// The time left before the Lambda deadline (epoch ms). [`DEFAULT_BUDGET`] when there is none
/// (0), or when it is no epoch time at all: `cargo lambda watch` sends its timeout (600,000)
/// where Lambda sends the deadline.
fn time_left(lambda_deadline_ms: u64) -> Duration {
    let now_ms = crate::epoch_millis().max(0) as u64;
    const A_DAY_MS: u64 = 24 * 60 * 60 * 1000;
    if lambda_deadline_ms == 0 || lambda_deadline_ms + A_DAY_MS < now_ms {
        DEFAULT_BUDGET
    } else {
        Duration::from_millis(lambda_deadline_ms.saturating_sub(now_ms))
    }
}

/// Run one invocation. Invalid input is an `Ok` result naming the field (an error would make
/// Lambda retry a payload that cannot succeed); a store failure is an `Err`, so that Lambda
/// retries the invocation with the same event id.
pub async fn invoke(
    fanout: &FanOut,
    events: Option<&dyn EventStore>,
    presence: Option<&Presence>,
    payload: &Value,
    request_id: &str,
    deadline: Instant,
) -> Result<Value, StoreError> {
    let started = Instant::now();
    let broadcast = match Broadcast::parse(
        payload,
        event_id_for(request_id),
        &crate::rfc3339(crate::epoch_millis()),
    ) {
        Ok(b) => b,
        Err(invalid) => {
            tracing::error!(request_id, field = %invalid.field, reason = %invalid.message, "invalid broadcast; not retried");
            return Ok(json!({ "error": invalid }));
        }
    };
    let result = match frame(events, &broadcast, request_id).await {
        Ok(frame) => match fanout.broadcast_leaving(&broadcast, &frame, deadline).await {
            Ok((summary, left)) => {
                let summary = revoke_after(fanout, presence, &broadcast, deadline, summary).await;
                if let (Some(presence), Audience::Project(project)) =
                    (presence, &broadcast.audience)
                {
                    presence
                        .follow_up_until(Some(*project), left, deadline)
                        .await;
                }
                summary
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let event = &broadcast.event;
    let audience = match broadcast.audience {
        Audience::Project(_) => "project",
        Audience::Everyone => "everyone",
        Audience::User(_) => "user",
    };
    match result {
        Ok(summary) => {
            tracing::info!(
                request_id,
                project_id = %event.project_id,
                event_id = %event.event_id,
                event_type = %event.kind,
                audience,
                recipients = summary.recipients,
                delivered = summary.delivered,
                gone = summary.gone,
                failed = summary.failed,
                expired = summary.expired,
                revoked = summary.revoked,
                duration_ms,
                "broadcast"
            );
            println!(
                "{}",
                emf_line(
                    fanout.metrics(),
                    &summary,
                    duration_ms,
                    crate::epoch_millis()
                )
            );
            Ok(serde_json::to_value(summary).expect("plain data"))
        }
        Err(e) => {
            tracing::error!(request_id, project_id = %event.project_id, event_id = %event.event_id, error = %e, "broadcast failed; the invocation will be retried");
            Err(e)
        }
    }
}

/// The frame to deliver: for a project's event with recovery on, appended to the project's
/// stream first, so that it goes out with its `seq` (a repeated `event_id` goes out again
/// under its first one). A store failure fails the invocation: nothing is delivered without a
/// seq, and Lambda retries it.
async fn frame(
    events: Option<&dyn EventStore>,
    broadcast: &Broadcast,
    request_id: &str,
) -> Result<String, StoreError> {
    let event = &broadcast.event;
    let stream = match (events, &broadcast.audience) {
        (Some(_), Audience::Project(project)) => project_stream(*project),
        (Some(_), Audience::User(user)) => user_stream(*user),
        _ => return Ok(deliverable(event)),
    };
    let Some(events) = events else {
        return Ok(deliverable(event));
    };
    let render = |seq: u64| {
        let mut numbered = event.clone();
        numbered.seq = Some(seq);
        deliverable(&numbered)
    };
    let appended = events.append(&stream, event.event_id, &render).await?;
    if appended.repeated {
        tracing::info!(request_id, event_id = %event.event_id, seq = appended.seq, "event already appended: delivered again under its first seq");
    }
    Ok(appended.frame)
}

/// After an event that ends memberships has been delivered (so the removed member sees it too),
/// end those members' subscriptions. A store failure fails the invocation: Lambda retries it,
/// clients drop the repeated event by its `event_id`, and the revocation runs again.
async fn revoke_after(
    fanout: &FanOut,
    presence: Option<&Presence>,
    broadcast: &Broadcast,
    deadline: Instant,
    mut summary: Summary,
) -> Result<Summary, StoreError> {
    let Audience::Project(project) = broadcast.audience else {
        return Ok(summary);
    };
    for user in broadcast.event.revoked_members() {
        let ended =
            revocation::revoke(&*fanout.store, &*fanout.sender, project, user, deadline).await?;
        summary.revoked += ended;
        if let Some(presence) = presence.filter(|_| ended > 0) {
            let told = presence.left("", user, project);
            if tokio::time::timeout_at(deadline.into(), told)
                .await
                .is_err()
            {
                tracing::warn!(user_id = %user, project_id = %project, "no time left to tell presence of a revoked member");
            }
        }
    }
    Ok(summary)
}

/// A CloudWatch Embedded Metric Format line with the summary's counts and the duration.
pub fn emf_line(
    metrics: &Metrics,
    summary: &Summary,
    duration_ms: u64,
    timestamp_ms: i64,
) -> String {
    metrics.line(
        &[
            ("Recipients", "Count", json!(summary.recipients)),
            ("Delivered", "Count", json!(summary.delivered)),
            ("Gone", "Count", json!(summary.gone)),
            ("Failed", "Count", json!(summary.failed)),
            ("Expired", "Count", json!(summary.expired)),
            ("Revoked", "Count", json!(summary.revoked)),
            ("Throttled", "Count", json!(summary.throttled)),
            ("BroadcastDuration", "Milliseconds", json!(duration_ms)),
        ],
        timestamp_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_keep_a_margin() {
        let in_ten_s = crate::epoch_millis() as u64 + 10_000;
        let d = deadline_from(in_ten_s).saturating_duration_since(Instant::now());
        assert!(
            d <= Duration::from_secs(10) - DEADLINE_MARGIN + Duration::from_millis(50),
            "{d:?}"
        );
        assert!(d >= Duration::from_secs(8), "{d:?}");
        assert!(deadline_from(0) > Instant::now() + Duration::from_secs(20));
        assert!(
            deadline_from(600_000) > Instant::now() + Duration::from_secs(20),
            "a timeout where the deadline belongs (cargo lambda watch) is no deadline"
        );
        // A short deadline keeps two thirds of it, not nothing.
        let in_one_s = crate::epoch_millis() as u64 + 1_000;
        let d = deadline_from(in_one_s).saturating_duration_since(Instant::now());
        assert!(
            d >= Duration::from_millis(600) && d <= Duration::from_millis(680),
            "{d:?}"
        );
    }

    #[test]
    fn emf_declares_every_value_it_carries() {
        let s = Summary {
            recipients: 4,
            delivered: 2,
            gone: 1,
            failed: 1,
            ..Summary::default()
        };
        let m = Metrics::new("DevHive/Realtime", "stack", "broadcaster");
        let line: Value = serde_json::from_str(&emf_line(&m, &s, 17, 1_795_236_600_000)).unwrap();
        let metrics = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "DevHive/Realtime");
        for m in metrics["Metrics"].as_array().unwrap() {
            assert!(line[m["Name"].as_str().unwrap()].is_u64(), "{m}");
        }
        assert_eq!(
            (
                line["Recipients"].as_u64(),
                line["BroadcastDuration"].as_u64()
            ),
            (Some(4), Some(17))
        );
    }
}
