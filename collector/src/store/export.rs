//! The readings devices sent, read back for retraining: the rows of the pipeline's CSV.
//!
//! Only records that carry their reading can be exported (a device sends it with every unscored
//! record, and with scored ones when configured to), and only those with a verdict: the
//! device's flag, else the collector's from cloud scoring. Rows come a page at a time by rowid,
//! so an export of millions of records streams in constant memory.

use rusqlite::params;

use super::{Store, StoreError};

/// Which records an export holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only this device's.
    pub device: Option<String>,
    /// Only readings taken at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Only readings taken before this time (ms since the epoch).
    pub to_ms: Option<i64>,
    /// Only readings judged by this model version (the device's, or the cloud's for a reading
    /// the collector scored).
    pub model_version: Option<String>,
    /// Only readings judged normal.
    pub normal_only: bool,
}

/// One exported reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    /// Its rowid: the cursor of the next page.
    pub cursor: i64,
    /// The reading as stored (JSON array text).
    pub reading_json: String,
    /// The verdict.
    pub anomaly: bool,
}

impl Store {
    /// Up to `limit` rows matching `filter` after cursor `after`, in storage order.
    pub fn export_page(
        &self,
        filter: &ExportFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT rowid, reading_json, CASE WHEN score IS NOT NULL THEN anomaly ELSE cloud_anomaly END FROM records
             WHERE rowid > ?1 AND reading_json IS NOT NULL
               AND CASE WHEN score IS NOT NULL THEN anomaly ELSE cloud_anomaly END IS NOT NULL
               AND (?2 IS NULL OR device_id = ?2)
               AND (?3 IS NULL OR time_unix_nano >= ?3 * 1000000)
               AND (?4 IS NULL OR time_unix_nano < ?4 * 1000000)
               AND (?5 IS NULL OR COALESCE(CASE WHEN score IS NOT NULL THEN model_version END,
                                           cloud_model_version) = ?5)
               AND (?6 = 0 OR CASE WHEN score IS NOT NULL THEN anomaly ELSE cloud_anomaly END = 0)
             ORDER BY rowid LIMIT ?7",
        )?;
        let rows = stmt.query_map(
            params![
                after,
                filter.device,
                filter.from_ms,
                filter.to_ms,
                filter.model_version,
                filter.normal_only,
                limit
            ],
            |row| {
                Ok(ExportRow {
                    cursor: row.get(0)?,
                    reading_json: row.get(1)?,
                    anomaly: row.get(2)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
