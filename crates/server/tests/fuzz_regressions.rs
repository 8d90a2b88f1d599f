//! Regression inputs of the `core_request` cargo-fuzz target (fuzz/): every input that
//! once crashed it, and a small minimized sample of its corpus, kept in
//! tests/fuzz_regressions/core_request/ and put through the same check the target runs
//! (tests/fuzz_core/), on stable Rust without libFuzzer.

#[path = "fuzz_core/mod.rs"]
mod fuzz_core;

use fuzz_core::{check_core_request, show};
use std::path::PathBuf;

#[test]
fn every_saved_core_request_input_passes_the_target_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/core_request");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "the core_request regression inputs are there"
    );
    let mut forwarded = 0;
    for f in files {
        let data = std::fs::read(&f).unwrap();
        match std::panic::catch_unwind(|| check_core_request(&data)) {
            Ok(n) => forwarded += n,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!(
                    "core_request fails on {}: {}\ninput {}",
                    f.display(),
                    msg.unwrap_or_default(),
                    show(&data)
                );
            }
        }
    }
    // the seeds reach routing: federated INVITE, MESSAGE and SUBSCRIBE are sent on to bob
    assert!(forwarded >= 3, "only {forwarded} requests were sent on");
}
