//! The SIP parser (RFC 3261 §7, §25) and stream framing.
//!
//! Header values are slices of the input `Bytes`; only folded header lines (rare) are
//! copied. Every failure carries the status a server should answer with and a reason
//! phrase that names the problem, plus whatever of the message could be read, so a
//! 400 can still be addressed to the sender.

use crate::header::{Header, HeaderName, Headers};
use crate::message::{Message, Method, StartLine};
use crate::text::Text;
use crate::uri::{Scheme, Uri};
use crate::values::{split_list, CSeq, NameAddr, Via};
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;

#[derive(Debug)]
pub struct ParseError {
    /// 400, 416, 505 or 513.
    pub status: u16,
    pub reason: Cow<'static, str>,
    /// The message as far as it could be read (start line and headers), for answering.
    pub partial: Option<Box<Message>>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for ParseError {}

fn bad(reason: impl Into<Cow<'static, str>>) -> ParseError {
    ParseError {
        status: 400,
        reason: reason.into(),
        partial: None,
    }
}

fn skip_leading_newlines(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

/// Finds the blank line ending the header section: returns (end of headers, start of body).
fn find_header_end(b: &[u8]) -> Option<(usize, usize)> {
    // one walk over the line ends: the first CRLF CRLF, or a bare LF LF if it comes first
    // (tolerated)
    for i in memchr::memchr_iter(b'\n', b) {
        match &b[i + 1..] {
            [b'\n', ..] => return Some((i, i + 2)),
            [b'\r', b'\n', ..] if i > 0 && b[i - 1] == b'\r' => return Some((i - 1, i + 3)),
            _ => {}
        }
    }
    None
}

/// Parses one complete SIP message (a datagram, or a frame cut by [`frame`]).
/// Header fields (after splitting comma lists) one message may have; more gets 400.
pub const MAX_HEADER_FIELDS: usize = 256;

pub fn parse_message(buf: Bytes) -> Result<Message, ParseError> {
    let skip = skip_leading_newlines(&buf);
    let buf = buf.slice(skip..);
    if buf.is_empty() {
        return Err(bad("Empty message"));
    }
    let (head_end, body_start, blank_line) = match find_header_end(&buf) {
        Some((e, s)) => (e, s, true),
        None => (buf.len(), buf.len(), false),
    };
    let head = match Text::from_bytes(buf.slice(..head_end)) {
        Ok(t) => t,
        Err(_) => return Err(bad("Header section is not valid UTF-8")),
    };
    let mut lines = Lines { rest: &head };
    let first = lines.next().unwrap_or("");
    let start = parse_start_line(&head, first)?;
    let mut msg = Message {
        start,
        headers: Headers::with_capacity(16),
        body: Bytes::new(),
    };
    let mut error: Option<ParseError> = None;
    while let Some(line) = lines.next() {
        if line.starts_with([' ', '\t']) {
            // continuation lines are handled together with their header below
            if error.is_none() {
                error = Some(bad("Header continuation line without a header"));
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line.as_bytes()) else {
            if error.is_none() {
                error = Some(bad(format!(
                    "Malformed header line (no colon): {}",
                    printable_prefix(line)
                )));
            }
            continue;
        };
        let name_str = line[..colon].trim_end_matches([' ', '\t']);
        if !crate::values::is_token(name_str) {
            if error.is_none() {
                error = Some(bad(format!(
                    "Bad header name: {}",
                    printable_prefix(name_str)
                )));
            }
            continue;
        }
        let name = HeaderName::parse(head.slice_ref(name_str));
        let mut value: Cow<str> = Cow::Borrowed(trim_ws_str(&line[colon + 1..]));
        while let Some(cont) = lines.next_continuation() {
            let cont = trim_ws_str(cont);
            let mut owned = value.into_owned();
            if !cont.is_empty() {
                if !owned.is_empty() {
                    owned.push(' ');
                }
                owned.push_str(cont);
            }
            value = Cow::Owned(owned);
        }
        let value_text = match value {
            Cow::Borrowed(v) => head.slice_ref(v),
            Cow::Owned(v) => Text::from(v),
        };
        if name.is_list() {
            if value_text.trim() == "*" && name == HeaderName::Contact {
                msg.headers.0.push(Header {
                    name,
                    value: value_text,
                });
                continue;
            }
            for item in split_list(&value_text) {
                if item.is_empty() {
                    if error.is_none() {
                        error = Some(bad(format!("Empty value in {} header", name.as_str())));
                    }
                    continue;
                }
                msg.headers.0.push(Header {
                    name: name.clone(),
                    value: value_text.slice_ref(item),
                });
            }
        } else {
            msg.headers.0.push(Header {
                name,
                value: value_text,
            });
        }
        if msg.headers.0.len() > MAX_HEADER_FIELDS {
            // the rest is not read: a message this large in fields is an attack, not a client
            let mut e = bad(format!(
                "Too many header fields (more than {MAX_HEADER_FIELDS})"
            ));
            e.partial = Some(Box::new(msg));
            return Err(e);
        }
    }

    // Body framing by Content-Length (RFC 3261 §18.3).
    let available = buf.len() - body_start;
    let declared = match msg.headers.get(&HeaderName::ContentLength) {
        None => None,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if v.trim().bytes().all(|c| c.is_ascii_digit()) => Some(n),
            _ => {
                if error.is_none() {
                    error = Some(bad(format!("Bad Content-Length: {}", printable_prefix(v))));
                }
                None
            }
        },
    };
    match declared {
        Some(n) if n as usize > available || n > u32::MAX as u64 => {
            if error.is_none() {
                error = Some(bad(format!(
                    "Content-Length {n} exceeds the {available} bytes of body received"
                )));
            }
        }
        Some(n) => msg.body = buf.slice(body_start..body_start + n as usize),
        None => msg.body = buf.slice(body_start..),
    }
    if !blank_line && error.is_none() {
        error = Some(bad("Missing blank line after headers"));
    }
    if error.is_none() {
        if let Err(e) = validate(&msg) {
            error = Some(e);
        }
    }
    match error {
        None => Ok(msg),
        Some(mut e) => {
            e.partial = Some(Box::new(msg));
            Err(e)
        }
    }
}

/// The lines of a header section (LF or CRLF ended), found with memchr.
struct Lines<'a> {
    rest: &'a str,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest.as_bytes()) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The next line if it continues the current header (starts with SP or HTAB).
    fn next_continuation(&mut self) -> Option<&'a str> {
        match self.rest.as_bytes().first() {
            Some(b' ' | b'\t') => self.next(),
            _ => None,
        }
    }
}

/// [`trim_ws`] for text (cutting ASCII bytes keeps it UTF-8).
fn trim_ws_str(s: &str) -> &str {
    let t = trim_ws(s.as_bytes());
    let start = t.as_ptr() as usize - s.as_ptr() as usize;
    &s[start..start + t.len()]
}

/// Keeps error reasons short and printable (they go into a status line).
fn printable_prefix(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn parse_start_line(head: &Text, line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (ver, rest) = rest
            .split_once(' ')
            .ok_or_else(|| bad("Malformed status line"))?;
        check_version_digits(ver)?;
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("Malformed status code"));
        }
        let status: u16 = code.parse().map_err(|_| bad("Malformed status code"))?;
        if !(100..=699).contains(&status) {
            return Err(bad("Status code out of range"));
        }
        let version = head.slice_ref(&line[..4 + ver.len()]);
        return Ok(StartLine::Response {
            status,
            reason: head.slice_ref(reason),
            version,
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (single spaces)
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("Malformed request line"));
    };
    if !crate::values::is_token(method) {
        return Err(bad("Malformed method in request line"));
    }
    let v = version
        .strip_prefix("SIP/")
        .ok_or_else(|| bad("Malformed SIP version in request line"))?;
    check_version_digits(v)?;
    if uri.is_empty() {
        return Err(bad("Empty Request-URI"));
    }
    Ok(StartLine::Request {
        method: Method::parse(head.slice_ref(method)),
        uri: head.slice_ref(uri),
        version: head.slice_ref(version),
    })
}

fn check_version_digits(v: &str) -> Result<(), ParseError> {
    match v.split_once('.') {
        Some((a, b))
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(bad("Malformed SIP version")),
    }
}

/// Semantic checks every server needs before acting on a message.
fn validate(msg: &Message) -> Result<(), ParseError> {
    let h = &msg.headers;
    let (StartLine::Request { version, .. } | StartLine::Response { version, .. }) = &msg.start;
    {
        if version != "SIP/2.0" {
            return Err(ParseError {
                status: 505,
                reason: Cow::Borrowed("Version Not Supported"),
                partial: None,
            });
        }
    }
    // one pass: count the headers that must appear once, check the addresses on the way
    let mut seen = [0u8; 8];
    const ONCE: [HeaderName; 8] = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::ContentLength,
        HeaderName::ContentType,
        HeaderName::Expires,
    ];
    let mut vias = 0usize;
    // the first malformed Via, and the first malformed Contact/Route/Record-Route: reported
    // after the missing and duplicate headers, as a reader of the message would notice them
    let (mut via_error, mut route_error) = (None, None);
    for hdr in h.iter() {
        let v = &hdr.value;
        match &hdr.name {
            HeaderName::Via => {
                vias += 1;
                if let (Err(e), None) = (Via::parse(v), &via_error) {
                    via_error = Some(bad(format!("Malformed Via header: {e}")));
                }
            }
            HeaderName::Contact if v.trim() == "*" => {}
            name @ (HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute) => {
                if let (Err(e), None) = (NameAddr::parse(v), &route_error) {
                    route_error = Some(bad(format!("Malformed {} header: {e}", name.as_str())));
                }
            }
            HeaderName::Other(_) => {}
            name => {
                if let Some(i) = ONCE.iter().position(|n| n == name) {
                    seen[i] = seen[i].saturating_add(1);
                }
            }
        }
    }
    if vias == 0 {
        return Err(bad("Missing Via header"));
    }
    for (i, name) in ONCE.iter().enumerate().take(4) {
        if seen[i] == 0 {
            return Err(bad(format!("Missing {} header", name.as_str())));
        }
    }
    for (i, name) in ONCE.iter().enumerate() {
        if seen[i] > 1 {
            return Err(bad(format!("Duplicate {} header", name.as_str())));
        }
    }
    if h.get(&HeaderName::CallId)
        .is_some_and(|c| c.is_empty() || c.contains([' ', '\t']))
    {
        return Err(bad("Malformed Call-ID header"));
    }
    let cseq = CSeq::parse(h.get(&HeaderName::CSeq).expect("checked above"))
        .ok_or_else(|| bad("Malformed CSeq header"))?;
    if let Some(e) = via_error {
        return Err(e);
    }
    for name in [HeaderName::From, HeaderName::To] {
        let v = h.get(&name).expect("checked above");
        NameAddr::parse(v).map_err(|e| bad(format!("Malformed {} header: {e}", name.as_str())))?;
    }
    if let Some(e) = route_error {
        return Err(e);
    }
    if let Some(mf) = h.get(&HeaderName::MaxForwards) {
        let t = mf.trim();
        if t.is_empty()
            || t.len() > 10
            || !t.bytes().all(|c| c.is_ascii_digit())
            || t.parse::<u64>().map_or(true, |n| n > 255)
        {
            return Err(bad("Malformed Max-Forwards header"));
        }
    }
    if let Some(d) = h.get(&HeaderName::Date) {
        // SIP-date is rfc1123-date, always in GMT (RFC 3261 §20.17)
        if !d.trim_end().ends_with(" GMT") {
            return Err(bad("Malformed Date header (time zone must be GMT)"));
        }
    }
    if let Some(e) = h.get(&HeaderName::Expires) {
        if crate::message::parse_delta_seconds(e).is_none() {
            return Err(bad("Malformed Expires header"));
        }
    }
    if let StartLine::Request { method, uri, .. } = &msg.start {
        if cseq.method != *method {
            return Err(bad("CSeq method does not match the request method"));
        }
        match Uri::parse(uri) {
            Ok(u) if u.scheme == Scheme::Other => {
                return Err(ParseError {
                    status: 416,
                    reason: Cow::Borrowed("Unsupported URI Scheme"),
                    partial: None,
                })
            }
            Ok(u) if u.headers.is_some() => {
                return Err(bad("Request-URI must not contain headers"))
            }
            Ok(_) => {}
            Err(e) => return Err(bad(format!("Malformed Request-URI: {e}"))),
        }
    }
    Ok(())
}

/// Result of looking for one message at the front of a stream buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Need more bytes.
    Incomplete,
    /// Keep-alive (RFC 5626 §4.4.1): consume `len` bytes; `pong` when it was a double CRLF
    /// that must be answered with a single CRLF.
    KeepAlive { len: usize, pong: bool },
    /// A whole message of `len` bytes is at the front.
    Message { len: usize },
    /// The message would exceed the limit; the header section (`header_len` bytes) is complete
    /// when non-zero, so a 513 can be sent before closing.
    TooLarge { header_len: usize },
    /// The stream cannot be framed (e.g. a bad Content-Length); close after answering.
    Invalid {
        header_len: usize,
        reason: &'static str,
    },
}

/// Frames SIP over a stream transport by Content-Length (RFC 3261 §18.3).
pub fn frame(buf: &[u8], max_len: usize) -> Frame {
    if buf.starts_with(b"\r\n\r\n") {
        return Frame::KeepAlive { len: 4, pong: true };
    }
    if buf.starts_with(b"\r\n") {
        if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            return Frame::Incomplete;
        }
        return Frame::KeepAlive {
            len: 2,
            pong: false,
        };
    }
    if buf.starts_with(b"\n") {
        return Frame::KeepAlive {
            len: 1,
            pong: false,
        };
    }
    let Some((head_end, body_start)) = find_header_end(buf) else {
        return if buf.len() > max_len {
            Frame::TooLarge { header_len: 0 }
        } else {
            Frame::Incomplete
        };
    };
    let mut content_length: Option<usize> = None;
    for line in buf[..head_end].split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_ws(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = trim_ws(&line[colon + 1..]);
            if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
                return Frame::Invalid {
                    header_len: body_start,
                    reason: "Bad Content-Length",
                };
            }
            let n: usize = std::str::from_utf8(v).unwrap_or("0").parse().unwrap_or(0);
            if content_length.is_some_and(|c| c != n) {
                return Frame::Invalid {
                    header_len: body_start,
                    reason: "Conflicting Content-Length headers",
                };
            }
            content_length = Some(n);
        }
    }
    // RFC 3261 §18.3: Content-Length is mandatory on streams; a missing one means no body.
    let total = body_start + content_length.unwrap_or(0);
    if total > max_len {
        return Frame::TooLarge {
            header_len: body_start,
        };
    }
    if buf.len() >= total {
        Frame::Message { len: total }
    } else {
        Frame::Incomplete
    }
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/TCP p2.example.com;branch=z9hG4bKx\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
i: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Subject: folded\r\n  across lines\r\n\
m: <sip:alice@pc33.atlanta.example.com>\r\n\
c: application/sdp\r\n\
l: 4\r\n\
\r\n\
v=0\r\n";

    #[test]
    fn too_many_header_fields_is_400_with_what_was_read() {
        let mut m = String::from(
            "OPTIONS sip:x@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n",
        );
        m.push_str("From: <sip:a@example.test>;tag=1\r\nTo: <sip:x@example.test>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n");
        let ok = m.clone() + &"X-A: 1\r\n".repeat(MAX_HEADER_FIELDS - 5) + "\r\n";
        assert!(
            parse_message(Bytes::from(ok)).is_ok(),
            "the limit itself is fine"
        );
        let e = parse_message(Bytes::from(
            m + &"X-A: 1\r\n".repeat(MAX_HEADER_FIELDS) + "\r\n",
        ))
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.reason.contains("Too many header fields"), "{}", e.reason);
        let p = e.partial.expect("enough to answer");
        assert_eq!(p.call_id().unwrap(), "c");
        // a comma list counts by its items
        let list = format!(
            "OPTIONS sip:x SIP/2.0\r\nAccept: {}\r\n\r\n",
            vec!["a/b"; MAX_HEADER_FIELDS + 1].join(",")
        );
        assert!(parse_message(Bytes::from(list)).is_err());
    }

    #[test]
    fn parses_compact_folded_and_multi_value_headers() {
        let m = parse_message(Bytes::from_static(INVITE)).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.uri().unwrap(), "sip:bob@biloxi.example.com");
        assert_eq!(m.headers.count(&HeaderName::Via), 2);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(
            m.call_id().unwrap(),
            "a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(
            m.header(&HeaderName::Subject).unwrap(),
            "folded across lines"
        );
        assert_eq!(&m.body[..], b"v=0\r");
        assert_eq!(m.from_hdr().unwrap().tag(), Some("1928301774"));
    }

    #[test]
    fn round_trip_serialize_parse() {
        let m = parse_message(Bytes::from_static(INVITE)).unwrap();
        let again = parse_message(m.to_bytes()).unwrap();
        assert_eq!(m.start, again.start);
        assert_eq!(m.body, again.body);
        let names = |m: &Message| {
            m.headers
                .iter()
                .filter(|h| h.name != HeaderName::ContentLength)
                .map(|h| (h.name.clone(), h.value.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&m), names(&again));
    }

    #[test]
    fn missing_header_is_400_with_partial() {
        let raw = b"OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let e = parse_message(Bytes::from_static(raw)).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.reason, "Missing Call-ID header");
        assert!(e.partial.unwrap().is_request());
    }

    #[test]
    fn version_and_scheme_errors() {
        let raw = b"OPTIONS sip:example.test SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(
            parse_message(Bytes::from_static(raw)).unwrap_err().status,
            505
        );
        let raw = b"OPTIONS nope:example.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:example.test>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(
            parse_message(Bytes::from_static(raw)).unwrap_err().status,
            416
        );
    }

    #[test]
    fn content_length_bigger_than_body() {
        let raw = b"MESSAGE sip:b@example.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\nhi";
        let e = parse_message(Bytes::from_static(raw)).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.reason.contains("Content-Length"));
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"SIP/2.0",
            b"INVITE",
            b"\xff\xfe\r\n\r\n",
            b"A B C\r\n\r\n",
            b"SIP/2.0 999 x\r\n\r\n",
            b": \r\n\r\n",
        ] {
            assert!(parse_message(Bytes::copy_from_slice(raw)).is_err());
        }
    }

    #[test]
    fn stream_framing() {
        assert_eq!(
            frame(b"\r\n\r\n", 1000),
            Frame::KeepAlive { len: 4, pong: true }
        );
        assert_eq!(frame(b"\r\n", 1000), Frame::Incomplete);
        assert_eq!(frame(b"OPTIONS sip:x SIP/2.0\r\n", 1000), Frame::Incomplete);
        let m = b"OPTIONS sip:x SIP/2.0\r\nl: 3\r\n\r\nabcNEXT";
        assert_eq!(frame(m, 1000), Frame::Message { len: m.len() - 4 });
        assert_eq!(frame(&m[..m.len() - 6], 1000), Frame::Incomplete);
        assert_eq!(frame(m, 33), Frame::TooLarge { header_len: 31 });
        assert_eq!(
            frame(b"OPTIONS sip:x SIP/2.0\r\nVia: aaaa", 10),
            Frame::TooLarge { header_len: 0 }
        );
        assert!(matches!(
            frame(b"X sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n", 1000),
            Frame::Invalid { .. }
        ));
    }
}
