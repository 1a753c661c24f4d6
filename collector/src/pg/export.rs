//! The readings devices sent, read back for retraining, on PostgreSQL: the SQLite store's
//! rows (`store::export`), a page at a time along `records.id`.

use super::{PgError, PgStore};
use crate::store::{ExportFilter, ExportRow, StoreError};

impl PgStore {
    /// Up to `limit` rows matching `filter` after cursor `after`, in storage order.
    pub fn export_page(
        &self,
        filter: &ExportFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT id, reading_json, verdict FROM (
                     SELECT id, reading_json, device_id, time_unix_nano,
                            CASE WHEN score IS NOT NULL THEN anomaly ELSE cloud_anomaly END
                                AS verdict,
                            CASE WHEN score IS NOT NULL THEN model_version
                                 ELSE cloud_model_version END AS judged_by
                     FROM records WHERE id > $1 AND reading_json IS NOT NULL
                 ) r
                 WHERE verdict IS NOT NULL
                   AND ($2::text IS NULL OR device_id = $2)
                   AND ($3::int8 IS NULL OR time_unix_nano >= $3 * 1000000)
                   AND ($4::int8 IS NULL OR time_unix_nano < $4 * 1000000)
                   AND ($5::text IS NULL OR judged_by = $5)
                   AND (NOT $6 OR NOT verdict)
                 ORDER BY id LIMIT $7",
                &[
                    &after,
                    &filter.device,
                    &filter.from_ms,
                    &filter.to_ms,
                    &filter.model_version,
                    &filter.normal_only,
                    &i64::from(limit),
                ],
            )
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|row| ExportRow {
                cursor: row.get(0),
                reading_json: row.get(1),
                anomaly: row.get(2),
            })
            .collect())
    }
}
