//! Admin statistics: read-only queries over the ledger and the store, rendered as JSON,
//! a table or OpenMetrics text. Counts and durations only: never file names, GPS, content
//! or case IDs (case IDs only with `--by-case`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::events::kinds;
use crate::ledger::{Action, ItemSource, ItemState, Ledger, LedgerError};
use crate::quarantine::Store;

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

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreSize {
    pub files: u64,
    pub bytes: u64,
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

/// Take the numbers, with retention counted against `retention` (the configured `[retention]`
/// settings: `Agent::stats` passes them).
pub fn collect_configured(
    l: &Ledger,
    store: &Store,
    by_case: bool,
    retention: &crate::config::RetentionConfig,
) -> Result<Stats, LedgerError> {
    let now = crate::ledger::now_ms();
    let (files, bytes) = store.objects().map(|o| (o.len() as u64, o.iter().map(|(_, s)| s).sum())).unwrap_or((0, 0));
    let by_state = items_by_state(l)?;
    Ok(Stats {
        generated_at_ms: now,
        items: item_counts(&by_state),
        per_day: per_day(l)?,
        decisions: decisions(l)?,
        rejected: l.count_events(kinds::REJECTED)?,
        exposure_ms: exposure(l)?,
        releases_per_day: q(
            l,
            "SELECT date(released_at_ms / 1000, 'unixepoch', 'localtime') AS d, count(*) FROM items \
             WHERE released_at_ms IS NOT NULL GROUP BY d ORDER BY d",
            |r| Ok(DayCount { date: r.get(0)?, count: r.get::<_, i64>(1)? as u64 }),
        )?,
        store: StoreSize { files, bytes },
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
        // The agent sets it from its signer (`Agent::stats`).
        device_key: None,
        checkpoint: crate::signing::Checkpoint::read(&store.root().join(crate::signing::checkpoint::FILE_NAME))
            .unwrap_or(None),
        auto_time: crate::ledger::clock::auto_time(),
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

fn per_day(l: &Ledger) -> Result<Vec<Day>, LedgerError> {
    q(
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
    )
}

fn decisions(l: &Ledger) -> Result<BTreeMap<String, ByAction>, LedgerError> {
    let mut decisions = BTreeMap::new();
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
    let _ = writeln!(o, "store       {} files, {} bytes", s.store.files, s.store.bytes);
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

/// One metric family, rendered either way.
struct Family {
    name: &'static str,
    kind: &'static str,
    unit: Option<&'static str>,
    help: &'static str,
    /// (suffix, labels, value)
    samples: Vec<(&'static str, String, String)>,
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

fn ms_to_seconds(v: Option<i64>) -> String {
    v.map(|x| float(x as f64 / 1000.0)).unwrap_or_else(|| "NaN".into())
}

/// The metric families, in one place so both formats say the same. Labels only ever carry
/// states, deciding rules, actions and bucket bounds: never names, places or case IDs.
fn families(s: &Stats) -> Vec<Family> {
    let mut all = decision_families(s);
    all.extend(exposure_families(&s.exposure_ms));
    all.extend(store_families(s));
    all
}

fn gauge(name: &'static str, unit: Option<&'static str>, help: &'static str, value: String) -> Family {
    Family { name, kind: "gauge", unit, help, samples: vec![("", String::new(), value)] }
}

fn counter(name: &'static str, help: &'static str, value: u64) -> Family {
    Family { name, kind: "counter", unit: None, help, samples: vec![("_total", String::new(), value.to_string())] }
}

/// Items by state, seen, decisions by rule, rejected.
fn decision_families(s: &Stats) -> Vec<Family> {
    let c = &s.items;
    let mut decisions = Vec::new();
    for (src, a) in &s.decisions {
        for (action, n) in [("quarantine", a.quarantine), ("keep", a.keep)] {
            decisions.push(("", format!("{{source=\"{src}\",action=\"{action}\"}}"), n.to_string()));
        }
    }
    vec![
        Family {
            name: "fotovakt_items",
            kind: "gauge",
            unit: None,
            help: "Items decided by the agent, by current state.",
            samples: [
                ("quarantined", c.quarantined),
                ("released", c.released),
                ("kept", c.kept),
                ("pending", c.pending),
                ("aborted", c.aborted),
            ]
            .iter()
            .map(|(st, n)| ("", format!("{{state=\"{st}\"}}"), n.to_string()))
            .collect(),
        },
        counter("fotovakt_seen", "Files decided since the store was created.", c.seen),
        Family {
            name: "fotovakt_decisions",
            kind: "gauge",
            unit: None,
            help: "Items by the rule that made their current decision, and the action.",
            samples: decisions,
        },
        counter("fotovakt_rejected", "Files rejected as bad input.", s.rejected),
    ]
}

/// The exposure histogram and its percentiles.
fn exposure_families(e: &Exposure) -> Vec<Family> {
    let mut hist = Vec::new();
    let mut cumulative = 0;
    for b in &e.buckets {
        cumulative += b.count;
        let le = b.le.map(|ms| float(ms as f64 / 1000.0)).unwrap_or_else(|| "+Inf".into());
        hist.push(("_bucket", format!("{{le=\"{le}\"}}"), cumulative.to_string()));
    }
    hist.push(("_count", String::new(), e.count.to_string()));
    hist.push(("_sum", String::new(), float(e.sum as f64 / 1000.0)));
    vec![
        Family {
            name: "fotovakt_exposure_seconds",
            kind: "histogram",
            unit: Some("seconds"),
            help: "Exposure window from file write to verified quarantine.",
            samples: hist,
        },
        gauge(
            "fotovakt_exposure_p50_seconds",
            Some("seconds"),
            "Median exposure window on this device.",
            ms_to_seconds(e.p50),
        ),
        gauge(
            "fotovakt_exposure_p95_seconds",
            Some("seconds"),
            "95th percentile exposure window on this device.",
            ms_to_seconds(e.p95),
        ),
        gauge(
            "fotovakt_exposure_max_seconds",
            Some("seconds"),
            "Longest exposure window on this device.",
            ms_to_seconds(e.max),
        ),
    ]
}

/// The store, cases, sessions, retention and storage health.
fn store_families(s: &Stats) -> Vec<Family> {
    vec![
        gauge(
            "fotovakt_store_bytes",
            Some("bytes"),
            "Bytes of original files held in the store.",
            s.store.bytes.to_string(),
        ),
        gauge("fotovakt_store_files", None, "Files held in the store.", s.store.files.to_string()),
        gauge("fotovakt_cases", None, "Cases with at least one quarantined item.", s.cases.count.to_string()),
        gauge("fotovakt_session_open", None, "1 while a case session is open.", (s.session_open as u8).to_string()),
        gauge(
            "fotovakt_items_overdue",
            None,
            "Items in the store never exported and past quarantined_days.",
            s.retention.overdue.to_string(),
        ),
        gauge(
            "fotovakt_items_exported",
            None,
            "Items in the store exported at least once.",
            s.retention.exported.to_string(),
        ),
        gauge(
            "fotovakt_items_acknowledged",
            None,
            "Items in the store whose newest export was acknowledged.",
            s.retention.acknowledged.to_string(),
        ),
        counter("fotovakt_items_purged", "Store files purged after their retention ran out.", s.retention.purged),
        gauge(
            "fotovakt_media_location_access",
            None,
            "1 when reads are unaltered (Android: ACCESS_MEDIA_LOCATION granted); 0: nothing is moved.",
            (s.storage.media_location_access as u8).to_string(),
        ),
        gauge(
            "fotovakt_items_original_kept",
            None,
            "Items verified in the store whose original could not be deleted.",
            s.storage.originals_kept.to_string(),
        ),
        gauge(
            "fotovakt_items_held",
            None,
            "Items left untouched while media-location access was off.",
            s.storage.held.to_string(),
        ),
        counter("fotovakt_releases_failed", "Releases whose write-back failed.", s.storage.releases_failed),
        gauge(
            "fotovakt_overdue_oldest_seconds",
            Some("seconds"),
            "How long the most overdue item is past its retention (NaN when none is).",
            s.retention.oldest_overdue_days.map(|d| float(d * 86400.0)).unwrap_or_else(|| "NaN".into()),
        ),
        gauge(
            "fotovakt_checkpoint_seq",
            None,
            "Ledger event named by the newest signed checkpoint (NaN before the first); going down means a rollback.",
            s.checkpoint.as_ref().map(|c| c.seq.to_string()).unwrap_or_else(|| "NaN".into()),
        ),
        gauge(
            "fotovakt_checkpoint_timestamp_seconds",
            Some("seconds"),
            "When the newest signed checkpoint was made (Unix time; NaN before the first).",
            ms_to_seconds(s.checkpoint.as_ref().map(|c| c.at_ms)),
        ),
    ]
}

/// OpenMetrics 1.0 text exposition (`application/openmetrics-text`), ending with `# EOF`.
pub fn openmetrics(s: &Stats) -> String {
    let mut o = String::new();
    for f in families(s) {
        let _ = writeln!(o, "# TYPE {} {}", f.name, f.kind);
        if let Some(u) = f.unit {
            let _ = writeln!(o, "# UNIT {} {u}", f.name);
        }
        let _ = writeln!(o, "# HELP {} {}", f.name, f.help);
        for (suffix, labels, value) in &f.samples {
            let _ = writeln!(o, "{}{suffix}{labels} {value}", f.name);
        }
    }
    o.push_str("# EOF\n");
    o
}

/// The classic Prometheus text format 0.0.4 (`text/plain`): the same samples; counters are
/// declared under their `_total` name, and there are no `# UNIT` or `# EOF` lines.
pub fn prometheus_text(s: &Stats) -> String {
    let mut o = String::new();
    for f in families(s) {
        let declared = if f.kind == "counter" { format!("{}_total", f.name) } else { f.name.to_string() };
        let _ = writeln!(o, "# HELP {declared} {}", f.help);
        let _ = writeln!(o, "# TYPE {declared} {}", f.kind);
        for (suffix, labels, value) in &f.samples {
            let _ = writeln!(o, "{}{suffix}{labels} {value}", f.name);
        }
    }
    o
}

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
