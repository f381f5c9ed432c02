//! The agent makes no network connection at all: every command a phone or an officer runs is
//! traced with strace (the process and its children, the ONNX Runtime lookup included) for
//! every call that creates or connects a socket, and must show none; the one exception is
//! the signal handler's self-pipe, a `socketpair(AF_UNIX)` that never leaves the process. And
//! it runs unchanged in a network namespace with no interfaces. (`serve-metrics` listens on a
//! socket by design and is not part of this.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{stderr, Phone};

fn strace() -> &'static str {
    let path = "/usr/bin/strace";
    assert!(
        Path::new(path).exists(),
        "strace is needed to prove the agent makes no network calls: apt-get install strace (scripts/test does)"
    );
    path
}

/// The socket calls strace is asked to show: everything that makes, names or connects one.
const TRACE: &str = "trace=socket,socketpair,connect,bind,listen,accept,accept4";

/// Socket calls in an strace log (signals and exits are not calls), less the AF_UNIX
/// self-pipe of the signal handler.
fn network_calls(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let rest = l.split_once(' ').map_or(*l, |(_, r)| r.trim_start());
            !rest.is_empty()
                && !rest.starts_with("---")
                && !rest.starts_with("+++")
                && !rest.starts_with("socketpair(AF_UNIX,")
        })
        .collect()
}

#[test]
fn no_command_makes_a_network_call() {
    let strace = strace();
    let phone = Phone::new();
    // The model on: the classifier and the ONNX Runtime lookup are traced too.
    let cfg = phone.dir.path().join("with-model.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\nsettle = \"200ms\"\n", phone.camera)).expect("cfg");
    let photo = phone.shoot("IMG_net.jpg", 71);
    let bin = env!("CARGO_BIN_EXE_fotovakt");
    let store = phone.store.to_str().expect("utf8");
    let cfgs = cfg.to_str().expect("utf8");
    let report = phone.dir.path().join("report.html");
    let commands: Vec<Vec<&str>> = vec![
        vec!["scan"],
        vec!["classify", "--json", photo.to_str().expect("utf8")],
        vec!["session", "start", "--case", "NET-1"],
        vec!["list", "--all", "--json"],
        vec!["verify"],
        vec!["stats", "--format", "openmetrics"],
        vec!["report", "--out", report.to_str().expect("utf8")],
    ];
    // Control: the same trace does see a program that opens a socket.
    let log = phone.dir.path().join("trace-control.log");
    let out = Command::new(strace)
        .args(["-f", "-qq", "-e", TRACE, "-o"])
        .arg(&log)
        .args(["python3", "-c", "import socket; socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()"])
        .output()
        .expect("strace control");
    assert!(out.status.success(), "control: {}", stderr(&out));
    let text = std::fs::read_to_string(&log).expect("trace");
    assert!(network_calls(&text).iter().any(|l| l.contains("socket(AF_INET6")), "control not seen: {text}");
    let mut traced = 0;
    for args in &commands {
        let log = phone.dir.path().join("trace.log");
        let out = Command::new(strace)
            .args(["-f", "-qq", "-e", TRACE, "-o"])
            .arg(&log)
            .args([bin, "--store", store, "--config", cfgs])
            .args(args)
            .output()
            .expect("strace");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = std::fs::read_to_string(&log).expect("trace");
        assert!(network_calls(&text).is_empty(), "{args:?} made network calls: {:?}", network_calls(&text));
        traced += 1;
    }
    // The long-running watcher, with a photo arriving while it runs; stopped by SIGTERM.
    let log = phone.dir.path().join("trace-watch.log");
    let child = Command::new(strace)
        .args(["-f", "-qq", "-e", TRACE, "-o"])
        .arg(&log)
        .args(["timeout", "--preserve-status", "-s", "TERM", "4", bin, "--store", store, "--config", cfgs, "watch"])
        .spawn()
        .expect("strace watch");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let during = phone.shoot("IMG_net2.jpg", 72);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "watch under strace: {:?}", out.status);
    let text = std::fs::read_to_string(&log).expect("trace");
    assert!(network_calls(&text).is_empty(), "watch made network calls: {:?}", network_calls(&text));
    assert!(!during.exists(), "the watcher quarantined the photo shot during the session");
    traced += 1;
    eprintln!("{traced} commands traced, 0 network calls");
}

#[test]
fn runs_unchanged_without_any_network() {
    // A fresh network namespace has no interfaces but a downed loopback. Needs root (or user
    // namespaces); says SKIP where the machine does not allow it.
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: cannot create a network namespace here (needs root or user namespaces)");
        return;
    }
    let phone = Phone::new();
    assert!(phone.run(&["session", "start", "--case", "NS-1"]).status.success());
    let p = phone.shoot("IMG_ns.jpg", 73);
    let bin = env!("CARGO_BIN_EXE_fotovakt");
    let cfg = phone.dir.path().join("ns.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n", phone.camera)).expect("cfg");
    let out = Command::new("unshare")
        .args(["-n", bin, "--store"])
        .arg(&phone.store)
        .arg("--config")
        .arg(&cfg)
        .arg("scan")
        .output()
        .expect("unshare");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!p.exists(), "quarantined with no network at all");
    assert_eq!(phone.stored().len(), 1);
}
