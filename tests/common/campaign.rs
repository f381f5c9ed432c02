//! The crash campaign harness: drives the real `fotovakt` binary on a phone-like tree, kills
//! it with SIGKILL (at a named fault point via `FOTOVAKT_FAULT=name:n`, or at a random moment
//! from a seeded RNG), restarts it and checks the nothing-lost invariant after every kill.
//!
//! One *rig* is a camera folder plus a store, on the same filesystem or across two (store on
//! `/dev/shm` tmpfs, camera on disk). Decisions are deterministic without the model: a photo
//! with EXIF GPS inside the configured work site is quarantined; any other photo is
//! quarantined while a case session is open and kept while none is. Officers' `tag` (moves
//! in) and `release` (moves back out) are killed too.
//!
//! Every new photo goes out of sight first (issue 25): it is renamed into the staging folder
//! before it is judged, so kills land between the stash and every later step (`after_stash_journal`,
//! `after_stash`, the move's points, `before_return`, `after_return`), and inside the restart's
//! own return of a staged photo ([`fault_in_recovery`]).
//!
//! After every kill the harness first checks "never neither" (each photo has an intact copy
//! at its path, in staging under a name an open stash row gives, or in `objects/`), then restarts (`scan`, or `watch` until it is watching and
//! then SIGTERM plus a `scan`), then checks the full invariant: each photo the harness ever
//! wrote is at its original path (bytes and hash equal) XOR in the store as a quarantined
//! ledger item whose file hashes right; every store object belongs to a quarantined item; no
//! item is left `moving`/`releasing`; `verify --json` reports no problem; no staging or
//! partial file is left in the store, the staging folder or the camera folder. The first violation stops the
//! campaign with a reproducible description (seed, round, kill, history, file listing).
//!
//! **Power-cut mode** ([`Settings::power`], `tests/power_cut.rs`, `scripts/power-cut-campaign`):
//! the camera folder is on a phone-like `mediafs` and the store (its SQLite ledger, head file,
//! objects) on a plain pass-through `mediafs`, both in power-cut mode
//! (`tests/common/mediafs/power.rs`; each rig draws [`Model::Posix`] or [`Model::Journal`]).
//! After every kill (a fault point, a random moment during `watch` bursts, `scan`, `tag`,
//! `release`, `export`, `purge`), and again after a kill inside the restart's recovery, the
//! power is cut: both filesystems drop what was not durable and are mounted again. The
//! harness writes its photos as a camera app that fsyncs (file, then folder), so every photo
//! it wrote is owed. Besides the checks above, right after the cut the head file is compared
//! with the ledger's last event (read by a helper process: SQLite's `-shm` mmap must not fault
//! into this process's own FUSE daemon). A photo purged after an export is owed in the
//! package instead. Every failed check is a violation: there is no switch that counts a
//! known bug apart (the bugs these campaigns found are fixed, and each has a deterministic
//! test in `tests/power_cut.rs`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use fotovakt::sample::SamplePhoto;

use crate::common::{files_under, sha256, Phone};
use crate::mediafs::power::Model;
use crate::mediafs::{MediaFs, Options};

/// The work site of the rig's config; photos shot inside it are quarantined.
const SITE: (f64, f64) = (69.6617, 30.1271);

/// Fault points a move into the store reaches, per filesystem layout.
const IN_SAME_FS: &[&str] = &[
    "after_stash_journal",
    "after_stash",
    "before_lock",
    "before_journal",
    "after_journal",
    "after_rename",
    "before_commit",
    "after_commit",
    "before_return",
    "after_return",
];
const IN_CROSS_FS: &[&str] = fotovakt::fault::POINTS;
/// Fault points a release (move back out) reaches.
const OUT_SAME_FS: &[&str] = &["after_journal", "after_rename"];
const OUT_CROSS_FS: &[&str] = &["after_journal", "mid_copy", "after_copy_fsync", "after_rename", "before_unlink"];

/// SplitMix64: small, seedable, good enough to pick actions and delays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Campaign settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kills: u64,
    pub seed: u64,
    /// Rounds per rig before a fresh phone and store (bounds the cost of each check).
    pub rounds_per_rig: u64,
    /// Use a store on /dev/shm for every other rig (when /dev/shm exists).
    pub cross_fs: bool,
    /// Every rig's camera folder on the MediaProvider-like FUSE filesystem
    /// (`tests/common/mediafs/`), the store on disk: rename flags and links refused, every
    /// quarantine a cross-filesystem copy (`FOTOVAKT_CAMPAIGN_MEDIAFS=1`).
    pub mediafs: bool,
    /// Power-cut mode (see the module doc): `kills` counts power cuts.
    pub power: bool,
}

impl Settings {
    /// `FOTOVAKT_CAMPAIGN_KILLS` and `FOTOVAKT_CAMPAIGN_SEED` override the given defaults;
    /// without a seed the clock picks one (printed, so any run can be repeated).
    pub fn from_env(default_kills: u64) -> Settings {
        let kills = std::env::var("FOTOVAKT_CAMPAIGN_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_kills);
        let seed = std::env::var("FOTOVAKT_CAMPAIGN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
                % 1_000_000_007
        });
        let mediafs = std::env::var("FOTOVAKT_CAMPAIGN_MEDIAFS").is_ok_and(|v| v == "1");
        Settings { kills, seed, rounds_per_rig: 25, cross_fs: Path::new("/dev/shm").is_dir(), mediafs, power: false }
    }
}

/// What a campaign did.
#[derive(Debug, Default)]
pub struct Tally {
    pub kills: u64,
    /// Kills by mode and point, e.g. `fault in after_rename`, `random watch-burst`.
    pub by: BTreeMap<String, u64>,
    /// Runs that finished before the kill landed (a fault point not reached, a command done
    /// before the random moment): checked like the others, not counted as kills.
    pub not_killed: u64,
    pub rounds: u64,
    pub rigs: u64,
    pub photos: u64,
    pub moves_in: u64,
    pub moves_out: u64,
    pub violations: u64,
    /// Power cuts, by what was running (`cut after fault in mid_copy`, `cut idle`, …).
    pub cuts: u64,
}

impl Tally {
    fn kill(&mut self, what: String) {
        self.kills += 1;
        *self.by.entry(what).or_default() += 1;
    }

    fn cut(&mut self, what: &str) {
        self.cuts += 1;
        *self.by.entry(format!("cut: {what}")).or_default() += 1;
    }

    /// The power-cut campaign's summary; its last line is exactly
    /// `power cuts: N, photos: M, violations: V`.
    pub fn power_summary(&self, seed: u64, elapsed: Duration) -> String {
        let by: Vec<String> = self.by.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "power-cut campaign: seed={seed} rounds={} rigs={} kills={} moves-in={} moves-out={} \
             elapsed={:.1}s\n  by: {}\npower cuts: {}, photos: {}, violations: {}",
            self.rounds,
            self.rigs,
            self.kills,
            self.moves_in,
            self.moves_out,
            elapsed.as_secs_f64(),
            by.join(", "),
            self.cuts,
            self.photos,
            self.violations
        )
    }

    /// The summary line scripts and the README quote.
    pub fn summary(&self, seed: u64, elapsed: Duration) -> String {
        let fault: u64 = self.by.iter().filter(|(k, _)| k.starts_with("fault")).map(|(_, v)| v).sum();
        let random: u64 = self.by.iter().filter(|(k, _)| k.starts_with("random")).map(|(_, v)| v).sum();
        let by: Vec<String> = self.by.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "crash campaign: seed={seed} kills={} (fault-point {fault}, random {random}) violations={} photos={} \
             rounds={} rigs={} not-killed={} elapsed={:.1}s\n  by mode/point: {}",
            self.kills,
            self.violations,
            self.photos,
            self.rounds,
            self.rigs,
            self.not_killed,
            elapsed.as_secs_f64(),
            by.join(", ")
        )
    }
}

/// One photo the harness wrote: its name in the camera folder and its SHA-256.
#[derive(Debug, Clone)]
struct Photo {
    name: String,
    sha: String,
}

/// A phone plus a store, and everything the harness wrote into it.
struct Rig {
    /// Declared before `phone`: unmounted before the temporary tree is removed.
    fs: Option<MediaFs>,
    /// Power-cut mode: the filesystem the store is on.
    store_fs: Option<MediaFs>,
    power: Option<Model>,
    /// Power-cut mode: where export packages go (on disk, not cut), and the SHA-256 of every
    /// file a finished export wrote.
    packages: PathBuf,
    exported: std::collections::HashSet<String>,
    phone: Phone,
    /// The staging folder the agent picks for this rig's camera folder.
    staging: PathBuf,
    cross_fs: bool,
    cfg: PathBuf,
    photos: Vec<Photo>,
    next_seed: u64,
    session_open: bool,
    history: Vec<String>,
    last_log: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.cross_fs {
            let _ = std::fs::remove_dir_all(&self.phone.store);
        }
    }
}

/// A ledger item as `list --all --json` prints it (the fields the checks need).
#[derive(Debug, Clone)]
struct ItemRow {
    id: i64,
    sha: String,
    state: String,
    original_path: String,
    store_name: Option<String>,
}

impl Rig {
    fn new(cross_fs: bool, mediafs: bool, power: Option<Model>, seed_base: u64) -> Rig {
        let mut store_fs = None;
        let (fs, phone, cross_fs) = if let Some(model) = power {
            let dir = tempfile::tempdir().expect("tempdir");
            let p = dir.path();
            // The camera folder and the store's parent exist before the first mount: durable.
            for d in ["sdcard-backing/DCIM/Camera", "sdcard", "data-backing", "data"] {
                std::fs::create_dir_all(p.join(d)).expect("power-cut rig dirs");
            }
            let fs = MediaFs::mount_with(
                &p.join("sdcard-backing"),
                &p.join("sdcard"),
                Options { phone: true, power: Some(model) },
            )
            .expect("mount the camera's mediafs");
            let data = MediaFs::mount_with(
                &p.join("data-backing"),
                &p.join("data"),
                Options { phone: false, power: Some(model) },
            )
            .expect("mount the store's mediafs");
            let camera = fs.mountpoint.join("DCIM/Camera");
            let store = data.mountpoint.join("store");
            store_fs = Some(data);
            (Some(fs), Phone { dir, camera, store }, true)
        } else if mediafs {
            let dir = tempfile::tempdir().expect("tempdir");
            let (b, m) = (dir.path().join("backing"), dir.path().join("mnt"));
            std::fs::create_dir_all(&b).and_then(|_| std::fs::create_dir_all(&m)).expect("mediafs dirs");
            let fs = crate::mediafs::MediaFs::mount(&b, &m).expect("mount mediafs");
            let camera = fs.mountpoint.join("DCIM/Camera");
            std::fs::create_dir_all(&camera).expect("camera folder on mediafs");
            let store = dir.path().join("private/store");
            // The store is on disk, the camera on FUSE: always the cross-filesystem path.
            (Some(fs), Phone { dir, camera, store }, true)
        } else {
            (None, Phone::with_store_under(cross_fs.then_some(Path::new("/dev/shm"))), cross_fs)
        };
        let cfg = phone.dir.path().join("campaign.toml");
        let mut text = format!(
            "cameras = [{:?}]\nsettle = \"300ms\"\n\n[[work_sites]]\nname = \"Storskog\"\nlat = {}\nlon = {}\nradius_m = 500\n\n\
             [classifier]\nenabled = false\n",
            phone.camera, SITE.0, SITE.1
        );
        if power.is_some() {
            // Purge right after an acknowledged export, so cuts land in purges too.
            text.push_str("\n[retention]\nexported_days = 0\n");
        }
        let packages = phone.dir.path().join("packages");
        std::fs::create_dir_all(&packages).expect("packages dir");
        std::fs::write(&cfg, text).expect("write campaign config");
        let last_log = phone.dir.path().join("last-run.log");
        // The nearest folder above the camera folder outside DCIM (synced, a media folder) on
        // its filesystem: the phone's root, or the FUSE mount's root.
        let staging = match &fs {
            Some(fs) => fs.mountpoint.join(".fotovakt-staging"),
            None => phone.dir.path().join("phone/.fotovakt-staging"),
        };
        Rig {
            fs,
            store_fs,
            power,
            packages,
            exported: Default::default(),
            phone,
            staging,
            cross_fs,
            cfg,
            photos: Vec::new(),
            next_seed: seed_base,
            session_open: false,
            history: Vec::new(),
            last_log,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fotovakt"));
        c.arg("--config").arg(&self.cfg).arg("--store").arg(&self.phone.store).args(args);
        c.env_remove("FOTOVAKT_FAULT")
            .env_remove("FOTOVAKT_CONFIG")
            .env("FOTOVAKT_LOG", "fotovakt=info")
            .env("NO_COLOR", "1")
            .env("USER", "campaign");
        c
    }

    /// Run to completion, stderr kept in `last_log`.
    fn run(&self, args: &[&str], fault: Option<&str>) -> Output {
        let mut c = self.command(args);
        if let Some(f) = fault {
            c.env("FOTOVAKT_FAULT", f);
        }
        let out = c.output().expect("run fotovakt");
        let _ = std::fs::write(&self.last_log, &out.stderr);
        out
    }

    /// Start in the background, stderr into `last_log`.
    fn spawn(&self, args: &[&str], fault: Option<&str>) -> Child {
        let mut c = self.command(args);
        if let Some(f) = fault {
            c.env("FOTOVAKT_FAULT", f);
        }
        let log = std::fs::File::create(&self.last_log).expect("log file");
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().expect("spawn fotovakt")
    }

    fn note(&mut self, s: String) {
        self.history.push(s);
    }

    fn set_session(&mut self, open: bool) {
        if open == self.session_open {
            return;
        }
        let out = if open {
            self.run(&["session", "start", "--case", "CAMPAIGN-1", "--officer", "campaign"], None)
        } else {
            self.run(&["session", "stop"], None)
        };
        assert!(out.status.success(), "session {open}: {}", String::from_utf8_lossy(&out.stderr));
        self.session_open = open;
        self.note(format!("session {}", if open { "start" } else { "stop" }));
    }

    /// Bytes of the next photo: a real JPEG (with work-site GPS when `at_site`); one in eight
    /// is a "motion photo" with a 1.2 MiB trailer after the JPEG, so a cross-filesystem copy
    /// takes more than one chunk and `mid_copy` lands in the middle of it.
    fn make_photo(&mut self, rng: &mut Rng, at_site: bool) -> (String, Vec<u8>) {
        self.next_seed += 1;
        let seed = self.next_seed;
        let name = format!("IMG_{seed:08}.jpg");
        let mut bytes = SamplePhoto {
            width: 96,
            height: 72,
            seed,
            gps: at_site.then_some(SITE),
            quality: 80,
            ..SamplePhoto::default()
        }
        .jpeg();
        if rng.chance(12) {
            let mut r = Rng::new(seed);
            bytes.extend((0..(1_200_000 / 8)).flat_map(|_| r.next().to_le_bytes()));
        }
        (name, bytes)
    }

    fn record(&mut self, name: String, bytes: &[u8]) {
        use sha2::Digest;
        self.photos.push(Photo { name, sha: hex::encode(sha2::Sha256::digest(bytes)) });
    }

    /// Write `n` photos Android-style now; returns how many the policy will quarantine.
    fn shoot(&mut self, rng: &mut Rng, n: u64, tally: &mut Tally) -> u64 {
        let mut quarantine = 0;
        for _ in 0..n {
            let at_site = rng.chance(25);
            quarantine += u64::from(at_site || self.session_open);
            let (name, bytes) = self.make_photo(rng, at_site);
            write_photo(&self.phone.camera, &name, &bytes, self.power.is_some());
            self.record(name, &bytes);
            tally.photos += 1;
        }
        quarantine
    }

    /// Photos made now and written later by a writer thread (a burst during `watch`).
    fn prepare(&mut self, rng: &mut Rng, n: u64, tally: &mut Tally) -> (Vec<(String, Vec<u8>)>, u64) {
        let mut out = Vec::new();
        let mut quarantine = 0;
        for _ in 0..n {
            let at_site = rng.chance(25);
            quarantine += u64::from(at_site || self.session_open);
            let (name, bytes) = self.make_photo(rng, at_site);
            self.record(name.clone(), &bytes);
            out.push((name, bytes));
            tally.photos += 1;
        }
        (out, quarantine)
    }

    fn items(&self) -> Result<Vec<ItemRow>, String> {
        let out = self.run(&["list", "--all", "--json"], None);
        if !out.status.success() {
            return Err(format!("list --all --json failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("list --all --json is not JSON: {e}"))?;
        let rows = v.as_array().ok_or("list --all --json is not an array")?;
        Ok(rows
            .iter()
            .map(|r| ItemRow {
                id: r["id"].as_i64().unwrap_or(-1),
                sha: r["sha256"].as_str().unwrap_or_default().to_string(),
                state: r["state"].as_str().unwrap_or_default().to_string(),
                original_path: r["original_path"].as_str().unwrap_or_default().to_string(),
                store_name: r["store_name"].as_str().map(str::to_string),
            })
            .collect())
    }

    /// Right after a kill, before any restart: every photo has an intact copy at its path, in
    /// staging under a name an open stash row gives, or under `objects/` (never neither).
    fn check_never_neither(&self) -> Result<(), String> {
        let stored: Vec<String> = self.phone.stored().iter().map(|p| sha256(p)).collect();
        let staged = self.staged_files();
        let journal = if staged.is_empty() { Vec::new() } else { self.peek()?.stash };
        for p in &self.photos {
            let path = self.phone.camera.join(&p.name);
            let here = path.exists() && sha256(&path) == p.sha;
            let in_staging = staged.iter().find(|f| sha256(f) == p.sha);
            if let Some(f) = in_staging {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if !here && !stored.contains(&p.sha) && !journal.contains(&name) {
                    return Err(format!("{}: only in staging ({name}), and no journal row names it", p.name));
                }
                continue;
            }
            // Exported in a finished package (on disk, not cut): a purge may remove it.
            if !here && !stored.contains(&p.sha) && !self.exported.contains(&p.sha) {
                return Err(format!(
                    "{}: neither at its path, in staging nor in the store right after the kill",
                    p.name
                ));
            }
        }
        Ok(())
    }

    /// Files in the staging folder (its `.nomedia` excluded).
    fn staged_files(&self) -> Vec<PathBuf> {
        crate::common::staged_in(&self.staging)
    }

    /// The ledger as the restart left it, read directly: every fotovakt command recovers at
    /// open, so `list` or `verify` would quietly finish what the restart left undone.
    fn check_ledger_directly(&self) -> Result<(), String> {
        let Peek { journal, unsettled, .. } = self.peek()?;
        if journal != 0 || unsettled != 0 {
            return Err(format!("after the restart: {journal} move journal rows, {unsettled} items moving/releasing"));
        }
        Ok(())
    }

    /// The ledger read directly. With the store on this process's own FUSE daemon (power-cut
    /// mode) by a helper process: SQLite mmaps `-shm`, and a page fault served by a daemon
    /// thread of the faulting process can deadlock on its memory map.
    fn peek(&self) -> Result<Peek, String> {
        let db = self.phone.store.join("ledger.sqlite");
        if self.store_fs.is_none() {
            return peek_db(&db);
        }
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let out = Command::new(exe)
            .args(["--ignored", "--exact", "ledger_peek_helper", "--nocapture", "--test-threads=1"])
            .env("FOTOVAKT_PEEK_DB", &db)
            .output()
            .map_err(|e| format!("ledger peek helper: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // libtest prints `test ledger_peek_helper ... ` before the line on the same line.
        let line = text.lines().find_map(|l| l.split_once("PEEK ").map(|(_, rest)| rest));
        match line {
            Some(l) if l.starts_with("error ") => Err(l["error ".len()..].to_string()),
            Some(l) => Peek::parse(l).ok_or_else(|| format!("ledger peek helper: {l:?}")),
            None => {
                Err(format!("ledger peek helper printed no PEEK line: {text} {}", String::from_utf8_lossy(&out.stderr)))
            }
        }
    }

    /// Right after a cut: does `ledger.head` agree with the ledger's last event? A head ahead
    /// of the ledger (or unreadable) is a violation; `verify` would report truncation.
    fn head_vs_ledger(&self) -> Result<Option<String>, String> {
        let head = match std::fs::read_to_string(self.phone.store.join("ledger.head")) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("ledger.head: {e}")),
        };
        let peek = self.peek()?;
        let seq = head.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
        Ok(match seq {
            None => Some(format!("ledger.head is unreadable after the cut ({} bytes: {head:?})", head.len())),
            Some(seq) if seq > peek.last_seq => Some(format!(
                "ledger.head names event {seq} but the ledger's last event after the cut is {} (head ahead of the WAL)",
                peek.last_seq
            )),
            Some(_) => None,
        })
    }

    /// Cut the power on both filesystems (the agent is dead by now), then mount them again.
    fn cut(&mut self, rng: &mut Rng) -> Result<String, String> {
        let mut said = Vec::new();
        for (label, fs) in [("camera", self.fs.as_mut()), ("store", self.store_fs.as_mut())] {
            let Some(fs) = fs else { continue };
            let rep = fs.power_cut(&mut || rng.next()).map_err(|e| format!("power cut of the {label} fs: {e}"))?;
            if !rep.errors.is_empty() {
                return Err(format!("the {label} filesystem could not take back its changes: {rep}"));
            }
            said.push(format!("{label}: {rep}"));
        }
        for fs in [self.fs.as_mut(), self.store_fs.as_mut()].into_iter().flatten() {
            fs.remount().map_err(|e| format!("mount again after the cut: {e}"))?;
        }
        self.note(format!("POWER CUT ({:?}): {}", self.power.unwrap_or(Model::Posix), said.join("; ")));
        if let Some(h) = self.head_vs_ledger()? {
            return Err(format!("{h}: the head must never lead the ledger (verify would report truncation)"));
        }
        Ok(said.join("; "))
    }

    /// The files in the camera folder the ledger has not settled (`pending --json`): a photo
    /// decided as the officer's own has no item, only a keyed record, so "decided" is "not
    /// pending".
    fn pending(&self) -> Result<Vec<String>, String> {
        let out = self.run(&["pending", "--json"], None);
        if !out.status.success() {
            return Err(format!("pending --json failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("pending --json is not a list of paths: {e}"))
    }

    /// Is the photo `name` at its path and settled in the ledger (kept, or released)?
    fn decided_here(&self, name: &str, pending: &[String]) -> bool {
        let path = self.phone.camera.join(name);
        path.exists() && !pending.iter().any(|p| Path::new(p).file_name() == path.file_name())
    }

    /// The full invariant, after a restart.
    fn check(&self) -> Result<(), String> {
        self.check_ledger_directly()?;
        self.check_verify()?;
        let items = self.items()?;
        if let Some(i) = items.iter().find(|i| i.state == "moving" || i.state == "releasing") {
            return Err(format!("item {} is still `{}` after recovery", i.id, i.state));
        }
        let held = self.check_store(&items)?;
        self.check_photos(&items, &held, &self.pending()?)?;
        self.check_leftovers()
    }

    /// `verify` is clean: no tamper alarm, true or false.
    fn check_verify(&self) -> Result<(), String> {
        let v = self.run(&["verify", "--json"], None);
        let report: serde_json::Value = serde_json::from_slice(&v.stdout)
            .map_err(|e| format!("verify --json: not JSON ({e}): {}", String::from_utf8_lossy(&v.stderr)))?;
        let problems = report["problems"].as_array().cloned().unwrap_or_default();
        if !v.status.success() || !problems.is_empty() {
            return Err(format!("verify --json reports problems (exit {:?}): {problems:?}", v.status.code()));
        }
        Ok(())
    }

    /// Every store object is a quarantined item's file and hashes right; every quarantined
    /// item has its file. Returns how many verified copies each hash has.
    fn check_store(&self, items: &[ItemRow]) -> Result<BTreeMap<String, usize>, String> {
        let store_root = std::fs::canonicalize(&self.phone.store).map_err(|e| format!("store: {e}"))?;
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        for f in self.phone.stored() {
            let rel = f.strip_prefix(&self.phone.store).unwrap_or(&f).to_string_lossy().into_owned();
            let owner = items.iter().find(|i| i.state == "quarantined" && i.store_name.as_deref() == Some(&rel));
            let Some(owner) = owner else {
                return Err(format!("store object {rel} belongs to no quarantined ledger item"));
            };
            let h = sha256(&f);
            if h != owner.sha {
                return Err(format!("store object {rel} hashes {h}, item {} says {}", owner.id, owner.sha));
            }
            *held.entry(h).or_default() += 1;
        }
        for i in items.iter().filter(|i| i.state == "quarantined") {
            let name = i.store_name.as_deref().unwrap_or_default();
            if name.is_empty() || !store_root.join(name).is_file() {
                return Err(format!("item {} is quarantined but its store file {name:?} is missing", i.id));
            }
        }
        Ok(held)
    }

    /// Each photo at its path XOR verified in the store, and decided either way.
    fn check_photos(
        &self,
        items: &[ItemRow],
        held: &BTreeMap<String, usize>,
        pending: &[String],
    ) -> Result<(), String> {
        for p in &self.photos {
            let path = self.phone.camera.join(&p.name);
            let here = path.exists() && sha256(&path) == p.sha;
            let in_store = held.get(&p.sha).copied().unwrap_or(0);
            if !here && in_store == 0 && items.iter().any(|i| i.sha == p.sha && i.state == "purged") {
                if self.exported.contains(&p.sha) {
                    continue;
                }
                return Err(format!("{}: purged from the store but in no finished export package", p.name));
            }
            if (here as usize) + in_store != 1 {
                return Err(format!(
                    "{}: at its original path: {here}, verified copies in the store: {in_store} (must be exactly one)",
                    p.name
                ));
            }
            if here && !self.decided_here(&p.name, pending) {
                return Err(format!("{}: at its path but not settled in the ledger (not decided)", p.name));
            }
            if path.exists() && !here {
                return Err(format!("{}: a file is at its path but its bytes differ", p.name));
            }
        }
        Ok(())
    }

    /// No staging or partial files anywhere; nothing unexpected in the camera folder.
    fn check_leftovers(&self) -> Result<(), String> {
        let mut leftovers = Vec::new();
        for p in files_under(&self.phone.store) {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if p.starts_with(self.phone.store.join("tmp")) || n.ends_with(".part") || n.ends_with(".tmp") {
                leftovers.push(p.display().to_string());
            }
        }
        for f in self.staged_files() {
            leftovers.push(format!("staging/{}", f.file_name().unwrap_or_default().to_string_lossy()));
        }
        let expected: std::collections::HashSet<&str> = self.photos.iter().map(|p| p.name.as_str()).collect();
        for e in std::fs::read_dir(&self.phone.camera).map_err(|e| format!("camera: {e}"))?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !expected.contains(n.as_str()) {
                leftovers.push(format!("camera/{n}"));
            }
        }
        if !leftovers.is_empty() {
            return Err(format!("temporary, partial or unexpected files left: {leftovers:?}"));
        }
        Ok(())
    }

    /// Restart after a kill: recovery runs at open. Either `scan`, or `watch` until it has
    /// recovered and reconciled, then SIGTERM and a `scan` for what was still settling.
    fn restart(&mut self, rng: &mut Rng) -> Result<(), String> {
        if rng.chance(40) {
            let mut child = self.spawn(&["watch"], None);
            let started = wait_for_log(&self.last_log, &mut child, "watching", Duration::from_secs(60));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().map_err(|e| format!("wait watch: {e}"))?;
            if !started || !status.success() {
                return Err(format!("restart with `watch` failed ({status:?}): {}", tail(&self.last_log)));
            }
            self.note("restart: watch (recovered, reconciled), SIGTERM".into());
        }
        // A file a concurrently forked child briefly held open is retried: scan again.
        for attempt in 0..5 {
            let out = self.run(&["scan"], None);
            if out.status.success() {
                self.note(format!("restart: scan ({})", String::from_utf8_lossy(&out.stdout).trim()));
                return Ok(());
            }
            if attempt == 4 {
                return Err(format!("restart with `scan` failed ({:?}): {}", out.status, tail(&self.last_log)));
            }
        }
        Ok(())
    }

    /// After a cut the session the harness opened may be gone: close whatever is open.
    fn forget_session(&mut self) {
        let _ = self.run(&["session", "stop"], None);
        self.session_open = false;
    }

    fn listing(&self) -> String {
        let mut s = String::new();
        for root in [&self.phone.camera, &self.staging, &self.phone.store] {
            for p in files_under(root) {
                let len = std::fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0);
                let h = if p.to_string_lossy().contains("ledger") || p.ends_with("move.lock") {
                    String::new()
                } else {
                    std::fs::read(&p).map(|b| short_hash(&b)).unwrap_or_default()
                };
                s.push_str(&format!("    {} {len} {h}\n", p.display()));
            }
        }
        s
    }
}

fn short_hash(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))[..16].to_string()
}

fn tail(log: &Path) -> String {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Wait until the log has `needle` or the child exits; true if the needle appeared.
fn wait_for_log(log: &Path, child: &mut Child, needle: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if std::fs::read_to_string(log).unwrap_or_default().contains(needle) {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return std::fs::read_to_string(log).unwrap_or_default().contains(needle);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn killed(status: &ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// SIGKILL `child` after `delay` unless it finished first; true if the kill landed.
fn kill_after(child: &mut Child, delay: Duration) -> bool {
    let end = Instant::now() + delay;
    while Instant::now() < end {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1).min(end.saturating_duration_since(Instant::now())));
    }
    if matches!(child.try_wait(), Ok(Some(_))) {
        return false;
    }
    let _ = child.kill();
    child.wait().map(|s| killed(&s)).unwrap_or(false)
}

/// Write prepared photos Android-style on another thread, as fast as the disk allows.
fn writer(dir: PathBuf, photos: Vec<(String, Vec<u8>)>, durable: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for (name, bytes) in photos {
            write_photo(&dir, &name, &bytes, durable);
        }
    })
}

/// Write a photo as Android's camera does (`.pending-` file, fsync, rename); `durable`: then
/// fsync the folder too, as a camera app that fsyncs, so a power cut cannot take it back.
fn write_photo(dir: &Path, name: &str, bytes: &[u8], durable: bool) {
    fotovakt::sample::write_like_android(dir, name, bytes).expect("write photo");
    if durable {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).expect("fsync the camera folder");
    }
}

/// The campaign: rounds of "do something, kill it, restart, check" until `kills` kills (in
/// power-cut mode: until `kills` power cuts). The crash campaign stops at the first
/// violation; the power-cut campaign reports each one and goes on with a fresh rig.
pub fn run(settings: &Settings) -> Tally {
    let started = Instant::now();
    let mut rng = Rng::new(settings.seed);
    let mut tally = Tally::default();
    let name = if settings.power { "power-cut campaign" } else { "crash campaign" };
    println!(
        "{name}: seed={} kills={} (rerun: FOTOVAKT_CAMPAIGN_SEED={} FOTOVAKT_CAMPAIGN_KILLS={})",
        settings.seed, settings.kills, settings.seed, settings.kills
    );
    let mut rig: Option<Rig> = None;
    let mut rig_rounds = 0;
    let done = |t: &Tally| if settings.power { t.cuts } else { t.kills };
    while done(&tally) < settings.kills {
        if rig.is_none() || rig_rounds >= settings.rounds_per_rig {
            let cross = settings.cross_fs && tally.rigs % 2 == 1;
            let model = settings.power.then(|| if rng.chance(50) { Model::Posix } else { Model::Journal });
            drop(rig.take()); // unmount the old rig's filesystems before the next mounts
            rig = Some(Rig::new(cross, settings.mediafs, model, rng.next() % 1_000_000 * 10_000));
            rig_rounds = 0;
            tally.rigs += 1;
        }
        let r = rig.as_mut().expect("rig");
        rig_rounds += 1;
        tally.rounds += 1;
        let round = tally.rounds;
        let kill = round_once(r, &mut rng, &mut tally);
        let result = kill.and_then(|what| {
            r.check().map_err(|e| format!("after {what}: {e}"))?;
            Ok(what)
        });
        match result {
            Err(e) => {
                tally.violations += 1;
                println!("{}", describe_violation(settings, &tally, r, round, &e));
                let _ = std::io::stdout().flush();
                if !settings.power {
                    println!("{}", tally.summary(settings.seed, started.elapsed()));
                    return tally;
                }
                rig = None;
            }
            Ok(_) => {
                if settings.power {
                    r.forget_session();
                }
            }
        }
        if round % 50 == 0 {
            println!(
                "  … {} kills, {} cuts in {round} rounds, {:.0}s",
                tally.kills,
                tally.cuts,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if settings.power {
        println!("{}", tally.power_summary(settings.seed, started.elapsed()));
    } else {
        println!("{}", tally.summary(settings.seed, started.elapsed()));
    }
    tally
}

fn describe_violation(settings: &Settings, tally: &Tally, r: &Rig, round: u64, e: &str) -> String {
    format!(
        "VIOLATION in round {round} (seed {seed}, rig {rig} {fs}): {e}\n  rerun: FOTOVAKT_CAMPAIGN_SEED={seed} \
         FOTOVAKT_CAMPAIGN_KILLS={kills} (random moments depend on timing)\n  history of this rig:\n    {hist}\n  \
         files (path size sha256[..16]):\n{list}  photos: {photos:?}\n  ledger items (id state sha256[..16] source original_path store_name):\n{items}  \
         last agent log:\n{log}",
        seed = settings.seed,
        rig = tally.rigs,
        fs = if let Some(m) = r.power {
            format!("power-cut {m:?}: camera on phone-like mediafs, store on plain mediafs")
        } else if r.fs.is_some() {
            "camera on mediafs".into()
        } else if r.cross_fs {
            "cross-filesystem".into()
        } else {
            "same filesystem".into()
        },
        kills = settings.kills,
        hist = r.history.join("\n    "),
        list = r.listing(),
        photos = r.photos.iter().map(|p| format!("{} {}", p.name, &p.sha[..16])).collect::<Vec<_>>(),
        items = r
            .items()
            .map(|v| {
                v.iter()
                    .map(|i| {
                        format!(
                            "    {} {} {} {} {:?}\n",
                            i.id,
                            i.state,
                            &i.sha[..i.sha.len().min(16)],
                            i.original_path,
                            i.store_name
                        )
                    })
                    .collect::<String>()
            })
            .unwrap_or_else(|e| format!("    {e}\n")),
        log = tail(&r.last_log),
    )
}

/// One round: set the scene, run a command and kill it, check "never neither", restart.
/// Returns what was killed (for the violation message).
fn round_once(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> Result<String, String> {
    let layout = if r.power.is_some() {
        "power-cut"
    } else if r.fs.is_some() {
        "mediafs"
    } else if r.cross_fs {
        "cross-fs"
    } else {
        "same-fs"
    };
    let mode = rng.next() % 100;
    let what = if r.power.is_some() && mode >= 88 {
        random_export_purge(r, rng, tally)
    } else if mode < 40 {
        fault_in(r, rng, tally)
    } else if mode < 52 {
        fault_tag(r, rng, tally)
    } else if mode < 67 {
        fault_release(r, rng, tally)
    } else {
        random_kill(r, rng, tally)
    };
    let what = format!("{what} [{layout}]");
    r.note(format!("=> {what}"));
    if r.power.is_some() {
        r.cut(rng).map_err(|e| format!("after {what}: {e}"))?;
        tally.cut(&cut_label(&what));
    }
    r.check_never_neither().map_err(|e| format!("after {what}: {e}"))?;
    // A photo left in staging: now and then the restart is killed inside its return.
    if !r.staged_files().is_empty() && rng.chance(40) {
        fault_in_recovery(r, rng, tally)?;
    }
    // Now and then the restart itself is killed at a random moment (during recovery).
    if rng.chance(if r.power.is_some() { 25 } else { 15 }) {
        let mut child = r.spawn(&["scan"], None);
        let delay = Duration::from_millis(rng.range(0, 120));
        if kill_after(&mut child, delay) {
            tally.kill("random recovery-scan".into());
            r.note(format!("restart scan killed after {delay:?} (during recovery)"));
            if r.power.is_some() {
                r.cut(rng).map_err(|e| format!("after a cut during recovery: {e}"))?;
                tally.cut("random recovery-scan");
            }
            r.check_never_neither().map_err(|e| format!("after a kill during recovery: {e}"))?;
        } else {
            tally.not_killed += 1;
        }
    }
    r.restart(rng).map_err(|e| format!("after {what}: {e}"))?;
    Ok(what)
}

/// The restart's recovery killed where it returns a staged photo: before its rename back, or
/// after it (durable), before its journal row closes. Then the power is cut (power-cut mode)
/// and "never neither" is checked again.
fn fault_in_recovery(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> Result<(), String> {
    let point = rng.pick(&["before_return", "after_return"]);
    r.note(format!("restart scan with FOTOVAKT_FAULT={point} ({} staged)", r.staged_files().len()));
    let out = r.run(&["scan"], Some(point));
    if !killed(&out.status) {
        tally.not_killed += 1;
        return Ok(());
    }
    let label = format!("fault recovery {point}");
    tally.kill(label.clone());
    if r.power.is_some() {
        r.cut(rng).map_err(|e| format!("after {label}: {e}"))?;
        tally.cut(&label);
    }
    r.check_never_neither().map_err(|e| format!("after {label}: {e}"))
}

/// How many times a burst of `n` photos, `q` of them to quarantine, reaches `point`: every
/// photo is stashed, only kept ones are returned, only quarantined ones moved.
fn hits(point: &str, n: u64, q: u64) -> u64 {
    match point {
        "after_stash_journal" | "after_stash" => n,
        "before_return" | "after_return" => n - q,
        _ => q,
    }
}

/// What was running when the power was cut, for the tally: `fault in mid_copy (watch burst)`;
/// a command that was done before its kill is an idle cut.
fn cut_label(what: &str) -> String {
    let what = what.split(" [").next().unwrap_or(what);
    match what.find(" (not reached").or_else(|| what.find(" (finished")).or_else(|| what.find(" (exited")) {
        Some(i) => format!("{} (done: cut idle)", &what[..i]),
        None => what.to_string(),
    }
}

/// Power-cut mode: an export of the case (killed at a random moment), or a finished export,
/// its acknowledgement and a `purge` killed at a random moment.
fn random_export_purge(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> String {
    let items = r.items().unwrap_or_default();
    if !items.iter().any(|i| i.state == "quarantined") {
        return fault_in(r, rng, tally);
    }
    let pkg = r.packages.join(format!("pkg-{}", rng.next() % 1_000_000_000));
    let pkg_s = pkg.to_string_lossy().into_owned();
    let export = ["export", "--case", "CAMPAIGN-1", "--out", &pkg_s, "--officer", "anna"];
    let (label, args): (&str, Vec<&str>) = if rng.chance(50) {
        ("random export", export.to_vec())
    } else {
        let out = r.run(&export, None);
        if out.status.success() {
            for f in files_under(&pkg) {
                r.exported.insert(sha256(&f));
            }
        }
        let ack = r.run(&["ack", "--case", "CAMPAIGN-1", "--officer", "anna"], None);
        r.note(format!("export CAMPAIGN-1 (exit {:?}), ack (exit {:?})", out.status.code(), ack.status.code()));
        ("random purge", vec!["purge", "--officer", "anna"])
    };
    // These commands are short (tens of ms, most of it start-up and recovery at open).
    let delay = Duration::from_millis(rng.range(5, 70));
    r.note(format!("{}; SIGKILL after {delay:?}", args.join(" ")));
    let mut child = r.spawn(&args, None);
    if kill_after(&mut child, delay) {
        tally.kill(label.into());
        label.into()
    } else {
        if label == "random export" {
            for f in files_under(&pkg) {
                r.exported.insert(sha256(&f));
            }
        }
        tally.not_killed += 1;
        format!("{label} (finished before the kill)")
    }
}

fn record_kill(r: &mut Rig, tally: &mut Tally, status: &ExitStatus, label: String) -> String {
    if killed(status) {
        tally.kill(label.clone());
        label
    } else {
        tally.not_killed += 1;
        let s = format!("{label} (not reached: exit {:?})", status.code());
        r.note(s.clone());
        s
    }
}

/// Photos into the store (`scan` of a backlog, or `watch` during a burst), killed at the
/// n-th hit of a fault point.
fn fault_in(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> String {
    let open = rng.chance(70);
    r.set_session(open);
    let n = rng.range(1, 8);
    let points = if r.cross_fs { IN_CROSS_FS } else { IN_SAME_FS };
    let point = rng.pick(points);
    if rng.chance(50) {
        let q = r.shoot(rng, n, tally);
        let nth = rng.range(1, hits(point, n, q).max(1));
        let spec = format!("{point}:{nth}");
        r.note(format!("{n} photos ({q} to quarantine); scan with FOTOVAKT_FAULT={spec}"));
        let out = r.run(&["scan"], Some(&spec));
        tally.moves_in += q;
        record_kill(r, tally, &out.status, format!("fault in {point}"))
    } else {
        let (burst, q) = r.prepare(rng, n, tally);
        let nth = rng.range(1, hits(point, n, q).max(1));
        let spec = format!("{point}:{nth}");
        r.note(format!("watch with FOTOVAKT_FAULT={spec}; burst of {n} photos ({q} to quarantine) written meanwhile"));
        let mut child = r.spawn(&["watch"], Some(&spec));
        let _ = wait_for_log(&r.last_log, &mut child, "watching", Duration::from_secs(60));
        let w = writer(r.phone.camera.clone(), burst, r.power.is_some());
        let _ = w.join();
        // Not reached (too few quarantines, or a move that aborted): stop it once every photo
        // of the burst is decided (the `decided` line comes after the last fault point).
        let mut status = None;
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(s)) = child.try_wait() {
                status = Some(s);
                break;
            }
            let log = std::fs::read_to_string(&r.last_log).unwrap_or_default();
            if log.matches("decided").count() >= n as usize {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = status.unwrap_or_else(|| {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.wait().expect("wait watch")
        });
        tally.moves_in += q;
        record_kill(r, tally, &status, format!("fault in {point} (watch burst)"))
    }
}

/// An officer tags a kept photo in the camera folder; `tag` is killed at a fault point.
fn fault_tag(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> String {
    let pending = r.pending().unwrap_or_default();
    let candidates: Vec<String> =
        r.photos.iter().filter(|p| r.decided_here(&p.name, &pending)).map(|p| p.name.clone()).collect();
    let name = if candidates.is_empty() {
        // No kept photo yet: shoot one off-session and without GPS, and let it be decided.
        r.set_session(false);
        let (name, bytes) = r.make_photo(rng, false);
        write_photo(&r.phone.camera, &name, &bytes, r.power.is_some());
        r.record(name.clone(), &bytes);
        tally.photos += 1;
        let _ = r.run(&["scan"], None);
        r.note(format!("{name} shot off-session and kept"));
        name
    } else {
        candidates[(rng.next() % candidates.len() as u64) as usize].clone()
    };
    let path = r.phone.camera.join(&name);
    // An officer's tag has decided already: it goes straight into the store, never stashed.
    let points: Vec<&str> = if r.cross_fs { IN_CROSS_FS } else { IN_SAME_FS }
        .iter()
        .copied()
        .filter(|p| !fotovakt::fault::STASH_POINTS.contains(p))
        .collect();
    let point = rng.pick(&points);
    r.note(format!("tag {name} --case TAG-7 with FOTOVAKT_FAULT={point}"));
    let p = path.to_string_lossy().into_owned();
    let out = r.run(&["tag", &p, "--case", "TAG-7", "--officer", "anna"], Some(point));
    tally.moves_in += 1;
    record_kill(r, tally, &out.status, format!("fault tag {point}"))
}

/// An officer releases a quarantined photo back to its folder; `release` is killed.
fn fault_release(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> String {
    let items = r.items().unwrap_or_default();
    let names: std::collections::HashSet<&str> = r.photos.iter().map(|p| p.name.as_str()).collect();
    let candidates: Vec<i64> = items
        .iter()
        .filter(|i| i.state == "quarantined")
        .filter(|i| Path::new(&i.original_path).file_name().is_some_and(|n| names.contains(&*n.to_string_lossy())))
        .map(|i| i.id)
        .collect();
    if candidates.is_empty() {
        return fault_in(r, rng, tally);
    }
    let id = candidates[(rng.next() % candidates.len() as u64) as usize].to_string();
    let points = if r.cross_fs { OUT_CROSS_FS } else { OUT_SAME_FS };
    let point = rng.pick(points);
    r.note(format!("release {id} with FOTOVAKT_FAULT={point}"));
    let out = r.run(&["release", &id, "--reason", "false positive", "--officer", "anna"], Some(point));
    tally.moves_out += 1;
    record_kill(r, tally, &out.status, format!("fault out {point}"))
}

/// SIGKILL at a random moment: `watch` while a burst is written, a `scan` of a backlog, or
/// a `release`.
fn random_kill(r: &mut Rig, rng: &mut Rng, tally: &mut Tally) -> String {
    let kind = rng.next() % 100;
    if kind < 60 {
        r.set_session(rng.chance(70));
        let n = rng.range(5, 30);
        let (burst, q) = r.prepare(rng, n, tally);
        tally.moves_in += q;
        let delay = Duration::from_millis(rng.range(0, 400));
        r.note(format!("watch; burst of {n} photos ({q} to quarantine); SIGKILL after {delay:?}"));
        let mut child = r.spawn(&["watch"], None);
        let w = writer(r.phone.camera.clone(), burst, r.power.is_some());
        let landed = kill_after(&mut child, delay);
        let _ = w.join();
        if !landed {
            tally.not_killed += 1;
            return "random watch-burst (exited before the kill)".into();
        }
        let log = std::fs::read_to_string(&r.last_log).unwrap_or_default();
        let phase = if !log.contains("watching") {
            "startup"
        } else if log.matches("decided").count() < n as usize {
            "burst"
        } else {
            "idle"
        };
        let label = format!("random watch-{phase}");
        tally.kill(label.clone());
        label
    } else if kind < 85 {
        r.set_session(rng.chance(70));
        let n = rng.range(2, 10);
        let q = r.shoot(rng, n, tally);
        tally.moves_in += q;
        let delay = Duration::from_millis(rng.range(0, 250));
        r.note(format!("scan of {n} photos ({q} to quarantine); SIGKILL after {delay:?}"));
        let mut child = r.spawn(&["scan"], None);
        if kill_after(&mut child, delay) {
            tally.kill("random scan".into());
            "random scan".into()
        } else {
            tally.not_killed += 1;
            "random scan (finished before the kill)".into()
        }
    } else {
        let items = r.items().unwrap_or_default();
        let Some(item) = items.iter().find(|i| {
            i.state == "quarantined"
                && Path::new(&i.original_path)
                    .file_name()
                    .is_some_and(|n| r.photos.iter().any(|p| *n.to_string_lossy() == p.name))
        }) else {
            return fault_in(r, rng, tally);
        };
        let id = item.id.to_string();
        let delay = Duration::from_millis(rng.range(0, 120));
        r.note(format!("release {id}; SIGKILL after {delay:?}"));
        let mut child = r.spawn(&["release", &id, "--reason", "false positive", "--officer", "anna"], None);
        tally.moves_out += 1;
        if kill_after(&mut child, delay) {
            tally.kill("random release".into());
            "random release".into()
        } else {
            tally.not_killed += 1;
            "random release (finished before the kill)".into()
        }
    }
}

/// What the checks read from the ledger directly.
#[derive(Debug, Clone, Default)]
pub struct Peek {
    pub journal: i64,
    pub unsettled: i64,
    pub last_seq: i64,
    /// The names in staging that open stash rows give.
    pub stash: Vec<String>,
}

impl Peek {
    /// The helper process's `PEEK` line (only `tests/power_cut.rs` prints it).
    #[allow(dead_code)]
    pub fn line(&self) -> String {
        format!(
            "journal={} unsettled={} last_seq={} stash={}",
            self.journal,
            self.unsettled,
            self.last_seq,
            self.stash.join("|")
        )
    }

    fn parse(l: &str) -> Option<Peek> {
        let mut p = Peek::default();
        for kv in l.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            if k == "stash" {
                p.stash = v.split('|').filter(|n| !n.is_empty()).map(str::to_string).collect();
                continue;
            }
            let v = v.parse().ok()?;
            match k {
                "journal" => p.journal = v,
                "unsettled" => p.unsettled = v,
                "last_seq" => p.last_seq = v,
                _ => return None,
            }
        }
        Some(p)
    }
}

/// Read the move journal, unsettled items and the last event of the ledger at `db`
/// (read-only; a missing database is an empty ledger).
pub fn peek_db(db: &Path) -> Result<Peek, String> {
    if !db.exists() {
        return Ok(Peek::default());
    }
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(|e| format!("{sql}: {e}"));
    // A power cut can leave the database file without its schema (it was in the lost WAL):
    // an empty ledger, which the next open creates again.
    if count("SELECT count(*) FROM sqlite_master WHERE name IN ('moves', 'items', 'events')")? < 3 {
        return Ok(Peek::default());
    }
    Ok(Peek {
        journal: count("SELECT count(*) FROM moves")?,
        unsettled: count("SELECT count(*) FROM items WHERE state IN ('moving', 'releasing')")?,
        last_seq: count("SELECT coalesce(max(seq), 0) FROM events")?,
        stash: stash_names(&conn)?,
    })
}

/// The file names in staging that open stash rows give.
fn stash_names(conn: &rusqlite::Connection) -> Result<Vec<String>, String> {
    let mut st =
        conn.prepare("SELECT dst FROM moves WHERE direction = 'stash'").map_err(|e| format!("stash rows: {e}"))?;
    let rows = st
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("stash rows: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|b| {
            let p = PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b));
            p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        })
        .collect())
}
