//! Admin statistics: read-only queries over the ledger and the store, rendered as JSON,
//! a table or OpenMetrics text. Counts and durations only: never file names, GPS, content
//! or case IDs (case IDs only with `--by-case`).
//!
//! The officer's own photos are counted from their keyed records (`ledger::privacy`): by
//! state and by rule for all time, by day only while their records are kept
//! (`keep_personal_decisions`). No figure here is the time or place of one personal photo:
//! exposure durations and the store's per-day series are of case material only, and a day's
//! count is the finest time any of them has.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::events::kinds;
use crate::ledger::{Action, ItemSource, ItemState, Ledger, LedgerError};
use crate::quarantine::Store;

mod metrics;
pub use metrics::{openmetrics, prometheus_text};

/// Everything `stats` reports. The JSON keys are documented in the README.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    /// When these numbers were taken (ms since the Unix epoch).
    pub generated_at_ms: i64,
    /// Items by state: seen (all decided files), quarantined, released, kept, pending (moves in flight), aborted.
    pub items: Counts,
    /// Per local calendar day (by first-seen day): seen, quarantined, released.
    pub per_day: Vec<Day>,
    /// Decisions by the rule that made them (manual, session, work_site, classifier, duty_hours, released, default),
    /// split by action.
    pub decisions: BTreeMap<String, ByAction>,
    /// Files rejected as bad input (symlinks, FIFOs, empty, unreadable, too large).
    pub rejected: u64,
    /// Exposure window: from the file's write time (or first sight, if earlier) to its verified arrival in the store.
    pub exposure_ms: Exposure,
    /// Releases (false positives put back) per local calendar day of the release.
    pub releases_per_day: Vec<DayCount>,
    /// The store on disk.
    pub store: StoreSize,
    /// Files and bytes held at the end of each local day on which something entered or left the
    /// store, derived from the ledger (quarantined minus released). `store` is the disk's word for now.
    pub store_per_day: Vec<StoreDay>,
    /// Cases: how many, and items per case.
    pub cases: Cases,
    /// Is a case session open now?
    pub session_open: bool,
    /// Retention: overdue, exported, acknowledged and purged items.
    pub retention: RetentionStats,
    /// Storage health: whether reads are trusted, and items left in an audited in-between state.
    pub storage: StorageHealth,
    /// The store's health: failing, full, read-only, or ok; free space; files waiting for it.
    pub health: crate::health::Health,
    /// The device key packages and checkpoints are signed with: what an admin registers per
    /// phone (`null` when the store has none usable).
    pub device_key: Option<DeviceKeyStats>,
    /// The newest signed checkpoint of the ledger, to keep off the phone (`verify --checkpoint`
    /// takes it as it is here); `null` before the first.
    pub checkpoint: Option<crate::signing::Checkpoint>,
    /// Whether the phone takes its time from the network (Android `AUTO_TIME`); `null` where
    /// the shell cannot tell (hosts).
    pub auto_time: Option<bool>,
}

/// The device key, as `stats` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceKeyStats {
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// SHA-256 of the public key's `SubjectPublicKeyInfo` DER, hex.
    pub fingerprint: String,
    /// `key_file`, `android_keystore` or `android_strongbox`.
    pub provider: String,
}

/// Storage health (issue 10): what a phone's shared storage did to the agent's moves.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StorageHealth {
    /// `false` while the agent may be reading bytes the filesystem altered (Android without
    /// `ACCESS_MEDIA_LOCATION` redacts GPS on read): nothing is moved while it is off.
    pub media_location_access: bool,
    /// Items verified in the store whose original could not be deleted (`copied_original_kept`):
    /// the original is still where sync can see it; reconcile retries the delete.
    pub originals_kept: u64,
    /// Items held (`held`): decided while media-location access was off and left untouched.
    pub held: u64,
    /// Releases whose write-back failed; each item stayed in the store.
    pub releases_failed: u64,
}

/// Retention counts: defined with the rules that produce them.
pub use crate::retention::RetentionStats;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub seen: u64,
    pub quarantined: u64,
    pub released: u64,
    pub kept: u64,
    pub pending: u64,
    pub aborted: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Day {
    pub date: String,
    pub seen: u64,
    pub quarantined: u64,
    pub released: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ByAction {
    pub quarantine: u64,
    pub keep: u64,
}

/// Upper bounds (ms, inclusive) of the exposure histogram's buckets; a last, open bucket follows.
/// Log-ish: a healthy agent lands in the first few, a stalled one in the last.
pub const EXPOSURE_BUCKETS_MS: [i64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Exposure {
    pub count: u64,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub max: Option<i64>,
    /// Sum of all exposure windows (ms), for averages and the OpenMetrics histogram.
    pub sum: i64,
    /// Histogram: items per bucket (not cumulative); `le` is the bucket's inclusive upper
    /// bound in ms, `null` for the last, open bucket.
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    pub le: Option<i64>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayCount {
    pub date: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreDay {
    pub date: String,
    pub files: u64,
    pub bytes: u64,
}

/// What is on disk in the store now. Both are `null` (and `error` says why) when the store
/// could not be listed: an unknown is never shown as zero.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreSize {
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StoreSize {
    /// The sizes of `store`'s files, or why they are unknown.
    pub fn of(store: &Store) -> StoreSize {
        match store.objects() {
            Ok(o) => {
                StoreSize { files: Some(o.len() as u64), bytes: Some(o.iter().map(|(_, s)| s).sum()), error: None }
            }
            Err(e) => StoreSize { files: None, bytes: None, error: Some(format!("cannot list the store: {e}")) },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cases {
    pub count: u64,
    pub items_per_case_p50: Option<u64>,
    pub items_per_case_max: Option<u64>,
    /// Only with `--by-case`: item count per case ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_case: Option<BTreeMap<String, u64>>,
}

fn q<T>(
    l: &Ledger,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, LedgerError> {
    let err = |source| LedgerError::Sqlite { path: l.path().to_path_buf(), source };
    let mut stmt = l.conn().prepare(sql).map_err(err)?;
    let rows = stmt.query_map([], f).map_err(err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(err)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The device key the ledger recorded last (its newest `device_key` event), as `stats` shows it.
fn recorded_device_key(l: &Ledger) -> Result<Option<DeviceKeyStats>, LedgerError> {
    Ok(l.events_of_kind(kinds::DEVICE_KEY)?.into_iter().rev().find_map(|(_, _, e)| match e {
        crate::ledger::Event::DeviceKey { algorithm, fingerprint, provider, .. } => {
            Some(DeviceKeyStats { algorithm, fingerprint, provider })
        }
        _ => None,
    }))
}

/// Take the numbers, with retention counted against `retention` (the configured `[retention]`
/// settings: `Agent::stats` passes them).
pub fn collect_configured(
    l: &Ledger,
    store: &Store,
    by_case: bool,
    retention: &crate::config::RetentionConfig,
) -> Result<Stats, LedgerError> {
    let now = crate::ledger::now_ms();
    let personal = l.personal_counts()?;
    let mut by_state = items_by_state(l)?;
    *by_state.entry(ItemState::Kept).or_default() += personal.kept + personal.forgotten;
    *by_state.entry(ItemState::Held).or_default() += personal.held;
    Ok(Stats {
        generated_at_ms: now,
        items: item_counts(&by_state),
        per_day: per_day(l, &personal.per_day)?,
        decisions: decisions(l, &personal.by_source)?,
        rejected: l.count_events(kinds::REJECTED)?,
        exposure_ms: exposure(l)?,
        releases_per_day: q(
            l,
            "SELECT date(released_at_ms / 1000, 'unixepoch', 'localtime') AS d, count(*) FROM items \
             WHERE released_at_ms IS NOT NULL GROUP BY d ORDER BY d",
            |r| Ok(DayCount { date: r.get(0)?, count: r.get::<_, i64>(1)? as u64 }),
        )?,
        store: StoreSize::of(store),
        store_per_day: store_per_day(l)?,
        cases: cases(l, by_case)?,
        session_open: l.open_session()?.is_some(),
        retention: crate::retention::stats(l, retention, now)?,
        storage: StorageHealth {
            // The agent sets it from its config (`Agent::stats`); the ledger cannot know.
            media_location_access: true,
            originals_kept: by_state.get(&ItemState::OriginalKept).copied().unwrap_or(0),
            held: by_state.get(&ItemState::Held).copied().unwrap_or(0),
            releases_failed: l.count_events(kinds::RELEASE_FAILED)?,
        },
        // The key the ledger recorded last, read-only; the agent sets the one it signs with
        // (`Agent::stats`).
        device_key: recorded_device_key(l)?,
        checkpoint: crate::signing::Checkpoint::read(&store.root().join(crate::signing::checkpoint::FILE_NAME))
            .unwrap_or(None),
        auto_time: crate::ledger::clock::auto_time(),
        // The filesystem's side; the agent adds what it saw fail (`Agent::stats`).
        health: crate::health::Health::of_filesystem(store.root()),
    })
}

/// Items per stored state (an unknown state is an error, not a guess).
fn items_by_state(l: &Ledger) -> Result<BTreeMap<ItemState, u64>, LedgerError> {
    Ok(q(l, "SELECT state, count(*) FROM items GROUP BY state", |r| {
        Ok((r.get::<_, ItemState>(0)?, r.get::<_, i64>(1)? as u64))
    })?
    .into_iter()
    .collect())
}

fn item_counts(by_state: &BTreeMap<ItemState, u64>) -> Counts {
    let mut items = Counts::default();
    for (state, &n) in by_state {
        items.seen += n;
        match state {
            ItemState::Quarantined => items.quarantined += n,
            ItemState::Released => items.released += n,
            ItemState::Kept => items.kept += n,
            ItemState::Moving | ItemState::Releasing => items.pending += n,
            // Counted in `storage` and `retention`.
            ItemState::Purged | ItemState::OriginalKept | ItemState::Held => {}
            ItemState::Aborted => items.aborted += n,
        }
    }
    items
}

/// Items per first-seen day, with the personal records still kept counted by their day.
fn per_day(l: &Ledger, personal: &BTreeMap<String, u64>) -> Result<Vec<Day>, LedgerError> {
    let mut days: BTreeMap<String, Day> = q(
        l,
        "SELECT date(first_seen_ms / 1000, 'unixepoch', 'localtime') AS d, count(*), \
         sum(state = 'quarantined'), sum(state = 'released') FROM items GROUP BY d ORDER BY d",
        |r| {
            Ok(Day {
                date: r.get(0)?,
                seen: r.get::<_, i64>(1)? as u64,
                quarantined: r.get::<_, i64>(2)? as u64,
                released: r.get::<_, i64>(3)? as u64,
            })
        },
    )?
    .into_iter()
    .map(|d| (d.date.clone(), d))
    .collect();
    for (date, n) in personal {
        days.entry(date.clone())
            .or_insert_with(|| Day { date: date.clone(), seen: 0, quarantined: 0, released: 0 })
            .seen += n;
    }
    Ok(days.into_values().collect())
}

/// Decisions by rule and action: items, plus the personal decisions (records and tallies).
fn decisions(l: &Ledger, personal: &BTreeMap<String, u64>) -> Result<BTreeMap<String, ByAction>, LedgerError> {
    let mut decisions: BTreeMap<String, ByAction> =
        personal.iter().map(|(source, n)| (source.clone(), ByAction { quarantine: 0, keep: *n })).collect();
    for (source, action, n) in
        q(l, "SELECT source, action, count(*) FROM items WHERE state != 'aborted' GROUP BY source, action", |r| {
            Ok((r.get::<_, ItemSource>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64))
        })?
    {
        let e: &mut ByAction = decisions.entry(source.as_str().to_string()).or_default();
        if action == Action::Quarantine.as_str() {
            e.quarantine += n;
        } else {
            e.keep += n;
        }
    }
    Ok(decisions)
}

fn exposure(l: &Ledger) -> Result<Exposure, LedgerError> {
    // A file stamped in the future (clock skew) counts as exposed for 0 ms, not a negative time.
    let mut exposure = q(
        l,
        "SELECT max(quarantined_at_ms - min(coalesce(file_mtime_ns / 1000000, first_seen_ms), first_seen_ms), 0) \
         FROM items WHERE quarantined_at_ms IS NOT NULL",
        |r| r.get::<_, i64>(0),
    )?;
    exposure.sort_unstable();
    let mut buckets: Vec<Bucket> = EXPOSURE_BUCKETS_MS.iter().map(|&le| Bucket { le: Some(le), count: 0 }).collect();
    buckets.push(Bucket { le: None, count: 0 });
    for &v in &exposure {
        let i = EXPOSURE_BUCKETS_MS.iter().position(|&le| v <= le).unwrap_or(EXPOSURE_BUCKETS_MS.len());
        buckets[i].count += 1;
    }
    Ok(Exposure {
        count: exposure.len() as u64,
        p50: percentile(&exposure, 50.0),
        p95: percentile(&exposure, 95.0),
        max: exposure.last().copied(),
        sum: exposure.iter().sum(),
        buckets,
    })
}

fn store_per_day(l: &Ledger) -> Result<Vec<StoreDay>, LedgerError> {
    let mut held = (0i64, 0i64);
    Ok(q(
        l,
        "SELECT d, sum(n), sum(b) FROM ( \
           SELECT date(quarantined_at_ms / 1000, 'unixepoch', 'localtime') AS d, 1 AS n, size AS b \
             FROM items WHERE quarantined_at_ms IS NOT NULL \
           UNION ALL \
           SELECT date(released_at_ms / 1000, 'unixepoch', 'localtime'), -1, -size \
             FROM items WHERE quarantined_at_ms IS NOT NULL AND released_at_ms IS NOT NULL) \
         GROUP BY d ORDER BY d",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
    )?
    .into_iter()
    .map(|(date, n, b)| {
        held = (held.0 + n, held.1 + b);
        StoreDay { date, files: held.0.max(0) as u64, bytes: held.1.max(0) as u64 }
    })
    .collect())
}

fn cases(l: &Ledger, by_case: bool) -> Result<Cases, LedgerError> {
    let per_case = q(
        l,
        "SELECT case_id, count(*) FROM items WHERE case_id IS NOT NULL AND state = 'quarantined' GROUP BY case_id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut counts: Vec<i64> = per_case.iter().map(|(_, n)| *n).collect();
    counts.sort_unstable();
    Ok(Cases {
        count: counts.len() as u64,
        items_per_case_p50: percentile(&counts, 50.0).map(|v| v as u64),
        items_per_case_max: counts.last().map(|v| *v as u64),
        by_case: by_case.then(|| per_case.into_iter().map(|(c, n)| (c, n as u64)).collect()),
    })
}

/// A table for a terminal.
pub fn table(s: &Stats) -> String {
    let mut o = String::new();
    let c = &s.items;
    let _ = writeln!(
        o,
        "items       seen {}  quarantined {}  released {}  kept {}  pending {}  aborted {}",
        c.seen, c.quarantined, c.released, c.kept, c.pending, c.aborted
    );
    let _ = writeln!(o, "rejected    {}", s.rejected);
    let fmt = |v: Option<i64>| v.map(|x| format!("{x} ms")).unwrap_or_else(|| "-".into());
    let e = &s.exposure_ms;
    let _ = writeln!(o, "exposure    p50 {}  p95 {}  max {}  (n={})", fmt(e.p50), fmt(e.p95), fmt(e.max), e.count);
    match (&s.store, s.store.files.zip(s.store.bytes)) {
        (_, Some((files, bytes))) => {
            let _ = writeln!(o, "store       {files} files, {bytes} bytes");
        }
        (st, None) => {
            let _ = writeln!(o, "store       unknown ({})", st.error.as_deref().unwrap_or("not listed"));
        }
    }
    let hl = &s.health;
    let free = hl.free_bytes.map(|b| format!("{b} bytes free")).unwrap_or_else(|| "free space unknown".into());
    let why = hl.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let _ = writeln!(o, "health      store {}{why}  ({free}, {} waiting)", hl.store.as_str(), hl.waiting);
    let _ = writeln!(
        o,
        "cases       {}  items/case p50 {}  max {}",
        s.cases.count,
        s.cases.items_per_case_p50.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        s.cases.items_per_case_max.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(o, "session     {}", if s.session_open { "open" } else { "none" });
    let h = &s.storage;
    let _ = writeln!(
        o,
        "storage     media location access {}  originals kept {}  held {}  releases failed {}",
        if h.media_location_access { "yes" } else { "NO (nothing is moved)" },
        h.originals_kept,
        h.held,
        h.releases_failed
    );
    let r = &s.retention;
    let _ = writeln!(
        o,
        "retention   overdue {}{}  exported {}  acknowledged {}  purged {}",
        r.overdue,
        r.oldest_overdue_days.map(|d| format!(" (oldest {d:.1} days past due)")).unwrap_or_default(),
        r.exported,
        r.acknowledged,
        r.purged
    );
    match &s.device_key {
        Some(k) => {
            let _ = writeln!(o, "device key  {} {} ({})", k.algorithm, k.fingerprint, k.provider);
        }
        None => {
            let _ = writeln!(o, "device key  NONE (packages cannot be signed; see the log)");
        }
    }
    if let Some(c) = &s.checkpoint {
        let _ = writeln!(o, "checkpoint  event {} at {}  hash {}", c.seq, crate::export::utc(c.at_ms), c.hash);
    }
    let _ = writeln!(o, "decisions   {:<12} {:>10} {:>6}", "source", "quarantine", "keep");
    for (src, a) in &s.decisions {
        let _ = writeln!(o, "            {:<12} {:>10} {:>6}", src, a.quarantine, a.keep);
    }
    let _ = writeln!(o, "per day     {:<10} {:>6} {:>11} {:>8}", "date", "seen", "quarantined", "released");
    for d in &s.per_day {
        let _ = writeln!(o, "            {:<10} {:>6} {:>11} {:>8}", d.date, d.seen, d.quarantined, d.released);
    }
    if let Some(by) = &s.cases.by_case {
        for (case, n) in by {
            let _ = writeln!(o, "case        {case}: {n}");
        }
    }
    o
}

/// The content type of [`openmetrics`] text.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`prometheus_text`] (the classic text format).
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
