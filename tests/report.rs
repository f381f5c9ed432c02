//! `fotovakt report`: the HTML page, opened in a real headless Chromium. The page must show
//! the charts, every number must equal what `stats --format json` says, the screenshot must
//! show something, and the page must fetch nothing.
//!
//! Needs Debian's `chromium` (scripts/test installs it). Without it the test fails, unless
//! FOTOVAKT_SKIP_BROWSER=1 says to skip the browser part. FOTOVAKT_REPORT_SCREENSHOT=PATH
//! keeps a copy of the screenshot for a person to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{phone_with_all_states, stderr, stdout, Phone};

const CHARTS: [&str; 5] = ["chart-per-day", "chart-decisions", "chart-exposure", "chart-releases", "chart-store"];

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FOTOVAKT_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Run headless Chromium on `page` with `extra` flags, in a fresh profile; killed after 90 s.
fn run_chromium(browser: &Path, page: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("chromium output")
}

/// URLs the page itself asked for, from Chromium's net log: requests started on behalf of the
/// page's frame (isolated under its file:// origin). The browser's own background traffic
/// (update checks, clock sync) has no origin and is not the page's doing.
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("chromium wrote its network log");
    // Chromium may be stopped before it closes the JSON array; close it for it.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("net log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_i64().expect("event type");
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| {
            let p = &e["params"];
            p["initiator"] == "null" || p["network_isolation_key"].as_str().is_some_and(|k| k.starts_with("file://"))
        })
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .filter(|u| !u.starts_with("file:") && !u.starts_with("data:"))
        .collect();
    urls.dedup();
    urls
}

/// The value at a path like `per_day[2].seen` or `decisions.session.keep`, as the page writes it.
fn json_at(v: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (part, None),
        };
        cur = cur.get(key)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(match cur {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Every `(data-metric, data-value)` pair in the markup, in order.
fn metrics_in(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&quot;", "\"").replace("&amp;", "&"))
    };
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("data-metric=\"") {
        let tag_start = rest[..i].rfind('<').expect("attribute inside a tag");
        let tag_end = rest[i..].find('>').expect("tag closes") + i;
        let tag = &rest[tag_start..tag_end];
        out.push((
            attr(tag, "data-metric").expect("data-metric"),
            attr(tag, "data-value").unwrap_or_else(|| panic!("data-metric without data-value: {tag}")),
        ));
        rest = &rest[tag_end..];
    }
    out
}

fn stats_json(phone: &Phone) -> serde_json::Value {
    let o = phone.run(&["stats", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("stats json")
}

fn write_report(phone: &Phone) -> (PathBuf, String) {
    let path = phone.dir.path().join("report.html");
    let o = phone.run(&["report", "--out", &path.to_string_lossy()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("report written to"), "{}", stdout(&o));
    let html = std::fs::read_to_string(&path).expect("read report");
    (path, html)
}

/// Compare every number in `markup` with the JSON; `generated_at_ms` is taken per run, so it
/// only has to be close.
fn assert_metrics_match(markup: &str, json: &serde_json::Value) -> usize {
    let pairs = metrics_in(markup);
    for (metric, value) in &pairs {
        let expected = json_at(json, metric).unwrap_or_else(|| panic!("data-metric {metric:?} is not in the JSON"));
        if metric == "generated_at_ms" {
            let (a, b) = (value.parse::<i64>().expect("ms"), expected.parse::<i64>().expect("ms"));
            assert!((a - b).abs() < 120_000, "generated_at_ms {a} vs {b}");
        } else {
            assert_eq!(value, &expected, "data-metric {metric:?}");
        }
    }
    pairs.len()
}

/// The report goes where people keep documents, never where a sync client or gallery takes
/// files; an earlier report is replaced whole.
#[test]
fn report_refuses_synced_camera_and_store_places_and_replaces_an_old_one() {
    let phone = phone_with_all_states();
    for (place, why) in [
        (phone.camera.join("report.html"), "refusing to write the report"),
        (phone.dir.path().join("phone/DCIM/report.html"), "Syncthing"),
        (phone.store.join("report.html"), "inside the quarantine store"),
    ] {
        let o = phone.run(&["report", "--out", &place.to_string_lossy()]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stderr(&o).contains(why), "{place:?}: {}", stderr(&o));
        assert!(!place.exists(), "nothing written to {place:?}");
    }
    let path = phone.dir.path().join("report.html");
    std::fs::write(&path, b"yesterday's report").expect("old report");
    let (_, html) = write_report(&phone);
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"), "{}", &html[..40]);
    let left: Vec<String> = std::fs::read_dir(phone.dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("fotovakt-partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn report_is_self_contained_and_tells_the_same_numbers_as_stats_json() {
    let phone = phone_with_all_states();
    let (_, html) = write_report(&phone);
    let json = stats_json(&phone);
    assert_eq!(json["items"]["quarantined"], 4, "{json}");
    assert_eq!(json["items"]["released"], 1, "{json}");
    assert_eq!(json["decisions"]["manual"]["quarantine"], 1, "{json}");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains(r#"http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:""#),
        "strict CSP in the page"
    );
    for forbidden in ["http://", "https://", "<script", "<link", "<iframe", "@import", "url(http"] {
        assert!(!html.contains(forbidden), "the page must not reference {forbidden:?}");
    }
    for secret in ["IMG_", "CASE-SECRET", "officer-a", "Camera", "not case material"] {
        assert!(!html.contains(secret), "the report leaks {secret:?}");
    }
    for id in CHARTS {
        assert_eq!(html.matches(&format!(r#"<svg class="chart" id="{id}""#)).count(), 1, "chart {id}");
    }
    assert_eq!(html.matches("role=\"img\"").count(), CHARTS.len(), "each chart is an image with a name");
    assert_eq!(html.matches("<title id=\"chart-").count(), CHARTS.len(), "each chart has a <title>");
    let n = assert_metrics_match(&html, &json);
    assert!(n > 30, "headline numbers and every bar carry data-metric: {n}");
    for headline in ["items.seen", "items.quarantined", "items.released", "items.kept", "store.bytes", "store.files"] {
        assert!(html.contains(&format!(r#"data-metric="{headline}""#)), "headline {headline}");
    }
    for q in ["exposure_ms.p50", "exposure_ms.p95", "exposure_ms.max"] {
        assert!(html.contains(&format!(r#"data-metric="{q}""#)), "headline {q}");
    }
    for r in ["retention.overdue", "retention.exported", "retention.acknowledged", "retention.purged"] {
        assert!(html.contains(&format!(r#"data-metric="{r}""#)), "retention panel {r}");
    }
}

#[test]
fn report_renders_in_headless_chromium_without_network() {
    let Some(browser) = chromium() else {
        if std::env::var("FOTOVAKT_SKIP_BROWSER").as_deref() == Ok("1") {
            common::skip("no chromium and FOTOVAKT_SKIP_BROWSER=1");
            return;
        }
        panic!(
            "chromium not found (/usr/bin/chromium): install it with `apt-get install -y chromium` \
             (scripts/test does), or set FOTOVAKT_SKIP_BROWSER=1 to skip this test"
        );
    };
    let phone = phone_with_all_states();
    let (page, _) = write_report(&phone);
    let json = stats_json(&phone);

    // The rendered DOM, with a network log of everything the browser tried to fetch.
    let netlog = phone.dir.path().join("netlog.json");
    let dom = run_chromium(&browser, &page, &["--dump-dom".into(), format!("--log-net-log={}", netlog.display())]);
    let dom_text = stdout(&dom);
    assert!(dom.status.success() && dom_text.contains("</html>"), "chromium --dump-dom failed: {}", stderr(&dom));
    for id in CHARTS {
        assert!(dom_text.contains(&format!(r#"id="{id}""#)), "chart {id} in the rendered DOM");
    }
    assert_eq!(dom_text.matches(r#"<svg class="chart""#).count(), CHARTS.len(), "charts in the rendered DOM");
    assert!(assert_metrics_match(&dom_text, &json) > 30);
    let fetched = page_requests(&netlog);
    assert!(fetched.is_empty(), "the page made network requests: {fetched:?}");
    // The check above can see a page's request: a page that does fetch something is caught.
    let control = phone.dir.path().join("control.html");
    std::fs::write(&control, r#"<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>"#)
        .expect("control page");
    let control_log = phone.dir.path().join("control-netlog.json");
    run_chromium(&browser, &control, &["--dump-dom".into(), format!("--log-net-log={}", control_log.display())]);
    assert_eq!(page_requests(&control_log), ["http://127.0.0.1:9/x.png"], "the net log check sees page requests");

    // The picture.
    let shot = phone.dir.path().join("report.png");
    let o = run_chromium(&browser, &page, &[format!("--screenshot={}", shot.display())]);
    assert!(o.status.success() && shot.exists(), "chromium --screenshot failed: {}", stderr(&o));
    if let Some(keep) = std::env::var_os("FOTOVAKT_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("keep screenshot");
    }
    let img = image::open(&shot).expect("decode screenshot").to_rgb8();
    assert_eq!((img.width(), img.height()), (1280, 2000));
    let near = |p: &image::Rgb<u8>, c: [u8; 3]| p.0.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 12);
    let mut non_white = 0u64;
    let mut colours = std::collections::HashSet::new();
    let (mut seen_blue, mut quarantine_red) = (0u64, 0u64);
    for p in img.pixels() {
        if p.0.iter().any(|&v| v < 235) {
            non_white += 1;
        }
        colours.insert(p.0.map(|v| v >> 4));
        seen_blue += near(p, [0x3b, 0x6e, 0xa5]) as u64;
        quarantine_red += near(p, [0xc4, 0x46, 0x2b]) as u64;
    }
    let total = u64::from(img.width() * img.height());
    assert!(non_white * 20 > total, "the screenshot is mostly blank: {non_white} of {total} pixels not white");
    assert!(colours.len() > 50, "the screenshot has only {} distinct colours", colours.len());
    assert!(seen_blue > 300, "bars for 'seen' are drawn: {seen_blue} blue pixels");
    assert!(quarantine_red > 300, "bars for 'quarantined' are drawn: {quarantine_red} red pixels");
}
