//! Cutting the queue into batches: at most N records and at most B bytes of JSON body, each
//! batch with its own idempotency key.
//!
//! The key is `{device}:{first_seq}-{last_seq}:{nonce}` with a random 64-bit nonce from the
//! injected [`super::Env`]: unique per logical batch even when the same seqs are batched again
//! after a re-drive (a different payload must never reuse a key), and readable in collector logs.

use super::config::SyncConfig;
use super::error::OutboxError;
use super::otlp::{self, BodySizer, Origin};
use super::record::{Record, Seq};
use super::store::Batch;

/// The `Idempotency-Key` of a batch.
pub fn idempotency_key(device_id: &str, first: Seq, last: Seq, nonce: u64) -> String {
    format!("{device_id}:{first}-{last}:{nonce:016x}")
}

/// How many of `candidates` (oldest first) fit one batch: at most `max_batch_records`, and at
/// most `max_batch_bytes` of body, except that the first record always goes (a record too big
/// for the cap is sent alone rather than stuck forever).
pub fn fit(
    candidates: &[Record],
    sizer: &BodySizer,
    config: &SyncConfig,
) -> Result<usize, OutboxError> {
    let mut total = sizer.envelope();
    let mut taken = 0;
    for record in candidates.iter().take(config.max_batch_records) {
        let added = sizer.record_len(record)? + usize::from(taken > 0);
        if taken > 0 && total + added > config.max_batch_bytes {
            break;
        }
        total += added;
        taken += 1;
    }
    Ok(taken)
}

/// Makes the next batch from `candidates` (the front of the queue, in queue order: seq order
/// except that re-driven records come after the ones queued before their re-drive); `None` when
/// there are none. The key names the first and last record's seqs as they stand in the batch.
pub fn make_batch(
    candidates: Vec<Record>,
    origin: &Origin,
    config: &SyncConfig,
    now_ms: u64,
    nonce: u64,
) -> Result<Option<Batch>, OutboxError> {
    let sizer = BodySizer::new(origin)?;
    let n = fit(&candidates, &sizer, config)?;
    let mut records = candidates;
    records.truncate(n);
    let (Some(first), Some(last)) = (records.first(), records.last()) else { return Ok(None) };
    let key = idempotency_key(&origin.device_id, first.seq, last.seq, nonce);
    let body = otlp::encode(&records, origin)?;
    Ok(Some(Batch { key, records, body, created_at_ms: now_ms, retry: None }))
}
