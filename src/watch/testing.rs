//! The watcher's cases as data: every `test_cases/*.json` file holds a starting state (folders,
//! files, whether a session is open), a sequence of timed events (what the camera does on
//! disk, what inotify reports) and what must come out (the actions in order with their times,
//! the files still settling, what is left in the camera folder, what went to the store, the
//! run's counters). One test runs them all with a mock clock, as notify-debouncer-full does.
//!
//! What is real and what is simulated: the collector (classify, both lanes, the rescan flag),
//! the machine, the driver and the folder logic are the production code. The disk, inotify
//! and the agent are simulated: a notify event is delivered only while its folder has a live
//! watch (a removed directory takes its watch with it, as the kernel does), and the simulated
//! agent answers as the real one does: a file gone is skipped, one already in the ledger with
//! the same size and mtime is skipped, one still open for writing is `Retry`, the rest is kept
//! (no session) or moved to the store (a session is open), unless the store is `broken` (a
//! move fails and the probe says so) or `lying` (a move fails, the probe says it would not).
//! Time stands still while actions
//! run; between events the clock jumps to the machine's next deadline, as the real loop's
//! `select!` timeout does. Control messages are taken before lane messages (the real
//! `select!` picks at random among ready channels).
//!
//! Every case is also checked for the durability barrier: a batch that ends with the lane
//! empty must leave nothing unflushed unless that batch's barrier failed.
//!
//! Format (times in milliseconds, paths relative to the simulated phone):
//! ```json
//! { "about": "what the case shows",
//!   "settle_ms": 300, "reconcile_interval_ms": 3600000, "lane_capacity": 4096,
//!   "retry_first_ms": 2000, "retry_cap_ms": 300000, "probe_first_ms": 1000, "probe_cap_ms": 30000,
//!   "cameras": ["Camera"], "until": 2000, "ignore": ["refresh_folders"],
//!   "state": { "folders": [{ "path": "Camera", "ino": 2 }], "session": false,
//!              "files": [{ "path": "Camera/IMG_1.jpg", "size": 10, "mtime": -60000 }] },
//!   "events": [ { "at": 0, "write": { "path": "Camera/IMG_1.jpg", "size": 100 } },
//!               { "at": 5, "close": "Camera/IMG_1.jpg" },
//!               { "at": 5, "notify": { "close_write": "Camera/IMG_1.jpg" } },
//!               { "at": 9, "store": "broken" } ],
//!   "expected": { "actions": ["0 refresh_folders", "0 reconcile", "…"], "settling": [],
//!                 "waiting": ["Camera/IMG_2.jpg 3"], "moves_tried": { "Camera/IMG_2.jpg": 3 },
//!                 "camera": ["Camera/IMG_1.jpg"], "stored": [],
//!                 "report": { "handled": 1, "rescans": 0, "reconciles": 1, "events": 1,
//!                             "lane_full": 0, "overflows": 0 } } }
//! ```
//! Every default above applies when the key is left out; `ignore` drops those action names
//! from the comparison (long cases and the folder check every second).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver};
use notify::event::{AccessKind, AccessMode, CreateKind, Flag, ModifyKind, RemoveKind, RenameMode};
use notify::{EventHandler, EventKind};
use serde::Deserialize;

use super::collector::{Collector, Shared, Trigger};
use super::driver::{Clock, Driver, Effects};
use super::folders::{Folders, Watches};
use super::machine::{Handling, Input, Machine, Time, Timing, Unsettled};
use super::{FOLDER_CHECK, PROBE_CAP, PROBE_FIRST, RETRY_CAP, RETRY_FIRST};
use crate::media;
use crate::quarantine::fsops::FileId;

const ROOT: &str = "/sim";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default = "default_settle")]
    settle_ms: u64,
    #[serde(default = "default_interval")]
    reconcile_interval_ms: u64,
    #[serde(default = "default_lane")]
    lane_capacity: usize,
    #[serde(default = "default_retry_first")]
    retry_first_ms: u64,
    #[serde(default = "default_retry_cap")]
    retry_cap_ms: u64,
    #[serde(default = "default_probe_first")]
    probe_first_ms: u64,
    #[serde(default = "default_probe_cap")]
    probe_cap_ms: u64,
    #[serde(default = "default_cameras")]
    cameras: Vec<String>,
    until: u64,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    state: State,
    events: Vec<Step>,
    expected: Expected,
}

fn default_settle() -> u64 {
    300
}
fn default_interval() -> u64 {
    3_600_000
}
fn default_lane() -> usize {
    4096
}
fn default_retry_first() -> u64 {
    RETRY_FIRST.as_millis() as u64
}
fn default_retry_cap() -> u64 {
    RETRY_CAP.as_millis() as u64
}
fn default_probe_first() -> u64 {
    PROBE_FIRST.as_millis() as u64
}
fn default_probe_cap() -> u64 {
    PROBE_CAP.as_millis() as u64
}
fn default_cameras() -> Vec<String> {
    vec!["Camera".into()]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Folders on disk at start; default: each camera folder.
    folders: Option<Vec<DirSpec>>,
    #[serde(default)]
    files: Vec<FileSpec>,
    #[serde(default)]
    session: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirSpec {
    path: String,
    /// Inode number; a folder made again may get the old one.
    ino: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    path: String,
    size: u64,
    /// Modification time relative to the watcher's start (negative: before it).
    #[serde(default)]
    mtime: i64,
    /// Still open for writing.
    #[serde(default)]
    writing: bool,
}

#[derive(Debug, Deserialize)]
struct Step {
    at: u64,
    #[serde(flatten)]
    op: Op,
}

/// One thing that happens: on disk, in inotify, or to the barrier.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// Create (new inode) or grow a file; it is open for writing until `close`.
    Write {
        path: String,
        size: u64,
    },
    Close(String),
    Rename(String, String),
    Remove(String),
    Mkdir(DirSpec),
    /// Remove a folder and what is in it; its watch goes with it.
    Rmdir(String),
    /// The next N durability barriers fail.
    FlushFails(u32),
    /// From now on the store works, is broken, or is broken while its probe says it works.
    Store(StoreMode),
    Notify(Note),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoreMode {
    #[default]
    Ok,
    Broken,
    Lying,
}

/// What inotify reports, as notify's inotify backend turns it into events.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Note {
    Create(String),
    Modify(String),
    CloseWrite(String),
    RenameFrom(String),
    RenameTo(String),
    RenameBoth(String, String),
    RemoveFile(String),
    RemoveFolder(String),
    Overflow,
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    actions: Vec<String>,
    #[serde(default)]
    settling: Vec<String>,
    #[serde(default)]
    camera: Vec<String>,
    #[serde(default)]
    stored: Vec<String>,
    /// Files waiting for another try, with the tries that failed ("Camera/IMG_1.jpg 3").
    #[serde(default)]
    waiting: Vec<String>,
    /// Moves into the store the simulated agent tried, per file (compared when given).
    moves_tried: Option<BTreeMap<String, u32>>,
    report: Option<BTreeMap<String, u64>>,
}

fn abs(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn rel(p: &Path) -> String {
    p.strip_prefix(ROOT).unwrap_or(p).display().to_string()
}

#[derive(Debug, Clone, Copy)]
struct SimFile {
    ino: u64,
    size: u64,
    mtime: i64,
    writing: bool,
}

/// The simulated phone: disk, live watches, ledger and store.
#[derive(Debug, Default)]
struct Sim {
    now: i64,
    dirs: BTreeMap<PathBuf, u64>,
    files: BTreeMap<PathBuf, SimFile>,
    live_watches: BTreeSet<PathBuf>,
    next_ino: u64,
    session: bool,
    /// (path, size, mtime) the ledger has settled.
    settled: BTreeSet<(PathBuf, u64, i64)>,
    stored: Vec<String>,
    store: StoreMode,
    moves_tried: BTreeMap<String, u32>,
    flush_fails: u32,
    last_flush_failed: bool,
    cameras: Vec<PathBuf>,
}

impl Sim {
    fn ino(&mut self) -> u64 {
        self.next_ino += 1;
        self.next_ino
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write { path, size } => {
                let ino = match self.files.get(&abs(path)) {
                    Some(f) => f.ino,
                    None => self.ino(),
                };
                self.files.insert(abs(path), SimFile { ino, size: *size, mtime: self.now, writing: true });
            }
            Op::Close(path) => {
                if let Some(f) = self.files.get_mut(&abs(path)) {
                    f.writing = false;
                }
            }
            Op::Rename(from, to) => {
                if let Some(f) = self.files.remove(&abs(from)) {
                    self.files.insert(abs(to), f);
                }
            }
            Op::Remove(path) => {
                self.files.remove(&abs(path));
            }
            Op::Mkdir(d) => {
                let ino = d.ino.unwrap_or_else(|| self.ino());
                self.dirs.insert(abs(&d.path), ino);
            }
            Op::Rmdir(path) => {
                let dir = abs(path);
                self.dirs.remove(&dir);
                self.files.retain(|p, _| p.parent() != Some(&dir));
                self.live_watches.remove(&dir);
            }
            Op::FlushFails(n) => self.flush_fails = *n,
            Op::Store(mode) => self.store = *mode,
            Op::Notify(_) => {}
        }
    }

    fn id(f: &SimFile) -> FileId {
        FileId { dev: 1, ino: f.ino, size: f.size, mtime_ns: f.mtime * 1_000_000, mode: 0o100_644 }
    }
}

/// The event notify would deliver, if its folder is watched now.
fn notify_event(sim: &Sim, note: &Note) -> Option<notify::Event> {
    use notify::Event;
    let watched = |p: &PathBuf| p.parent().is_some_and(|d| sim.live_watches.contains(d));
    let file = |kind: EventKind, p: &str| Some(abs(p)).filter(watched).map(|p| Event::new(kind).add_path(p));
    match note {
        Note::Create(p) => file(EventKind::Create(CreateKind::File), p),
        Note::Modify(p) => file(EventKind::Modify(ModifyKind::Any), p),
        Note::CloseWrite(p) => file(EventKind::Access(AccessKind::Close(AccessMode::Write)), p),
        Note::RenameFrom(p) => file(EventKind::Modify(ModifyKind::Name(RenameMode::From)), p),
        Note::RenameTo(p) => file(EventKind::Modify(ModifyKind::Name(RenameMode::To)), p),
        Note::RenameBoth(a, b) => file(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), b).map(|e| {
            let mut e = e;
            e.paths.insert(0, abs(a));
            e
        }),
        Note::RemoveFile(p) => file(EventKind::Remove(RemoveKind::File), p),
        Note::RemoveFolder(p) => Some(Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(abs(p))),
        Note::Overflow => Some(Event::new(EventKind::Other).set_flag(Flag::Rescan)),
        Note::Error => None,
    }
}

struct SimClock(Rc<RefCell<Sim>>);

impl Clock for SimClock {
    fn now(&self) -> Time {
        Duration::from_millis(self.0.borrow().now.max(0) as u64)
    }
}

struct SimWatches<'a>(&'a mut Sim);

impl Watches for SimWatches<'_> {
    fn identity(&self, dir: &Path) -> Option<(u64, u64)> {
        self.0.dirs.get(dir).map(|ino| (1, *ino))
    }

    fn watch(&mut self, dir: &Path) -> Result<(), String> {
        if !self.0.dirs.contains_key(dir) {
            return Err("No such file or directory".into());
        }
        self.0.live_watches.insert(dir.to_path_buf());
        Ok(())
    }

    fn unwatch(&mut self, dir: &Path) {
        self.0.live_watches.remove(dir);
    }
}

struct SimEffects {
    sim: Rc<RefCell<Sim>>,
    folders: Folders,
}

impl Effects for SimEffects {
    fn handle(&mut self, path: &Path) -> Handling {
        let mut sim = self.sim.borrow_mut();
        let Some(f) = sim.files.get(path).copied() else { return Handling::Done };
        if sim.settled.contains(&(path.to_path_buf(), f.size, f.mtime)) {
            return Handling::Done;
        }
        if f.writing {
            return Handling::Settle;
        }
        if sim.session {
            *sim.moves_tried.entry(rel(path)).or_default() += 1;
            if sim.store != StoreMode::Ok {
                return Handling::Store;
            }
            sim.files.remove(path);
            let entry = format!("{} {}", rel(path), f.size);
            sim.stored.push(entry);
            return Handling::Stored;
        }
        sim.settled.insert((path.to_path_buf(), f.size, f.mtime));
        Handling::Done
    }

    fn unsettled(&mut self) -> Option<Vec<Unsettled>> {
        let sim = self.sim.borrow();
        let out = sim
            .files
            .iter()
            .filter(|(p, f)| {
                p.parent().is_some_and(|d| sim.cameras.iter().any(|c| c == d))
                    && p.file_name().is_some_and(media::is_candidate_name)
                    && !sim.settled.contains(&(p.to_path_buf(), f.size, f.mtime))
            })
            .map(|(p, f)| Unsettled {
                path: p.clone(),
                age: u64::try_from(sim.now - f.mtime).ok().map(Duration::from_millis),
            })
            .collect();
        Some(out)
    }

    fn probe(&mut self, path: &Path) -> Option<FileId> {
        self.sim.borrow().files.get(path).map(Sim::id)
    }

    fn refresh_folders(&mut self, forget: bool) -> bool {
        if forget {
            self.folders.forget_watches();
        }
        let mut sim = self.sim.borrow_mut();
        self.folders.refresh(&mut SimWatches(&mut sim))
    }

    fn flush(&mut self) -> bool {
        let mut sim = self.sim.borrow_mut();
        sim.last_flush_failed = sim.flush_fails > 0;
        sim.flush_fails = sim.flush_fails.saturating_sub(1);
        !sim.last_flush_failed
    }

    fn store_ready(&mut self, _waiting: &[PathBuf]) -> bool {
        self.sim.borrow().store != StoreMode::Broken
    }

    fn warn_overdue(&mut self) {}
}

/// What one case run produced.
struct Run {
    actions: Vec<String>,
    settling: Vec<String>,
    camera: Vec<String>,
    stored: Vec<String>,
    waiting: Vec<String>,
    moves_tried: BTreeMap<String, u32>,
    report: BTreeMap<String, u64>,
    /// Batches that ended with the lane empty and files handled but not flushed.
    unflushed_batches: Vec<u64>,
}

struct Harness {
    sim: Rc<RefCell<Sim>>,
    driver: Driver<SimEffects, SimClock>,
    collector: Collector,
    lane: Receiver<(PathBuf, Trigger)>,
    control: Receiver<()>,
    unflushed_batches: Vec<u64>,
}

impl Harness {
    fn new(case: &Case) -> Harness {
        let cameras: Vec<PathBuf> = case.cameras.iter().map(|c| abs(c)).collect();
        let mut sim = Sim { session: case.state.session, cameras: cameras.clone(), ..Sim::default() };
        let dirs = case.state.folders.as_ref();
        let default_dirs: Vec<DirSpec> = case.cameras.iter().map(|c| DirSpec { path: c.clone(), ino: None }).collect();
        for d in dirs.unwrap_or(&default_dirs) {
            sim.apply(&Op::Mkdir(DirSpec { path: d.path.clone(), ino: d.ino }));
        }
        for f in &case.state.files {
            let ino = sim.ino();
            sim.files.insert(abs(&f.path), SimFile { ino, size: f.size, mtime: f.mtime, writing: f.writing });
        }
        let sim = Rc::new(RefCell::new(sim));
        let (lane_tx, lane) = bounded(case.lane_capacity.max(1));
        let (ctl_tx, control) = unbounded();
        let shared = Arc::new(Shared::default());
        let collector = Collector { lane: lane_tx, control: ctl_tx, shared: shared.clone(), cameras: cameras.clone() };
        let timing = Timing {
            settle: Duration::from_millis(case.settle_ms),
            reconcile_interval: Duration::from_millis(case.reconcile_interval_ms),
            folder_check: FOLDER_CHECK,
            retry_first: Duration::from_millis(case.retry_first_ms),
            retry_cap: Duration::from_millis(case.retry_cap_ms),
            probe_first: Duration::from_millis(case.probe_first_ms),
            probe_cap: Duration::from_millis(case.probe_cap_ms),
        };
        let effects = SimEffects { sim: sim.clone(), folders: Folders::new(&cameras) };
        let mut driver = Driver::new(Machine::new(timing), effects, SimClock(sim.clone()), shared);
        driver.log = Some(Vec::new());
        Harness { sim, driver, collector, lane, control, unflushed_batches: Vec::new() }
    }

    fn step(&mut self, input: Input) {
        self.driver.step(input, &self.lane);
        self.after_batch();
    }

    /// The durability property: a batch that drained the lane leaves nothing unflushed.
    fn after_batch(&mut self) {
        let sim = self.sim.borrow();
        if self.lane.is_empty() && self.driver.machine.unflushed() && !sim.last_flush_failed {
            self.unflushed_batches.push(sim.now as u64);
        }
    }

    /// Let the clock run to `t`, waking at each deadline before it.
    fn advance(&mut self, t: u64) {
        for _ in 0..10_000 {
            match self.driver.machine.next_deadline() {
                Some(d) if (d.as_millis() as u64) < t => {
                    self.sim.borrow_mut().now = d.as_millis() as i64;
                    self.step(Input::Tick);
                }
                _ => break,
            }
        }
        self.sim.borrow_mut().now = t as i64;
    }

    /// What the real loop's `select!` does with whatever is queued.
    fn pump(&mut self) {
        loop {
            if self.control.try_recv().is_ok() {
                self.driver.rescan(&self.lane);
                self.after_batch();
            } else if let Ok((p, t)) = self.lane.try_recv() {
                self.step(Input::File(p, t));
            } else {
                break;
            }
        }
    }

    fn run(mut self, case: &Case) -> Run {
        self.step(Input::Start);
        let mut i = 0;
        while i < case.events.len() {
            let at = case.events[i].at;
            self.advance(at);
            while i < case.events.len() && case.events[i].at == at {
                self.event(&case.events[i].op);
                i += 1;
            }
            self.pump();
        }
        self.advance(case.until);
        self.driver.feed(Input::Stop);
        self.finish(case)
    }

    fn event(&mut self, op: &Op) {
        let Op::Notify(note) = op else {
            self.sim.borrow_mut().apply(op);
            return;
        };
        if let Note::Error = note {
            self.collector.handle_event(Err(notify::Error::generic("simulated watcher error")));
        } else if let Some(e) = notify_event(&self.sim.borrow(), note) {
            self.collector.handle_event(Ok(e));
        }
    }

    fn finish(self, case: &Case) -> Run {
        let log = self.driver.log.clone().unwrap_or_default();
        let actions = log
            .iter()
            .filter(|(_, a)| !case.ignore.iter().any(|name| a.to_string().split(' ').next() == Some(name)))
            .map(|(t, a)| format!("{} {}", t.as_millis(), a).replace(&format!("{ROOT}/"), ""))
            .collect();
        let settling = self.driver.machine.settling().map(|p| rel(p)).collect();
        let waiting = self.driver.machine.waiting().map(|(p, tries)| format!("{} {tries}", rel(p))).collect();
        let sim = self.sim.borrow();
        let camera = sim
            .files
            .keys()
            .filter(|p| p.parent().is_some_and(|d| sim.cameras.iter().any(|c| c == d)))
            .map(|p| rel(p))
            .collect();
        let r = super::report(self.driver.machine.counts(), &self.collector.shared);
        let report = serde_json::to_value(&r).expect("report serialises");
        let report = serde_json::from_value(report).expect("report is a map of counters");
        let (stored, moves_tried) = (sim.stored.clone(), sim.moves_tried.clone());
        let unflushed_batches = self.unflushed_batches;
        Run { actions, settling, camera, stored, waiting, moves_tried, report, unflushed_batches }
    }
}

/// The differences between what a case expects and what ran, as lines.
fn compare(case: &Case, run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    if run.actions != case.expected.actions {
        out.push(format!(
            "actions differ:\n    expected: {:#?}\n    actual:   {:#?}",
            case.expected.actions, run.actions
        ));
    }
    let mut check = |what: &str, want: &Vec<String>, got: &Vec<String>| {
        if want != got {
            out.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
    };
    check("settling", &case.expected.settling, &run.settling);
    check("camera", &case.expected.camera, &run.camera);
    check("stored", &case.expected.stored, &run.stored);
    check("waiting", &case.expected.waiting, &run.waiting);
    if let Some(want) = case.expected.moves_tried.as_ref().filter(|w| *w != &run.moves_tried) {
        out.push(format!("moves_tried: expected {want:?}, got {:?}", run.moves_tried));
    }
    for (k, want) in case.expected.report.iter().flatten() {
        let got = run.report.get(k);
        if got != Some(want) {
            out.push(format!("report.{k}: expected {want}, got {got:?}"));
        }
    }
    if !run.unflushed_batches.is_empty() {
        out.push(format!("batches ended without the durability barrier at {:?} ms", run.unflushed_batches));
    }
    match run.actions.last() {
        Some(last) if last.ends_with(" flush") => {}
        other => out.push(format!("the run does not end with the durability barrier (last: {other:?})")),
    }
    out
}

#[test]
fn every_watch_case_file_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/watch/test_cases");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the case folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "only {} cases in {}", names.len(), dir.display());
    let mut failed = Vec::new();
    for path in &names {
        let name = path.file_stem().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).expect("read case");
        let case: Case = match serde_json::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                failed.push(format!("{name}: cannot parse: {e}"));
                continue;
            }
        };
        let run = Harness::new(&case).run(&case);
        let problems = compare(&case, &run);
        if !problems.is_empty() {
            failed.push(format!("{name} ({}):\n  {}", case.about, problems.join("\n  ")));
        }
    }
    assert!(failed.is_empty(), "{} of {} watch cases failed:\n{}", failed.len(), names.len(), failed.join("\n\n"));
}
