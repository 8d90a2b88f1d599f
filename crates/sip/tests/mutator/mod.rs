//! The byte-level mutator shared by the parser's and the core's robustness tests
//! (included with `#[path]`: test crates cannot depend on each other).
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::Rng;

pub const MAX_LEN: usize = 256 * 1024;

pub const INTERESTING_BYTES: &[u8] = b"\r\n\t :;,=\"\\<>[]@%?&*/.\x00\x7f\xff\xc3\x80-+0123456789";

pub const TOKENS: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    "\r\n ",
    "\r\n\t",
    "\r\n\r\n",
    ";",
    ",",
    ":",
    "=",
    "\"",
    "\\",
    "\\\"",
    "<",
    ">",
    "<>",
    "[",
    "]",
    "[::1]",
    "::",
    "%",
    "%00",
    "%zz",
    "sip:",
    "sips:",
    "tel:",
    "sip:@",
    "@",
    ";lr",
    ";branch=",
    ";tag=",
    ";received=",
    ";rport",
    ";rport=",
    ";expires=",
    ";transport=tcp",
    ";maddr=",
    "?",
    "?a=b",
    "SIP/2.0",
    "SIP/2.0/UDP ",
    "SIP/",
    "Via: ",
    "v: ",
    "Content-Length: ",
    "l: 99999999999",
    "Content-Length: -1",
    "CSeq: ",
    "Call-ID: ",
    "i: ",
    "From: ",
    "To: ",
    "Contact: ",
    "Contact: *",
    "Route: ",
    "Record-Route: ",
    "Expires: ",
    "Max-Forwards: ",
    "Authorization: Digest ",
    "Proxy-Authorization: ",
    "WWW-Authenticate: ",
    "Digest ",
    "nc=",
    "nc=ffffffff",
    "qop=auth",
    "algorithm=SHA-256",
    "username=\"",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{202e}",
    "é",
    "日本語",
    "😀",
    "4294967296",
    "18446744073709551616",
    "-1",
    "0",
    "65536",
    "99999",
];

pub const INVALID_UTF8: &[&[u8]] = &[
    b"\xc3",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xff\xfe",
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
];

pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "00",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "99999",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "999999999999999999999999",
    "1e3",
    "0x10",
    "",
    " ",
];

/// Byte offsets where lines start (after each '\n'), the first line included.
pub fn line_starts(m: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        memchr_iter(b'\n', m)
            .map(|i| i + 1)
            .filter(|&i| i < m.len()),
    );
    v
}

pub fn memchr_iter(c: u8, m: &[u8]) -> impl Iterator<Item = usize> + '_ {
    m.iter()
        .enumerate()
        .filter(move |(_, &b)| b == c)
        .map(|(i, _)| i)
}

pub fn line_end(m: &[u8], start: usize) -> usize {
    m[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(m.len(), |p| start + p + 1)
}

pub fn random_utf8(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range(0x20u8..0x7f) as char,
            1 => char::from_u32(rng.gen_range(0x80..0x800)).unwrap_or('?'),
            2 => char::from_u32(rng.gen_range(0x800..0xd800)).unwrap_or('?'),
            _ => char::from_u32(rng.gen_range(0x10000..0x110000)).unwrap_or('?'),
        })
        .collect()
}

pub struct Mutator {
    rng: StdRng,
    corpus: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(rng: StdRng, corpus: Vec<Vec<u8>>) -> Mutator {
        Mutator { rng, corpus }
    }

    /// One to four stacked mutations of a random corpus message.
    pub fn next(&mut self) -> Vec<u8> {
        let base = self.corpus[self.rng.gen_range(0..self.corpus.len())].clone();
        self.mutate(base)
    }

    pub fn mutate(&mut self, mut m: Vec<u8>) -> Vec<u8> {
        let n = if self.rng.gen_bool(0.5) {
            1
        } else {
            self.rng.gen_range(2..=4)
        };
        for _ in 0..n {
            self.one(&mut m);
            m.truncate(MAX_LEN);
        }
        m
    }

    pub fn pos(&mut self, m: &[u8]) -> usize {
        self.rng.gen_range(0..=m.len())
    }

    pub fn one(&mut self, m: &mut Vec<u8>) {
        let r = &mut self.rng;
        match r.gen_range(0..18) {
            // bit flips
            0 => {
                for _ in 0..r.gen_range(1..=8) {
                    if !m.is_empty() {
                        let i = r.gen_range(0..m.len());
                        m[i] ^= 1 << r.gen_range(0..8);
                    }
                }
            }
            // insert a byte
            1 => {
                let b = if r.gen_bool(0.7) {
                    INTERESTING_BYTES[r.gen_range(0..INTERESTING_BYTES.len())]
                } else {
                    r.gen()
                };
                let at = r.gen_range(0..=m.len());
                m.insert(at, b);
            }
            // delete a range
            2 => {
                if !m.is_empty() {
                    let at = r.gen_range(0..m.len());
                    let n = r.gen_range(1..=16.min(m.len() - at));
                    m.drain(at..at + n);
                }
            }
            // truncate
            3 => {
                let at = r.gen_range(0..=m.len());
                m.truncate(at);
            }
            // duplicate a header line (maybe many times)
            4 => {
                let starts = line_starts(m);
                let s = starts[r.gen_range(0..starts.len())];
                let line = m[s..line_end(m, s)].to_vec();
                let times = if r.gen_bool(0.9) {
                    1
                } else {
                    r.gen_range(2..200)
                };
                for _ in 0..times {
                    m.splice(s..s, line.iter().copied());
                }
            }
            // CRLF surgery
            5 => {
                let crlfs: Vec<usize> = (0..m.len().saturating_sub(1))
                    .filter(|&i| m[i] == b'\r' && m[i + 1] == b'\n')
                    .collect();
                if !crlfs.is_empty() {
                    let i = crlfs[r.gen_range(0..crlfs.len())];
                    match r.gen_range(0..5) {
                        0 => drop(m.drain(i..i + 2)),
                        1 => drop(m.remove(i)),
                        2 => drop(m.remove(i + 1)),
                        3 => m.splice(i..i + 2, b"\n\r".iter().copied()).for_each(drop),
                        _ => m.splice(i + 2..i + 2, b" ".iter().copied()).for_each(drop),
                    }
                } else if !m.is_empty() {
                    let i = r.gen_range(0..m.len());
                    m.splice(i..i, b"\r\n".iter().copied());
                }
            }
            // splice with another message
            6 => {
                let other = &self.corpus[r.gen_range(0..self.corpus.len())];
                let a = r.gen_range(0..=m.len());
                let b = r.gen_range(0..=other.len());
                m.truncate(a);
                m.extend_from_slice(&other[b..]);
            }
            // random valid UTF-8
            7 => {
                let n = r.gen_range(1..32);
                let s = random_utf8(r, n);
                let at = r.gen_range(0..=m.len());
                m.splice(at..at, s.bytes());
            }
            // invalid UTF-8
            8 => {
                let seq = INVALID_UTF8[r.gen_range(0..INVALID_UTF8.len())];
                let at = r.gen_range(0..=m.len());
                m.splice(at..at, seq.iter().copied());
            }
            // a very long header value (or a long run inside one)
            9 => {
                let starts = line_starts(m);
                let s = starts[r.gen_range(0..starts.len())];
                let e = line_end(m, s);
                let at = m[s..e]
                    .iter()
                    .position(|&b| b == b':')
                    .map_or(r.gen_range(s..=e), |p| s + p + 1);
                let n = [100, 1000, 4096, 65535, 65536, 100_000][r.gen_range(0..6)];
                let fill: Vec<u8> = match r.gen_range(0..6) {
                    0 => vec![b'a'; n],
                    1 => b";x=y".iter().copied().cycle().take(n).collect(),
                    2 => b"<sip:a@b>,".iter().copied().cycle().take(n).collect(),
                    3 => b"\"\\".iter().copied().cycle().take(n).collect(),
                    4 => vec![b' '; n],
                    _ => b"\xc3\xa9".iter().copied().cycle().take(n).collect(),
                };
                m.splice(at..at, fill);
            }
            // many headers
            10 => {
                let starts = line_starts(m);
                let at = starts.get(1).copied().unwrap_or(m.len());
                let n = r.gen_range(100..3000);
                let mut block = Vec::with_capacity(n * 16);
                let kind = r.gen_range(0..4);
                for i in 0..n {
                    match kind {
                        0 => block.extend_from_slice(format!("X-H{i}: v{i}\r\n").as_bytes()),
                        1 => block.extend_from_slice(
                            format!("Via: SIP/2.0/UDP h{i}.example;branch=z9hG4bK{i}\r\n")
                                .as_bytes(),
                        ),
                        2 => block.extend_from_slice(b"Route: <sip:p.example;lr>\r\n"),
                        _ => block.extend_from_slice(b"Supported: a\r\n"),
                    }
                }
                m.splice(at..at, block);
            }
            // replace a run of digits with an edge number
            11 => {
                let digits: Vec<usize> = (0..m.len())
                    .filter(|&i| m[i].is_ascii_digit() && (i == 0 || !m[i - 1].is_ascii_digit()))
                    .collect();
                if !digits.is_empty() {
                    let s = digits[r.gen_range(0..digits.len())];
                    let e = s + m[s..].iter().take_while(|b| b.is_ascii_digit()).count();
                    let num = NUMBERS[r.gen_range(0..NUMBERS.len())];
                    m.splice(s..e, num.bytes());
                }
            }
            // insert a token
            12 => {
                let t = TOKENS[r.gen_range(0..TOKENS.len())];
                let at = r.gen_range(0..=m.len());
                m.splice(at..at, t.bytes());
            }
            // delete or swap lines
            13 => {
                let starts = line_starts(m);
                let a = starts[r.gen_range(0..starts.len())];
                let ae = line_end(m, a);
                if r.gen_bool(0.5) {
                    m.drain(a..ae);
                } else {
                    let b = starts[r.gen_range(0..starts.len())];
                    let be = line_end(m, b);
                    if ae <= b {
                        let (la, lb) = (m[a..ae].to_vec(), m[b..be].to_vec());
                        m.splice(b..be, la);
                        m.splice(a..ae, lb);
                    }
                }
            }
            // overwrite a byte
            14 => {
                if !m.is_empty() {
                    let i = r.gen_range(0..m.len());
                    m[i] = INTERESTING_BYTES[r.gen_range(0..INTERESTING_BYTES.len())];
                }
            }
            // copy a chunk elsewhere
            15 => {
                if !m.is_empty() {
                    let a = r.gen_range(0..m.len());
                    let n = r.gen_range(1..=64.min(m.len() - a));
                    let chunk = m[a..a + n].to_vec();
                    let at = r.gen_range(0..=m.len());
                    m.splice(at..at, chunk);
                }
            }
            // change the Content-Length
            16 => {
                let text = m.clone();
                let starts = line_starts(&text);
                for s in starts {
                    let e = line_end(&text, s);
                    let line = &text[s..e];
                    let lower = line.to_ascii_lowercase();
                    let colon = line.iter().position(|&b| b == b':');
                    if let Some(colon) = colon.filter(|_| {
                        lower.starts_with(b"content-length")
                            || lower.starts_with(b"l:")
                            || lower.starts_with(b"l :")
                    }) {
                        let num = NUMBERS[r.gen_range(0..NUMBERS.len())];
                        let nl = if line.ends_with(b"\r\n") {
                            2
                        } else if line.ends_with(b"\n") {
                            1
                        } else {
                            0
                        };
                        m.splice(s + colon + 1..e - nl, format!(" {num}").bytes());
                        break;
                    }
                }
            }
            // random bytes
            _ => {
                let n = r.gen_range(1..16);
                let at = self.pos(m);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
                m.splice(at..at, bytes);
            }
        }
    }
}
