//! Statistics for the EMM as a few keyed app states with structured data, instead of one
//! state per counter (which made dozens of keys and, cut to the 100-character key limit, let
//! two keys collide).
//!
//! One state per top-level part of [`crate::stats::Stats`]: `fotovakt.stats` (its scalars:
//! time of the figures, rejections, whether a session is open) and `fotovakt.stats.<part>`
//! for each object (`items`, `decisions`, `exposure_ms`, `store`, `cases`, `retention`,
//! `storage`), its data the part as compact JSON. Per-day series and bucket lists (arrays)
//! stay on the device (`statsJson`); `cases.by_case` (case IDs) never leaves it. The device
//! key, the newest checkpoint and automatic time (issue 26) go out as health states
//! (`fotovakt.health.device_key`, `.checkpoint`, `.auto_time`, `AppStates.java`), not here.
//!
//! Nothing is cut: a key is never longer than [`MAX_KEY_LENGTH`], and a part whose JSON would
//! not fit in [`MAX_DATA_LENGTH`] is spread over `…`, `….2`, `….3` by whole members. The
//! limits are androidx.enterprise's `KeyedAppState.MAX_KEY_LENGTH` / `MAX_DATA_LENGTH`.

use serde::Serialize;
use serde_json::{Map, Value};

/// androidx.enterprise.feedback `KeyedAppState.MAX_KEY_LENGTH`.
pub const MAX_KEY_LENGTH: usize = 100;
/// androidx.enterprise.feedback `KeyedAppState.MAX_DATA_LENGTH`.
pub const MAX_DATA_LENGTH: usize = 1000;
/// Prefix of every statistics key.
pub const PREFIX: &str = "fotovakt.stats";

/// One keyed app state as the shell builds it (severity INFO).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppState {
    pub key: String,
    pub message: String,
    pub data: String,
}

/// Members that never leave the device: they name cases.
const PRIVATE: &[&str] = &["by_case"];

/// Top-level members the shell sends as health states instead.
const AS_HEALTH: &[&str] = &["device_key", "checkpoint", "auto_time"];

/// The statistics (`stats` serialised) as keyed app states.
pub fn stats_states(stats: &Value) -> Vec<AppState> {
    let Some(top) = stats.as_object() else { return Vec::new() };
    let mut summary = Map::new();
    let mut parts: Vec<(String, Map<String, Value>)> = Vec::new();
    for (name, value) in top.iter().filter(|(name, _)| !AS_HEALTH.contains(&name.as_str())) {
        match value {
            Value::Object(o) => parts.push((format!("{PREFIX}.{name}"), public(o))),
            Value::Array(_) => {}
            scalar => {
                summary.insert(name.clone(), scalar.clone());
            }
        }
    }
    parts.insert(0, (PREFIX.to_string(), summary));
    let mut out = Vec::new();
    for (key, members) in parts {
        if key.len() > MAX_KEY_LENGTH {
            tracing::warn!(target: "fotovakt::android", len = key.len() as u64, "statistics key too long; left out");
            continue;
        }
        out.extend(spread(&key, members));
    }
    out
}

/// `o` without arrays and private members, recursively.
fn public(o: &Map<String, Value>) -> Map<String, Value> {
    o.iter()
        .filter(|(k, v)| !PRIVATE.contains(&k.as_str()) && !v.is_array())
        .map(|(k, v)| match v {
            Value::Object(inner) => (k.clone(), Value::Object(public(inner))),
            other => (k.clone(), other.clone()),
        })
        .collect()
}

/// One state for `members`, or several (`key`, `key.2`, …) if their JSON is too long for one.
fn spread(key: &str, members: Map<String, Value>) -> Vec<AppState> {
    let mut chunks: Vec<Map<String, Value>> = vec![Map::new()];
    for (k, v) in members {
        let fits = |m: &Map<String, Value>| {
            let mut t = m.clone();
            t.insert(k.clone(), v.clone());
            Value::Object(t).to_string().len() <= MAX_DATA_LENGTH
        };
        let last = chunks.last_mut().expect("never empty");
        if fits(last) {
            last.insert(k, v);
        } else if fits(&Map::new()) {
            let mut fresh = Map::new();
            fresh.insert(k, v);
            chunks.push(fresh);
        } else {
            tracing::warn!(target: "fotovakt::android", "a statistics member does not fit one keyed app state; left out");
        }
    }
    let name =
        key.strip_prefix(PREFIX).map(|s| s.trim_start_matches('.')).filter(|s| !s.is_empty()).unwrap_or("summary");
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let key = if i == 0 { key.to_string() } else { format!("{key}.{}", i + 1) };
            let message = if n == 1 {
                format!("fotovakt statistics: {name}")
            } else {
                format!("fotovakt statistics: {name} ({} of {n})", i + 1)
            };
            AppState { key, message, data: Value::Object(m).to_string() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_state_per_part_with_structured_data_and_no_case_ids() {
        let stats = json!({
            "generated_at_ms": 1, "rejected": 2, "session_open": false,
            "items": {"seen": 5, "quarantined": 3},
            "per_day": [{"date": "2024-01-01", "seen": 5}],
            "exposure_ms": {"count": 3, "max": 40, "sum": 90, "buckets": [{"le": 10, "count": 1}]},
            "cases": {"count": 1, "items_per_case_max": 3, "by_case": {"CASE-9": 3}},
            "device_key": {"fingerprint": "ab"}, "checkpoint": {"seq": 4}, "auto_time": null,
        });
        let states = stats_states(&stats);
        let keys: Vec<&str> = states.iter().map(|s| s.key.as_str()).collect();
        // The summary first, then the parts in key order (serde_json's map is sorted).
        assert_eq!(
            keys,
            ["fotovakt.stats", "fotovakt.stats.cases", "fotovakt.stats.exposure_ms", "fotovakt.stats.items"]
        );
        let summary: Value = serde_json::from_str(&states[0].data).expect("json");
        assert_eq!(summary, json!({"generated_at_ms": 1, "rejected": 2, "session_open": false}));
        assert_eq!(
            serde_json::from_str::<Value>(&states[2].data).expect("json"),
            json!({"count": 3, "max": 40, "sum": 90})
        );
        assert!(states.iter().all(|s| !s.data.contains("CASE-9") && !s.data.contains("2024-01-01")), "{states:?}");
    }

    #[test]
    fn a_part_too_long_for_one_state_is_spread_over_numbered_keys_never_cut() {
        let big: Map<String, Value> =
            (0..200).map(|i| (format!("source_{i:03}"), json!({"quarantine": i, "keep": i}))).collect();
        let states = stats_states(&json!({ "decisions": big }));
        assert!(states.len() > 3, "{}", states.len());
        let mut members = 0;
        for (i, s) in states.iter().skip(1).enumerate() {
            assert!(s.data.len() <= MAX_DATA_LENGTH && s.key.len() <= MAX_KEY_LENGTH, "{s:?}");
            let want = if i == 0 {
                "fotovakt.stats.decisions".to_string()
            } else {
                format!("fotovakt.stats.decisions.{}", i + 1)
            };
            assert_eq!(s.key, want);
            members += serde_json::from_str::<Map<String, Value>>(&s.data).expect("whole JSON").len();
        }
        assert_eq!(members, 200, "every member in exactly one state");
    }
}
