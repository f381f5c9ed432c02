//! Unit tests of the agent's seams: the one table of move endings, the ledger facts intake
//! loads once, and the durability barrier's bookkeeping.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::commit::{Note, Seen};
use super::intake::Stamp;
use super::Agent;
use crate::ledger::{Direction, ItemState, Ledger, MoveIntent, NewItem};
use crate::quarantine::Recovered;

struct Phone {
    _dir: tempfile::TempDir,
    camera: PathBuf,
    agent: Agent,
}

fn phone() -> Phone {
    let dir = tempfile::tempdir().expect("tempdir");
    let camera = dir.path().join("DCIM/Camera");
    std::fs::create_dir_all(&camera).expect("camera");
    let mut config = crate::Config {
        store: Some(dir.path().join("private/store")),
        cameras: vec![camera.clone()],
        ..Default::default()
    };
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    Phone { _dir: dir, camera, agent }
}

/// A journaled move of a fresh item, as the pipeline leaves it before the move runs.
fn journaled(agent: &Agent, direction: Direction, path: &Path) -> MoveIntent {
    let sha = "ab".repeat(32);
    let mut ledger = agent.ledger();
    let mut tx = ledger.write().expect("tx");
    let state = if direction == Direction::In { ItemState::Moving } else { ItemState::Releasing };
    let item = tx
        .insert_item(&NewItem {
            sha256: &sha,
            size: 3,
            original_path: path,
            kind: "jpeg",
            capture_time: None,
            gps: None,
            file_mtime_ns: Some(1),
            first_seen_ms: 1,
            state,
            action: "quarantine",
            source: "session",
            rule: "test",
            score: None,
            case_id: None,
            officer: None,
            tags: &[],
            embedding: None,
        })
        .expect("item");
    let (mut intent, name) = agent.store.plan_in(item, path, &sha, 3);
    if direction == Direction::Out {
        intent = agent.store.plan_out(item, &name, path, &sha, 3);
    }
    intent.id = tx.journal_move(&intent).expect("journal");
    tx.commit().expect("commit");
    intent
}

/// One ending of a move and what it must write.
struct Row {
    dir: Direction,
    end: Recovered,
    seen: Seen,
    reason: Option<&'static str>,
    exposure_ms: Option<i64>,
    officer: Option<&'static str>,
    state: ItemState,
    kind: &'static str,
    /// The event's data, less the sha256/store_name (into the store) or path (released) the
    /// test adds from the journaled move.
    data: &'static str,
}

const fn row(
    dir: Direction,
    end: Recovered,
    seen: Seen,
    state: ItemState,
    kind: &'static str,
    data: &'static str,
) -> Row {
    Row { dir, end, seen, reason: None, exposure_ms: None, officer: None, state, kind, data }
}

const fn because(r: Row, reason: &'static str) -> Row {
    Row { reason: Some(reason), ..r }
}

/// The literals the three copies of this code wrote before `apply_outcome` replaced them
/// (one difference, the typed `Event::Released`'s: an officer that is not known is left out
/// rather than written as `null`).
const ENDINGS: &[Row] = {
    use Direction::{In, Out};
    use ItemState::{Aborted, OriginalKept, Quarantined, Released};
    use Recovered::{Completed, RolledBack, SourceKept, Vanished};
    use Seen::{AtStart, Executed, Midway};
    &[
        Row {
            exposure_ms: Some(7),
            ..row(In, Completed, Executed, Quarantined, "quarantined", r#"{"state":"quarantined","exposure_ms":7}"#)
        },
        Row {
            exposure_ms: Some(7),
            ..because(
                row(
                    In,
                    SourceKept,
                    Executed,
                    OriginalKept,
                    "original_kept",
                    r#"{"state":"copied_original_kept","exposure_ms":7,"reason":"original could not be deleted: EROFS"}"#,
                ),
                "original could not be deleted: EROFS",
            )
        },
        because(
            row(In, RolledBack, Executed, Aborted, "move_aborted", r#"{"state":"aborted","reason":"changed"}"#),
            "changed",
        ),
        because(
            row(
                In,
                SourceKept,
                Midway,
                OriginalKept,
                "original_kept",
                r#"{"state":"copied_original_kept","reason":"midway","recovered":true}"#,
            ),
            "midway",
        ),
        row(In, Completed, Midway, Quarantined, "quarantined", r#"{"state":"quarantined","recovered":true}"#),
        because(
            row(In, Vanished, Midway, Aborted, "move_rolled_back", r#"{"state":"aborted","reason":"midway"}"#),
            "midway",
        ),
        because(
            row(In, RolledBack, Midway, Aborted, "move_rolled_back", r#"{"state":"aborted","reason":"midway"}"#),
            "midway",
        ),
        because(
            row(
                In,
                SourceKept,
                AtStart,
                OriginalKept,
                "original_kept",
                r#"{"state":"copied_original_kept","reason":"original could not be deleted","recovered":true}"#,
            ),
            "original could not be deleted",
        ),
        row(In, Completed, AtStart, Quarantined, "quarantined", r#"{"state":"quarantined","recovered":true}"#),
        row(In, RolledBack, AtStart, Aborted, "move_rolled_back", r#"{"state":"aborted","recovered":true}"#),
        row(In, Vanished, AtStart, Aborted, "vanished", r#"{"state":"aborted","recovered":true}"#),
        Row {
            officer: Some("o"),
            ..because(
                row(
                    Out,
                    SourceKept,
                    Executed,
                    Released,
                    "released",
                    r#"{"state":"released","reason":"not evidence","officer":"o"}"#,
                ),
                "not evidence",
            )
        },
        because(
            row(Out, Completed, Executed, Released, "released", r#"{"state":"released","reason":"not evidence"}"#),
            "not evidence",
        ),
        because(
            row(
                Out,
                RolledBack,
                Executed,
                Quarantined,
                "release_failed",
                r#"{"state":"quarantined","reason":"occupied"}"#,
            ),
            "occupied",
        ),
        row(
            Out,
            SourceKept,
            AtStart,
            Released,
            "released",
            r#"{"state":"released","recovered":true,"store_file_kept":true}"#,
        ),
        row(Out, Completed, AtStart, Released, "released", r#"{"state":"released","recovered":true}"#),
        row(
            Out,
            RolledBack,
            AtStart,
            Quarantined,
            "release_rolled_back",
            r#"{"state":"quarantined","recovered":true}"#,
        ),
        row(Out, Vanished, AtStart, Aborted, "vanished", r#"{"state":"aborted","recovered":true}"#),
    ]
};

/// Every ending of a move writes the state and the event it wrote before `apply_outcome`
/// was the one place that writes them.
#[test]
fn every_ending_writes_the_event_it_always_wrote() {
    let p = phone();
    let path = p.camera.join("IMG_1.jpg");
    for r in ENDINGS {
        let m = journaled(&p.agent, r.dir, &path);
        let ctx = format!("{:?} {:?} seen {:?}", r.dir, r.end, r.seen);
        let note = Note { reason: r.reason, exposure_ms: r.exposure_ms, officer: r.officer, ..Note::default() };
        {
            let mut ledger = p.agent.ledger();
            let mut tx = ledger.write().expect("tx");
            p.agent.apply_outcome(&mut tx, &m, r.end, r.seen, &note).expect("apply");
            tx.commit().expect("commit");
        }
        let mut want: Value = serde_json::from_str(r.data).expect("test data is JSON");
        let obj = want.as_object_mut().expect("object");
        match (r.dir, r.state) {
            (Direction::In, ItemState::Quarantined | ItemState::OriginalKept) => {
                obj.insert("sha256".into(), json!(m.sha256));
                obj.insert("store_name".into(), json!(p.agent.store_name_of(&m.dst)));
            }
            (Direction::Out, ItemState::Released) => {
                obj.insert("path".into(), json!(m.dst.to_string_lossy()));
            }
            _ => {}
        }
        let ledger = p.agent.ledger();
        assert_eq!(ledger.item(m.item_id).expect("item").state, r.state, "{ctx}");
        let events = ledger.events_of(m.item_id).expect("events");
        let last = events.last().expect("an event");
        // The ledger adds its boot-clock stamp to every event; the rest is the event's own.
        let mut data = last.data.clone();
        let stamp = data.as_object_mut().and_then(|o| o.remove(crate::ledger::clock::KEY));
        assert!(stamp.is_some(), "{ctx}: every event carries a boot-clock stamp");
        assert_eq!((last.kind, &data), (r.kind, &want), "{ctx}");
        assert!(ledger.pending_moves().expect("journal").is_empty(), "{ctx}: the journal row is closed");
    }
}

/// Intake's facts stand while nobody commits; a commit by this agent or by another process
/// (another connection to the same ledger) makes the commit stage load them again.
#[test]
fn known_facts_are_reloaded_only_after_a_commit() {
    let p = phone();
    let path = p.camera.join("IMG_2.jpg");
    std::fs::write(&path, b"abc").expect("write");
    let id = crate::quarantine::fsops::lstat_id(&path).expect("id");
    let known = p.agent.known(&path, &id).expect("known");
    assert!(!known.settled && known.latest.is_none());
    let before = Stamp::of(&p.agent.ledger());
    assert!(before.is_some() && before == Stamp::of(&p.agent.ledger()), "no commit, same stamp");
    // Another process records the same file version as kept.
    let mut other = Ledger::open(&p.agent.store.ledger_path()).expect("second connection");
    let mut tx = other.write().expect("tx");
    tx.insert_item(&NewItem {
        sha256: &"cd".repeat(32),
        size: id.size,
        original_path: &path,
        kind: "jpeg",
        capture_time: None,
        gps: None,
        file_mtime_ns: Some(id.mtime_ns),
        first_seen_ms: 1,
        state: ItemState::Kept,
        action: "keep",
        source: "default",
        rule: "test",
        score: None,
        case_id: None,
        officer: None,
        tags: &[],
        embedding: None,
    })
    .expect("item");
    tx.commit().expect("commit");
    assert_ne!(before, Stamp::of(&p.agent.ledger()), "another connection's commit changes the stamp");
    let now = known.current(&p.agent.ledger(), &path, &id, false).expect("current");
    assert!(now.settled && now.latest.is_some_and(|i| i.state == ItemState::Kept), "reloaded");
    // This agent's own commit changes it too.
    let before = Stamp::of(&p.agent.ledger());
    p.agent.session_start("K-1", None, None).expect("session");
    assert_ne!(before, Stamp::of(&p.agent.ledger()), "our own commit changes the stamp");
}

/// The barrier records what it synced: nothing new, nothing to do; a commit (even one no
/// caller flushed) makes the next barrier sync the WAL again. Officer operations run it.
#[test]
fn the_barrier_knows_when_there_is_nothing_to_sync() {
    let p = phone();
    p.agent.flush().expect("flush");
    let synced = |a: &Agent| a.barrier().synced_changes == Some(a.ledger().conn().total_changes());
    assert!(synced(&p.agent) && p.agent.barrier().dirty.is_empty());
    p.agent.session_start("K-2", None, None).expect("session");
    assert!(synced(&p.agent), "an officer operation ends with the barrier");
    {
        let mut ledger = p.agent.ledger();
        let mut tx = ledger.write().expect("tx");
        tx.start_session("K-3", None, None).expect("a row nobody flushed");
        tx.commit().expect("commit");
    }
    assert!(!synced(&p.agent), "a commit nobody flushed is pending");
    p.agent.flush().expect("flush");
    assert!(synced(&p.agent));
    p.agent.session_stop().expect("stop");
    assert!(synced(&p.agent), "session stop ends with the barrier");
}

/// JSON the agent hands out (the statistics for the Android shell) is text or a typed error,
/// never an empty text that a reader would take for "no numbers".
#[test]
fn json_that_cannot_be_written_is_an_error_not_an_empty_text() {
    let fine = super::casefile::json_text("statistics", &json!({"items": 1})).expect("plain data writes");
    assert!(fine.contains("\"items\": 1"), "{fine}");
    // JSON object keys must be strings: a map keyed by pairs cannot be written.
    let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    match super::casefile::json_text("statistics", &bad) {
        Err(super::Error::Json { what: "statistics", .. }) => {}
        other => panic!("expected a JSON error, got {other:?}"),
    }
}
