//! Watching the camera folders.
//!
//! notify's callback only collects paths: a finished file (close-after-write, or a rename
//! into the folder — how Android camera apps and MediaStore publish a `.pending-…` file) goes
//! into a bounded lane; a `Create` without a close yet goes in as "settle" (handled once its
//! size stops changing: hard links, FUSE). If the lane is full, or inotify's own queue
//! overflowed (`need_rescan()`), a lossless flag asks for a rescan instead. The ledger, not
//! the event stream, is the source of truth: the consumer reconciles the folders against it
//! at start, on that flag, and on a timer.
//!
//! A camera folder that is not there yet (a new phone's camera app makes `DCIM/Camera` with
//! its first photo), or that is deleted and made again, is checked for every second: it is
//! watched as soon as it exists and reconciled at once, so its first photos wait for a
//! second, not for the reconcile timer.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender, TrySendError};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::agent::{Agent, Outcome};
use crate::media;
use crate::quarantine::fsops;

/// Errors that stop the watcher from starting.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
    #[error("no camera folder to watch ({0})")]
    NothingWatched(String),
    #[error(transparent)]
    Agent(#[from] crate::agent::Error),
}

/// Tuning knobs; `Default` is what `fotovakt watch` uses.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Capacity of the lane between notify's thread and the consumer.
    pub lane_capacity: usize,
    /// Test hook: the consumer sleeps this long before each file (simulates a slow device so
    /// the lane fills and the rescan path runs).
    pub consumer_delay: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { lane_capacity: 4096, consumer_delay: Duration::ZERO }
    }
}

/// Counters of one watch run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WatchReport {
    pub events: u64,
    pub handled: u64,
    pub rescans: u64,
    pub reconciles: u64,
    pub lane_full: u64,
    /// inotify's own queue overflowed (events were lost in the kernel): each one asked for a rescan.
    pub overflows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Written and closed, or renamed into the folder: complete.
    Complete,
    /// Created; not known to be complete yet.
    Created,
}

/// The notify callback: cheap, never blocks.
struct Collector {
    lane: Sender<(PathBuf, Trigger)>,
    control: Sender<()>,
    rescan: Arc<AtomicBool>,
    events: Arc<AtomicU64>,
    lane_full: Arc<AtomicU64>,
    overflows: Arc<AtomicU64>,
    /// The camera folders, and a flag raised when one of them is removed (its watch is gone
    /// with it, even if a new folder with the same inode number appears at once).
    cameras: Vec<PathBuf>,
    folder_gone: Arc<AtomicBool>,
}

impl Collector {
    fn ask_rescan(&self) {
        if !self.rescan.swap(true, Ordering::SeqCst) {
            let _ = self.control.send(());
        }
    }
}

impl notify::EventHandler for Collector {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "watcher error; rescanning");
                self.ask_rescan();
                return;
            }
        };
        if event.need_rescan() {
            self.overflows.fetch_add(1, Ordering::Relaxed);
            self.ask_rescan();
            return;
        }
        if matches!(event.kind, EventKind::Remove(_)) && event.paths.iter().any(|p| self.cameras.contains(p)) {
            self.folder_gone.store(true, Ordering::SeqCst);
            return;
        }
        let (path, trigger) = match (&event.kind, event.paths.as_slice()) {
            (EventKind::Access(AccessKind::Close(AccessMode::Write)), [p, ..]) => (p, Trigger::Complete),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), [p, ..]) => (p, Trigger::Complete),
            (EventKind::Create(CreateKind::File | CreateKind::Any), [p, ..]) => (p, Trigger::Created),
            _ => return,
        };
        if !path.file_name().is_some_and(media::is_candidate_name) {
            return;
        }
        self.events.fetch_add(1, Ordering::Relaxed);
        match self.lane.try_send((path.clone(), trigger)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.lane_full.fetch_add(1, Ordering::Relaxed);
                self.ask_rescan();
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Watch until `stop` fires (or is dropped); `observe` sees every handled file.
pub fn run(
    agent: &Agent,
    stop: &Receiver<()>,
    opts: &WatchOptions,
    mut observe: impl FnMut(&Outcome),
) -> Result<WatchReport, WatchError> {
    let (lane_tx, lane_rx) = bounded(opts.lane_capacity.max(1));
    let (ctl_tx, ctl_rx) = unbounded();
    let rescan = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let lane_full = Arc::new(AtomicU64::new(0));
    let overflows = Arc::new(AtomicU64::new(0));
    let folder_gone = Arc::new(AtomicBool::new(false));
    let collector = Collector {
        lane: lane_tx,
        control: ctl_tx,
        rescan: rescan.clone(),
        events: events.clone(),
        lane_full: lane_full.clone(),
        overflows: overflows.clone(),
        cameras: agent.cameras().to_vec(),
        folder_gone: folder_gone.clone(),
    };
    let mut watcher = notify::recommended_watcher(collector).map_err(WatchError::Start)?;
    if agent.cameras().is_empty() {
        return Err(WatchError::NothingWatched("none configured; use --camera DIR".into()));
    }
    let mut folders = Folders::new(agent.cameras());
    folders.refresh(&mut watcher);
    let settle = agent.config().settle;
    let interval = agent.config().reconcile_interval;
    let mut cx =
        Consumer { agent, opts, settle, report: WatchReport::default(), settling: HashMap::new(), unflushed: false };
    cx.reconcile(&mut observe);
    agent.warn_overdue();
    let mut next_reconcile = Instant::now() + interval;
    let mut next_folder_check = Instant::now() + FOLDER_CHECK;
    loop {
        let next_settle = cx.settling.values().map(|(t, _)| *t + settle).min();
        let next = next_reconcile.min(next_folder_check);
        let deadline = next_settle.map_or(next, |s| s.min(next));
        let timeout = deadline.saturating_duration_since(Instant::now());
        select! {
            recv(stop) -> _ => break,
            recv(ctl_rx) -> _ => {
                rescan.store(false, Ordering::SeqCst);
                cx.report.rescans += 1;
                // The totals so far say which it was: the kernel's queue or our own lane.
                info!(
                    overflows = overflows.load(Ordering::Relaxed),
                    lane_full = lane_full.load(Ordering::Relaxed),
                    "rescan requested (watcher queue overflow or lane full); reconciling"
                );
                // Drain what is queued first: those are real events, cheaper than a walk.
                while let Ok((p, t)) = lane_rx.try_recv() {
                    cx.accept(p, t, &mut observe);
                }
                cx.reconcile(&mut observe);
            }
            recv(lane_rx) -> msg => match msg {
                Ok((p, t)) => cx.accept(p, t, &mut observe),
                Err(_) => break,
            },
            default(timeout) => {}
        }
        cx.settle_due(&mut observe);
        if cx.unflushed && lane_rx.is_empty() {
            cx.unflushed = false;
            if let Err(e) = agent.flush() {
                warn!(error = %e, "durability barrier failed; will retry");
                cx.unflushed = true;
            }
        }
        if Instant::now() >= next_folder_check {
            if folder_gone.swap(false, Ordering::SeqCst) {
                folders.forget_watches();
            }
            if folders.refresh(&mut watcher) {
                // Whatever was written before the watch took hold.
                cx.reconcile(&mut observe);
            }
            next_folder_check = Instant::now() + FOLDER_CHECK;
        }
        if Instant::now() >= next_reconcile {
            cx.reconcile(&mut observe);
            agent.warn_overdue();
            next_reconcile = Instant::now() + interval;
        }
    }
    drop(watcher);
    if let Err(e) = agent.flush() {
        warn!(error = %e, "final durability barrier failed");
    }
    let mut report = cx.report;
    report.events = events.load(Ordering::Relaxed);
    report.lane_full = lane_full.load(Ordering::Relaxed);
    report.overflows = overflows.load(Ordering::Relaxed);
    info!(?report, "watcher stopped");
    Ok(report)
}

/// How often the camera folders themselves are checked (appeared, gone, replaced).
const FOLDER_CHECK: Duration = Duration::from_secs(1);

/// The camera folders and which directory of each is watched now, by its identity.
struct Folders {
    list: Vec<Folder>,
}

struct Folder {
    path: PathBuf,
    /// (device, inode) of the directory the watch is on; `None` while not watched.
    watched: Option<(u64, u64)>,
    /// The last problem logged, so a lasting one is logged once, not every second.
    problem: Option<String>,
}

impl Folders {
    fn new(paths: &[PathBuf]) -> Folders {
        Folders { list: paths.iter().map(|p| Folder { path: p.clone(), watched: None, problem: None }).collect() }
    }

    /// A camera folder was removed: watch every folder afresh at the next refresh.
    fn forget_watches(&mut self) {
        for f in &mut self.list {
            f.watched = None;
        }
    }

    /// Bring the watches in line with the folders on disk. True when a folder was newly
    /// watched (it appeared, or was replaced): the caller reconciles.
    fn refresh(&mut self, watcher: &mut impl notify::Watcher) -> bool {
        let mut added = false;
        for f in &mut self.list {
            let now = dir_identity(&f.path);
            if now.is_some() && now == f.watched {
                continue;
            }
            // Deleted or replaced: the kernel dropped the old watch with the directory.
            f.watched = None;
            let _ = watcher.unwatch(&f.path);
            let Some(id) = now else {
                note(f, "camera folder does not exist (yet); it is watched as soon as it appears");
                continue;
            };
            match watcher.watch(&f.path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    info!(folder = %f.path.display(), "watching");
                    f.watched = Some(id);
                    f.problem = None;
                    added = true;
                }
                Err(e) => note(f, &format!("cannot watch camera folder: {e}")),
            }
        }
        added
    }
}

/// Log `problem` for `f` unless it is the one logged last.
fn note(f: &mut Folder, problem: &str) {
    if f.problem.as_deref() != Some(problem) {
        warn!(folder = %f.path.display(), "{problem}");
        f.problem = Some(problem.to_string());
    }
}

/// (device, inode) of `path` if it is a directory (links followed, as the watch does).
fn dir_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().filter(|m| m.is_dir()).map(|m| (m.dev(), m.ino()))
}

/// The consumer side: handles paths, tracks files that are still settling, reconciles.
struct Consumer<'a> {
    agent: &'a Agent,
    opts: &'a WatchOptions,
    settle: Duration,
    report: WatchReport,
    settling: HashMap<PathBuf, (Instant, Option<fsops::FileId>)>,
    /// Files were handled since the last durability barrier.
    unflushed: bool,
}

impl Consumer<'_> {
    fn handle(&mut self, path: &std::path::Path, observe: &mut dyn FnMut(&Outcome)) {
        if !self.opts.consumer_delay.is_zero() {
            std::thread::sleep(self.opts.consumer_delay);
        }
        let o = self.agent.on_media(path);
        if o.kind == crate::agent::OutcomeKind::Retry && path.exists() {
            // Still being written or changed under us: look again once it has settled.
            self.settling.insert(path.to_path_buf(), (Instant::now(), None));
        }
        self.report.handled += 1;
        self.unflushed = true;
        observe(&o);
    }

    fn accept(&mut self, path: PathBuf, trigger: Trigger, observe: &mut dyn FnMut(&Outcome)) {
        match trigger {
            Trigger::Complete => {
                self.settling.remove(&path);
                self.handle(&path, observe);
            }
            Trigger::Created => {
                self.settling.entry(path).or_insert((Instant::now(), None));
            }
        }
    }

    /// Walk the folders; anything the ledger has not settled is handled now, or left to
    /// settle if it was written too recently to be sure it is complete.
    fn reconcile(&mut self, observe: &mut dyn FnMut(&Outcome)) {
        self.report.reconciles += 1;
        let files = match self.agent.pending_files(Duration::ZERO) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "reconcile failed");
                return;
            }
        };
        let now = std::time::SystemTime::now();
        for p in files {
            let fresh = std::fs::symlink_metadata(&p)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age < self.settle);
            if fresh {
                self.settling.entry(p).or_insert((Instant::now(), None));
            } else {
                self.handle(&p, observe);
            }
        }
    }

    /// Files created without a close event are handled once unchanged for `settle`.
    fn settle_due(&mut self, observe: &mut dyn FnMut(&Outcome)) {
        let now = Instant::now();
        let settle = self.settle;
        let due: Vec<PathBuf> =
            self.settling.iter().filter(|(_, (t, _))| now >= *t + settle).map(|(p, _)| p.clone()).collect();
        for p in due {
            let current = fsops::lstat_id(&p).ok();
            let previous = self.settling.get(&p).and_then(|(_, id)| *id);
            match current {
                None => {
                    self.settling.remove(&p);
                }
                Some(id) if previous == Some(id) => {
                    self.settling.remove(&p);
                    debug!(path = %p.display(), "settled without a close event");
                    self.handle(&p, observe);
                }
                Some(id) => {
                    self.settling.insert(p, (now, Some(id)));
                }
            }
        }
    }
}

/// A watcher running on its own thread; dropping the guard stops it and waits for it.
pub struct WatchGuard {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<WatchReport, WatchError>>>,
}

impl WatchGuard {
    /// Start watching `agent`'s camera folders in the background.
    pub fn spawn(
        agent: Arc<Agent>,
        opts: WatchOptions,
        observe: impl FnMut(&Outcome) + Send + 'static,
    ) -> std::io::Result<WatchGuard> {
        let (stop_tx, stop_rx) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("fotovakt-watch".into())
            .spawn(move || run(&agent, &stop_rx, &opts, observe))?;
        Ok(WatchGuard { stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Stop and return the run's counters.
    pub fn stop(mut self) -> Result<WatchReport, WatchError> {
        self.finish().unwrap_or_else(|| Ok(WatchReport::default()))
    }

    fn finish(&mut self) -> Option<Result<WatchReport, WatchError>> {
        drop(self.stop.take());
        self.thread.take().map(|t| t.join().unwrap_or_else(|_| Ok(WatchReport::default())))
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
