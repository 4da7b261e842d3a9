//! The Postgres side on the throwaway Postgres 15: the exact NOTIFY payload of every table and
//! action, silence on rollback, migrations over older triggers (and twice), and membership.

mod common;

use realtime::connection::membership::Membership;
use realtime::postgres::{CHANNEL, PgMembership, migrate};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The next notification, with its timestamp checked for shape and then removed.
/// The next notification without its `timestamp`; its `outbox_id` must name the outbox row
/// written in the same transaction, which holds the same payload.
async fn next(listener: &mut PgListener, db: &mut sqlx::PgConnection) -> Value {
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(n.channel(), CHANNEL);
    let mut v: Value = serde_json::from_str(n.payload()).unwrap();
    let ts = v["timestamp"].as_str().expect("timestamp").to_owned();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
        "RFC 3339 with milliseconds: {ts}"
    );
    v.as_object_mut().unwrap().remove("timestamp");
    let outbox_id = v
        .as_object_mut()
        .unwrap()
        .remove("outbox_id")
        .and_then(|id| id.as_i64())
        .expect("an outbox_id");
    let stored: String =
        sqlx::query_scalar("SELECT payload::text FROM realtime_outbox WHERE id = $1")
            .bind(outbox_id)
            .fetch_one(db)
            .await
            .expect("the outbox row of the notification");
    let mut stored: Value = serde_json::from_str(&stored).unwrap();
    stored.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(stored, v, "the outbox row holds the notified payload");
    v
}

fn payload(resource: &str, id: impl ToString, action: &str, project: Uuid) -> Value {
    json!({"resource": resource, "id": id.to_string(), "action": action, "project_id": project.to_string()})
}

#[tokio::test]
async fn every_table_and_action_notifies_the_exact_payload() {
    let url = common::fresh_database().await;
    migrate(&url).await.unwrap();
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();
    let mut db = PgConnection::connect(&url).await.unwrap();
    let (u, p, s, t, m) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let member = format!("{p}:{u}");

    let cases: Vec<(String, Value)> = vec![
        (
            format!(
                "INSERT INTO users (id, email) VALUES ('{u}', 'a@example.com'); INSERT INTO projects (id, owner_id, name) VALUES ('{p}', '{u}', 'P')"
            ),
            payload("project", p, "INSERT", p),
        ),
        (
            format!("UPDATE projects SET name = 'P2' WHERE id = '{p}'"),
            payload("project", p, "UPDATE", p),
        ),
        (
            format!("INSERT INTO sprints (id, project_id, name) VALUES ('{s}', '{p}', 'S1')"),
            payload("sprint", s, "INSERT", p),
        ),
        (
            format!("UPDATE sprints SET name = 'S2' WHERE id = '{s}'"),
            payload("sprint", s, "UPDATE", p),
        ),
        (
            format!(
                "INSERT INTO tasks (id, project_id, sprint_id, title) VALUES ('{t}', '{p}', '{s}', 'T')"
            ),
            payload("task", t, "INSERT", p),
        ),
        (
            format!("UPDATE tasks SET status = 'done' WHERE id = '{t}'"),
            payload("task", t, "UPDATE", p),
        ),
        (
            format!(
                "INSERT INTO messages (id, project_id, sender_id, content) VALUES ('{m}', '{p}', '{u}', 'hi')"
            ),
            payload("message", m, "INSERT", p),
        ),
        (
            format!("UPDATE messages SET content = 'hello' WHERE id = '{m}'"),
            payload("message", m, "UPDATE", p),
        ),
        (
            format!("INSERT INTO project_members (project_id, user_id) VALUES ('{p}', '{u}')"),
            payload("project_members", &member, "INSERT", p),
        ),
        (
            format!(
                "UPDATE project_members SET role = 'admin' WHERE project_id = '{p}' AND user_id = '{u}'"
            ),
            payload("project_members", &member, "UPDATE", p),
        ),
        (
            format!("DELETE FROM messages WHERE id = '{m}'"),
            payload("message", m, "DELETE", p),
        ),
        (
            format!("DELETE FROM tasks WHERE id = '{t}'"),
            payload("task", t, "DELETE", p),
        ),
        (
            format!("DELETE FROM sprints WHERE id = '{s}'"),
            payload("sprint", s, "DELETE", p),
        ),
        (
            format!("DELETE FROM project_members WHERE project_id = '{p}'"),
            payload("project_members", &member, "DELETE", p),
        ),
        (
            format!("DELETE FROM projects WHERE id = '{p}'"),
            payload("project", p, "DELETE", p),
        ),
    ];
    assert_eq!(cases.len(), 15);
    for (sql, want) in cases {
        exec(&mut db, &sql).await;
        assert_eq!(next(&mut listener, &mut db).await, want, "{sql}");
        assert!(
            listener.next_buffered().is_none(),
            "{sql}: exactly one notification"
        );
    }

    // A rolled-back change announces nothing: the next notification is the marker after it.
    exec(
        &mut db,
        &format!("INSERT INTO projects (id, name) VALUES ('{p}', 'P')"),
    )
    .await;
    assert_eq!(next(&mut listener, &mut db).await["action"], "INSERT");
    let ghost = Uuid::new_v4();
    let mut tx = db.begin().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO messages (id, project_id, content) VALUES ('{ghost}', '{p}', 'never')"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let marker = Uuid::new_v4();
    exec(
        &mut db,
        &format!(
            "INSERT INTO messages (id, project_id, content) VALUES ('{marker}', '{p}', 'marker')"
        ),
    )
    .await;
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("message", marker, "INSERT", p)
    );
}

/// Moving a membership to another project (or user) by UPDATE ends the old one: it is
/// announced as a DELETE of the old pair, which the relay turns into a revocation, then an
/// INSERT of the new pair; an UPDATE that keeps the pair stays one UPDATE.
#[tokio::test]
async fn a_membership_moved_by_update_is_a_removal_of_the_old_pair() {
    let url = common::fresh_database().await;
    migrate(&url).await.unwrap();
    let mut db = PgConnection::connect(&url).await.unwrap();
    let (u, p, q) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    exec(
        &mut db,
        &format!(
            "INSERT INTO users (id, email) VALUES ('{u}', 'u@x');
             INSERT INTO projects (id, name) VALUES ('{p}', 'P'), ('{q}', 'Q');
             INSERT INTO project_members (project_id, user_id) VALUES ('{p}', '{u}')"
        ),
    )
    .await;
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();
    exec(
        &mut db,
        &format!("UPDATE project_members SET project_id = '{q}' WHERE project_id = '{p}' AND user_id = '{u}'"),
    )
    .await;
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("project_members", format!("{p}:{u}"), "DELETE", p)
    );
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("project_members", format!("{q}:{u}"), "INSERT", q)
    );
    exec(
        &mut db,
        &format!(
            "UPDATE project_members SET role = 'admin' WHERE project_id = '{q}' AND user_id = '{u}'"
        ),
    )
    .await;
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("project_members", format!("{q}:{u}"), "UPDATE", q)
    );
    assert!(listener.next_buffered().is_none(), "nothing else announced");
}

/// An older generation of the triggers, as deployed before this project: camelCase
/// `projectId`, plural resource names, other trigger and function names.
const OLD_TRIGGERS: &str = r#"
CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cache_invalidate', json_build_object('resource', TG_TABLE_NAME, 'id', NEW.id, 'action', TG_OP, 'projectId', NEW.project_id)::text);
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION legacy_project_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cache_invalidate', json_build_object('resource', 'projects', 'id', NEW.id, 'projectId', NEW.id)::text);
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER tasks_cache_invalidation AFTER INSERT OR UPDATE OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER trg_sprints_notify AFTER INSERT OR UPDATE ON sprints FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER messages_notify AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER messages_notify_again AFTER UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER projects_legacy AFTER INSERT OR UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION legacy_project_notify();
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
"#;

/// Triggers that notify `cache_invalidate`, found as 0002 finds them: by function name, or by
/// a function body that names the channel.
async fn notify_triggers(db: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT c.relname::text, tg.tgname::text FROM pg_trigger tg
         JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_proc p ON p.oid = tg.tgfoid
         WHERE NOT tg.tgisinternal
           AND (p.proname = 'notify_cache_invalidation' OR pg_get_functiondef(p.oid) ILIKE '%cache_invalidate%')
         ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_replace_older_triggers_and_can_run_again() {
    let url = common::fresh_database().await;
    let mut db = PgConnection::connect(&url).await.unwrap();
    // The DevHive schema as the app created it, with the older triggers on top.
    exec(&mut db, include_str!("../../../migrations/0001_schema.sql")).await;
    exec(&mut db, OLD_TRIGGERS).await;
    assert_eq!(notify_triggers(&mut db).await.len(), 5);

    migrate(&url).await.unwrap();
    migrate(&url).await.unwrap();
    let want: Vec<(String, String)> = [
        "messages",
        "project_members",
        "projects",
        "sprints",
        "tasks",
    ]
    .iter()
    .map(|t| (t.to_string(), format!("{t}_cache_invalidate")))
    .collect();
    assert_eq!(
        notify_triggers(&mut db).await,
        want,
        "exactly one current trigger per table"
    );
    let touch: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'tasks_touch'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(touch, 1, "unrelated triggers are left alone");

    // Running the SQL by hand again is safe too.
    exec(&mut db, include_str!("../../../migrations/0001_schema.sql")).await;
    exec(
        &mut db,
        include_str!("../../../migrations/0002_notify_cache_invalidation.sql"),
    )
    .await;
    exec(&mut db, include_str!("../../../migrations/0003_outbox.sql")).await;
    assert_eq!(notify_triggers(&mut db).await, want);

    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();
    let (p, t) = (Uuid::new_v4(), Uuid::new_v4());
    exec(&mut db, &format!("INSERT INTO projects (id, name) VALUES ('{p}', 'P'); INSERT INTO tasks (id, project_id, title) VALUES ('{t}', '{p}', 'T')")).await;
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("project", p, "INSERT", p)
    );
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("task", t, "INSERT", p),
        "current payload, once"
    );
    exec(
        &mut db,
        &format!("UPDATE tasks SET title = 'T2' WHERE id = '{t}'"),
    )
    .await;
    assert_eq!(
        next(&mut listener, &mut db).await,
        payload("task", t, "UPDATE", p)
    );
    assert!(listener.next_buffered().is_none());
}

#[tokio::test]
async fn membership_comes_from_project_members() {
    let url = common::fresh_database().await;
    migrate(&url).await.unwrap();
    let mut db = PgConnection::connect(&url).await.unwrap();
    let (member, stranger, p, q) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    exec(
        &mut db,
        &format!(
            "INSERT INTO users (id, email) VALUES ('{member}', 'm@x'), ('{stranger}', 's@x');
             INSERT INTO projects (id, name) VALUES ('{p}', 'P'), ('{q}', 'Q');
             INSERT INTO project_members (project_id, user_id) VALUES ('{p}', '{member}')"
        ),
    )
    .await;
    let membership = PgMembership::connect_lazy(&url).unwrap();
    assert_eq!(membership.is_member(p, member).await, Ok(true));
    assert_eq!(membership.is_member(p, stranger).await, Ok(false));
    assert_eq!(membership.is_member(q, member).await, Ok(false));

    // Nothing listening there: an error, which callers turn into a denial.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead =
        PgMembership::connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .unwrap();
    assert!(dead.is_member(p, member).await.is_err());
}
