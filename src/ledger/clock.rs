//! A second clock on every event: the boot it was recorded in and the time since that boot.
//!
//! An event's `at_ms` is the wall clock, which anyone who can set the phone's time can move
//! back (backdating a photo's intake, say). `CLOCK_BOOTTIME` counts from boot, suspend
//! included, and nobody sets it. [`Tx::record`](super::Tx::record) adds a [`Stamp`] to each
//! event's data (under [`KEY`], inside what the hash covers); `verify` then flags an event
//! whose wall clock runs backwards while the boot clock ran forwards within one boot
//! ([`super::Problem::ClockRanBackwards`]).
//!
//! Where the Android shell can tell, the stamp also says whether the phone takes its time from
//! the network (`Settings.Global.AUTO_TIME`, [`set_auto_time`]): a clock set by hand is what
//! makes backdating possible in the first place.

use std::sync::atomic::{AtomicI8, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The key of the stamp in an event's data.
pub const KEY: &str = "clock";

/// Wall-clock steps back smaller than this are not flagged: network time corrects a drifting
/// phone clock by a few seconds now and then; backdating that matters is minutes or more.
pub const TOLERANCE_MS: i64 = 30_000;

/// The monotonic stamp of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The kernel's boot id: stamps compare only within one boot.
    pub boot: String,
    /// `CLOCK_BOOTTIME` in ms: time since that boot, suspend included; never set back.
    pub mono_ms: i64,
    /// Whether the phone's time came from the network (`Settings.Global.AUTO_TIME`), when
    /// the shell said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_time: Option<bool>,
}

/// -1 unknown, 0 off, 1 on.
static AUTO_TIME: AtomicI8 = AtomicI8::new(-1);

/// Tell the core whether automatic (network) time is on; `None` when it cannot be told.
pub fn set_auto_time(on: Option<bool>) {
    AUTO_TIME.store(on.map_or(-1, i8::from), Ordering::Relaxed);
}

/// What the shell last said about automatic time.
pub fn auto_time() -> Option<bool> {
    match AUTO_TIME.load(Ordering::Relaxed) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, Linux and Android), read once.
fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// `CLOCK_BOOTTIME` in ms.
fn boottime_ms() -> Option<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then(|| ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000)
}

/// The stamp for an event recorded now; `None` where the boot id or the clock cannot be read
/// (the event is then recorded without one, and `verify` has nothing to compare).
pub fn now() -> Option<Stamp> {
    Some(Stamp { boot: boot_id()?.to_string(), mono_ms: boottime_ms()?, auto_time: auto_time() })
}

/// The stamp in an event's stored data, if it has one.
pub fn of_data(data: &serde_json::Value) -> Option<Stamp> {
    serde_json::from_value(data.get(KEY)?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_run_forwards_within_a_boot_and_read_back() {
        let a = now().expect("a Linux host has a boot id and CLOCK_BOOTTIME");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now().expect("stamp");
        assert_eq!(a.boot, b.boot);
        assert!(b.mono_ms >= a.mono_ms + 4, "{a:?} {b:?}");
        let data = serde_json::json!({ "x": 1, KEY: a });
        assert_eq!(of_data(&data), Some(a));
        assert_eq!(of_data(&serde_json::json!({"x": 1})), None);
        set_auto_time(Some(false));
        assert_eq!(now().expect("stamp").auto_time, Some(false));
        set_auto_time(None);
        assert_eq!(auto_time(), None);
    }
}
