//! cargo-fuzz target `dotnet`: Lync's .NET patterns and replacement strings as confab-voice
//! reads them (administrators' input, run on every routed call). No panic; a pattern that
//! compiles matches and replaces without panicking on numbers; a translation that is
//! accepted replaces without panicking.
#![no_main]

use confab_voice::dotnet::{check_translation, Pattern};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // pattern \n translation \n number
    let mut parts = text.splitn(3, '\n');
    let (pattern, translation, number) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("$1"),
        parts.next().unwrap_or("+14255550100"),
    );
    let accepted = check_translation(translation).is_ok();
    if let Ok(p) = Pattern::new(pattern) {
        let _ = p.is_match(number);
        if accepted {
            let _ = p.replace(number, translation);
        }
    }
});
