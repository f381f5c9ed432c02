//! The chain-of-custody ledger: SQLite (WAL) inside the store.
//!
//! * `items`: one row per file the agent decided on (hash, size, original path, EXIF time and
//!   GPS, first seen, quarantined at, decision and its source, case ID, tags, state).
//! * `events`: append-only; each row's `hash` is SHA-256 over its own fields and the previous
//!   row's hash, so an edited, deleted, inserted or reordered row breaks the chain. The newest
//!   `seq`/`hash` is also written to `ledger.head` beside the database, so cutting rows off the
//!   end is caught too.
//! * `moves`: the journal of moves in flight. A move's intent is committed here before any byte
//!   moves and deleted in the same transaction that records its outcome; rows found at start
//!   belong to a process that died mid-move and are completed or rolled back by
//!   [`crate::quarantine`].
//! * `sessions`, `corrections`: case sessions, and officers' corrections for on-device learning.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Hash that precedes the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    original_path BLOB NOT NULL,
    kind TEXT NOT NULL,
    capture_time TEXT,
    gps_lat REAL,
    gps_lon REAL,
    file_mtime_ns INTEGER,
    first_seen_ms INTEGER NOT NULL,
    decided_at_ms INTEGER NOT NULL,
    quarantined_at_ms INTEGER,
    released_at_ms INTEGER,
    state TEXT NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    score REAL,
    case_id TEXT,
    officer TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    store_name TEXT,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS items_sha ON items(sha256);
CREATE INDEX IF NOT EXISTS items_path ON items(original_path);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    item_id INTEGER,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_item ON events(item_id);
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL,
    direction TEXT NOT NULL,
    src BLOB NOT NULL,
    dst BLOB NOT NULL,
    tmp BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    started_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL,
    officer TEXT,
    started_ms INTEGER NOT NULL,
    until_ms INTEGER,
    stopped_ms INTEGER
);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    is_case INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
"#;

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("ledger: no item matches {0:?}")]
    NoSuchItem(String),
    #[error("ledger: {0:?} matches more than one item; give more of the hash or the item number")]
    Ambiguous(String),
    #[error("ledger {path}: {message}")]
    Head { path: PathBuf, message: String },
}

type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A path as stored: the raw bytes of the OS string (file names need not be UTF-8).
pub fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn path_from_bytes(b: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b))
}

/// Life cycle of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    /// Decided not case material; left where it was.
    Kept,
    /// Being moved into the store (a `moves` row exists).
    Moving,
    /// Verified in the store.
    Quarantined,
    /// Being moved back out (a `moves` row exists).
    Releasing,
    /// Put back where it came from by an officer.
    Released,
    /// A move that did not happen (file changed or vanished mid-way); the file stayed put and
    /// is decided again as a new item.
    Aborted,
    /// Its retention ran out and its store file was wiped and removed (`fotovakt purge`); the
    /// row and the custody log stay.
    Purged,
    /// Verified in the store, but the original could not be deleted (read-only mount; on a
    /// phone, all-files access missing or revoked): both copies exist. Final and audited;
    /// reconcile retries the delete and moves the item to `quarantined` when it succeeds.
    #[serde(rename = "copied_original_kept")]
    OriginalKept,
    /// Not moved because the bytes read may have been altered by the filesystem (Android
    /// redacts location on read without `ACCESS_MEDIA_LOCATION`; `media_location_access =
    /// false`). The original is untouched; the file is decided again once access is back.
    Held,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Kept => "kept",
            ItemState::Moving => "moving",
            ItemState::Quarantined => "quarantined",
            ItemState::Releasing => "releasing",
            ItemState::Released => "released",
            ItemState::Aborted => "aborted",
            ItemState::Purged => "purged",
            ItemState::OriginalKept => "copied_original_kept",
            ItemState::Held => "held",
        }
    }

    fn parse(s: &str) -> ItemState {
        match s {
            "kept" => ItemState::Kept,
            "moving" => ItemState::Moving,
            "quarantined" => ItemState::Quarantined,
            "releasing" => ItemState::Releasing,
            "released" => ItemState::Released,
            "purged" => ItemState::Purged,
            "copied_original_kept" => ItemState::OriginalKept,
            "held" => ItemState::Held,
            _ => ItemState::Aborted,
        }
    }
}

/// One row of `items`.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: i64,
    pub sha256: String,
    pub size: u64,
    #[serde(serialize_with = "serialize_path")]
    pub original_path: PathBuf,
    pub kind: String,
    pub capture_time: Option<String>,
    pub gps: Option<(f64, f64)>,
    #[serde(skip)]
    pub file_mtime_ns: Option<i64>,
    pub first_seen_ms: i64,
    pub decided_at_ms: i64,
    pub quarantined_at_ms: Option<i64>,
    pub released_at_ms: Option<i64>,
    pub state: ItemState,
    pub action: String,
    pub source: String,
    pub rule: String,
    pub score: Option<f32>,
    pub case_id: Option<String>,
    pub officer: Option<String>,
    pub tags: Vec<String>,
    pub store_name: Option<String>,
}

fn serialize_path<S: serde::Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

const ITEM_COLUMNS: &str = "id, sha256, size, original_path, kind, capture_time, gps_lat, gps_lon, file_mtime_ns, \
     first_seen_ms, decided_at_ms, quarantined_at_ms, released_at_ms, state, action, source, rule, score, case_id, \
     officer, tags, store_name";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let lat: Option<f64> = r.get(6)?;
    let lon: Option<f64> = r.get(7)?;
    let tags: String = r.get(20)?;
    Ok(Item {
        id: r.get(0)?,
        sha256: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        original_path: path_from_bytes(r.get(3)?),
        kind: r.get(4)?,
        capture_time: r.get(5)?,
        gps: lat.zip(lon),
        file_mtime_ns: r.get(8)?,
        first_seen_ms: r.get(9)?,
        decided_at_ms: r.get(10)?,
        quarantined_at_ms: r.get(11)?,
        released_at_ms: r.get(12)?,
        state: ItemState::parse(&r.get::<_, String>(13)?),
        action: r.get(14)?,
        source: r.get(15)?,
        rule: r.get(16)?,
        score: r.get::<_, Option<f64>>(17)?.map(|s| s as f32),
        case_id: r.get(18)?,
        officer: r.get(19)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        store_name: r.get(21)?,
    })
}

/// One event of the custody log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub data: serde_json::Value,
    pub hash: String,
}

/// One event row exactly as stored: every field [`event_hash`] covers, plus the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RawEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub item: Option<i64>,
    /// The event's JSON text, byte for byte as hashed.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A new item, written when the agent has hashed and decided a file.
#[derive(Debug, Clone)]
pub struct NewItem<'a> {
    pub sha256: &'a str,
    pub size: u64,
    pub original_path: &'a Path,
    pub kind: &'a str,
    pub capture_time: Option<String>,
    pub gps: Option<(f64, f64)>,
    pub file_mtime_ns: Option<i64>,
    pub first_seen_ms: i64,
    pub state: ItemState,
    pub action: &'a str,
    pub source: &'a str,
    pub rule: &'a str,
    pub score: Option<f32>,
    pub case_id: Option<&'a str>,
    pub officer: Option<&'a str>,
    pub tags: &'a [String],
    pub embedding: Option<&'a [f32]>,
}

/// A journaled move (into the store, or out of it on release).
#[derive(Debug, Clone, PartialEq)]
pub struct MoveIntent {
    pub id: i64,
    pub item_id: i64,
    /// `in` (camera → store) or `out` (store → camera, a release).
    pub direction: Direction,
    pub src: PathBuf,
    pub dst: PathBuf,
    /// Where a cross-filesystem copy is staged before it is verified and renamed to `dst`.
    pub tmp: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// Which way a move goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A case session: everything shot while it is open is material of its case.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Session {
    pub id: i64,
    pub case_id: String,
    pub officer: Option<String>,
    pub started_ms: i64,
    pub until_ms: Option<i64>,
    pub stopped_ms: Option<i64>,
}

impl Session {
    /// When the session ends (or ended): the earlier of its stop and its planned end.
    pub fn end_ms(&self) -> Option<i64> {
        match (self.until_ms, self.stopped_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Was the session open at `t`?
    pub fn covers(&self, t: i64) -> bool {
        t >= self.started_ms && self.end_ms().is_none_or(|e| t < e)
    }
}

/// The ledger: a SQLite connection plus the head anchor file.
pub struct Ledger {
    conn: Connection,
    db_path: PathBuf,
    head_path: PathBuf,
}

/// One write transaction; events appended through it are chained.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    db_path: &'a Path,
    head_path: &'a Path,
    last: Option<(i64, String)>,
    now: i64,
}

impl Ledger {
    /// Open (creating if needed) the ledger database at `path`.
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
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')", []).map_err(err)?;
        let head_path = path.with_file_name("ledger.head");
        Ok(Ledger { conn, db_path: path.to_path_buf(), head_path })
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
        Ok(Tx { tx, db_path: &self.db_path, head_path: &self.head_path, last: None, now: now_ms() })
    }

    /// Read one item by id.
    pub fn item(&self, id: i64) -> Result<Item> {
        self.conn
            .query_row(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"), [id], item_from_row)
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| LedgerError::NoSuchItem(id.to_string()))
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
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE substr(sha256, 1, ?2) = ?1 \
                 ORDER BY (state = 'quarantined') DESC, id DESC"
            ))
            .map_err(self.err())?;
        let items: Vec<Item> = stmt
            .query_map(params![lower, lower.len() as i64], item_from_row)
            .map_err(self.err())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.err())?;
        let distinct: std::collections::BTreeSet<&str> = items.iter().map(|i| i.sha256.as_str()).collect();
        match (items.first(), distinct.len()) {
            (None, _) => Err(LedgerError::NoSuchItem(key.into())),
            (Some(i), 1) => Ok(i.clone()),
            _ => Err(LedgerError::Ambiguous(key.into())),
        }
    }

    /// Items, newest first, optionally of one case.
    pub fn items(&self, case: Option<&str>) -> Result<Vec<Item>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE (?1 IS NULL OR case_id = ?1) ORDER BY id DESC"))
            .map_err(self.err())?;
        let rows = stmt.query_map([case], item_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Has the agent already decided this exact file (same path, size and mtime) and left it
    /// where it is (kept, released, or copied to the store with an undeletable original)?
    /// Reconcile skips such files. `held` items count as settled only while `include_held`
    /// (the agent has no media-location access, so deciding again would change nothing).
    pub fn is_settled(&self, path: &Path, size: u64, mtime_ns: i64) -> Result<bool> {
        self.is_settled_with(path, size, mtime_ns, false)
    }

    /// [`Ledger::is_settled`], counting `held` items as settled when `include_held`.
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, case_id, officer, started_ms, until_ms, stopped_ms FROM sessions \
                 WHERE started_ms <= ?2 AND (min(coalesce(until_ms, 9e18), coalesce(stopped_ms, 9e18)) > ?1) \
                 ORDER BY started_ms DESC",
            )
            .map_err(self.err())?;
        let rows = stmt.query_map(params![from, to], session_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// The session open now, if any.
    pub fn open_session(&self) -> Result<Option<Session>> {
        let now = now_ms();
        Ok(self.sessions_overlapping(now, now)?.into_iter().next())
    }

    /// Unfinished moves (left by a process that died mid-move).
    pub fn pending_moves(&self) -> Result<Vec<MoveIntent>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, item_id, direction, src, dst, tmp, sha256, size FROM moves ORDER BY id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(MoveIntent {
                    id: r.get(0)?,
                    item_id: r.get(1)?,
                    direction: if r.get::<_, String>(2)? == "out" { Direction::Out } else { Direction::In },
                    src: path_from_bytes(r.get(3)?),
                    dst: path_from_bytes(r.get(4)?),
                    tmp: path_from_bytes(r.get(5)?),
                    sha256: r.get(6)?,
                    size: r.get::<_, i64>(7)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
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
        let mut stmt =
            self.conn.prepare("SELECT embedding, is_case FROM corrections ORDER BY id").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((blob_to_f32(&r.get::<_, Vec<u8>>(0)?), r.get::<_, i64>(1)? != 0)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// The stored embedding of an item, if the classifier ran on it.
    pub fn embedding(&self, item_id: i64) -> Result<Option<Vec<f32>>> {
        self.conn
            .query_row("SELECT embedding FROM items WHERE id = ?1", [item_id], |r| r.get::<_, Option<Vec<u8>>>(0))
            .optional()
            .map(|o| o.flatten().map(|b| blob_to_f32(&b)))
            .map_err(self.err())
    }

    /// The custody log of one item: its events, oldest first.
    pub fn events_of(&self, item_id: i64) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at_ms, kind, data, hash FROM events WHERE item_id = ?1 ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([item_id], |r| {
                Ok(Event {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    data: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or(serde_json::Value::Null),
                    hash: r.get(4)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Every event of the given items, oldest first, exactly as stored (the fields its hash is
    /// computed over), for case packages.
    pub fn raw_events_of(&self, item_ids: &[i64]) -> Result<Vec<RawEvent>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at_ms, kind, item_id, data, prev_hash, hash FROM events WHERE item_id = ?1")
            .map_err(self.err())?;
        let mut out = Vec::new();
        for id in item_ids {
            let rows = stmt
                .query_map([id], |r| {
                    Ok(RawEvent {
                        seq: r.get(0)?,
                        at_ms: r.get(1)?,
                        kind: r.get(2)?,
                        item: r.get(3)?,
                        data: r.get(4)?,
                        prev_hash: r.get(5)?,
                        hash: r.get(6)?,
                    })
                })
                .map_err(self.err())?;
            for e in rows {
                out.push(e.map_err(self.err())?);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// For each item with at least one event of `kind`, the time of its newest such event.
    pub fn last_event_times(&self, kind: &str) -> Result<std::collections::HashMap<i64, i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT item_id, max(at_ms) FROM events WHERE kind = ?1 AND item_id IS NOT NULL GROUP BY item_id")
            .map_err(self.err())?;
        let rows = stmt.query_map([kind], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Durability barrier: fsync the write-ahead log so every commit so far survives power loss.
    pub fn sync(&self) -> Result<()> {
        let wal = self.db_path.with_extension("sqlite-wal");
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_all().map_err(|e| LedgerError::Head { path: wal, message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LedgerError::Head { path: wal, message: e.to_string() }),
        }
    }

    /// Store file names the ledger accounts for (any item that ever had one, and moves in flight).
    pub fn known_store_names(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt =
            self.conn.prepare("SELECT store_name FROM items WHERE store_name IS NOT NULL").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Direct read access for statistics and verification.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.db_path
    }

    /// Check the hash chain, the head anchor and that every item row agrees with its events.
    /// Returns the number of events checked and the problems found.
    pub fn verify_chain(&self) -> Result<(u64, Vec<String>)> {
        let mut problems = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at_ms, kind, item_id, data, prev_hash, hash FROM events ORDER BY seq")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1i64;
        let mut count = 0u64;
        let mut replay: std::collections::HashMap<i64, (String, String, Option<String>)> = Default::default();
        while let Some(r) = rows.next().map_err(self.err())? {
            let seq: i64 = r.get(0).map_err(self.err())?;
            let at: i64 = r.get(1).map_err(self.err())?;
            let kind: String = r.get(2).map_err(self.err())?;
            let item: Option<i64> = r.get(3).map_err(self.err())?;
            let data: String = r.get(4).map_err(self.err())?;
            let prev_hash: String = r.get(5).map_err(self.err())?;
            let hash: String = r.get(6).map_err(self.err())?;
            count += 1;
            if seq != expected_seq {
                problems.push(format!(
                    "event {seq}: expected sequence number {expected_seq} (a row was deleted or inserted)"
                ));
            }
            if prev_hash != prev {
                problems.push(format!(
                    "event {seq}: previous-hash link broken (a row before it was changed, deleted or reordered)"
                ));
            }
            if event_hash(seq, at, &kind, item, &data, &prev_hash) != hash {
                problems.push(format!("event {seq} ({kind}): contents do not match its hash (the row was edited)"));
            }
            if let (Some(id), Ok(v)) = (item, serde_json::from_str::<serde_json::Value>(&data)) {
                let entry = replay.entry(id).or_insert_with(|| (String::new(), String::new(), None));
                if let Some(sha) = v.get("sha256").and_then(|s| s.as_str()) {
                    entry.0 = sha.to_string();
                }
                if let Some(state) = v.get("state").and_then(|s| s.as_str()) {
                    entry.1 = state.to_string();
                }
                if let Some(name) = v.get("store_name").and_then(|s| s.as_str()) {
                    entry.2 = Some(name.to_string());
                }
            }
            prev = hash;
            expected_seq = seq + 1;
        }
        drop(rows);
        drop(stmt);
        match read_head(&self.head_path) {
            Ok(Some((seq, hash))) => {
                let found: Option<String> = self
                    .conn
                    .query_row("SELECT hash FROM events WHERE seq = ?1", [seq], |r| r.get(0))
                    .optional()
                    .map_err(self.err())?;
                match found {
                    None => problems
                        .push(format!("ledger.head names event {seq}, which is missing (rows were cut off the end)")),
                    Some(h) if h != hash => problems.push(format!("ledger.head: event {seq} has a different hash")),
                    Some(_) => {}
                }
            }
            Ok(None) => {}
            Err(message) => problems.push(format!("ledger.head: {message}")),
        }
        for item in self.items(None)? {
            match replay.get(&item.id) {
                None => problems.push(format!("item {}: has no events (row inserted outside the agent)", item.id)),
                Some((sha, state, store_name)) => {
                    if *sha != item.sha256 {
                        problems.push(format!("item {}: sha256 differs from the one recorded in its events", item.id));
                    }
                    if state != item.state.as_str() {
                        problems.push(format!(
                            "item {}: state {} but its events say {}",
                            item.id,
                            item.state.as_str(),
                            state
                        ));
                    }
                    if item.state == ItemState::Quarantined && store_name.as_deref() != item.store_name.as_deref() {
                        problems.push(format!("item {}: store file name differs from its events", item.id));
                    }
                }
            }
        }
        Ok((count, problems))
    }
}

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        case_id: r.get(1)?,
        officer: r.get(2)?,
        started_ms: r.get(3)?,
        until_ms: r.get(4)?,
        stopped_ms: r.get(5)?,
    })
}

/// The hash of one event row.
pub fn event_hash(seq: i64, at_ms: i64, kind: &str, item: Option<i64>, data: &str, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "fotovakt-event-v1\n{seq}\n{at_ms}\n{kind}\n{}\n",
        item.map(|i| i.to_string()).unwrap_or_default()
    ));
    h.update(data.as_bytes());
    h.update(b"\n");
    h.update(prev_hash.as_bytes());
    hex::encode(h.finalize())
}

fn read_head(path: &Path) -> std::result::Result<Option<(i64, String)>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let mut parts = s.split_whitespace();
            match (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                (Some(seq), Some(hash)) => Ok(Some((seq, hash.to_string()))),
                _ => Err("unreadable".into()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn f32_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn blob_to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl Tx<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite { path: self.db_path.to_path_buf(), source }
    }

    /// The transaction's timestamp (ms since epoch).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Append one chained event.
    pub fn append(&mut self, kind: &str, item: Option<i64>, data: serde_json::Value) -> Result<i64> {
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
        let data = data.to_string();
        let hash = event_hash(seq, self.now, kind, item, &data, &last_hash);
        self.tx
            .execute(
                "INSERT INTO events(seq, at_ms, kind, item_id, data, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![seq, self.now, kind, item, data, last_hash, hash],
            )
            .map_err(self.err())?;
        self.last = Some((seq, hash));
        Ok(seq)
    }

    /// Insert a decided item.
    pub fn insert_item(&mut self, n: &NewItem<'_>) -> Result<i64> {
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
                    n.state.as_str(),
                    n.action,
                    n.source,
                    n.rule,
                    n.score.map(f64::from),
                    n.case_id,
                    n.officer,
                    serde_json::to_string(n.tags).unwrap_or_else(|_| "[]".into()),
                    n.embedding.map(f32_to_blob),
                ],
            )
            .map_err(self.err())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Change an item's state (and the columns that go with it).
    pub fn set_state(&mut self, id: i64, state: ItemState, store_name: Option<&str>) -> Result<()> {
        let now = self.now;
        let sql = match state {
            ItemState::Quarantined | ItemState::OriginalKept => {
                // A release rolled back passes no name: the item keeps the store file it has.
                "UPDATE items SET state = ?2, store_name = coalesce(?3, store_name), \
                 quarantined_at_ms = coalesce(quarantined_at_ms, ?4) WHERE id = ?1"
            }
            ItemState::Released => "UPDATE items SET state = ?2, store_name = ?3, released_at_ms = ?4 WHERE id = ?1",
            _ => {
                self.tx
                    .execute(
                        "UPDATE items SET state = ?2, store_name = coalesce(?3, store_name) WHERE id = ?1",
                        params![id, state.as_str(), store_name],
                    )
                    .map_err(self.err())?;
                return Ok(());
            }
        };
        self.tx.execute(sql, params![id, state.as_str(), store_name, now]).map_err(self.err())?;
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
        source: &str,
        rule: &str,
        case_id: Option<&str>,
        officer: Option<&str>,
        tags: &[String],
    ) -> Result<()> {
        self.tx
            .execute(
                "UPDATE items SET state = ?2, action = ?3, source = ?4, rule = ?5, case_id = ?6, \
                 officer = coalesce(?7, officer), tags = ?8, decided_at_ms = ?9 WHERE id = ?1",
                params![
                    id,
                    state.as_str(),
                    action,
                    source,
                    rule,
                    case_id,
                    officer,
                    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()),
                    self.now
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Set an item's SHA-256 (a `held` item decided again on unaltered bytes; the caller
    /// appends an event carrying the new hash).
    pub fn set_sha256(&mut self, id: i64, sha256: &str) -> Result<()> {
        self.tx.execute("UPDATE items SET sha256 = ?2 WHERE id = ?1", params![id, sha256]).map_err(self.err())?;
        Ok(())
    }

    /// Record an officer's tag on an item: case ID, tag list, officer.
    pub fn tag_item(&mut self, id: i64, case: &str, officer: Option<&str>, tags: &[String]) -> Result<()> {
        self.tx
            .execute(
                "UPDATE items SET case_id = ?2, officer = coalesce(?3, officer), tags = ?4 WHERE id = ?1",
                params![id, case, officer, serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())],
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
                    m.direction.as_str(),
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
                .prepare(
                    "SELECT id, case_id, officer, started_ms, until_ms, stopped_ms FROM sessions \
                     WHERE stopped_ms IS NULL AND (until_ms IS NULL OR until_ms > ?1)",
                )
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

    /// Read an item inside the transaction.
    pub fn item(&self, id: i64) -> Result<Item> {
        self.tx
            .query_row(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"), [id], item_from_row)
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| LedgerError::NoSuchItem(id.to_string()))
    }

    /// Commit, then advance the head anchor.
    pub fn commit(self) -> Result<()> {
        let last = self.last.clone();
        let head_path = self.head_path.to_path_buf();
        let db_path = self.db_path.to_path_buf();
        self.tx.commit().map_err(|source| LedgerError::Sqlite { path: db_path.clone(), source })?;
        if let Some((seq, hash)) = last {
            write_head(&head_path, seq, &hash)
                .map_err(|e| LedgerError::Head { path: head_path.clone(), message: e.to_string() })?;
        }
        Ok(())
    }
}

fn write_head(path: &Path, seq: i64, hash: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("head.tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(format!("{seq} {hash}\n").as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
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

    fn ledger_with_events(dir: &Path, n: usize) -> Ledger {
        let mut l = Ledger::open(&dir.join("ledger.sqlite")).expect("open");
        for i in 0..n {
            let mut tx = l.write().expect("tx");
            tx.append("note", None, serde_json::json!({ "i": i })).expect("append");
            tx.commit().expect("commit");
        }
        l
    }

    #[test]
    fn intact_chain_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = ledger_with_events(dir.path(), 5);
        let (n, problems) = l.verify_chain().expect("verify");
        assert_eq!(n, 5);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn edits_deletions_reorders_and_truncation_are_detected() {
        type Tamper = fn(&Connection);
        let cases: [(&str, Tamper); 4] = [
            ("edited", |c| {
                c.execute("UPDATE events SET data = '{\"i\":99}' WHERE seq = 2", []).expect("edit");
            }),
            ("deleted", |c| {
                c.execute("DELETE FROM events WHERE seq = 3", []).expect("delete");
            }),
            ("reordered", |c| {
                c.execute_batch(
                    "UPDATE events SET seq = 100 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 3; \
                     UPDATE events SET seq = 3 WHERE seq = 100;",
                )
                .expect("swap");
            }),
            ("truncated", |c| {
                c.execute("DELETE FROM events WHERE seq = 5", []).expect("cut");
            }),
        ];
        for (what, tamper) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let l = ledger_with_events(dir.path(), 5);
            tamper(l.conn());
            let (_, problems) = l.verify_chain().expect("verify");
            assert!(!problems.is_empty(), "{what} not detected");
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
        let sha = new_item(&path, &tags).sha256.to_string();
        tx.append("decided", Some(id), serde_json::json!({ "sha256": sha, "state": "kept" })).expect("event");
        tx.commit().expect("commit");
        assert!(l.verify_chain().expect("verify").1.is_empty());
        assert_eq!(l.embedding(id).expect("embedding"), Some(vec![1.0, -2.5]));
        assert!(l.is_settled(&path, 3, 7).expect("settled"));
        assert_eq!(l.find_item("ab12cd").expect("by hash").id, id);
        assert_eq!(l.find_item(&format!("#{id}")).expect("by id").id, id);
        l.conn().execute("UPDATE items SET state = 'released' WHERE id = ?1", [id]).expect("tamper");
        let (_, problems) = l.verify_chain().expect("verify");
        assert!(problems.iter().any(|p| p.contains("state released")), "{problems:?}");
    }

    #[test]
    fn sessions_cover_their_window() {
        let s =
            Session { id: 1, case_id: "C".into(), officer: None, started_ms: 10, until_ms: Some(20), stopped_ms: None };
        assert!(s.covers(10) && s.covers(19) && !s.covers(20) && !s.covers(9));
        let stopped = Session { stopped_ms: Some(15), ..s.clone() };
        assert!(!stopped.covers(15));
        let open = Session { until_ms: None, ..s };
        assert!(open.covers(i64::MAX - 1));
    }
}
