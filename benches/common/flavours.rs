//! What the classifier benches share (`benches/classify.rs`, `benches/latency.rs`): the photo
//! flavours of `bench/classify_make_photos.py` and the Python peer.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Flavour folders in report order; others follow by name.
const ORDER: &[&str] = &["none", "project", "piexif", "exiftool", "camera"];

/// The JPEGs of `dir`, sorted.
pub fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect::<Vec<PathBuf>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p: &PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    v.sort();
    v
}

/// `root`'s JPEGs as one flavour, or one flavour per subfolder in report order; with
/// `FOTOVAKT_BENCH_FLAVOURS=a,b` only those subfolders.
pub fn flavours(root: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let top = jpegs(root);
    if !top.is_empty() {
        return vec![(root.file_name().map_or("photos".into(), |n| n.to_string_lossy().into_owned()), top)];
    }
    let wanted: Option<Vec<String>> =
        std::env::var("FOTOVAKT_BENCH_FLAVOURS").ok().map(|v| v.split(',').map(str::to_string).collect());
    let mut subs: Vec<(String, Vec<PathBuf>)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}; run python3 bench/classify_make_photos.py first", root.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), jpegs(&e.path())))
        .filter(|(n, v)| !v.is_empty() && wanted.as_ref().is_none_or(|w| w.contains(n)))
        .collect();
    subs.sort_by_key(|(n, _)| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.clone()));
    assert!(!subs.is_empty(), "no photos under {}", root.display());
    subs
}

/// The Python peer (`bench/classify_peer.py --serve`: Pillow `draft` + onnxruntime, same
/// int8 model, one thread), one photo path a line in, its classify-only milliseconds out.
pub struct Peer {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Peer {
    pub fn spawn() -> Option<Peer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/classify_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--serve", "--threads", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let to = child.stdin.take()?;
        let mut from = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        from.read_line(&mut line).ok()?;
        (line.trim() == "ready").then_some(Peer { child, to: Some(to), from })
    }

    /// The peer's classify-only time for one photo, or `None` if Pillow could not decode it.
    pub fn time(&mut self, photo: &Path) -> Option<f64> {
        writeln!(self.to.as_mut()?, "{}", photo.display()).expect("peer stdin");
        let mut line = String::new();
        self.from.read_line(&mut line).expect("peer stdout");
        line.trim().parse().ok()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.to.take());
        let _ = self.child.wait();
    }
}
