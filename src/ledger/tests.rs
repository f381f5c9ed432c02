use super::*;

fn new_item<'a>(path: &'a Path, tags: &'a [String]) -> NewItem<'a> {
    NewItem {
        sha256: "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        size: 3,
        original_path: path,
        kind: "jpeg",
        capture_time: None,
        gps: None,
        file_mtime_ns: Some(7),
        first_seen_ms: 1,
        state: ItemState::Kept,
        action: "keep",
        source: "default",
        rule: "test",
        score: None,
        case_id: None,
        officer: None,
        tags,
        embedding: Some(&[1.0, -2.5]),
    }
}

fn session_event(i: usize) -> Event {
    Event::SessionStarted { case_id: format!("C-{i}"), session: i as i64, officer: None, until_ms: None }
}

/// `n` committed events, made durable (the head names the last).
fn ledger_with_events(dir: &Path, n: usize) -> Ledger {
    let mut l = Ledger::open(&dir.join("ledger.sqlite")).expect("open");
    for i in 0..n {
        let mut tx = l.write().expect("tx");
        tx.record(None, &session_event(i)).expect("record");
        tx.commit().expect("commit");
    }
    l.sync().expect("sync");
    l
}

fn problems(l: &Ledger) -> Vec<Problem> {
    l.check_chain().expect("check").problems.into_vec()
}

#[test]
fn intact_chain_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = ledger_with_events(dir.path(), 5);
    let r = l.check_chain().expect("verify");
    assert_eq!((r.events, r.links_checked), (5, 5));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn edits_deletions_reorders_and_truncation_are_detected() {
    type Tamper = fn(&Connection);
    type Expect = fn(&Problem) -> bool;
    let cases: [(&str, Tamper, Expect); 4] = [
        (
            "edited",
            |c| {
                c.execute("UPDATE events SET data = replace(data, 'C-1', 'C-9') WHERE seq = 2", []).expect("edit");
            },
            |p| matches!(p, Problem::HashMismatch { seq: 2, .. }),
        ),
        (
            "deleted",
            |c| {
                c.execute("DELETE FROM events WHERE seq = 3", []).expect("delete");
            },
            |p| matches!(p, Problem::SequenceGap { seq: 4, expected: 3 }),
        ),
        (
            "reordered",
            |c| {
                c.execute_batch(
                    "UPDATE events SET seq = 100 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 3; \
                     UPDATE events SET seq = 3 WHERE seq = 100;",
                )
                .expect("swap");
            },
            |p| matches!(p, Problem::BrokenLink { seq: 2, previous: 1, .. }),
        ),
        (
            "truncated",
            |c| {
                c.execute("DELETE FROM events WHERE seq = 5", []).expect("cut");
            },
            |p| matches!(p, Problem::HeadEventMissing { seq: 5 }),
        ),
    ];
    for (what, tamper, expect) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = ledger_with_events(dir.path(), 5);
        tamper(l.conn());
        let found = problems(&l);
        assert!(found.iter().any(expect), "{what} not detected as expected: {found:?}");
    }
}

#[test]
fn item_rows_must_agree_with_their_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    let path = PathBuf::from("/cam/IMG_1.jpg");
    let tags = vec![];
    let mut tx = l.write().expect("tx");
    let id = tx.insert_item(&new_item(&path, &tags)).expect("insert");
    let intake = Event::Intake {
        sha256: new_item(&path, &tags).sha256.to_string(),
        size: 3,
        kind: "jpeg".into(),
        path: path.to_string_lossy().into_owned(),
        mtime_ns: 7,
        first_seen_ms: 1,
    };
    tx.record(Some(id), &intake).expect("intake");
    let decided = Event::Decided {
        state: ItemState::Kept,
        action: Action::Keep,
        source: ItemSource::Default,
        rule: "test".into(),
        case_id: None,
        score: None,
    };
    tx.record(Some(id), &decided).expect("decided");
    tx.commit().expect("commit");
    assert!(problems(&l).is_empty());
    assert_eq!(l.embedding(id).expect("embedding"), Some(vec![1.0, -2.5]));
    assert!(l.is_settled(&path, 3, 7).expect("settled"));
    assert_eq!(l.find_item("ab12cd").expect("by hash").id, id);
    assert_eq!(l.find_item(&format!("#{id}")).expect("by id").id, id);
    assert_eq!(l.last_decided_ms().expect("last"), Some(l.item(id).expect("item").decided_at_ms));
    assert!(l.item_by_store_name("ab/none.jpg").expect("by name").is_none());
    l.conn().execute("UPDATE items SET store_name = 'ab/x.jpg' WHERE id = ?1", [id]).expect("name");
    assert_eq!(l.item_by_store_name("ab/x.jpg").expect("by name").map(|i| i.id), Some(id));
    let log = l.events_of(id).expect("events");
    assert_eq!(log.iter().map(|e| &e.event).collect::<Vec<_>>(), [&intake, &decided]);
    assert_eq!(l.intake_of(id).expect("intake"), Some(intake));

    l.conn().execute("UPDATE items SET state = 'released' WHERE id = ?1", [id]).expect("tamper");
    let found = problems(&l);
    let expected = Problem::ItemStateDiffers { item: id, row: ItemState::Released, events: Some(ItemState::Kept) };
    assert!(found.contains(&expected), "{found:?}");
    assert!(expected.to_string().contains("state released but its events say kept"), "{expected}");

    // A state this program does not know is a problem of that row, never read as some default.
    l.conn().execute("UPDATE items SET state = 'exploded' WHERE id = ?1", [id]).expect("tamper");
    let found = problems(&l);
    assert!(found.iter().any(|p| matches!(p, Problem::UnreadableItem { item, .. } if *item == id)), "{found:?}");
    assert!(l.item(id).is_err(), "an unknown state does not read as a state");
}

#[test]
fn unknown_sources_are_refused_on_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    let path = PathBuf::from("/cam/IMG_2.jpg");
    let tags = vec![];
    let mut tx = l.write().expect("tx");
    let bad = NewItem { source: "psychic", ..new_item(&path, &tags) };
    assert!(matches!(tx.insert_item(&bad), Err(LedgerError::UnknownValue { .. })));
}

#[test]
fn a_rejection_is_found_by_its_fields_not_its_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
    assert!(!l.rejection_recorded("/cam/x.jpg", 42).expect("none yet"));
    let mut tx = l.write().expect("tx");
    // Written with another key order and reason than the agent writes today.
    let e =
        Event::from_stored("rejected", r#"{"reason":"truncated JPEG","key":42,"path":"/cam/x.jpg"}"#).expect("typed");
    tx.record(None, &e).expect("record");
    tx.commit().expect("commit");
    assert!(l.rejection_recorded("/cam/x.jpg", 42).expect("same version"));
    assert!(!l.rejection_recorded("/cam/x.jpg", 43).expect("another version"));
    assert!(!l.rejection_recorded("/cam/y.jpg", 42).expect("another file"));
}

#[test]
fn the_head_advances_at_the_barrier_and_never_names_a_row_that_is_not_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = ledger_with_events(dir.path(), 2);
    assert!(matches!(head::read(l.head_path()), Head::At { seq: 2, .. }));
    let mut tx = l.write().expect("tx");
    tx.record(None, &session_event(9)).expect("record");
    tx.commit().expect("commit");
    // Committed, not yet behind a barrier: the head lags, which is no problem.
    assert!(matches!(head::read(l.head_path()), Head::At { seq: 2, .. }));
    assert!(problems(&l).is_empty());
    l.sync().expect("sync");
    assert!(matches!(head::read(l.head_path()), Head::At { seq: 3, .. }));
}

#[test]
fn a_new_ledger_is_anchored_from_its_first_instant_and_a_lost_head_is_never_silently_remade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.sqlite");
    let mut l = Ledger::open(&db).expect("open");
    assert_eq!(head::read(l.head_path()), Head::At { seq: 0, hash: GENESIS.into() }, "a new ledger names event 0");
    assert!(problems(&l).is_empty());
    for i in 0..3 {
        let mut tx = l.write().expect("tx");
        tx.record(None, &session_event(i)).expect("record");
        tx.commit().expect("commit");
    }
    // Committed, not yet behind a barrier: the head at 0 lags, which is no problem.
    assert!(problems(&l).is_empty(), "{:?}", problems(&l));
    let s = l.sync().expect("sync").expect("events");
    assert_eq!((s.seq, s.advanced), (3, true));
    assert!(!l.sync().expect("sync").expect("events").advanced, "nothing new: the head stays");

    // The head deleted (with rows cut off, or alone): reported, and no barrier writes a new one.
    std::fs::remove_file(l.head_path()).expect("rm head");
    let c = Connection::open(&db).expect("raw");
    c.execute("DELETE FROM events WHERE seq = 3", []).expect("cut");
    drop(c);
    assert_eq!(problems(&l), vec![Problem::HeadMissing { newest: 2 }]);
    let mut tx = l.write().expect("tx");
    tx.record(None, &session_event(9)).expect("record");
    tx.commit().expect("commit");
    let s = l.sync().expect("sync").expect("events");
    assert!(!s.advanced && head::read(l.head_path()) == Head::Absent, "no head written over the loss");
    drop(l);
    let l = Ledger::open(&db).expect("reopen");
    assert_eq!(head::read(l.head_path()), Head::Absent, "reopening a ledger with events does not anchor it anew");
    assert_eq!(problems(&l), vec![Problem::HeadMissing { newest: 3 }]);

    // An officer's audited re-anchoring clears it.
    let mut l = l;
    let mut tx = l.write().expect("tx");
    let e = Event::HeadAnchored { found: HeadFound::Missing, newest: 3, reason: "test".into(), officer: None };
    tx.record(None, &e).expect("record");
    tx.commit().expect("commit");
    assert_eq!(l.reanchor().expect("anchor").map(|(seq, _)| seq), Some(4));
    assert!(matches!(head::read(l.head_path()), Head::At { seq: 4, .. }));
    assert!(problems(&l).is_empty(), "{:?}", problems(&l));
}

#[test]
fn every_event_carries_a_boot_clock_stamp_and_a_wall_clock_set_back_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.sqlite");
    let l = ledger_with_events(dir.path(), 3);
    let stamps: Vec<clock::Stamp> = {
        let mut stmt = l.conn().prepare("SELECT data FROM events ORDER BY seq").expect("prepare");
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query");
        rows.map(|d| clock::of_data(&serde_json::from_str(&d.expect("row")).expect("json")).expect("stamp")).collect()
    };
    assert_eq!(stamps.len(), 3);
    assert!(stamps.windows(2).all(|w| w[0].boot == w[1].boot && w[0].mono_ms <= w[1].mono_ms), "{stamps:?}");
    assert!(problems(&l).is_empty());
    // Event 3 recorded as if the wall clock had been set back an hour (its own hash and the
    // head recomputed: only the two clocks disagree).
    let c = Connection::open(&db).expect("raw");
    let (at, kind, data, prev): (i64, String, String, String) = c
        .query_row("SELECT at_ms, kind, data, prev_hash FROM events WHERE seq = 3", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("row");
    let back = at - 3_600_000;
    let hash = event_hash_v2(3, back, &kind, None, &data_sha256(&data), &prev);
    c.execute("UPDATE events SET at_ms = ?1, hash = ?2 WHERE seq = 3", params![back, hash]).expect("edit");
    head::write(l.head_path(), 3, &hash).expect("head");
    let found = problems(&l);
    assert!(
        matches!(found.as_slice(), [Problem::ClockRanBackwards { seq: 3, previous: 2, by_ms, .. }] if *by_ms >= 3_590_000),
        "{found:?}"
    );
}

#[test]
fn a_ledger_dropped_without_a_barrier_still_leaves_a_current_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.sqlite");
    {
        let mut l = Ledger::open(&db).expect("open");
        let mut tx = l.write().expect("tx");
        tx.record(None, &session_event(1)).expect("record");
        tx.commit().expect("commit");
    }
    assert!(matches!(head::read(&dir.path().join("ledger.head")), Head::At { seq: 1, .. }));
}

#[test]
fn sessions_cover_their_window() {
    let s = Session { id: 1, case_id: "C".into(), officer: None, started_ms: 10, until_ms: Some(20), stopped_ms: None };
    assert!(s.covers(10) && s.covers(19) && !s.covers(20) && !s.covers(9));
    let stopped = Session { stopped_ms: Some(15), ..s.clone() };
    assert!(!stopped.covers(15));
    let open = Session { until_ms: None, ..s };
    assert!(open.covers(i64::MAX - 1));
}

/// Two writers (the watcher and an officer's command) reach their barriers at once, over and
/// over: every barrier succeeds, the head never reads as damaged, and it ends at the last row.
#[test]
fn concurrent_barriers_never_leave_a_damaged_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.sqlite");
    drop(Ledger::open(&db).expect("create"));
    let head = dir.path().join("ledger.head");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen_damage = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let h @ Head::Unreadable(_) = head::read(&head) {
                    seen_damage.push(h);
                }
            }
            seen_damage
        });
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let db = &db;
                s.spawn(move || {
                    let mut l = Ledger::open(db).expect("open");
                    let mut failed = Vec::new();
                    for i in 0..40 {
                        let mut tx = l.write().expect("tx");
                        tx.record(None, &session_event(w * 1000 + i)).expect("record");
                        tx.commit().expect("commit");
                        if let Err(e) = l.sync() {
                            failed.push(e.to_string());
                        }
                    }
                    failed
                })
            })
            .collect();
        let failed: Vec<String> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let damage = watcher.join().expect("reader");
        assert!(failed.is_empty(), "{} barriers failed: {:?}", failed.len(), failed.first());
        assert!(damage.is_empty(), "the head read as damaged {} times: {:?}", damage.len(), damage.first());
    });
    let l = Ledger::open(&db).expect("open");
    assert!(matches!(head::read(&head), Head::At { seq: 80, .. }), "{:?}", head::read(&head));
    assert!(problems(&l).is_empty(), "{:?}", problems(&l));
}

/// A v2 row's data can be pruned and the chain still checks, if a later `forgotten` event of
/// its item lists it; otherwise, or if the data was edited, it is reported.
#[test]
fn pruned_v2_rows_verify_only_when_recorded_and_edits_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.sqlite");
    let mut l = Ledger::open(&db).expect("open");
    let mut tx = l.write().expect("write");
    // A held photo (no media-location access), later decided as the officer's own.
    let held = Event::Held { would: Action::Keep, reason: "the note".into() };
    let first = tx.record(Some(7), &held).expect("held");
    let second = tx.record(Some(7), &held).expect("held again");
    tx.commit().expect("commit");
    let prune = |seq: i64| l.conn().execute("UPDATE events SET data = NULL WHERE seq = ?1", [seq]).expect("prune");
    prune(first);
    let problems = l.check_chain().expect("check").problems;
    assert!(
        matches!(problems.as_ref(), [Problem::PrunedWithoutRecord { seq, .. }] if *seq == first),
        "unrecorded: {problems:?}"
    );
    let mut tx = l.write().expect("write");
    let forgotten = Event::Forgotten { reason: ForgetReason::DecidedPersonal, pruned: vec![first], state: None };
    tx.record(Some(7), &forgotten).expect("forgotten");
    tx.commit().expect("commit");
    let report = l.check_chain().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.pruned, report.links_checked), (1, 3));
    // Editing data that is still there is caught.
    l.conn()
        .execute("UPDATE events SET data = replace(data, 'the note', 'a note') WHERE seq = ?1", [second])
        .expect("edit");
    let problems = l.check_chain().expect("check").problems;
    assert!(matches!(problems.as_ref(), [Problem::HashMismatch { seq, .. }] if *seq == second), "{problems:?}");
}

/// A `forgotten` event must fit its item (`pruning`): what the agent never forgets is
/// reported, however well the hashes hold.
#[test]
fn a_forgotten_event_that_does_not_fit_its_item_is_reported() {
    use super::pruning::Misfit;
    let misfits = |events: &[Event], reason: ForgetReason| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
        let mut tx = l.write().expect("write");
        let seqs: Vec<i64> = events.iter().map(|e| tx.record(Some(3), e).expect("record")).collect();
        tx.commit().expect("commit");
        for s in &seqs {
            l.conn().execute("UPDATE events SET data = NULL WHERE seq = ?1", [s]).expect("prune");
        }
        let mut tx = l.write().expect("write");
        tx.record(Some(3), &Event::Forgotten { reason, pruned: seqs, state: None }).expect("forgotten");
        tx.commit().expect("commit");
        let problems = l.check_chain().expect("check").problems;
        problems
            .as_ref()
            .iter()
            .map(|p| match p {
                Problem::ForgottenDoesNotFit { misfit, .. } => misfit.clone(),
                other => panic!("only misfits: {other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let held = Event::Held { would: Action::Keep, reason: "no access".into() };
    let stored = Event::Quarantined {
        sha256: "ab".repeat(32),
        store_name: "objects/ab/x.jpg".into(),
        exposure_ms: None,
        recovered: false,
        tries: None,
    };
    let released = Event::Released {
        path: "/camera/IMG_1.jpg".into(),
        reason: Some("not case material".into()),
        officer: None,
        recovered: false,
        store_file_kept: false,
    };
    assert_eq!(misfits(std::slice::from_ref(&held), ForgetReason::DecidedPersonal), vec![]);
    assert!(matches!(
        misfits(&[held.clone(), stored.clone()], ForgetReason::DecidedPersonal).as_slice(),
        [Misfit::CaseMaterial { kind, .. }] if kind == "quarantined"
    ));
    assert!(matches!(misfits(&[stored], ForgetReason::Upgrade).as_slice(), [Misfit::CaseMaterial { .. }]));
    assert_eq!(misfits(std::slice::from_ref(&held), ForgetReason::CorrectionExpired), vec![Misfit::NotReleased]);
    // Released within the same second: no keep_corrections runs out that soon.
    assert!(matches!(misfits(&[held, released], ForgetReason::CorrectionExpired).as_slice(), [Misfit::TooSoon { .. }]));
}

/// The files beside a ledger, by name, with their sizes.
fn ledger_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .collect();
    v.sort();
    v
}

/// A store where no writer ran since the last checkpoint: the last connection removed the
/// write-ahead log and the wal-index. The reader reads it; the database file is not changed;
/// a write through its connection is refused by SQLite; its barrier and close write nothing.
#[test]
fn a_reader_reads_a_ledger_nobody_has_open_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(ledger_with_events(dir.path(), 3));
    let db = dir.path().join("ledger.sqlite");
    let names = |d: &Path| ledger_files(d).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(dir.path()), ["ledger.head", "ledger.sqlite", "privacy.key"], "checkpointed: no -wal, no -shm");
    let head = dir.path().join("ledger.head");
    let (db_before, head_before) = (std::fs::read(&db).expect("db"), std::fs::read(&head).expect("head"));
    let r = LedgerReader::open(&db).expect("reader");
    let report = r.check_chain().expect("chain");
    assert_eq!(report.events, 3);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let refused = r.conn().execute("DELETE FROM events", []);
    assert!(matches!(&refused, Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)), "{refused:?}");
    r.sync().expect("a reader's barrier has nothing to do");
    drop(r);
    assert_eq!(std::fs::read(&db).expect("db"), db_before, "the database file is not written");
    assert_eq!(std::fs::read(&head).expect("head"), head_before, "nor the head");
    // SQLite made its empty log and wal-index for the reader, with the database's mode.
    for (name, len) in ledger_files(dir.path()) {
        if name == "ledger.sqlite-wal" {
            assert_eq!(len, 0, "nothing logged");
        }
    }
    let l = Ledger::open(&db).expect("a writer opens it after the reader");
    assert!(l.check_chain().expect("chain").problems.is_empty());
}

/// Beside a live writer whose files are 0600 (the store's): the reader sees every commit, its
/// snapshot holds still while the writer commits, and it never waits for the write lock.
#[test]
fn a_reader_beside_a_writer_sees_commits_and_never_waits_for_its_lock() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = ledger_with_events(dir.path(), 2);
    for (name, _) in ledger_files(dir.path()) {
        let p = dir.path().join(name);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut r = LedgerReader::open(&dir.path().join("ledger.sqlite")).expect("reader");
    let count = |l: &Ledger| l.conn().query_row("SELECT count(*) FROM events", [], |x| x.get::<_, i64>(0));
    assert_eq!(count(&r).expect("count"), 2);
    // The writer holds SQLite's write lock (as across a commit); a read answers at once.
    let mut tx = w.write().expect("write lock");
    tx.record(None, &session_event(2)).expect("record");
    let t = std::time::Instant::now();
    assert_eq!(count(&r).expect("count while the write lock is held"), 2, "uncommitted rows are not seen");
    assert!(t.elapsed() < std::time::Duration::from_secs(1), "the read waited {:?}", t.elapsed());
    tx.commit().expect("commit");
    assert_eq!(count(&r).expect("count"), 3, "a commit is seen by the next read");
    // One snapshot: a commit made while it is open is not in it.
    let (before, after) = r
        .snapshot(|l| {
            let before = count(l).map_err(|e| LedgerError::Sqlite { path: l.path().into(), source: e })?;
            let mut tx = w.write()?;
            tx.record(None, &session_event(3))?;
            tx.commit()?;
            let after = count(l).map_err(|e| LedgerError::Sqlite { path: l.path().into(), source: e })?;
            Ok((before, after))
        })
        .expect("snapshot");
    assert_eq!((before, after), (3, 3));
    assert_eq!(count(&r).expect("count"), 4);
    assert!(r.check_chain().expect("chain").problems.is_empty());
}
