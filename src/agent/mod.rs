//! The agent: one object that owns the store, the ledger and the classifier, and runs the
//! pipeline for one file. The watcher, `scan`, the CLI's officer commands and the Android
//! bridge all call the same methods here.
//!
//! The pipeline, one module per stage:
//!
//! - `intake`: open (no symlinks) → what the ledger knows of this file version → out of
//!   sight (`stash`: one rename into the staging folder) → hash → sniff → EXIF; bad input is
//!   rejected here, once per file version, and a staged file goes back to its name.
//! - `decide`: the context rules first (tag, release, session, work site), the classifier
//!   only when the verdict depends on it, then the policy.
//! - `commit`: under the move lock, record the item and its custody events, journal and
//!   run the move, and record how it ended (`Agent::apply_outcome` is the one place that
//!   says which event each ending writes).
//! - `reconcile`: the passes over the camera folders (scan, rescan, timer, first-run
//!   backlog) that feed files the ledger has not settled into the pipeline.
//! - `officer`: tag, release, case sessions.
//! - `casefile`: export, ack, purge, statistics and the admin report; `verify`: the store
//!   and the chain checked from one snapshot.
//! - `keys`: the device key (found, made or replaced at open, recorded in the ledger), the
//!   signed checkpoints after barriers and on the reconcile tick, `anchor`.
//! - `recover`: moves a dead process left journaled, orphaned store files, kept originals.
//! - `privacy`: letting go of what is kept about the officer's own photos, on schedule.
//! - `reader`: [`StoreReader`], the store opened read-only. The views (`browse`, statistics,
//!   `verify`, export's reads) are its methods; the agent holds one and derefs to it.
//! - `health`: whether the store takes files (said once when it stops, once when it is back),
//!   and the cheap check the watcher runs before it tries waiting files again.
//!
//! Every officer operation ends with the durability barrier ([`Agent::flush`]) inside the
//! library, and so does dropping the agent; callers need not remember it.
//!
//! # Lock order
//!
//! Locks are taken in this order, and never the other way round:
//!
//! 1. the classifier (`Model::Ready`'s mutex, together with the count of corrections it has
//!    replayed), held while one image is judged;
//! 2. the ledger mutex ([`Agent::ledger`]);
//! 3. the store's cross-process move lock, taken only through `Custody`, which locks the
//!    ledger first;
//! 4. leaves, never held while another lock is taken: `rejected`, `barrier`, `tracker` and
//!    `last_checkpoint`.
//!
//! Each agent's life lock (`life`: `store/live/TOKEN.lock`) is taken once at open and held
//! until drop; another agent's is only ever probed without waiting (`LOCK_NB`), so it is
//! outside this order and nothing waits on it.
//!
//! The reader's ledger connection ([`StoreReader`]'s own mutex) is outside this order: a view
//! takes it alone, and nothing is locked while it is held, so it never waits behind a move.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tracing::{error, info, warn};

use crate::classify::Classifier;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::quarantine::fsops;
use crate::quarantine::staging::Staging;
use crate::quarantine::{MoveLock, Store};

pub mod browse;
mod casefile;
mod commit;
mod decide;
mod error;
mod health;
mod import;
mod intake;
mod keys;
mod life;
mod officer;
mod outcome;
mod privacy;
mod reader;
mod reconcile;
mod record;
mod recover;
pub mod scan;
mod stash;
#[cfg(test)]
mod tests;
mod verify;

pub use casefile::{AckReport, ExportReport, PurgeReport};
pub use error::{Error, Output, Refusal};
pub use import::{ImportRequest, Imported, Origin};
pub use keys::AnchorReport;
pub use outcome::{Outcome, OutcomeKind, RetryCause};
pub use privacy::PruneReport;
pub use reader::StoreReader;
pub use recover::RecoveryReport;
pub use verify::VerifyReport;

/// The classifier as loaded at start: ready, or why not.
enum Model {
    Ready(Box<Mutex<Judge>>),
    Unavailable(String),
}

/// The classifier and how many officers' corrections it has replayed, guarded together (they
/// change together).
struct Judge {
    classifier: Classifier,
    /// The count and newest number of the corrections replayed.
    corrections_seen: Option<(usize, i64)>,
}

/// What the durability barrier has left to do.
#[derive(Debug, Default)]
struct Barrier {
    /// Directories renamed into or out of since the last barrier.
    dirty: Vec<PathBuf>,
    /// The ledger connection's change count when its WAL was last synced: unchanged, the
    /// barrier skips the fsync.
    synced_changes: Option<u64>,
}

/// The agent. See the module docs for its stages and its lock order. It derefs to its
/// [`StoreReader`]: the configuration, camera folders, store and the read-only views.
pub struct Agent {
    // Dropped before `ledger`: the writer's connection closes last, and only the last
    // connection to close checkpoints the write-ahead log (a read-only one cannot).
    reader: StoreReader,
    ledger: Mutex<Ledger>,
    model: Model,
    /// Bad input already logged and recorded: (path, file version key).
    rejected: Mutex<HashSet<(PathBuf, i64)>>,
    barrier: Mutex<Barrier>,
    /// The key packages and checkpoints are signed with.
    device_key: keys::DeviceKey,
    /// When this agent last made a checkpoint.
    last_checkpoint: Mutex<Option<std::time::Instant>>,
    /// Where new camera files go out of sight before they are judged (`stash`).
    staging: Staging,
    /// A scrub of the write-ahead log after pruning was held up by a reader: do it again.
    scrub_due: Mutex<bool>,
    /// The store's failures as this agent saw them.
    tracker: Mutex<health::Tracker>,
    /// This agent's life token and lock: its stash rows are left alone by others' recovery
    /// while it lives (`life`). Dropped last.
    life: life::Life,
}

/// The ledger and the cross-process move lock, held together: while a `Custody` lives,
/// nobody else (in this process or another) decides, moves or records a move. The only way
/// agent code takes the move lock, so the lock order is the one [`Agent::custody`] uses.
struct Custody<'a> {
    // Dropped in declaration order: the move lock is released first, then the ledger.
    _moves: MoveLock,
    ledger: MutexGuard<'a, Ledger>,
}

impl Agent {
    /// Open the store (placement and permission checks), the ledger, recover unfinished
    /// moves, and load the classifier if it is enabled and available.
    pub fn open(config: Config) -> Result<Agent, Error> {
        Agent::open_with(config, true)
    }

    /// Like [`Agent::open`], but without loading the classifier (officer and admin commands
    /// that never decide a new photo).
    pub fn open_without_model(config: Config) -> Result<Agent, Error> {
        Agent::open_with(config, false)
    }

    /// Without the classifier and without recovery: for `export`, which reads through its
    /// reader (never waiting behind a move) and then only appends its events, under the move
    /// lock for a moment. Moves a dead process left are the next `watch`'s, `scan`'s or
    /// officer command's to recover; export takes only items that are in the store.
    pub fn open_to_record(config: Config) -> Result<Agent, Error> {
        Agent::open_unrecovered(config, false)
    }

    fn open_with(config: Config, load_model: bool) -> Result<Agent, Error> {
        let agent = Agent::open_unrecovered(config, load_model)?;
        let report = agent.recover()?;
        if report.completed
            + report.rolled_back
            + report.vanished
            + report.temp_files_removed
            + report.adopted
            + report.returned
            + report.failed
            > 0
        {
            info!(?report, "recovered unfinished moves");
        }
        Ok(agent)
    }

    fn open_unrecovered(config: Config, load_model: bool) -> Result<Agent, Error> {
        let store_dir = config.store_dir()?;
        let cameras = reader::cameras_of(&config);
        let store = Store::open(&store_dir, &cameras, &config.sync_roots)?;
        let staging = Staging::new(&cameras, &config.sync_roots, store.root(), config.staging.as_deref())?;
        let mut ledger = Ledger::open(&store.ledger_path())?;
        let life = life::Life::take(store.root())?;
        let device_key = keys::open_device_key(&store, &mut ledger);
        let model = if !load_model {
            Model::Unavailable("not loaded for this command".into())
        } else if !config.classifier.enabled {
            Model::Unavailable("classifier disabled in the config".into())
        } else {
            match Classifier::load(&config.classifier) {
                Ok(classifier) => Model::Ready(Box::new(Mutex::new(Judge { classifier, corrections_seen: None }))),
                Err(e) => {
                    warn!(error = %e, "classifier unavailable; deciding by context, sessions and manual tags only");
                    Model::Unavailable(e.to_string())
                }
            }
        };
        let agent = Agent {
            // After the writer's open, which creates and migrates the ledger.
            reader: StoreReader::on(config, cameras, store)?,
            ledger: Mutex::new(ledger),
            model,
            rejected: Mutex::new(HashSet::new()),
            barrier: Mutex::new(Barrier::default()),
            device_key,
            last_checkpoint: Mutex::new(None),
            staging,
            scrub_due: Mutex::new(false),
            tracker: Mutex::new(health::Tracker::default()),
            life,
        };
        if !agent.config.media_location_access {
            warn!(
                "media_location_access is off: the filesystem may alter what is read (Android redacts GPS without \
                 ACCESS_MEDIA_LOCATION), so no photo is moved into the store; each is recorded as held and decided \
                 again once access is granted"
            );
        }
        Ok(agent)
    }

    /// Is the classifier loaded? `Err` carries why not.
    pub fn model_status(&self) -> Result<(), &str> {
        match &self.model {
            Model::Ready(_) => Ok(()),
            Model::Unavailable(why) => Err(why),
        }
    }

    /// Lock the writer's ledger connection (the pipeline's reads and writes; a view reads
    /// through the [`StoreReader`] instead, which never waits behind a move).
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lock the ledger, then the store's cross-process move lock (the one lock order).
    fn custody(&self) -> Result<Custody<'_>, Error> {
        let ledger = self.ledger();
        let _moves = self.store.lock_moves()?;
        Ok(Custody { _moves, ledger })
    }

    fn barrier(&self) -> MutexGuard<'_, Barrier> {
        self.barrier.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Durability barrier: fsync the directories of recent moves and the ledger's WAL, so
    /// everything decided so far survives power loss. Every officer operation runs it before
    /// it returns, the watcher whenever its queue drains, and dropping the agent runs it last.
    /// Cheap when nothing changed since the last one: no fsync at all.
    pub fn flush(&self) -> Result<(), Error> {
        let changes = self.ledger().conn().total_changes();
        let mut dirs = {
            let mut b = self.barrier();
            if b.dirty.is_empty() && b.synced_changes == Some(changes) {
                return Ok(());
            }
            std::mem::take(&mut b.dirty)
        };
        dirs.sort();
        dirs.dedup();
        for (i, d) in dirs.iter().enumerate() {
            match fsops::fsync_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    // What is not synced yet stays for the next barrier.
                    self.barrier().dirty.extend_from_slice(&dirs[i..]);
                    return Err(Error::Io { about: "syncing a folder", path: d.clone(), source });
                }
            }
        }
        let ledger = self.ledger();
        let changes = ledger.conn().total_changes();
        let synced = ledger.sync()?;
        // Every barrier that advanced the head is checkpointed (signed, for keeping off the phone).
        self.after_barrier(synced, &ledger);
        drop(ledger);
        self.barrier().synced_changes = Some(changes);
        Ok(())
    }

    /// End an officer operation with the durability barrier, whatever its result: a refusal
    /// changed nothing (the barrier is then free), a failure may have recorded something.
    fn durable<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let flushed = self.flush();
        let value = result?;
        flushed?;
        Ok(value)
    }

    fn store_name_of(&self, dst: &Path) -> String {
        dst.strip_prefix(self.store.root()).unwrap_or(dst).to_string_lossy().into_owned()
    }

    /// Is `path` inside one of the camera folders?
    pub fn in_camera_folder(&self, path: &Path) -> bool {
        let resolved = crate::quarantine::placement::resolve(path.parent().unwrap_or(path));
        self.cameras.iter().any(|c| resolved.starts_with(c))
    }

    /// Is the agent holding every photo (no media-location access, so reads may be altered)?
    fn held(&self) -> bool {
        !self.config.media_location_access
    }
}

impl std::ops::Deref for Agent {
    type Target = StoreReader;
    fn deref(&self) -> &StoreReader {
        &self.reader
    }
}

impl Drop for Agent {
    /// The last durability barrier: whatever the caller forgot to flush is made durable here.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            error!(error = %e, "durability barrier at shutdown failed; the last changes may not survive a power cut");
        }
    }
}

/// A camera-folder path as the ledger keeps it: absolute, its folder canonical, the file's
/// own name as given (a link there is refused by intake, never followed).
fn ledger_path(path: &Path) -> PathBuf {
    use crate::quarantine::placement::resolve;
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if parent.as_os_str().is_empty() => resolve(Path::new(".")).join(name),
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => resolve(path),
    }
}
