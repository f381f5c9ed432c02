//! The ledger opened read-only, for the commands that only look (`list`, `show`, `stats`,
//! `report`, `verify`, `serve-metrics`, `pending`, and `export`'s reads).
//!
//! A [`LedgerReader`] is a SQLite connection opened with `SQLITE_OPEN_READ_ONLY`. It gives every
//! query of [`Ledger`] (through `Deref`) and nothing that writes: no `&mut Ledger`, so no
//! [`super::Tx`]; SQLite itself refuses any statement that would change the file; and its
//! durability barrier, also at close, does nothing.
//!
//! WAL and read-only connections: a WAL reader must map the wal-index (`ledger.sqlite-shm`)
//! and find the write-ahead log. In the store's normal life the watcher holds the ledger open,
//! so both files exist, are the same user's (0600), and the reader opens them like any
//! connection: it reads the newest committed state, takes no write lock and never waits
//! for one (readers and the writer do not block each other in WAL mode). When no connection
//! is open (the last one to close checkpoints and removes both files), SQLite creates an
//! empty `-wal` and a `-shm` for the reader, with the database file's owner and mode, and
//! leaves them for the next connection; the database file itself is not touched. Only where
//! they cannot be created (a store on a read-only mount, say) and no `-wal` exists, so that
//! every committed row is in the database file and nothing can be writing it, is the file
//! opened `immutable`, without locks.
//!
//! A reader reads the device secret (`privacy.key`) if it is there and never makes one: only
//! `pending` needs it (to match a camera-folder file to its keyed record); every other view
//! reads a copy of the store made without the secret the same.
//!
//! A ledger of an older schema is read as it is, never upgraded (a read-only open cannot, and
//! an examiner's `verify` of an old store must not change it): schema 0 and 1 have the tables
//! of schema 2 less the columns and tables issue 29 added, so TEMP objects on this connection
//! alone stand in for them ([`V1_COMPAT`]: its events are all hash version 1 with their data,
//! and it has no keyed records, its personal photos being item rows still). If a writer
//! upgrades the file meanwhile, the next read sees the new version and drops them
//! ([`LedgerReader::current`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::schema::KEYED_SCHEMA_VERSION;
use super::{Ledger, LedgerError, Result, SCHEMA_VERSION};

/// A ledger opened read-only. See the module docs.
pub struct LedgerReader(Ledger, Compat);

/// Whether the TEMP objects of [`V1_COMPAT`] stand in for an older schema's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compat {
    None,
    V1,
}

/// What a schema 0 or 1 ledger lacks of schema 2, as TEMP objects of the reader's own
/// connection (TEMP names are found before the file's): its events as hash version 1 rows, and
/// empty keyed-record tables.
const V1_COMPAT: &str = "\
    CREATE TEMP VIEW events AS SELECT seq, at_ms, kind, item_id, data, prev_hash, hash, \
        1 AS v, NULL AS data_sha256 FROM main.events; \
    CREATE TEMP TABLE personal (key BLOB PRIMARY KEY, folder BLOB NOT NULL, state TEXT, source TEXT, \
        day TEXT, since_ms INTEGER, span_ms INTEGER) WITHOUT ROWID; \
    CREATE TEMP TABLE personal_tally (source TEXT PRIMARY KEY, decisions INTEGER NOT NULL) WITHOUT ROWID;";

const V1_COMPAT_DROP: &str =
    "DROP VIEW IF EXISTS temp.events; DROP TABLE IF EXISTS temp.personal; DROP TABLE IF EXISTS temp.personal_tally;";

/// Code that reads the writer's ledger or a reader alike (`pending`'s listing) takes either.
impl AsRef<Ledger> for Ledger {
    fn as_ref(&self) -> &Ledger {
        self
    }
}

impl AsRef<Ledger> for LedgerReader {
    fn as_ref(&self) -> &Ledger {
        &self.0
    }
}

impl std::ops::Deref for LedgerReader {
    type Target = Ledger;
    fn deref(&self) -> &Ledger {
        &self.0
    }
}

/// How long a read waits for a lock SQLite takes briefly (the wal-index being rebuilt by
/// the first connection after a crash); never behind a write transaction.
const BUSY: Duration = Duration::from_secs(10);

impl LedgerReader {
    /// Open the ledger at `path` read-only. It must exist; nothing is created or migrated.
    pub fn open(path: &Path) -> Result<LedgerReader> {
        let err = |source| LedgerError::Sqlite { path: path.to_path_buf(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(BUSY).map_err(err)?;
        let (conn, version) = match schema_version(&conn) {
            Ok(v) => (conn, v),
            Err(e) if cannot_open_wal(&e) && !wal_path(path).exists() => {
                drop(conn);
                let conn = Connection::open_with_flags(immutable_uri(path), flags).map_err(err)?;
                let v = schema_version(&conn).map_err(err)?;
                tracing::debug!(path = %path.display(), "ledger opened immutable: no write-ahead log, and none can be made here");
                (conn, v)
            }
            Err(e) => return Err(err(e)),
        };
        // Older layouts read as they are (see the module docs); a writer brings the file up
        // to date when it next opens it.
        if version > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema { path: path.to_path_buf(), version });
        }
        let compat = if version < KEYED_SCHEMA_VERSION {
            conn.execute_batch(V1_COMPAT).map_err(err)?;
            Compat::V1
        } else {
            Compat::None
        };
        let ledger = Ledger {
            conn,
            db_path: path.to_path_buf(),
            head_path: path.with_file_name("ledger.head"),
            secret: read_secret(path),
            head_written: std::sync::atomic::AtomicI64::new(0),
            head_lost_said: std::sync::atomic::AtomicBool::new(false),
            read_only: true,
        };
        Ok(LedgerReader(ledger, compat))
    }

    /// Read an older ledger as what it is now: once a writer has upgraded it, the stand-ins of
    /// [`V1_COMPAT`] go and the file's own tables are read. Free for a current ledger. Run
    /// before each read ([`crate::agent::StoreReader`] does), and inside [`Self::snapshot`].
    pub fn current(&mut self) -> Result<()> {
        if self.1 == Compat::V1 && schema_version(&self.0.conn).map_err(self.0.err())? >= KEYED_SCHEMA_VERSION {
            self.0.conn.execute_batch(V1_COMPAT_DROP).map_err(self.0.err())?;
            self.1 = Compat::None;
        }
        Ok(())
    }

    /// Run `f` in one read transaction: every query it makes sees the same committed state,
    /// whatever is committed meanwhile.
    pub fn snapshot<T>(&mut self, f: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        let tx = self.0.conn.unchecked_transaction().map_err(self.0.err())?;
        // The snapshot starts at its first read: the schema is fixed from here on.
        let upgraded =
            self.1 == Compat::V1 && schema_version(&self.0.conn).map_err(self.0.err())? >= KEYED_SCHEMA_VERSION;
        if upgraded {
            self.0.conn.execute_batch(V1_COMPAT_DROP).map_err(self.0.err())?;
            self.1 = Compat::None;
        }
        let out = f(&self.0);
        // Nothing was written: ending it either way only releases the snapshot.
        drop(tx);
        out
    }
}

/// The device secret beside the ledger, if there is one that can be read; never made here.
fn read_secret(db: &Path) -> Option<super::DeviceSecret> {
    super::DeviceSecret::load(&db.with_file_name(super::keyed::SECRET_FILE)).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the device secret cannot be read; no photo can be matched to its keyed record");
        None
    })
}

/// `PRAGMA user_version`: the first read, which is where SQLite opens the WAL and wal-index.
fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Did opening fail because the write-ahead log or wal-index could not be opened or made?
fn cannot_open_wal(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode;
    matches!(e.sqlite_error_code(), Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly))
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// `file:` URI of `path` with `immutable=1`, its bytes percent-encoded where a URI needs it.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_a_uri_would_read_otherwise() {
        assert_eq!(immutable_uri(Path::new("/a b/l?#%.sqlite")), "file:/a%20b/l%3F%23%25.sqlite?immutable=1");
    }
}
