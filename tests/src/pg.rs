//! Postgres fixtures for end-to-end tests: a project with members in a migrated database.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

/// Two projects, a member of each, and a user who belongs to neither.
pub struct Projects {
    pub url: String,
    pub p: Uuid,
    pub q: Uuid,
    pub member_p: Uuid,
    pub member_q: Uuid,
    pub stranger: Uuid,
}

impl Projects {
    pub async fn create() -> Self {
        let url = crate::dev::migrated_database().await;
        let ids = Projects {
            url,
            p: Uuid::new_v4(),
            q: Uuid::new_v4(),
            member_p: Uuid::new_v4(),
            member_q: Uuid::new_v4(),
            stranger: Uuid::new_v4(),
        };
        let Projects {
            p,
            q,
            member_p,
            member_q,
            stranger,
            ..
        } = ids;
        ids.exec(&format!(
            "INSERT INTO users (id, email) VALUES ('{member_p}', 'p@x'), ('{member_q}', 'q@x'), ('{stranger}', 's@x');
             INSERT INTO projects (id, name) VALUES ('{p}', 'P'), ('{q}', 'Q');
             INSERT INTO project_members (project_id, user_id) VALUES ('{p}', '{member_p}'), ('{q}', '{member_q}')"
        ))
        .await;
        ids.forget_outbox().await;
        ids
    }

    /// Empty the outbox: the fixture's own changes are not what a test waits for (a relay
    /// started later would deliver them first).
    pub async fn forget_outbox(&self) {
        self.exec("DELETE FROM realtime_outbox").await;
    }

    /// Run SQL on the database, committed.
    pub async fn exec(&self, sql: &str) {
        let mut db = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut db)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await.ok();
    }

    /// Insert a message into `project`; its id.
    pub async fn message(&self, project: Uuid) -> Uuid {
        let id = Uuid::new_v4();
        self.exec(&format!(
            "INSERT INTO messages (id, project_id, content) VALUES ('{id}', '{project}', 'hi')"
        ))
        .await;
        id
    }
}
