//! Files the store must not open: one written by a newer schema, and ones that are not outbox
//! databases. Each is refused with a typed error and left byte for byte as it was.

use std::fs;
use std::path::Path;

use edge_anomaly::outbox::StoreError;
use edge_gateway::store::{OpenError, SqliteStore};

/// `open` refuses the file at `path` and leaves it (and its directory) unchanged.
fn refused_untouched(path: &Path) -> OpenError {
    let dir = path.parent().expect("a directory");
    let listing = || {
        let mut names: Vec<_> =
            fs::read_dir(dir).expect("list").map(|e| e.expect("entry").path()).collect();
        names.sort();
        names
    };
    let (bytes, files) = (fs::read(path).expect("read"), listing());
    let err = SqliteStore::open(path).expect_err("refused");
    assert_eq!(fs::read(path).expect("read"), bytes, "{err}: the file is unchanged");
    assert_eq!(listing(), files, "{err}: no journal or log was created");
    err
}

/// Writes a file at the given path.
type MakeFile = fn(&Path);

fn sqlite_file(path: &Path, setup: &str) {
    let conn = rusqlite::Connection::open(path).expect("create");
    conn.execute_batch(setup).expect("setup");
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    sqlite_file(
        &path,
        &format!(
            "PRAGMA application_id = {}; PRAGMA user_version = {newer};
             CREATE TABLE from_the_future (x INTEGER);",
            SqliteStore::APPLICATION_ID
        ),
    );
    let err = refused_untouched(&path);
    assert_eq!(
        err,
        OpenError::NewerSchema { found: newer, supported: SqliteStore::SCHEMA_VERSION }
    );
    assert_eq!(err.code(), "STORE_NEWER_SCHEMA");
    // Callers that speak only StoreError see a backend failure, never "corrupt".
    assert!(matches!(StoreError::from(err), StoreError::Backend(m) if m.contains("newer")));
}

#[test]
fn files_that_are_not_outbox_databases_are_refused_untouched() {
    let cases: [(&str, MakeFile); 3] = [
        ("another application's database", |p| sqlite_file(p, "CREATE TABLE notes (body TEXT);")),
        ("another application's id", |p| sqlite_file(p, "PRAGMA application_id = 7;")),
        ("not SQLite at all", |p| fs::write(p, "timestamp,value\n".repeat(256)).expect("write")),
    ];
    for (what, make) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("outbox.db");
        make(&path);
        let err = refused_untouched(&path);
        assert!(matches!(err, OpenError::Foreign(_)), "{what}: {err:?}");
        assert_eq!(err.code(), "STORE_FOREIGN", "{what}");
    }
}

#[test]
fn an_empty_file_becomes_an_outbox() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    SqliteStore::open(file.path()).expect("an empty file is a new database");
    let conn = rusqlite::Connection::open(file.path()).expect("open");
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).expect("app id");
    assert_eq!((version, app), (SqliteStore::SCHEMA_VERSION, SqliteStore::APPLICATION_ID));
    drop(conn);
    SqliteStore::open(file.path()).expect("and reopens");
}
