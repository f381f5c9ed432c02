//! The decision: a pure function from what is known about one photo to a verdict, and which
//! rule decided it. No I/O, no clock: the caller passes everything in.
//!
//! Decision table, first match wins:
//!
//! | # | input                                        | verdict                 | source       |
//! |---|----------------------------------------------|-------------------------|--------------|
//! | 1 | an officer tagged it                         | quarantine (that case)  | `manual`     |
//! | 2 | an officer released this exact file before   | keep                    | `released`   |
//! | 3 | shot while a case session was open           | quarantine (that case)  | `session`    |
//! | 4 | GPS inside a work site, action `quarantine`  | quarantine              | `work_site`  |
//! | 5 | classifier score ≥ threshold × factors       | quarantine              | `classifier` |
//! | 6 | classifier score below it                    | keep                    | `classifier` |
//! | 7 | no score (no model, video, HEIC, corrupt), on duty, `unjudged_on_duty = quarantine` | quarantine | `duty_hours` |
//! | 8 | otherwise                                    | keep                    | `default`    |
//!
//! The threshold is the model head's recall-biased one unless configured; on duty it is
//! multiplied by `on_duty_threshold_factor`, inside a work site (with action
//! `lower-threshold`) by `work_site_threshold_factor`.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::Serialize;

use crate::config::{Duty, PolicyConfig, SiteAction, UnjudgedAction, WorkSite};
use crate::ledger::{ItemSource, Session};

/// Everything the policy may look at for one photo.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    /// An officer's tag: the case ID.
    pub manual_case: Option<&'a str>,
    /// This exact content was released by an officer before.
    pub released_before: bool,
    /// A case session open when the photo was shot.
    pub session: Option<&'a Session>,
    /// Local time the photo was shot (EXIF, else file time).
    pub shot_at: Option<NaiveDateTime>,
    /// EXIF GPS.
    pub gps: Option<(f64, f64)>,
    /// The classifier's score and its head's threshold, when the model ran.
    pub score: Option<Score>,
    /// Why there is no score (for the decision's explanation).
    pub unscored_because: Option<&'a str>,
}

/// The classifier's output as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub case_score: f32,
    pub threshold: f32,
}

/// What to do with the photo: the ledger's stored enum, so a decision and its record are one type.
pub use crate::ledger::Action;

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Manual,
    Released,
    Session,
    WorkSite,
    Classifier,
    DutyHours,
    Default,
}

/// The rule as the ledger stores it (the ledger's set adds `recovered`, which no rule decides).
impl From<Source> for ItemSource {
    fn from(s: Source) -> ItemSource {
        match s {
            Source::Manual => ItemSource::Manual,
            Source::Released => ItemSource::Released,
            Source::Session => ItemSource::Session,
            Source::WorkSite => ItemSource::WorkSite,
            Source::Classifier => ItemSource::Classifier,
            Source::DutyHours => ItemSource::DutyHours,
            Source::Default => ItemSource::Default,
        }
    }
}

impl Source {
    /// Rules 1–4 decide whatever the classifier would say, so the model need not run.
    pub fn needs_no_score(self) -> bool {
        matches!(self, Source::Manual | Source::Released | Source::Session | Source::WorkSite)
    }

    /// The source named by [`Source::as_str`], if it is one.
    pub fn parse(s: &str) -> Option<Source> {
        [
            Source::Manual,
            Source::Released,
            Source::Session,
            Source::WorkSite,
            Source::Classifier,
            Source::DutyHours,
            Source::Default,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::Released => "released",
            Source::Session => "session",
            Source::WorkSite => "work_site",
            Source::Classifier => "classifier",
            Source::DutyHours => "duty_hours",
            Source::Default => "default",
        }
    }
}

/// The decision and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub action: Action,
    pub source: Source,
    pub case_id: Option<String>,
    /// One line a person can read: which rule, with which numbers.
    pub rule: String,
}

/// The configured context the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a PolicyConfig,
    pub duty: &'a Duty,
    pub work_sites: &'a [WorkSite],
}

/// Decide one photo.
pub fn decide(e: &Evidence<'_>, ctx: &Context<'_>) -> Verdict {
    let verdict = |action, source, case_id: Option<&str>, rule: String| Verdict {
        action,
        source,
        case_id: case_id.map(str::to_string),
        rule,
    };
    if let Some(case) = e.manual_case {
        return verdict(Action::Quarantine, Source::Manual, Some(case), format!("tagged by an officer as case {case}"));
    }
    if e.released_before {
        return verdict(Action::Keep, Source::Released, None, "released by an officer before (same SHA-256)".into());
    }
    if let Some(s) = e.session {
        return verdict(
            Action::Quarantine,
            Source::Session,
            Some(&s.case_id),
            format!("shot during the open session of case {}", s.case_id),
        );
    }
    let site = e.gps.and_then(|g| site_containing(ctx.work_sites, g));
    if let (Some(site), SiteAction::Quarantine) = (site, ctx.policy.work_site_action) {
        return verdict(Action::Quarantine, Source::WorkSite, None, format!("GPS inside work site {}", site.name));
    }
    let on_duty = e.shot_at.is_some_and(|t| on_duty(ctx.duty, t));
    if let Some(score) = e.score {
        let mut threshold = ctx.policy.threshold.unwrap_or(score.threshold);
        let mut why = Vec::new();
        if on_duty {
            threshold *= ctx.policy.on_duty_threshold_factor;
            why.push("on duty".to_string());
        }
        if let Some(site) = site {
            threshold *= ctx.policy.work_site_threshold_factor;
            why.push(format!("at {}", site.name));
        }
        let context = if why.is_empty() { String::new() } else { format!(" ({})", why.join(", ")) };
        return if score.case_score >= threshold {
            verdict(
                Action::Quarantine,
                Source::Classifier,
                None,
                format!("case score {:.3} ≥ threshold {:.3}{context}", score.case_score, threshold),
            )
        } else {
            verdict(
                Action::Keep,
                Source::Classifier,
                None,
                format!("case score {:.3} < threshold {:.3}{context}", score.case_score, threshold),
            )
        };
    }
    let because = e.unscored_because.unwrap_or("no classifier score");
    if on_duty && ctx.policy.unjudged_on_duty == UnjudgedAction::Quarantine {
        return verdict(Action::Quarantine, Source::DutyHours, None, format!("on duty and {because}"));
    }
    let when = if on_duty { "on duty" } else { "off duty" };
    verdict(Action::Keep, Source::Default, None, format!("{when}, no session, {because}"))
}

/// Is local time `t` inside a shift? Shifts with `end <= start` run past midnight.
pub fn on_duty(duty: &Duty, t: NaiveDateTime) -> bool {
    let minute = t.hour() * 60 + t.minute();
    let today = t.weekday().num_days_from_monday();
    let yesterday = (today + 6) % 7;
    duty.shifts.iter().any(|s| {
        let (start, end) = (s.start.0, s.end.0);
        let has = |d: u32| s.days.iter().any(|w| w.index() == d);
        if start < end {
            has(today) && minute >= start && minute < end
        } else {
            (has(today) && minute >= start) || (has(yesterday) && minute < end)
        }
    })
}

/// The first work site whose circle contains `(lat, lon)`.
pub fn site_containing(sites: &[WorkSite], (lat, lon): (f64, f64)) -> Option<&WorkSite> {
    sites.iter().find(|s| haversine_m((s.lat, s.lon), (lat, lon)) <= s.radius_m)
}

/// Great-circle distance in metres.
pub fn haversine_m((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClockTime, Shift, Weekday};

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time")
    }

    fn duty() -> Duty {
        Duty {
            shifts: vec![
                Shift { days: vec![Weekday::Mon, Weekday::Tue], start: ClockTime(7 * 60), end: ClockTime(15 * 60) },
                Shift { days: vec![Weekday::Fri], start: ClockTime(22 * 60), end: ClockTime(6 * 60) },
            ],
        }
    }

    fn sites() -> Vec<WorkSite> {
        vec![WorkSite { name: "Storskog".into(), lat: 69.6617, lon: 30.1271, radius_m: 400.0 }]
    }

    fn session() -> Session {
        Session { id: 1, case_id: "K-7".into(), officer: None, started_ms: 0, until_ms: None, stopped_ms: None }
    }

    fn run(e: &Evidence<'_>, policy: &PolicyConfig) -> Verdict {
        let (d, s) = (duty(), sites());
        decide(e, &Context { policy, duty: &d, work_sites: &s })
    }

    // 2026-11-23 is a Monday.
    const MON_0900: &str = "2026-11-23 09:00";
    const MON_2000: &str = "2026-11-23 20:00";
    const SAT_0300: &str = "2026-11-28 03:00";
    const SAT_0700: &str = "2026-11-28 07:00";
    const INSIDE: (f64, f64) = (69.6630, 30.1290);
    const OUTSIDE: (f64, f64) = (69.70, 30.20);

    #[test]
    fn duty_schedule_including_overnight_shifts() {
        let d = duty();
        assert!(on_duty(&d, t(MON_0900)));
        assert!(!on_duty(&d, t(MON_2000)));
        assert!(!on_duty(&d, t("2026-11-23 15:00")), "end is exclusive");
        assert!(on_duty(&d, t("2026-11-23 07:00")), "start is inclusive");
        assert!(on_duty(&d, t("2026-11-27 23:00")), "Friday night");
        assert!(on_duty(&d, t(SAT_0300)), "overnight into Saturday");
        assert!(!on_duty(&d, t(SAT_0700)));
        assert!(!on_duty(&d, t("2026-11-22 03:00")), "Sunday early: Saturday has no shift");
    }

    #[test]
    fn work_site_circles() {
        assert!(site_containing(&sites(), INSIDE).is_some());
        assert!(site_containing(&sites(), OUTSIDE).is_none());
        let d = haversine_m((59.9139, 10.7522), (60.3913, 5.3221));
        assert!((d - 305_000.0).abs() < 5_000.0, "Oslo–Bergen ≈ 305 km, got {d}");
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = PolicyConfig::default();
        let s = session();
        let high = Some(Score { case_score: 0.99, threshold: 0.5 });
        let all = Evidence {
            manual_case: Some("K-1"),
            released_before: true,
            session: Some(&s),
            shot_at: Some(t(MON_0900)),
            gps: Some(INSIDE),
            score: high,
            unscored_because: None,
        };
        let v = run(&all, &p);
        assert_eq!((v.action, v.source, v.case_id.as_deref()), (Action::Quarantine, Source::Manual, Some("K-1")));
        let v = run(&Evidence { manual_case: None, ..all.clone() }, &p);
        assert_eq!((v.action, v.source), (Action::Keep, Source::Released));
        let v = run(&Evidence { manual_case: None, released_before: false, ..all.clone() }, &p);
        assert_eq!((v.action, v.source, v.case_id.as_deref()), (Action::Quarantine, Source::Session, Some("K-7")));
        let v = run(&Evidence { manual_case: None, released_before: false, session: None, ..all.clone() }, &p);
        assert_eq!((v.action, v.source), (Action::Quarantine, Source::WorkSite));
        assert!(v.rule.contains("Storskog"));
    }

    #[test]
    fn classifier_threshold_is_lowered_by_context() {
        let p = PolicyConfig { work_site_action: SiteAction::LowerThreshold, ..PolicyConfig::default() };
        let score = |s| Some(Score { case_score: s, threshold: 0.5 });
        let off = Evidence { shot_at: Some(t(MON_2000)), gps: Some(OUTSIDE), score: score(0.45), ..Default::default() };
        assert_eq!(run(&off, &p).action, Action::Keep);
        assert_eq!(
            run(&Evidence { score: score(0.5), ..off.clone() }, &p).action,
            Action::Quarantine,
            "≥ is inclusive"
        );
        // On duty: 0.5 × 0.6 = 0.3.
        let on = Evidence { shot_at: Some(t(MON_0900)), ..off.clone() };
        let v = run(&Evidence { score: score(0.31), ..on.clone() }, &p);
        assert_eq!((v.action, v.source), (Action::Quarantine, Source::Classifier));
        assert!(v.rule.contains("on duty"), "{}", v.rule);
        assert_eq!(run(&Evidence { score: score(0.29), ..on.clone() }, &p).action, Action::Keep);
        // At a work site, off duty: 0.5 × 0.3 = 0.15.
        let site = Evidence { gps: Some(INSIDE), ..off.clone() };
        assert_eq!(run(&Evidence { score: score(0.16), ..site.clone() }, &p).action, Action::Quarantine);
        assert_eq!(run(&Evidence { score: score(0.14), ..site.clone() }, &p).action, Action::Keep);
        // Both: 0.5 × 0.6 × 0.3 = 0.09.
        let both = Evidence { shot_at: Some(t(MON_0900)), ..site };
        assert_eq!(run(&Evidence { score: score(0.10), ..both }, &p).action, Action::Quarantine);
        // A configured threshold replaces the model's.
        let fixed = PolicyConfig { threshold: Some(0.9), ..p };
        assert_eq!(run(&Evidence { score: score(0.8), ..off }, &fixed).action, Action::Keep);
    }

    #[test]
    fn without_a_score_duty_decides_with_recall_first() {
        let p = PolicyConfig::default();
        let on = Evidence { shot_at: Some(t(MON_0900)), unscored_because: Some("video"), ..Default::default() };
        let v = run(&on, &p);
        assert_eq!((v.action, v.source), (Action::Quarantine, Source::DutyHours));
        assert!(v.rule.contains("video"));
        let off = Evidence { shot_at: Some(t(MON_2000)), ..on.clone() };
        assert_eq!(run(&off, &p).action, Action::Keep);
        let unknown_time = Evidence { shot_at: None, ..on.clone() };
        assert_eq!(run(&unknown_time, &p).source, Source::Default);
        let keep = PolicyConfig { unjudged_on_duty: UnjudgedAction::Keep, ..p };
        assert_eq!(run(&on, &keep).action, Action::Keep);
    }

    #[test]
    fn context_rules_do_not_depend_on_the_score() {
        // The agent skips the model when context decides; that is only sound if no score
        // could change such a verdict.
        let s = session();
        let policies = [
            PolicyConfig::default(),
            PolicyConfig { work_site_action: SiteAction::LowerThreshold, ..PolicyConfig::default() },
        ];
        for p in &policies {
            for manual in [None, Some("K-3")] {
                for released in [false, true] {
                    for sess in [None, Some(&s)] {
                        for gps in [None, Some(INSIDE), Some(OUTSIDE)] {
                            for when in [MON_0900, MON_2000] {
                                let e = Evidence {
                                    manual_case: manual,
                                    released_before: released,
                                    session: sess,
                                    shot_at: Some(t(when)),
                                    gps,
                                    score: None,
                                    unscored_because: None,
                                };
                                let v = run(&e, p);
                                if !v.source.needs_no_score() {
                                    continue;
                                }
                                for sc in [0.0, 0.2, 0.5, 1.0] {
                                    let scored = Evidence {
                                        score: Some(Score { case_score: sc, threshold: 0.31 }),
                                        ..e.clone()
                                    };
                                    assert_eq!(run(&scored, p), v, "score {sc} changed a context verdict");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn work_site_outside_and_missing_gps_do_not_match() {
        let p = PolicyConfig::default();
        let e = Evidence { shot_at: Some(t(MON_2000)), gps: Some(OUTSIDE), ..Default::default() };
        assert_eq!(run(&e, &p).source, Source::Default);
        let e = Evidence { gps: None, ..e };
        assert_eq!(run(&e, &p).source, Source::Default);
    }
}
