//! Config TOML and the parsers of names and ledger/store data.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fotovakt::fuzzing::config(data);
});
