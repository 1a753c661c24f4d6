//! The IndexedDB outbox store inside a real browser service worker passes the same conformance
//! suite as the in-memory store, including data surviving a reopen of the database.
#![cfg(target_arch = "wasm32")]

use edge_anomaly::outbox::conformance;
use edge_anomaly::web::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

#[wasm_bindgen_test]
async fn indexeddb_store_passes_the_conformance_suite() {
    // A fresh database name per run: the suite expects each name to start empty.
    let prefix = format!("edge-outbox-conformance-{}", js_sys::Date::now());
    let open = |name: &str| {
        let name = format!("{prefix}-{name}");
        async move { IdbStore::open(&name).await }
    };
    if let Err(failures) = conformance::run(open).await {
        panic!("IndexedDB store conformance failures:\n{failures}");
    }
}
