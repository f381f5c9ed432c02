//! The store opened to look, never to change: [`StoreReader`].
//!
//! `list`, `show`, `stats`, `report`, `verify`, `serve-metrics`, `pending` and `export`'s reads
//! use it. Opening one creates nothing in the store, runs no recovery and takes no lock; its ledger
//! connection is read-only ([`LedgerReader`]), so no method of it can write, and SQLite refuses
//! a write even from a bug. A move in progress holds the store's move lock and the writer's
//! ledger mutex for as long as its copy takes; a reader needs neither, and WAL lets it read
//! while another process writes, so it never waits behind a move. What it reads is what
//! was committed: a file being moved is an item in state `moving` with its journal row.
//!
//! The [`Agent`](super::Agent) holds one too (and derefs to it), so its own views (the
//! Android bridge's list and statistics) read on their own connection and do not wait for
//! the watcher's move either.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::config::Config;
use crate::ledger::LedgerReader;
use crate::quarantine::Store;

use super::Error;

/// An existing store, opened read-only. See the module docs.
pub struct StoreReader {
    pub(super) config: Config,
    pub(super) cameras: Vec<PathBuf>,
    pub(super) store: Store,
    ledger: Mutex<LedgerReader>,
}

impl StoreReader {
    /// Open the configured store to read: the placement and permission checks, and the ledger
    /// read-only. The store must exist; nothing is created, recovered or locked.
    pub fn open(config: Config) -> Result<StoreReader, Error> {
        let cameras = cameras_of(&config);
        let store = Store::open_existing(&config.store_dir()?, &cameras, &config.sync_roots)?;
        StoreReader::on(config, cameras, store)
    }

    /// A reader of `store`, whose ledger exists.
    pub(super) fn on(config: Config, cameras: Vec<PathBuf>, store: Store) -> Result<StoreReader, Error> {
        let ledger = LedgerReader::open(&store.ledger_path())?;
        Ok(StoreReader { config, cameras, store, ledger: Mutex::new(ledger) })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The camera folders, resolved.
    pub fn cameras(&self) -> &[PathBuf] {
        &self.cameras
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The read-only ledger connection. Reads of the views only: the pipeline reads through
    /// the writer's connection, under its own locks. An older ledger a writer has upgraded
    /// since the reader opened is read as the upgraded one ([`LedgerReader::current`]).
    pub(super) fn read(&self) -> Result<MutexGuard<'_, LedgerReader>, Error> {
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        ledger.current()?;
        Ok(ledger)
    }
}

/// The configured camera folders, resolved; a folder named twice (config and `--camera`) once.
pub(super) fn cameras_of(config: &Config) -> Vec<PathBuf> {
    let mut cameras: Vec<PathBuf> = Vec::new();
    for c in config.cameras.iter().map(|c| crate::quarantine::placement::resolve(c)) {
        if !cameras.contains(&c) {
            cameras.push(c);
        }
    }
    cameras
}
