//! OTLP attribute names: what the device writes and the collector reads.
//!
//! Record attributes describe one reading; resource attributes describe the device and are
//! shared by every record of a batch.

/// Record attribute: the globally unique id `"{device_id}:{seq}"` (stringValue). Required.
pub const RECORD_ID: &str = "edge.record_id";
/// Record attribute: the per-device sequence number (intValue). Consecutive from 0 per device,
/// so a gap at the collector is a lost reading.
pub const SEQ: &str = "edge.seq";
/// Record attribute: the anomaly score (doubleValue); absent for unscored readings.
pub const SCORE: &str = "edge.score";
/// Record attribute: whether the score crossed the model's threshold (boolValue).
pub const ANOMALY: &str = "edge.anomaly";
/// Record attribute: the version of the model that scored the reading (stringValue).
pub const MODEL_VERSION: &str = "edge.model_version";
/// Record attribute: scoring latency in microseconds (intValue; doubleValue accepted).
pub const LATENCY_US: &str = "edge.latency_us";
/// Record attribute: false for a raw reading that still needs scoring in the cloud (boolValue).
pub const SCORED: &str = "edge.scored";
/// Record attribute: the raw reading of an unscored record (arrayValue of doubleValue, with the
/// [`crate::double`] encoding for non-finite elements).
pub const READING: &str = "edge.reading";
/// Record attribute: why an unscored record was not scored on the device (stringValue, a stable
/// code such as `NOT_LOADED` or `NON_FINITE`).
pub const UNSCORED_REASON: &str = "edge.unscored_reason";

/// Record attribute: the channels that contributed most to a flagged reading's score, largest
/// share first (arrayValue of stringValue; the model's feature names, a window model's columns
/// summed per sensor). Sent with anomalies only; absent when the model cannot say.
pub const CONTRIBUTION_CHANNELS: &str = "edge.contributions.channels";
/// Record attribute: each of [`CONTRIBUTION_CHANNELS`]' share of the score, in the same order
/// (arrayValue of doubleValue, each in `[0, 1]`, summing to at most 1: the channels left out
/// hold the rest).
pub const CONTRIBUTION_SHARES: &str = "edge.contributions.shares";

/// Resource attribute: the device id (stringValue); also the prefix of every record id.
pub const DEVICE_ID: &str = "device.id";
/// Resource attribute: the app version (stringValue).
pub const SERVICE_VERSION: &str = "service.version";
/// Resource attribute: the service name, always [`SERVICE_NAME`] (stringValue).
pub const SERVICE_NAME_KEY: &str = "service.name";
/// Prefix of the resource attributes counting readings the device did not record, by reason:
/// `edge.dropped.<REASON>` (intValue, cumulative since the device's outbox was created).
pub const DROPPED_PREFIX: &str = "edge.dropped.";
/// Resource attribute: recorded readings the device's outbox evicted before sending them (full
/// queue or full storage), cumulative (intValue). Each one is a gap in the device's seqs.
pub const EVICTED_TOTAL: &str = "edge.outbox.evicted_total";
/// Resource attribute: dead-lettered readings the device dropped at its dead-letter cap,
/// cumulative (intValue).
pub const DEAD_LETTER_EVICTED_TOTAL: &str = "edge.outbox.dead_letter_evicted_total";

/// Resource attribute: the model version active on the device when the batch was made
/// (stringValue; absent with no model). Each record says which version scored it.
pub const MODEL_ACTIVE: &str = "edge.model.active";
/// Resource attribute: model releases the device activated, cumulative (intValue).
pub const MODEL_ACTIVATIONS_TOTAL: &str = "edge.model.activations_total";
/// Resource attribute: model packages the device refused (signature, digests, contract, golden
/// scores, version), cumulative (intValue).
pub const MODEL_REFUSALS_TOTAL: &str = "edge.model.refusals_total";
/// Resource attribute: model rollbacks (asked for or by the device's watch), cumulative
/// (intValue).
pub const MODEL_ROLLBACKS_TOTAL: &str = "edge.model.rollbacks_total";
/// Resource attribute: the latest model event, `"<kind> <CODE> <version>"` (stringValue).
pub const MODEL_LAST_EVENT: &str = "edge.model.last_event";

/// `service.name` and the instrumentation scope name.
pub const SERVICE_NAME: &str = "edge-anomaly";

/// Metric: the score distribution of one model version on a device (cumulative Histogram;
/// explicit bounds are the training distribution's quantiles).
pub const METRIC_SCORE: &str = "edge.score";
/// Metric: the population stability index of the observed scores against the training ones
/// (Gauge, asDouble).
pub const METRIC_PSI: &str = "edge.drift.psi";
/// Metric: readings flagged as anomalies (monotonic cumulative Sum, asInt).
pub const METRIC_ANOMALIES: &str = "edge.anomalies";
/// Metric: quantiles of the observed scores from the device's sketch (Summary).
pub const METRIC_QUANTILES: &str = "edge.score.quantiles";
/// Data-point attribute of [`METRIC_SCORE`]: the training distribution's share of scores per
/// bucket, the reference of [`METRIC_PSI`] (arrayValue of doubleValue, one per bucket).
pub const EXPECTED_SHARES: &str = "edge.drift.expected_shares";
/// Data-point attribute of [`METRIC_ANOMALIES`]: the anomaly rate the model's metadata
/// expects on normal data (doubleValue).
pub const EXPECTED_ANOMALY_RATE: &str = "edge.anomalies.expected_rate";
