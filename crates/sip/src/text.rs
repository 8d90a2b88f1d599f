//! `Text`: a cheaply clonable UTF-8 string that borrows from the receive buffer.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// UTF-8 text held in a `Bytes`, so header values and URIs are slices of the
/// datagram they came in (a reference count, no copy) and still read as `&str`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    pub const fn from_static(s: &'static str) -> Text {
        Text(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes already known to be UTF-8.
    ///
    /// # Safety
    /// `b` must be valid UTF-8.
    pub unsafe fn from_utf8_unchecked(b: Bytes) -> Text {
        Text(b)
    }

    pub fn from_bytes(b: Bytes) -> Result<Text, std::str::Utf8Error> {
        std::str::from_utf8(&b)?;
        Ok(Text(b))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor guarantees UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// A `Text` for `sub`, which must lie inside `self`; shares the buffer.
    pub fn slice_ref(&self, sub: &str) -> Text {
        if sub.is_empty() {
            return Text::default();
        }
        Text(self.0.slice_ref(sub.as_bytes()))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Bytes::from(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Byte offset of the ASCII byte `b` in `s` (memchr: faster than `str::find(char)` on the
/// short strings of header values).
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    memchr::memchr(b, s.as_bytes())
}

/// `s.split(sep)` for an ASCII separator, without the char searcher.
pub(crate) fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    s.as_bytes().split(move |&c| c == sep).map(move |part| {
        let start = part.as_ptr() as usize - s.as_ptr() as usize;
        &s[start..start + part.len()]
    })
}
