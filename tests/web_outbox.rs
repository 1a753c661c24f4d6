//! The IndexedDB outbox store inside a real browser service worker: it passes the same
//! conformance suite as the in-memory store (data surviving a reopen included), gets out of the
//! way of a newer version's upgrade, reopens a database deleted under it, gives up on an upgrade
//! an old connection blocks, and carries a version 1 database's queue and a version 2 database's
//! inflight batch forward.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use edge_anomaly::outbox::{
    conformance, stored, Ack, Batch, Entry, OutboxStore, Record, Scoring, StoreError,
};
use edge_anomaly::web::IdbStore;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{IdbDatabase, IdbFactory, IdbIndexParameters, IdbOpenDbRequest, IdbRequest};

wasm_bindgen_test_configure!(run_in_service_worker);

/// A database name no earlier run used.
fn unique(name: &str) -> String {
    format!("edge-outbox-{name}-{}-{}", js_sys::Date::now(), js_sys::Math::random())
}

fn factory() -> IdbFactory {
    let value = Reflect::get(&js_sys::global(), &"indexedDB".into()).expect("indexedDB");
    value.dyn_into().expect("an IdbFactory")
}

/// Waits for `request` to succeed (its result) or fail (its error), or `ms` to pass ("timeout").
async fn settle(request: &IdbRequest, ms: i32) -> Result<JsValue, JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move |event: web_sys::Event| {
            let target: IdbRequest = event.target().expect("target").unchecked_into();
            let _ = resolve.call1(&JsValue::NULL, &target.result().unwrap_or(JsValue::NULL));
        });
        let fail = Closure::once_into_js({
            let reject = reject.clone();
            move |_: web_sys::Event| {
                let _ = reject.call1(&JsValue::NULL, &"request failed".into());
            }
        });
        request.set_onsuccess(Some(ok.unchecked_ref()));
        request.set_onerror(Some(fail.unchecked_ref()));
        let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .expect("setTimeout")
            .unchecked_into();
        let global = js_sys::global();
        set_timeout.call3(&global, &reject, &ms.into(), &"timeout".into()).expect("timer");
    });
    JsFuture::from(promise).await
}

/// Opens `name` at `version` with `upgrade` run on `upgradeneeded`.
async fn open_raw(
    name: &str,
    version: u32,
    upgrade: impl FnOnce(&IdbOpenDbRequest) + 'static,
) -> IdbDatabase {
    let request = factory().open_with_u32(name, version).expect("open");
    let handle = request.clone();
    let on_upgrade = Closure::once_into_js(move |_: web_sys::Event| upgrade(&handle));
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    settle(&request, 5_000).await.expect("opened").unchecked_into()
}

#[wasm_bindgen_test]
async fn indexeddb_store_passes_the_conformance_suite() {
    // A fresh database name per run: the suite expects each name to start empty.
    let prefix = unique("conformance");
    let open = |name: &str| {
        let name = format!("{prefix}-{name}");
        async move { IdbStore::open(&name).await }
    };
    if let Err(failures) = conformance::run(open).await {
        panic!("IndexedDB store conformance failures:\n{failures}");
    }
}

#[wasm_bindgen_test]
async fn a_newer_version_is_not_blocked_and_the_store_then_fails_cleanly() {
    let name = unique("versionchange");
    let store = IdbStore::open(&name).await.expect("open");
    store.append_entries(&[Entry::scored(1, "m", 0.5, false, 1)], 10).await.expect("append");
    // A newer worker upgrades: our open connection must close rather than block it.
    let request = factory().open_with_u32(&name, IdbStore::SCHEMA_VERSION + 1).expect("open");
    let newer: IdbDatabase =
        settle(&request, 5_000).await.expect("the upgrade went through").unchecked_into();
    newer.close();
    // The store cannot use a database newer than its schema: an error, not a hang.
    let err = store.queued().await.expect_err("newer schema");
    assert_eq!(err.code(), "STORE_BACKEND", "{err}");
}

#[wasm_bindgen_test]
async fn a_database_deleted_under_the_store_is_reopened() {
    let name = unique("cleared");
    let store = IdbStore::open(&name).await.expect("open");
    store.append_entries(&[Entry::scored(1, "m", 0.5, false, 1)], 10).await.expect("append");
    // "Clear site data": the database goes away while the store holds a connection.
    let request = factory().delete_database(&name).expect("delete");
    settle(&request, 5_000).await.expect("deletion not blocked by the store");
    assert_eq!(store.queued().await.expect("reopened"), 0, "a fresh, empty database");
    let outcome =
        store.append_entries(&[Entry::scored(2, "m", 0.5, false, 1)], 10).await.expect("append");
    assert_eq!((outcome.first_seq, outcome.stored), (0, 1));
}

#[wasm_bindgen_test]
async fn an_upgrade_blocked_by_an_old_connection_times_out() {
    let name = unique("blocked");
    // An old worker's connection at version 1 that ignores `versionchange`.
    let old = open_raw(&name, 1, |request| {
        let db: IdbDatabase = request.result().expect("db").unchecked_into();
        db.create_object_store("records").expect("records");
    })
    .await;
    let err = IdbStore::open_with_timeout(&name, 300).await.err().expect("blocked");
    assert!(matches!(err, StoreError::UpgradeBlocked(_)), "{err:?}");
    assert_eq!(err.code(), "STORE_UPGRADE_BLOCKED");
    // Once the old connection goes, the upgrade that was waiting completes with every store.
    old.close();
    let store = IdbStore::open(&name).await.expect("open after the old connection closed");
    store.append_entries(&[Entry::scored(1, "m", 0.5, false, 1)], 10).await.expect("append");
    assert_eq!(store.stats().await.expect("stats").queued, 1);
}

#[wasm_bindgen_test]
async fn a_version_1_queue_is_carried_forward_in_order() {
    let name = unique("v1");
    // What version 1 wrote: records keyed by seq, serde_json text with `null` for a NaN score,
    // and the counter as JSON text.
    let v1 = [
        (
            0.0,
            r#"{"seq":0,"timestamp_ms":1,"model_version":"m","latency_us":1,"result":{"Scored":{"score":0.5,"anomaly":false}}}"#,
        ),
        (
            1.0,
            r#"{"seq":1,"timestamp_ms":2,"model_version":"m","latency_us":1,"result":{"Scored":{"score":null,"anomaly":false}}}"#,
        ),
        (
            10.0,
            r#"{"seq":10,"timestamp_ms":3,"model_version":null,"latency_us":0,"result":{"Unscored":{"reading":[1.5,null],"reason":"NOT_LOADED"}}}"#,
        ),
    ];
    let old = open_raw(&name, 1, move |request| {
        let db: IdbDatabase = request.result().expect("db").unchecked_into();
        let records = db.create_object_store("records").expect("records");
        for store in ["inflight", "dead"] {
            db.create_object_store(store).expect("store");
        }
        let meta = db.create_object_store("meta").expect("meta");
        for (seq, text) in v1 {
            records.put_with_key(&text.into(), &seq.into()).expect("put");
        }
        meta.put_with_key(&"11".into(), &"next_seq".into()).expect("put");
    })
    .await;
    old.close();

    let store = IdbStore::open(&name).await.expect("open and migrate");
    let queued = store.oldest(10).await.expect("oldest");
    let seqs: Vec<u64> = queued.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 10], "kept in order");
    assert!(matches!(queued[1].result, Scoring::Scored { score, .. } if score.is_nan()));
    let Scoring::Unscored { reading, .. } = &queued[2].result else { panic!("unscored") };
    assert!(reading[0] == 1.5 && reading[1].is_nan());
    let outcome =
        store.append_entries(&[Entry::scored(4, "m", 0.5, false, 1)], 10).await.expect("append");
    assert_eq!(outcome.first_seq, 11, "the seq counter carried over");
    let seqs: Vec<u64> = store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 10, 11], "new records queue behind the migrated ones");
    // Reopening does not migrate twice.
    drop(store);
    let store = IdbStore::open(&name).await.expect("reopen");
    assert_eq!(store.queued().await.expect("queued"), 4);
}

/// A version 2 `queue` value: `{pos, seq, record}` with the record as stored text.
fn v2_queued(pos: u64, record: &Record) -> JsValue {
    let value = js_sys::Object::new();
    let text = stored::encode(record).expect("encode");
    for (k, v) in [("pos", JsValue::from(pos as f64)), ("seq", (record.seq as f64).into())] {
        Reflect::set(&value, &k.into(), &v).expect("set");
    }
    Reflect::set(&value, &"record".into(), &text.into()).expect("set");
    value.into()
}

#[wasm_bindgen_test]
async fn a_version_2_inflight_batch_is_carried_forward() {
    let name = unique("v2");
    // What version 2 wrote: records 0 and 1 copied out of the queue into the inflight batch,
    // records 2 and 3 queued at positions 2 and 3.
    let records: Vec<Record> =
        (0..4).map(|seq| Record::new(seq, Entry::scored(seq, "m", 0.5, false, 1))).collect();
    let batch = Batch {
        key: "dev:0-1:00000000000000aa".into(),
        records: records[..2].to_vec(),
        body: "{\"resourceLogs\":[]}".into(),
        created_at_ms: 7,
        retry: None,
    };
    let inflight_text = stored::encode(&batch).expect("encode");
    let queued = records[2..].to_vec();
    let old = open_raw(&name, 2, move |request| {
        let db: IdbDatabase = request.result().expect("db").unchecked_into();
        let unique = IdbIndexParameters::new();
        unique.set_unique(true);
        let queue = db.create_object_store("queue").expect("queue");
        queue
            .create_index_with_str_and_optional_parameters("by_seq", "seq", &unique)
            .expect("index");
        let ids = db.create_object_store("reading_ids").expect("reading_ids");
        ids.create_index_with_str_and_optional_parameters("by_id", "id", &unique).expect("index");
        for store in ["records", "dead"] {
            db.create_object_store(store).expect("store");
        }
        let inflight = db.create_object_store("inflight").expect("inflight");
        inflight.put_with_key(&inflight_text.into(), &"current".into()).expect("put");
        for r in &queued {
            queue.put_with_key(&v2_queued(r.seq, r), &(r.seq as f64).into()).expect("put");
        }
        let meta = db.create_object_store("meta").expect("meta");
        meta.put_with_key(&"4".into(), &"next_seq".into()).expect("put");
        meta.put_with_key(&"4".into(), &"next_pos".into()).expect("put");
    })
    .await;
    old.close();

    let store = IdbStore::open(&name).await.expect("open at version 3");
    assert_eq!(store.inflight().await.expect("inflight"), Some(batch.clone()), "the batch, whole");
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.queued, stats.inflight_records), (2, 2), "(queued, inflight)");
    assert_eq!(store.oldest(10).await.expect("oldest"), records[2..].to_vec(), "the queue");
    let next = Batch {
        key: "dev:2-3:00000000000000bb".into(),
        records: records[2..].to_vec(),
        ..batch.clone()
    };
    let busy = store.begin_inflight(&next).await;
    assert!(matches!(busy, Err(StoreError::Conflict(_))), "one batch at a time: {busy:?}");
    let ack = Ack { key: batch.key.clone(), rejected: 0, message: None };
    assert!(store.ack_inflight(&ack).await.expect("ack"), "the old batch is acknowledged");
    assert_eq!(store.queued().await.expect("queued"), 2, "the queue is untouched");
    // The next batch is taken the version 3 way (a run of the queue) and acknowledged.
    store.begin_inflight(&next).await.expect("begin");
    assert_eq!(store.inflight().await.expect("inflight"), Some(next.clone()), "the new batch");
    assert_eq!(store.queued().await.expect("queued"), 0, "its records are not queued");
    let ack = Ack { key: next.key.clone(), rejected: 0, message: None };
    assert!(store.ack_inflight(&ack).await.expect("ack"), "the new batch is acknowledged");
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.queued, stats.inflight_records, stats.sent_records_total), (0, 0, 4));
}
