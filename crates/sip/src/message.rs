//! SIP messages: start line, headers, body; serialization; building responses.

use crate::header::{HeaderName, Headers};
use crate::text::Text;
use crate::values::{CSeq, NameAddr, Via};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Message,
    Subscribe,
    Notify,
    Publish,
    Info,
    Prack,
    Update,
    Refer,
    Other(Text),
}

impl Method {
    /// Method names are case-sensitive (RFC 3261 §7.1).
    pub fn parse(s: Text) -> Method {
        match s.as_str() {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "MESSAGE" => Method::Message,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "REFER" => Method::Refer,
            _ => Method::Other(s),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Refer => "REFER",
            Method::Other(t) => t.as_str(),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Method,
        uri: Text,
        version: Text,
    },
    Response {
        status: u16,
        reason: Text,
        version: Text,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Headers,
    pub body: Bytes,
}

pub const SIP_VERSION: Text = Text::from_static("SIP/2.0");

impl Message {
    pub fn request(method: Method, uri: impl Into<Text>) -> Message {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
                version: SIP_VERSION,
            },
            headers: Headers::with_capacity(12),
            body: Bytes::new(),
        }
    }

    pub fn response(status: u16, reason: impl Into<Text>) -> Message {
        Message {
            start: StartLine::Response {
                status,
                reason: reason.into(),
                version: SIP_VERSION,
            },
            headers: Headers::with_capacity(12),
            body: Bytes::new(),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            _ => None,
        }
    }

    pub fn uri(&self) -> Option<&Text> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            _ => None,
        }
    }

    pub fn set_uri(&mut self, new: Text) {
        if let StartLine::Request { uri, .. } = &mut self.start {
            *uri = new;
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&Text> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            _ => None,
        }
    }

    pub fn header(&self, name: &HeaderName) -> Option<&Text> {
        self.headers.get(name)
    }

    pub fn call_id(&self) -> Option<&Text> {
        self.headers.get(&HeaderName::CallId)
    }

    pub fn cseq(&self) -> Option<CSeq> {
        self.headers.get(&HeaderName::CSeq).and_then(CSeq::parse)
    }

    pub fn top_via(&self) -> Option<Via<'_>> {
        self.headers
            .get(&HeaderName::Via)
            .and_then(|v| Via::parse(v).ok())
    }

    pub fn from_hdr(&self) -> Option<NameAddr<'_>> {
        self.headers
            .get(&HeaderName::From)
            .and_then(|v| NameAddr::parse(v).ok())
    }

    pub fn to_hdr(&self) -> Option<NameAddr<'_>> {
        self.headers
            .get(&HeaderName::To)
            .and_then(|v| NameAddr::parse(v).ok())
    }

    /// Max-Forwards as a number; `None` when absent or unparsable.
    pub fn max_forwards(&self) -> Option<u32> {
        self.headers
            .get(&HeaderName::MaxForwards)
            .and_then(|v| v.trim().parse().ok())
    }

    /// Expires header as seconds.
    pub fn expires(&self) -> Option<u32> {
        self.headers
            .get(&HeaderName::Expires)
            .and_then(|v| parse_delta_seconds(v))
    }

    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.headers
            .set(HeaderName::ContentType, Text::from(content_type));
        self.body = body.into();
    }

    /// Wire form. Content-Length is always written from the actual body length, at the end
    /// of the headers, whatever the header list says.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.wire_len_estimate());
        self.write_to(&mut out);
        out.freeze()
    }

    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(uri.as_bytes());
                out.put_u8(b' ');
                out.put_slice(version.as_bytes());
            }
            StartLine::Response {
                status,
                reason,
                version,
            } => {
                out.put_slice(version.as_bytes());
                out.put_u8(b' ');
                let mut code = [b'0'; 3];
                code[0] += (status / 100 % 10) as u8;
                code[1] += (status / 10 % 10) as u8;
                code[2] += (status % 10) as u8;
                out.put_slice(&code);
                out.put_u8(b' ');
                out.put_slice(reason.as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        for h in self.headers.iter() {
            if h.name == HeaderName::ContentLength {
                continue;
            }
            out.put_slice(h.name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Length: ");
        let mut num = itoa_buf(self.body.len());
        out.put_slice(num.as_bytes());
        num.clear();
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&self.body);
    }

    fn wire_len_estimate(&self) -> usize {
        let heads: usize = self
            .headers
            .iter()
            .map(|h| h.name.as_str().len() + h.value.len() + 4)
            .sum();
        heads + self.body.len() + 96
    }
}

fn itoa_buf(n: usize) -> String {
    let mut s = String::with_capacity(8);
    let _ = write!(s, "{n}");
    s
}

/// delta-seconds (RFC 3261 §25.1): digits; values beyond u32 saturate.
pub fn parse_delta_seconds(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map(|n| n.min(u32::MAX as u64) as u32)
            .unwrap_or(u32::MAX),
    )
}

/// A UTC calendar time, for Date headers and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: u32,
}

impl UtcTime {
    /// From seconds since 1970 (Howard Hinnant's civil-from-days).
    pub fn from_unix(secs: i64) -> UtcTime {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z.rem_euclid(146097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// RFC 1123 form used by the SIP Date header (RFC 3261 §20.17).
    pub fn rfc1123(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize],
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to `req` (RFC 3261 §8.2.6): copies Via, From, To, Call-ID, CSeq;
/// adds `to_tag` to To when the request's To has none and the response is not a 100.
pub fn response_to(
    req: &Message,
    status: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> Message {
    let mut resp = Message::response(
        status,
        Text::from(reason.unwrap_or_else(|| reason_phrase(status))),
    );
    for h in req.headers.iter() {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                resp.headers.0.push(h.clone())
            }
            HeaderName::To => {
                let needs_tag = status > 100
                    && to_tag.is_some()
                    && NameAddr::parse(&h.value)
                        .map(|na| na.tag().is_none())
                        .unwrap_or(false);
                if needs_tag {
                    resp.headers.push(
                        HeaderName::To,
                        format!("{};tag={}", h.value, to_tag.unwrap_or_default()),
                    );
                } else {
                    resp.headers.0.push(h.clone());
                }
            }
            HeaderName::Timestamp if status == 100 => resp.headers.0.push(h.clone()),
            _ => {}
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_message;

    #[test]
    fn utc_calendar() {
        assert_eq!(
            UtcTime::from_unix(1_700_000_000).rfc1123(),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            UtcTime::from_unix(0).rfc1123(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let leap = UtcTime::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn response_copies_dialog_headers_and_tags_to() {
        let raw = b"INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b.example;branch=z9hG4bK2\r\nFrom: <sip:alice@example.test>;tag=1\r\nTo: <sip:bob@example.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let req = parse_message(Bytes::from_static(raw)).unwrap();
        let resp = response_to(&req, 486, None, Some("xyz"));
        let text = String::from_utf8(resp.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"));
        assert_eq!(resp.headers.count(&HeaderName::Via), 2);
        assert_eq!(resp.to_hdr().unwrap().tag(), Some("xyz"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let trying = response_to(&req, 100, None, Some("xyz"));
        assert_eq!(trying.to_hdr().unwrap().tag(), None);
    }
}
