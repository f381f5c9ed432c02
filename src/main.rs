//! The `fotovakt` binary: everything lives in the library; see `fotovakt::cli`.

fn main() -> std::process::ExitCode {
    // Before any thread exists: ONNX Runtime must never phone home (see classify::runtime).
    fotovakt::classify::runtime::disable_telemetry();
    fotovakt::cli::main()
}
