//! Paths as people type them (issue 28): every command that takes a path, tried with a bare
//! relative name, `./name`, `../name`, an absolute path, a name with spaces, a non-ASCII name,
//! a path through a symlinked folder and a target on another filesystem (a tmpfs), through
//! the real binary in a folder of its own.
//!
//! One table, one row a case, one test that runs them all. Each row either succeeds, or fails
//! with one line on stderr that names the path and the reason and the documented exit code
//! (1 failure, 2 bad usage). After every row: no half-written output (no
//! `.fotovakt-partial-…` left beside a target) and no `export` event for a package that is
//! not there.
//!
//! `import PATH` reads its file where it is: every form but the read-only folder (nothing can be
//! put there to import).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{sha256, stderr, stdout};
use fotovakt::sample::SamplePhoto;

/// The path argument under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// `--store DIR` (the store is created by `session start`, used by `scan`).
    Store,
    /// `--config FILE`.
    Config,
    /// `scan --camera DIR` (and `pending --camera DIR` before it).
    Camera,
    /// `export --out DIR` (a folder package).
    ExportDir,
    /// `export --out FILE.zip`.
    ExportZip,
    /// `report --out FILE.html`.
    Report,
    /// `tag PATH` (a photo in a camera folder).
    Tag,
    /// `verify-package PATH`.
    VerifyPackage,
    /// `classify PATH`.
    Classify,
    /// `import --case ID PATH`.
    Import,
}

/// How the path is written. The command runs in `<root>/home/here`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `name`: in the current folder.
    Bare,
    /// `./name`.
    DotSlash,
    /// `../name`: in `<root>/home`.
    DotDot,
    /// `<root>/home/here/name`.
    Absolute,
    /// `mapp med mellanrum/namn med mellanrum`.
    Spaces,
    /// `bevis-åäö/namn-åäö`.
    NonAscii,
    /// `länk/name`, where `länk` is a symlink to `<root>/elsewhere`.
    Symlink,
    /// `<root>/tmpfs/name`: another filesystem (a tmpfs; root only).
    OtherFs,
    /// `no-such-folder-<row>/name`: its folder does not exist.
    Missing,
    /// `<root>/ro/name`: a read-only tmpfs (root only).
    ReadOnly,
}

/// What the row expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    /// Exit code and a word of the reason, on one `fotovakt: …` line that names the path.
    Fails(i32, &'static str),
}

use Arg::*;
use Expect::{Fails, Ok as Works};
use Form::*;

const CASES: &[(Arg, Form, Expect)] = &[
    (Store, Bare, Works),
    (Store, DotSlash, Works),
    (Store, DotDot, Works),
    (Store, Absolute, Works),
    (Store, Spaces, Works),
    (Store, NonAscii, Works),
    (Store, Symlink, Works),
    (Store, OtherFs, Works),
    (Store, Missing, Works), // a store is created with the folders it needs
    (Store, ReadOnly, Fails(1, "read-only filesystem")),
    (Config, Bare, Works),
    (Config, DotSlash, Works),
    (Config, DotDot, Works),
    (Config, Absolute, Works),
    (Config, Spaces, Works),
    (Config, NonAscii, Works),
    (Config, Symlink, Works),
    (Config, OtherFs, Works),
    (Config, Missing, Fails(2, "No such file or directory")),
    (Camera, Bare, Works),
    (Camera, DotSlash, Works),
    (Camera, DotDot, Works),
    (Camera, Absolute, Works),
    (Camera, Spaces, Works),
    (Camera, NonAscii, Works),
    (Camera, Symlink, Works),
    (Camera, OtherFs, Works),
    (Camera, Missing, Fails(2, "No such file or directory")),
    (ExportDir, Bare, Works),
    (ExportDir, DotSlash, Works),
    (ExportDir, DotDot, Works),
    (ExportDir, Absolute, Works),
    (ExportDir, Spaces, Works),
    (ExportDir, NonAscii, Works),
    (ExportDir, Symlink, Works),
    (ExportDir, OtherFs, Works),
    (ExportDir, Missing, Fails(1, "folder does not exist")),
    (ExportDir, ReadOnly, Fails(1, "Read-only file system")),
    (ExportZip, Bare, Works),
    (ExportZip, DotSlash, Works),
    (ExportZip, DotDot, Works),
    (ExportZip, Absolute, Works),
    (ExportZip, Spaces, Works),
    (ExportZip, NonAscii, Works),
    (ExportZip, Symlink, Works),
    (ExportZip, OtherFs, Works),
    (ExportZip, Missing, Fails(1, "folder does not exist")),
    (ExportZip, ReadOnly, Fails(1, "Read-only file system")),
    (Report, Bare, Works),
    (Report, DotSlash, Works),
    (Report, DotDot, Works),
    (Report, Absolute, Works),
    (Report, Spaces, Works),
    (Report, NonAscii, Works),
    (Report, Symlink, Works),
    (Report, OtherFs, Works),
    (Report, Missing, Fails(1, "folder does not exist")),
    (Report, ReadOnly, Fails(1, "Read-only file system")),
    (Tag, Bare, Works),
    (Tag, DotSlash, Works),
    (Tag, DotDot, Works),
    (Tag, Absolute, Works),
    (Tag, Spaces, Works),
    (Tag, NonAscii, Works),
    (Tag, Symlink, Works),
    (Tag, OtherFs, Works),
    (Tag, Missing, Fails(1, "No such file or directory")),
    (VerifyPackage, Bare, Works),
    (VerifyPackage, DotSlash, Works),
    (VerifyPackage, DotDot, Works),
    (VerifyPackage, Absolute, Works),
    (VerifyPackage, Spaces, Works),
    (VerifyPackage, NonAscii, Works),
    (VerifyPackage, Symlink, Works),
    (VerifyPackage, OtherFs, Works),
    (VerifyPackage, Missing, Fails(1, "No such file or directory")),
    (Classify, Bare, Works),
    (Classify, DotSlash, Works),
    (Classify, DotDot, Works),
    (Classify, Absolute, Works),
    (Classify, Spaces, Works),
    (Classify, NonAscii, Works),
    (Classify, Symlink, Works),
    (Classify, OtherFs, Works),
    (Classify, Missing, Fails(1, "No such file or directory")),
    (Import, Bare, Works),
    (Import, DotSlash, Works),
    (Import, DotDot, Works),
    (Import, Absolute, Works),
    (Import, Spaces, Works),
    (Import, NonAscii, Works),
    (Import, Symlink, Works),
    (Import, OtherFs, Works),
    (Import, Missing, Fails(1, "No such file or directory")),
];

/// The tree every row runs in, and the two tmpfs mounts (root only).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// The current folder of every command: `<root>/home/here`.
    here: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let here = root.join("home/here");
        for d in ["home/here", "elsewhere", "tmpfs", "ro"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::os::unix::fs::symlink(root.join("elsewhere"), here.join("länk")).expect("symlink");
        let mut tree = Tree { _dir: dir, root, here, mounts: Vec::new() };
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            for (d, opts) in [("tmpfs", "size=64m,mode=0755"), ("ro", "size=1m,mode=0755,ro")] {
                let at = tree.root.join(d);
                let ok = Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs"]).arg(&at).status();
                if ok.is_ok_and(|s| s.success()) {
                    tree.mounts.push(at);
                }
            }
        }
        tree
    }

    fn mounted(&self, form: Form) -> bool {
        match form {
            OtherFs => self.mounts.contains(&self.root.join("tmpfs")),
            ReadOnly => self.mounts.contains(&self.root.join("ro")),
            _ => true,
        }
    }

    /// The path as typed for `form` with the final name `name`, and where it really is.
    fn path(&self, form: Form, case: usize, name: &str) -> (String, PathBuf) {
        let name = format!("c{case}-{name}");
        // A suffix goes before the extension, which says what the file is (`.jpg`, `.zip`).
        let with = |suffix: &str| match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}{suffix}.{ext}"),
            None => format!("{name}{suffix}"),
        };
        let typed = match form {
            Bare => name.clone(),
            DotSlash => format!("./{name}"),
            DotDot => format!("../{name}"),
            Absolute => self.here.join(&name).to_string_lossy().into_owned(),
            Spaces => format!("mapp med mellanrum {case}/{}", with(" med mellanrum")),
            NonAscii => format!("bevis-åäö-{case}/{}", with("-åäö")),
            Symlink => format!("länk/{name}"),
            OtherFs => self.root.join("tmpfs").join(&name).to_string_lossy().into_owned(),
            Missing => format!("no-such-folder-{case}/{name}"),
            ReadOnly => self.root.join("ro").join(&name).to_string_lossy().into_owned(),
        };
        let real = match form {
            Symlink => self.root.join("elsewhere").join(typed.trim_start_matches("länk/")),
            _ => self.here.join(&typed),
        };
        // Folders the form names are made first (not the missing one).
        if matches!(form, Spaces | NonAscii) {
            std::fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
        }
        (typed, normal(&real))
    }

    /// The binary in `<root>/home/here`, with no config from the environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fotovakt"));
        c.current_dir(&self.here).args(args);
        c.env("FOTOVAKT_CONFIG", self.root.join("plain.toml")).env("NO_COLOR", "1").env_remove("FOTOVAKT_LOG");
        c
    }

    fn write_config(&self, at: &Path, cameras: &[&Path]) {
        let cams: Vec<String> = cameras.iter().map(|c| format!("{:?}", c.to_string_lossy())).collect();
        std::fs::write(at, format!("cameras = [{}]\n[classifier]\nenabled = false\n", cams.join(", ")))
            .expect("config");
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// `a/b/../c` as `a/c` (the test's own idea of where a typed path points).
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run fotovakt")
}

/// A store (at `store`) with one quarantined photo of case `C-1`, made with absolute paths.
fn case_store(t: &Tree, store: &Path, case: usize) {
    let camera = t.root.join(format!("camera-{case}"));
    std::fs::create_dir_all(&camera).expect("camera");
    let s = store.to_string_lossy().into_owned();
    let c = camera.to_string_lossy().into_owned();
    let ok = |o: Output| assert!(o.status.success(), "setup: {}", stderr(&o));
    ok(run(&mut t.cmd(&["--store", &s, "session", "start", "--case", "C-1"])));
    let photo = SamplePhoto { seed: 1000 + case as u64, ..SamplePhoto::default() }.jpeg();
    fotovakt::sample::write_like_android(&camera, "IMG_1.jpg", &photo).expect("photo");
    ok(run(&mut t.cmd(&["--store", &s, "scan", "--camera", &c])));
    ok(run(&mut t.cmd(&["--store", &s, "session", "stop"])));
}

/// How many `export` events the store's ledger holds.
fn export_events(store: &Path) -> i64 {
    let db =
        rusqlite::Connection::open_with_flags(store.join("ledger.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("ledger");
    db.query_row("SELECT count(*) FROM events WHERE kind = 'export'", [], |r| r.get(0)).expect("count")
}

/// Partial outputs left in `dir`.
fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".fotovakt-partial"))
        .collect()
}

/// What a row's command printed, and the target it wrote or read (for the leftover check).
type RowResult = Result<(Output, Option<PathBuf>), String>;

/// Run one row; `Err` says what went wrong.
fn run_case(t: &Tree, case: usize, arg: Arg, form: Form) -> RowResult {
    match arg {
        Store => store_row(t, case, form),
        Config => config_row(t, case, form),
        Camera => camera_row(t, case, form),
        ExportDir | ExportZip => export_row(t, case, arg, form),
        Report => report_row(t, case, form),
        Tag => tag_row(t, case, form),
        VerifyPackage => verify_package_row(t, case, form),
        Classify => classify_row(t, case, form),
        Import => import_row(t, case, form),
    }
}

/// `--store PATH`: a store made there quarantines a photo and verifies.
fn store_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let (typed, real) = t.path(form, case, "st");
    let camera = t.root.join(format!("camera-{case}"));
    std::fs::create_dir_all(&camera).expect("camera");
    let o = run(&mut t.cmd(&["--store", &typed, "session", "start", "--case", "S-1"]));
    if !o.status.success() {
        return Ok((o, Some(real)));
    }
    let photo = SamplePhoto { seed: 2000 + case as u64, ..SamplePhoto::default() }.jpeg();
    let p = fotovakt::sample::write_like_android(&camera, "IMG_s.jpg", &photo).expect("photo");
    let o = run(&mut t.cmd(&["--store", &typed, "scan", "--camera", &camera.to_string_lossy()]));
    if o.status.success() {
        if p.exists() || !stdout(&o).contains("quarantined 1") {
            return Err(format!("not quarantined into {}: {}", real.display(), stdout(&o)));
        }
        let v = run(&mut t.cmd(&["--store", &real.to_string_lossy(), "verify"]));
        if !v.status.success() {
            return Err(format!("verify of the store at {}: {}", real.display(), stdout(&v)));
        }
    }
    Ok((o, Some(real)))
}

/// `--config PATH`: the config file there is read.
fn config_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    let (typed, real) = t.path(form, case, "cfg.toml");
    if form != Missing {
        t.write_config(&real, &[&t.root.join("elsewhere")]);
    }
    Ok((run(&mut t.cmd(&["--config", &typed, "--store", &s, "session", "status"])), None))
}

/// `scan --camera PATH`: the photo there is quarantined, recorded by its absolute path;
/// `pending --camera PATH` lists it by that path before.
fn camera_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    let (typed, real) = t.path(form, case, "Camera");
    let _ = run(&mut t.cmd(&["--store", &s, "session", "start", "--case", "K-1"]));
    let mut photo = None;
    if form != Missing {
        std::fs::create_dir_all(&real).expect("camera");
        let bytes = SamplePhoto { seed: 3000 + case as u64, ..SamplePhoto::default() }.jpeg();
        let p = fotovakt::sample::write_like_android(&real, "IMG_k.jpg", &bytes).expect("photo");
        // `pending --camera PATH` names it by its absolute path before the scan decides it.
        let pending = run(&mut t.cmd(&["--store", &s, "pending", "--camera", &typed, "--json"]));
        let listed: Vec<String> = serde_json::from_str(&stdout(&pending)).unwrap_or_default();
        let abs = std::fs::canonicalize(&real).expect("camera").join("IMG_k.jpg");
        if listed != [abs.to_string_lossy()] {
            return Err(format!("pending --camera {typed:?}: {listed:?}, {}", stderr(&pending)));
        }
        photo = Some(p);
    }
    let o = run(&mut t.cmd(&["--store", &s, "scan", "--camera", &typed]));
    if o.status.success() {
        if photo.is_some_and(|p| p.exists()) || !stdout(&o).contains("quarantined 1") {
            return Err(format!("not quarantined from {}: {}", real.display(), stdout(&o)));
        }
        // The ledger records where the photo was, never relative to the shell's folder.
        let list = stdout(&run(&mut t.cmd(&["--store", &s, "list", "--json"])));
        let v: serde_json::Value = serde_json::from_str(&list).map_err(|e| format!("list: {e}"))?;
        let recorded = v[0]["original_path"].as_str().unwrap_or_default().to_string();
        if !Path::new(&recorded).is_absolute() || !recorded.ends_with("IMG_k.jpg") {
            return Err(format!("recorded original path {recorded:?}"));
        }
    }
    Ok((o, None))
}

/// `export --out PATH` (a folder or a `.zip`): a package that verifies and one `export` event, or neither.
fn export_row(t: &Tree, case: usize, arg: Arg, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    case_store(t, &store, case);
    let name = if arg == ExportZip { "pkg.zip" } else { "pkg" };
    let (typed, real) = t.path(form, case, name);
    let o = run(&mut t.cmd(&["--store", &s, "export", "--case", "C-1", "--out", &typed]));
    let events = export_events(&store);
    if o.status.success() {
        let v = run(&mut t.cmd(&["verify-package", &real.to_string_lossy()]));
        if !v.status.success() || events != 1 {
            return Err(format!("package at {}: {}; export events {events}", real.display(), stdout(&v)));
        }
    } else if events != 0 || real.exists() {
        return Err(format!("failed export left {events} export events, package there: {}", real.exists()));
    }
    Ok((o, Some(real)))
}

/// `report --out PATH`: the report there, or nothing.
fn report_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    case_store(t, &store, case);
    let (typed, real) = t.path(form, case, "rapport.html");
    let o = run(&mut t.cmd(&["--store", &s, "report", "--out", &typed]));
    if o.status.success() {
        let html = std::fs::read_to_string(&real).map_err(|e| format!("{}: {e}", real.display()))?;
        if !html.contains("<svg") {
            return Err(format!("{} is not the report", real.display()));
        }
    } else if real.exists() {
        return Err(format!("a failed report left {}", real.display()));
    }
    Ok((o, Some(real)))
}

/// `tag PATH`: the photo there, in a camera folder, goes to the store.
fn tag_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    let (typed, real) = t.path(form, case, "IMG_t.jpg");
    let camera = real.parent().expect("folder").to_path_buf();
    let cfg = t.root.join(format!("tag-{case}.toml"));
    t.write_config(&cfg, &[&camera]);
    let cfg = cfg.to_string_lossy().into_owned();
    if form != Missing {
        let bytes = SamplePhoto { seed: 4000 + case as u64, ..SamplePhoto::default() }.jpeg();
        fotovakt::sample::write_like_android(&camera, real.file_name().and_then(|n| n.to_str()).expect("name"), &bytes)
            .expect("photo");
    }
    let o = run(&mut t.cmd(&["--config", &cfg, "--store", &s, "tag", &typed, "--case", "T-1"]));
    if o.status.success() && real.exists() {
        return Err(format!("tagged, but still at {}", real.display()));
    }
    Ok((o, None))
}

/// `import --case ID PATH`: the file there goes into the case, recorded by its absolute path, and
/// stays where it is.
fn import_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    let (typed, real) = t.path(form, case, "IMG_i.jpg");
    if form != Missing {
        std::fs::write(&real, SamplePhoto { seed: 6000 + case as u64, ..SamplePhoto::default() }.jpeg())
            .expect("photo");
    }
    let o = run(&mut t.cmd(&["--store", &s, "import", "--case", "I-1", &typed]));
    if o.status.success() {
        if !real.exists() {
            return Err(format!("imported, but {} is gone (no --remove-source)", real.display()));
        }
        let list = stdout(&run(&mut t.cmd(&["--store", &s, "list", "--case", "I-1", "--json"])));
        let v: serde_json::Value = serde_json::from_str(&list).map_err(|e| format!("list: {e}"))?;
        let recorded = v[0]["original_path"].as_str().unwrap_or_default().to_string();
        if !Path::new(&recorded).is_absolute()
            || !recorded.ends_with(real.file_name().and_then(|n| n.to_str()).unwrap_or("?"))
        {
            return Err(format!("recorded source path {recorded:?}"));
        }
    }
    Ok((o, Some(real)))
}

/// `verify-package PATH`: the package there checks out.
fn verify_package_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let store = t.root.join(format!("store-{case}"));
    let s = store.to_string_lossy().into_owned();
    let (typed, real) = t.path(form, case, "paket.zip");
    if form != Missing {
        case_store(t, &store, case);
        let made = run(&mut t.cmd(&["--store", &s, "export", "--case", "C-1", "--out", &real.to_string_lossy()]));
        assert!(made.status.success(), "setup export to {}: {}", real.display(), stderr(&made));
    }
    let o = run(&mut t.cmd(&["verify-package", &typed]));
    if o.status.success() && !stdout(&o).starts_with("OK: case C-1: 1 files") {
        return Err(stdout(&o));
    }
    Ok((o, None))
}

/// `classify PATH`: the file there is read (and scored where ONNX Runtime is installed).
fn classify_row(t: &Tree, case: usize, form: Form) -> RowResult {
    let (typed, real) = t.path(form, case, "IMG_c.jpg");
    let bytes = SamplePhoto { seed: 5000 + case as u64, ..SamplePhoto::default() }.jpeg();
    if form != Missing {
        std::fs::write(&real, &bytes).expect("photo");
    }
    let o = run(&mut t.cmd(&["classify", "--json", &typed]));
    if form != Missing {
        // The file was found and read, whether or not ONNX Runtime is here to score it.
        let v: serde_json::Value =
            serde_json::from_str(stdout(&o).trim()).map_err(|e| format!("classify --json: {e}"))?;
        if v["sha256"] != sha256(&real).as_str() {
            return Err(format!("classify read another file: {v}"));
        }
        if !o.status.success() && !v["error"].as_str().is_some_and(|e| e.contains("ONNX Runtime not found")) {
            return Err(format!("classify: {v}"));
        }
        if !o.status.success() {
            common::skip(format!(
                "ONNX Runtime is not installed; `classify {typed}` read the file but could not score it"
            ));
            return Ok((Command::new("true").output().expect("true"), None));
        }
    }
    Ok((o, None))
}

#[test]
fn every_command_takes_every_kind_of_path() {
    let t = Tree::new();
    std::fs::write(t.root.join("plain.toml"), "[classifier]\nenabled = false\n").expect("config");
    if CASES.iter().any(|(_, form, _)| !t.mounted(*form)) {
        common::skip("not root, so no tmpfs: the other-filesystem and read-only rows are not run");
    }
    // Rows are independent (each has its own names and store): a few at a time.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let case = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&(arg, form, expect)) = CASES.get(case) else { break };
                if !t.mounted(form) {
                    continue;
                }
                if let Err(e) = check_row(&t, case, arg, form, expect) {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("row {case}: {arg:?} {form:?}: {e}"));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort();
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// One row: run it, then check the exit code, the error line, and that nothing
/// half-written was left beside the target.
fn check_row(t: &Tree, case: usize, arg: Arg, form: Form, expect: Expect) -> Result<(), String> {
    let (o, target) = run_case(t, case, arg, form)?;
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("fotovakt: created a new store")).collect();
    match expect {
        Works if o.status.success() => {}
        Works => return Err(format!("exit {:?}: {err}", o.status.code())),
        Fails(code, why) => {
            let named = lines.len() == 1
                && lines[0].starts_with("fotovakt: ")
                && lines[0].contains(why)
                && (lines[0].contains("no-such-folder") || lines[0].contains("/ro"));
            if o.status.code() != Some(code) || !named {
                return Err(format!(
                    "expected exit {code} and one line naming the path and {why:?}; got exit {:?}: {err}",
                    o.status.code()
                ));
            }
        }
    }
    if let Some((folder, name)) = target.as_deref().and_then(|p| Some((p.parent()?, p.file_name()?))) {
        // Rows run side by side and share folders: only this row's own leftovers count.
        let own = format!("-{}", name.to_string_lossy());
        let left: Vec<String> = partials(folder).into_iter().filter(|n| n.ends_with(&own)).collect();
        if !left.is_empty() {
            return Err(format!("partial output left in {}: {left:?}", folder.display()));
        }
    }
    Ok(())
}

/// Issue 28's report, as a new user met it: `export --out pkg` and `--out pkg2.zip` in their
/// own folder said the hand-off failed after the package was written, recorded it anyway, and
/// refused the retry. Now: exit 0, one `export` event per item, a package that verifies.
#[test]
fn export_to_a_bare_name_in_the_current_folder_is_recorded_once_and_verifies() {
    let t = Tree::new();
    std::fs::write(t.root.join("plain.toml"), "[classifier]\nenabled = false\n").expect("config");
    let store = t.root.join("st");
    case_store(&t, &store, 0);
    for (n, out) in ["pkg", "pkg2.zip"].into_iter().enumerate() {
        let o = run(&mut t.cmd(&["--store", "../../st", "export", "--case", "C-1", "--out", out]));
        assert!(o.status.success(), "{out}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{out}: nothing to warn about");
        assert_eq!(export_events(&store), n as i64 + 1, "{out}: one export event per export");
        let v = run(&mut t.cmd(&["verify-package", out]));
        assert!(v.status.success(), "{out}: {}", stdout(&v));
    }
    assert!(partials(&t.here).is_empty(), "{:?}", partials(&t.here));
}

/// A package that cannot be put in place records nothing, says why in one line naming the
/// target, leaves nothing behind, and the retry works without a clean-up: here something
/// appears at the target while the package is written (the export pauses just before its
/// rename, `FOTOVAKT_PAUSE`), and then the export is killed at that point instead.
#[test]
fn a_package_that_cannot_be_placed_is_not_recorded_and_the_retry_works() {
    let t = Tree::new();
    std::fs::write(t.root.join("plain.toml"), "[classifier]\nenabled = false\n").expect("config");
    for (n, out) in ["pkg", "pkg.zip"].into_iter().enumerate() {
        let store = t.root.join(format!("st-{n}"));
        case_store(&t, &store, n);
        let s = store.to_string_lossy().into_owned();
        let mut child = t
            .cmd(&["--store", &s, "export", "--case", "C-1", "--out", out])
            .env("FOTOVAKT_PAUSE", "output_before_rename:1500")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("export");
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut err, &mut first).expect("read");
        assert!(first.contains("pausing"), "{first}");
        std::fs::write(t.here.join(out), b"someone else's file").expect("appears");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).expect("read");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(1), "{rest}");
        let lines: Vec<&str> = rest.lines().filter(|l| l.starts_with("fotovakt: ")).collect();
        assert_eq!(lines, vec![format!("fotovakt: {out}: is a file that is not empty; not replaced")], "{rest}");
        assert_eq!(export_events(&store), 0, "nothing recorded");
        assert_eq!(std::fs::read(t.here.join(out)).expect("theirs"), b"someone else's file", "not replaced");
        assert!(partials(&t.here).is_empty(), "{:?}", partials(&t.here));
        std::fs::remove_file(t.here.join(out)).expect("rm");
        // Killed just before the rename: no event; the partial package is the dead process's
        // and the retry removes it.
        let o = run(t
            .cmd(&["--store", &s, "export", "--case", "C-1", "--out", out])
            .env("FOTOVAKT_FAULT", "output_before_rename"));
        assert_eq!(o.status.code(), None, "killed: {}", stderr(&o));
        assert_eq!(export_events(&store), 0, "nothing recorded");
        assert_eq!(partials(&t.here).len(), 1, "{:?}", partials(&t.here));
        assert!(!t.here.join(out).exists());
        let o = run(&mut t.cmd(&["--store", &s, "export", "--case", "C-1", "--out", out]));
        assert!(o.status.success(), "retry: {}", stderr(&o));
        assert!(partials(&t.here).is_empty(), "the dead export's partial package is gone: {:?}", partials(&t.here));
        assert!(run(&mut t.cmd(&["verify-package", out])).status.success());
        assert_eq!(export_events(&store), 1, "one export, recorded once");
    }
}
