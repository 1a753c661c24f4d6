// The accounting of a run: the readings the page got acknowledged (a multiset of their f32
// scores) against the records the collector stored. A stored record is matched to one
// acknowledged reading with the same score; what is left over on either side is a loss (an
// acknowledged reading with no record) or a duplicate (a record beyond the readings
// acknowledged). Per device, every seq from 0 to the highest must be present: the outbox hands
// seqs out from 0 in the transaction that stores the reading, so a gap is a lost reading.
import { scoreKey } from './stream.mjs';

/** Seq gaps per device: `{ device: { count, min_seq, max_seq, missing } }`. */
export function seqGaps(records) {
  const by = new Map();
  for (const r of records) {
    if (!by.has(r.device)) by.set(r.device, new Set());
    by.get(r.device).add(r.seq);
  }
  const out = {};
  for (const [device, seqs] of by) {
    let max = -1,
      min = Infinity;
    for (const s of seqs) {
      max = Math.max(max, s);
      min = Math.min(min, s);
    }
    out[device] = { count: seqs.size, min_seq: min, max_seq: max, missing: max + 1 - seqs.size };
  }
  return out;
}

/** Matches stored records to acknowledged readings. `acked`: Map scoreKey -> count. */
export function account(acked, sent, records) {
  const left = new Map(acked);
  let matched = 0;
  let unscored = 0;
  for (const r of records) {
    if (r.score === null) {
      unscored++;
      continue;
    }
    const k = scoreKey(r.score);
    const c = left.get(k);
    if (!c) continue;
    matched++;
    if (c === 1) left.delete(k);
    else left.set(k, c - 1);
  }
  const devices = seqGaps(records);
  const seqGapsTotal = Object.values(devices).reduce((n, d) => n + d.missing, 0);
  return {
    sent,
    received: records.length,
    matched,
    unscored,
    lost: sent - matched,
    duplicated: records.length - matched,
    seq_gaps: seqGapsTotal,
    devices,
  };
}
