//! The `fotovakt` binary: everything lives in the library; see `fotovakt::cli`.

fn main() -> std::process::ExitCode {
    fotovakt::cli::main()
}
