//! [`Syncer`]: drains the outbox to the collector, batch by batch, under the OTLP retry rules.
//!
//! The syncer never sleeps. [`Syncer::flush`] sends until the outbox is drained, a retryable
//! failure calls for a wait, or the per-call batch budget is spent, and says in
//! [`FlushOutcome::next_attempt_at_ms`] when to call again; the caller's timer (or the
//! browser's `online` event, via [`Syncer::network_restored`]) decides. Backoff state lives in
//! the persisted inflight batch, so a restarted worker honours it too.
//!
//! A batch is persisted as inflight (records moved out of the queue, key and body frozen) before
//! its first send, and leaves only when acknowledged (a 2xx whose body is an OTLP
//! `ExportLogsServiceResponse`: a captive portal's `200 text/html` is not one) or finally
//! refused (dead-lettered). A 401/403 holds the queue until [`Syncer::reconfigure`] brings new
//! credentials.
//!
//! When storage is too full to persist a batch as inflight (a browser over its quota refuses
//! every write but deletes), the batch is sent straight from the queue instead, its retry
//! state held in memory, and its acknowledgement deletes the records from the queue
//! ([`OutboxStore::ack_queued`]), so a full outbox still drains. A worker stopped meanwhile
//! loses only that memory: the records are still queued, and the next batch that carries them
//! comes under a new key with the same record ids, which the collector stores once.
//!
//! While a batch's request is on the wire, the next batch is read, encoded and compressed
//! ([`super::ahead`]); it is taken as inflight only after the current batch is settled, so it
//! too is persisted before its first send, and it is dropped unsent when the flush stops.
//!
//! One syncer per worker: [`Syncer::reconfigure`] changes where and how it sends in place, so
//! a new endpoint never starts a second flush beside a running one.
//! A worker killed anywhere in between resends the same key and body when it comes back, so a
//! collector that dedupes on `Idempotency-Key` stores each record once.

use std::cell::{Cell, RefCell};

use edge_wire::response as otlp_response;

use super::ahead::{both, Ahead, Made};
use super::batcher::make_batch;
use super::config::SyncConfig;
use super::env::{unit_interval, Env};
use super::error::{OutboxError, StoreError, TransportError};
use super::otlp::{Losses, ModelTelemetry, Origin};
use super::recorder::ensure_device_id;
use super::retry::{classify, Disposition};
use super::store::{Ack, Batch, Failure, OutboxStore, RetryState};
use super::transport::{HttpResponse, Transport};
use super::wire::build_request;

/// Longest excerpt of a refusal's response body kept with a dead batch.
const REASON_MAX_BYTES: usize = 1024;

/// How many times one flush rebuilds a batch whose records changed under it (a concurrent
/// eviction) before giving up until the next call.
const MAX_CONFLICT_RETRIES: u32 = 3;

/// Where a flush stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum FlushStatus {
    /// Nothing left to send.
    #[default]
    Drained,
    /// A retryable failure (now or earlier): call again at `next_attempt_at_ms`.
    Backoff,
    /// The per-call batch budget is spent and more is queued: call again now.
    MorePending,
    /// Another flush is running; this call did nothing.
    AlreadyRunning,
    /// The collector refused our credentials (401/403): the queue is held until
    /// [`Syncer::reconfigure`] gives new ones (or `next_attempt_at_ms` re-checks them).
    AuthNeeded,
}

/// What one [`Syncer::flush`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlushOutcome {
    /// Where it stopped.
    pub status: FlushStatus,
    /// Batches acknowledged.
    pub sent_batches: u64,
    /// Records acknowledged (partially rejected ones included).
    pub sent_records: u64,
    /// Records the collector reported rejecting (partial success).
    pub rejected_records: u64,
    /// Batches moved to the dead-letter store.
    pub dead_lettered_batches: u64,
    /// Records moved to the dead-letter store.
    pub dead_lettered_records: u64,
    /// Body bytes sent in acknowledged batches (gzipped size when gzipped).
    pub wire_bytes: u64,
    /// Uncompressed JSON bytes of acknowledged batches.
    pub json_bytes: u64,
    /// When to call again: the backoff deadline, now for [`FlushStatus::MorePending`], or
    /// `None` when drained or already running.
    pub next_attempt_at_ms: Option<u64>,
    /// The latest failure seen (retryable or not), for display.
    pub last_error: Option<String>,
}

/// Sends the outbox to the collector. One per worker; share the store with the [`super::Recorder`].
#[derive(Debug)]
pub struct Syncer<S, T, E> {
    store: S,
    transport: T,
    env: E,
    config: RefCell<SyncConfig>,
    running: Cell<bool>,
    device_id: RefCell<Option<String>>,
    /// The batch being sent straight from the queue because storage could not hold it as
    /// inflight (see the module docs), with its retry state.
    unpersisted: RefCell<Option<Batch>>,
    /// The host's model state, frozen into each batch's resource when the batch is made.
    model: RefCell<ModelTelemetry>,
    /// Most records per batch the endpoint has taken since it refused a larger one as too
    /// large (413), when it has; below `max_batch_records`.
    endpoint_cap: Cell<Option<usize>>,
}

/// Where the batch being sent is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Persisted as the store's inflight batch.
    Inflight,
    /// Only in [`Syncer::unpersisted`]; its records are still queued.
    Unpersisted,
}

/// Clears the running flag when the flush ends, returns early or is dropped mid-await.
struct RunningGuard<'a>(&'a Cell<bool>);

impl<'a> RunningGuard<'a> {
    fn acquire(flag: &'a Cell<bool>) -> Option<RunningGuard<'a>> {
        // Lazily: a guard built and dropped on the refusal path would clear the owner's flag.
        (!flag.replace(true)).then(|| RunningGuard(flag))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<S: OutboxStore, T: Transport, E: Env> Syncer<S, T, E> {
    /// A syncer over `store`, sending through `transport`; fails on an invalid `config`.
    pub fn new(store: S, transport: T, env: E, config: SyncConfig) -> Result<Self, OutboxError> {
        config.validate()?;
        Ok(Syncer {
            store,
            transport,
            env,
            config: RefCell::new(config),
            running: Cell::new(false),
            device_id: RefCell::new(None),
            unpersisted: RefCell::new(None),
            model: RefCell::new(ModelTelemetry::default()),
            endpoint_cap: Cell::new(None),
        })
    }

    /// The underlying store (for stats, dead letters and re-drive).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> SyncConfig {
        self.config.borrow().clone()
    }

    /// Sends to another endpoint, or with other credentials, from the next batch on; a flush in
    /// progress finishes its current request first. When the inflight batch is waiting for new
    /// credentials, the wait ends now. Fails (changing nothing) on an invalid `config`.
    pub async fn reconfigure(&self, config: SyncConfig) -> Result<(), OutboxError> {
        config.validate()?;
        *self.config.borrow_mut() = config;
        // Another endpoint (or the same one reconfigured) may take larger batches again.
        self.endpoint_cap.set(None);
        let now = self.env.now_ms();
        if let Some((batch, slot)) = self.current().await? {
            if let Some(retry) = batch.retry.filter(|r| r.auth_needed) {
                let retry = RetryState { not_before_ms: now, auth_needed: false, ..retry };
                self.set_retry(slot, &batch.key, &retry).await?;
            }
        }
        Ok(())
    }

    /// Sets what the next batches say of the host's models (active version, updates refused
    /// and rolled back).
    pub fn set_model_telemetry(&self, model: ModelTelemetry) {
        *self.model.borrow_mut() = model;
    }

    /// The batch being sent, persisted or not.
    async fn current(&self) -> Result<Option<(Batch, Slot)>, OutboxError> {
        if let Some(batch) = self.store.inflight().await? {
            return Ok(Some((batch, Slot::Inflight)));
        }
        Ok(self.unpersisted.borrow().clone().map(|b| (b, Slot::Unpersisted)))
    }

    /// Records the backoff state of the batch `key` wherever it is kept.
    async fn set_retry(
        &self,
        slot: Slot,
        key: &str,
        retry: &RetryState,
    ) -> Result<(), OutboxError> {
        match slot {
            Slot::Inflight => {
                self.store.set_inflight_retry(key, retry).await?;
            }
            Slot::Unpersisted => {
                if let Some(batch) = self.unpersisted.borrow_mut().as_mut().filter(|b| b.key == key)
                {
                    batch.retry = Some(retry.clone());
                }
            }
        }
        Ok(())
    }

    /// Whether a flush is in progress.
    pub fn is_running(&self) -> bool {
        self.running.get()
    }

    /// Sends queued records until drained, backing off, or out of per-call budget.
    ///
    /// Returns at once with [`FlushStatus::AlreadyRunning`] if another flush is in progress, and
    /// with [`FlushStatus::Backoff`] (sending nothing) if the inflight batch's retry time has not
    /// come. `Err` only when the store fails; the outbox is then as the last completed step left
    /// it, and the next call resumes from there.
    pub async fn flush(&self) -> Result<FlushOutcome, OutboxError> {
        let Some(_running) = RunningGuard::acquire(&self.running) else {
            return Ok(FlushOutcome {
                status: FlushStatus::AlreadyRunning,
                ..FlushOutcome::default()
            });
        };
        let origin = self.origin().await?;
        let config = self.config();
        let mut out = FlushOutcome::default();
        let mut attempted = 0;
        let mut conflicts = 0;
        // The next batch, made while the previous request was on the wire (see `ahead`).
        let mut ahead: Option<Ahead> = None;
        loop {
            let now = self.env.now_ms();
            let (inflight, made) = match ahead.take() {
                Some(Ahead::Taken(Made { batch, request })) => {
                    (Some((batch, Slot::Inflight, request)), None)
                }
                // Made ahead means this flush settled the previous batch: nothing is inflight
                // (another worker's batch would make `begin_inflight` refuse this one, and the
                // next turn looks again), so the store need not be asked.
                Some(Ahead::Made(made)) => (None, Some(made)),
                None => (self.current().await?.map(|(batch, slot)| (batch, slot, None)), None),
            };
            if attempted >= config.max_batches_per_flush {
                if inflight.is_some() || self.store.queued().await? > 0 {
                    out.status = FlushStatus::MorePending;
                    out.next_attempt_at_ms = Some(now);
                }
                return Ok(out);
            }
            let (batch, slot, request) = match inflight {
                Some(current) => current,
                None => {
                    let made = match made {
                        Some(made) => made,
                        None => match self.make(&origin, &config, now).await? {
                            Some(batch) => Made { batch, request: None },
                            None => return Ok(out),
                        },
                    };
                    let Made { batch, request } = made;
                    match self.store.begin_inflight(&batch).await {
                        Ok(()) => (batch, Slot::Inflight, request),
                        Err(StoreError::Conflict(_)) if conflicts < MAX_CONFLICT_RETRIES => {
                            conflicts += 1;
                            continue;
                        }
                        Err(StoreError::QuotaExceeded(_)) => {
                            *self.unpersisted.borrow_mut() = Some(batch.clone());
                            (batch, Slot::Unpersisted, request)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if let Some(retry) = batch.retry.as_ref().filter(|r| r.not_before_ms > now) {
                let not_before_ms =
                    self.bounded_wait(slot, &batch.key, retry, now, &config).await?;
                out.status =
                    if retry.auth_needed { FlushStatus::AuthNeeded } else { FlushStatus::Backoff };
                out.next_attempt_at_ms = Some(not_before_ms);
                out.last_error = Some(retry.last_error.clone());
                return Ok(out);
            }
            attempted += 1;
            let request = request.unwrap_or_else(|| build_request(&batch, &config));
            let wire_bytes = request.body.len() as u64;
            // Only an inflight batch's records are out of the queue's front: a batch sent
            // straight from the queue would be read again as the next one.
            let read_ahead = slot == Slot::Inflight && attempted < config.max_batches_per_flush;
            let next = async {
                if read_ahead {
                    self.make_ahead(&origin, &config).await
                } else {
                    None
                }
            };
            let (result, next) = both(self.transport.send(request), next).await;
            ahead = next.map(Ahead::Made);
            let sent = Sent { result, wire_bytes };
            if !self.settle(batch, slot, sent, &mut ahead, &mut out, &config).await? {
                return Ok(out);
            }
        }
    }

    /// The next batch from the front of the queue, or `None` when the queue is empty.
    async fn make(
        &self,
        origin: &Origin,
        config: &SyncConfig,
        now: u64,
    ) -> Result<Option<Batch>, OutboxError> {
        let most = self
            .endpoint_cap
            .get()
            .map_or(config.max_batch_records, |cap| cap.min(config.max_batch_records));
        let candidates = self.store.oldest(most).await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        // The loss counters are frozen into the batch when it is made: read them only then,
        // not on every flush that finds nothing to send.
        let origin = Origin {
            losses: Losses::of(&self.store.totals().await?),
            model: self.model.borrow().clone(),
            ..origin.clone()
        };
        let nonce = self.env.random_u64();
        make_batch(candidates, &origin, config, now, nonce)
    }

    /// [`Self::make`] with its request built, while the current request is on the wire. A
    /// failure here only means no batch is ready: the next step makes it again and meets the
    /// failure there.
    async fn make_ahead(&self, origin: &Origin, config: &SyncConfig) -> Option<Made> {
        let batch = self.make(origin, config, self.env.now_ms()).await.ok().flatten()?;
        let request = Some(build_request(&batch, config));
        Some(Made { batch, request })
    }

    /// The stored retry time of the inflight batch `key`, pulled in (and stored) when it lies
    /// further ahead than any wait the policy can ask for: the clock jumped backwards since it
    /// was set. Without this, a device whose clock was an hour fast would stop sending for an
    /// hour after the clock is corrected.
    async fn bounded_wait(
        &self,
        slot: Slot,
        key: &str,
        retry: &RetryState,
        now: u64,
        config: &SyncConfig,
    ) -> Result<u64, OutboxError> {
        let latest = now.saturating_add(config.retry.max_wait_ms());
        if retry.not_before_ms <= latest {
            return Ok(retry.not_before_ms);
        }
        let pulled_in = RetryState { not_before_ms: latest, ..retry.clone() };
        self.set_retry(slot, key, &pulled_in).await?;
        Ok(latest)
    }

    /// Applies the policy to the answer to sending `batch` once. Returns whether the flush may
    /// go on with the next batch (false after a retryable failure). An acknowledgement takes
    /// the batch made `ahead` as inflight in the same store transaction when it can.
    async fn settle(
        &self,
        batch: Batch,
        slot: Slot,
        sent: Sent,
        ahead: &mut Option<Ahead>,
        out: &mut FlushOutcome,
        config: &SyncConfig,
    ) -> Result<bool, OutboxError> {
        let Sent { result, wire_bytes } = sent;
        let attempts = batch.retry.as_ref().map_or(0, |r| r.attempts).saturating_add(1);
        let now = self.env.now_ms();
        let records = batch.records.len() as u64;
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                let wait = Wait::Backoff;
                return self
                    .retry_later(&batch, slot, attempts, wait, e.to_string(), out, now)
                    .await;
            }
        };
        match classify(response.status) {
            Disposition::Acknowledge => {
                let content_type = response.header("content-type");
                let partial = match otlp_response::parse(content_type, &response.body) {
                    Ok(partial) => partial,
                    Err(e) => {
                        // Not our collector answering (a captive portal, a proxy's page): the
                        // batch was not delivered. Keep it and try again later.
                        let error = format!("HTTP {}: {e}", response.status);
                        let wait = Wait::Backoff;
                        return self
                            .retry_later(&batch, slot, attempts, wait, error, out, now)
                            .await;
                    }
                };
                let ack = Ack {
                    key: batch.key.clone(),
                    rejected: partial.rejected,
                    message: partial.message,
                };
                match (slot, ahead.take()) {
                    (Slot::Inflight, Some(Ahead::Made(made))) => {
                        let (_, taken) = self.store.ack_and_begin(&ack, &made.batch).await?;
                        // Not taken (a conflict, storage full): the next turn makes the batch
                        // afresh and meets the reason there.
                        *ahead = taken.ok().map(|()| Ahead::Taken(made));
                    }
                    (Slot::Inflight, kept) => {
                        *ahead = kept;
                        self.store.ack_inflight(&ack).await?;
                    }
                    (Slot::Unpersisted, kept) => {
                        *ahead = kept;
                        self.store.ack_queued(&batch, &ack).await?;
                        self.unpersisted.borrow_mut().take();
                    }
                }
                out.sent_batches += 1;
                out.sent_records += records;
                out.rejected_records += partial.rejected;
                out.wire_bytes += wire_bytes;
                out.json_bytes += batch.body.len() as u64;
                Ok(true)
            }
            Disposition::Retry => {
                let wait = match response
                    .header("retry-after")
                    .and_then(|v| config.retry.retry_after_ms(v, now))
                {
                    Some(ms) => Wait::Server(ms),
                    None => Wait::Backoff,
                };
                let error = match response.status {
                    300..=399 => format!("HTTP {}: redirect not followed", response.status),
                    status => format!("HTTP {status}"),
                };
                self.retry_later(&batch, slot, attempts, wait, error, out, now).await
            }
            Disposition::AuthNeeded => {
                let error = format!(
                    "HTTP {}: authentication needed ({})",
                    response.status,
                    excerpt(&response.body)
                );
                let wait = Wait::Auth(config.retry.max_backoff_ms);
                self.retry_later(&batch, slot, attempts, wait, error, out, now).await
            }
            Disposition::DeadLetter if response.status == 413 && records > 1 => {
                // Too large for this endpoint: nothing of it was stored there. Cut it again in
                // halves (a single record too large is dead-lettered below).
                let smaller = (batch.records.len() / 2).max(1);
                let released = match slot {
                    Slot::Inflight => match self.store.release_inflight(&batch.key).await {
                        Ok(released) => released,
                        Err(StoreError::QuotaExceeded(_)) => false,
                        Err(e) => return Err(e.into()),
                    },
                    // Its records never left the queue; forgetting it is enough.
                    Slot::Unpersisted => self.unpersisted.borrow_mut().take().is_some(),
                };
                if !released {
                    return self.dead_letter(batch, slot, response, attempts, out, config).await;
                }
                self.endpoint_cap.set(Some(smaller));
                // Made ahead at the old size, behind the records just put back.
                *ahead = None;
                let why = excerpt(&response.body);
                out.last_error = Some(format!(
                    "HTTP 413: {why} (a batch of {records} records was too large for the \
                     endpoint: batches of at most {smaller} from now on)"
                ));
                Ok(true)
            }
            Disposition::DeadLetter => {
                self.dead_letter(batch, slot, response, attempts, out, config).await
            }
        }
    }

    /// Moves `batch`, finally refused with `response`, to the dead-letter store.
    async fn dead_letter(
        &self,
        batch: Batch,
        slot: Slot,
        response: HttpResponse,
        attempts: u32,
        out: &mut FlushOutcome,
        config: &SyncConfig,
    ) -> Result<bool, OutboxError> {
        let now = self.env.now_ms();
        let records = batch.records.len() as u64;
        let message = excerpt(&response.body);
        let error = format!("HTTP {}: {message}", response.status);
        if slot == Slot::Unpersisted {
            // Dead-lettering writes the batch: only possible once storage has room.
            match self.store.begin_inflight(&batch).await {
                Ok(()) => {
                    self.unpersisted.borrow_mut().take();
                }
                Err(StoreError::QuotaExceeded(_)) => {
                    let error =
                        format!("{error} (kept queued: storage too full to dead-letter it)");
                    return self
                        .retry_later(&batch, slot, attempts, Wait::Backoff, error, out, now)
                        .await;
                }
                Err(StoreError::Conflict(_)) => {
                    // Its records changed under it (evicted): the next batch is cut anew.
                    self.unpersisted.borrow_mut().take();
                    out.last_error = Some(error);
                    return Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
        out.last_error = Some(error);
        let failure = Failure { status: Some(response.status), message, at_ms: now, attempts };
        let max = config.max_dead_letter_records;
        self.store.dead_letter_inflight(&batch.key, &failure, max).await?;
        out.dead_lettered_batches += 1;
        out.dead_lettered_records += records;
        Ok(true)
    }

    /// Records a failure that keeps the batch: waits as `wait` says.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per outcome; a struct would only rename them"
    )]
    async fn retry_later(
        &self,
        batch: &Batch,
        slot: Slot,
        attempts: u32,
        wait: Wait,
        error: String,
        out: &mut FlushOutcome,
        now: u64,
    ) -> Result<bool, OutboxError> {
        let policy = self.config.borrow().retry;
        let delay = match wait {
            Wait::Backoff => policy.backoff_ms(attempts, unit_interval(&self.env)),
            Wait::Server(ms) | Wait::Auth(ms) => ms,
        };
        let auth_needed = matches!(wait, Wait::Auth(_));
        let retry = RetryState {
            attempts,
            not_before_ms: now.saturating_add(delay),
            server_directed: !matches!(wait, Wait::Backoff),
            last_error: error.clone(),
            auth_needed,
        };
        self.set_retry(slot, &batch.key, &retry).await?;
        out.status = if auth_needed { FlushStatus::AuthNeeded } else { FlushStatus::Backoff };
        out.next_attempt_at_ms = Some(retry.not_before_ms);
        out.last_error = Some(error);
        Ok(false)
    }

    /// The network is back (`online` event): cuts our own backoff short so the next flush sends
    /// at once. A server's `Retry-After` is still honoured. Returns whether a wait was cut.
    pub async fn network_restored(&self) -> Result<bool, OutboxError> {
        let now = self.env.now_ms();
        let Some((batch, slot)) = self.current().await? else { return Ok(false) };
        let Some(retry) = batch.retry.filter(|r| !r.server_directed && r.not_before_ms > now)
        else {
            return Ok(false);
        };
        let retry = RetryState { not_before_ms: now, ..retry };
        self.set_retry(slot, &batch.key, &retry).await?;
        Ok(true)
    }

    /// Moves every dead batch back into the queue; returns the records moved.
    pub async fn redrive_all(&self) -> Result<u64, OutboxError> {
        let mut moved = 0;
        for dead in self.store.dead_letters().await? {
            moved += self.store.redrive_dead_letter(&dead.key).await?.unwrap_or(0);
        }
        Ok(moved)
    }

    async fn origin(&self) -> Result<Origin, OutboxError> {
        let cached = self.device_id.borrow().clone();
        let device_id = match cached {
            Some(id) => id,
            None => {
                let id = ensure_device_id(&self.store, &self.env).await?;
                *self.device_id.borrow_mut() = Some(id.clone());
                id
            }
        };
        Ok(Origin::new(device_id, self.config.borrow().service_version.clone()))
    }
}

/// One request's answer (or why none came), with the size of the body sent.
struct Sent {
    result: Result<HttpResponse, TransportError>,
    wire_bytes: u64,
}

/// How long a batch that was not delivered waits before its next attempt.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Our own jittered exponential backoff.
    Backoff,
    /// The server's `Retry-After`, already capped.
    Server(u64),
    /// Credentials refused: re-check after this long unless new ones come first.
    Auth(u64),
}

/// The start of a response body as text, for the dead-letter reason.
fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(REASON_MAX_BYTES)];
    String::from_utf8_lossy(head).into_owned()
}
