//! How the CLI writes things a person reads: times, shortened paths, I/O reasons, and the
//! `"store"` key every `--json` answer carries. No command logic.

use anyhow::Result;

use crate::agent::StoreReader;

/// A ledger time (ms since the epoch) as local `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn time_text(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// ` until TIME` for a session with a planned end, else nothing.
pub(crate) fn until_text(until: Option<i64>) -> String {
    until.map(|u| format!(" until {}", time_text(u))).unwrap_or_default()
}

/// The reason an I/O error gives, as a person reads it: `No such file or directory`, without
/// the `(os error 2)` the standard library appends.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// `s` shortened to at most `max` characters by cutting its middle (`/data/…/IMG_1.jpg`), so
/// a long path keeps its start and its file name and the table keeps its columns.
pub(crate) fn fit(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 5 {
        return s.to_string();
    }
    let tail = (max - 1) / 2 + (max - 1) % 2;
    let head = max - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// Add `"store": DIR` to a JSON object, so that `--json` output names the store it read.
pub(crate) fn with_store(store: &StoreReader, v: impl serde::Serialize) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(v)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("store".into(), store.store().root().to_string_lossy().into_owned().into());
    }
    Ok(v)
}

/// Pretty JSON of `v` with the store named, one document and a newline.
pub(crate) fn json_with_store(
    out: &mut dyn std::io::Write,
    store: &StoreReader,
    v: impl serde::Serialize,
) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(&with_store(store, v)?)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_in_the_middle() {
        assert_eq!(fit("short", 10), "short");
        let cut = fit("/data/a-very-long-folder/IMG_20261201.jpg", 20);
        assert_eq!(cut.chars().count(), 20);
        assert!(cut.starts_with("/data/a") && cut.ends_with("01.jpg") && cut.contains('…'), "{cut}");
    }

    #[test]
    fn io_reasons_read_as_a_person_writes_them() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_reason(&e), "No such file or directory");
    }
}
