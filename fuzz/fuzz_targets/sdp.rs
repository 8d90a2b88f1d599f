//! cargo-fuzz target `sdp`: the MCU's SDP reading, from the network (an INVITE's offer, a
//! dial-out callee's answer). No panic; an answer built for an accepted offer parses again
//! and negotiates the same codec; an answer to our offer is accepted or refused cleanly.
#![no_main]

use confab_media::sdp::{build_answer, negotiate, negotiate_answer, parse_offer};
use confab_media::Codec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = parse_offer(text) else {
        return;
    };
    let prefs = [Codec::Opus, Codec::Pcmu, Codec::Pcma];
    if let Ok(neg) = negotiate(&offer, &prefs) {
        let ip = "127.0.0.1".parse().unwrap();
        let answer = build_answer(&offer, &neg, ip, 40000, 1, 1);
        let again = parse_offer(&answer).expect("our own answer parses");
        let back = negotiate(&again, &prefs).expect("our own answer negotiates");
        assert_eq!(back.codec, neg.codec);
    }
    let _ = negotiate_answer(&offer, &prefs);
});
