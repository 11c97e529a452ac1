//! The production backend: PostgreSQL, shared by several Switchyard servers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use switchyard_domain::types::RequestRecord;

use super::cache::ReadCache;
use super::sql::{CHANGES_CHANNEL, REQUEST_RECORD_COLUMNS};
use super::temporal::TemporalIndex;
use super::{StoreResult, StoreSettings};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Records per INSERT: arrays are bound as one parameter each, so this only
/// bounds the size of one message.
const RECORDS_PER_STATEMENT: usize = 10_000;

/// A pooled connection idle this long is pinged before use.
const IDLE_PING: Duration = Duration::from_secs(5);

/// How long a request waits for a connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `watch_changes` reads the ledger head, besides listening.
const POLL: Duration = Duration::from_millis(250);

pub struct PgStore {
    pool: PgPool,
    settings: StoreSettings,
    cache: Arc<ReadCache>,
    temporal: tokio::sync::RwLock<TemporalIndex>,
    writes: super::sql_store::WriteGate,
}

impl PgStore {
    pub async fn connect(url: &str, settings: StoreSettings) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            // While the database is away (restarting, unreachable) sqlx keeps
            // trying to connect until this deadline; then the request is
            // answered 503 `database_unavailable`. Short enough that a client
            // hears within seconds, long enough for a brief failover.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings every connection before handing it out: a second round
            // trip for each query. Only a connection idle for a while (which a
            // restart or a proxy may have cut) is pinged now; one that fails is
            // dropped and another taken, as before.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        Ok(PgStore {
            pool,
            settings,
            cache: Arc::default(),
            temporal: Default::default(),
            writes: super::sql_store::WriteGate::open(),
        })
    }

    /// Listens for the `NOTIFY` every writing transaction sends (so a change
    /// is seen within milliseconds), and polls the head as well: notifications
    /// sent while the listening connection was down are lost, and the poll is
    /// what vouches for the cache.
    async fn watch(&self) -> StoreResult<()> {
        let result = tokio::try_join!(self.listen(), self.poll_head(POLL)).map(|_| ());
        self.cache.withdraw();
        result
    }

    async fn listen(&self) -> StoreResult<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        loop {
            // `None`: the connection was lost (and is re-established on the
            // next call); whatever was missed meanwhile counts as a change.
            let _notification = listener.try_recv().await?;
            self.cache.changed();
        }
    }

    /// One transaction, all or nothing. The batch is first streamed with
    /// `COPY` (the engine's own bulk path); if a record is already stored (a
    /// retry) or repeated, COPY fails on the unique key, its transaction
    /// rolls back whole, and the batch goes again through an INSERT that skips them.
    async fn insert_records(&self, records: &[RequestRecord]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        match copy_records(&mut *tx, records).await {
            Ok(inserted) => {
                tx.commit().await?;
                Ok(inserted)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                self.insert_records_skipping_stored(records).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One transaction; each chunk is a single INSERT … SELECT FROM UNNEST(arrays)
    /// … ON CONFLICT DO NOTHING.
    async fn insert_records_skipping_stored(&self, records: &[RequestRecord]) -> StoreResult<u64> {
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
        if inserted < records.len() as u64 {
            // Some ids were stored already (or repeated): only the same content may repeat.
            let ids: Vec<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
            let stored = sqlx::query_as::<_, super::sql::RequestRecordRow>(&format!(
                "SELECT {REQUEST_RECORD_COLUMNS} FROM request_records WHERE request_id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            let conflicts =
                super::sql::record_conflicts(records, &super::sql::records_by_id(stored)?);
            if !conflicts.is_empty() {
                tx.rollback().await?;
                return Err(super::StoreError::RecordConflicts(conflicts));
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// Streams `records` into `request_records` with `COPY … FROM STDIN` (text format).
async fn copy_records(
    tx: &mut sqlx::PgConnection,
    records: &[RequestRecord],
) -> Result<u64, sqlx::Error> {
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY request_records ({REQUEST_RECORD_COLUMNS}) FROM STDIN"
        ))
        .await?;
    let mut buf = String::with_capacity(COPY_CHUNK_BYTES + 512);
    for r in records {
        copy_row(&mut buf, r);
        if buf.len() >= COPY_CHUNK_BYTES {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await
}

/// Bytes per CopyData message.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// One line of COPY's text format: tab-separated, `\N` for NULL.
fn copy_row(buf: &mut String, r: &RequestRecord) {
    use std::fmt::Write;
    copy_text(buf, &r.request_id);
    let _ = write!(buf, "\t{}\t", r.at.micros());
    copy_text(buf, &r.cluster);
    buf.push('\t');
    copy_text(buf, &r.slot);
    buf.push('\t');
    copy_text(buf, r.full_id.model_id.as_str());
    buf.push('\t');
    copy_text(buf, r.full_id.version.as_str());
    buf.push('\t');
    // Validation admits finite latencies only; Rust's `Display` of a finite
    // f64 is plain decimal, which float8 reads back exactly.
    let _ = write!(buf, "{}", r.latency_ms);
    buf.push('\t');
    match &r.outcome {
        Some(o) => copy_text(buf, o),
        None => buf.push_str("\\N"),
    }
    buf.push('\n');
}

/// `s` escaped for COPY's text format.
fn copy_text(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_domain::{FullId, Timestamp};

    use super::*;

    #[test]
    fn copy_rows_escape_separators_and_write_null_outcomes() {
        let mut r = RequestRecord {
            request_id: "a\tb\\c\nd".into(),
            at: Timestamp::from_micros(1_500_000),
            cluster: "eu-1".into(),
            slot: "blue".into(),
            full_id: FullId::parse("chat:v1").expect("full id"),
            latency_ms: 41.25,
            outcome: None,
        };
        let mut buf = String::new();
        copy_row(&mut buf, &r);
        assert_eq!(
            buf,
            "a\\tb\\\\c\\nd\t1500000\teu-1\tblue\tchat\tv1\t41.25\t\\N\n"
        );
        r.outcome = Some("ok\r".into());
        buf.clear();
        copy_row(&mut buf, &r);
        assert!(buf.ends_with("\tok\\r\n"), "{buf:?}");
    }
}

super::sql_store::sql_store!(PgStore, sqlx::Postgres, Postgres);
super::identity_sql::identity_store!(PgStore, sqlx::Postgres);
super::release_sql::release_store!(PgStore, sqlx::Postgres);
super::sso_sql::sso_store!(PgStore, sqlx::Postgres);
