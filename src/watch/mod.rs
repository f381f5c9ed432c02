//! Watching the camera folders.
//!
//! Three parts, each testable on its own:
//! - `collector`: notify's callback. It only classifies and collects paths, into two lanes:
//!   a bounded one for files and a lossless control lane that asks for a rescan (inotify's
//!   queue overflowed, the bounded lane was full, the watcher reported an error).
//! - `machine`: the decisions, a pure state machine fed with (time, input) that returns
//!   actions: handle a file now, let it settle, reconcile, check the folders, and end every
//!   batch with the durability barrier. Its cases are data files (`src/watch/test_cases/`) run
//!   with a mock clock by one test.
//! - `driver` runs the machine's actions against the agent and the disk; [`run`] is the loop
//!   that waits on the lanes, on the thread [`WatchGuard`] owns.
//!
//! The ledger, not the event stream, is the source of truth: the folders are reconciled
//! against it at start, on a rescan and on a timer. A camera folder that is not there yet (a
//! new phone's camera app makes `DCIM/Camera` with its first photo), or that is deleted and
//! made again, is checked for every second: it is watched as soon as it exists and reconciled
//! at once, so its first photos wait for a second, not for the reconcile timer.
//!
//! A file the agent could not finish because the store or the ledger failed (a full disk, an
//! I/O error, a read-only remount) stays where it is and is tried again with backoff, without
//! spinning; a cheap probe of the store lets every waiting file through as soon as the store
//! looks able to take it again (see `machine`). The agent says once that the store is down,
//! and once that it is back, and keeps the state for `stats` and the Android health
//! ([`crate::agent::Agent::health`]).
//!
//! Known problems: a file closed after writing twice before the watcher takes the first event
//! is handled twice (the ledger makes the second a skip); a file the collector never sees (a
//! lost event without an overflow flag) waits for the reconcile timer.

mod collector;
mod driver;
mod folders;
mod machine;
#[cfg(test)]
mod testing;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::agent::{Agent, Outcome, OutcomeKind, RetryCause};
use crate::quarantine::fsops;
use collector::{Collector, Shared};
use driver::{Driver, Effects, SystemClock};
use folders::{Folders, NotifyWatches};
pub(crate) use machine::backoff;
use machine::{Handling, Input, Machine, Timing, Unsettled};

/// Errors that stop the watcher, or keep it from starting.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// notify could not set up its watcher (no inotify instance left, for one).
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
    /// No camera folder is configured.
    #[error("no camera folder to watch ({0})")]
    NothingWatched(String),
    #[error(transparent)]
    Agent(#[from] crate::agent::Error),
    /// The watcher thread panicked: it stopped watching. What it was doing is unfinished; the
    /// ledger and the store recover from that as from a crash, at the next start.
    #[error("the watcher thread panicked: {message}")]
    Panicked { message: String },
    /// The watcher stopped, but its last durability barrier failed: what it decided last may
    /// not survive a power cut. `report` is what the run did.
    #[error("the last durability barrier failed; the latest decisions may not survive a power cut: {source}")]
    Unflushed {
        report: Box<WatchReport>,
        #[source]
        source: Box<crate::agent::Error>,
    },
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
    /// Tries of files whose earlier try failed (the store was full or failing, say).
    pub retries: u64,
    /// Times the store went down: a file could not be stored, and files waited for it.
    pub store_outages: u64,
}

/// How often the camera folders themselves are checked (appeared, gone, replaced).
const FOLDER_CHECK: Duration = Duration::from_secs(1);
/// A file the agent could not finish is tried again after this, then twice as long after
/// each failed try, up to [`RETRY_CAP`]: ten tries in its first ten minutes, then one every
/// five minutes. Each try reads (and, across filesystems, copies) the whole file again.
pub const RETRY_FIRST: Duration = Duration::from_secs(2);
pub const RETRY_CAP: Duration = Duration::from_secs(5 * 60);
/// While the store is down, a cheap probe (free space, one small write) runs after this,
/// doubling to [`PROBE_CAP`]: files waiting for the store go through at most this long after
/// it can take them. `watch` retries opening a store it cannot open on the same schedule.
pub const PROBE_FIRST: Duration = Duration::from_secs(1);
pub const PROBE_CAP: Duration = Duration::from_secs(30);

/// The wait before the next try to open a store after `failed` tries failed
/// ([`PROBE_FIRST`], doubling, at most [`PROBE_CAP`]).
pub fn open_backoff(failed: u32) -> Duration {
    backoff(PROBE_FIRST, PROBE_CAP, failed)
}

/// Watch until `stop` fires (or is dropped); `observe` sees every handled file.
pub fn run(
    agent: &Agent,
    stop: &Receiver<()>,
    opts: &WatchOptions,
    observe: impl FnMut(&Outcome),
) -> Result<WatchReport, WatchError> {
    let (lane_tx, lane_rx) = bounded(opts.lane_capacity.max(1));
    let (ctl_tx, ctl_rx) = unbounded();
    let shared = Arc::new(Shared::default());
    let collector =
        Collector { lane: lane_tx, control: ctl_tx, shared: shared.clone(), cameras: agent.cameras().to_vec() };
    let watcher = notify::recommended_watcher(collector).map_err(WatchError::Start)?;
    if agent.cameras().is_empty() {
        return Err(WatchError::NothingWatched("none configured; use --camera DIR".into()));
    }
    let config = agent.config();
    let timing = Timing {
        settle: config.settle,
        reconcile_interval: config.reconcile_interval,
        folder_check: FOLDER_CHECK,
        retry_first: RETRY_FIRST,
        retry_cap: RETRY_CAP,
        probe_first: PROBE_FIRST,
        probe_cap: PROBE_CAP,
    };
    let effects = AgentEffects {
        agent,
        opts,
        observe,
        folders: Folders::new(agent.cameras()),
        watches: Some(NotifyWatches(watcher)),
        barrier: None,
    };
    let mut d = Driver::new(Machine::new(timing), effects, SystemClock(Instant::now()), shared.clone());
    d.step(Input::Start, &lane_rx);
    loop {
        let timeout = d.timeout();
        select! {
            recv(stop) -> _ => break,
            recv(ctl_rx) -> _ => d.rescan(&lane_rx),
            recv(lane_rx) -> msg => match msg {
                Ok((p, t)) => d.step(Input::File(p, t), &lane_rx),
                Err(_) => break,
            },
            default(timeout) => d.step(Input::Tick, &lane_rx),
        }
    }
    // No more events; the last barrier covers whatever the last batch did.
    d.effects.watches = None;
    d.feed(Input::Stop);
    let report = report(d.machine.counts(), &shared);
    info!(?report, "watcher stopped");
    match d.effects.barrier.take() {
        Some(source) => Err(WatchError::Unflushed { report: Box::new(report), source: Box::new(source) }),
        None => Ok(report),
    }
}

fn report(c: machine::Counts, shared: &Shared) -> WatchReport {
    use std::sync::atomic::Ordering::Relaxed;
    WatchReport {
        events: shared.events.load(Relaxed),
        handled: c.handled,
        rescans: c.rescans,
        reconciles: c.reconciles,
        lane_full: shared.lane_full.load(Relaxed),
        overflows: shared.overflows.load(Relaxed),
        retries: c.retries,
        store_outages: c.store_outages,
    }
}

/// The machine's actions on the real agent and disk.
struct AgentEffects<'a, F> {
    agent: &'a Agent,
    opts: &'a WatchOptions,
    observe: F,
    folders: Folders,
    /// `None` once the watcher is stopping (the watch is dropped before the last barrier).
    watches: Option<NotifyWatches<notify::RecommendedWatcher>>,
    /// Why the last durability barrier failed, while it fails.
    barrier: Option<crate::agent::Error>,
}

impl<F: FnMut(&Outcome)> Effects for AgentEffects<'_, F> {
    fn handle(&mut self, path: &Path) -> Handling {
        if !self.opts.consumer_delay.is_zero() {
            std::thread::sleep(self.opts.consumer_delay);
        }
        let o = self.agent.on_media(path);
        (self.observe)(&o);
        match (o.kind, o.retry) {
            // Gone, unless it waits in staging for the store: tried again by its camera name.
            (OutcomeKind::Retry, _)
                if std::fs::symlink_metadata(path).is_err() && self.agent.waiting_in_staging(path).is_none() =>
            {
                Handling::Done
            }
            (OutcomeKind::Retry, Some(RetryCause::Busy)) => Handling::Settle,
            (OutcomeKind::Retry, Some(RetryCause::Store)) => Handling::Store,
            (OutcomeKind::Retry, _) => Handling::Backoff,
            (OutcomeKind::Quarantined, _) => Handling::Stored,
            _ => Handling::Done,
        }
    }

    fn store_ready(&mut self, waiting: &[std::path::PathBuf]) -> bool {
        self.agent.store_ready(waiting)
    }

    fn unsettled(&mut self) -> Option<Vec<Unsettled>> {
        // The reconcile tick (at start and every `reconcile_interval`): an idle phone still
        // makes a signed checkpoint every `checkpoint_interval`.
        self.agent.checkpoint_if_due();
        let files = match self.agent.pending_files(Duration::ZERO) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "reconcile failed");
                return None;
            }
        };
        let now = SystemTime::now();
        let age = |p: &Path| {
            let modified = std::fs::symlink_metadata(p).ok()?.modified().ok()?;
            now.duration_since(modified).ok()
        };
        Some(files.into_iter().map(|path| Unsettled { age: age(&path), path }).collect())
    }

    fn probe(&mut self, path: &Path) -> Option<fsops::FileId> {
        fsops::lstat_id(path).ok()
    }

    fn refresh_folders(&mut self, forget: bool) -> bool {
        if forget {
            self.folders.forget_watches();
        }
        self.watches.as_mut().is_some_and(|w| self.folders.refresh(w))
    }

    fn flush(&mut self) -> bool {
        match self.agent.flush() {
            Ok(()) => {
                if self.barrier.take().is_some() {
                    info!("durability barrier holds again");
                }
                true
            }
            Err(e) => {
                if self.watches.is_none() {
                    error!(error = %e, "final durability barrier failed");
                } else if self.barrier.is_none() {
                    // Said once; a store that stays broken fails every batch's barrier.
                    warn!(error = %e, "durability barrier failed; will retry after each batch");
                } else {
                    tracing::debug!(error = %e, "durability barrier failed again");
                }
                self.barrier = Some(e);
                false
            }
        }
    }

    /// At start and on each reconcile tick: the retention warning, and the privacy pruning.
    fn warn_overdue(&mut self) {
        self.agent.warn_overdue();
        self.agent.prune_logged();
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
        Self::spawn_with(move |stop| run(&agent, &stop, &opts, observe))
    }

    fn spawn_with(
        body: impl FnOnce(Receiver<()>) -> Result<WatchReport, WatchError> + Send + 'static,
    ) -> std::io::Result<WatchGuard> {
        let (stop_tx, stop_rx) = bounded(1);
        let thread = std::thread::Builder::new().name("fotovakt-watch".into()).spawn(move || body(stop_rx))?;
        Ok(WatchGuard { stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Stop and return the run's counters, or why it ended early (a panic included).
    pub fn stop(mut self) -> Result<WatchReport, WatchError> {
        self.finish().unwrap_or_else(|| Ok(WatchReport::default()))
    }

    fn finish(&mut self) -> Option<Result<WatchReport, WatchError>> {
        drop(self.stop.take());
        let thread = self.thread.take()?;
        Some(thread.join().unwrap_or_else(|payload| Err(WatchError::Panicked { message: panic_message(&*payload) })))
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.finish() {
            error!(error = %e, "the watcher ended with an error");
        }
    }
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_watcher_thread_is_an_error_not_a_clean_stop() {
        let guard = WatchGuard::spawn_with(|_stop| panic!("observer failed on IMG_1.jpg")).expect("spawn");
        match guard.stop() {
            Err(WatchError::Panicked { message }) => assert_eq!(message, "observer failed on IMG_1.jpg"),
            other => panic!("expected Panicked, got {other:?}"),
        }
        let guard = WatchGuard::spawn_with(|_stop| panic!("{} files", 3)).expect("spawn");
        assert!(matches!(guard.stop(), Err(WatchError::Panicked { message }) if message == "3 files"));
    }

    #[test]
    fn a_clean_stop_returns_the_report() {
        let guard = WatchGuard::spawn_with(|stop| {
            let _ = stop.recv();
            Ok(WatchReport { handled: 7, ..WatchReport::default() })
        })
        .expect("spawn");
        assert_eq!(guard.stop().expect("clean").handled, 7);
    }
}
