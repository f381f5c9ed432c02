//! ONNX Runtime discovery: without a usable library the error is one line that says how to
//! get it and that the agent goes on with context rules. Own test binary, so no runtime is
//! loaded in this process before.

use fotovakt::classify::runtime;

#[test]
fn missing_runtime_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").expect("write");
    let absent = dir.path().join("nothing-here.so");
    for tried in [vec![absent.clone()], vec![fake.clone(), absent]] {
        let Err(err) = runtime::try_candidates(&tried) else {
            panic!("a text file must not load as ONNX Runtime");
        };
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(err.contains("pip install onnxruntime"), "{err}");
        assert!(err.contains("context"), "{err}");
    }
}

#[test]
fn search_order_starts_with_the_explicit_path_then_the_environment() {
    let explicit = std::path::Path::new("/opt/ort/libonnxruntime.so.1.31.1");
    let c = runtime::candidates(Some(explicit));
    assert_eq!(c.first().map(|p| p.as_path()), Some(explicit));
    if let Some(env) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        assert_eq!(c.get(1).map(|p| p.as_os_str()), Some(env.as_os_str()));
    }
}
