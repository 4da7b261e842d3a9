//! The outbox in Postgres (DESIGN "Outbox relay"): claim rows in id order with
//! `FOR UPDATE SKIP LOCKED` (so relays running at once never take the same row), and, in the
//! same transaction, delete what was delivered and move what was refused to
//! `realtime_outbox_dead`. A relay that dies mid-batch rolls back: its rows go to the next one.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::relay::batch::{Refused, Row};

/// The outbox table and its dead-letter table.
pub const OUTBOX_TABLE: &str = "realtime_outbox";
pub const DEAD_LETTER_TABLE: &str = "realtime_outbox_dead";

/// A pool for the relay: one connection per batch in flight, and one to claim with.
pub struct Outbox {
    pool: PgPool,
}

/// Rows claimed in an open transaction; finish it, or drop it to give the rows back.
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    pub rows: Vec<Row>,
}

impl Outbox {
    pub fn connect_lazy(database_url: &str, batches_in_flight: usize) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(batches_in_flight as u32 + 1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy(database_url)?;
        Ok(Outbox { pool })
    }

    /// Claim up to `limit` rows, oldest first, skipping rows another relay holds. `None` when
    /// there is nothing to claim.
    pub async fn claim(&self, limit: i64) -> Result<Option<Claim>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, payload::text FROM realtime_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(None);
        }
        let rows = rows
            .into_iter()
            .map(|(id, text)| Row {
                id,
                // jsonb always holds valid JSON.
                payload: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        Ok(Some(Claim { tx, rows }))
    }

    /// Seconds since the oldest row waiting was written (0 when the outbox is empty).
    pub async fn oldest_age_seconds(&self) -> Result<f64, sqlx::Error> {
        sqlx::query_scalar::<_, f64>(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) FROM realtime_outbox",
        )
        .fetch_one(&self.pool)
        .await
    }

    /// Rows waiting (tests and the relay's metrics).
    pub async fn waiting(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM realtime_outbox")
            .fetch_one(&self.pool)
            .await
    }

    /// The dead letters: (outbox id, error), oldest first. For tests and benchmarks.
    #[cfg(feature = "dev")]
    pub async fn dead_letters(&self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        sqlx::query_as("SELECT id, error FROM realtime_outbox_dead ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }
}

impl Claim {
    /// Delete the `delivered` rows, move the `refused` ones to the dead-letter table with their
    /// error, and commit. Rows in neither list stay for a later claim.
    pub async fn finish(
        mut self,
        delivered: &[i64],
        refused: &[Refused],
    ) -> Result<(), sqlx::Error> {
        let (dead_ids, dead_errors): (Vec<i64>, Vec<String>) = refused
            .iter()
            .flat_map(|r| r.outbox_ids.iter().map(|id| (*id, r.error.clone())))
            .unzip();
        if !dead_ids.is_empty() {
            sqlx::query(
                "INSERT INTO realtime_outbox_dead (id, payload, created_at, error)
                 SELECT o.id, o.payload, o.created_at, d.error
                 FROM realtime_outbox o JOIN unnest($1::bigint[], $2::text[]) AS d(id, error) ON o.id = d.id
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&dead_ids)
            .bind(&dead_errors)
            .execute(&mut *self.tx)
            .await?;
        }
        let done: Vec<i64> = delivered.iter().chain(&dead_ids).copied().collect();
        if !done.is_empty() {
            sqlx::query("DELETE FROM realtime_outbox WHERE id = ANY($1)")
                .bind(&done)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await
    }
}
