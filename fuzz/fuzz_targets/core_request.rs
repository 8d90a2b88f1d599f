//! cargo-fuzz target `core_request`: bytes through the request path of an in-memory core;
//! the check is shared with the regression test crates/server/tests/fuzz_regressions.rs
//! (crates/server/tests/fuzz_core/).
#![no_main]

#[path = "../../crates/server/tests/fuzz_core/mod.rs"]
mod fuzz_core;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_core::check_core_request(data);
});
