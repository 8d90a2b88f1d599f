//! RTP and RTCP (RFC 3550) with no I/O: parse a received packet into a borrowed view,
//! build our own headers, recognise RTCP (also when multiplexed on the RTP port, RFC 5761)
//! and build a minimal sender report.

use std::fmt;

/// The fixed RTP header length.
pub const HEADER_LEN: usize = 12;
/// The largest datagram the MCU accepts (bigger ones are dropped and counted).
pub const MAX_PACKET: usize = 1500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    TooShort,
    BadVersion,
    BadCsrc,
    BadExtension,
    BadPadding,
    TooLong,
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RtpError::TooShort => "packet shorter than its header",
            RtpError::BadVersion => "RTP version is not 2",
            RtpError::BadCsrc => "CSRC list runs past the packet",
            RtpError::BadExtension => "header extension runs past the packet",
            RtpError::BadPadding => "padding count is zero or larger than the payload",
            RtpError::TooLong => "packet larger than the MCU accepts",
        })
    }
}

impl std::error::Error for RtpError {}

/// A received RTP packet, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp<'a> {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parses an RTP packet: version 2, CSRC list, header extension and padding are handled;
/// anything that does not add up is an error (never a panic).
pub fn parse(buf: &[u8]) -> Result<Rtp<'_>, RtpError> {
    if buf.len() > MAX_PACKET {
        return Err(RtpError::TooLong);
    }
    if buf.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    let b0 = buf[0];
    if b0 >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    let padding = b0 & 0x20 != 0;
    let extension = b0 & 0x10 != 0;
    let cc = (b0 & 0x0f) as usize;
    let mut start = HEADER_LEN + 4 * cc;
    if start > buf.len() {
        return Err(RtpError::BadCsrc);
    }
    if extension {
        if start + 4 > buf.len() {
            return Err(RtpError::BadExtension);
        }
        let words = u16::from_be_bytes([buf[start + 2], buf[start + 3]]) as usize;
        start += 4 + 4 * words;
        if start > buf.len() {
            return Err(RtpError::BadExtension);
        }
    }
    let mut end = buf.len();
    if padding {
        let n = buf[end - 1] as usize;
        if n == 0 || n > end - start {
            return Err(RtpError::BadPadding);
        }
        end -= n;
    }
    Ok(Rtp {
        marker: buf[1] & 0x80 != 0,
        pt: buf[1] & 0x7f,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        ts: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[start..end],
    })
}

/// Writes a 12-byte RTP header (no CSRC, no extension) into `out[..12]`.
#[inline]
pub fn write_header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    out[0] = 0x80;
    out[1] = (pt & 0x7f) | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// True when a datagram on an RTP port is RTCP (RFC 5761 §4: the second byte in 192..=223,
/// which covers SR 200, RR 201, SDES 202, BYE 203, APP 204 and the feedback types).
#[inline]
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// What a compound RTCP packet told us (enough to note liveness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpInfo {
    /// The sender SSRC of the first SR or RR.
    pub ssrc: Option<u32>,
    pub sender_reports: u8,
    pub receiver_reports: u8,
    pub bye: bool,
}

/// Parses a compound RTCP packet: every part must be version 2 with a length that fits,
/// the first must be SR or RR (RFC 3550 §6.1), at most 16 parts are looked at.
pub fn parse_rtcp(buf: &[u8]) -> Result<RtcpInfo, RtpError> {
    if buf.len() > MAX_PACKET {
        return Err(RtpError::TooLong);
    }
    if buf.len() < 8 {
        return Err(RtpError::TooShort);
    }
    let mut info = RtcpInfo::default();
    let mut off = 0;
    let mut parts = 0;
    while off < buf.len() {
        if off + 4 > buf.len() || parts >= 16 {
            return Err(RtpError::TooShort);
        }
        if buf[off] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let pt = buf[off + 1];
        let len = 4 * (u16::from_be_bytes([buf[off + 2], buf[off + 3]]) as usize + 1);
        if off + len > buf.len() {
            return Err(RtpError::TooShort);
        }
        if parts == 0 && pt != 200 && pt != 201 {
            return Err(RtpError::BadVersion);
        }
        match pt {
            200 | 201 if len >= 8 => {
                if pt == 200 {
                    info.sender_reports += 1;
                } else {
                    info.receiver_reports += 1;
                }
                if info.ssrc.is_none() {
                    info.ssrc = Some(u32::from_be_bytes([
                        buf[off + 4],
                        buf[off + 5],
                        buf[off + 6],
                        buf[off + 7],
                    ]));
                }
            }
            203 => info.bye = true,
            _ => {}
        }
        off += len;
        parts += 1;
    }
    Ok(info)
}

/// Builds a minimal RTCP sender report (no report blocks) followed by an SDES CNAME,
/// as RFC 3550 §6.1 requires of a compound packet; returns its length.
pub fn build_sr(
    out: &mut [u8; 64],
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
) -> usize {
    out[0] = 0x80;
    out[1] = 200;
    out[2..4].copy_from_slice(&6u16.to_be_bytes());
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8..16].copy_from_slice(&ntp.to_be_bytes());
    out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
    out[20..24].copy_from_slice(&packets.to_be_bytes());
    out[24..28].copy_from_slice(&octets.to_be_bytes());
    // SDES: one chunk, CNAME "confab", END, padded to a word.
    let cname = b"confab";
    out[28] = 0x81;
    out[29] = 202;
    // chunk: ssrc(4) + type(1) + len(1) + 6 + end(1) = 13 → 16 bytes; header 4 → 20 bytes = 5 words
    out[30..32].copy_from_slice(&4u16.to_be_bytes());
    out[32..36].copy_from_slice(&ssrc.to_be_bytes());
    out[36] = 1;
    out[37] = cname.len() as u8;
    out[38..44].copy_from_slice(cname);
    out[44..48].fill(0);
    48
}

/// Seconds since 1900 (NTP) in 32.32 fixed point, from the system clock.
pub fn ntp_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        write_header(&mut v, false, pt, seq, ts, ssrc);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn round_trip() {
        let p = packet(0, 65535, 0xdead_beef, 42, &[1, 2, 3]);
        let r = parse(&p).unwrap();
        assert_eq!(
            (r.pt, r.seq, r.ts, r.ssrc, r.marker),
            (0, 65535, 0xdead_beef, 42, false)
        );
        assert_eq!(r.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrc_extension_padding() {
        let mut p = packet(8, 1, 2, 3, &[]);
        p[0] = 0x80 | 0x20 | 0x10 | 2; // padding, extension, 2 CSRCs
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, 1 word
        p.extend_from_slice(&[7, 7, 7]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let r = parse(&p).unwrap();
        assert_eq!(r.payload, &[7, 7, 7]);
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort));
        let mut p = packet(0, 1, 2, 3, &[1]);
        p[0] = 0x40;
        assert_eq!(parse(&p), Err(RtpError::BadVersion));
        p[0] = 0x8f; // 15 CSRCs, none there
        assert_eq!(parse(&p), Err(RtpError::BadCsrc));
        p[0] = 0x90; // extension header missing
        assert_eq!(parse(&p), Err(RtpError::BadExtension));
        let mut e = packet(0, 1, 2, 3, &[0xbe, 0xde, 0xff, 0xff]);
        e[0] = 0x90; // extension claims 65535 words
        assert_eq!(parse(&e), Err(RtpError::BadExtension));
        let mut q = packet(0, 1, 2, 3, &[1, 2]);
        q[0] = 0xa0;
        *q.last_mut().unwrap() = 0; // zero padding count
        assert_eq!(parse(&q), Err(RtpError::BadPadding));
        *q.last_mut().unwrap() = 9; // more padding than payload
        assert_eq!(parse(&q), Err(RtpError::BadPadding));
        assert_eq!(parse(&vec![0x80; MAX_PACKET + 1]), Err(RtpError::TooLong));
        // Every prefix of a valid packet with all features parses or errs without a panic.
        let mut full = packet(0, 1, 2, 3, &[]);
        full[0] = 0xb1;
        full.extend_from_slice(&[0; 4]);
        full.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4, 5, 0, 2]);
        for n in 0..=full.len() {
            let _ = parse(&full[..n]);
        }
    }

    #[test]
    fn rtcp_recognised_and_parsed() {
        let mut sr = [0u8; 64];
        let n = build_sr(&mut sr, 77, ntp_now(), 1000, 5, 800);
        assert!(is_rtcp(&sr[..n]));
        let info = parse_rtcp(&sr[..n]).unwrap();
        assert_eq!(info.ssrc, Some(77));
        assert_eq!(info.sender_reports, 1);
        // An RTP packet with PT 0 or a dynamic PT is not RTCP.
        assert!(!is_rtcp(&packet(0, 1, 2, 3, &[0; 160])));
        assert!(!is_rtcp(&packet(111, 1, 2, 3, &[0; 40])));
        // Garbage and truncated compounds.
        assert!(parse_rtcp(&sr[..n - 4]).is_err());
        assert!(parse_rtcp(&[0x80, 202, 0, 1, 0, 0, 0, 0]).is_err()); // SDES first
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 9];
        assert_eq!(parse_rtcp(&rr).unwrap().ssrc, Some(9));
        for k in 0..n {
            let _ = parse_rtcp(&sr[..k]);
        }
    }
}
