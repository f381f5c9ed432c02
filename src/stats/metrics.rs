//! The statistics as OpenMetrics 1.0 and classic Prometheus text: one list of metric
//! families, rendered either way.

use std::fmt::Write as _;

use super::*;

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

/// A count that may be unknown: `NaN` when it is (never a zero that is not one).
fn maybe(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "NaN".into())
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
            "Bytes of original files held in the store (NaN: the store could not be listed).",
            maybe(s.store.bytes),
        ),
        gauge("fotovakt_store_files", None, "Files held in the store (NaN: not listed).", maybe(s.store.files)),
        Family {
            name: "fotovakt_store_health",
            kind: "gauge",
            unit: None,
            help: "1 for the store's state now (ok, failing, full, read_only, unknown), 0 for the others.",
            samples: crate::health::StoreState::ALL
                .iter()
                .map(|st| ("", format!("{{state=\"{}\"}}", st.as_str()), ((*st == s.health.store) as u8).to_string()))
                .collect(),
        },
        gauge(
            "fotovakt_store_free_bytes",
            Some("bytes"),
            "Bytes free on the store's filesystem (NaN: unknown).",
            maybe(s.health.free_bytes),
        ),
        gauge(
            "fotovakt_files_waiting",
            None,
            "Files the agent could not store yet and tries again (this process's view).",
            s.health.waiting.to_string(),
        ),
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
