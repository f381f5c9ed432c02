//! The one way a test (or benchmark) skips: [`skip`] prints a fixed marker and, under CI,
//! fails the test unless it is on the allow-list.
//!
//! * The marker is one line on the process's stderr, written past libtest's output capture so
//!   that it shows in `cargo test`'s output whether the test passes or not:
//!   `SKIP: <reason> [<test target>::<test name>]`. `scripts/test` counts these lines and
//!   prints them with the reasons.
//! * With `CI=true` (or `CI=1`) a skip panics: CI is root, has `../shared`, FUSE, `/dev/shm`
//!   and everything `.ci/run` installs, so a skip there means an install step is missing and
//!   the test would pass without having run. Only a test listed in [`ALLOW_LIST`], with why,
//!   may skip in CI.
//!
//! A caller returns right after `skip(…)`; outside CI the test then passes as skipped.
//! `tests/common/mod.rs` declares it (`common::skip`); a benchmark that includes `mediafs`
//! without the rest of `common` includes it by path as `common::skip`.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;

/// The allow-list, relative to the repository root: one `<target>::<test name>  <why>` a line.
pub const ALLOW_LIST: &str = "tests/skip-allowlist.txt";

/// The marker every skip line starts with.
pub const MARKER: &str = "SKIP: ";

/// Is this a CI run (`CI=true` or `CI=1`, as CI services set it)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `<test target>::<test name>` of the running test, e.g. `cli::help_and_version_work`
/// (libtest names each test's thread after the test; a benchmark's is `main`).
pub fn current_test() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    // cargo names test executables `<target>-<16 hex digits>`.
    let target = exe
        .map(|e| match e.rsplit_once('-') {
            Some((t, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => t.to_string(),
            _ => e,
        })
        .unwrap_or_else(|| "?".into());
    let thread = std::thread::current();
    format!("{target}::{}", thread.name().unwrap_or("?"))
}

/// Why `test` may skip in CI, if the allow-list names it.
pub fn allowed(test: &str) -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(ALLOW_LIST);
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).find_map(|l| {
        let (name, why) = l.split_once(char::is_whitespace)?;
        (name == test && !why.trim().is_empty()).then(|| why.trim().to_string())
    })
}

/// Say that the running test skips, and why; under CI, fail it unless it is allow-listed.
pub fn skip(reason: impl std::fmt::Display) {
    let test = current_test();
    let line = format!("{MARKER}{reason} [{test}]\n");
    // Not `eprintln!`: libtest captures that, and a passing test's output is never shown.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if in_ci() {
        match allowed(&test) {
            Some(why) => {
                let _ = std::io::stderr().write_all(format!("  (allowed in CI: {why})\n").as_bytes());
            }
            None => panic!(
                "{test} skipped under CI: {reason}. CI must provide what this test needs (.ci/run installs it); \
                 a test that may skip there must be listed in {ALLOW_LIST} with why"
            ),
        }
    }
}
