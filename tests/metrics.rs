//! Fleet metrics: `stats --format openmetrics` and `serve-metrics`, read back by a real
//! parser (Python's prometheus_client, strict OpenMetrics and the classic text parser) and
//! compared with `stats --format json`. Needs python3 with prometheus-client (scripts/test
//! installs it).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{phone_with_all_states, stderr, stdout, wait_until, Phone};
use serde_json::Value;

const PARSER: &str = r#"
import json, math, sys
mode = sys.argv[1]
if mode == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({
        "name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation,
        "samples": [{"name": s.name, "labels": s.labels,
                     "value": None if math.isnan(s.value) else s.value} for s in f.samples],
    })
print(json.dumps(out))
"#;

/// Parse exposition text with prometheus_client; `mode` is "openmetrics" or "text".
fn parse(mode: &str, text: &str) -> Vec<Value> {
    let child = Command::new("python3")
        .args(["-c", PARSER, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.expect("python3 is needed to parse the exposition (scripts/test installs what it needs)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to parser");
    let out = child.wait_with_output().expect("parser output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'prometheus_client'"),
        "prometheus_client missing: run `python3 -m pip install prometheus-client==0.26.0` (scripts/test does)"
    );
    assert!(out.status.success(), "the {mode} parser rejected the exposition: {err}\n---\n{text}");
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("parser JSON")
}

/// The one sample named `name` with exactly these labels.
fn sample(families: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: serde_json::Map<String, Value> =
        labels.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
    let found: Vec<&Value> = families
        .iter()
        .flat_map(|f| f["samples"].as_array().into_iter().flatten())
        .filter(|s| s["name"] == name && s["labels"].as_object() == Some(&want))
        .collect();
    assert_eq!(found.len(), 1, "exactly one sample {name}{labels:?}");
    found[0]["value"].as_f64()
}

fn ms_as_seconds(v: &Value) -> Option<f64> {
    v.as_i64().map(|ms| ms as f64 / 1000.0)
}

fn close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (Some(x), Some(y)) => assert!((x - y).abs() < 1e-9, "{what}: {x} vs {y}"),
        (None, None) => {}
        _ => panic!("{what}: {a:?} vs {b:?}"),
    }
}

/// Every number of the exposition against the JSON, and nothing that names anything.
fn assert_matches_json(families: &[Value], j: &Value, openmetrics: bool) {
    let n = |v: &Value| v.as_u64().map(|x| x as f64);
    for state in ["quarantined", "released", "kept", "pending", "aborted"] {
        close(sample(families, "fotovakt_items", &[("state", state)]), n(&j["items"][state]), state);
    }
    close(sample(families, "fotovakt_seen_total", &[]), n(&j["items"]["seen"]), "seen");
    close(sample(families, "fotovakt_rejected_total", &[]), n(&j["rejected"]), "rejected");
    let decisions = j["decisions"].as_object().expect("decisions");
    for (source, by) in decisions {
        for action in ["quarantine", "keep"] {
            close(
                sample(families, "fotovakt_decisions", &[("source", source), ("action", action)]),
                n(&by[action]),
                &format!("decisions {source} {action}"),
            );
        }
    }
    let e = &j["exposure_ms"];
    close(sample(families, "fotovakt_exposure_seconds_count", &[]), n(&e["count"]), "exposure count");
    close(sample(families, "fotovakt_exposure_seconds_sum", &[]), ms_as_seconds(&e["sum"]), "exposure sum");
    let mut cumulative = 0;
    for b in e["buckets"].as_array().expect("buckets") {
        cumulative += b["count"].as_u64().expect("count");
        let le = match b["le"].as_i64() {
            Some(ms) => format!("{}", ms as f64 / 1000.0),
            None => "+Inf".into(),
        };
        let got = sample(families, "fotovakt_exposure_seconds_bucket", &[("le", &le)]);
        close(got, Some(cumulative as f64), &format!("bucket le={le}"));
    }
    close(sample(families, "fotovakt_exposure_p50_seconds", &[]), ms_as_seconds(&e["p50"]), "p50");
    close(sample(families, "fotovakt_exposure_p95_seconds", &[]), ms_as_seconds(&e["p95"]), "p95");
    close(sample(families, "fotovakt_exposure_max_seconds", &[]), ms_as_seconds(&e["max"]), "max");
    close(sample(families, "fotovakt_store_bytes", &[]), n(&j["store"]["bytes"]), "store bytes");
    close(sample(families, "fotovakt_store_files", &[]), n(&j["store"]["files"]), "store files");
    close(sample(families, "fotovakt_cases", &[]), n(&j["cases"]["count"]), "cases");
    // The store's health: one state set, the free space known, nothing waiting in this process.
    let state = j["health"]["store"].as_str().expect("health.store");
    assert_eq!(sample(families, "fotovakt_store_health", &[("state", state)]), Some(1.0), "health {state}");
    for other in ["ok", "failing", "full", "read_only", "unknown"].iter().filter(|s| **s != state) {
        assert_eq!(sample(families, "fotovakt_store_health", &[("state", other)]), Some(0.0), "health {other}");
    }
    assert!(sample(families, "fotovakt_store_free_bytes", &[]).is_some_and(|b| b > 0.0), "free bytes");
    close(sample(families, "fotovakt_files_waiting", &[]), n(&j["health"]["waiting"]), "waiting");
    close(
        sample(families, "fotovakt_session_open", &[]),
        Some(if j["session_open"] == true { 1.0 } else { 0.0 }),
        "session",
    );
    for f in families {
        let name = f["name"].as_str().expect("name");
        assert!(name.starts_with("fotovakt_"), "{name}");
        assert!(!f["help"].as_str().unwrap_or("").is_empty(), "{name} has HELP");
        for s in f["samples"].as_array().expect("samples") {
            for (k, _) in s["labels"].as_object().expect("labels") {
                assert!(["state", "source", "action", "le"].contains(&k.as_str()), "label {k} on {name}");
            }
        }
        let kind = f["type"].as_str().expect("type");
        assert!(["gauge", "counter", "histogram"].contains(&kind), "{name}: {kind}");
        if openmetrics {
            let unit = f["unit"].as_str().unwrap_or("");
            if name.ends_with("_seconds") {
                assert_eq!(unit, "seconds", "{name}");
            } else if name.ends_with("_bytes") {
                assert_eq!(unit, "bytes", "{name}");
            }
        }
    }
    let types: Vec<(&str, &str)> =
        families.iter().map(|f| (f["name"].as_str().unwrap_or(""), f["type"].as_str().unwrap_or(""))).collect();
    for expected in
        [("fotovakt_seen", "counter"), ("fotovakt_rejected", "counter"), ("fotovakt_exposure_seconds", "histogram")]
    {
        assert!(types.contains(&expected), "{expected:?} in {types:?}");
    }
}

fn json_stats(phone: &Phone) -> Value {
    let o = phone.run(&["stats", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("json")
}

#[test]
fn openmetrics_parses_strictly_and_equals_stats_json() {
    let phone = phone_with_all_states();
    let o = phone.run(&["stats", "--format", "openmetrics"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for secret in ["IMG_", "CASE-SECRET", "officer-a", "Camera"] {
        assert!(!text.contains(secret), "the exposition leaks {secret:?}");
    }
    let families = parse("openmetrics", &text);
    let json = json_stats(&phone);
    assert_eq!(json["items"]["quarantined"], 4, "{json}");
    assert_eq!(json["items"]["released"], 1, "{json}");
    assert_eq!(json["decisions"]["session"]["quarantine"], 4, "released items keep their decision: {json}");
    assert_matches_json(&families, &json, true);
}

#[test]
fn an_empty_store_still_exposes_valid_openmetrics() {
    let phone = Phone::new();
    // `stats` reads a store, it never makes one: `session` does.
    assert!(phone.run(&["session", "status"]).status.success(), "create the store");
    let o = phone.run(&["stats", "--format", "openmetrics"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let families = parse("openmetrics", &stdout(&o));
    assert_eq!(sample(&families, "fotovakt_exposure_seconds_count", &[]), Some(0.0));
    assert_eq!(sample(&families, "fotovakt_exposure_p95_seconds", &[]), None, "no data: NaN");
    assert_matches_json(&families, &json_stats(&phone), true);
}

/// One HTTP exchange over a plain TcpStream: (status code, headers, body).
fn http(port: u16, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s.write_all(request).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {text:?}"));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("status: {head}"));
    (code, head.to_string(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().filter_map(|l| l.split_once(':')).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn serve(phone: &Phone, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&phone.store)
        .arg("serve-metrics")
        .args(args)
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("test-config.toml"))
        .env("FOTOVAKT_LOG", "fotovakt=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve-metrics")
}

/// Stops the server if the test fails half-way.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn serve_metrics_answers_scrapes_survives_bad_requests_and_stops_on_sigterm() {
    let phone = phone_with_all_states();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server(Some(serve(&phone, &["--listen", &listen])));
    assert!(
        wait_until(Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "serve-metrics did not start listening on {listen}"
    );
    const OM: &[u8] =
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";

    let (code, head, body) = http(port, OM);
    assert_eq!(code, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(body.ends_with("# EOF\n"));
    let json = json_stats(&phone);
    assert_matches_json(&parse("openmetrics", &body), &json, true);

    let (code, head, body) = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    assert_eq!(code, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(!body.contains("# EOF"));
    assert_matches_json(&parse("text", &body), &json, false);

    let (code, head, body) = http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(code, 200);
    assert!(body.is_empty() && header(&head, "content-length").is_some_and(|l| l != "0"), "{head}");
    assert_eq!(http(port, b"GET / HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(port, b"GET /metrics/../secrets HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0, 405);

    // Rubbish, a request that never ends, and a client that hangs up: answered or dropped,
    // and the server keeps serving.
    assert_eq!(http(port, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n").0, 400);
    assert_eq!(http(port, b"GET /metrics\r\n\r\n").0, 400);
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend(std::iter::repeat_n(b'A', 64 * 1024));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.write_all(&huge); // the server may close before reading it all
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "oversized request: {answer:?}");
    drop(TcpStream::connect(("127.0.0.1", port)).expect("connect and hang up"));
    // A client that starts a request and stalls is cut off after the request time limit.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").expect("half a request");
    let t = std::time::Instant::now();
    assert_eq!(http(port, OM).0, 200, "served after the stalled client");
    assert!(t.elapsed() < Duration::from_secs(15), "stalled client held the server {:?}", t.elapsed());
    drop(stalled);

    // Numbers are taken per scrape: a new photo shows up without a restart.
    phone.shoot("IMG_later.jpg", 77);
    assert!(phone.run(&["scan"]).status.success());
    let (code, _, body) = http(port, OM);
    assert_eq!(code, 200);
    let after = parse("openmetrics", &body);
    let seen_before = json["items"]["seen"].as_f64().expect("seen");
    assert_eq!(sample(&after, "fotovakt_seen_total", &[]), Some(seen_before + 1.0));
    assert_matches_json(&after, &json_stats(&phone), true);

    let mut child = server.0.take().expect("server");
    // SAFETY: plain kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            status = child.try_wait().expect("wait");
            status.is_some()
        }),
        "serve-metrics did not stop on SIGTERM"
    );
    let out = child.wait_with_output().expect("output");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("serving metrics at http://{listen}/metrics")), "{}", stdout(&out));
    assert!(stderr(&out).contains("metrics server stopped"), "{}", stderr(&out));
}

#[test]
fn serve_metrics_refuses_the_network_and_bad_addresses() {
    let phone = Phone::new();
    assert!(phone.run(&["session", "status"]).status.success(), "create the store");
    let o = phone.run(&["serve-metrics", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a loopback address") && stderr(&o).contains("--allow-remote"), "{}", stderr(&o));
    for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999", "http://127.0.0.1:9464", ""] {
        let o = phone.run(&["serve-metrics", "--listen", bad]);
        assert_eq!(o.status.code(), Some(2), "--listen {bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--listen"), "{}", stderr(&o));
    }
    // A port someone else holds: a clear failure, not a hang.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let o = phone.run(&["serve-metrics", "--listen", &addr]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("cannot listen on {addr}")), "{}", stderr(&o));
}

/// Silent clients (connected, sending nothing) and a slow one (half a request) hold only their
/// own sockets: with 64 of them open a scrape is still answered at once, and the server keeps
/// answering after they are cut off.
#[test]
fn serve_metrics_is_not_held_by_silent_or_slow_clients() {
    let phone = phone_with_all_states();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(Some(serve(&phone, &["--listen", &listen])));
    assert!(
        wait_until(Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "serve-metrics did not start listening on {listen}"
    );
    const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(http(port, GET).0, 200, "a first scrape");
    let mut idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect")).collect();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHo").expect("half a request");
    idle.push(slow);
    // Behaviour, not a benchmark: one at a time with a 5 s read timeout this took minutes.
    for round in 0..3 {
        let t = std::time::Instant::now();
        let (code, _, body) = http(port, GET);
        let took = t.elapsed();
        assert_eq!(code, 200, "round {round}");
        assert!(body.contains("fotovakt_seen_total"), "round {round}: {body}");
        assert!(took < Duration::from_secs(2), "round {round}: a scrape with 65 idle connections open took {took:?}");
    }
    // The idle ones are cut off after the request time limit (5 s): each reads end-of-file.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    assert_eq!(http(port, GET).0, 200, "still serving after the idle clients were cut off");
}
