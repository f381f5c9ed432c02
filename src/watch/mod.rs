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

use crate::agent::{Agent, Outcome, OutcomeKind};
use crate::quarantine::fsops;
use collector::{Collector, Shared};
use driver::{Driver, Effects, SystemClock};
use folders::{Folders, NotifyWatches};
use machine::{Input, Machine, Timing, Unsettled};

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

/// How often the camera folders themselves are checked (appeared, gone, replaced).
const FOLDER_CHECK: Duration = Duration::from_secs(1);

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
    let timing =
        Timing { settle: config.settle, reconcile_interval: config.reconcile_interval, folder_check: FOLDER_CHECK };
    let effects = AgentEffects {
        agent,
        opts,
        observe,
        folders: Folders::new(agent.cameras()),
        watches: Some(NotifyWatches(watcher)),
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
    Ok(report)
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
}

impl<F: FnMut(&Outcome)> Effects for AgentEffects<'_, F> {
    fn handle(&mut self, path: &Path) -> bool {
        if !self.opts.consumer_delay.is_zero() {
            std::thread::sleep(self.opts.consumer_delay);
        }
        let o = self.agent.on_media(path);
        let retry = o.kind == OutcomeKind::Retry && path.exists();
        (self.observe)(&o);
        retry
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
            Ok(()) => true,
            Err(e) if self.watches.is_none() => {
                warn!(error = %e, "final durability barrier failed");
                false
            }
            Err(e) => {
                warn!(error = %e, "durability barrier failed; will retry");
                false
            }
        }
    }

    fn warn_overdue(&mut self) {
        self.agent.warn_overdue();
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
