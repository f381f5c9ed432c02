//! Write transactions: the one place rows are written, and [`Tx::record`], the one writer of
//! custody events.

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};

use super::chain::{data_sha256, event_hash_v2, GENESIS, HASH_V2};
use super::events::{Event, ItemSource};
use super::keyed::DeviceSecret;
use super::schema::{
    f32_to_blob, path_bytes, session_from_row, ItemState, MoveIntent, NewItem, Session, SESSION_COLUMNS,
};
use super::{LedgerError, Result};

/// One write transaction; events recorded through it are chained.
pub struct Tx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) db_path: &'a Path,
    /// (`seq`, `hash`) of the newest event, once this transaction has read or written it.
    pub(super) last: Option<(i64, String)>,
    pub(super) now: i64,
    /// The monotonic stamp taken with `now` (under the write lock, so stamps follow `seq`).
    pub(super) clock: Option<super::clock::Stamp>,
    /// The device secret, for the keyed records of personal photos.
    pub(super) secret: &'a DeviceSecret,
}

/// A stored source name, or the error that refuses it.
fn source(s: &str) -> Result<ItemSource> {
    ItemSource::parse(s).ok_or_else(|| LedgerError::UnknownValue { what: "decision source", value: s.to_string() })
}

fn tags_text(tags: &[String]) -> String {
    serde_json::to_string(tags).expect("a list of strings always serialises")
}

impl Tx<'_> {
    pub(super) fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite { path: self.db_path.to_path_buf(), source }
    }

    /// The transaction's timestamp (ms since epoch).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Record one custody event, chained to the one before it; returns its sequence number.
    /// The one writer of the `events` table. Rows are written with hash version 2: the hash
    /// covers the SHA-256 of `data`, so `data` can be pruned later and the chain still checks.
    /// The transaction's monotonic stamp goes into the event's data (under `clock`), so the
    /// hash covers it while the data is there (and it goes with the data when pruned).
    pub fn record(&mut self, item: Option<i64>, event: &Event) -> Result<i64> {
        let mut data = event.data();
        if let (Some(stamp), Some(map)) = (&self.clock, data.as_object_mut()) {
            map.insert(super::clock::KEY.into(), serde_json::to_value(stamp).expect("a stamp is plain data"));
        }
        self.append_row(event.kind(), item, &data.to_string())
    }

    /// The newest event of `kind` (no item), read inside this transaction.
    pub fn newest_of_kind(&self, kind: &str) -> Result<Option<Event>> {
        let row: Option<String> = self
            .tx
            .query_row(
                "SELECT data FROM events WHERE kind = ?1 AND data IS NOT NULL ORDER BY seq DESC LIMIT 1",
                [kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(row.map(|data| Event::from_stored(kind, &data)).transpose()?)
    }

    /// Does the ledger hold any event yet?
    pub fn has_events(&self) -> Result<bool> {
        self.tx.query_row("SELECT EXISTS (SELECT 1 FROM events)", [], |r| r.get(0)).map_err(self.err())
    }

    fn append_row(&mut self, kind: &str, item: Option<i64>, data: &str) -> Result<i64> {
        let (last_seq, last_hash) = match self.last.take() {
            Some(l) => l,
            None => self
                .tx
                .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(self.err())?
                .unwrap_or((0, GENESIS.to_string())),
        };
        let seq = last_seq + 1;
        let covered = data_sha256(data);
        let hash = event_hash_v2(seq, self.now, kind, item, &covered, &last_hash);
        self.tx
            .execute(
                "INSERT INTO events(seq, at_ms, kind, item_id, data, prev_hash, hash, v, data_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![seq, self.now, kind, item, data, last_hash, hash, HASH_V2, covered],
            )
            .map_err(self.err())?;
        self.last = Some((seq, hash));
        Ok(seq)
    }

    /// Insert a decided item.
    pub fn insert_item(&mut self, n: &NewItem<'_>) -> Result<i64> {
        let src = source(n.source)?;
        self.tx
            .execute(
                "INSERT INTO items(sha256, size, original_path, kind, capture_time, gps_lat, gps_lon, file_mtime_ns, \
                 first_seen_ms, decided_at_ms, state, action, source, rule, score, case_id, officer, tags, embedding) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                params![
                    n.sha256,
                    n.size as i64,
                    path_bytes(n.original_path),
                    n.kind,
                    n.capture_time,
                    n.gps.map(|g| g.0),
                    n.gps.map(|g| g.1),
                    n.file_mtime_ns,
                    n.first_seen_ms,
                    self.now,
                    n.state,
                    n.action,
                    src,
                    n.rule,
                    n.score.map(f64::from),
                    n.case_id,
                    n.officer,
                    tags_text(n.tags),
                    n.embedding.map(f32_to_blob),
                ],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Change an item's state (and the columns that go with it).
    pub fn set_state(&mut self, id: i64, state: ItemState, store_name: Option<&str>) -> Result<()> {
        let done = match state {
            // A release rolled back passes no name: the item keeps the store file it has.
            ItemState::Quarantined | ItemState::OriginalKept => self.tx.execute(
                "UPDATE items SET state = ?2, store_name = coalesce(?3, store_name), \
                 quarantined_at_ms = coalesce(quarantined_at_ms, ?4) WHERE id = ?1",
                params![id, state, store_name, self.now],
            ),
            ItemState::Released => self.tx.execute(
                "UPDATE items SET state = ?2, store_name = ?3, released_at_ms = ?4 WHERE id = ?1",
                params![id, state, store_name, self.now],
            ),
            _ => self.tx.execute(
                "UPDATE items SET state = ?2, store_name = coalesce(?3, store_name) WHERE id = ?1",
                params![id, state, store_name],
            ),
        };
        done.map_err(self.err())?;
        Ok(())
    }

    /// Decide an item again (an officer tagged a photo the agent had kept): new state, action,
    /// source, rule, case and tags; first-seen and the intake facts stay.
    #[allow(clippy::too_many_arguments)]
    pub fn redecide_item(
        &mut self,
        id: i64,
        state: ItemState,
        action: &str,
        source_name: &str,
        rule: &str,
        case_id: Option<&str>,
        officer: Option<&str>,
        tags: &[String],
    ) -> Result<()> {
        let src = source(source_name)?;
        self.tx
            .execute(
                "UPDATE items SET state = ?2, action = ?3, source = ?4, rule = ?5, case_id = ?6, \
                 officer = coalesce(?7, officer), tags = ?8, decided_at_ms = ?9 WHERE id = ?1",
                params![id, state, action, src, rule, case_id, officer, tags_text(tags), self.now],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Set an item's SHA-256 (a `held` item decided again on unaltered bytes; the caller
    /// records a `rehashed` event carrying the new hash).
    pub fn set_sha256(&mut self, id: i64, sha256: &str) -> Result<()> {
        self.tx.execute("UPDATE items SET sha256 = ?2 WHERE id = ?1", params![id, sha256]).map_err(self.err())?;
        Ok(())
    }

    /// Record an officer's tag on an item: case ID, tag list, officer.
    pub fn tag_item(&mut self, id: i64, case: &str, officer: Option<&str>, tags: &[String]) -> Result<()> {
        self.tx
            .execute(
                "UPDATE items SET case_id = ?2, officer = coalesce(?3, officer), tags = ?4 WHERE id = ?1",
                params![id, case, officer, tags_text(tags)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Journal a move before any byte moves.
    pub fn journal_move(&mut self, m: &MoveIntent) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO moves(item_id, direction, src, dst, tmp, sha256, size, started_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    m.item_id,
                    m.direction,
                    path_bytes(&m.src),
                    path_bytes(&m.dst),
                    path_bytes(&m.tmp),
                    m.sha256,
                    m.size as i64,
                    self.now
                ],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Journal a stash (a [`super::Direction::Stash`] intent) owned by the agent of life token
    /// `owner`: recovery leaves the row alone while that agent lives.
    pub fn journal_stash(&mut self, m: &MoveIntent, owner: &str) -> Result<i64> {
        let row = self.journal_move(m)?;
        self.tx.execute("UPDATE moves SET owner = ?2 WHERE id = ?1", params![row, owner]).map_err(self.err())?;
        Ok(row)
    }

    /// The item a stash row's file became, once it is recorded (and its hash).
    pub fn link_stash(&mut self, move_id: i64, item_id: i64, sha256: &str) -> Result<()> {
        self.tx
            .execute("UPDATE moves SET item_id = ?2, sha256 = ?3 WHERE id = ?1", params![move_id, item_id, sha256])
            .map_err(self.err())?;
        Ok(())
    }

    /// Where a kept item's file is now, when it came back from staging under another name
    /// (its own was taken meanwhile). Its `intake` event keeps the name it had.
    pub fn set_original_path(&mut self, id: i64, path: &std::path::Path) -> Result<()> {
        self.tx
            .execute("UPDATE items SET original_path = ?2 WHERE id = ?1", params![id, path_bytes(path)])
            .map_err(self.err())?;
        Ok(())
    }

    /// Remove a finished (or rolled back) move from the journal.
    pub fn finish_move(&mut self, move_id: i64) -> Result<()> {
        self.tx.execute("DELETE FROM moves WHERE id = ?1", [move_id]).map_err(self.err())?;
        Ok(())
    }

    /// Open a case session.
    pub fn start_session(&mut self, case: &str, officer: Option<&str>, until_ms: Option<i64>) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO sessions(case_id, officer, started_ms, until_ms) VALUES (?1, ?2, ?3, ?4)",
                params![case, officer, self.now, until_ms],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Close every open session; returns the closed ones.
    pub fn stop_sessions(&mut self) -> Result<Vec<Session>> {
        let now = self.now;
        let open: Vec<Session> = {
            let mut stmt = self
                .tx
                .prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions \
                     WHERE stopped_ms IS NULL AND (until_ms IS NULL OR until_ms > ?1)"
                ))
                .map_err(self.err())?;
            let rows = stmt.query_map([now], session_from_row).map_err(self.err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(self.err())?
        };
        for s in &open {
            self.tx
                .execute("UPDATE sessions SET stopped_ms = ?2 WHERE id = ?1", params![s.id, now])
                .map_err(self.err())?;
        }
        Ok(open)
    }

    /// Keep an officer's correction for on-device learning.
    pub fn add_correction(&mut self, item_id: i64, is_case: bool, embedding: &[f32]) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO corrections(item_id, at_ms, is_case, embedding) VALUES (?1, ?2, ?3, ?4)",
                params![item_id, self.now, is_case as i64, f32_to_blob(embedding)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Commit. The rows survive a process crash at once and power loss after the next
    /// durability barrier ([`super::Ledger::sync`]), which also advances the head anchor.
    pub fn commit(self) -> Result<()> {
        let db_path = self.db_path.to_path_buf();
        self.tx.commit().map_err(|source| LedgerError::Sqlite { path: db_path, source })
    }
}
