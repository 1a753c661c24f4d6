//! The one place that knows the outbox's IndexedDB schema: database version, object stores,
//! indexes, how a database is opened and upgraded, and how old data is carried forward.
//!
//! | store         | key                | value                                             |
//! |---------------|--------------------|---------------------------------------------------|
//! | `queue`       | queue position     | `{pos, seq, record}`, record as JSON text         |
//! | `reading_ids` | seq                | `{id, seq}`: a page-assigned reading id           |
//! | `inflight`    | `"current"`        | a [`Batch`] being sent, records copied out of the queue (JSON text) |
//! | `sending`     | `"head"`, `"body"` | a batch being sent whose records stay queued: its range of queue positions and state (JSON text), and its body (text) |
//! | `dead`        | first seq          | a [`DeadBatch`] (JSON text)                       |
//! | `meta`        | name               | JSON text: `"device_id"`, `"next_seq"`, `"next_pos"`, `"totals"`, `"sync_settings"`, and the app's own values under `"app:{key}"` |
//! | `records`     | seq                | version 1's queue, emptied into `queue` on open   |
//!
//! `queue` has a unique index `by_seq` on `seq` (to take a batch's records out by seq), and
//! `reading_ids` a unique index `by_id` on `id` (to recognise a resent reading); only the ids of
//! the last [`READING_IDS_KEPT`] seqs are kept. A queued value holds a [`Record`].
//!
//! At most one batch is being sent, in one of two shapes (see [`super::idb_inflight`]): since
//! version 3 a batch that is a run of the queue stays there and `sending` names its positions,
//! so taking it and acknowledging it cost a few requests instead of one per record; `inflight`
//! holds a batch copied out of the queue, as version 2 wrote every batch and this version still
//! writes one that is not a run.
//!
//! Text values go through [`crate::outbox::stored`], which keeps non-finite floats. Keys are
//! numbers where order matters (IndexedDB orders numbers numerically; strings would put 10
//! before 9); f64 holds them exactly up to 2^53. The queue is keyed by its own position counter,
//! not by seq, so a re-driven record (old seq) joins the end of the queue.
//!
//! Upgrades never drop data: a new version only adds stores or indexes, and every store ever
//! created stays listed here. Version 1 kept the queue in `records` keyed by seq; [`open`] moves
//! those records into `queue` with their seq as position (so they keep their order, ahead of
//! anything queued later), a chunk per transaction, and is safe to interrupt and run again.
//!
//! Opening is careful about other connections: an upgrade waits for older connections to close
//! (they get `versionchange`), and one that never closes would leave the open pending forever,
//! so [`open`] gives up after a deadline ([`UPGRADE_TIMEOUT_MS`] by default) with
//! [`StoreError::UpgradeBlocked`]. This file drives that upgrade itself (web-sys), so a
//! timed-out upgrade that completes later still creates every store. Each connection closes itself on `versionchange`, so it never blocks a
//! newer worker's upgrade; [`super::idb_store`] reopens on next use.
//!
//! [`Record`]: crate::outbox::Record
//! [`READING_IDS_KEPT`]: crate::outbox::READING_IDS_KEPT
//! [`Batch`]: crate::outbox::Batch
//! [`DeadBatch`]: crate::outbox::DeadBatch

use idb::{Database, KeyRange, ObjectStore, Query, TransactionMode, TransactionResult};
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbDatabase, IdbFactory, IdbIndexParameters, IdbObjectStore, IdbOpenDbRequest,
};

use crate::outbox::StoreError;

/// Current schema version. Bump only together with an additive change below. Version 3 added
/// [`SENDING`]: a version 2 worker must not open a database it cannot read whole, and the bump
/// closes its connection (`versionchange`) and refuses its reopen.
pub const VERSION: u32 = 3;

/// How long an upgrade may wait for older connections to close.
pub const UPGRADE_TIMEOUT_MS: u32 = 10_000;

/// The queue, keyed by queue position.
pub const QUEUE: &str = "queue";
/// Index of [`QUEUE`] on the record's seq.
pub const QUEUE_BY_SEQ: &str = "by_seq";
/// Recent reading ids, keyed by the seq they were recorded under.
pub const READING_IDS: &str = "reading_ids";
/// Index of [`READING_IDS`] on the id.
pub const READING_IDS_BY_ID: &str = "by_id";
/// The batch being sent, copied out of the queue (every batch before version 3).
pub const INFLIGHT: &str = "inflight";
/// The batch being sent as a range of the queue: its head and body.
pub const SENDING: &str = "sending";
/// Dead-lettered batches.
pub const DEAD: &str = "dead";
/// Counters, totals, ids and settings.
pub const META: &str = "meta";
/// Version 1's queue, keyed by seq; empty once [`open`] has migrated it.
pub const LEGACY_RECORDS: &str = "records";

/// The inflight slot's key.
pub const INFLIGHT_KEY: &str = "current";
/// [`SENDING`] key: the batch's key, queue range, record count, creation time and retry state.
pub const SENDING_HEAD: &str = "head";
/// [`SENDING`] key: the batch's frozen body.
pub const SENDING_BODY: &str = "body";
/// Meta key: the device id.
pub const META_DEVICE_ID: &str = "device_id";
/// Meta key: the next seq to assign.
pub const META_NEXT_SEQ: &str = "next_seq";
/// Meta key: the next queue position.
pub const META_NEXT_POS: &str = "next_pos";
/// Meta key: the running totals ([`crate::outbox::OutboxStats`]).
pub const META_TOTALS: &str = "totals";
/// Meta key: the collector settings ([`crate::outbox::SyncSettings`]).
pub const META_SYNC_SETTINGS: &str = "sync_settings";
/// Meta key prefix of the app's own values ([`crate::outbox::OutboxStore::app_value`]), so an
/// app key never collides with the outbox's.
pub const META_APP_PREFIX: &str = "app:";

/// Legacy records moved per transaction.
const MIGRATE_CHUNK: u32 = 500;

/// Opens the outbox database `name`, upgrading it if needed (waiting at most `timeout_ms` for
/// older connections, see [`UPGRADE_TIMEOUT_MS`]) and migrating version 1's queue.
pub async fn open(name: &str, timeout_ms: u32) -> Result<Database, StoreError> {
    let raw = open_raw(name, timeout_ms).await?;
    let mut db = Database::from(raw.clone());
    // A newer version wants to upgrade: get out of its way. The store reopens on next use.
    db.on_version_change(move |_| raw.close());
    db.forget_callbacks();
    migrate_legacy_records(&db).await?;
    Ok(db)
}

/// The error name of a failed IndexedDB call, e.g. `"QuotaExceededError"`.
pub fn error_name(e: &idb::Error) -> Option<String> {
    use idb::Error as E;
    let value = match e {
        E::DomException(d) => return Some(d.name()),
        E::AddFailed(v)
        | E::ClearFailed(v)
        | E::CountFailed(v)
        | E::DeleteFailed(v)
        | E::GetAllFailed(v)
        | E::GetAllKeysFailed(v)
        | E::GetFailed(v)
        | E::GetKeyFailed(v)
        | E::IndexNotFound(v)
        | E::ObjectStoreNotFound(v)
        | E::TransactionOpenFailed(v)
        | E::UpdateFailed(v) => v,
        _ => return None,
    };
    value.dyn_ref::<DomException>().map(DomException::name)
}

/// An IndexedDB failure as a store error: a full disk is [`StoreError::QuotaExceeded`].
pub fn store_error(e: &idb::Error) -> StoreError {
    match error_name(e).as_deref() {
        Some("QuotaExceededError") => StoreError::QuotaExceeded(e.to_string()),
        Some(name) => StoreError::Backend(format!("{e} ({name})")),
        None => StoreError::Backend(e.to_string()),
    }
}

/// Waits for a transaction to commit. An abort is an error, named after the transaction's error
/// when `store` (one of its stores) can still tell it: storage full is reported at commit.
pub async fn commit(tx: idb::Transaction, store: &ObjectStore) -> Result<(), StoreError> {
    match tx.await {
        Ok(TransactionResult::Committed) => Ok(()),
        Ok(TransactionResult::Aborted) => {
            let cause = store.transaction().error();
            match cause.as_ref().map(DomException::name).as_deref() {
                Some("QuotaExceededError") => {
                    Err(StoreError::QuotaExceeded("transaction aborted: storage full".into()))
                }
                Some(name) => Err(StoreError::Backend(format!("transaction aborted ({name})"))),
                None => Err(StoreError::Backend("transaction aborted".into())),
            }
        }
        Err(e) => Err(store_error(&e)),
    }
}

fn js_error(what: &str, value: &JsValue) -> StoreError {
    let detail = value
        .dyn_ref::<DomException>()
        .map(|d| format!("{}: {}", d.name(), d.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"));
    StoreError::Backend(format!("{what}: {detail}"))
}

fn factory() -> Result<IdbFactory, StoreError> {
    let global = js_sys::global();
    let value = Reflect::get(&global, &JsValue::from_str("indexedDB"))
        .map_err(|e| js_error("indexedDB", &e))?;
    value.dyn_into::<IdbFactory>().map_err(|_| StoreError::Backend("no indexedDB here".into()))
}

/// A promise resolving to `value` after `ms` milliseconds (`setTimeout` of a window or worker).
fn after(ms: u32, value: &JsValue) -> Result<Promise, StoreError> {
    let global = js_sys::global();
    let set_timeout = Reflect::get(&global, &JsValue::from_str("setTimeout"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| StoreError::Backend("no setTimeout here".into()))?;
    let mut failed = None;
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Err(e) = set_timeout.call3(&global, &resolve, &JsValue::from(ms), value) {
            failed = Some(e);
        }
    });
    match failed {
        Some(e) => Err(js_error("setTimeout", &e)),
        None => Ok(promise),
    }
}

/// Opens `name` at [`VERSION`], running the upgrade here. Resolves to the connection, or fails
/// with [`StoreError::UpgradeBlocked`] when other connections hold the upgrade back past
/// `timeout_ms` (the request stays alive: if they close later, the upgrade still completes and
/// that late connection is closed).
async fn open_raw(name: &str, timeout_ms: u32) -> Result<IdbDatabase, StoreError> {
    let request = factory()?.open_with_u32(name, VERSION).map_err(|e| js_error("open", &e))?;
    let gave_up = std::rc::Rc::new(std::cell::Cell::new(false));
    let opened = {
        let request = request.clone();
        let gave_up = gave_up.clone();
        Promise::new(&mut move |resolve, reject| {
            let on_upgrade = {
                let request = request.clone();
                Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                    if let Err(e) = create_missing_stores(&request) {
                        web_sys::console::error_2(&"outbox upgrade failed".into(), &e);
                        if let Some(tx) = request.transaction() {
                            let _ = tx.abort();
                        }
                    }
                })
            };
            let on_success = {
                let request = request.clone();
                let gave_up = gave_up.clone();
                Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                    let db = request.result().unwrap_or(JsValue::UNDEFINED);
                    if gave_up.get() {
                        if let Some(db) = db.dyn_ref::<IdbDatabase>() {
                            db.close();
                        }
                    } else {
                        let _ = resolve.call1(&JsValue::UNDEFINED, &db);
                    }
                })
            };
            let on_error = {
                let request = request.clone();
                Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                    let error = match request.error() {
                        Ok(Some(e)) => JsValue::from(e),
                        _ => JsValue::from_str("open failed"),
                    };
                    let _ = reject.call1(&JsValue::UNDEFINED, &error);
                })
            };
            request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
            request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
            request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            // The request may outlive this call (a blocked upgrade that completes later): its
            // handlers belong to the JS garbage collector from here on.
            on_upgrade.forget();
            on_success.forget();
            on_error.forget();
        })
    };
    let timeout_marker = JsValue::from_str("edge-outbox-upgrade-timeout");
    let deadline: JsValue = after(timeout_ms, &timeout_marker)?.into();
    let race = Promise::race(&Array::of2(&opened, &deadline));
    let result = JsFuture::from(race).await.map_err(|e| js_error("open", &e))?;
    if result == timeout_marker {
        gave_up.set(true);
        return Err(StoreError::UpgradeBlocked(format!(
            "database {name:?} still held by an older connection after {timeout_ms} ms"
        )));
    }
    result.dyn_into::<IdbDatabase>().map_err(|v| js_error("open", &v))
}

/// Creates every store and index this version has and the database lacks (upgrade only).
fn create_missing_stores(request: &IdbOpenDbRequest) -> Result<(), JsValue> {
    let db: IdbDatabase = request.result()?.dyn_into()?;
    let tx = request.transaction().ok_or_else(|| JsValue::from_str("no upgrade transaction"))?;
    let names = db.object_store_names();
    let plain = [INFLIGHT, SENDING, DEAD, META, LEGACY_RECORDS];
    for store in plain {
        if !names.contains(store) {
            db.create_object_store(store)?;
        }
    }
    let indexed = [(QUEUE, QUEUE_BY_SEQ, "seq"), (READING_IDS, READING_IDS_BY_ID, "id")];
    for (store, index, key_path) in indexed {
        let object_store: IdbObjectStore = if names.contains(store) {
            tx.object_store(store)?
        } else {
            db.create_object_store(store)?
        };
        if !object_store.index_names().contains(index) {
            let params = IdbIndexParameters::new();
            params.set_unique(true);
            object_store.create_index_with_str_and_optional_parameters(index, key_path, &params)?;
        }
    }
    Ok(())
}

/// A number stored as JSON text in `meta` (0 when absent).
async fn meta_number(meta: &ObjectStore, key: &str) -> Result<u64, StoreError> {
    let value = meta.get(JsValue::from_str(key)).map_err(|e| store_error(&e))?;
    match value.await.map_err(|e| store_error(&e))? {
        Some(v) if !v.is_undefined() => {
            let text = v.as_string().ok_or_else(|| StoreError::Corrupt(key.to_owned()))?;
            crate::outbox::stored::decode(&text)
        }
        _ => Ok(0),
    }
}

/// Moves version 1's queue (`records`, keyed by seq) into `queue`, a chunk per transaction.
/// Each record keeps its seq as its position, and the position counter moves past them, so
/// they stay in order ahead of what is queued later.
async fn migrate_legacy_records(db: &Database) -> Result<(), StoreError> {
    loop {
        let tx = db
            .transaction(&[LEGACY_RECORDS, QUEUE, META], TransactionMode::ReadWrite)
            .map_err(|e| store_error(&e))?;
        let legacy = tx.object_store(LEGACY_RECORDS).map_err(|e| store_error(&e))?;
        let keys = legacy
            .get_all_keys(None, Some(MIGRATE_CHUNK))
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        if keys.is_empty() {
            return Ok(());
        }
        let values = legacy
            .get_all(None, Some(MIGRATE_CHUNK))
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        let queue = tx.object_store(QUEUE).map_err(|e| store_error(&e))?;
        let mut last = 0.0f64;
        for (key, value) in keys.iter().zip(&values) {
            let seq = key.as_f64().ok_or_else(|| StoreError::Corrupt("legacy key".into()))?;
            let text = value.as_string().ok_or_else(|| StoreError::Corrupt("legacy".into()))?;
            let entry = queue_value(seq, seq, &text)?;
            queue
                .put(&entry, Some(key))
                .map_err(|e| store_error(&e))?
                .await
                .map_err(|e| store_error(&e))?;
            last = last.max(seq);
        }
        let range = KeyRange::upper_bound(&JsValue::from_f64(last), Some(false))
            .map_err(|e| store_error(&e))?;
        legacy
            .delete(Query::from(range))
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        let meta = tx.object_store(META).map_err(|e| store_error(&e))?;
        let next_pos = meta_number(&meta, META_NEXT_POS).await?.max(last as u64 + 1);
        let text = crate::outbox::stored::encode(&next_pos)?;
        meta.put(&JsValue::from_str(&text), Some(&JsValue::from_str(META_NEXT_POS)))
            .map_err(|e| store_error(&e))?
            .await
            .map_err(|e| store_error(&e))?;
        commit(tx, &meta).await?;
    }
}

/// A `queue` value: `{pos, seq, record}` with the record as stored text.
pub fn queue_value(pos: f64, seq: f64, record: &str) -> Result<JsValue, StoreError> {
    let object = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        Reflect::set(&object, &JsValue::from_str(k), v).map_err(|e| js_error("value", &e))
    };
    set("pos", &JsValue::from_f64(pos))?;
    set("seq", &JsValue::from_f64(seq))?;
    set("record", &JsValue::from_str(record))?;
    Ok(object.into())
}
