//! fotovakt keeps police and customs evidence photos out of personal cloud sync.
//!
//! Pipeline, one module per stage:
//!
//! * [`watch`]: notify on the camera folders → candidate paths; reconcile at start, on
//!   overflow and on a timer.
//! * [`media`]: which names are candidates, what the bytes are, EXIF facts.
//! * [`classify`]: the on-device ONNX model (EfficientNet-Lite0 + a case head).
//! * [`policy`]: a pure function from evidence and context to a verdict.
//! * [`quarantine`]: the private store and the crash-safe, verified move.
//! * [`ledger`]: SQLite chain-of-custody ledger with hash-chained events.
//! * [`stats`]: counts and durations for admins; [`report`] draws them as one HTML page and
//!   [`serve`] exposes them for Prometheus scrapes; [`health`] is the store's health in them.
//! * [`export`]: case packages (directory or zip, signed, optionally encrypted to their
//!   receiver) and their offline check.
//! * [`signing`]: the device key, signatures of packages and ledger checkpoints.
//! * [`retention`]: when a store file's time is up, and removing it.
//! * [`output`]: how every file or folder a command writes for people is put in place.
//!
//! [`agent::Agent`] ties them together; the CLI ([`cli`]) and the Android bridge call it.

pub mod agent;
/// JNI bridge for the Android app shell (feature `android`).
#[cfg(feature = "android")]
pub mod android;
pub mod classify;
pub mod cli;
pub mod config;
pub mod demo;
pub mod export;
pub mod fault;
pub mod frames;
/// Fuzz target bodies (`fuzz/`, `tests/fuzz_regressions.rs`); not part of the agent's API.
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod ledger;
pub mod media;
pub mod output;
pub mod policy;
pub mod quarantine;
pub mod report;
pub mod retention;
pub mod sample;
pub mod serve;
pub mod signing;
pub mod stats;
pub mod watch;

pub use agent::{Agent, Outcome, OutcomeKind, RetryCause, StoreReader};
pub use config::Config;
