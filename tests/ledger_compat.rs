//! Ledgers written before custody events were typed still open, verify and read.
//!
//! `tests/data/ledger-v1/` holds a real store's ledger (`ledger.sqlite`, WAL checkpointed,
//! and `ledger.head`) and the case package exported from it (`C-1.zip`), all written by the
//! binary of commit 4faa933 (`scripts`-free recipe in its README.md): scan with a rejected
//! file, a case session, a tag, a release, a second session, export, ack and purge.
//!
//! Opening it upgrades it to schema 2 (issue 29): the photo it had kept as personal becomes a
//! keyed record, its path (and, where the old program recorded them, GPS, capture time and
//! embedding) leave the file, its custody events are pruned, and the chain still verifies.

use std::path::{Path, PathBuf};

use fotovakt::ledger::{Event, ItemState, Ledger, Problem, SCHEMA_VERSION};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ledger-v1")
}

/// A copy of the fixture store (the fixture itself is never opened for writing).
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["ledger.sqlite", "ledger.head", "C-1.zip"] {
        std::fs::copy(fixture().join(name), dir.path().join(name)).expect("copy fixture");
    }
    dir
}

fn user_version(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("raw open");
    c.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("user_version")
}

/// Every event row that was not pruned, as (seq, kind, data text).
fn rows(l: &Ledger) -> Vec<(i64, String, String)> {
    let mut stmt =
        l.conn().prepare("SELECT seq, kind, data FROM events WHERE data IS NOT NULL ORDER BY seq").expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

#[test]
fn an_old_ledger_is_upgraded_in_place_and_verifies_clean() {
    let dir = copy();
    let db = dir.path().join("ledger.sqlite");
    assert_eq!(user_version(&db), 0, "the first release left user_version at 0");
    let l = Ledger::open(&db).expect("open the old ledger");
    let report = l.check_chain().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.events >= 30, "the fixture has a few dozen events: {}", report.events);
    assert_eq!(report.links_checked, report.events, "every row links to the one before it");
    assert_eq!(report.pruned, 2, "the kept photo's intake and decision, pruned and recorded");
    let upgrades: Vec<Event> = rows(&l)
        .into_iter()
        .filter(|(_, kind, _)| kind == "privacy_upgrade")
        .map(|(_, kind, data)| Event::from_stored(&kind, &data).expect("typed"))
        .collect();
    assert_eq!(
        upgrades,
        [Event::PrivacyUpgrade { from_schema: 1, personal_items: 1, events_pruned: 2, left_for_verify: 0 }],
        "one audited event says how many"
    );
    drop(l);
    assert_eq!(user_version(&db), SCHEMA_VERSION);
    // Opening again changes nothing and still verifies.
    let l = Ledger::open(&db).expect("reopen");
    assert!(l.check_chain().expect("check").problems.is_empty());
}

#[test]
fn every_old_event_reads_typed_and_writes_back_the_very_text_that_was_hashed() {
    let dir = copy();
    let l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    let mut kinds = std::collections::BTreeSet::new();
    for (seq, kind, data) in rows(&l) {
        let e = Event::from_stored(&kind, &data).unwrap_or_else(|err| panic!("event {seq}: {err}"));
        assert_eq!(e.kind(), kind);
        // Events this program records (the upgrade's) also carry the ledger's boot-clock stamp,
        // which is the ledger's, not the event's.
        let mut stored: serde_json::Value = serde_json::from_str(&data).expect("json");
        stored.as_object_mut().expect("an object").remove(fotovakt::ledger::clock::KEY);
        assert_eq!(e.data_text(), stored.to_string(), "event {seq} ({kind}): field names, types and order are today's");
        kinds.insert(kind);
    }
    for k in [
        "intake",
        "decided",
        "tagged",
        "quarantined",
        "rejected",
        "release_requested",
        "released",
        "session_started",
        "session_stopped",
        "export",
        "ack",
        "purge",
    ] {
        assert!(kinds.contains(k), "the fixture has a {k} event: {kinds:?}");
    }
    // The per-item readers are typed too, and agree with the item rows.
    for item in l.items(None).expect("items") {
        let log = l.events_of(item.id).expect("events");
        assert!(!log.is_empty(), "item {} has events", item.id);
        let last_state = log.iter().rev().find_map(|e| e.event.state());
        assert_eq!(last_state, Some(item.state), "item {}", item.id);
        if item.state != ItemState::Purged && item.kind != "unknown" {
            assert!(matches!(l.intake_of(item.id).expect("intake"), Some(Event::Intake { .. })));
        }
    }
    let states: Vec<ItemState> = l.items(None).expect("items").iter().map(|i| i.state).collect();
    for s in [ItemState::Quarantined, ItemState::Released, ItemState::Purged] {
        assert!(states.contains(&s), "an item is {}: {states:?}", s.as_str());
    }
    assert!(!states.contains(&ItemState::Kept), "the kept photo is a keyed record now: {states:?}");
    let personal = l.personal_counts().expect("personal");
    assert_eq!((personal.kept, personal.by_source.get("default")), (1, Some(&1)), "{personal:?}");
}

#[test]
fn tampering_with_a_copy_of_the_old_ledger_is_detected() {
    type Tamper = fn(&rusqlite::Connection);
    type Expect = fn(&Problem) -> bool;
    let cases: [(&str, Tamper, Expect); 4] = [
        (
            "an edited case ID",
            |c| {
                c.execute("UPDATE events SET data = replace(data, 'C-1', 'C-2') WHERE kind = 'decided'", [])
                    .expect("edit");
            },
            |p| matches!(p, Problem::HashMismatch { kind, .. } if kind == "decided"),
        ),
        (
            "the newest rows cut off",
            |c| {
                c.execute("DELETE FROM events WHERE seq > (SELECT max(seq) - 2 FROM events)", []).expect("cut");
            },
            // The upgrade appends its events after the cut: the head's row is then missing or
            // another one.
            |p| matches!(p, Problem::HeadEventMissing { .. } | Problem::HeadHashDiffers { .. }),
        ),
        (
            "an item row moved back into the store",
            |c| {
                c.execute("UPDATE items SET state = 'quarantined' WHERE state = 'released'", []).expect("edit");
            },
            |p| matches!(p, Problem::ItemStateDiffers { row: ItemState::Quarantined, .. }),
        ),
        (
            "an unknown state",
            |c| {
                c.execute("UPDATE items SET state = 'misplaced' WHERE state = 'kept'", []).expect("edit");
            },
            |p| matches!(p, Problem::UnreadableItem { .. }),
        ),
    ];
    for (what, tamper, expect) in cases {
        let dir = copy();
        let db = dir.path().join("ledger.sqlite");
        tamper(&rusqlite::Connection::open(&db).expect("raw open"));
        let l = Ledger::open(&db).expect("open");
        let problems = l.check_chain().expect("check").problems;
        assert!(problems.iter().any(expect), "{what}: {problems:?}");
    }
}

#[test]
fn the_old_case_package_still_verifies_against_the_digest_its_ledger_recorded() {
    let dir = copy();
    let zip = dir.path().join("C-1.zip");
    let r = fotovakt::export::verify_package(&zip).expect("open the package");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.files >= 2 && r.events > 0, "{r:?}");
    // The ledger recorded this very package.
    let l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    let digests: Vec<String> = rows(&l)
        .into_iter()
        .filter_map(|(_, kind, data)| match Event::from_stored(&kind, &data).expect("typed") {
            Event::Exported { package_sha256, .. } => Some(package_sha256),
            _ => None,
        })
        .collect();
    assert!(digests.contains(r.digest.as_ref().expect("digest")), "{digests:?}");
}

/// A store from before device keys gets one at its first open by a program that has them, and
/// the ledger records it as added (not as a new store), with nothing else changed.
#[test]
fn an_old_store_gets_a_device_key_at_its_first_open_recorded_in_its_ledger() {
    use std::os::unix::fs::DirBuilderExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    std::fs::DirBuilder::new().mode(0o700).create(&store).expect("store");
    for name in ["ledger.sqlite", "ledger.head"] {
        std::fs::copy(fixture().join(name), store.join(name)).expect("copy fixture");
    }
    let (before, newest) = {
        let l = Ledger::open(&store.join("ledger.sqlite")).expect("open");
        (rows(&l), l.newest_event().expect("newest").expect("events").0)
    };
    let config = fotovakt::Config {
        store: Some(store.clone()),
        classifier: fotovakt::classify::Settings { enabled: false, ..Default::default() },
        ..fotovakt::Config::default()
    };
    let a = fotovakt::Agent::open_without_model(config.clone()).expect("agent");
    let fingerprint = a.stats(false).expect("stats").device_key.expect("a key").fingerprint;
    let keys = a.ledger().events_of_kind("device_key").expect("keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (seq, _, event) = &keys[0];
    assert_eq!(*seq, newest + 1, "appended after the old events (and the upgrade's)");
    assert!(
        matches!(event, Event::DeviceKey { reason: fotovakt::ledger::KeyReason::Added, previous: None, fingerprint: f, algorithm, .. } if *f == fingerprint && algorithm == "ed25519"),
        "{event:?}"
    );
    assert!(a.ledger().check_chain().expect("check").problems.is_empty());
    drop(a);
    // The second open finds the same key and records nothing.
    let a = fotovakt::Agent::open_without_model(config).expect("again");
    assert_eq!(a.ledger().events_of_kind("device_key").expect("keys").len(), 1);
    let after = rows(&a.ledger());
    assert_eq!(&after[..before.len()], &before[..], "the old events are untouched");
}

/// Every file of the ledger (database, write-ahead log, its index, the head) as bytes.
fn ledger_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "ledger.head"]
        .iter()
        .filter_map(|n| std::fs::read(dir.join(n)).ok().map(|b| (n.to_string(), b)))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The photo the old program kept, as it recorded a camera photo (path, and GPS, capture time
/// and embedding as well): after the upgrade none of it is in any of the ledger's files, and
/// the chain still verifies.
#[test]
fn the_upgrade_takes_the_kept_photo_out_of_the_files_and_the_chain_still_verifies() {
    let dir = copy();
    let db = dir.path().join("ledger.sqlite");
    let (lat, lon) = (43.467_448_333_333_34_f64, 11.885_126_666_663_89_f64);
    let embedding: Vec<u8> = (0..1280u32).flat_map(|i| (0.5 + i as f32 * 0.001).to_le_bytes()).collect();
    let path: Vec<u8> = {
        let c = rusqlite::Connection::open(&db).expect("raw open");
        c.execute(
            "UPDATE items SET gps_lat = ?1, gps_lon = ?2, capture_time = '2008-10-22T16:28:39', embedding = ?3 \
             WHERE state = 'kept'",
            rusqlite::params![lat, lon, embedding],
        )
        .expect("as an older program recorded a camera photo");
        c.query_row("SELECT original_path FROM items WHERE state = 'kept'", [], |r| r.get(0)).expect("kept path")
    };
    let name = Path::new(std::str::from_utf8(&path).expect("utf-8")).file_name().expect("name").to_owned();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("path", path.clone()),
        ("file name", name.to_string_lossy().as_bytes().to_vec()),
        ("latitude (LE)", lat.to_le_bytes().to_vec()),
        ("latitude (BE)", lat.to_be_bytes().to_vec()),
        ("longitude (LE)", lon.to_le_bytes().to_vec()),
        ("longitude (BE)", lon.to_be_bytes().to_vec()),
        ("latitude as text", b"43.4674".to_vec()),
        ("capture time", b"2008-10-22T16:28:39".to_vec()),
        ("embedding", embedding[..256].to_vec()),
    ];
    let before: Vec<u8> = ledger_files(dir.path()).into_iter().flat_map(|(_, b)| b).collect();
    // (SQLite stores a REAL big-endian.)
    assert!(contains(&before, &path) && contains(&before, &lat.to_be_bytes()), "the old file holds them");
    let l = Ledger::open(&db).expect("open: upgrade");
    let report = l.check_chain().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.pruned, 2);
    let blobs: i64 = l
        .conn()
        .query_row("SELECT count(*) FROM items WHERE length(embedding) >= 1024", [], |r| r.get(0))
        .expect("blobs");
    assert_eq!(blobs, 0);
    let holds = |when: &str| {
        for (file, bytes) in ledger_files(dir.path()) {
            for (what, needle) in &needles {
                assert!(!contains(&bytes, needle), "{when}: {file} still holds the kept photo's {what}");
            }
        }
    };
    holds("while open");
    drop(l);
    holds("after close");
    let l = Ledger::open(&db).expect("reopen");
    assert!(l.check_chain().expect("check").problems.is_empty());
}

/// A released false positive in the old ledger, forgotten when its correction runs out: its
/// path leaves the row and the files, the events that named it are pruned (v1 rows: checked by
/// their links), a `forgotten` event lists them, and the chain verifies with them counted.
#[test]
fn a_released_photo_of_an_old_ledger_is_forgotten_and_the_chain_still_verifies() {
    let dir = copy();
    let db = dir.path().join("ledger.sqlite");
    let mut l = Ledger::open(&db).expect("open");
    let released = l.items(None).expect("items").into_iter().find(|i| i.state == ItemState::Released).expect("one");
    let path = released.original_path.to_string_lossy().into_owned();
    let before = l.check_chain().expect("check").pruned;
    let mut tx = l.write().expect("write");
    let n = tx.forget_released(released.id).expect("forget").expect("its events verify");
    tx.commit().expect("commit");
    l.scrub_log().expect("scrub");
    assert!(n >= 3, "intake, decided, release request and release: {n}");
    let report = l.check_chain().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.pruned, before + n as u64);
    let row = l.item(released.id).expect("row stays");
    assert_eq!((row.state, row.sha256.as_str()), (ItemState::Released, released.sha256.as_str()));
    assert_eq!(row.original_path, PathBuf::new(), "{row:?}");
    assert_eq!(l.pruned_events_of(released.id).expect("pruned").len(), n);
    let kinds: Vec<&str> = l.events_of(released.id).expect("events").iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"quarantined") && kinds.ends_with(&["forgotten"]), "{kinds:?}");
    for (file, bytes) in ledger_files(dir.path()) {
        assert!(!contains(&bytes, path.as_bytes()), "{file} still holds the released photo's path");
    }
}

/// After the upgrade: removing an event's contents without a `forgotten` event that lists it,
/// or editing a v2 row, is caught.
#[test]
fn tampering_with_pruned_or_v2_rows_of_an_upgraded_ledger_is_detected() {
    type Expect = fn(&Problem) -> bool;
    let pruned_without_record: Expect = |p| matches!(p, Problem::PrunedWithoutRecord { .. });
    let edited: Expect = |p| matches!(p, Problem::HashMismatch { .. });
    let cases: [(&str, &str, Expect); 5] = [
        (
            "a case item's v1 intake emptied",
            "UPDATE events SET data = NULL WHERE kind = 'intake' AND item_id = \
             (SELECT id FROM items WHERE state = 'quarantined')",
            pruned_without_record,
        ),
        ("the upgrade's own event emptied", "UPDATE events SET data = NULL WHERE kind = 'privacy_upgrade'", {
            pruned_without_record
        }),
        (
            "a forgotten event emptied: what it accounted for is not accounted for",
            "UPDATE events SET data = NULL WHERE kind = 'forgotten'",
            pruned_without_record,
        ),
        (
            "a v2 row's count edited",
            "UPDATE events SET data = replace(data, '\"personal_items\":1', '\"personal_items\":0') \
             WHERE kind = 'privacy_upgrade'",
            edited,
        ),
        ("a v2 row's kind edited", "UPDATE events SET kind = 'vanished' WHERE kind = 'privacy_upgrade'", edited),
    ];
    for (what, sql, expect) in cases {
        let dir = copy();
        let db = dir.path().join("ledger.sqlite");
        drop(Ledger::open(&db).expect("upgrade"));
        rusqlite::Connection::open(&db).expect("raw").execute(sql, []).expect(what);
        let problems = Ledger::open(&db).expect("open").check_chain().expect("check").problems;
        assert!(problems.iter().any(expect), "{what}: {problems:?}");
    }
}

/// A read-only open (the commands that only look) reads an old ledger as it is and never
/// upgrades it: the files stay byte for byte, the kept photo is still an item, and the v1
/// chain verifies. When a writer upgrades it while the reader is open, the reader's next read
/// sees schema 2 (pruned rows counted, not reported).
#[test]
fn a_reader_reads_an_old_ledger_as_it_is_and_follows_a_writer_that_upgrades_it() {
    use fotovakt::ledger::LedgerReader;
    let dir = copy();
    let db = dir.path().join("ledger.sqlite");
    let before = ledger_files(dir.path());
    let mut r = LedgerReader::open(&db).expect("read-only open of the old ledger");
    let report = r.snapshot(|l| l.check_chain()).expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.pruned, 0);
    let old_events = report.events;
    let items = r.items(None).expect("items");
    assert!(items.iter().any(|i| i.state == ItemState::Kept), "the kept photo is an item still: {items:?}");
    assert_eq!(r.personal_counts().expect("counts"), Default::default(), "no keyed records in schema 1");
    assert!(!dir.path().join("privacy.key").exists(), "a reader makes no device secret");
    drop(r);
    let after: Vec<(String, Vec<u8>)> =
        ledger_files(dir.path()).into_iter().filter(|(n, b)| !(n.ends_with("-wal") && b.is_empty())).collect();
    let before: Vec<(String, Vec<u8>)> = before.into_iter().filter(|(n, _)| !n.ends_with("-shm")).collect();
    let after: Vec<(String, Vec<u8>)> = after.into_iter().filter(|(n, _)| !n.ends_with("-shm")).collect();
    assert_eq!(before, after, "the old ledger's files are not changed");
    assert_eq!(user_version(&db), 0, "not upgraded");

    let mut r = LedgerReader::open(&db).expect("read-only open");
    drop(Ledger::open(&db).expect("a writer upgrades it meanwhile"));
    r.current().expect("the reader follows");
    let report = r.snapshot(|l| l.check_chain()).expect("check after the upgrade");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.pruned, 2, "the kept photo's events, pruned and recorded");
    assert_eq!(report.events, old_events + 2, "a forgotten and a privacy_upgrade event");
    assert!(r.items(None).expect("items").iter().all(|i| i.state != ItemState::Kept));
    assert_eq!(r.personal_counts().expect("counts").kept, 1);
}
