//! Ledgers written before custody events were typed still open, verify and read.
//!
//! `tests/data/ledger-v1/` holds a real store's ledger (`ledger.sqlite`, WAL checkpointed,
//! and `ledger.head`) and the case package exported from it (`C-1.zip`), all written by the
//! binary of commit 4faa933 (`scripts`-free recipe in its README.md): scan with a rejected
//! file, a case session, a tag, a release, a second session, export, ack and purge.

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

/// Every event row as (seq, kind, data text).
fn rows(l: &Ledger) -> Vec<(i64, String, String)> {
    let mut stmt = l.conn().prepare("SELECT seq, kind, data FROM events ORDER BY seq").expect("prepare");
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
        assert_eq!(e.data_text(), data, "event {seq} ({kind}): field names, types and order are today's");
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
    for s in [ItemState::Kept, ItemState::Quarantined, ItemState::Released, ItemState::Purged] {
        assert!(states.contains(&s), "an item is {}: {states:?}", s.as_str());
    }
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
            |p| matches!(p, Problem::HeadEventMissing { .. }),
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
    let before = rows(&Ledger::open(&store.join("ledger.sqlite")).expect("open"));
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
    assert_eq!(*seq, before.len() as i64 + 1, "appended after the old events");
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
