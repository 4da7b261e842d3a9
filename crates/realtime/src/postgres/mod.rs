//! The Postgres side: the embedded migrations (schema, `notify_cache_invalidation()` and its
//! triggers, the outbox) and the `project_members` membership adapter.
//!
//! Migrations are recorded in their own table, `_devhive_realtime_migrations`, so they sit
//! beside whatever migrations the DevHive app runs on the same database.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use crate::connection::membership::{Membership, MembershipError};

/// Where applied migrations are recorded.
pub const MIGRATIONS_TABLE: &str = "_devhive_realtime_migrations";
/// The channel the triggers notify.
pub const CHANNEL: &str = "cache_invalidate";

const MIGRATIONS: [(i64, &str, &str); 4] = [
    (
        1,
        "schema",
        include_str!("../../../../migrations/0001_schema.sql"),
    ),
    (
        2,
        "notify cache invalidation",
        include_str!("../../../../migrations/0002_notify_cache_invalidation.sql"),
    ),
    (
        3,
        "outbox",
        include_str!("../../../../migrations/0003_outbox.sql"),
    ),
    (
        4,
        "membership update is removal",
        include_str!("../../../../migrations/0004_membership_update_is_removal.sql"),
    ),
];

/// The project's migrations.
pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Apply every migration not yet applied to the database at `database_url`.
pub async fn migrate(database_url: &str) -> Result<(), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let result = migrator().run(&pool).await.map_err(sqlx::Error::from);
    pool.close().await;
    result
}

/// Membership from `project_members`, over a small lazy pool sized for Lambda (at most two
/// connections, opened on first use, quick to give up so that a dead database denies fast).
pub struct PgMembership {
    pool: PgPool,
}

impl PgMembership {
    pub fn connect_lazy(database_url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy(database_url)?;
        Ok(PgMembership { pool })
    }
}

#[async_trait]
impl Membership for PgMembership {
    async fn is_member(&self, project_id: Uuid, user_id: Uuid) -> Result<bool, MembershipError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| MembershipError(e.to_string()))
    }
}

/// Create the database `name` on the server of `admin_url` and return its URL (tests,
/// benchmarks and the dev server's throwaway databases). `name` must be a plain identifier.
#[cfg(feature = "dev")]
pub async fn create_database(admin_url: &str, name: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(sqlx::Error::Configuration(
            format!("not a plain database name: {name:?}").into(),
        ));
    }
    let (base, _) = admin_url
        .rsplit_once('/')
        .ok_or_else(|| sqlx::Error::Configuration("the URL has no /database part".into()))?;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(format!("{base}/{name}"))
}
