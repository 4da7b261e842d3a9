//! What one claim of outbox rows becomes: broadcaster invocations, each with the outbox ids it
//! carries, and the rows the broadcaster would refuse (they go to the dead-letter table).
//!
//! Trigger rows (`{"resource","id","action","project_id","timestamp"}`) coalesce per
//! (project, resource, action) in order of first appearance: one row keeps the trigger form;
//! several become a `cache_invalidate` with `data.ids` (at most [`MAX_IDS`]; past that the ids
//! are left out and clients refetch the whole resource). Removed members are never coalesced
//! past their ids, because the broadcaster revokes by them. Any other row is a broadcaster
//! invocation written by the application and goes out as it is. Every invocation gets an
//! `event_id` derived from its outbox ids, so a repeat after a crash is recognised by clients;
//! each is validated here with the broadcaster's own parser, because an asynchronous Invoke
//! never reports what the function thought of its payload.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::wire::invocation::Broadcast;
use realtime_client::{MAX_INVOCATION_BYTES, event_id_for};

/// Ids listed in one coalesced event.
pub const MAX_IDS: usize = 100;

/// One outbox row: its id and its payload as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    pub payload: Value,
}

/// One broadcaster invocation and the rows it delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub outbox_ids: Vec<i64>,
    pub payload: Value,
}

/// Rows that cannot be delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub outbox_ids: Vec<i64>,
    pub error: String,
}

/// A trigger row's grouping key and record id, if it is one.
fn trigger_key(payload: &Value) -> Option<((String, String, String), String)> {
    let o = payload.as_object()?;
    if o.contains_key("type") {
        return None;
    }
    let text = |name: &str| o.get(name)?.as_str().map(str::to_owned);
    let project = text("project_id").or_else(|| text("projectId"))?;
    Some(((project, text("resource")?, text("action")?), text("id")?))
}

#[derive(Default)]
struct Group {
    /// Each row's outbox id and record id, in id order.
    rows: Vec<(i64, String)>,
    /// Distinct record ids in order of first appearance.
    record_ids: Vec<String>,
    seen: HashSet<String>,
    timestamp: Option<Value>,
}

/// Turn claimed rows (in id order) into invocations and refusals. `now` is the RFC 3339 time
/// the broadcaster's parser stamps events with.
pub fn plan(rows: &[Row], now: &str) -> (Vec<Planned>, Vec<Refused>) {
    // Slots keep the order of first appearance across groups and pass-through rows.
    enum Slot {
        Group((String, String, String)),
        Single(usize),
    }
    let mut slots = Vec::new();
    let mut groups: HashMap<(String, String, String), Group> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Some((key, record)) = trigger_key(&row.payload) else {
            slots.push(Slot::Single(i));
            continue;
        };
        let group = groups.entry(key.clone()).or_insert_with(|| {
            slots.push(Slot::Group(key));
            Group::default()
        });
        group.rows.push((row.id, record.clone()));
        if group.seen.insert(record.clone()) {
            group.record_ids.push(record);
        }
        if let Some(t) = row.payload.get("timestamp") {
            group.timestamp = Some(t.clone());
        }
    }

    let mut invocations = Vec::new();
    for slot in slots {
        match slot {
            Slot::Single(i) => invocations.push((vec![rows[i].id], rows[i].payload.clone())),
            Slot::Group(key) => {
                let group = groups.remove(&key).expect("each group has one slot");
                invocations.extend(coalesced(key, group));
            }
        }
    }

    let mut planned = Vec::new();
    let mut refused = Vec::new();
    for (outbox_ids, mut payload) in invocations {
        if let Some(object) = payload.as_object_mut() {
            object
                .entry("event_id")
                .or_insert_with(|| json!(event_id(&outbox_ids)));
        }
        let size = payload.to_string().len();
        let verdict = if size > MAX_INVOCATION_BYTES {
            Err(format!(
                "payload: {size} bytes, over the {MAX_INVOCATION_BYTES}-byte invocation limit"
            ))
        } else {
            Broadcast::parse(&payload, Uuid::nil(), now)
                .map(drop)
                .map_err(|invalid| format!("{}: {}", invalid.field, invalid.message))
        };
        match verdict {
            Ok(()) => planned.push(Planned {
                outbox_ids,
                payload,
            }),
            Err(error) => refused.push(Refused { outbox_ids, error }),
        }
    }
    (planned, refused)
}

/// The event id of the invocation that delivers these outbox rows.
pub fn event_id(outbox_ids: &[i64]) -> Uuid {
    let ids: Vec<String> = outbox_ids.iter().map(i64::to_string).collect();
    event_id_for(&format!("outbox:{}", ids.join(",")))
}

/// A group's invocations: the trigger form for one record, `data.ids` for several.
fn coalesced(
    (project, resource, action): (String, String, String),
    group: Group,
) -> Vec<(Vec<i64>, Value)> {
    let timestamp = group
        .timestamp
        .unwrap_or_else(|| json!(crate::rfc3339(crate::time::EpochMs::now())));
    let all_rows: Vec<i64> = group.rows.iter().map(|(id, _)| *id).collect();
    if group.record_ids.len() == 1 {
        let payload = json!({"resource": resource, "id": group.record_ids[0], "action": action,
                             "project_id": project, "timestamp": timestamp});
        return vec![(all_rows, payload)];
    }
    let many = |ids: Option<&[String]>| {
        let mut data = json!({ "timestamp": timestamp });
        if let Some(ids) = ids {
            data["ids"] = json!(ids);
        }
        json!({"project_id": project, "type": "cache_invalidate", "resource": resource,
               "action": action, "data": data})
    };
    let revocation = resource == "project_members" && action == "DELETE";
    if !revocation || group.record_ids.len() <= MAX_IDS {
        let ids = (group.record_ids.len() <= MAX_IDS).then_some(group.record_ids.as_slice());
        return vec![(all_rows, many(ids))];
    }
    // Removed members in batches of MAX_IDS, each carrying the outbox rows of its records.
    let batch_of: HashMap<&str, usize> = group
        .record_ids
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_str(), i / MAX_IDS))
        .collect();
    let mut out: Vec<(Vec<i64>, Value)> = group
        .record_ids
        .chunks(MAX_IDS)
        .map(|ids| (Vec::new(), many(Some(ids))))
        .collect();
    for (row, record) in &group.rows {
        out[batch_of[record.as_str()]].0.push(*row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    const Q: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

    fn trigger(id: i64, project: &str, resource: &str, record: &str, action: &str) -> Row {
        Row {
            id,
            payload: json!({"resource": resource, "id": record, "action": action,
                            "project_id": project, "timestamp": "2026-11-26T00:00:00.000Z"}),
        }
    }

    fn ids_of(p: &Planned) -> Vec<String> {
        match p.payload.get("id") {
            Some(id) => vec![id.as_str().unwrap().to_owned()],
            None => p.payload["data"]["ids"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_lone_row_keeps_the_trigger_form_with_a_derived_event_id() {
        let (planned, refused) = plan(&[trigger(7, P, "task", "t1", "UPDATE")], "now");
        assert!(refused.is_empty());
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].outbox_ids, vec![7]);
        assert_eq!(planned[0].payload["id"], "t1");
        assert_eq!(planned[0].payload["event_id"], json!(event_id(&[7])));
        assert_ne!(event_id(&[7]), event_id(&[8]));
    }

    #[test]
    fn rows_coalesce_per_project_resource_and_action_in_order() {
        let rows = [
            trigger(1, P, "task", "t1", "UPDATE"),
            trigger(2, Q, "task", "t9", "UPDATE"),
            trigger(3, P, "task", "t2", "UPDATE"),
            trigger(4, P, "task", "t1", "UPDATE"),
            trigger(5, P, "task", "t3", "DELETE"),
        ];
        let (planned, _) = plan(&rows, "now");
        let got: Vec<(Vec<i64>, Vec<String>)> = planned
            .iter()
            .map(|p| (p.outbox_ids.clone(), ids_of(p)))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![1, 3, 4], vec!["t1".into(), "t2".into()]),
                (vec![2], vec!["t9".into()]),
                (vec![5], vec!["t3".into()]),
            ]
        );
        assert_eq!(planned[0].payload["type"], "cache_invalidate");
    }

    #[test]
    fn past_a_hundred_ids_the_resource_is_invalidated_but_removed_members_are_batched() {
        let tasks: Vec<Row> = (0..=MAX_IDS as i64)
            .map(|i| trigger(i, P, "task", &format!("t{i}"), "UPDATE"))
            .collect();
        let (planned, _) = plan(&tasks, "now");
        assert_eq!(planned.len(), 1);
        assert!(planned[0].payload["data"].get("ids").is_none());
        assert_eq!(planned[0].outbox_ids.len(), MAX_IDS + 1);

        let members: Vec<Row> = (0..250)
            .map(|i| {
                let record = format!("{P}:{}", Uuid::from_u128(i as u128));
                trigger(i, P, "project_members", &record, "DELETE")
            })
            .collect();
        let (planned, _) = plan(&members, "now");
        let sizes: Vec<(usize, usize)> = planned
            .iter()
            .map(|p| (p.outbox_ids.len(), ids_of(p).len()))
            .collect();
        assert_eq!(sizes, [(100, 100), (100, 100), (50, 50)]);
    }

    #[test]
    fn application_rows_pass_through_and_invalid_ones_are_refused_with_the_reason() {
        let rows = [
            Row {
                id: 1,
                payload: json!({"project_id": P, "type": "message_created", "data": {"x": 1}}),
            },
            Row {
                id: 2,
                payload: json!({"project_id": "not-a-uuid", "type": "message_created"}),
            },
            Row {
                id: 3,
                payload: json!("just a string"),
            },
            trigger(4, P, "task", "t1", "UPDATE"),
        ];
        let (planned, refused) = plan(&rows, "now");
        assert_eq!(
            planned
                .iter()
                .map(|p| p.outbox_ids.clone())
                .collect::<Vec<_>>(),
            vec![vec![1], vec![4]]
        );
        assert_eq!(planned[0].payload["data"], json!({"x": 1}));
        assert_eq!(
            refused
                .iter()
                .map(|r| r.outbox_ids.clone())
                .collect::<Vec<_>>(),
            vec![vec![2], vec![3]]
        );
        assert!(
            refused[0].error.starts_with("project_id"),
            "{:?}",
            refused[0]
        );
        assert!(refused.iter().all(|r| !r.error.is_empty()));
    }

    #[test]
    fn an_application_rows_own_event_id_is_kept() {
        let mine = Uuid::new_v4();
        let rows = [Row {
            id: 1,
            payload: json!({"project_id": P, "type": "task_updated", "event_id": mine}),
        }];
        assert_eq!(plan(&rows, "now").0[0].payload["event_id"], json!(mine));
    }
}
