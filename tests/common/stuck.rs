//! The stuck-store campaign (issue 23): the real `fotovakt watch` with 20 real JPEGs waiting
//! while its store cannot take them, for a set time, then the fault is lifted. Four faults,
//! each on its own store, run side by side:
//!
//! * `full-at-start`: the store is a tiny tmpfs filled to the last byte before `watch` starts
//!   (and before any store exists on it: the ledger cannot even be created);
//! * `full-while-running`: `watch` is running on the tmpfs when it is filled, then the photos
//!   arrive;
//! * `eio-everywhere`: the store is on `mediafs` and every write under it fails with `EIO`
//!   (data, fsync, new files and folders: the ledger too), injected while `watch` runs;
//! * `eio-on-files`: the same, but only under `objects/` and `tmp/`: the ledger can write,
//!   every copy fails (the case where each try used to add an item and three events).
//!
//! Every photo is decided "quarantine" (on duty all week, no classifier, unjudged photos on duty
//! are quarantined), so each must end in the store. After the fault time the fault is lifted
//! and the campaign checks: all photos quarantined, each exactly once and nowhere else, none
//! lost or changed meanwhile, `verify` clean, the ledger grew by a constant number of rows per
//! photo (every row a photo can leave: items, events, keyed records, journal rows and
//! corrections, counted in the ledger file itself), `watch` used under 5 % of one core meanwhile (utime + stime from
//! `/proc/<pid>/stat`), and the store's failure was said once. It needs root (tmpfs, FUSE);
//! it never skips.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fotovakt::sample::SamplePhoto;

use crate::mediafs::{MediaFs, Op, Options};

/// Photos waiting in the camera folder.
pub const PHOTOS: usize = 20;
/// Ledger rows a photo may add, on average: its item, `intake`, `stashed` (issue 25: it waits
/// out of sight in staging, recorded once per stash, not per try), `decided`, `quarantined`,
/// one `move_aborted` for the try that failed first, and room for one `move_rolled_back` where
/// a failing ledger could not record a try's end. Not per try. Keyed records (the officer's own
/// photos), journal rows and corrections count too: a case photo should leave none, and one
/// that did would be counted against this bound, not hidden from it.
pub const ROWS_PER_PHOTO: f64 = 7.0;
/// The most CPU `watch` may use while the store is down, in % of one core.
pub const CPU_LIMIT_PCT: f64 = 5.0;
/// How long the photos may take to be quarantined once the fault is lifted: the probe and
/// open backoff are capped at 30 s; the rest is a debug build's start and a shared machine.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(75);

/// The faults the campaign injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    FullAtStart,
    FullWhileRunning,
    EioEverywhere,
    EioOnFiles,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::FullAtStart, Fault::FullWhileRunning, Fault::EioEverywhere, Fault::EioOnFiles];

    pub fn name(self) -> &'static str {
        match self {
            Fault::FullAtStart => "full-at-start",
            Fault::FullWhileRunning => "full-while-running",
            Fault::EioEverywhere => "eio-everywhere",
            Fault::EioOnFiles => "eio-on-files",
        }
    }

    fn on_mediafs(self) -> bool {
        matches!(self, Fault::EioEverywhere | Fault::EioOnFiles)
    }
}

/// What one fault's run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub fault: &'static str,
    pub seconds: u64,
    pub photos: usize,
    pub quarantined: usize,
    /// Items and events in the ledger at the end (the store is new: all of them came with
    /// these photos).
    pub items: u64,
    pub events: u64,
    /// Every other row the photos left: keyed `personal` records, `moves` journal rows still
    /// open, `corrections` (none is expected).
    pub other_rows: u64,
    /// CPU `watch` used while the store was down, in % of one core, and in seconds.
    pub cpu_pct: f64,
    pub cpu_s: f64,
    /// Tries of waiting photos (`retries` in watch's report) and store outages.
    pub retries: u64,
    pub outages: u64,
    /// Tries to open the store (`full-at-start`).
    pub open_tries: u64,
    /// Fault lifted → every photo quarantined.
    pub recovery_s: f64,
    /// Lines that said the store failed (must be one).
    pub said: usize,
    pub problems: Vec<String>,
}

impl Figures {
    pub fn rows_per_photo(&self) -> f64 {
        (self.items + self.events + self.other_rows) as f64 / self.photos.max(1) as f64
    }

    pub fn line(&self) -> String {
        format!(
            "{:<19} {}s: quarantined {}/{}, ledger {} items + {} events + {} other = {:.2} rows/photo, watch CPU {:.2} % ({:.2} s), \
             retries {} ({:.1}/photo), outages {}, open tries {}, recovered in {:.1} s, said {}x, problems {}",
            self.fault,
            self.seconds,
            self.quarantined,
            self.photos,
            self.items,
            self.events,
            self.other_rows,
            self.rows_per_photo(),
            self.cpu_pct,
            self.cpu_s,
            self.retries,
            self.retries as f64 / self.photos.max(1) as f64,
            self.outages,
            self.open_tries,
            self.recovery_s,
            self.said,
            self.problems.len()
        )
    }
}

/// The most tries one photo can get in `secs` seconds of a store that stays down: its own
/// backoff (2 s doubling to 5 min: the watcher's `RETRY_FIRST`, `RETRY_CAP`) plus one try a
/// lying probe may let through per probe period (which backs off the same way).
pub fn max_tries(secs: u64) -> u64 {
    let (mut t, mut wait, mut n) = (0u64, 2u64, 1u64);
    while t + wait <= secs {
        t += wait;
        wait = (wait * 2).min(300);
        n += 1;
    }
    2 * n + 1
}

/// `secs` from `FOTOVAKT_STUCK_SECONDS`, else `default`.
pub fn seconds_from_env(default: u64) -> u64 {
    std::env::var("FOTOVAKT_STUCK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Run every fault side by side for `secs` seconds each; their figures, in [`Fault::ALL`] order.
pub fn run_all(secs: u64) -> Vec<Figures> {
    assert!(
        MediaFs::unavailable().is_none(),
        "the stuck-store campaign needs root and /dev/fuse (tmpfs and FUSE mounts): {:?}",
        MediaFs::unavailable()
    );
    let handles: Vec<_> = Fault::ALL.iter().map(|&f| std::thread::spawn(move || run(f, secs))).collect();
    handles.into_iter().map(|h| h.join().expect("a fault's run panicked")).collect()
}

/// One fault's rig: a camera folder on disk, the store on a tmpfs or a mediafs.
struct Rig {
    dir: tempfile::TempDir,
    camera: PathBuf,
    store: PathBuf,
    config: PathBuf,
    tmpfs: Option<PathBuf>,
    fs: Option<MediaFs>,
    log: PathBuf,
    photos: Vec<(String, Vec<u8>, String)>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.fs.take());
        if let Some(t) = &self.tmpfs {
            let _ = Command::new("umount").arg("-l").arg(t).status();
        }
    }
}

impl Rig {
    fn new(fault: Fault) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let camera = dir.path().join("DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera folder");
        let (tmpfs, fs, store_parent) = if fault.on_mediafs() {
            let (b, m) = (dir.path().join("backing"), dir.path().join("mnt"));
            std::fs::create_dir_all(&b).expect("backing");
            std::fs::create_dir_all(&m).expect("mount point");
            let fs = MediaFs::mount_with(&b, &m, Options { phone: false, power: None }).expect("mount mediafs");
            (None, Some(fs), m)
        } else {
            let t = dir.path().join("tiny");
            std::fs::create_dir_all(&t).expect("tmpfs dir");
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
                .arg(&t)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mounting a tmpfs at {} failed", t.display());
            (Some(t.clone()), None, t)
        };
        let config = dir.path().join("fotovakt.toml");
        std::fs::write(
            &config,
            "settle = \"1s\"\n[classifier]\nenabled = false\n[policy]\nunjudged_on_duty = \"quarantine\"\n\
             [duty]\nshifts = [{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], \
             start = \"00:00\", end = \"00:00\" }]\n",
        )
        .expect("config");
        let photos = (0..PHOTOS as u64)
            .map(|i| {
                let bytes = SamplePhoto { seed: 2300 + i, ..SamplePhoto::default() }.jpeg();
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                (format!("IMG_{i:04}.jpg"), bytes, sha)
            })
            .collect();
        let log = dir.path().join("watch.log");
        Rig { store: store_parent.join("store"), dir, camera, config, tmpfs, fs, log, photos }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fotovakt"));
        cmd.arg("--store").arg(&self.store).args(args);
        cmd.env("FOTOVAKT_CONFIG", &self.config).env("NO_COLOR", "1").env_remove("FOTOVAKT_LOG");
        cmd
    }

    fn watch(&self) -> Child {
        let log = std::fs::File::create(&self.log).expect("log");
        self.command(&["watch", "--camera"])
            .arg(&self.camera)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start watch")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        crate::common::wait_until(limit, || self.log().contains(needle))
    }

    fn write_photos(&self) {
        for (name, bytes, _) in &self.photos {
            fotovakt::sample::write_like_android(&self.camera, name, bytes).expect("write photo");
        }
    }

    /// Fill the tmpfs to the last byte.
    fn fill(&self) {
        let t = self.tmpfs.as_ref().expect("a tmpfs rig");
        let mut f = std::fs::File::create(t.join("filler")).expect("filler");
        for chunk in [1 << 20, 4096] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
    }

    fn inject(&self, fault: Fault) {
        let fs = self.fs.as_ref().expect("a mediafs rig");
        let under: &[&str] = match fault {
            Fault::EioEverywhere => &["store"],
            _ => &["store/objects", "store/tmp"],
        };
        for dir in under {
            fs.fail(Op::Write, Some(Path::new(dir)), libc::EIO);
            fs.fail(Op::Fsync, Some(Path::new(dir)), libc::EIO);
        }
    }

    fn lift(&self, fault: Fault) {
        match fault {
            Fault::FullAtStart | Fault::FullWhileRunning => {
                std::fs::remove_file(self.tmpfs.as_ref().expect("tmpfs").join("filler")).expect("free the space")
            }
            _ => self.fs.as_ref().expect("mediafs").clear_faults(),
        }
    }

    /// Every photo still at its path, or in staging under the name an open stash journal row
    /// gives (issue 25: a photo decided "quarantine" waits there, out of sight, for the store),
    /// with its bytes (nothing lost or changed while stuck).
    fn all_waiting(&self) -> Vec<String> {
        let mut out = Vec::new();
        let staged = self.staged_by_journal();
        for (name, bytes, _) in &self.photos {
            let at = self.camera.join(name);
            let at = match staged.iter().find(|(src, _)| src.file_name() == Some(std::ffi::OsStr::new(name))) {
                Some((_, dst)) if !at.exists() => dst.clone(),
                _ => at,
            };
            match std::fs::read(&at) {
                Ok(b) if &b == bytes => {}
                Ok(_) => out.push(format!("{name}: changed while the store was down")),
                Err(e) => out.push(format!(
                    "{name}: neither in the camera folder nor in staging under an open journal row while the store was down: {e}"
                )),
            }
        }
        out
    }

    /// The open stash rows of the ledger (read-only): (camera name, name in staging). None
    /// when the ledger cannot be read (it may not exist yet).
    fn staged_by_journal(&self) -> Vec<(PathBuf, PathBuf)> {
        use std::os::unix::ffi::OsStringExt;
        let path = |b: Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(b));
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let Ok(db) = rusqlite::Connection::open_with_flags(self.store.join("ledger.sqlite"), flags) else {
            return Vec::new();
        };
        db.prepare("SELECT src, dst FROM moves WHERE direction = 'stash'")
            .and_then(|mut st| st.query_map([], |r| Ok((path(r.get(0)?), path(r.get(1)?))))?.collect())
            .unwrap_or_default()
    }

    /// The photos' hashes found in the store's objects (each hashed from its bytes).
    fn stored_hashes(&self) -> Vec<String> {
        crate::common::files_under(&self.store.join("objects")).iter().map(|p| crate::common::sha256(p)).collect()
    }

    fn json(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let o = self.command(args).output().map_err(|e| e.to_string())?;
        serde_json::from_slice(&o.stdout).map_err(|e| {
            format!("{args:?}: {e}; stdout {} stderr {}", crate::common::stdout(&o), crate::common::stderr(&o))
        })
    }
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / tick
}

/// One fault, `secs` seconds of it.
pub fn run(fault: Fault, secs: u64) -> Figures {
    let rig = Rig::new(fault);
    let mut fig = Figures { fault: fault.name(), seconds: secs, photos: PHOTOS, ..Figures::default() };
    let mut watch = if fault == Fault::FullAtStart {
        rig.fill();
        rig.write_photos();
        rig.watch()
    } else {
        let w = rig.watch();
        let started = rig.wait_for_log("watching folder", Duration::from_secs(60));
        assert!(started, "{}: watch did not start:\n{}", fault.name(), rig.log());
        match fault {
            Fault::FullWhileRunning => rig.fill(),
            _ => rig.inject(fault),
        }
        rig.write_photos();
        w
    };
    let pid = watch.id();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    fig.cpu_s = cpu_seconds(pid) - cpu0;
    fig.cpu_pct = 100.0 * fig.cpu_s / t0.elapsed().as_secs_f64();
    if let Ok(Some(status)) = watch.try_wait() {
        fig.problems.push(format!("watch exited while the store was down: {status}"));
    }
    fig.problems.extend(rig.all_waiting());
    let lifted = Instant::now();
    rig.lift(fault);
    let want: Vec<&String> = rig.photos.iter().map(|(_, _, sha)| sha).collect();
    let mut done = false;
    while !done && lifted.elapsed() < RECOVERY_LIMIT {
        std::thread::sleep(Duration::from_millis(250));
        // Counting is cheap; hashing only once every photo could be there.
        let files = crate::common::files_under(&rig.store.join("objects")).len();
        done = files >= want.len() && {
            let stored = rig.stored_hashes();
            want.iter().all(|s| stored.contains(s))
        };
    }
    fig.recovery_s = lifted.elapsed().as_secs_f64();
    if !done {
        fig.problems
            .push(format!("not every photo was quarantined {} s after the fault was lifted", RECOVERY_LIMIT.as_secs()));
    }
    stop(&mut watch, &mut fig);
    check_after(&rig, fault, &mut fig);
    if !fig.problems.is_empty() {
        let log = rig.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        eprintln!("{}: watch's last log lines:\n{tail}", fault.name());
    }
    fig
}

/// SIGTERM `watch`, wait, and read its report.
fn stop(watch: &mut Child, fig: &mut Figures) {
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let mut out = String::new();
    if let Some(mut s) = watch.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    match watch.wait() {
        Ok(s) if s.success() => {}
        Ok(s) => fig.problems.push(format!("watch exited with {:?} (signal {:?})", s.code(), s.signal())),
        Err(e) => fig.problems.push(format!("waiting for watch: {e}")),
    }
    match serde_json::from_str::<serde_json::Value>(out.trim()) {
        Ok(r) => {
            fig.retries = r["retries"].as_u64().unwrap_or(0);
            fig.outages = r["store_outages"].as_u64().unwrap_or(0);
        }
        Err(e) => fig.problems.push(format!("watch's report is not JSON ({e}): {out:?}")),
    }
}

/// After the run: where every photo is, the ledger, `verify`, the log, the tries.
fn check_after(rig: &Rig, fault: Fault, fig: &mut Figures) {
    let stored = rig.stored_hashes();
    for (name, _, sha) in &rig.photos {
        let copies = stored.iter().filter(|h| *h == sha).count();
        let at_path = rig.camera.join(name).exists();
        if copies != 1 || at_path {
            fig.problems.push(format!("{name}: {copies} verified copies in the store, at its path: {at_path}"));
        }
    }
    fig.quarantined = rig.photos.iter().filter(|(_, _, sha)| stored.contains(sha)).count();
    match rig.json(&["list", "--all", "--json"]) {
        Ok(items) => {
            let items = items.as_array().cloned().unwrap_or_default();
            fig.items = items.len() as u64;
            let not_in_store = items.iter().filter(|i| i["state"] != "quarantined").count();
            if items.len() != PHOTOS || not_in_store > 0 {
                fig.problems.push(format!("{} items for {PHOTOS} photos, {not_in_store} not quarantined", items.len()));
            }
        }
        Err(e) => fig.problems.push(format!("list: {e}")),
    }
    match rig.json(&["verify", "--json"]) {
        Ok(v) => {
            fig.events = v["events"].as_u64().unwrap_or(0);
            if v["problems"].as_array().is_none_or(|p| !p.is_empty()) {
                fig.problems.push(format!("verify: {}", v["problems"]));
            }
        }
        Err(e) => fig.problems.push(format!("verify: {e}")),
    }
    match ledger_rows(&rig.store.join("ledger.sqlite")) {
        Ok(rows) => {
            if (rows.items, rows.events) != (fig.items, fig.events) {
                fig.problems.push(format!(
                    "the ledger file holds {} items and {} events; list and verify said {} and {}",
                    rows.items, rows.events, fig.items, fig.events
                ));
            }
            fig.items = fig.items.max(rows.items);
            fig.events = fig.events.max(rows.events);
            fig.other_rows = rows.personal + rows.moves + rows.corrections;
            if fig.other_rows > 0 {
                fig.problems.push(format!(
                    "case photos left {} keyed records, {} journal rows and {} corrections",
                    rows.personal, rows.moves, rows.corrections
                ));
            }
        }
        Err(e) => fig.problems.push(format!("reading the ledger's rows: {e}")),
    }
    if fig.rows_per_photo() > ROWS_PER_PHOTO {
        fig.problems.push(format!("{:.2} ledger rows per photo (at most {ROWS_PER_PHOTO})", fig.rows_per_photo()));
    }
    if fig.cpu_pct >= CPU_LIMIT_PCT {
        fig.problems.push(format!("watch used {:.2} % of a core while the store was down", fig.cpu_pct));
    }
    check_log(rig, fault, fig);
}

/// The rows of each table a photo can leave, read from the ledger file itself (read-only).
struct Rows {
    items: u64,
    events: u64,
    personal: u64,
    moves: u64,
    corrections: u64,
}

fn ledger_rows(db: &Path) -> rusqlite::Result<Rows> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    };
    Ok(Rows {
        items: count("items")?,
        events: count("events")?,
        personal: count("personal")?,
        moves: count("moves")?,
        corrections: count("corrections")?,
    })
}

/// Said once, tried a bounded number of times.
fn check_log(rig: &Rig, fault: Fault, fig: &mut Figures) {
    let log = rig.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    if fault == Fault::FullAtStart {
        fig.said = count("the store cannot be opened for writing");
        fig.open_tries = log
            .lines()
            .find(|l| l.contains("the store opened; watching"))
            .and_then(|l| l.rsplit("tries=").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        // The store could not be created while the disk was full: said only once it was.
        let created = log.find("created a new store");
        let opened = log.find("the store opened; watching");
        if created.is_none() || created < log.find("cannot be opened for writing") || opened.is_none() {
            fig.problems.push("\"created a new store\" missing or said before the store could be created".into());
        }
        if fig.open_tries < 3 {
            fig.problems.push(format!("the store was tried only {} times while the disk was full", fig.open_tries));
        }
    } else {
        fig.said = count("the store cannot take photos now");
        let back = count("the store takes photos again");
        if back != 1 {
            fig.problems.push(format!("\"the store takes photos again\" said {back} times"));
        }
        let per_photo = fig.retries / PHOTOS as u64 + 1;
        if fig.retries < 2 * PHOTOS as u64 || per_photo > max_tries(fig.seconds) {
            fig.problems.push(format!(
                "{} retries ({per_photo} tries per photo): the backoff should give between 3 and {} in {} s",
                fig.retries,
                max_tries(fig.seconds),
                fig.seconds
            ));
        }
    }
    if fig.said != 1 {
        fig.problems.push(format!("the store's failure was said {} times (once is right)", fig.said));
    }
}

/// The figures as a table, one fault a line.
pub fn table(figs: &[Figures]) -> String {
    let mut o = String::new();
    for f in figs {
        let _ = writeln!(o, "{}", f.line());
        for p in &f.problems {
            let _ = writeln!(o, "    PROBLEM: {p}");
        }
    }
    o
}
