//! Regression inputs of the cargo-fuzz targets (fuzz/): every input that once crashed a
//! target, and a small minimized sample of each target's corpus, kept in
//! tests/fuzz_regressions/<target>/ and put through the same check the target runs
//! (tests/fuzz_checks/), on stable Rust without libFuzzer.

#[path = "fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::{show, TARGETS};
use std::path::PathBuf;

#[test]
fn every_saved_fuzz_input_passes_its_target_check() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for (target, check) in TARGETS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(target))
            .unwrap_or_else(|e| panic!("{target}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no regression inputs for the {target} target"
        );
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!(
                    "{target} fails on {}: {}\ninput {}",
                    f.display(),
                    msg.unwrap_or_default(),
                    show(&data)
                );
            }
        }
    }
}
