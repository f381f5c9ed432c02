//! Replays the fuzz seeds and the committed regression corpus through the fuzz target
//! bodies on stable, so CI (which does not fuzz) keeps every input the fuzzer found
//! interesting — and every crash it found, once fixed — passing.
//!
//! `fuzz/regressions/<target>/`: `cargo fuzz cmin`-minimised corpus plus minimised crash
//! reproducers; `fuzz/seeds/<target>/`: generated seeds (`cargo run --example fuzz_seeds`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries {
            let path = e.expect("readable fuzz directory").path();
            if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Feed every file through `run`; a panic fails the test naming the file. Returns (ok, err).
fn replay<T, F>(target: &str, run: F) -> (usize, usize)
where
    F: Fn(&[u8]) -> Result<T, String>,
{
    let files = files(target);
    assert!(!files.is_empty(), "no seeds or regressions for {target}");
    let (mut ok, mut err) = (0, 0);
    let mut panicked = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("readable fuzz input");
        match catch_unwind(AssertUnwindSafe(|| run(&bytes))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(message)) => {
                assert!(!message.trim().is_empty(), "{}: empty error message", path.display());
                err += 1;
            }
            Err(_) => panicked.push(path.display().to_string()),
        }
    }
    println!("{target}: replayed {} files ({ok} ok, {err} clear errors)", files.len());
    assert!(panicked.is_empty(), "{target}: panicked on {panicked:?}");
    (ok, err)
}

#[test]
fn intake_corpus_replays_without_panics() {
    let (ok, err) = replay("intake", fotovakt::fuzzing::intake);
    assert!(ok > 0 && err > 0, "the corpus should hold both decodable and broken files");
}

#[test]
fn config_corpus_replays_without_panics() {
    let (ok, err) = replay("config", fotovakt::fuzzing::config);
    assert!(ok > 0 && err > 0, "the corpus should hold both valid and invalid configs");
}
