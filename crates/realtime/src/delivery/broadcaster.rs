//! The broadcaster function's behaviour, shared by the Lambda and the dev server's Invoke
//! API: validate the invocation, fan out, end the subscriptions of members it removes, and report one summary (the JSON result, one log
//! line, and one CloudWatch Embedded Metric Format line).

use std::time::Instant;

use realtime_client::event_id_for;
use serde_json::{Value, json};

use crate::connection::store::StoreError;
use crate::delivery::events::{EventStore, Stream};
use crate::delivery::fanout::{Delivered, FanOut, Summary, deliverable};
use crate::delivery::presence::Presence;
use crate::delivery::revocation;
use crate::metrics::MetricValue;
use crate::wire::invocation::{Audience, Broadcast};

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
        &crate::rfc3339(crate::time::EpochMs::now()),
    ) {
        Ok(b) => b,
        Err(invalid) => {
            tracing::error!(request_id, field = %invalid.field, reason = %invalid.message, "invalid broadcast; not retried");
            return Ok(json!({ "error": invalid }));
        }
    };
    let result = match frame(events, &broadcast, request_id).await {
        Ok(frame) => match fanout
            .deliver(
                fanout.recipients(&broadcast.audience),
                frame.as_bytes(),
                broadcast.exclude_connection_id.as_deref(),
                deadline,
            )
            .await
        {
            Ok(Delivered { summary, left }) => {
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
                project_id = event.project_id.map(|p| p.to_string()),
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
            fanout
                .metrics()
                .print(&metric_values(&summary, duration_ms));
            Ok(serde_json::to_value(summary).expect("plain data"))
        }
        Err(e) => {
            tracing::error!(request_id, project_id = event.project_id.map(|p| p.to_string()), event_id = %event.event_id, error = %e, "broadcast failed; the invocation will be retried");
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
        (Some(_), Audience::Project(project)) => Stream::project(*project),
        (Some(_), Audience::User(user)) => Stream::user(*user),
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
            let told = presence.revoked(user, project);
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

/// A broadcast's metrics (one Embedded Metric Format line, [`crate::metrics::Metrics::print`]):
/// the summary's counts and the duration.
pub fn metric_values(summary: &Summary, duration_ms: u64) -> Vec<MetricValue> {
    vec![
        ("Recipients", "Count", json!(summary.recipients)),
        ("Delivered", "Count", json!(summary.delivered)),
        ("Gone", "Count", json!(summary.gone)),
        ("Failed", "Count", json!(summary.failed)),
        ("Expired", "Count", json!(summary.expired)),
        ("Revoked", "Count", json!(summary.revoked)),
        ("Throttled", "Count", json!(summary.throttled)),
        ("BroadcastDuration", "Milliseconds", json!(duration_ms)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::EpochMs;

    #[test]
    fn emf_declares_every_value_it_carries() {
        let s = Summary {
            recipients: 4,
            delivered: 2,
            gone: 1,
            failed: 1,
            ..Summary::default()
        };
        let m = crate::metrics::Metrics::new("DevHive/Realtime", "stack", "broadcaster");
        let line: Value =
            serde_json::from_str(&m.line(&metric_values(&s, 17), EpochMs(1_795_236_600_000)))
                .unwrap();
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
