//! Camera-folder file bytes → sniff → EXIF facts → the classifier's model input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fotovakt::fuzzing::intake(data);
});
