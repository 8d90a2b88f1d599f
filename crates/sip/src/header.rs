//! Header names (with RFC 3261 compact forms) and the ordered header list.

use crate::text::Text;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Known names are variants so comparisons are cheap;
        /// compact forms (`v`, `f`, `i`, …) parse to the same variant.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $($variant,)*
            Other(Text),
        }

        impl HeaderName {
            /// The canonical spelling, used when serializing.
            pub fn as_str(&self) -> &str {
                match self {
                    $(HeaderName::$variant => $canon,)*
                    HeaderName::Other(t) => t.as_str(),
                }
            }

            fn lookup(name: &str) -> Option<HeaderName> {
                $(
                    if name.eq_ignore_ascii_case($canon) { return Some(HeaderName::$variant); }
                    $( if name.eq_ignore_ascii_case($compact) { return Some(HeaderName::$variant); } )?
                )*
                None
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    Route => "Route";
    RecordRoute => "Record-Route";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Allow => "Allow";
    Accept => "Accept";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Server => "Server";
    Subject => "Subject", "s";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    SubscriptionState => "Subscription-State";
    SipETag => "SIP-ETag";
    SipIfMatch => "SIP-If-Match";
    Date => "Date";
    Timestamp => "Timestamp";
    RetryAfter => "Retry-After";
    Path => "Path";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    Warning => "Warning";
}

impl HeaderName {
    /// Parses a header name as it appears on the wire (case-insensitive, compact forms).
    pub fn parse(name: Text) -> HeaderName {
        HeaderName::lookup(&name).unwrap_or(HeaderName::Other(name))
    }

    /// Headers whose comma-separated values the parser splits into one entry each,
    /// so proxies can add and remove single values (RFC 3261 §7.3.1).
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Contact
                | HeaderName::Path
        )
    }

    /// Headers that must appear at most once in a message.
    pub fn is_single(&self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
        )
    }

    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: Text,
}

/// Headers in wire order. A `Vec` because messages have ~10 headers and order matters
/// (Via, Route, Record-Route); lookups are linear scans over a few cache lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn with_capacity(n: usize) -> Headers {
        Headers(Vec::with_capacity(n))
    }

    pub fn get(&self, name: &HeaderName) -> Option<&Text> {
        self.0
            .iter()
            .find(|h| h.name.matches(name))
            .map(|h| &h.value)
    }

    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Text> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.matches(name))
            .map(|h| &h.value)
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| h.name.matches(name)).count()
    }

    pub fn has(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| h.name.matches(name))
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<Text>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts before the first header of the same name (or first of all), as a proxy
    /// does with its Via and Record-Route.
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Text>) {
        let at = self
            .0
            .iter()
            .position(|h| h.name.matches(&name))
            .unwrap_or(0);
        self.0.insert(
            at,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Removes and returns the first value of `name`.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<Text> {
        let at = self.0.iter().position(|h| h.name.matches(name))?;
        Some(self.0.remove(at).value)
    }

    pub fn remove_all(&mut self, name: &HeaderName) {
        self.0.retain(|h| !h.name.matches(name));
    }

    /// Replaces the first value of `name`, or appends it.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Text>) {
        let value = value.into();
        match self.0.iter_mut().find(|h| h.name.matches(&name)) {
            Some(h) => h.value = value,
            None => self.0.push(Header { name, value }),
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderName::parse("v".into()), HeaderName::Via);
        assert_eq!(HeaderName::parse("CALL-id".into()), HeaderName::CallId);
        assert_eq!(HeaderName::parse("i".into()), HeaderName::CallId);
        assert_eq!(HeaderName::parse("l".into()), HeaderName::ContentLength);
        let other = HeaderName::parse("X-Custom".into());
        assert!(other.matches(&HeaderName::Other("x-custom".into())));
        assert_eq!(other.as_str(), "X-Custom");
    }

    #[test]
    fn push_front_goes_before_same_name() {
        let mut h = Headers::default();
        h.push(HeaderName::CallId, "a");
        h.push(HeaderName::Via, "one");
        h.push_front(HeaderName::Via, "zero");
        let vias: Vec<_> = h.get_all(&HeaderName::Via).map(|t| t.to_string()).collect();
        assert_eq!(vias, ["zero", "one"]);
        assert_eq!(h.remove_first(&HeaderName::Via).unwrap(), "zero");
    }
}
