//! Reads and writes of the outbox tables ([`super::schema`]), one small function per
//! statement, in the core's types. Each runs inside the caller's transaction (a
//! [`rusqlite::Transaction`] derefs to the [`Connection`] taken here); none commits.
//!
//! SQLite integers are `i64` and the outbox counts in `u64`; [`int`] and [`uint`] convert,
//! refusing (never wrapping) a value out of range.

use edge_anomaly::outbox::{
    stored, Batch, DeadBatch, DeadLetter, Failure, OutboxStats, Record, RetryState, Seq,
    StoreError, SyncSettings,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::error::sql_error;

type Result<T> = std::result::Result<T, StoreError>;

/// `n` as a SQLite integer.
pub fn int(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{n} is out of SQLite's range")))
}

/// Column `idx` of `row` as a count or seq (never negative in a sound database).
fn uint(row: &Row, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([], |row| uint(row, 0)))
        .map_err(sql_error)
}

fn decode_column<T: serde::de::DeserializeOwned>(row: &Row, idx: usize) -> Result<T> {
    stored::decode(&row.get::<_, String>(idx).map_err(sql_error)?)
}

// The `state` row.

/// The next seq and the next queue position.
pub fn counters(conn: &Connection) -> Result<(Seq, u64)> {
    conn.prepare_cached("SELECT next_seq, next_pos FROM state WHERE id = 1")
        .and_then(|mut s| s.query_row([], |row| Ok((uint(row, 0)?, uint(row, 1)?))))
        .map_err(sql_error)
}

/// Stores the next seq and the next queue position.
pub fn set_counters(conn: &Connection, next_seq: Seq, next_pos: u64) -> Result<()> {
    let values = params![int(next_seq)?, int(next_pos)?];
    conn.prepare_cached("UPDATE state SET next_seq = ?1, next_pos = ?2 WHERE id = 1")
        .and_then(|mut s| s.execute(values))
        .map_err(sql_error)?;
    Ok(())
}

/// Stores the next queue position.
pub fn set_next_pos(conn: &Connection, next_pos: u64) -> Result<()> {
    conn.execute("UPDATE state SET next_pos = ?1 WHERE id = 1", [int(next_pos)?])
        .map_err(sql_error)?;
    Ok(())
}

/// The stored device id.
pub fn device_id(conn: &Connection) -> Result<Option<String>> {
    conn.query_row("SELECT device_id FROM state WHERE id = 1", [], |row| row.get(0))
        .map_err(sql_error)
}

/// Stores `id` as the device id.
pub fn set_device_id(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("UPDATE state SET device_id = ?1 WHERE id = 1", [id]).map_err(sql_error)?;
    Ok(())
}

/// The stored collector settings.
pub fn sync_settings(conn: &Connection) -> Result<Option<SyncSettings>> {
    let text: Option<String> = conn
        .query_row("SELECT sync_settings FROM state WHERE id = 1", [], |row| row.get(0))
        .map_err(sql_error)?;
    text.as_deref().map(stored::decode).transpose()
}

/// Stores the collector settings.
pub fn set_sync_settings(conn: &Connection, settings: &SyncSettings) -> Result<()> {
    let text = stored::encode(settings)?;
    conn.execute("UPDATE state SET sync_settings = ?1 WHERE id = 1", [text]).map_err(sql_error)?;
    Ok(())
}

/// The stored running totals (the current counts in it are 0).
pub fn totals(conn: &Connection) -> Result<OutboxStats> {
    let text: String = conn
        .prepare_cached("SELECT totals FROM state WHERE id = 1")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(sql_error)?;
    stored::decode(&text)
}

/// Adds the running totals of `pending` and `counts` to the stored ones; writes nothing when
/// neither has any.
pub fn add_totals(conn: &Connection, pending: &OutboxStats, counts: &OutboxStats) -> Result<()> {
    if !pending.has_totals() && !counts.has_totals() {
        return Ok(());
    }
    let mut t = totals(conn)?;
    t.add_totals(pending);
    t.add_totals(counts);
    let text = stored::encode(&t)?;
    conn.prepare_cached("UPDATE state SET totals = ?1 WHERE id = 1")
        .and_then(|mut s| s.execute([text]))
        .map_err(sql_error)?;
    Ok(())
}

// The queue.

/// Puts `record` in the queue at position `pos`.
pub fn enqueue(conn: &Connection, pos: u64, record: &Record) -> Result<()> {
    let text = stored::encode(record)?;
    let values = params![int(pos)?, int(record.seq)?, text];
    conn.prepare_cached("INSERT INTO queue (pos, seq, record) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(values))
        .map_err(sql_error)?;
    Ok(())
}

/// The queue position of the front record, or `None` when the queue is empty.
pub fn front(conn: &Connection) -> Result<Option<u64>> {
    conn.prepare_cached("SELECT min(pos) FROM queue")
        .and_then(|mut s| s.query_row([], |row| row.get::<_, Option<i64>>(0)))
        .map_err(sql_error)?
        .map(|pos| {
            u64::try_from(pos).map_err(|_| StoreError::Corrupt(format!("queue position {pos}")))
        })
        .transpose()
}

/// Number of queued records.
pub fn queued(conn: &Connection) -> Result<u64> {
    count(conn, "SELECT count(*) FROM queue")
}

/// Up to `max` queued records, front first.
pub fn oldest(conn: &Connection, max: usize) -> Result<Vec<Record>> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let mut statement = conn
        .prepare_cached("SELECT seq, record FROM queue ORDER BY pos LIMIT ?1")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([limit], |row| Ok((uint(row, 0)?, row.get::<_, String>(1)?)))
        .map_err(sql_error)?;
    rows.map(|row| {
        let (seq, text) = row.map_err(sql_error)?;
        let record: Record = stored::decode(&text)?;
        if record.seq != seq {
            return Err(StoreError::Corrupt(format!(
                "queued seq {seq} holds record {}",
                record.seq
            )));
        }
        Ok(record)
    })
    .collect()
}

/// Takes record `seq` out of the queue; false when it is not queued.
pub fn dequeue(conn: &Connection, seq: Seq) -> Result<bool> {
    let seq = int(seq)?;
    let deleted = conn
        .prepare_cached("DELETE FROM queue WHERE seq = ?1")
        .and_then(|mut s| s.execute([seq]))
        .map_err(sql_error)?;
    Ok(deleted > 0)
}

/// Deletes up to `max` records from the front of the queue; returns how many.
pub fn delete_front(conn: &Connection, max: u64) -> Result<u64> {
    if max == 0 {
        return Ok(0);
    }
    let sql = "DELETE FROM queue WHERE pos IN (SELECT pos FROM queue ORDER BY pos LIMIT ?1)";
    // An unbounded request (the recorder's doubling saturates) means the whole queue.
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let deleted = conn.prepare_cached(sql).and_then(|mut s| s.execute([max])).map_err(sql_error)?;
    Ok(deleted as u64)
}

// Reading ids.

/// The seq reading `id` was recorded under, if it is remembered.
pub fn reading_seq(conn: &Connection, id: &str) -> Result<Option<Seq>> {
    conn.prepare_cached("SELECT seq FROM reading_ids WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |row| uint(row, 0)).optional())
        .map_err(sql_error)
}

/// Remembers that reading `id` was recorded under `seq`.
pub fn remember_reading(conn: &Connection, id: &str, seq: Seq) -> Result<()> {
    let values = params![int(seq)?, id];
    conn.prepare_cached("INSERT INTO reading_ids (seq, id) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(values))
        .map_err(sql_error)?;
    Ok(())
}

/// Forgets the reading ids of seqs below `horizon`.
pub fn forget_readings_before(conn: &Connection, horizon: Seq) -> Result<()> {
    if horizon == 0 {
        return Ok(());
    }
    let horizon = int(horizon)?;
    conn.prepare_cached("DELETE FROM reading_ids WHERE seq < ?1")
        .and_then(|mut s| s.execute([horizon]))
        .map_err(sql_error)?;
    Ok(())
}

// The inflight slot.

/// The key of the inflight batch and its number of records, if a batch is inflight.
pub fn inflight_summary(conn: &Connection) -> Result<Option<(String, u64)>> {
    conn.query_row("SELECT key, records FROM inflight WHERE slot = 1", [], |row| {
        Ok((row.get(0)?, uint(row, 1)?))
    })
    .optional()
    .map_err(sql_error)
}

/// The inflight batch, with its latest retry state.
pub fn inflight(conn: &Connection) -> Result<Option<Batch>> {
    let row = conn
        .query_row("SELECT batch, retry FROM inflight WHERE slot = 1", [], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .optional()
        .map_err(sql_error)?;
    let Some((batch, retry)) = row else { return Ok(None) };
    let mut batch: Batch = stored::decode(&batch)?;
    batch.retry = retry.as_deref().map(stored::decode).transpose()?;
    Ok(Some(batch))
}

/// Fills the (empty) inflight slot with `batch`. Its retry state gets a column of its own, so
/// a retry rewrites that rather than the whole frozen body.
pub fn put_inflight(conn: &Connection, batch: &Batch) -> Result<()> {
    let retry = batch.retry.as_ref().map(stored::encode).transpose()?;
    conn.execute(
        "INSERT INTO inflight (slot, key, records, batch, retry) VALUES (1, ?1, ?2, ?3, ?4)",
        params![batch.key, int(batch.records.len() as u64)?, stored::encode(batch)?, retry],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// Stores `retry` for the inflight batch `key`; false when `key` is not inflight.
pub fn set_inflight_retry(conn: &Connection, key: &str, retry: &RetryState) -> Result<bool> {
    let updated = conn
        .execute(
            "UPDATE inflight SET retry = ?1 WHERE key = ?2",
            params![stored::encode(retry)?, key],
        )
        .map_err(sql_error)?;
    Ok(updated > 0)
}

/// Empties the inflight slot if it holds batch `key`; returns its number of records.
pub fn delete_inflight(conn: &Connection, key: &str) -> Result<Option<u64>> {
    let Some((inflight, records)) = inflight_summary(conn)? else { return Ok(None) };
    if inflight != key {
        return Ok(None);
    }
    conn.execute("DELETE FROM inflight WHERE slot = 1", []).map_err(sql_error)?;
    Ok(Some(records))
}

// Dead letters.

/// Stores `dead` in the dead-letter table.
pub fn put_dead(conn: &Connection, dead: &DeadBatch) -> Result<()> {
    let s = dead.summary();
    conn.execute(
        "INSERT INTO dead (first_seq, last_seq, key, records, failure, batch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            int(s.first_seq)?,
            int(s.last_seq)?,
            s.key,
            int(s.records)?,
            stored::encode(&s.failure)?,
            stored::encode(&dead.records)?,
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

/// The dead batches, lowest first seq first, without their records.
pub fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>> {
    let sql = "SELECT key, first_seq, last_seq, records, failure FROM dead ORDER BY first_seq";
    let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    let mut letters = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let column = |idx| uint(row, idx).map_err(sql_error);
        letters.push(DeadLetter {
            key: row.get(0).map_err(sql_error)?,
            first_seq: column(1)?,
            last_seq: column(2)?,
            records: column(3)?,
            failure: decode_column::<Failure>(row, 4)?,
        });
    }
    Ok(letters)
}

/// Number of dead batches and of their records.
pub fn dead_counts(conn: &Connection) -> Result<(u64, u64)> {
    conn.query_row("SELECT count(*), coalesce(sum(records), 0) FROM dead", [], |row| {
        Ok((uint(row, 0)?, uint(row, 1)?))
    })
    .map_err(sql_error)
}

/// Deletes the oldest dead batches (lowest first seq) while they hold more than `max_records`
/// records; returns how many records it deleted.
pub fn evict_dead(conn: &Connection, max_records: u64) -> Result<u64> {
    let (_, mut held) = dead_counts(conn)?;
    let mut evicted = 0;
    while held > max_records {
        let oldest = conn
            .query_row(
                "SELECT first_seq, records FROM dead ORDER BY first_seq LIMIT 1",
                [],
                |row| Ok((uint(row, 0)?, uint(row, 1)?)),
            )
            .optional()
            .map_err(sql_error)?;
        let Some((first_seq, records)) = oldest else { break };
        conn.execute("DELETE FROM dead WHERE first_seq = ?1", [int(first_seq)?])
            .map_err(sql_error)?;
        held -= records.min(held);
        evicted += records;
    }
    Ok(evicted)
}

/// Deletes dead batch `key` (the lowest first seq, should a key repeat) and returns its
/// records, in the order they were sent.
pub fn take_dead(conn: &Connection, key: &str) -> Result<Option<Vec<Record>>> {
    let row = conn
        .query_row(
            "SELECT first_seq, batch FROM dead WHERE key = ?1 ORDER BY first_seq LIMIT 1",
            [key],
            |row| Ok((uint(row, 0)?, row.get::<_, String>(1)?)),
        )
        .optional()
        .map_err(sql_error)?;
    let Some((first_seq, records)) = row else { return Ok(None) };
    conn.execute("DELETE FROM dead WHERE first_seq = ?1", [int(first_seq)?]).map_err(sql_error)?;
    stored::decode(&records).map(Some)
}
