//! The tables, their versions, and the rows read from them.
//!
//! Stored enums ([`ItemState`], [`Direction`], [`ItemSource`]) go in and out of SQLite through
//! `ToSql`/`FromSql`: a value this program does not know is an error when read, never taken for
//! some default.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::events::ItemSource;

/// The schema version this program writes (`PRAGMA user_version`). Version 1 is the layout of
/// the first release, which left `user_version` at 0 and wrote `meta.schema = '1'`. Version 2
/// (issue 29) adds the minimal records of personal photos (`personal`, `personal_tally`),
/// prunable event rows (`events.v`, `events.data_sha256`, a nullable `data`), item numbers that
/// are never reused (`AUTOINCREMENT`) and a nullable `items.original_path`; `super::upgrade`
/// brings an older ledger to it.
pub const SCHEMA_VERSION: i64 = 2;

/// The tables of [`SCHEMA_VERSION`], as a new ledger is created.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    original_path BLOB,
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
    data TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    v INTEGER NOT NULL DEFAULT 1,
    data_sha256 TEXT
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
CREATE TABLE IF NOT EXISTS personal (
    key BLOB PRIMARY KEY,
    folder BLOB NOT NULL,
    state TEXT,
    source TEXT,
    day TEXT,
    since_ms INTEGER,
    span_ms INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS personal_tally (
    source TEXT PRIMARY KEY,
    decisions INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// What [`super::upgrade::migrate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migration {
    /// Already at [`SCHEMA_VERSION`].
    Current,
    /// A new ledger, created at [`SCHEMA_VERSION`].
    Created,
    /// Brought from `from` to [`SCHEMA_VERSION`].
    Upgraded { from: i64 },
}

/// A stored text that is not one of the values of its enum.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?} in the ledger")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// `FromSql` for a stored enum: its text, parsed, or an error naming the value.
fn enum_from_sql<T>(v: ValueRef<'_>, what: &'static str, parse: impl Fn(&str) -> Option<T>) -> FromSqlResult<T> {
    let s = v.as_str()?;
    parse(s).ok_or_else(|| FromSqlError::Other(Box::new(UnknownValue { what, value: s.to_string() })))
}

/// A path as stored: the raw bytes of the OS string (file names need not be UTF-8).
pub fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

pub(super) fn path_from_bytes(b: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b))
}

/// Life cycle of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    const ALL: [ItemState; 9] = [
        ItemState::Kept,
        ItemState::Moving,
        ItemState::Quarantined,
        ItemState::Releasing,
        ItemState::Released,
        ItemState::Aborted,
        ItemState::Purged,
        ItemState::OriginalKept,
        ItemState::Held,
    ];

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

    /// The state stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl ToSql for ItemState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ItemState {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        enum_from_sql(v, "item state", ItemState::parse)
    }
}

impl ToSql for ItemSource {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ItemSource {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        enum_from_sql(v, "decision source", ItemSource::parse)
    }
}

/// Which way a move goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Camera folder → store.
    In,
    /// Store → camera folder (a release).
    Out,
    /// Camera folder → its staging folder, before the file is judged (`src`: its original
    /// path, `dst`: its name in staging; `item_id` 0 until the item is recorded). The row stays
    /// while the file is in staging: it ends when the file goes into the store or back to its
    /// name, and recovery returns a file it finds still staged.
    Stash,
    /// Into the store by a copy that never touches its source (`fotovakt import` of a card's
    /// files without `--remove-source`): `src` is left as it is, whatever the ending.
    Copy,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Stash => "stash",
            Direction::Copy => "copy",
        }
    }

    /// The direction stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<Direction> {
        [Direction::In, Direction::Out, Direction::Stash, Direction::Copy].into_iter().find(|d| d.as_str() == s)
    }
}

impl ToSql for Direction {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Direction {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        enum_from_sql(v, "move direction", Direction::parse)
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
    pub source: ItemSource,
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

pub(super) const ITEM_COLUMNS: &str =
    "id, sha256, size, original_path, kind, capture_time, gps_lat, gps_lon, file_mtime_ns, \
     first_seen_ms, decided_at_ms, quarantined_at_ms, released_at_ms, state, action, source, rule, score, case_id, \
     officer, tags, store_name";

pub(super) fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let lat: Option<f64> = r.get(6)?;
    let lon: Option<f64> = r.get(7)?;
    let tags: String = r.get(20)?;
    Ok(Item {
        id: r.get(0)?,
        sha256: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        original_path: path_from_bytes(r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default()),
        kind: r.get(4)?,
        capture_time: r.get(5)?,
        gps: lat.zip(lon),
        file_mtime_ns: r.get(8)?,
        first_seen_ms: r.get(9)?,
        decided_at_ms: r.get(10)?,
        quarantined_at_ms: r.get(11)?,
        released_at_ms: r.get(12)?,
        state: r.get(13)?,
        action: r.get(14)?,
        source: r.get(15)?,
        rule: r.get(16)?,
        score: r.get::<_, Option<f64>>(17)?.map(|s| s as f32),
        case_id: r.get(18)?,
        officer: r.get(19)?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(20, rusqlite::types::Type::Text, Box::new(e)))?,
        store_name: r.get(21)?,
    })
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
    /// A stored [`ItemSource`] name; anything else is refused on insert.
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

pub(super) fn move_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MoveIntent> {
    Ok(MoveIntent {
        id: r.get(0)?,
        item_id: r.get(1)?,
        direction: r.get(2)?,
        src: path_from_bytes(r.get(3)?),
        dst: path_from_bytes(r.get(4)?),
        tmp: path_from_bytes(r.get(5)?),
        sha256: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
    })
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

pub(super) const SESSION_COLUMNS: &str = "id, case_id, officer, started_ms, until_ms, stopped_ms";

pub(super) fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        case_id: r.get(1)?,
        officer: r.get(2)?,
        started_ms: r.get(3)?,
        until_ms: r.get(4)?,
        stopped_ms: r.get(5)?,
    })
}

pub(super) fn f32_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

pub(super) fn blob_to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn unknown_stored_values_are_errors_not_defaults() {
        let c = Connection::open_in_memory().expect("db");
        let state: rusqlite::Result<ItemState> = c.query_row("SELECT 'exploded'", [], |r| r.get(0));
        assert!(state.is_err(), "{state:?}");
        let dir: rusqlite::Result<Direction> = c.query_row("SELECT 'sideways'", [], |r| r.get(0));
        assert!(dir.is_err(), "{dir:?}");
        let src: rusqlite::Result<ItemSource> = c.query_row("SELECT 'psychic'", [], |r| r.get(0));
        assert!(src.is_err(), "{src:?}");
        let ok: ItemState = c.query_row("SELECT 'copied_original_kept'", [], |r| r.get(0)).expect("known");
        assert_eq!(ok, ItemState::OriginalKept);
        let out: Direction = c.query_row("SELECT ?1", [Direction::Out], |r| r.get(0)).expect("round trip");
        assert_eq!(out, Direction::Out);
    }
}
