//! The storm (GitHub issue 5, part 2): thousands of photos written Android-style (`.pending-…`
//! file, fsync, rename) as fast as the disk allows into a camera folder that the real
//! `fotovakt watch` watches. Afterwards: every photo decided (kept in place with a ledger item,
//! or quarantined), none missed, `verify` clean, and what the agent's JSON log says about
//! rescans and inotify queue overflows.
//!
//! With `overflow`, inotify's queue is made to overflow for certain: as root,
//! `fs.inotify.max_queued_events` is lowered while the agent creates its inotify instance (the
//! kernel takes the limit at `inotify_init`, so the machine-wide value is restored as soon as
//! the agent is watching), and the agent process is frozen with SIGSTOP, as Android freezes a
//! cached app, while the first `hold` photos land.
//!
//! Decisions are deterministic without the model: a photo with EXIF GPS inside the work site
//! is quarantined, every other photo is kept (no session, no duty hours).
//!
//! [`run_beside`] runs something else against the same store while the photos arrive (the
//! read-only commands, releases), and lets the test pace the writers.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fotovakt::sample::SamplePhoto;

use crate::common::Phone;

const SITE: (f64, f64) = (69.6617, 30.1271);
const QUEUE_LIMIT: &str = "/proc/sys/fs/inotify/max_queued_events";

/// Lowers `fs.inotify.max_queued_events` (machine-wide!) and restores it when dropped, also
/// on a panic.
pub struct QueueLimit {
    old: String,
}

impl QueueLimit {
    /// Needs root; `Err` says why it cannot.
    pub fn lower(to: u32) -> Result<QueueLimit, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!("not root: cannot lower {QUEUE_LIMIT}"));
        }
        let old = std::fs::read_to_string(QUEUE_LIMIT).map_err(|e| format!("{QUEUE_LIMIT}: {e}"))?;
        std::fs::write(QUEUE_LIMIT, to.to_string()).map_err(|e| format!("{QUEUE_LIMIT}: {e}"))?;
        Ok(QueueLimit { old: old.trim().to_string() })
    }
}

impl Drop for QueueLimit {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(QUEUE_LIMIT, &self.old) {
            eprintln!("WARNING: could not restore {QUEUE_LIMIT} to {}: {e}", self.old);
        }
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Storm {
    pub photos: usize,
    /// Writer threads.
    pub writers: usize,
    /// Force an inotify queue overflow (root only).
    pub overflow: bool,
    /// With `overflow`: photos written while the agent is frozen.
    pub hold: usize,
    /// With `overflow`: the queue limit while the agent starts.
    pub queue_limit: u32,
    /// Camera folder on the MediaProvider-like FUSE filesystem (`tests/common/mediafs/`), the
    /// store on disk: every quarantine is the cross-filesystem copy path.
    pub mediafs: bool,
}

/// What happened.
#[derive(Debug, Default)]
pub struct StormResult {
    pub photos: usize,
    pub quarantined: usize,
    pub kept: usize,
    /// Quarantined, then released by an officer (only beside [`run_beside`]'s releases).
    pub released: usize,
    /// Photos with no kept/quarantined ledger item.
    pub missed: usize,
    /// Photos decided the other way than their GPS says, or not where their item says.
    pub wrong: Vec<String>,
    pub write_s: f64,
    /// From the last write to every photo decided.
    pub drain_s: f64,
    /// From the first write to every photo decided.
    pub total_s: f64,
    pub peak_rss_kb: u64,
    /// `rescan requested` lines in the agent's JSON log.
    pub rescans_logged: usize,
    /// The largest `overflows` total those lines carry.
    pub overflows_logged: u64,
    /// The `watch` command's JSON report.
    pub report: serde_json::Value,
    pub verify_problems: Vec<String>,
}

impl StormResult {
    pub fn summary(&self, s: &Storm) -> String {
        format!(
            "storm{}{}: photos={} quarantined={} kept={} released={} missed={} wrong={} write={:.1}s ({:.0} photos/s) \
             drain(last write→all decided)={:.2}s total(first write→all decided)={:.1}s ({:.0} photos/s) \
             peak_rss={:.1}MB rescans_logged={} overflows={} lane_full={} report={}",
            if s.overflow { " (inotify overflow forced)" } else { "" },
            if s.mediafs { " (camera on mediafs)" } else { "" },
            self.photos,
            self.quarantined,
            self.kept,
            self.released,
            self.missed,
            self.wrong.len(),
            self.write_s,
            self.photos as f64 / self.write_s.max(1e-9),
            self.drain_s,
            self.total_s,
            self.photos as f64 / self.total_s.max(1e-9),
            self.peak_rss_kb as f64 / 1024.0,
            self.rescans_logged,
            self.overflows_logged,
            self.report["lane_full"],
            self.report,
        )
    }
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn decided_count(db: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    // Case material by its item; the officer's own photos by their keyed records (no path).
    conn.query_row(
        "SELECT (SELECT count(DISTINCT original_path) FROM items WHERE state IN ('kept', 'quarantined', 'released')) \
         + (SELECT count(*) FROM personal WHERE state = 'kept')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
    .unwrap_or(0)
}

fn wait_for(log: &Path, needle: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if std::fs::read_to_string(log).unwrap_or_default().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A photo of the storm: its name, its bytes, and whether its GPS is in the work site.
type Shot = (String, Vec<u8>, bool);

/// The storm's photos; every other one shot at the work site.
fn shots(n: usize) -> Vec<Shot> {
    (0..n)
        .map(|i| {
            let at_site = i % 2 == 0;
            let bytes = SamplePhoto {
                width: 160,
                height: 120,
                seed: 1_000_000 + i as u64,
                gps: at_site.then_some(SITE),
                quality: 85,
                ..SamplePhoto::default()
            }
            .jpeg();
            (format!("IMG_20261123_{i:06}.jpg"), bytes, at_site)
        })
        .collect()
}

/// Run one storm against the real binary. `Err` only when it could not be set up.
pub fn run(s: &Storm) -> Result<StormResult, String> {
    run_beside(s, &|_| {}, |_, _| ()).map(|(r, ())| r)
}

/// [`run`], with `beside` running on its own thread from the moment the agent watches until it
/// returns, while the writers write (it gets the phone and the config file, for commands of
/// its own); each writer calls `pace(i)` before it writes photo `i`. The storm's checks run
/// once both are done.
pub fn run_beside<T: Send>(
    s: &Storm,
    pace: &(dyn Fn(usize) + Sync),
    beside: impl FnOnce(&Phone, &Path) -> T + Send,
) -> Result<(StormResult, T), String> {
    // Field order matters on drop: unmount before the temporary tree goes.
    let (_fs, phone) = if s.mediafs {
        if let Some(why) = crate::mediafs::MediaFs::unavailable() {
            return Err(format!("mediafs: {why}"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (b, m) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir_all(&b).and_then(|_| std::fs::create_dir_all(&m)).map_err(|e| e.to_string())?;
        let fs = crate::mediafs::MediaFs::mount(&b, &m).map_err(|e| format!("mount mediafs: {e}"))?;
        let camera = fs.mountpoint.join("DCIM/Camera");
        std::fs::create_dir_all(&camera).map_err(|e| e.to_string())?;
        let store = dir.path().join("private/store");
        (Some(fs), Phone { dir, camera, store })
    } else {
        (None, Phone::new())
    };
    let cfg = phone.dir.path().join("storm.toml");
    std::fs::write(
        &cfg,
        format!(
            "store = {:?}\ncameras = [{:?}]\n\n[[work_sites]]\nname = \"Storskog\"\nlat = {}\nlon = {}\nradius_m = 500\n\n\
             [classifier]\nenabled = false\n",
            phone.store, phone.camera, SITE.0, SITE.1
        ),
    )
    .map_err(|e| e.to_string())?;
    // Every photo made first, so the writers only write.
    let photos = shots(s.photos);
    let log = phone.dir.path().join("agent.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fotovakt"));
    cmd.arg("--config").arg(&cfg).arg("--log-json").arg("watch");
    cmd.env_remove("FOTOVAKT_CONFIG").env_remove("FOTOVAKT_FAULT").env("FOTOVAKT_LOG", "fotovakt=info");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
    let guard = if s.overflow { Some(QueueLimit::lower(s.queue_limit)?) } else { None };
    let mut child = cmd.spawn().map_err(|e| format!("spawn watch: {e}"))?;
    let watching = wait_for(&log, "watching", Duration::from_secs(60));
    // The agent's inotify instance has its limit now; give the machine its value back.
    drop(guard);
    if !watching {
        let _ = child.kill();
        return Err(format!("watch did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    }
    let pid = child.id();
    let camera = phone.camera.clone();
    let t0 = Instant::now();
    let mut rest: &[Shot] = &photos;
    if s.overflow && s.hold > 0 {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        let (held, r) = photos.split_at(s.hold.min(photos.len()));
        for (name, bytes, _) in held {
            fotovakt::sample::write_like_android(&camera, name, bytes).map_err(|e| e.to_string())?;
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        rest = r;
    }
    let offset = photos.len() - rest.len();
    let (last_write, beside_out) = std::thread::scope(|scope| {
        let (phone, cfg) = (&phone, &cfg);
        let beside = scope.spawn(move || beside(phone, cfg));
        let handles: Vec<_> = (0..s.writers.max(1))
            .map(|w| {
                let camera = &camera;
                let mine: Vec<(usize, &Shot)> = rest.iter().enumerate().skip(w).step_by(s.writers.max(1)).collect();
                scope.spawn(move || {
                    for (i, (name, bytes, _)) in mine {
                        pace(offset + i);
                        fotovakt::sample::write_like_android(camera, name, bytes).expect("write photo");
                    }
                    Instant::now()
                })
            })
            .collect();
        let last = handles.into_iter().map(|h| h.join().expect("writer")).max().unwrap_or_else(Instant::now);
        (last, beside.join().expect("beside the storm"))
    });
    let db = std::fs::canonicalize(&phone.store).unwrap_or(phone.store.clone()).join("ledger.sqlite");
    // A generous limit, far above any drain seen, so a stall ends as "missed" and not a hang.
    let end = Instant::now() + Duration::from_secs(120) + Duration::from_millis(20 * s.photos as u64);
    let mut done_at = None;
    while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
        if decided_count(&db) >= s.photos {
            done_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut r = StormResult { photos: s.photos, peak_rss_kb: vm_hwm_kb(pid), ..StormResult::default() };
    r.write_s = (last_write - t0).as_secs_f64();
    let done = done_at.unwrap_or_else(Instant::now);
    r.drain_s = done.saturating_duration_since(last_write).as_secs_f64();
    r.total_s = (done - t0).as_secs_f64();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().map_err(|e| e.to_string())?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("watch exited with {status:?}"));
    }
    r.report = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
    for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
        if line.contains("rescan requested") {
            r.rescans_logged += 1;
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            r.overflows_logged = r.overflows_logged.max(v["fields"]["overflows"].as_u64().unwrap_or(0));
        }
    }
    check(&phone, &cfg, &photos, &mut r);
    Ok((r, beside_out))
}

/// Every photo decided, and where its decision says.
fn check(phone: &Phone, cfg: &Path, photos: &[Shot], r: &mut StormResult) {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fotovakt"))
            .arg("--config")
            .arg(cfg)
            .args(args)
            .env_remove("FOTOVAKT_CONFIG")
            .output()
            .expect("run fotovakt")
    };
    let list = run(&["list", "--all", "--json"]);
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
    let mut by_name: std::collections::HashMap<String, (String, String)> = std::collections::HashMap::new();
    // A photo decided as the officer's own has no item (a keyed record only): it is decided
    // when it is at its path and not pending.
    let pending: Vec<String> = serde_json::from_slice(&run(&["pending", "--json"]).stdout).unwrap_or_default();
    for (name, bytes, _) in photos {
        if phone.camera.join(name).exists() && !pending.iter().any(|p| p.ends_with(&format!("/{name}"))) {
            use sha2::Digest;
            by_name.insert(name.clone(), ("kept".into(), hex::encode(sha2::Sha256::digest(bytes))));
        }
    }
    for i in items.as_array().into_iter().flatten() {
        let state = i["state"].as_str().unwrap_or_default().to_string();
        // Case material (quarantined, or released by an officer beside the storm); a kept
        // photo has no item.
        if !["kept", "quarantined", "released"].contains(&state.as_str()) {
            continue;
        }
        let name = PathBuf::from(i["original_path"].as_str().unwrap_or_default())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        by_name.insert(name, (state, i["sha256"].as_str().unwrap_or_default().to_string()));
    }
    for (name, bytes, at_site) in photos {
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        let here = phone.camera.join(name).exists();
        match by_name.get(name) {
            None => r.missed += 1,
            Some((state, item_sha)) => {
                let ok = item_sha == &sha
                    && match state.as_str() {
                        "quarantined" => *at_site && !here,
                        "released" => *at_site && here,
                        _ => !*at_site && here,
                    };
                match state.as_str() {
                    "quarantined" => r.quarantined += 1,
                    "released" => r.released += 1,
                    _ => r.kept += 1,
                }
                if !ok {
                    r.wrong.push(format!("{name}: {state}, at its path: {here}, work-site GPS: {at_site}"));
                }
            }
        }
    }
    let v = run(&["verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap_or_default();
    r.verify_problems = report["problems"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_else(|| vec![format!("verify --json gave no report: {}", String::from_utf8_lossy(&v.stderr))]);
    if report["files"].as_u64() != Some(r.quarantined as u64) {
        r.verify_problems
            .push(format!("verify checked {} stored files, {} quarantined", report["files"], r.quarantined));
    }
}
