//! cargo-fuzz target `parse_message`: the check is shared with the regression test
//! crates/sip/tests/fuzz_regressions.rs (crates/sip/tests/fuzz_checks/).
#![no_main]

#[path = "../../crates/sip/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::check_parse_message(data));
