//! The chain-of-custody ledger: SQLite (WAL) inside the store.
//!
//! * `items`: one row per file the agent decided is case material, or held for a decision
//!   that would quarantine it (hash, size, original path, EXIF time and GPS, first seen,
//!   quarantined at, decision and its source, case ID, tags, state); item numbers are never
//!   reused. A photo decided `keep` has no row here ([`privacy`]).
//! * `events`: append-only custody events ([`Event`], written only by [`Tx::record`]); each
//!   row's `hash` is SHA-256 over its own fields (version 2: over the SHA-256 of its data, so
//!   the data can be pruned) and the previous row's hash, so an edited,
//!   deleted, inserted or reordered row breaks the chain ([`chain`]). The newest durable
//!   `seq`/`hash` is also written to `ledger.head` beside the database ([`head`]), so cutting
//!   rows off the end is caught too.
//! * `moves`: the journal of moves in flight. A move's intent is committed here before any byte
//!   moves and deleted in the same transaction that records its outcome; rows found at start
//!   belong to a process that died mid-move and are completed or rolled back at recovery (the
//!   store's code reads this journal; the ledger knows nothing of the store).
//! * `sessions`, `corrections`: case sessions, and officers' corrections for on-device learning.
//! * `personal`, `personal_tally`: the minimal, keyed records of the officer's own photos
//!   ([`privacy`]); no items row, no custody event.
//!
//! Deleted rows are overwritten (`secure_delete`), and after personal data is removed the
//! write-ahead log is checkpointed and truncated ([`Ledger::scrub_log`]), so what was pruned is
//! gone from the files, not only from the tables.
//!
//! Modules: [`schema`] (tables, versions, rows, stored enums), `upgrade` (creating and
//! upgrading), [`events`] (the event types), [`tx`] (writes), [`chain`] (the hash chain and its
//! checker), [`head`] (the anchor file), [`keyed`] (the device secret and keyed hashes),
//! [`privacy`] (personal records, corrections and what is forgotten when), `log` (reads of the
//! custody log), [`clock`] (the boot-clock stamp in event data), `anchor` (the head's life:
//! event 0 of a new ledger, the barrier, re-anchoring).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

mod anchor;
pub mod chain;
pub mod clock;
pub mod events;
pub mod head;
pub mod keyed;
mod log;
pub mod privacy;
pub mod pruning;
pub mod reader;
pub mod schema;
pub mod tx;
mod upgrade;

pub use chain::{
    data_sha256, event_hash, event_hash_v2, ChainCheck, ChainReport, Coverage, Head, ItemHistory, Problem, Problems,
    RawEvent, GENESIS, HASH_V1, HASH_V2,
};
pub use events::{
    Action, Event, EventError, ForgetReason, HeadFound, ImportOrigin, ItemSource, KeyReason, PackageFormat, PurgeReason,
};
pub use keyed::{DeviceSecret, SecretError};
pub(crate) use log::raw_from_row;
pub use privacy::{PersonalCounts, PersonalRecord};
pub use reader::LedgerReader;
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
    /// The device secret beside the ledger could not be read or made.
    #[error("ledger: device secret {0}")]
    Secret(#[from] SecretError),
    /// The database was written by a newer program, in a layout this one does not know.
    #[error(
        "ledger {path}: schema version {version} is newer than this program's ({SCHEMA_VERSION}); update fotovakt"
    )]
    NewerSchema { path: PathBuf, version: i64 },
}

impl LedgerError {
    /// Did the disk under the ledger fail (full, an I/O error, read-only, cannot open, locked),
    /// rather than the ledger's content or the request? Such a failure may pass: the agent tries
    /// again later instead of giving up.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            LedgerError::Durability { .. } => true,
            LedgerError::Secret(e) => e.is_storage_failure(),
            LedgerError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    C::DiskFull
                        | C::SystemIoFailure
                        | C::CannotOpen
                        | C::ReadOnly
                        | C::DatabaseBusy
                        | C::DatabaseLocked
                        | C::FileLockingProtocolFailed
                )
            ),
            _ => false,
        }
    }
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

/// An event of the custody log whose contents were pruned on schedule (a `forgotten` event
/// lists it): what is left of it.
#[derive(Debug, Clone, Serialize)]
pub struct PrunedEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub hash: String,
}

/// The columns of a [`RawEvent`], in [`raw_from_row`]'s order.
pub(crate) const RAW_COLUMNS: &str = "seq, at_ms, kind, item_id, data, prev_hash, hash, v, data_sha256";

/// The ledger: a SQLite connection plus the head anchor file and the device secret.
pub struct Ledger {
    conn: Connection,
    db_path: PathBuf,
    head_path: PathBuf,
    /// The device secret of the keyed records: always there for a writer; a reader
    /// ([`LedgerReader`]) reads it if it is there and never makes one.
    secret: Option<DeviceSecret>,
    /// The `seq` this connection last wrote to the head file (a barrier with nothing new
    /// writes nothing).
    head_written: AtomicI64,
    /// This connection logged that the head is missing or unreadable.
    head_lost_said: AtomicBool,
    /// Opened with `SQLITE_OPEN_READ_ONLY` ([`LedgerReader`]): the barrier has nothing to make
    /// durable and writes nothing, at close either.
    read_only: bool,
}

impl Ledger {
    /// Open (creating if needed) the ledger database at `path`, bringing an older layout to
    /// [`SCHEMA_VERSION`], and the device secret beside it (made if there is none).
    pub fn open(path: &Path) -> Result<Ledger> {
        let err = |source| LedgerError::Sqlite { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        // NORMAL (in WAL mode): a commit survives a process crash at once, and power loss
        // after the next durability barrier ([`Ledger::sync`]), which the agent runs whenever
        // its queue drains. Recovery adopts a verified store file whose rows were lost.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // What is deleted is overwritten with zeros, not left in free space: pruned personal
        // data must be gone from the file.
        conn.pragma_update(None, "secure_delete", "ON").map_err(err)?;
        let head_path = path.with_file_name("ledger.head");
        let secret_path = path.with_file_name(keyed::SECRET_FILE);
        let tmp = head::temporary(&head_path);
        let secret = if tmp.exists() || !secret_path.exists() {
            // Under the write lock: no live writer's head temporary file is taken, and two
            // processes never make two secrets.
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            let secret = DeviceSecret::load_or_create(&secret_path);
            // A head's temporary file left by a process that died inside its barrier.
            let removed = std::fs::remove_file(&tmp);
            conn.execute_batch("COMMIT").map_err(err)?;
            if let Err(e) = removed.or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            {
                tracing::warn!(path = %tmp.display(), error = %e, "could not remove a stale head temporary file");
            }
            secret?.0
        } else {
            DeviceSecret::load_or_create(&secret_path)?.0
        };
        let migration = upgrade::migrate(&mut conn, path, &secret)?
            .map_err(|version| LedgerError::NewerSchema { path: path.to_path_buf(), version })?;
        let ledger = Ledger {
            conn,
            db_path: path.to_path_buf(),
            head_path,
            secret: Some(secret),
            head_written: AtomicI64::new(0),
            head_lost_said: AtomicBool::new(false),
            read_only: false,
        };
        if let Migration::Upgraded { .. } = migration {
            // An older program wrote without `secure_delete`: rows it updated or deleted may
            // linger in free space. Rebuilding the file once leaves only what is live.
            ledger.conn.execute_batch("VACUUM").map_err(ledger.err())?;
            ledger.scrub_log()?;
        }
        ledger.anchor_new()?;
        Ok(ledger)
    }

    /// Checkpoint the write-ahead log into the database and truncate it, so that data deleted
    /// (with `secure_delete`, overwritten in the database) leaves the log file too. Run after
    /// personal data is pruned. Waits (the busy timeout) for other connections' reads to end;
    /// returns `false` if one still held part of the log, which then stays until the next
    /// scrub.
    pub fn scrub_log(&self) -> Result<bool> {
        let (busy, _, _): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.err())?;
        Ok(busy == 0)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite { path: self.db_path.clone(), source }
    }

    /// Start a write transaction (IMMEDIATE: writers from several processes queue up here).
    pub fn write(&mut self) -> Result<Tx<'_>> {
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| SecretError::Missing { path: self.db_path.with_file_name(keyed::SECRET_FILE) })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| LedgerError::Sqlite { path: self.db_path.clone(), source })?;
        // Both clocks are read under the write lock: stamps follow the order of `seq`.
        Ok(Tx { tx, db_path: &self.db_path, last: None, now: now_ms(), clock: clock::now(), secret })
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

    /// When the newest decision was taken (the last intake), if there was one. A personal
    /// decision counts with the start of its coarse period (the day, by default), never its
    /// own time.
    pub fn last_decided_ms(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT max(t) FROM (SELECT max(decided_at_ms) AS t FROM items \
                 UNION ALL SELECT max(since_ms) FROM personal)",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())
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
    /// A personal decision counts by its keyed record, a forgotten one by its marker.
    pub fn is_settled(&self, path: &Path, size: u64, mtime_ns: i64) -> Result<bool> {
        self.is_settled_with(path, size, mtime_ns, false)
    }

    /// [`Ledger::is_settled`], counting `held` items as settled when `include_held` (the agent
    /// has no media-location access, so deciding again would change nothing).
    pub fn is_settled_with(&self, path: &Path, size: u64, mtime_ns: i64, include_held: bool) -> Result<bool> {
        let personal = self.personal(path, size, mtime_ns)?;
        if let Some(p) = personal {
            if p.state != Some(ItemState::Held) || include_held {
                return Ok(true);
            }
        }
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

    /// The newest item recorded for `path` with this mtime, if its move did not happen
    /// (`aborted`): the item a new try of the same file goes on with.
    pub fn aborted_item_for(&self, path: &Path, mtime_ns: i64) -> Result<Option<Item>> {
        let newest = self
            .conn
            .query_row(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM items WHERE original_path = ?1 AND file_mtime_ns = ?2 \
                     ORDER BY id DESC LIMIT 1"
                ),
                params![path_bytes(path), mtime_ns],
                item_from_row,
            )
            .optional()
            .map_err(self.err())?;
        Ok(newest.filter(|i| i.state == ItemState::Aborted))
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

    /// The owner (life token) of each open journal row that has one: a stash row's agent.
    pub fn move_owners(&self) -> Result<std::collections::HashMap<i64, String>> {
        let rows = self.rows("SELECT id, owner FROM moves WHERE owner IS NOT NULL", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        Ok(rows.into_iter().collect())
    }

    /// Is the journal row `move_id` still open?
    pub fn move_open(&self, move_id: i64) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM moves WHERE id = ?1", [move_id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// Has the case camera ever delivered a photo (an `imported` event naming the camera app)?
    /// A gallery copy of such a photo may then arrive in a camera folder.
    pub fn has_captures(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM events WHERE kind = 'imported' AND data LIKE '%\"camera_package\":%' LIMIT 1",
                [],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err())
    }

    /// The newest case-camera capture with these bytes: (item, its case). A camera app that
    /// also saved a gallery copy repeats exactly these bytes in a camera folder.
    pub fn capture_with_sha(&self, sha256: &str) -> Result<Option<(i64, Option<String>)>> {
        self.conn
            .query_row(
                "SELECT i.id, i.case_id FROM items i JOIN events e ON e.item_id = i.id \
                 WHERE i.sha256 = ?1 AND e.kind = 'imported' AND e.data LIKE '%\"camera_package\":%' \
                 ORDER BY i.id DESC LIMIT 1",
                [sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())
    }

    /// An item of `case` with these bytes that is (or is being put) in the store.
    pub fn in_case_with_sha(&self, case: &str, sha256: &str) -> Result<Option<Item>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM items WHERE case_id = ?1 AND sha256 = ?2 \
                     AND state IN ('quarantined', 'copied_original_kept') ORDER BY id DESC LIMIT 1"
                ),
                params![case, sha256],
                item_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// How many corrections are kept, and the newest one's number (cheap; the classifier
    /// reloads them only when this changes: one added, or expired).
    pub fn correction_count(&self) -> Result<(usize, i64)> {
        self.conn
            .query_row("SELECT count(*), coalesce(max(id), 0) FROM corrections", [], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get(1)?))
            })
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

    /// The newest event's `seq` and `hash`.
    pub fn newest_event(&self) -> Result<Option<(i64, String)>> {
        self.conn
            .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(self.err())
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
        let rows = self.rows(
            "SELECT seq, at_ms, data FROM events WHERE kind = ?1 AND data IS NOT NULL ORDER BY seq",
            [kind],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
        )?;
        rows.into_iter().map(|(seq, at, data)| Ok((seq, at, Event::from_stored(kind, &data)?))).collect()
    }

    /// Make every commit so far durable (fsync the write-ahead log), without advancing the
    /// head: what a move's intent needs before any byte moves. A power cut that kept the
    /// bytes moved but lost the intent would leave recovery nothing to finish the move from
    /// (the power-cut campaign's intent finding); one fsync per move closes that.
    pub fn sync_log(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
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
        // Inside a caller's read transaction ([`LedgerReader::snapshot`]) that one is the snapshot.
        let snapshot = match self.conn.is_autocommit() {
            true => Some(self.conn.unchecked_transaction().map_err(self.err())?),
            false => None,
        };
        {
            let mut stmt =
                self.conn.prepare(&format!("SELECT {RAW_COLUMNS} FROM events ORDER BY seq")).map_err(self.err())?;
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

#[cfg(test)]
mod tests;
