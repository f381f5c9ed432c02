//! Shared helpers for the integration tests: a phone-like temp tree and a runner for the
//! real `fotovakt` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fotovakt::sample::SamplePhoto;

pub mod skip;
#[allow(unused_imports)]
pub use skip::skip;

/// A temporary phone: `phone/DCIM/Camera` (synced by Syncthing) and a private store.
pub struct Phone {
    pub dir: tempfile::TempDir,
    pub camera: PathBuf,
    pub store: PathBuf,
}

impl Phone {
    pub fn new() -> Phone {
        Phone::with_store_under(None)
    }

    /// A phone whose store lives under `store_parent` (another filesystem, say).
    pub fn with_store_under(store_parent: Option<&Path>) -> Phone {
        let dir = tempfile::tempdir().expect("tempdir");
        let camera = dir.path().join("phone/DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera dir");
        std::fs::create_dir_all(dir.path().join("phone/DCIM/.stfolder")).expect("sync marker");
        let store = match store_parent {
            Some(p) => p.join(format!("store-{}", dir.path().file_name().unwrap_or_default().to_string_lossy())),
            None => dir.path().join("private/store"),
        };
        Phone { dir, camera, store }
    }

    /// Config for the library API.
    pub fn config(&self) -> fotovakt::Config {
        fotovakt::Config {
            store: Some(self.store.clone()),
            cameras: vec![self.camera.clone()],
            settle: Duration::from_millis(300),
            ..fotovakt::Config::default()
        }
    }

    /// Run the binary with `--store` and the given args; camera folders via `--camera` where the
    /// command takes it.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("run fotovakt")
    }

    /// The command `run_env` runs, for tests that need to interact with it while it runs.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fotovakt"));
        cmd.arg("--store").arg(&self.store);
        cmd.args(args);
        if matches!(args.first(), Some(&"scan") | Some(&"watch")) {
            cmd.arg("--camera").arg(&self.camera);
        }
        cmd.env_remove("FOTOVAKT_CONFIG").env("FOTOVAKT_LOG", "fotovakt=info").env("NO_COLOR", "1");
        // A config file that turns the model off keeps these tests about the core.
        let cfg = self.dir.path().join("test-config.toml");
        if !cfg.exists() {
            std::fs::write(&cfg, "[classifier]\nenabled = false\n").expect("config");
        }
        cmd.env("FOTOVAKT_CONFIG", &cfg);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Write a sample JPEG the way Android does; returns its final path.
    pub fn shoot(&self, name: &str, seed: u64) -> PathBuf {
        let bytes = SamplePhoto { seed, ..SamplePhoto::default() }.jpeg();
        fotovakt::sample::write_like_android(&self.camera, name, &bytes).expect("write photo")
    }

    /// Files in the store's objects directory.
    pub fn stored(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(shards) = std::fs::read_dir(self.store.join("objects")) {
            for s in shards.flatten() {
                for f in std::fs::read_dir(s.path()).into_iter().flatten().flatten() {
                    out.push(f.path());
                }
            }
        }
        out.sort();
        out
    }

    /// The staging folder the agent picks for this phone's camera folder (`DCIM` is synced and
    /// a media folder, so the phone's root).
    pub fn staging(&self) -> PathBuf {
        self.dir.path().join("phone/.fotovakt-staging")
    }

    /// Files waiting in the staging folder (its `.nomedia` excluded).
    pub fn staged(&self) -> Vec<PathBuf> {
        staged_in(&self.staging())
    }

    /// Start `scan` paused at fault point `point` for `ms` (`FOTOVAKT_PAUSE`), wait until it
    /// says it paused, run `meddle` while it waits there, and let it finish (it must succeed).
    pub fn scan_paused(&self, point: &str, ms: u64, meddle: impl FnOnce()) -> Output {
        use std::io::BufRead;
        let pause = format!("{point}:{ms}");
        let mut child = self
            .command(&["scan"], &[("FOTOVAKT_PAUSE", pause.as_str())])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn scan");
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut log = String::new();
        loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).expect("read stderr");
            log.push_str(&line);
            assert!(n > 0, "{point}: scan ended before it paused:\n{log}");
            if line.contains("pausing") {
                break;
            }
        }
        meddle();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).expect("read stderr");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{point}: scan failed:\n{log}{rest}");
        out
    }

    /// Media files left in the camera folder (dotfiles excluded).
    pub fn in_camera(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.camera)
            .expect("camera")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    }
}

/// Files in a staging folder, its `.nomedia` excluded.
pub fn staged_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != ".nomedia")
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// Poll until `f` holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The nothing-lost invariant for a set of photos (name → sha256): each is either at its
/// original path with those bytes, or verified in the store — exactly one of the two.
pub fn assert_invariant(phone: &Phone, photos: &[(String, String)]) {
    let stored: Vec<(PathBuf, String)> = phone
        .stored()
        .into_iter()
        .map(|p| {
            let h = sha256(&p);
            (p, h)
        })
        .collect();
    for (name, sha) in photos {
        let at_origin = phone.camera.join(name);
        let here = at_origin.exists() && &sha256(&at_origin) == sha;
        let in_store = stored.iter().filter(|(p, h)| h == sha && p.to_string_lossy().contains(sha.as_str())).count();
        assert!(
            (here as usize) + in_store == 1,
            "{name}: at original path: {here}, verified copies in store: {in_store} (must be exactly one place)"
        );
    }
    let tmp = phone.store.join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp).map(|r| r.flatten().collect()).unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "temp files left in the store: {:?}",
        leftovers.iter().map(|e| e.path()).collect::<Vec<_>>()
    );
}

/// `agent.on_media(path)` as the watcher does it: a file reported "still open for writing"
/// is looked at again shortly. (Parallel tests fork child processes, and a child briefly
/// holds copies of the test's own write descriptors until it execs.)
pub fn handle(agent: &fotovakt::Agent, path: &Path) -> fotovakt::Outcome {
    for _ in 0..100 {
        let o = agent.on_media(path);
        if !(o.kind == fotovakt::OutcomeKind::Retry && o.detail.as_deref() == Some("still open for writing")) {
            return o;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.on_media(path)
}

/// A phone whose ledger holds every kind of outcome, all made through the real binary:
/// two personal photos kept (one later tagged by hand: a new, manual item), four shot during
/// a case session and quarantined, one of those released as a false positive, and an empty
/// file rejected. Afterwards: quarantined 4 (3 by session, 1 manual), released 1.
pub fn phone_with_all_states() -> Phone {
    let phone = Phone::new();
    let ok = |o: Output| {
        assert!(o.status.success(), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
        o
    };
    phone.shoot("IMG_personal1.jpg", 1);
    phone.shoot("IMG_personal2.jpg", 2);
    std::fs::write(phone.camera.join("IMG_empty.jpg"), b"").expect("empty file");
    ok(phone.run(&["scan"]));
    ok(phone.run(&["session", "start", "--case", "CASE-SECRET-9", "--officer", "officer-a"]));
    for i in 0..4 {
        phone.shoot(&format!("IMG_case{i}.jpg"), 10 + i);
    }
    let o = ok(phone.run(&["scan"]));
    assert!(stdout(&o).contains("quarantined 4"), "{}", stdout(&o));
    ok(phone.run(&["session", "stop"]));
    // Tag by path: the config must know the camera folder.
    let cfg = phone.dir.path().join("cam.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n[classifier]\nenabled = false\n", phone.camera)).expect("cfg");
    let personal = phone.camera.join("IMG_personal2.jpg");
    ok(phone.run(&[
        "--config",
        &cfg.to_string_lossy(),
        "tag",
        &personal.to_string_lossy(),
        "--case",
        "CASE-SECRET-9",
        "--officer",
        "officer-a",
    ]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&ok(phone.run(&["list", "--json"])))).expect("json");
    let session_item = list
        .as_array()
        .and_then(|a| a.iter().find(|i| i["source"] == "session"))
        .and_then(|i| i["id"].as_i64())
        .expect("a session item");
    ok(phone.run(&["release", &session_item.to_string(), "--reason", "not case material", "--officer", "officer-a"]));
    phone
}

/// Every file under `dir` (not the directories), recursively, sorted; nothing if `dir` is
/// missing.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
