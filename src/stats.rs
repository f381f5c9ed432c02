//! Admin statistics: read-only queries over the ledger and the store, rendered as JSON,
//! a table or OpenMetrics text. Counts and durations only: never file names, GPS, content
//! or case IDs (case IDs only with `--by-case`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::{Ledger, LedgerError};
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
    pub exposure_ms: Quantiles,
    /// The store on disk.
    pub store: StoreSize,
    /// Cases: how many, and items per case.
    pub cases: Cases,
    /// Is a case session open now?
    pub session_open: bool,
    /// Retention: overdue, exported, acknowledged and purged items.
    pub retention: RetentionStats,
}

/// Retention counts (see `src/retention.rs`). Items in the store except `purged` (all time).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RetentionStats {
    /// Never exported and past `retention.quarantined_days`.
    pub overdue: u64,
    /// Exported at least once (acknowledged or not).
    pub exported: u64,
    /// Exported and acknowledged by the receiver (`fotovakt ack`): purged `exported_days` later.
    pub acknowledged: u64,
    /// Purged since the store was created (rows and custody log kept, file removed).
    pub purged: u64,
    /// How many days the most overdue item is past its `quarantined_days`.
    pub oldest_overdue_days: Option<f64>,
}

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

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Quantiles {
    pub count: u64,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub max: Option<i64>,
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

/// Take the numbers.
pub fn collect(l: &Ledger, store: &Store) -> Result<Stats, LedgerError> {
    collect_with(l, store, false)
}

/// Take the numbers; `by_case` adds per-case counts keyed by case ID. Retention is counted
/// against the default `[retention]` settings: use [`collect_configured`] (or
/// `Agent::stats`) for the configured ones.
pub fn collect_with(l: &Ledger, store: &Store, by_case: bool) -> Result<Stats, LedgerError> {
    collect_configured(l, store, by_case, &crate::config::RetentionConfig::default())
}

/// Take the numbers, with retention counted against `retention`.
pub fn collect_configured(
    l: &Ledger,
    store: &Store,
    by_case: bool,
    retention: &crate::config::RetentionConfig,
) -> Result<Stats, LedgerError> {
    let now = crate::ledger::now_ms();
    let mut items = Counts::default();
    for (state, n) in q(l, "SELECT state, count(*) FROM items GROUP BY state", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })? {
        items.seen += n;
        match state.as_str() {
            "quarantined" => items.quarantined += n,
            "released" => items.released += n,
            "kept" => items.kept += n,
            "moving" | "releasing" => items.pending += n,
            "purged" => {}
            _ => items.aborted += n,
        }
    }
    let per_day = q(
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
    )?;
    let mut decisions = BTreeMap::new();
    for (source, action, n) in
        q(l, "SELECT source, action, count(*) FROM items WHERE state != 'aborted' GROUP BY source, action", |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64))
        })?
    {
        let e: &mut ByAction = decisions.entry(source).or_default();
        if action == "quarantine" {
            e.quarantine += n;
        } else {
            e.keep += n;
        }
    }
    let rejected = q(l, "SELECT count(*) FROM events WHERE kind = 'rejected'", |r| r.get::<_, i64>(0))?
        .first()
        .copied()
        .unwrap_or(0) as u64;
    let mut exposure = q(
        l,
        "SELECT quarantined_at_ms - min(coalesce(file_mtime_ns / 1000000, first_seen_ms), first_seen_ms) \
         FROM items WHERE quarantined_at_ms IS NOT NULL",
        |r| r.get::<_, i64>(0),
    )?;
    exposure.sort_unstable();
    let exposure_ms = Quantiles {
        count: exposure.len() as u64,
        p50: percentile(&exposure, 50.0),
        p95: percentile(&exposure, 95.0),
        max: exposure.last().copied(),
    };
    let (files, bytes) = store.objects().map(|o| (o.len() as u64, o.iter().map(|(_, s)| s).sum())).unwrap_or((0, 0));
    let per_case = q(
        l,
        "SELECT case_id, count(*) FROM items WHERE case_id IS NOT NULL AND state = 'quarantined' GROUP BY case_id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut counts: Vec<i64> = per_case.iter().map(|(_, n)| *n).collect();
    counts.sort_unstable();
    let cases = Cases {
        count: counts.len() as u64,
        items_per_case_p50: percentile(&counts, 50.0).map(|v| v as u64),
        items_per_case_max: counts.last().map(|v| *v as u64),
        by_case: by_case.then(|| per_case.into_iter().map(|(c, n)| (c, n as u64)).collect()),
    };
    Ok(Stats {
        generated_at_ms: now,
        items,
        per_day,
        decisions,
        rejected,
        exposure_ms,
        store: StoreSize { files, bytes },
        cases,
        session_open: l.open_session()?.is_some(),
        retention: crate::retention::stats(l, retention, now)?,
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

/// OpenMetrics / Prometheus text exposition.
pub fn openmetrics(s: &Stats) -> String {
    let mut o = String::new();
    let mut family = |name: &str, kind: &str, unit: Option<&str>, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(o, "# TYPE {name} {kind}");
        if let Some(u) = unit {
            let _ = writeln!(o, "# UNIT {name} {u}");
        }
        let _ = writeln!(o, "# HELP {name} {help}");
        for (suffix_labels, value) in samples {
            let _ = writeln!(o, "{name}{suffix_labels} {value}");
        }
    };
    let c = &s.items;
    family(
        "fotovakt_items",
        "gauge",
        None,
        "Items decided by the agent, by current state.",
        [
            ("quarantined", c.quarantined),
            ("released", c.released),
            ("kept", c.kept),
            ("pending", c.pending),
            ("aborted", c.aborted),
        ]
        .iter()
        .map(|(st, n)| (format!("{{state=\"{st}\"}}"), n.to_string()))
        .collect(),
    );
    family(
        "fotovakt_seen",
        "counter",
        None,
        "Files decided since the store was created.",
        vec![("_total".into(), c.seen.to_string())],
    );
    let mut dec = Vec::new();
    for (src, a) in &s.decisions {
        dec.push((format!("_total{{source=\"{src}\",action=\"quarantine\"}}"), a.quarantine.to_string()));
        dec.push((format!("_total{{source=\"{src}\",action=\"keep\"}}"), a.keep.to_string()));
    }
    family("fotovakt_decisions", "counter", None, "Decisions by the rule that made them and the action.", dec);
    family(
        "fotovakt_rejected",
        "counter",
        None,
        "Files rejected as bad input.",
        vec![("_total".into(), s.rejected.to_string())],
    );
    let e = &s.exposure_ms;
    let secs = |v: Option<i64>| v.map(|x| format!("{:.3}", x as f64 / 1000.0)).unwrap_or_else(|| "NaN".into());
    family(
        "fotovakt_exposure_seconds",
        "gauge",
        Some("seconds"),
        "Exposure window from file write to verified quarantine, by quantile.",
        vec![
            ("{quantile=\"0.5\"}".into(), secs(e.p50)),
            ("{quantile=\"0.95\"}".into(), secs(e.p95)),
            ("{quantile=\"1\"}".into(), secs(e.max)),
        ],
    );
    family(
        "fotovakt_store_bytes",
        "gauge",
        Some("bytes"),
        "Bytes of original files held in the store.",
        vec![(String::new(), s.store.bytes.to_string())],
    );
    family(
        "fotovakt_store_files",
        "gauge",
        None,
        "Files held in the store.",
        vec![(String::new(), s.store.files.to_string())],
    );
    family(
        "fotovakt_cases",
        "gauge",
        None,
        "Cases with at least one quarantined item.",
        vec![(String::new(), s.cases.count.to_string())],
    );
    family(
        "fotovakt_session_open",
        "gauge",
        None,
        "1 while a case session is open.",
        vec![(String::new(), (s.session_open as u8).to_string())],
    );
    let r = &s.retention;
    family(
        "fotovakt_items_overdue",
        "gauge",
        None,
        "Quarantined items never exported and past retention.quarantined_days.",
        vec![(String::new(), r.overdue.to_string())],
    );
    family(
        "fotovakt_items_exported",
        "gauge",
        None,
        "Quarantined items exported in a case package (acknowledged or not).",
        vec![(String::new(), r.exported.to_string())],
    );
    family(
        "fotovakt_items_acknowledged",
        "gauge",
        None,
        "Quarantined items whose package the receiving case file acknowledged.",
        vec![(String::new(), r.acknowledged.to_string())],
    );
    family(
        "fotovakt_items_purged",
        "counter",
        None,
        "Items whose store file was purged at the end of its retention.",
        vec![("_total".into(), r.purged.to_string())],
    );
    family(
        "fotovakt_overdue_oldest_seconds",
        "gauge",
        Some("seconds"),
        "How long the most overdue item is past its retention (NaN when none is).",
        vec![(
            String::new(),
            r.oldest_overdue_days.map(|d| format!("{:.0}", d * 86400.0)).unwrap_or_else(|| "NaN".into()),
        )],
    );
    o.push_str("# EOF\n");
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
