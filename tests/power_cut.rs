//! Power-cut campaign (issue 14, item 5): the crash campaign's rounds (fault points, random
//! moments during `watch` bursts, `scan`, `tag`, `release`, `export`, `purge`, and kills inside
//! the restart's recovery), each followed by a power cut of the camera's phone-like `mediafs`
//! and of the store's plain `mediafs` (`tests/common/mediafs/power.rs`): what was not made
//! durable is lost, then both are mounted again, the real binary restarts and the invariant
//! is checked (each photo at its original path XOR verified in the store, nothing lost,
//! `verify` clean). See `tests/common/campaign.rs`.
//!
//! CI runs a short campaign; `bash scripts/power-cut-campaign N [SEED]` the long one. Both
//! count the known head-file bug (`campaign::KNOWN_HEAD_BUG`) apart from violations while that
//! constant says it is not fixed; any other violation fails.

mod common;

#[path = "common/campaign.rs"]
mod campaign;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

/// CI size: enough cuts to cover every fault point under both models, under ~2 minutes.
#[test]
fn power_cut_campaign_keeps_every_photo_in_exactly_one_place() {
    if let Some(why) = mediafs::MediaFs::unavailable() {
        eprintln!("SKIP: {why}; the power-cut campaign not run");
        return;
    }
    let mut settings = campaign::Settings::from_env(24);
    settings.power = true;
    settings.rounds_per_rig = 12;
    let tally = campaign::run(&settings);
    assert_eq!(tally.violations, 0, "violations found; each is described above");
    assert!(tally.cuts >= settings.kills, "{} cuts of {}", tally.cuts, settings.kills);
    if !settings.tolerate_head_bug {
        assert_eq!(tally.known_head_bug, 0, "the head bug is marked fixed but showed");
    }
}

/// The long campaign: `bash scripts/power-cut-campaign N`.
#[test]
#[ignore = "long campaign; run with scripts/power-cut-campaign"]
fn long_power_cut_campaign() {
    if let Some(why) = mediafs::MediaFs::unavailable() {
        eprintln!("SKIP: {why}; the power-cut campaign not run");
        return;
    }
    let mut settings = campaign::Settings::from_env(200);
    settings.power = true;
    let tally = campaign::run(&settings);
    assert_eq!(tally.violations, 0, "violations found; each is described above");
}

/// Not a test: the helper process the campaign runs to read the ledger on the power-cut
/// filesystem (`FOTOVAKT_PEEK_DB`), so SQLite's mmap of `-shm` never faults into the FUSE
/// daemon of the campaign's own process. Prints one `PEEK …` line.
#[test]
#[ignore = "helper process of the power-cut campaign (FOTOVAKT_PEEK_DB)"]
fn ledger_peek_helper() {
    let Some(db) = std::env::var_os("FOTOVAKT_PEEK_DB") else {
        eprintln!("SKIP: FOTOVAKT_PEEK_DB not set; this is the campaign's helper process");
        return;
    };
    match campaign::peek_db(std::path::Path::new(&db)) {
        Ok(p) => println!("PEEK {}", p.line()),
        Err(e) => println!("PEEK error {}", e.replace('\n', " ")),
    }
}
