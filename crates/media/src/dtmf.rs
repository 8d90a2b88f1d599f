//! RFC 4733 telephone-events: parse the payload and turn the packets of one key press
//! (start, updates, and the usually three times retransmitted end packet, all with the
//! event's RTP timestamp) into exactly one digit.

/// A parsed telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

/// Parses the 4-byte payload (RFC 4733 §2.3); a longer payload (several events) is read
/// for its first one.
pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
    if payload.len() < 4 {
        return None;
    }
    Some(TelephoneEvent {
        event: payload[0],
        end: payload[1] & 0x80 != 0,
        volume: payload[1] & 0x3f,
        duration: u16::from_be_bytes([payload[2], payload[3]]),
    })
}

/// The DTMF digit of an event code (0-9, *, #, A-D); other events (flash, tones) have none.
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One leg's key-press detector.
#[derive(Clone, Debug, Default)]
pub struct DtmfDetector {
    /// The RTP timestamp and event of the press under way, and whether it was reported.
    current: Option<(u32, u8, bool)>,
}

impl DtmfDetector {
    /// Feeds one telephone-event packet; returns a digit once per key press: when its end
    /// packet arrives, or, if every end packet was lost, when the next press starts.
    pub fn push(&mut self, ts: u32, payload: &[u8]) -> Option<char> {
        let ev = parse(payload)?;
        let mut out = None;
        match self.current {
            Some((cts, cev, reported)) if cts == ts && cev == ev.event => {
                if ev.end && !reported {
                    self.current = Some((cts, cev, true));
                    out = digit(ev.event);
                }
                return out;
            }
            Some((_, cev, false)) => out = digit(cev), // the previous press's end was lost
            _ => {}
        }
        self.current = Some((ts, ev.event, ev.end));
        if ev.end {
            // A press seen only by its end packet; report now unless we must report the
            // previous one first (then this one is reported with its retransmission).
            if out.is_none() {
                return digit(ev.event);
            }
            self.current = Some((ts, ev.event, false));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(event: u8, end: bool, dur: u16) -> [u8; 4] {
        let d = dur.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    #[test]
    fn parse_and_digits() {
        assert_eq!(
            parse(&[5, 0x8a, 1, 0]),
            Some(TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 256
            })
        );
        assert_eq!(parse(&[1, 2, 3]), None);
        assert_eq!(digit(10), Some('*'));
        assert_eq!(digit(11), Some('#'));
        assert_eq!(digit(15), Some('D'));
        assert_eq!(digit(16), None);
    }

    #[test]
    fn one_digit_per_press() {
        let mut d = DtmfDetector::default();
        let mut got = String::new();
        for (ts, ev, end) in [
            (1000, 1, false),
            (1000, 1, false),
            (1000, 1, true),
            (1000, 1, true),
            (1000, 1, true),
            (5000, 11, false),
            (5000, 11, true),
            (5000, 11, true),
            // The same key again is a new press (new timestamp).
            (9000, 11, false),
            (9000, 11, true),
        ] {
            if let Some(c) = d.push(ts, &p(ev, end, 800)) {
                got.push(c);
            }
        }
        assert_eq!(got, "1##");
    }

    #[test]
    fn lost_end_packets() {
        let mut d = DtmfDetector::default();
        let mut got = String::new();
        // Press 7 loses every end packet; the next press (only its end packets arrive,
        // all three) still yields both digits, each once.
        for (ts, ev, end) in [
            (100, 7, false),
            (100, 7, false),
            (900, 8, true),
            (900, 8, true),
            (900, 8, true),
        ] {
            if let Some(c) = d.push(ts, &p(ev, end, 400)) {
                got.push(c);
            }
        }
        assert_eq!(got, "78");
        assert_eq!(d.push(1, &[1, 2]), None); // malformed
    }
}
