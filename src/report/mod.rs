//! `fotovakt report`: one self-contained HTML page of the numbers `stats --format json` prints,
//! with inline SVG charts. No scripts, no fonts, no network: a strict Content-Security-Policy
//! in the page itself forbids every fetch. Every number carries `data-metric` (its JSON path in
//! [`Stats`], e.g. `items.seen` or `per_day[2].quarantined`) and `data-value` (the raw value),
//! so a test can read the page back and compare it with the JSON.

use std::fmt::Write as _;

use crate::stats::{Stats, EXPOSURE_BUCKETS_MS};

mod chart;
use chart::{bar_chart, legend, Series, Style};

/// A headline number of the report's "extra" panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// JSON path of the number in [`Stats`] (also the `data-metric` attribute).
    pub metric: &'static str,
    /// What a person reads next to it.
    pub label: &'static str,
    pub value: u64,
    /// One line under the number.
    pub note: &'static str,
}

/// The retention panel's numbers: what is overdue, exported, acknowledged and purged.
pub fn retention_gauges(s: &Stats) -> Vec<Gauge> {
    let r = &s.retention;
    vec![
        Gauge {
            metric: "retention.overdue",
            label: "Overdue",
            value: r.overdue,
            note: "never exported, past quarantined_days",
        },
        Gauge {
            metric: "retention.exported",
            label: "Exported",
            value: r.exported,
            note: "in the store, handed off at least once",
        },
        Gauge {
            metric: "retention.acknowledged",
            label: "Acknowledged",
            value: r.acknowledged,
            note: "received by the case file; purged after exported_days",
        },
        Gauge { metric: "retention.purged", label: "Purged", value: r.purged, note: "files removed, custody log kept" },
    ]
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The page's style sheet (inline: the report is one self-contained file, CSP-locked).
const STYLE: &str = include_str!("report.css");

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `1234567` → `1.2 MB` (decimal units, as file managers show them).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `1530` → `1.5 s`; `90000` → `1.5 min`.
pub fn human_ms(ms: i64) -> String {
    let a = ms.abs();
    if a < 1_000 {
        format!("{ms} ms")
    } else if a < 60_000 {
        format!("{:.1} s", ms as f64 / 1e3)
    } else if a < 3_600_000 {
        format!("{:.1} min", ms as f64 / 6e4)
    } else {
        format!("{:.1} h", ms as f64 / 3.6e6)
    }
}

/// A bucket's upper bound as a label: `≤ 250 ms`, `≤ 1 min`, `> 1 h` for the open one.
fn bucket_label(le: Option<i64>) -> String {
    let short = |ms: i64| {
        if ms < 1_000 {
            format!("{ms} ms")
        } else if ms < 60_000 {
            format!("{} s", ms as f64 / 1e3)
        } else if ms < 3_600_000 {
            format!("{} min", ms / 60_000)
        } else {
            format!("{} h", ms / 3_600_000)
        }
    };
    match le {
        Some(ms) => format!("≤{}", short(ms)),
        None => format!(">{}", short(*EXPOSURE_BUCKETS_MS.last().unwrap_or(&0))),
    }
}

/// A number in the page: shown as `text`, read back through `data-metric`/`data-value`.
pub(super) fn num(metric: &str, raw: &str, text: &str) -> String {
    format!(r#"<span data-metric="{}" data-value="{}">{}</span>"#, esc(metric), esc(raw), esc(text))
}

/// A count that may be unknown: the number, or `unknown` (never a zero that is not one).
fn opt_count(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "unknown".into())
}

fn opt_raw(v: Option<i64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "null".into())
}

fn kpi(class: &str, label: &str, value_html: &str, note: &str) -> String {
    format!(
        r#"<div class="kpi {class}"><div class="label">{}</div><div class="value">{value_html}</div><div class="note">{note}</div></div>"#,
        esc(label)
    )
}

fn card(title: &str, sub: &str, body: &str) -> String {
    format!(r#"<section class="card"><h2>{}</h2><p class="sub">{}</p>{body}</section>"#, esc(title), esc(sub))
}

/// The style of quarantined counts in every chart.
const QUARANTINED: Style = Style::Hatched("#c4462b");

fn empty(what: &str) -> String {
    format!(r#"<div class="empty">{}</div>"#, esc(what))
}

fn short_date(d: &str) -> String {
    d.get(5..).unwrap_or(d).to_string()
}

/// Render the report.
pub fn html(s: &Stats) -> String {
    let generated = chrono::DateTime::from_timestamp_millis(s.generated_at_ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| s.generated_at_ms.to_string());
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer"><title>fotovakt statistics</title><style>{STYLE}</style></head><body>"#
    );
    let _ = write!(
        o,
        r#"<header><h1>fotovakt — device statistics</h1><p>Taken <time data-metric="generated_at_ms" data-value="{}">{}</time> · counts and durations only: no photos, file names, GPS or case IDs</p></header><main>"#,
        s.generated_at_ms,
        esc(&generated)
    );
    o.push_str(&kpis(s));
    o.push_str("<div class=\"grid\">");
    o.push_str(&seen_card(s));
    o.push_str(&decisions_card(s));
    o.push_str(&exposure_card(s));
    o.push_str(&releases_card(s));
    o.push_str(&store_card(s));
    o.push_str(&retention_panel(&retention_gauges(s)));
    o.push_str("</div></main>");
    let _ = write!(
        o,
        r#"<footer>Rejected as bad input: {} · cases with quarantined items: {} · case session open: {}. Generated by fotovakt {}; the same numbers as <code>fotovakt stats --format json</code>.</footer></body></html>"#,
        num("rejected", &s.rejected.to_string(), &s.rejected.to_string()),
        num("cases.count", &s.cases.count.to_string(), &s.cases.count.to_string()),
        num("session_open", &s.session_open.to_string(), if s.session_open { "yes" } else { "no" }),
        env!("CARGO_PKG_VERSION")
    );
    o.push('\n');
    o
}

/// The headline numbers.
fn kpis(s: &Stats) -> String {
    let (c, e) = (&s.items, &s.exposure_ms);
    let mut o = String::new();
    let quar_share =
        if c.seen > 0 { format!("{:.0}% of seen", 100.0 * c.quarantined as f64 / c.seen as f64) } else { "—".into() };
    let exp = |metric: &str, v: Option<i64>| num(metric, &opt_raw(v), &v.map(human_ms).unwrap_or_else(|| "—".into()));
    o.push_str(r#"<div class="kpis" role="list">"#);
    for k in [
        kpi("seen", "Photos seen", &num("items.seen", &c.seen.to_string(), &c.seen.to_string()), "all decided files"),
        kpi(
            "quar",
            "Quarantined",
            &num("items.quarantined", &c.quarantined.to_string(), &c.quarantined.to_string()),
            &quar_share,
        ),
        kpi(
            "rel",
            "Released",
            &num("items.released", &c.released.to_string(), &c.released.to_string()),
            "false positives put back",
        ),
        kpi("keep", "Kept", &num("items.kept", &c.kept.to_string(), &c.kept.to_string()), "personal, left in place"),
        kpi(
            "store",
            "Store size",
            &num(
                "store.bytes",
                &opt_count(s.store.bytes),
                &s.store.bytes.map_or_else(|| "unknown".into(), human_bytes),
            ),
            &format!("{} files", num("store.files", &opt_count(s.store.files), &opt_count(s.store.files))),
        ),
        kpi("exp", "Exposure p50", &exp("exposure_ms.p50", e.p50), "write → in the store"),
        kpi(
            "exp",
            "Exposure p95",
            &exp("exposure_ms.p95", e.p95),
            &format!(
                "of {} moves into the store",
                num("exposure_ms.count", &e.count.to_string(), &e.count.to_string())
            ),
        ),
        kpi("exp", "Exposure max", &exp("exposure_ms.max", e.max), "longest window"),
    ] {
        o.push_str(&k);
    }
    o.push_str("</div>");
    o
}

/// Seen vs quarantined per day.
fn seen_card(s: &Stats) -> String {
    let days: Vec<String> = s.per_day.iter().map(|d| short_date(&d.date)).collect();
    let body = if s.per_day.is_empty() {
        empty("No photos seen yet.")
    } else {
        let series = [
            Series {
                name: "seen",
                style: Style::Solid("#3b6ea5"),
                values: s.per_day.iter().enumerate().map(|(i, d)| (d.seen, format!("per_day[{i}].seen"))).collect(),
            },
            Series {
                name: "quarantined",
                style: QUARANTINED,
                values: s
                    .per_day
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (d.quarantined, format!("per_day[{i}].quarantined")))
                    .collect(),
            },
        ];
        legend("per-day", &series)
            + &bar_chart(
                "chart-per-day",
                "Photos seen and quarantined per day",
                "Grouped bars per local day of first sight: photos seen (solid blue) and, of those, still quarantined (hatched red).",
                "day of first sight (month-day)",
                "photos",
                &days,
                &series,
            )
    };
    card("Seen vs quarantined", "Per local day on which the agent first saw the photo.", &body)
}

/// Decision sources.
fn decisions_card(s: &Stats) -> String {
    let sources: Vec<String> = s.decisions.keys().cloned().collect();
    let body = if sources.is_empty() {
        empty("No decisions yet.")
    } else {
        let series = [
            Series {
                name: "quarantine",
                style: QUARANTINED,
                values: s.decisions.iter().map(|(k, a)| (a.quarantine, format!("decisions.{k}.quarantine"))).collect(),
            },
            Series {
                name: "keep",
                style: Style::Solid("#7c8794"),
                values: s.decisions.iter().map(|(k, a)| (a.keep, format!("decisions.{k}.keep"))).collect(),
            },
        ];
        legend("decisions", &series)
            + &bar_chart(
                "chart-decisions",
                "Decisions by source",
                "Bars per deciding rule: items quarantined (hatched red) and kept (solid grey).",
                "deciding rule",
                "items",
                &sources,
                &series,
            )
    };
    card("Decision sources", "Which rule made each item's current decision.", &body)
}

/// Exposure histogram.
fn exposure_card(s: &Stats) -> String {
    let e = &s.exposure_ms;
    let cats: Vec<String> = e.buckets.iter().map(|b| bucket_label(b.le)).collect();
    let body = if e.count == 0 {
        empty("Nothing quarantined yet.")
    } else {
        let series = [Series {
            name: "quarantined items",
            style: Style::Solid("#c08a1e"),
            values: e
                .buckets
                .iter()
                .enumerate()
                .map(|(i, b)| (b.count, format!("exposure_ms.buckets[{i}].count")))
                .collect(),
        }];
        bar_chart(
            "chart-exposure",
            "Exposure window distribution",
            "Histogram of the time from a photo's write to its verified arrival in the store, in log-like buckets.",
            "exposure window (upper bound of bucket)",
            "quarantined items",
            &cats,
            &series,
        )
    };
    card(
        "Exposure window",
        "How long case photos sat in a synced folder: from write to verified arrival in the store.",
        &body,
    )
}

/// Releases per day.
fn releases_card(s: &Stats) -> String {
    let rel_days: Vec<String> = s.releases_per_day.iter().map(|d| short_date(&d.date)).collect();
    let body = if s.releases_per_day.is_empty() {
        empty("No releases: no false positives put back yet.")
    } else {
        let series = [Series {
            name: "released",
            style: Style::Dotted("#7a4fa0"),
            values: s
                .releases_per_day
                .iter()
                .enumerate()
                .map(|(i, d)| (d.count, format!("releases_per_day[{i}].count")))
                .collect(),
        }];
        bar_chart(
            "chart-releases",
            "Releases per day",
            "Bars per local day: items released from the store as false positives (dotted purple).",
            "day of release (month-day)",
            "released items",
            &rel_days,
            &series,
        )
    };
    card("Releases (false positives)", "Items an officer put back, per day of release.", &body)
}

/// Store over time.
fn store_card(s: &Stats) -> String {
    let store_days: Vec<String> = s.store_per_day.iter().map(|d| short_date(&d.date)).collect();
    let body = if s.store_per_day.is_empty() {
        empty("The store is empty.")
    } else {
        let series = [Series {
            name: "files held",
            style: Style::Solid("#2f8a5b"),
            values: s
                .store_per_day
                .iter()
                .enumerate()
                .map(|(i, d)| (d.files, format!("store_per_day[{i}].files")))
                .collect(),
        }];
        let mut facts = String::from(
            r#"<table class="facts"><tr><td>day</td><td class="n">files</td><td class="n">size</td></tr>"#,
        );
        for (i, d) in s.store_per_day.iter().enumerate().rev().take(5) {
            let _ = write!(
                facts,
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                esc(&d.date),
                num(&format!("store_per_day[{i}].files"), &d.files.to_string(), &d.files.to_string()),
                num(&format!("store_per_day[{i}].bytes"), &d.bytes.to_string(), &human_bytes(d.bytes))
            );
        }
        facts.push_str("</table>");
        bar_chart(
            "chart-store",
            "Store size over time",
            "Bars per local day: files held in the store at the end of the day, from the ledger (quarantined minus released).",
            "day (month-day)",
            "files held",
            &store_days,
            &series,
        ) + &facts
    };
    card(
        "Store",
        &match (s.store.files, s.store.bytes) {
            (Some(files), Some(bytes)) => {
                format!("Now: {files} files, {} on disk. History from the ledger.", human_bytes(bytes))
            }
            _ => format!(
                "Now: unknown ({}). History from the ledger.",
                s.store.error.as_deref().unwrap_or("the store was not listed")
            ),
        },
        &body,
    )
}

/// The overdue/retention panel: one headline per gauge.
fn retention_panel(gauges: &[Gauge]) -> String {
    let mut body = String::from(r#"<div class="kpis">"#);
    for g in gauges {
        body.push_str(&kpi("rel", g.label, &num(g.metric, &g.value.to_string(), &g.value.to_string()), g.note));
    }
    body.push_str("</div>");
    card("Overdue", "Quarantined material past its retention deadline.", &body)
}

#[cfg(test)]
mod tests {
    use super::chart::nice_axis;
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_axis(0), (1, 1));
        assert_eq!(nice_axis(7), (8, 2));
        assert_eq!(nice_axis(23), (25, 5));
        assert_eq!(nice_axis(4321), (5000, 1000));
    }

    #[test]
    fn units_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_ms(250), "250 ms");
        assert_eq!(human_ms(1_500), "1.5 s");
        assert_eq!(human_ms(90_000), "1.5 min");
        assert_eq!(bucket_label(Some(2_500)), "≤2.5 s");
        assert_eq!(bucket_label(None), ">1 h");
    }

    /// Two months of history: a plausible fleet laptop.
    fn two_months() -> Stats {
        use crate::stats::{
            Bucket, ByAction, Cases, Counts, Day, DayCount, Exposure, RetentionStats, StoreDay, StoreSize,
        };
        let dates: Vec<String> = (0..60).map(|i| format!("2026-{:02}-{:02}", 9 + i / 30, 1 + i % 30)).collect();
        let per_day: Vec<Day> = dates
            .iter()
            .enumerate()
            .map(|(i, d)| Day {
                date: d.clone(),
                seen: 20 + (i as u64 * 7) % 31,
                quarantined: (i as u64 * 3) % 9,
                released: (i % 7 == 0) as u64,
            })
            .collect();
        let mut decisions = std::collections::BTreeMap::new();
        decisions.insert("session".to_string(), ByAction { quarantine: 180, keep: 0 });
        decisions.insert("default".to_string(), ByAction { quarantine: 0, keep: 1400 });
        Stats {
            generated_at_ms: 1_795_000_000_000,
            items: Counts { seen: 1600, quarantined: 171, released: 9, kept: 1400, pending: 0, aborted: 20 },
            per_day,
            decisions,
            rejected: 3,
            exposure_ms: Exposure {
                count: 180,
                p50: Some(900),
                p95: Some(4_000),
                max: Some(70_000),
                sum: 250_000,
                buckets: EXPOSURE_BUCKETS_MS
                    .iter()
                    .map(|&le| Some(le))
                    .chain([None])
                    .enumerate()
                    .map(|(i, le)| Bucket { le, count: [5, 20, 60, 50, 30, 10, 3, 1, 0, 1, 0, 0, 0][i] })
                    .collect(),
            },
            releases_per_day: dates.iter().step_by(7).map(|d| DayCount { date: d.clone(), count: 1 }).collect(),
            store: StoreSize { files: Some(171), bytes: Some(900_000_000), error: None },
            store_per_day: dates
                .iter()
                .enumerate()
                .map(|(i, d)| StoreDay { date: d.clone(), files: 3 * i as u64, bytes: 15_000_000 * i as u64 })
                .collect(),
            cases: Cases { count: 12, items_per_case_p50: Some(9), items_per_case_max: Some(40), by_case: None },
            session_open: false,
            retention: RetentionStats {
                overdue: 4,
                exported: 60,
                acknowledged: 50,
                purged: 90,
                oldest_overdue_days: Some(3.5),
            },
            storage: Default::default(),
            device_key: None,
            checkpoint: None,
            auto_time: None,
            health: crate::health::Health::from_parts(
                None,
                Ok(crate::health::Space { free: 5 << 30, read_only: false }),
                0,
            ),
        }
    }

    #[test]
    fn long_histories_keep_axis_labels_apart_and_every_number_in_a_table() {
        let s = two_months();
        let html = html(&s);
        let chart = &html[html.find(r#"id="chart-per-day""#).expect("chart")..];
        let chart = &chart[..chart.find("</svg>").expect("end")];
        let day_labels = chart.matches(r#"<text class="tick x""#).count();
        assert!((10..=15).contains(&day_labels), "at most ~14 day labels under 60 days of bars: {day_labels}");
        assert!(!chart.contains("data-metric"), "no value labels crammed over 120 narrow bars");
        for (i, d) in s.per_day.iter().enumerate() {
            let cell = format!(r#"data-metric="per_day[{i}].seen" data-value="{}""#, d.seen);
            assert!(html.contains(&cell), "{cell} in the data table");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
