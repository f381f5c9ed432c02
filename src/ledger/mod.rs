//! The chain-of-custody ledger: SQLite (WAL) inside the store.
//!
//! * `items`: one row per file the agent decided on (hash, size, original path, EXIF time and
//!   GPS, first seen, quarantined at, decision and its source, case ID, tags, state).
//! * `events`: append-only custody events ([`Event`], written only by [`Tx::record`]); each
//!   row's `hash` is SHA-256 over its own fields and the previous row's hash, so an edited,
//!   deleted, inserted or reordered row breaks the chain ([`chain`]). The newest durable
//!   `seq`/`hash` is also written to `ledger.head` beside the database ([`head`]), so cutting
//!   rows off the end is caught too.
//! * `moves`: the journal of moves in flight. A move's intent is committed here before any byte
//!   moves and deleted in the same transaction that records its outcome; rows found at start
//!   belong to a process that died mid-move and are completed or rolled back at recovery (the
//!   store's code reads this journal; the ledger knows nothing of the store).
//! * `sessions`, `corrections`: case sessions, and officers' corrections for on-device learning.
//!
//! Modules: [`schema`] (tables, versions, rows, stored enums), [`events`] (the event types),
//! [`tx`] (writes), [`chain`] (the hash chain and its checker), [`head`] (the anchor file).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

pub mod chain;
pub mod clock;
pub mod events;
pub mod head;
pub mod schema;
pub mod tx;

pub use chain::{
    event_hash, ChainCheck, ChainReport, Coverage, Head, ItemHistory, Problem, Problems, RawEvent, GENESIS,
};
pub use events::{Action, Event, EventError, HeadFound, ItemSource, KeyReason, PackageFormat, PurgeReason};
pub use schema::{path_bytes, Direction, Item, ItemState, Migration, MoveIntent, NewItem, Session, SCHEMA_VERSION};
pub use tx::Tx;

use schema::{blob_to_f32, item_from_row, move_from_row, session_from_row, ITEM_COLUMNS, SESSION_COLUMNS};

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite refused or failed an operation on the database at `path`.
    #[error("ledger {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// No item has this number or hash prefix.
    #[error("ledger: no item matches {0:?}")]
    NoSuchItem(String),
    /// A hash prefix that more than one item's hash starts with.
    #[error("ledger: {0:?} matches more than one item; give more of the hash or the item number")]
    Ambiguous(String),
    /// Making the ledger durable failed: fsyncing its WAL, or writing the head anchor.
    #[error("ledger {path}: {about}: {source}")]
    Durability {
        /// What was being done.
        about: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored event row that does not read as an [`Event`] (or an event refused on write).
    #[error("ledger: {0}")]
    Event(#[from] EventError),
    /// A value that is not one of its stored enum's (a decision source, say).
    #[error("ledger: unknown {what} {value:?}")]
    UnknownValue { what: &'static str, value: String },
    /// The database was written by a newer program, in a layout this one does not know.
    #[error(
        "ledger {path}: schema version {version} is newer than this program's ({SCHEMA_VERSION}); update fotovakt"
    )]
    NewerSchema { path: PathBuf, version: i64 },
}

type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One event of the custody log as read back: the typed event with its place in the chain.
///
/// Serialises as `{seq, at_ms, kind, data, hash}`, `data` being the stored JSON (what `show`
/// prints).
#[derive(Debug, Clone, Serialize)]
pub struct Logged {
    pub seq: i64,
    pub at_ms: i64,
    /// The stored kind ([`Event::kind`]).
    pub kind: &'static str,
    #[serde(skip)]
    pub event: Event,
    /// The stored JSON of the event, for display.
    pub data: serde_json::Value,
    pub hash: String,
}

/// What a durability barrier made durable: the newest event, and whether the head advanced to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub seq: i64,
    pub hash: String,
    pub advanced: bool,
}

/// The ledger: a SQLite connection plus the head anchor file.
pub struct Ledger {
    conn: Connection,
    db_path: PathBuf,
    head_path: PathBuf,
    /// The `seq` this connection last wrote to the head file (a barrier with nothing new
    /// writes nothing).
    head_written: AtomicI64,
    /// This connection logged that the head is missing or unreadable.
    head_lost_said: AtomicBool,
}

impl Ledger {
    /// Open (creating if needed) the ledger database at `path`, bringing an older layout to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Ledger> {
        let err = |source| LedgerError::Sqlite { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        // NORMAL (in WAL mode): a commit survives a process crash at once, and power loss
        // after the next durability barrier ([`Ledger::sync`]), which the agent runs whenever
        // its queue drains. Recovery adopts a verified store file whose rows were lost.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        if let Err(version) = schema::migrate(&conn).map_err(err)? {
            return Err(LedgerError::NewerSchema { path: path.to_path_buf(), version });
        }
        let head_path = path.with_file_name("ledger.head");
        // A head's temporary file left by a process that died inside its barrier: remove it
        // under the write lock, so no live writer's is taken.
        let tmp = head::temporary(&head_path);
        if tmp.exists() {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            let removed = std::fs::remove_file(&tmp);
            conn.execute_batch("COMMIT").map_err(err)?;
            if let Err(e) = removed.or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            {
                tracing::warn!(path = %tmp.display(), error = %e, "could not remove a stale head temporary file");
            }
        }
        let ledger = Ledger {
            conn,
            db_path: path.to_path_buf(),
            head_path,
            head_written: AtomicI64::new(0),
            head_lost_said: AtomicBool::new(false),
        };
        ledger.anchor_new()?;
        Ok(ledger)
    }

    /// A ledger with no events and no head gets a head naming event 0 (the genesis hash),
    /// durably, before any event can be recorded: from its first instant a store has a head,
    /// so a ledger with events and no head is never the normal state ([`Problem::HeadMissing`]).
    /// Under the write lock, so it never races another process's first events.
    fn anchor_new(&self) -> Result<()> {
        if !matches!(head::read(&self.head_path), Head::Absent) {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let empty = self
            .conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM events)", [], |r| r.get::<_, bool>(0))
            .map_err(self.err());
        let written = match empty {
            Ok(true) if matches!(head::read(&self.head_path), Head::Absent) => head::write(&self.head_path, 0, GENESIS)
                .map_err(|source| LedgerError::Durability {
                    about: "writing the head anchor of a new ledger",
                    path: self.head_path.clone(),
                    source,
                }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        self.conn.execute_batch(if written.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(self.err())?;
        written
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite { path: self.db_path.clone(), source }
    }

    /// Start a write transaction (IMMEDIATE: writers from several processes queue up here).
    pub fn write(&mut self) -> Result<Tx<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| LedgerError::Sqlite { path: self.db_path.clone(), source })?;
        // Both clocks are read under the write lock: stamps follow the order of `seq`.
        Ok(Tx { tx, db_path: &self.db_path, last: None, now: now_ms(), clock: clock::now() })
    }

    /// Rows of `sql` (one parameter list), each read by `f`.
    fn rows<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt.query_map(params, f).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Read one item by id.
    pub fn item(&self, id: i64) -> Result<Item> {
        self.conn
            .query_row(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"), [id], item_from_row)
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| LedgerError::NoSuchItem(id.to_string()))
    }

    /// The item whose store file is `name` (relative to the store), if any.
    pub fn item_by_store_name(&self, name: &str) -> Result<Option<Item>> {
        self.conn
            .query_row(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE store_name = ?1"), [name], item_from_row)
            .optional()
            .map_err(self.err())
    }

    /// When the newest decision was taken (the last intake), if there was one.
    pub fn last_decided_ms(&self) -> Result<Option<i64>> {
        self.conn.query_row("SELECT max(decided_at_ms) FROM items", [], |r| r.get(0)).map_err(self.err())
    }

    /// Find an item by number (`42`), by `#42`, or by a prefix of its SHA-256 (≥ 6 hex digits).
    /// Among several items with the same hash the newest that is still in the store wins.
    pub fn find_item(&self, key: &str) -> Result<Item> {
        let key = key.trim();
        let digits = key.trim_start_matches('#');
        if !digits.is_empty() && digits.len() < 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits.parse().map_err(|_| LedgerError::NoSuchItem(key.into())).and_then(|id| self.item(id));
        }
        let lower = key.to_ascii_lowercase();
        if lower.len() < 6 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LedgerError::NoSuchItem(key.into()));
        }
        let items = self.rows(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE substr(sha256, 1, ?2) = ?1 \
                 ORDER BY (state = 'quarantined') DESC, id DESC"
            ),
            params![lower, lower.len() as i64],
            item_from_row,
        )?;
        let distinct: std::collections::BTreeSet<&str> = items.iter().map(|i| i.sha256.as_str()).collect();
        match (items.first(), distinct.len()) {
            (None, _) => Err(LedgerError::NoSuchItem(key.into())),
            (Some(i), 1) => Ok(i.clone()),
            _ => Err(LedgerError::Ambiguous(key.into())),
        }
    }

    /// Items, newest first, optionally of one case.
    pub fn items(&self, case: Option<&str>) -> Result<Vec<Item>> {
        self.rows(
            &format!("SELECT {ITEM_COLUMNS} FROM items WHERE (?1 IS NULL OR case_id = ?1) ORDER BY id DESC"),
            [case],
            item_from_row,
        )
    }

    /// Items in `state`, newest first (recovery at every start asks for `purged` ones: a
    /// query on the state, not a walk of every item).
    pub fn items_in_state(&self, state: ItemState) -> Result<Vec<Item>> {
        self.rows(
            &format!("SELECT {ITEM_COLUMNS} FROM items WHERE state = ?1 ORDER BY id DESC"),
            [state],
            item_from_row,
        )
    }

    /// Has the agent already decided this exact file (same path, size and mtime) and left it
    /// where it is (kept, released, or copied to the store with an undeletable original)?
    /// Reconcile skips such files. `held` items do not count (see [`Ledger::is_settled_with`]).
    pub fn is_settled(&self, path: &Path, size: u64, mtime_ns: i64) -> Result<bool> {
        self.is_settled_with(path, size, mtime_ns, false)
    }

    /// [`Ledger::is_settled`], counting `held` items as settled when `include_held` (the agent
    /// has no media-location access, so deciding again would change nothing).
    pub fn is_settled_with(&self, path: &Path, size: u64, mtime_ns: i64, include_held: bool) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM items WHERE original_path = ?1 AND size = ?2 AND file_mtime_ns = ?3 \
                 AND (state IN ('kept', 'released', 'copied_original_kept') OR (?4 AND state = 'held')) LIMIT 1",
                params![path_bytes(path), size as i64, mtime_ns, include_held],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// The newest item recorded for `path` (optionally with this exact mtime).
    pub fn latest_item_for_path(&self, path: &Path, mtime_ns: Option<i64>) -> Result<Option<Item>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM items WHERE original_path = ?1 \
                     AND (?2 IS NULL OR file_mtime_ns = ?2) AND state != 'aborted' ORDER BY id DESC LIMIT 1"
                ),
                params![path_bytes(path), mtime_ns],
                item_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Was a file with this hash released by an officer (declared not case material)?
    pub fn was_released(&self, sha256: &str) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM items WHERE sha256 = ?1 AND state = 'released' LIMIT 1", [sha256], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// Sessions open at some instant in `[from, to]`, newest first.
    pub fn sessions_overlapping(&self, from: i64, to: i64) -> Result<Vec<Session>> {
        self.rows(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions \
                 WHERE started_ms <= ?2 AND (min(coalesce(until_ms, 9e18), coalesce(stopped_ms, 9e18)) > ?1) \
                 ORDER BY started_ms DESC"
            ),
            params![from, to],
            session_from_row,
        )
    }

    /// The session open now, if any.
    pub fn open_session(&self) -> Result<Option<Session>> {
        let now = now_ms();
        Ok(self.sessions_overlapping(now, now)?.into_iter().next())
    }

    /// Unfinished moves (left by a process that died mid-move).
    pub fn pending_moves(&self) -> Result<Vec<MoveIntent>> {
        self.rows(
            "SELECT id, item_id, direction, src, dst, tmp, sha256, size FROM moves ORDER BY id",
            [],
            move_from_row,
        )
    }

    /// How many corrections are kept (cheap; the classifier reloads them only when it changes).
    pub fn correction_count(&self) -> Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM corrections", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(self.err())
    }

    /// Officers' corrections (embedding, is case material), oldest first.
    pub fn corrections(&self) -> Result<Vec<(Vec<f32>, bool)>> {
        self.rows("SELECT embedding, is_case FROM corrections ORDER BY id", [], |r| {
            Ok((blob_to_f32(&r.get::<_, Vec<u8>>(0)?), r.get::<_, i64>(1)? != 0))
        })
    }

    /// The stored embedding of an item, if the classifier ran on it.
    pub fn embedding(&self, item_id: i64) -> Result<Option<Vec<f32>>> {
        self.conn
            .query_row("SELECT embedding FROM items WHERE id = ?1", [item_id], |r| r.get::<_, Option<Vec<u8>>>(0))
            .optional()
            .map(|o| o.flatten().map(|b| blob_to_f32(&b)))
            .map_err(self.err())
    }

    /// The custody log of one item: its events, oldest first, typed. A row that does not read
    /// as an [`Event`] is an error (`verify` names it).
    pub fn events_of(&self, item_id: i64) -> Result<Vec<Logged>> {
        let rows = self.rows(
            "SELECT seq, at_ms, kind, data, hash FROM events WHERE item_id = ?1 ORDER BY seq",
            [item_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?)),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, at_ms, kind, text, hash) in rows {
            let data: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| EventError::Malformed { kind: kind.clone(), message: e.to_string() })?;
            let event = Event::from_value(&kind, data.clone())?;
            out.push(Logged { seq, at_ms, kind: event.kind(), event, data, hash });
        }
        Ok(out)
    }

    /// The `intake` event of an item, if it has one: where and what the file was when the agent
    /// first hashed it.
    pub fn intake_of(&self, item_id: i64) -> Result<Option<Event>> {
        Ok(self.events_of(item_id)?.into_iter().map(|l| l.event).find(|e| matches!(e, Event::Intake { .. })))
    }

    /// Every event of the given items, oldest first, exactly as stored (the fields its hash is
    /// computed over), for case packages.
    pub fn raw_events_of(&self, item_ids: &[i64]) -> Result<Vec<RawEvent>> {
        let mut out = Vec::new();
        for id in item_ids {
            out.extend(self.rows(
                "SELECT seq, at_ms, kind, item_id, data, prev_hash, hash FROM events WHERE item_id = ?1",
                [id],
                raw_from_row,
            )?);
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// For each item with at least one event of `kind`, the time of its newest such event.
    pub fn last_event_times(&self, kind: &str) -> Result<HashMap<i64, i64>> {
        Ok(self
            .rows(
                "SELECT item_id, max(at_ms) FROM events WHERE kind = ?1 AND item_id IS NOT NULL GROUP BY item_id",
                [kind],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?
            .into_iter()
            .collect())
    }

    /// For each item, when it was last exported and last acknowledged (`export` and `ack`
    /// events), for retention.
    pub fn handoff_times(&self) -> Result<(HashMap<i64, i64>, HashMap<i64, i64>)> {
        Ok((self.last_event_times(events::kinds::EXPORT)?, self.last_event_times(events::kinds::ACK)?))
    }

    /// Is a rejection of this file version (`path`, `key`) recorded already? Compares the
    /// typed fields, not the JSON text, so a changed reason or key order is still the same file.
    pub fn rejection_recorded(&self, path: &str, key: i64) -> Result<bool> {
        let rows = self.rows(
            "SELECT data FROM events WHERE kind = ?1 AND item_id IS NULL AND json_extract(data, '$.key') = ?2",
            params![events::kinds::REJECTED, key],
            |r| r.get::<_, String>(0),
        )?;
        for text in rows {
            if let Event::Rejected { path: p, key: k, .. } = Event::from_stored(events::kinds::REJECTED, &text)? {
                if p == path && k == key {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// How many events of `kind` there are (statistics).
    pub fn count_events(&self, kind: &str) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// The newest event's `seq` and `hash`.
    pub fn newest_event(&self) -> Result<Option<(i64, String)>> {
        self.conn
            .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(self.err())
    }

    /// Durability barrier: fsync the write-ahead log so every commit so far survives power
    /// loss, then advance `ledger.head` to the newest event (written, fsynced, renamed, its
    /// folder fsynced).
    ///
    /// The head is advanced here and not at every commit: a head written at commit could reach
    /// the disk before the WAL does and, after a power cut, name rows that are gone (a false
    /// tamper alarm); making it safe per commit would cost an fsync of the WAL and two more per
    /// commit. Here the newest row is read *before* the WAL is synced, so the head never names
    /// a row that is not durable; it lags commits made since the last barrier, which are the
    /// rows a power cut may take anyway. A barrier with no new events writes no head. The cost
    /// is two fsyncs per barrier (the head file, its folder): measured on ext4 in a VM, a
    /// barrier after a 3-event commit took 10.4 ms against 4.0 ms for the WAL fsync alone.
    /// Without the folder fsync a cut could only bring back an older head (still safe); with
    /// it, the head a barrier wrote survives the cut too, so rows cut off later are caught.
    ///
    /// A head that is missing or unreadable is left so: writing a new one would hide that rows
    /// may have been cut off with it. `verify` reports it until an officer anchors the ledger
    /// again ([`Ledger::reanchor`]).
    ///
    /// Returns the newest durable event and whether this barrier advanced the head to it
    /// (`None` while the ledger has no events).
    pub fn sync(&self) -> Result<Option<Synced>> {
        let newest = self.newest_event()?;
        self.sync_log()?;
        let durability = |about, path: &Path| {
            let path = path.to_path_buf();
            move |source| LedgerError::Durability { about, path, source }
        };
        let Some((seq, hash)) = newest else { return Ok(None) };
        if seq <= self.head_written.load(Ordering::Relaxed) {
            return Ok(Some(Synced { seq, hash, advanced: false }));
        }
        // The watcher and an officer's command share the ledger and may reach their barriers
        // at once: SQLite's write lock is held while the head is compared and replaced, so two
        // processes never interleave on the head's temporary file (an empty head renamed into
        // place would read as truncation) and one never moves the head back.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let advanced = self.advance_head(seq, &hash).map_err(durability("writing the head anchor", &self.head_path));
        let end = if advanced.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(self.err())?;
        Ok(Some(Synced { seq, hash, advanced: advanced? }))
    }

    /// Write the head `seq hash` unless the file already names `seq` or later (another
    /// process advanced it meanwhile), or is missing or unreadable (left for `verify` to
    /// report). Runs under the write lock ([`Ledger::sync`]). `true` when it was written.
    fn advance_head(&self, seq: i64, hash: &str) -> std::io::Result<bool> {
        match head::read(&self.head_path) {
            Head::At { seq: on_disk, .. } if on_disk >= seq => {
                self.head_written.store(on_disk, Ordering::Relaxed);
                return Ok(false);
            }
            Head::At { .. } => {}
            found @ (Head::Absent | Head::Unreadable(_)) => {
                // Once per connection: every barrier would say the same.
                if !self.head_lost_said.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        head = %self.head_path.display(), ?found, newest = seq,
                        "the ledger's head anchor is missing or unreadable; not writing a new one (rows may have \
                         been cut off with it). `fotovakt verify` reports it; `fotovakt anchor --reason` records why"
                    );
                }
                return Ok(false);
            }
        }
        head::write(&self.head_path, seq, hash)?;
        self.head_written.store(seq, Ordering::Relaxed);
        Ok(true)
    }

    /// Run `f` under the ledger's write lock (`BEGIN IMMEDIATE` … `COMMIT`): files beside the
    /// ledger that every process may write (the checkpoint, the device key) are written one
    /// process at a time.
    pub fn locked<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let out = f();
        self.conn.execute_batch("COMMIT").map_err(self.err())?;
        Ok(out)
    }

    /// What the head file says now.
    pub fn head(&self) -> Head {
        head::read(&self.head_path)
    }

    /// Anchor the ledger again after an officer recorded why its head was missing or
    /// unreadable (the `head_anchored` event, already committed): fsync the WAL and write the
    /// head at the newest event, whatever the file holds. Under the write lock.
    pub fn reanchor(&self) -> Result<Option<(i64, String)>> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.err())?;
        let done = (|| {
            let newest = self.newest_event()?;
            self.sync_log()?;
            if let Some((seq, hash)) = &newest {
                head::write(&self.head_path, *seq, hash).map_err(|source| LedgerError::Durability {
                    about: "writing the head anchor",
                    path: self.head_path.clone(),
                    source,
                })?;
                self.head_written.store(*seq, Ordering::Relaxed);
            }
            Ok(newest)
        })();
        self.conn.execute_batch(if done.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(self.err())?;
        done
    }

    /// The hash of event `seq`, if the ledger has it.
    pub fn hash_of(&self, seq: i64) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT hash FROM events WHERE seq = ?1", [seq], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Every event of `kind`, oldest first, typed (`device_key`, `head_anchored`).
    pub fn events_of_kind(&self, kind: &str) -> Result<Vec<(i64, i64, Event)>> {
        let rows = self.rows("SELECT seq, at_ms, data FROM events WHERE kind = ?1 ORDER BY seq", [kind], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.into_iter().map(|(seq, at, data)| Ok((seq, at, Event::from_stored(kind, &data)?))).collect()
    }

    /// Make every commit so far durable (fsync the write-ahead log), without advancing the
    /// head: what a move's intent needs before any byte moves. A power cut that kept the
    /// bytes moved but lost the intent would leave recovery nothing to finish the move from
    /// (the power-cut campaign's intent finding); one fsync per move closes that.
    pub fn sync_log(&self) -> Result<()> {
        let mut wal = self.db_path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let durability = |about| {
            let path = wal.clone();
            move |source| LedgerError::Durability { about, path, source }
        };
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_all().map_err(durability("fsync of the write-ahead log")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(durability("opening the write-ahead log")(e)),
        }
    }

    /// Store file names the ledger accounts for (any item that ever had one).
    pub fn known_store_names(&self) -> Result<HashSet<String>> {
        Ok(self
            .rows("SELECT store_name FROM items WHERE store_name IS NOT NULL", [], |r| r.get::<_, String>(0))?
            .into_iter()
            .collect())
    }

    /// Direct read access for statistics and verification.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.db_path
    }

    /// Path of the head anchor file.
    pub fn head_path(&self) -> &Path {
        &self.head_path
    }

    /// Check the hash chain, the head anchor and that every item row agrees with its events
    /// ([`ChainCheck`] over the whole ledger, in one read snapshot).
    pub fn check_chain(&self) -> Result<ChainReport> {
        // The head first: a row committed after this read is merely newer than the head.
        let mut check = ChainCheck::new(Coverage::Ledger, head::read(&self.head_path));
        let snapshot = self.conn.unchecked_transaction().map_err(self.err())?;
        {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, at_ms, kind, item_id, data, prev_hash, hash FROM events ORDER BY seq")
                .map_err(self.err())?;
            let mut rows = stmt.query([]).map_err(self.err())?;
            while let Some(r) = rows.next().map_err(self.err())? {
                check.push(&raw_from_row(r).map_err(self.err())?);
            }
        }
        let items = self.rows(&format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY id"), [], |r| {
            Ok((r.get::<_, i64>(0)?, item_from_row(r)))
        })?;
        drop(snapshot);
        for (id, item) in items {
            match item {
                Ok(item) => check.check_item(&item),
                Err(e) => check.report(Problem::UnreadableItem { item: id, reason: e.to_string() }),
            }
        }
        Ok(check.finish())
    }
}

impl Drop for Ledger {
    /// A last durability barrier, so a ledger dropped without one (the bridge, a test) still
    /// leaves its rows durable and its head current. Errors are for the next barrier to meet.
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "ledger: durability barrier at close failed");
        }
    }
}

fn raw_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        item: r.get(3)?,
        data: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}

#[cfg(test)]
mod tests;
