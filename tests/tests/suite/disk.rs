//! The store on a disk that fails it: full in the middle of a burst,
//! read-only, not a file at all. Printed means stored, whatever the disk
//! does, and a store that cannot be written is refused before anything is
//! bound.
//!
//! A full disk needs a small filesystem of the test's own: a tmpfs, which
//! only root can mount. Such a test says so loudly when it cannot run; CI
//! runs as root.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use rusqlite::Connection;
use tempfile::TempDir;
use tests::{Program, Signal, Stream, WAIT, free_port};

use crate::fixtures::{Store, valid_form};

/// True when this test process runs as root; otherwise says loudly that
/// `test` cannot run here.
fn root_for(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: it needs root, to mount a small tmpfs (CI runs as root)");
    }
    root
}

/// A tmpfs of `size` (`"8m"`) mounted on a fresh folder, unmounted when
/// dropped: a disk the test can fill.
struct SmallDisk {
    folder: TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let folder = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            folder.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap_or_else(|error| panic!("cannot mount a tmpfs: {error}"));
        SmallDisk { folder }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.folder.path().join(file)
    }

    /// Fills the disk, then frees `spare` bytes of it.
    fn fill_leaving(&self, spare: u64) {
        let path = self.path("filler");
        let mut filler = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.flush();
        let written = filler.metadata().unwrap().len();
        filler.set_len(written.saturating_sub(spare)).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.folder.path(), MntFlags::MNT_DETACH);
    }
}

/// A result of unit 555, as a computer sends it.
fn result(counter: u64) -> String {
    format!(r#"{{"unit": 555, "counter": {counter}, "x": 0.5, "y": -0.5}}"#)
}

/// The counters of unit 555 that the saver printed.
fn printed(lines: &[String]) -> BTreeSet<i64> {
    tests::numbers_after(lines, "Computer requested a save: ", "counter")
        .into_iter()
        .collect()
}

/// The counters of unit 555 in the store at `path`.
fn stored(path: &Path) -> BTreeSet<i64> {
    let connection = Connection::open(path).unwrap();
    let mut query = connection.prepare("SELECT counter FROM results WHERE unit = 555").unwrap();
    let counters = query.query_map([], |row| row.get(0)).unwrap();
    counters.map(Result::unwrap).collect()
}

/// The counters that acknowledgements on `ack_receiver` named, read until
/// none came for a second.
fn acknowledged(ack_receiver: &zmq::Socket) -> BTreeSet<i64> {
    ack_receiver.set_rcvtimeo(1000).unwrap();
    let mut counters = BTreeSet::new();
    while let Ok(acknowledgement) = ack_receiver.recv_string(0) {
        let acknowledgement = acknowledgement.unwrap();
        let ranges = acknowledgement.strip_prefix("555 ").unwrap();
        for range in ranges.split(',') {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            counters.extend(first.parse::<i64>().unwrap()..=last.parse().unwrap());
        }
    }
    counters
}

/// What became of a burst written as the disk filled.
struct Burst {
    saver: tests::Finished,
    store: PathBuf,
    printed: BTreeSet<i64>,
    stored: BTreeSet<i64>,
    /// With --ack-port, the counters acknowledged.
    acknowledged: Option<BTreeSet<i64>>,
    _disk: SmallDisk,
}

/// A saver stores a burst while the disk fills: 10 results, a 3 MB
/// message that is no result, 10 results, which queue while another
/// program holds the store's lock; then the disk fills, with `spare` bytes
/// left, and the lock goes.
fn a_burst_as_the_disk_fills(spare: u64, acknowledging: bool) -> Burst {
    let disk = SmallDisk::mount("8m");
    let store = disk.path("results.db");
    let [save, ack] = tests::free_ports();
    let mut flags = vec![
        "--store",
        store.to_str().unwrap(),
        "--max-message-size",
        "4000000",
    ];
    if acknowledging {
        flags.extend(["--ack-port", &ack]);
    }
    let mut saver = Program::start("saver", &tests::listener_args(&save, &flags));
    saver.wait_for_stdout("Listening", WAIT);
    let computer = tests::pusher(&save);

    // With --ack-port, a subscriber for unit 555, once it hears the saver:
    // result 100 is stored and acknowledged once the subscription is in.
    let ack_receiver = acknowledging.then(|| {
        let ack_receiver = tests::connected(zmq::SUB, &ack);
        ack_receiver.set_subscribe(b"555 ").unwrap();
        ack_receiver.set_rcvtimeo(100).unwrap();
        computer.send(result(100).as_bytes(), 0).unwrap();
        let deadline = Instant::now() + WAIT;
        // A subscription made after the acknowledgement gets the welcome.
        while ack_receiver.recv_bytes(0).is_err() {
            assert!(
                Instant::now() < deadline,
                "no acknowledgement of result 100"
            );
        }
        ack_receiver
    });

    let lock = Connection::open(&store).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    for counter in 0..10 {
        computer.send(result(counter).as_bytes(), 0).unwrap();
    }
    // Whole, SQLite would write it to the log in the middle of the
    // transaction (its cache is 2 MB), and fail there.
    computer.send(vec![b'x'; 3_000_000], 0).unwrap();
    for counter in 10..20 {
        computer.send(result(counter).as_bytes(), 0).unwrap();
    }
    saver.wait_for_stderr("is locked by another program", WAIT);
    tests::wait_until_stuck(&save, saver.id());
    disk.fill_leaving(spare);
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    // Either it stores the burst and prints it, or it stops.
    let stored_all = |saver: &Program| printed(saver.lines_of(Stream::Stdout)).len() == 21;
    let deadline = Instant::now() + WAIT;
    while saver.is_running() && !stored_all(&saver) && Instant::now() < deadline {
        saver.look_for_stderr("error:", Duration::from_millis(100));
    }
    if saver.is_running() {
        saver.signal(Signal::SIGTERM);
    }
    let saver = saver.finish(WAIT);
    Burst {
        printed: printed(&saver.stdout),
        stored: stored(&store),
        acknowledged: ack_receiver.as_ref().map(acknowledged),
        saver,
        store,
        _disk: disk,
    }
}

impl Burst {
    /// Printed means stored, and so does acknowledged.
    fn assert_nothing_unstored_was_told(&self) {
        let unstored =
            |told: &BTreeSet<i64>| told.difference(&self.stored).copied().collect::<Vec<_>>();
        assert!(
            self.printed.is_subset(&self.stored),
            "printed and not stored: {:?}\n{:?}",
            unstored(&self.printed),
            self.saver
        );
        if let Some(acknowledged) = &self.acknowledged {
            assert!(
                acknowledged.is_subset(&self.stored),
                "acknowledged and not stored: {:?}",
                unstored(acknowledged)
            );
        }
    }

    /// The burst was stored, the message that is no result cut to the
    /// first 4096 bytes, and the saver went on.
    fn assert_stored_whole(&self) {
        self.assert_nothing_unstored_was_told();
        // (Result 100 came first, to hear the acknowledgements.)
        let first = self.acknowledged.as_ref().map(|_| 100);
        let burst: BTreeSet<i64> = (0..20).chain(first).collect();
        assert_eq!(self.printed, burst, "{:?}", self.saver);
        assert_eq!(self.saver.code(), Some(0), "{:?}", self.saver);
        let connection = Connection::open(&self.store).unwrap();
        let (length, reason): (usize, String) = connection
            .query_row("SELECT length(payload), reason FROM rejected", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(length, 4096);
        assert_eq!(
            reason,
            "result not a JSON object (its first 4096 of 3000000 bytes)"
        );
    }

    /// The saver stopped at the full disk, saying where and why, and told
    /// nothing of the burst.
    fn assert_stopped_telling_nothing(&self) {
        self.assert_nothing_unstored_was_told();
        assert!(
            self.printed.is_subset(&BTreeSet::from([100])),
            "{:?}",
            self.saver
        );
        assert_eq!(self.saver.code(), Some(1), "{:?}", self.saver);
        let error = format!(
            "error: cannot write to the store {}: database or disk is full",
            self.store.display()
        );
        assert_eq!(self.saver.summary(), error);
    }
}

#[test]
fn a_disk_that_fills_in_a_burst_loses_no_printed_result() {
    if root_for("a_disk_that_fills_in_a_burst_loses_no_printed_result") {
        a_burst_as_the_disk_fills(512 * 1024, false).assert_stored_whole();
    }
}

#[test]
fn a_disk_that_fills_in_a_burst_loses_no_acknowledged_result() {
    if root_for("a_disk_that_fills_in_a_burst_loses_no_acknowledged_result") {
        a_burst_as_the_disk_fills(512 * 1024, true).assert_stored_whole();
    }
}

#[test]
fn a_disk_too_full_for_a_burst_stops_the_saver_before_it_prints_or_acknowledges() {
    if root_for("a_disk_too_full_for_a_burst_stops_the_saver...") {
        a_burst_as_the_disk_fills(0, false).assert_stopped_telling_nothing();
        a_burst_as_the_disk_fills(0, true).assert_stopped_telling_nothing();
    }
}

/// Starts `program` with `args`, as the user `nobody` when the test runs
/// as root (root writes any file, whatever its mode says).
fn start_as_nobody(program: &str, args: &[&str]) -> Program {
    let mut command = Command::new(tests::binary(program));
    command.args(args);
    if nix::unistd::geteuid().is_root() {
        command.uid(65534).gid(65534);
    }
    Program::start_command(program, &mut command)
}

/// Sets the mode of `path` (`0o444`).
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_store_its_owner_cannot_write_is_refused_before_binding() {
    let port = free_port().to_string();
    for program in ["saver", "mailbin"] {
        // A store in WAL mode that the program made, as its owner.
        let folder = tempfile::tempdir().unwrap();
        if nix::unistd::geteuid().is_root() {
            let (nobody, group) = (
                nix::unistd::Uid::from_raw(65534),
                nix::unistd::Gid::from_raw(65534),
            );
            nix::unistd::chown(folder.path(), Some(nobody), Some(group)).unwrap();
        }
        let path = folder.path().join("kept.db");
        let args = tests::listener_args(&port, &["--store", path.to_str().unwrap()]);
        let mut first = start_as_nobody(program, &args);
        first.wait_for_stderr("storing what it receives", WAIT);
        first.stop(Signal::SIGTERM, WAIT);
        // Then its mode says it cannot be written (chmod 444), and a second
        // run must say so before it listens, not at its first message.
        set_mode(&path, 0o444);
        let finished = start_as_nobody(program, &args).finish(WAIT);
        assert_eq!(finished.code(), Some(1), "{program}: {finished:?}");
        assert!(finished.stdout.is_empty(), "{program}: {finished:?}");
        assert_eq!(
            finished.summary(),
            format!(
                "error: cannot open the store {}: it cannot be written (SQLite opened it read-only)",
                path.display()
            ),
            "{program}"
        );
    }
}

#[test]
fn a_store_that_is_not_a_file_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("results.db");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let port = free_port().to_string();
    let finished = Program::start(
        "saver",
        &tests::listener_args(&port, &["--store", path.to_str().unwrap()]),
    )
    .finish(WAIT);
    // What SQLite would make beside it (as root, in /dev).
    let beside = ["/dev/full-journal", "/dev/full-wal", "/dev/full-shm"];
    let made: Vec<&str> =
        beside.into_iter().filter(|file| std::fs::remove_file(file).is_ok()).collect();
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    assert_eq!(
        finished.summary(),
        format!(
            "error: cannot open the store {}: not a regular file",
            path.display()
        )
    );
    assert!(made.is_empty(), "made {made:?}");
}

/// A program with a store ends on a taken port: exit 1, the error last.
fn assert_port_taken(finished: &tests::Finished, port: &str) {
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    assert_eq!(
        finished.summary(),
        format!("error: cannot bind tcp://127.0.0.1:{port}: Address already in use")
    );
}

#[test]
fn a_store_made_for_a_run_that_cannot_bind_is_removed_and_one_there_before_kept() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for program in ["saver", "mailbin"] {
        let store = Store::new("made.db");
        let finished =
            Program::start(program, &tests::listener_args(&port, &store.flag())).finish(WAIT);
        assert_port_taken(&finished, &port);
        let path = Path::new(store.flag()[1]);
        assert!(!path.exists(), "{program} left {} behind", path.display());

        // A store that was there before is the user's: it stays.
        let before = Store::new("before.db");
        drop(before.open());
        let finished =
            Program::start(program, &tests::listener_args(&port, &before.flag())).finish(WAIT);
        assert_port_taken(&finished, &port);
        assert!(Path::new(before.flag()[1]).exists(), "{program}");
    }
}

#[test]
fn a_disk_that_fills_inside_a_transaction_stops_the_mailbin_before_it_prints() {
    if !root_for("a_disk_that_fills_inside_a_transaction_stops_the_mailbin...") {
        return;
    }
    let disk = SmallDisk::mount("8m");
    let store = disk.path("forms.db");
    let port = free_port().to_string();
    let flags = [
        "--store",
        store.to_str().unwrap(),
        "--max-message-size",
        "4000000",
    ];
    let mut mailbin = Program::start("mailbin", &tests::listener_args(&port, &flags));
    mailbin.wait_for_stdout("Mailbin listening", WAIT);
    let faker = tests::pusher(&port);

    // Three forms queue while another program holds the lock; the second,
    // 3 MB of user agent, is more than SQLite's cache holds: it goes to the
    // log in the middle of the transaction, on a disk that is full by then.
    let lock = Connection::open(&store).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    faker.send(valid_form("Ada").as_bytes(), 0).unwrap();
    let huge = valid_form("Grace").replace("Mozilla/5.0", &"M".repeat(3_000_000));
    faker.send(huge.as_bytes(), 0).unwrap();
    faker.send(valid_form("Edsger").as_bytes(), 0).unwrap();
    mailbin.wait_for_stderr("is locked by another program", WAIT);
    tests::wait_until_stuck(&port, mailbin.id());
    disk.fill_leaving(512 * 1024);
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    let stopped = mailbin.look_for_stderr("error:", WAIT);
    if stopped.is_none() && mailbin.is_running() {
        mailbin.signal(Signal::SIGTERM);
    }
    let mailbin = mailbin.finish(WAIT);
    let connection = Connection::open(&store).unwrap();
    let stored: Vec<String> = connection
        .prepare("SELECT first_name FROM forms")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for line in &mailbin.stdout {
        if let Some(sender) = line.strip_prefix("Mailbin received a form from ") {
            let first_name = sender.split(' ').next().unwrap();
            assert!(
                stored.iter().any(|stored| stored == first_name),
                "printed and not stored: {line}\n{mailbin:?}"
            );
        }
    }
    assert_eq!(mailbin.code(), Some(1), "{mailbin:?}");
    assert_eq!(
        mailbin.summary(),
        format!(
            "error: cannot write to the store {}: database or disk is full",
            store.display()
        )
    );
}
