//! SDP offer/answer for audio (RFC 4566, RFC 3264): parse an offer, choose a codec in
//! our preference order, build the answer; and the other way round for dial-out: build
//! our offer ([`build_offer`]), read the answer ([`negotiate_answer`]).

use crate::codec::Codec;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Largest SDP body accepted.
pub const MAX_SDP: usize = 16 * 1024;
/// Most m= lines accepted.
const MAX_MEDIA: usize = 16;
/// Most formats per m= line.
const MAX_FORMATS: usize = 64;

/// A stream's direction (RFC 3264 §5.1), from the side that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answer mirrors to an offer's.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    pub fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub name: String,
    pub rate: u32,
    pub channels: u8,
}

/// One m= line of an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDesc {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub rtpmaps: Vec<RtpMap>,
    pub conn: Option<IpAddr>,
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    pub rtcp_mux: bool,
    pub ptime: Option<u32>,
    pub direction: Option<Direction>,
}

/// A parsed offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub conn: Option<IpAddr>,
    pub direction: Direction,
    pub media: Vec<MediaDesc>,
}

/// What was agreed for the audio stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the accepted m= line.
    pub index: usize,
    pub codec: Codec,
    pub pt: u8,
    pub dtmf_pt: Option<u8>,
    /// The remote RTP address; its IP is unspecified (0.0.0.0) for an RFC 2543 hold.
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    pub remote_rtcp_port: u16,
    pub rtcp_mux: bool,
    /// The offer's direction for the stream (what the remote does).
    pub offer_direction: Direction,
}

impl Negotiated {
    /// True when we should send media to the remote.
    pub fn we_send(&self) -> bool {
        self.offer_direction.receives() && !self.remote_ip.is_unspecified()
    }

    /// True when the remote says it sends media to us.
    pub fn remote_sends(&self) -> bool {
        self.offer_direction.sends() && !self.remote_ip.is_unspecified()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdpError {
    Bad(String),
    NoCommonCodec,
}

fn bad<T>(m: impl Into<String>) -> Result<T, SdpError> {
    Err(SdpError::Bad(m.into()))
}

fn parse_conn(v: &str) -> Result<IpAddr, SdpError> {
    // c=IN IP4 192.0.2.1 (a multicast TTL suffix "/127" is refused: unicast only)
    let mut it = v.split_ascii_whitespace();
    let (Some("IN"), Some(kind), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return bad(format!("bad c= line: {v:.60}"));
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| SdpError::Bad(format!("bad address in c=: {addr:.60}")))?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => {}
        _ => return bad(format!("address type mismatch in c=: {v:.60}")),
    }
    if ip.is_multicast() {
        return bad("multicast c= is not supported");
    }
    Ok(ip)
}

fn parse_direction(a: &str) -> Option<Direction> {
    Some(match a {
        "sendrecv" => Direction::SendRecv,
        "sendonly" => Direction::SendOnly,
        "recvonly" => Direction::RecvOnly,
        "inactive" => Direction::Inactive,
        _ => return None,
    })
}

/// Parses an SDP offer.
pub fn parse_offer(sdp: &str) -> Result<Offer, SdpError> {
    if sdp.len() > MAX_SDP {
        return bad("SDP body too large");
    }
    let mut offer = Offer {
        conn: None,
        direction: Direction::SendRecv,
        media: Vec::new(),
    };
    let mut seen_v = false;
    for (n, raw) in sdp.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let b = line.as_bytes();
        if b.len() < 2 || b[1] != b'=' {
            return bad(format!("line {} is not type=value", n + 1));
        }
        let v = &line[2..];
        if !seen_v {
            if b[0] != b'v' || v != "0" {
                return bad("SDP must start with v=0");
            }
            seen_v = true;
            continue;
        }
        match b[0] {
            b'm' => {
                if offer.media.len() >= MAX_MEDIA {
                    return bad("too many m= lines");
                }
                let mut it = v.split_ascii_whitespace();
                let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next())
                else {
                    return bad(format!("bad m= line: {v:.60}"));
                };
                // "port/count" is for layered multicast; refuse it.
                let port: u16 = port
                    .parse()
                    .map_err(|_| SdpError::Bad(format!("bad port in m=: {port:.20}")))?;
                let formats: Vec<String> = it.take(MAX_FORMATS + 1).map(str::to_string).collect();
                if formats.is_empty() || formats.len() > MAX_FORMATS {
                    return bad("m= line needs 1 to 64 formats");
                }
                offer.media.push(MediaDesc {
                    media: media.to_string(),
                    port,
                    proto: proto.to_string(),
                    formats,
                    rtpmaps: Vec::new(),
                    conn: None,
                    rtcp: None,
                    rtcp_mux: false,
                    ptime: None,
                    direction: None,
                });
            }
            b'c' => {
                let ip = parse_conn(v)?;
                match offer.media.last_mut() {
                    Some(m) => m.conn = Some(ip),
                    None => offer.conn = Some(ip),
                }
            }
            b'a' => {
                let (name, value) = match v.split_once(':') {
                    Some((n, val)) => (n, Some(val)),
                    None => (v, None),
                };
                if let Some(d) = parse_direction(name) {
                    match offer.media.last_mut() {
                        Some(m) => m.direction = Some(d),
                        None => offer.direction = d,
                    }
                    continue;
                }
                let Some(m) = offer.media.last_mut() else {
                    continue;
                };
                match (name, value) {
                    ("rtpmap", Some(val)) => {
                        let (pt, enc) = val
                            .split_once(' ')
                            .ok_or_else(|| SdpError::Bad("bad a=rtpmap".into()))?;
                        let pt: u8 = pt
                            .parse()
                            .ok()
                            .filter(|p| *p < 128)
                            .ok_or_else(|| SdpError::Bad("bad a=rtpmap payload type".into()))?;
                        let mut parts = enc.trim().split('/');
                        let name = parts.next().unwrap_or("").to_string();
                        let rate: u32 = parts
                            .next()
                            .and_then(|r| r.parse().ok())
                            .ok_or_else(|| SdpError::Bad("bad a=rtpmap clock rate".into()))?;
                        let channels: u8 = match parts.next() {
                            Some(c) => c
                                .parse()
                                .map_err(|_| SdpError::Bad("bad a=rtpmap channels".into()))?,
                            None => 1,
                        };
                        if name.is_empty() || name.len() > 32 || m.rtpmaps.len() >= MAX_FORMATS {
                            return bad("bad a=rtpmap");
                        }
                        m.rtpmaps.push(RtpMap {
                            pt,
                            name,
                            rate,
                            channels,
                        });
                    }
                    ("rtcp", Some(val)) => {
                        let mut it = val.split_ascii_whitespace();
                        let port: u16 = it
                            .next()
                            .and_then(|p| p.parse().ok())
                            .ok_or_else(|| SdpError::Bad("bad a=rtcp".into()))?;
                        let ip = match (it.next(), it.next(), it.next()) {
                            (Some(net), Some(kind), Some(addr)) => {
                                Some(parse_conn(&format!("{net} {kind} {addr}"))?)
                            }
                            (None, _, _) => None,
                            _ => return bad("bad a=rtcp address"),
                        };
                        m.rtcp = Some((port, ip));
                    }
                    ("rtcp-mux", None) => m.rtcp_mux = true,
                    ("ptime", Some(val)) => m.ptime = val.trim().parse().ok(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !seen_v {
        return bad("empty SDP");
    }
    if offer.media.is_empty() {
        return bad("no m= line");
    }
    Ok(offer)
}

/// Whether payload type `pt` of `m` is `codec`: by its rtpmap, or by its static number
/// without one. Opus must be opus/48000/2 (RFC 7587), G.711 8000 Hz mono.
fn is_codec(m: &MediaDesc, pt: u8, codec: Codec) -> bool {
    match m.rtpmaps.iter().find(|r| r.pt == pt) {
        Some(r) => match codec {
            Codec::Opus => {
                r.name.eq_ignore_ascii_case("opus") && r.rate == 48_000 && r.channels == 2
            }
            _ => r.name.eq_ignore_ascii_case(codec.name()) && r.rate == 8000 && r.channels == 1,
        },
        None => codec.static_pt() == Some(pt),
    }
}

/// Whether payload type `pt` of `m` is telephone-event at `codec`'s clock rate.
fn is_dtmf(m: &MediaDesc, pt: u8, codec: Codec) -> bool {
    m.rtpmaps.iter().any(|r| {
        r.pt == pt && r.name.eq_ignore_ascii_case("telephone-event") && r.rate == codec.clock_rate()
    })
}

/// Chooses the audio stream and codec: the first m=audio line over plain RTP (RTP/AVP or
/// RTP/AVPF) with a non-zero port that offers a codec of `prefs`, the first of `prefs` it
/// offers winning. Opus must be opus/48000/2 (RFC 7587); telephone-event must have the
/// codec's clock rate.
pub fn negotiate(offer: &Offer, prefs: &[Codec]) -> Result<Negotiated, SdpError> {
    let mut any_audio = false;
    for (index, m) in offer.media.iter().enumerate() {
        if m.media != "audio" || m.port == 0 {
            continue;
        }
        if m.proto != "RTP/AVP" && m.proto != "RTP/AVPF" {
            continue;
        }
        any_audio = true;
        let Some(remote_ip) = m.conn.or(offer.conn) else {
            return bad("no c= line for the audio stream");
        };
        let pts: Vec<u8> = m
            .formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|p| *p < 128)
            .collect();
        let mut choice = None;
        'prefs: for &codec in prefs {
            for &pt in &pts {
                if is_codec(m, pt, codec) {
                    choice = Some((codec, pt));
                    break 'prefs;
                }
            }
        }
        let Some((codec, pt)) = choice else { continue };
        let dtmf_pt = pts.iter().copied().find(|&p| is_dtmf(m, p, codec));
        let (remote_rtcp_port, rtcp_ip) = match m.rtcp {
            Some((p, ip)) => (p, ip),
            None => (m.port.wrapping_add(1), None),
        };
        if let Some(ip) = rtcp_ip {
            if ip != remote_ip && !remote_ip.is_unspecified() {
                return bad("a=rtcp names another address than c=");
            }
        }
        return Ok(Negotiated {
            index,
            codec,
            pt,
            dtmf_pt,
            remote_ip,
            remote_port: m.port,
            remote_rtcp_port,
            rtcp_mux: m.rtcp_mux,
            offer_direction: m.direction.unwrap_or(offer.direction),
        });
    }
    if any_audio || offer.media.iter().any(|m| m.media == "audio") {
        Err(SdpError::NoCommonCodec)
    } else {
        bad("no audio stream offered")
    }
}

/// Builds the answer: one m= line per offered one, all but the chosen audio stream
/// rejected (port 0, the offer's formats), the direction mirroring the offer's.
pub fn build_answer(
    offer: &Offer,
    neg: &Negotiated,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> String {
    let net = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "v=0\r\no=confab {session_id} {version} IN {net} {local_ip}\r\ns=confab\r\nc=IN {net} {local_ip}\r\nt=0 0\r\n"
    );
    for (i, m) in offer.media.iter().enumerate() {
        if i != neg.index {
            let _ = write!(s, "m={} 0 {} {}\r\n", m.media, m.proto, m.formats.join(" "));
            continue;
        }
        let _ = write!(s, "m=audio {local_port} {} {}", m.proto, neg.pt);
        if let Some(d) = neg.dtmf_pt {
            let _ = write!(s, " {d}");
        }
        s.push_str("\r\n");
        match neg.codec {
            Codec::Opus => {
                let _ = write!(s, "a=rtpmap:{} opus/48000/2\r\na=fmtp:{} useinbandfec=0;stereo=0;sprop-stereo=0\r\n", neg.pt, neg.pt);
            }
            c => {
                let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", neg.pt, c.name());
            }
        }
        if let Some(d) = neg.dtmf_pt {
            let _ = write!(
                s,
                "a=rtpmap:{d} telephone-event/{}\r\na=fmtp:{d} 0-15\r\n",
                neg.codec.clock_rate()
            );
        }
        s.push_str("a=ptime:20\r\n");
        if neg.rtcp_mux {
            s.push_str("a=rtcp-mux\r\n");
        } else {
            let _ = write!(s, "a=rtcp:{}\r\n", local_port as u32 + 1);
        }
        let _ = write!(s, "a={}\r\n", neg.offer_direction.answer().attr());
    }
    s
}

/// The payload type we offer for a codec (Opus: 111; G.711: its static number).
pub fn offered_pt(codec: Codec) -> u8 {
    codec.static_pt().unwrap_or(111)
}

/// The telephone-event payload type we offer at a clock rate (8 kHz: 101, 48 kHz: 110).
pub fn offered_dtmf_pt(codec: Codec) -> u8 {
    if codec.clock_rate() == 8000 {
        101
    } else {
        110
    }
}

/// Our offer for a dial-out leg: one audio stream at `ip`:`port` (RTCP on port + 1) with
/// `codecs` in our preference order and telephone-event for each clock rate among them
/// ([`offered_pt`], [`offered_dtmf_pt`]), 20 ms, sendrecv.
pub fn build_offer(
    ip: IpAddr,
    port: u16,
    codecs: &[Codec],
    session_id: u64,
    version: u64,
) -> String {
    let net = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "v=0\r\no=confab {session_id} {version} IN {net} {ip}\r\ns=confab\r\nc=IN {net} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP"
    );
    let mut rates: Vec<Codec> = Vec::with_capacity(2);
    for &c in codecs {
        let _ = write!(s, " {}", offered_pt(c));
        if !rates.iter().any(|r| r.clock_rate() == c.clock_rate()) {
            rates.push(c);
        }
    }
    for &c in &rates {
        let _ = write!(s, " {}", offered_dtmf_pt(c));
    }
    s.push_str("\r\n");
    for &c in codecs {
        match c {
            Codec::Opus => {
                let pt = offered_pt(c);
                let _ = write!(
                    s,
                    "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=0;stereo=0;sprop-stereo=0\r\n"
                );
            }
            _ => {
                let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", offered_pt(c), c.name());
            }
        }
    }
    for &c in &rates {
        let d = offered_dtmf_pt(c);
        let _ = write!(
            s,
            "a=rtpmap:{d} telephone-event/{}\r\na=fmtp:{d} 0-15\r\n",
            c.clock_rate()
        );
    }
    let _ = write!(
        s,
        "a=ptime:20\r\na=rtcp:{}\r\na=sendrecv\r\n",
        port as u32 + 1
    );
    s
}

/// Reads the answer to [`build_offer`]'s offer of `offered`: one m= line (ours), an audio
/// stream over plain RTP that was not refused (port 0), a unicast address, and ONE of the
/// offered codecs — the answer's first one that we offered — with the payload type we
/// gave it (we receive what we offered: a renumbered codec or telephone-event would be
/// sent to us with a number we do not know, so it is refused), and telephone-event at its
/// clock rate if the answer has it. `offer_direction` in the result is the answer's
/// direction (what the remote does).
pub fn negotiate_answer(answer: &Offer, offered: &[Codec]) -> Result<Negotiated, SdpError> {
    if answer.media.len() != 1 {
        return bad(format!(
            "the answer has {} m= lines for our one",
            answer.media.len()
        ));
    }
    let m = &answer.media[0];
    if m.media != "audio" {
        return bad(format!("the answer's stream is {:.20}, not audio", m.media));
    }
    if m.proto != "RTP/AVP" && m.proto != "RTP/AVPF" {
        return bad(format!("the answer's transport is {:.20}", m.proto));
    }
    if m.port == 0 {
        // The answerer refused the stream.
        return Err(SdpError::NoCommonCodec);
    }
    let Some(remote_ip) = m.conn.or(answer.conn) else {
        return bad("no c= line for the audio stream");
    };
    let pts: Vec<u8> = m
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|p| *p < 128)
        .collect();
    let mut choice = None;
    'pts: for &pt in &pts {
        for &codec in offered {
            if is_codec(m, pt, codec) {
                choice = Some((codec, pt));
                break 'pts;
            }
        }
    }
    let Some((codec, pt)) = choice else {
        return Err(SdpError::NoCommonCodec);
    };
    if pt != offered_pt(codec) {
        return bad(format!(
            "the answer renumbers {} ({pt}, offered {})",
            codec.name(),
            offered_pt(codec)
        ));
    }
    let dtmf_pt = pts.iter().copied().find(|&p| is_dtmf(m, p, codec));
    if let Some(d) = dtmf_pt {
        if d != offered_dtmf_pt(codec) {
            return bad(format!(
                "the answer renumbers telephone-event ({d}, offered {})",
                offered_dtmf_pt(codec)
            ));
        }
    }
    let (remote_rtcp_port, rtcp_ip) = match m.rtcp {
        Some((p, ip)) => (p, ip),
        None => (m.port.wrapping_add(1), None),
    };
    if let Some(ip) = rtcp_ip {
        if ip != remote_ip && !remote_ip.is_unspecified() {
            return bad("a=rtcp names another address than c=");
        }
    }
    Ok(Negotiated {
        index: 0,
        codec,
        pt,
        dtmf_pt,
        remote_ip,
        remote_port: m.port,
        remote_rtcp_port,
        // We did not offer rtcp-mux.
        rtcp_mux: false,
        offer_direction: m.direction.unwrap_or(answer.direction),
    })
}

/// A plain offer for an audio stream (test clients and benchmarks): Opus as PT 111,
/// telephone-event as PT 101 (8 kHz) or 110 (48 kHz).
pub fn sdp_offer(ip: IpAddr, port: u16, codecs: &[Codec]) -> String {
    let net = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut fmts = String::new();
    let mut attrs = String::new();
    for c in codecs {
        match c {
            Codec::Opus => {
                fmts.push_str(" 111");
                attrs.push_str("a=rtpmap:111 opus/48000/2\r\n");
            }
            c => {
                let _ = write!(fmts, " {}", c.static_pt().unwrap_or(0));
                let _ = write!(
                    attrs,
                    "a=rtpmap:{} {}/8000\r\n",
                    c.static_pt().unwrap_or(0),
                    c.name()
                );
            }
        }
    }
    if codecs.iter().any(|c| *c != Codec::Opus) {
        fmts.push_str(" 101");
        attrs.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n");
    }
    if codecs.contains(&Codec::Opus) {
        fmts.push_str(" 110");
        attrs.push_str("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-15\r\n");
    }
    format!(
        "v=0\r\no=client 1 1 IN {net} {ip}\r\ns=-\r\nc=IN {net} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP{fmts}\r\n{attrs}a=ptime:20\r\na=sendrecv\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFS: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn opus_preferred_with_dtmf() {
        let o = parse_offer(&sdp_offer(
            ip("127.0.0.1"),
            4000,
            &[Codec::Pcmu, Codec::Opus],
        ))
        .unwrap();
        let n = negotiate(&o, &PREFS).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Opus, 111, Some(110)));
        assert_eq!(
            (n.remote_port, n.remote_rtcp_port, n.rtcp_mux),
            (4000, 4001, false)
        );
        let n = negotiate(&o, &[Codec::Pcma, Codec::Pcmu]).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
        let a = build_answer(&o, &n, ip("127.0.0.2"), 20000, 5, 1);
        assert!(a.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{a}");
        assert!(
            a.contains("a=rtcp:20001\r\n")
                && a.contains("a=sendrecv\r\n")
                && a.contains("o=confab 5 1 IN IP4 127.0.0.2")
        );
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 0\r\n";
        let n = negotiate(&parse_offer(sdp).unwrap(), &PREFS).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, None));
        let n = negotiate(&parse_offer(sdp).unwrap(), &[Codec::Opus, Codec::Pcma]).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
    }

    #[test]
    fn no_common_codec() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9 18\r\n";
        assert_eq!(
            negotiate(&parse_offer(sdp).unwrap(), &PREFS),
            Err(SdpError::NoCommonCodec)
        );
        // SRTP only: also nothing we can take.
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n";
        assert_eq!(
            negotiate(&parse_offer(sdp).unwrap(), &PREFS),
            Err(SdpError::NoCommonCodec)
        );
        // Opus must be /48000/2.
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/16000\r\n";
        assert_eq!(
            negotiate(&parse_offer(sdp).unwrap(), &PREFS),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn several_streams_and_directions() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=video 6000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                   m=audio 5000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=rtcp-mux\r\na=sendonly\r\n\
                   m=audio 5002 RTP/AVP 0\r\n";
        let o = parse_offer(sdp).unwrap();
        let n = negotiate(&o, &PREFS).unwrap();
        assert_eq!(n.index, 1);
        assert_eq!(n.remote_ip, ip("10.0.0.2"));
        assert!(n.rtcp_mux && n.remote_sends() && !n.we_send());
        let a = build_answer(&o, &n, ip("10.0.0.9"), 30000, 1, 2);
        let ms: Vec<&str> = a.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            ms,
            vec![
                "m=video 0 RTP/AVP 96",
                "m=audio 30000 RTP/AVP 0",
                "m=audio 0 RTP/AVP 0"
            ]
        );
        assert!(a.contains("a=recvonly\r\n") && a.contains("a=rtcp-mux\r\n"));
        // inactive → inactive; session-level direction applies to streams without one.
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=inactive\r\nm=audio 5000 RTP/AVP 0\r\n";
        let o = parse_offer(sdp).unwrap();
        let n = negotiate(&o, &PREFS).unwrap();
        assert!(!n.we_send() && !n.remote_sends());
        assert!(build_answer(&o, &n, ip("10.0.0.9"), 30000, 1, 2).contains("a=inactive\r\n"));
        // c=0.0.0.0 hold.
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
        let n = negotiate(&parse_offer(sdp).unwrap(), &PREFS).unwrap();
        assert!(!n.we_send() && !n.remote_sends());
    }

    #[test]
    fn rtcp_attribute_and_ipv6() {
        let sdp = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:5009 IN IP6 ::1\r\n";
        let n = negotiate(&parse_offer(sdp).unwrap(), &PREFS).unwrap();
        assert_eq!((n.remote_ip, n.remote_rtcp_port), (ip("::1"), 5009));
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:5009 IN IP4 10.6.6.6\r\n";
        assert!(matches!(
            negotiate(&parse_offer(sdp).unwrap(), &PREFS),
            Err(SdpError::Bad(_))
        ));
    }

    #[test]
    fn our_offer_and_the_answer() {
        let offer = build_offer(ip("127.0.0.1"), 26000, &PREFS, 77, 1);
        assert!(
            offer.contains("o=confab 77 1 IN IP4 127.0.0.1\r\n"),
            "{offer}"
        );
        assert!(
            offer.contains("m=audio 26000 RTP/AVP 111 0 8 110 101\r\n"),
            "{offer}"
        );
        assert!(offer.contains("a=rtcp:26001\r\n") && offer.contains("a=sendrecv\r\n"));
        // Our own offer parses, and an answerer with our preferences takes Opus.
        let o = parse_offer(&offer).unwrap();
        let n = negotiate(&o, &PREFS).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Opus, 111, Some(110)));
        // A G.711 phone answers with PCMU and 101 (and lists PCMA after it).
        let ans = build_answer(
            &o,
            &negotiate(&o, &[Codec::Pcmu]).unwrap(),
            ip("127.0.0.5"),
            4000,
            9,
            1,
        )
        .replace("RTP/AVP 0 101", "RTP/AVP 0 8 101");
        let n = negotiate_answer(&parse_offer(&ans).unwrap(), &PREFS).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
        assert_eq!(
            (n.remote_ip, n.remote_port, n.remote_rtcp_port),
            (ip("127.0.0.5"), 4000, 4001)
        );
        assert!(n.we_send() && n.remote_sends());
        // Only the codecs we offered.
        assert_eq!(
            negotiate_answer(&parse_offer(&ans).unwrap(), &[Codec::Opus]),
            Err(SdpError::NoCommonCodec)
        );
        let head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";
        let answer =
            |body: &str| negotiate_answer(&parse_offer(&format!("{head}{body}")).unwrap(), &PREFS);
        assert_eq!(
            answer("m=audio 5000 RTP/AVP 9\r\n"),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(
            answer("m=audio 0 RTP/AVP 0\r\n"),
            Err(SdpError::NoCommonCodec)
        );
        for bad_answer in [
            "m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n",
            "m=audio 5000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n",
            "m=audio 5000 RTP/SAVP 0\r\n",
            "m=video 5000 RTP/AVP 0\r\n",
            "m=audio 5000 RTP/AVP 0\r\nm=audio 5002 RTP/AVP 0\r\n",
            "m=audio 5000 RTP/AVP 0\r\na=rtcp:5001 IN IP4 10.9.9.9\r\n",
        ] {
            assert!(
                matches!(answer(bad_answer), Err(SdpError::Bad(_))),
                "{bad_answer}"
            );
        }
        let n = answer("m=audio 5000 RTP/AVP 8\r\na=recvonly\r\n").unwrap();
        assert_eq!((n.codec, n.dtmf_pt), (Codec::Pcma, None));
        assert!(n.we_send() && !n.remote_sends());
        assert!(matches!(
            negotiate_answer(
                &parse_offer("v=0\r\nm=audio 5000 RTP/AVP 0\r\n").unwrap(),
                &PREFS
            ),
            Err(SdpError::Bad(_))
        ));
    }

    /// Mutated answers: an error or a usable result, never a panic.
    #[test]
    fn mutated_answers_never_panic() {
        let o = parse_offer(&build_offer(ip("127.0.0.1"), 26000, &PREFS, 1, 1)).unwrap();
        let answer = build_answer(
            &o,
            &negotiate(&o, &PREFS).unwrap(),
            ip("127.0.0.9"),
            4000,
            2,
            1,
        );
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let (mut ok, mut err) = (0, 0);
        for _ in 0..5000 {
            let mut m = answer.clone().into_bytes();
            for _ in 0..1 + (x % 3) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % m.len();
                const ALPHABET: &[u8] = b" =:/0123456789\r\nacmopsuvx-";
                m[at] = ALPHABET[((x >> 32) % ALPHABET.len() as u64) as usize];
            }
            let m = String::from_utf8(m).unwrap();
            match parse_offer(&m).and_then(|a| negotiate_answer(&a, &PREFS)) {
                Ok(n) => {
                    assert_eq!(n.pt, offered_pt(n.codec));
                    ok += 1
                }
                Err(_) => err += 1,
            }
        }
        assert!(ok > 500 && err > 500, "{ok} {err}");
    }

    #[test]
    fn malformed() {
        for sdp in [
            "",
            "hello",
            "o=- 1 1 IN IP4 10.0.0.1\r\n",
            "v=1\r\n",
            "v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 1 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP6 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 224.0.0.1\r\nm=audio 1 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000/2 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:300 opus/48000/2\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 96\r\na=rtcp:x\r\n",
            "v=0\r\nc=IN IP4 10.0.0.1\r\n",
        ] {
            assert!(
                matches!(parse_offer(sdp), Err(SdpError::Bad(_))),
                "accepted {sdp:?}"
            );
        }
        // No c= at all.
        let o = parse_offer("v=0\r\nm=audio 5000 RTP/AVP 0\r\n").unwrap();
        assert!(matches!(negotiate(&o, &PREFS), Err(SdpError::Bad(_))));
        // Oversized.
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP / 5 + 1));
        assert!(parse_offer(&big).is_err());
        // Too many formats.
        let many = format!(
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP{}\r\n",
            " 0".repeat(65)
        );
        assert!(parse_offer(&many).is_err());
    }
}
