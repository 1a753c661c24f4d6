//! Appends survive `kill -9` at any instant: a child process (this test binary, run again as
//! [`child`]) records readings in a loop and reports each one after its append committed; the
//! parent kills it mid-stream, again and again, and checks the file after each kill.
//!
//! A reading's number is its timestamp offset and its reading id. The child resumes two
//! readings before the last one reported, as a page resends readings whose reply it never got,
//! so the readings the killed child committed but could not report are sent again too. Every
//! reading is then recorded exactly once, in order, which makes reading `r` the record of seq
//! `r`.

use std::env;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use edge_anomaly::outbox::{Entry, OutboxStore};
use edge_gateway::store::SqliteStore;
use futures::executor::block_on;

use super::{integrity, T0};

/// Set for the child: the database to record into.
const CHILD_DB: &str = "SQLITE_STORE_CRASH_CHILD_DB";
/// Set for the child: the number of the first reading to send.
const CHILD_FROM: &str = "SQLITE_STORE_CRASH_CHILD_FROM";
/// Marks the child's report lines among the test harness's own output.
const MARK: &str = "child: ";
/// Most readings a child sends before giving up on being killed (it must not outlive a parent
/// that failed).
const CHILD_MAX_READINGS: u64 = 50_000;
/// Readings per append: 1 to this many, varying.
const MAX_BATCH: u64 = 3;

fn reading(r: u64) -> Entry {
    Entry::scored(T0 + r, "m-1", r as f32, false, 1).with_reading_id(format!("reading-{r}"))
}

/// The child of [`appends_survive_kill_9`]; passes at once when run as a test of its own.
#[test]
fn child() {
    let (Some(path), Ok(from)) = (env::var_os(CHILD_DB), env::var(CHILD_FROM)) else { return };
    let from: u64 = from.parse().expect("first reading number");
    let store = SqliteStore::open(path).expect("open");
    let mut out = io::stdout().lock();
    let device = block_on(store.init_device_id(&format!("device-{from}"))).expect("device id");
    writeln!(out, "{MARK}device {device}").and_then(|()| out.flush()).expect("report");
    let mut next = from;
    while next < from + CHILD_MAX_READINGS {
        let entries: Vec<Entry> = (next..next + next % MAX_BATCH + 1).map(reading).collect();
        let outcome = block_on(store.append_entries(&entries, u64::MAX)).expect("append");
        // Committed: report every reading of the call with the seq it is recorded under.
        for (r, seq) in (next..).zip(outcome.seqs(entries.len())) {
            writeln!(out, "{MARK}recorded {r} {seq}").expect("report");
        }
        out.flush().expect("report");
        next += entries.len() as u64;
    }
}

/// What the children reported.
#[derive(Default)]
struct Reports {
    /// Readings below this one were reported recorded.
    end: u64,
    /// The device id every child got.
    device: Option<String>,
}

impl Reports {
    /// Takes in one line of the child's output; returns whether it reported a recorded reading.
    fn take(&mut self, line: &str) -> bool {
        let Some((_, report)) = line.split_once(MARK) else { return false };
        if let Some(device) = report.strip_prefix("device ") {
            let first = self.device.get_or_insert_with(|| device.to_owned());
            assert_eq!(first, device, "every child gets the first child's device id");
            return false;
        }
        let fields: Vec<u64> = report
            .strip_prefix("recorded ")
            .and_then(|rest| rest.split(' ').map(|n| n.parse().ok()).collect())
            .unwrap_or_else(|| panic!("unexpected report {report:?}"));
        let &[r, seq] = fields.as_slice() else { panic!("unexpected report {report:?}") };
        assert_eq!(seq, r, "reading {r} is recorded once, under seq {r}");
        self.end = self.end.max(r + 1);
        true
    }
}

fn spawn_child(path: &Path, from: u64) -> Child {
    Command::new(env::current_exe().expect("test binary"))
        .args(["--exact", "crash::child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_FROM, from.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child")
}

/// The child's stderr, for a failure message.
fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// The file after a kill: readings `0..n` recorded once each, in order, under seqs `0..n`;
/// every reported one among them; at most one append (of at most [`MAX_BATCH`]) committed but
/// unreported. Returns `n`.
fn check_file(path: &Path, reports: &Reports) -> u64 {
    assert_eq!(integrity(path), "ok");
    let store = SqliteStore::open(path).expect("reopen after the kill");
    let records = block_on(store.oldest(usize::MAX)).expect("oldest");
    let n = records.len() as u64;
    for (i, record) in (0..).zip(&records) {
        assert_eq!((record.seq, record.timestamp_ms), (i, T0 + i), "record {i}");
    }
    assert_eq!(block_on(store.next_seq()).expect("next seq"), n, "no seq lost or skipped");
    assert!(
        (reports.end..=reports.end + MAX_BATCH).contains(&n),
        "{n} recorded, {} reported: more than the one append in progress",
        reports.end
    );
    assert_eq!(block_on(store.device_id()).expect("device id"), reports.device);
    n
}

#[test]
fn appends_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let mut reports = Reports::default();
    for round in 0..10u64 {
        let mut child = spawn_child(&path, reports.end.saturating_sub(2));
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let kill_after = 25 + 40 * round;
        let mut recorded = 0;
        while recorded < kill_after {
            let Some(Ok(line)) = lines.next() else {
                panic!("round {round}: the child stopped early:\n{}", stderr_of(&mut child));
            };
            recorded += u64::from(reports.take(&line));
        }
        // Mostly lands inside the next append's transaction; each round a little later.
        thread::sleep(Duration::from_micros(round * 250));
        child.kill().expect("kill -9");
        // What the child had reported before it died is still in the pipe.
        for line in lines {
            reports.take(&line.expect("child output"));
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "round {round}: the child was killed, not ended");
        check_file(&path, &reports);
    }

    // Every reading id is remembered with its record: sending them all again records nothing.
    let store = SqliteStore::open(&path).expect("reopen");
    let n = block_on(store.queued()).expect("queued");
    let again: Vec<Entry> = (0..n).map(reading).collect();
    let outcome = block_on(store.append_entries(&again, u64::MAX)).expect("resend");
    assert_eq!((outcome.stored, outcome.already.len() as u64), (0, n));
    assert_eq!(outcome.seqs(again.len()), (0..n).collect::<Vec<_>>());
}
