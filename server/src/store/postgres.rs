//! The production backend: PostgreSQL, shared by several Switchyard servers.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use switchyard_domain::types::RequestRecord;

use super::sql::REQUEST_RECORD_COLUMNS;
use super::{StoreResult, StoreSettings};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Records per INSERT: arrays are bound as one parameter each, so this only
/// bounds the size of one message.
const RECORDS_PER_STATEMENT: usize = 10_000;

pub struct PgStore {
    pool: PgPool,
    settings: StoreSettings,
}

impl PgStore {
    pub async fn connect(url: &str, settings: StoreSettings) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PgStore { pool, settings })
    }

    /// One transaction; each chunk is a single INSERT … SELECT FROM UNNEST(arrays).
    async fn insert_records(&self, records: &[RequestRecord]) -> StoreResult<u64> {
        let sql = format!(
            "INSERT INTO request_records ({REQUEST_RECORD_COLUMNS}) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], \
                                  $5::text[], $6::text[], $7::float8[], $8::text[]) \
             ON CONFLICT (request_id) DO NOTHING"
        );
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in records.chunks(RECORDS_PER_STATEMENT) {
            let column = |f: fn(&RequestRecord) -> &str| chunk.iter().map(f).collect::<Vec<_>>();
            inserted += sqlx::query(&sql)
                .bind(column(|r| &r.request_id))
                .bind(chunk.iter().map(|r| r.at.micros()).collect::<Vec<_>>())
                .bind(column(|r| &r.cluster))
                .bind(column(|r| &r.slot))
                .bind(column(|r| r.full_id.model_id.as_str()))
                .bind(column(|r| r.full_id.version.as_str()))
                .bind(chunk.iter().map(|r| r.latency_ms).collect::<Vec<_>>())
                .bind(
                    chunk
                        .iter()
                        .map(|r| r.outcome.as_deref())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

super::sql_store::sql_store!(PgStore, sqlx::Postgres, Postgres);
super::identity_sql::identity_store!(PgStore, sqlx::Postgres);
