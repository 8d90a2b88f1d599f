//! PIDF presence documents (RFC 3863), the presence data model (RFC 4479) and
//! RPID (RFC 4480), filtered by Lync 2013 privacy level; and watcher-info
//! documents (RFC 3858). No I/O: bytes in, documents out, text out.
//!
//! Documents are held in a tiny namespace-aware DOM ([`Element`], [`Node`]) built
//! on quick-xml. Parsing refuses DTDs (no entity expansion), documents larger than
//! [`MAX_SIZE`] bytes, documents nested deeper than [`MAX_DEPTH`] elements, input
//! that is not well-formed namespace XML, and any root other than
//! `{urn:ietf:params:xml:ns:pidf}presence`.
//!
//! - [`Presence::parse`] / [`Presence::to_xml`]: in and out.
//! - [`basic`]: a one-tuple open/closed document (registered but unpublished, offline).
//! - [`combine`]: one document from the publications of several devices.
//! - [`view`]: what a watcher at a privacy [`Level`] sees.
//! - [`is_dnd`]: whether a document says "do not disturb".
//! - [`watcherinfo`]: an `application/watcherinfo+xml` document.

use std::collections::{HashMap, HashSet};
use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// PIDF namespace (RFC 3863).
pub const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";
/// Presence data model namespace (RFC 4479): `person`, `device`, `deviceID`, `note`.
pub const NS_DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// RPID namespace (RFC 4480).
pub const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// GEOPRIV PIDF-LO namespace (RFC 4119).
pub const NS_GEOPRIV: &str = "urn:ietf:params:xml:ns:pidf:geopriv10";
/// confab's own extensions: `availability`, `location`, `calendar`,
/// `meeting-subject`, `meeting-location`.
pub const NS_EXT: &str = "urn:confab:params:xml:ns:pidf-ext";
/// Watcher-info namespace (RFC 3858).
pub const NS_WATCHERINFO: &str = "urn:ietf:params:xml:ns:watcherinfo";
/// The namespace bound to the reserved `xml` prefix.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Largest document accepted by [`Presence::parse`], in bytes.
pub const MAX_SIZE: usize = 64 * 1024;
/// Deepest element nesting accepted by [`Presence::parse`] (the root is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Most attributes (namespace declarations included) on one element. With
/// [`MAX_NAMESPACES`] it keeps every per-element check (duplicate attributes, prefix
/// lookups) bounded, so parsing is linear in the document's size.
pub const MAX_ATTRIBUTES: usize = 32;
/// Most namespace bindings in scope at once (declared on an element and its ancestors).
pub const MAX_NAMESPACES: usize = 64;

// ---------------------------------------------------------------------------
// Errors

/// Why a presence document was refused. `Display` is short ASCII, fit for a SIP
/// 400 reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidfError {
    /// Larger than [`MAX_SIZE`].
    TooLarge,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An element with more than [`MAX_ATTRIBUTES`] attributes, or more than
    /// [`MAX_NAMESPACES`] namespace bindings in scope.
    TooManyAttributes,
    /// Has a DOCTYPE declaration (DTDs and entity definitions are refused).
    Doctype,
    /// Not well-formed (namespace) XML; the detail names the problem.
    Malformed(&'static str),
    /// Well-formed, but the root is not `{urn:ietf:params:xml:ns:pidf}presence`.
    NotPidf,
}

impl fmt::Display for PidfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfError::TooLarge => f.write_str("PIDF document too large"),
            PidfError::TooDeep => f.write_str("PIDF document nested too deeply"),
            PidfError::TooManyAttributes => {
                f.write_str("PIDF element has too many attributes or namespaces")
            }
            PidfError::Doctype => f.write_str("DTD not allowed in PIDF"),
            PidfError::Malformed(what) => write!(f, "Malformed XML: {what}"),
            PidfError::NotPidf => f.write_str("Root is not PIDF presence"),
        }
    }
}

impl std::error::Error for PidfError {}

// ---------------------------------------------------------------------------
// DOM

/// An XML element with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Resolved namespace URI, `""` if none.
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Prefix as written (`None` for the default namespace).
    pub prefix: Option<String>,
    /// Attributes as written (qualified names, unescaped values), including
    /// `xmlns` / `xmlns:p` declarations.
    pub attrs: Vec<(String, String)>,
    /// Children in document order. Whitespace-only text between child elements is
    /// dropped when parsing; adjacent text (and CDATA) is merged.
    pub children: Vec<Node>,
}

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An element with no prefix, no attributes and no children. The serializer
    /// declares its namespace as the default namespace where needed.
    pub fn new(ns: &str, name: &str) -> Element {
        Element {
            ns: ns.to_string(),
            name: name.to_string(),
            prefix: None,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: add an attribute.
    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }

    /// Builder: add a child element.
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: add a text child.
    pub fn with_text(mut self, text: &str) -> Element {
        self.children.push(Node::Text(text.to_string()));
        self
    }

    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The value of the attribute written as `name` (a qualified name).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set (replace or add) the attribute written as `name`.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((name.to_string(), value.to_string())),
        }
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// All text in this element and its descendants, concatenated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        collect_text(self, &mut out);
        out
    }

    /// Serialize this element alone (no XML declaration), declaring whatever
    /// namespaces its element names need.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        write_element(self, &mut Vec::new(), 0, true, &mut out);
        out
    }

    /// Namespace declarations on this element: `(prefix, uri)`, prefix `None` for
    /// the default namespace.
    fn decls(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.attrs.iter().filter_map(|(n, v)| {
            if n == "xmlns" {
                Some((None, v.as_str()))
            } else {
                n.strip_prefix("xmlns:").map(|p| (Some(p), v.as_str()))
            }
        })
    }
}

fn collect_text(e: &Element, out: &mut String) {
    for n in &e.children {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Element(c) => collect_text(c, out),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// In-scope namespace bindings: (prefix, uri); searched from the end.
type Scope = Vec<(Option<String>, String)>;

fn lookup<'s>(scope: &'s [(Option<String>, String)], prefix: Option<&str>) -> Option<&'s str> {
    if prefix == Some("xml") {
        return Some(NS_XML);
    }
    scope
        .iter()
        .rev()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(_, u)| u.as_str())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_alphabetic() || first == '_' || !first.is_ascii()) {
        return false;
    }
    if !chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_') || !c.is_ascii()) {
        return false;
    }
    true
}

/// Split and check a qualified name.
fn split_qname(q: &str) -> Result<(Option<&str>, &str), PidfError> {
    let (prefix, local) = match q.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, q),
    };
    if !valid_name(local) || prefix.is_some_and(|p| !valid_name(p)) {
        return Err(PidfError::Malformed("bad name"));
    }
    Ok((prefix, local))
}

fn map_xml_error(e: &quick_xml::Error) -> PidfError {
    use quick_xml::errors::IllFormedError;
    use quick_xml::Error as E;
    PidfError::Malformed(match e {
        E::Syntax(_) => "syntax error",
        E::IllFormed(IllFormedError::MismatchedEndTag { .. }) => "mismatched end tag",
        E::IllFormed(IllFormedError::UnmatchedEndTag(_)) => "unmatched end tag",
        E::IllFormed(IllFormedError::MissingEndTag(_)) => "unclosed element",
        E::IllFormed(_) => "ill-formed markup",
        E::NonDecodable(_) => "not UTF-8",
        E::InvalidAttr(_) => "bad attribute",
        E::EscapeError(_) => "bad entity or character reference",
        E::UnknownPrefix(_) => "undeclared prefix",
        _ => "parse error",
    })
}

/// Build an element from a start tag, resolving namespaces against `scope`; the
/// element's own declarations are pushed onto `scope` (the caller pops them).
fn start_element(start: &BytesStart, scope: &mut Scope) -> Result<(Element, usize), PidfError> {
    let qname = std::str::from_utf8(start.name().into_inner())
        .map_err(|_| PidfError::Malformed("not UTF-8"))?
        .to_string();
    let mut attrs = Vec::new();
    for a in start.attributes().with_checks(true) {
        // before the next one is read: each is checked against all before it
        if attrs.len() == MAX_ATTRIBUTES {
            return Err(PidfError::TooManyAttributes);
        }
        let a = a.map_err(|e| map_xml_error(&quick_xml::Error::InvalidAttr(e)))?;
        let key = std::str::from_utf8(a.key.into_inner())
            .map_err(|_| PidfError::Malformed("not UTF-8"))?
            .to_string();
        let value = a
            .unescape_value()
            .map_err(|e| map_xml_error(&e))?
            .into_owned();
        split_qname(&key)?;
        attrs.push((key, value));
    }
    let mut pushed = 0;
    for (k, v) in &attrs {
        if (k == "xmlns" || k.starts_with("xmlns:")) && scope.len() >= MAX_NAMESPACES {
            scope.truncate(scope.len() - pushed);
            return Err(PidfError::TooManyAttributes);
        }
        if k == "xmlns" {
            scope.push((None, v.clone()));
            pushed += 1;
        } else if let Some(p) = k.strip_prefix("xmlns:") {
            if v.is_empty() || p == "xmlns" || (p == "xml") != (v == NS_XML) {
                return Err(PidfError::Malformed("bad namespace declaration"));
            }
            scope.push((Some(p.to_string()), v.clone()));
            pushed += 1;
        }
    }
    for (k, _) in &attrs {
        if let (Some(p), _) = split_qname(k)? {
            if p != "xmlns" && lookup(scope, Some(p)).is_none() {
                return Err(PidfError::Malformed("undeclared prefix"));
            }
        }
    }
    let (prefix, local) = split_qname(&qname)?;
    let ns = match prefix {
        Some(p) => lookup(scope, Some(p)).ok_or(PidfError::Malformed("undeclared prefix"))?,
        None => lookup(scope, None).unwrap_or(""),
    }
    .to_string();
    Ok((
        Element {
            ns,
            name: local.to_string(),
            prefix: prefix.map(str::to_string),
            attrs,
            children: Vec::new(),
        },
        pushed,
    ))
}

fn push_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(t)) = parent.children.last_mut() {
        t.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_string()));
    }
}

/// Drop whitespace-only text nodes of an element that has child elements.
fn tidy(e: &mut Element) {
    if e.children.iter().any(|n| matches!(n, Node::Element(_))) {
        e.children.retain(|n| match n {
            Node::Text(t) => !t.trim().is_empty(),
            Node::Element(_) => true,
        });
    }
}

/// Parse any namespace-well-formed XML document (within the size, depth and DTD
/// limits) into its root element.
pub fn parse_element(xml: &[u8]) -> Result<Element, PidfError> {
    if xml.len() > MAX_SIZE {
        return Err(PidfError::TooLarge);
    }
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let text = std::str::from_utf8(xml).map_err(|_| PidfError::Malformed("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    {
        let c = reader.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.allow_unmatched_ends = false;
        c.expand_empty_elements = false;
        c.trim_text_start = false;
        c.trim_text_end = false;
    }
    let mut scope: Scope = Vec::new();
    // (element being built, number of scope entries it pushed)
    let mut stack: Vec<(Element, usize)> = Vec::new();
    let mut root: Option<Element> = None;
    let mut seen_element = false;
    loop {
        let ev = reader.read_event().map_err(|e| map_xml_error(&e))?;
        match ev {
            Event::DocType(_) => return Err(PidfError::Doctype),
            Event::Start(s) => {
                if stack.is_empty() && seen_element {
                    return Err(PidfError::Malformed("more than one root element"));
                }
                seen_element = true;
                if stack.len() >= MAX_DEPTH {
                    return Err(PidfError::TooDeep);
                }
                let (el, pushed) = start_element(&s, &mut scope)?;
                stack.push((el, pushed));
            }
            Event::Empty(s) => {
                if stack.is_empty() && seen_element {
                    return Err(PidfError::Malformed("more than one root element"));
                }
                seen_element = true;
                if stack.len() >= MAX_DEPTH {
                    return Err(PidfError::TooDeep);
                }
                let (el, pushed) = start_element(&s, &mut scope)?;
                scope.truncate(scope.len() - pushed);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let (mut el, pushed) = stack
                    .pop()
                    .ok_or(PidfError::Malformed("unmatched end tag"))?;
                scope.truncate(scope.len() - pushed);
                tidy(&mut el);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| map_xml_error(&e))?;
                match stack.last_mut() {
                    Some((parent, _)) => push_text(parent, &s),
                    None if s.trim().is_empty() => {}
                    None => return Err(PidfError::Malformed("text outside root element")),
                }
            }
            Event::CData(c) => {
                let bytes = c.into_inner();
                let s =
                    std::str::from_utf8(&bytes).map_err(|_| PidfError::Malformed("not UTF-8"))?;
                match stack.last_mut() {
                    Some((parent, _)) => push_text(parent, s),
                    None => return Err(PidfError::Malformed("text outside root element")),
                }
            }
            Event::Decl(_) => {
                if seen_element {
                    return Err(PidfError::Malformed("misplaced XML declaration"));
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(PidfError::Malformed("unclosed element"));
    }
    root.ok_or(PidfError::Malformed("no root element"))
}

// ---------------------------------------------------------------------------
// Serialization

/// Appends `s` escaped for XML text (or, with `attr`, for a quoted attribute value).
pub fn escape_into(s: &str, attr: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Write `e` at `depth`. `scope` holds the namespace bindings in force. When
/// `pretty`, child elements go on their own indented lines unless the element
/// has mixed content (text beside elements), which is written as it is.
fn write_element(e: &Element, scope: &mut Scope, depth: usize, pretty: bool, out: &mut String) {
    let mark = scope.len();
    for (p, u) in e.decls() {
        scope.push((p.map(str::to_string), u.to_string()));
    }
    let qname = match &e.prefix {
        Some(p) => format!("{p}:{}", e.name),
        None => e.name.clone(),
    };
    out.push('<');
    out.push_str(&qname);
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(v, true, out);
        out.push('"');
    }
    // Make sure the element's own name is bound to its namespace.
    let bound = lookup(scope, e.prefix.as_deref()).unwrap_or("");
    if bound != e.ns && e.prefix.as_deref() != Some("xml") {
        let (k, p) = match &e.prefix {
            Some(p) => (format!("xmlns:{p}"), Some(p.clone())),
            None => ("xmlns".to_string(), None),
        };
        out.push(' ');
        out.push_str(&k);
        out.push_str("=\"");
        escape_into(&e.ns, true, out);
        out.push('"');
        scope.push((p, e.ns.clone()));
    }
    if e.children.is_empty() {
        out.push_str("/>");
        scope.truncate(mark);
        return;
    }
    out.push('>');
    let has_elements = e.children.iter().any(|n| matches!(n, Node::Element(_)));
    let mixed = has_elements && e.children.iter().any(|n| matches!(n, Node::Text(_)));
    let block = pretty && has_elements && !mixed;
    for n in &e.children {
        match n {
            Node::Element(c) => {
                if block {
                    out.push('\n');
                    indent(depth + 1, out);
                }
                write_element(c, scope, depth + 1, block, out);
            }
            Node::Text(t) => escape_into(t, false, out),
        }
    }
    if block {
        out.push('\n');
        indent(depth, out);
    }
    out.push_str("</");
    out.push_str(&qname);
    out.push('>');
    scope.truncate(mark);
}

// ---------------------------------------------------------------------------
// Namespace carrying, for elements moved between documents

/// Prefixes used by names in `e`'s subtree (element and attribute names, and
/// the prefix of `xsi:type` style QName values) that the subtree does not declare
/// itself. `None` stands for the default namespace (used by an unprefixed
/// element name).
fn free_prefixes(e: &Element, declared: &mut Vec<Option<String>>, out: &mut Vec<Option<String>>) {
    let mark = declared.len();
    for (p, _) in e.decls() {
        declared.push(p.map(str::to_string));
    }
    let note = |p: Option<&str>, declared: &Vec<Option<String>>, out: &mut Vec<Option<String>>| {
        if matches!(p, Some("xml") | Some("xmlns")) {
            return;
        }
        let p = p.map(str::to_string);
        if !declared.contains(&p) && !out.contains(&p) {
            out.push(p);
        }
    };
    note(e.prefix.as_deref(), declared, out);
    for (k, v) in &e.attrs {
        if let Some((p, local)) = k.split_once(':') {
            note(Some(p), declared, out);
            if local == "type" {
                if let Some((vp, _)) = v.trim().split_once(':') {
                    note(Some(vp), declared, out);
                }
            }
        }
    }
    for c in e.elements() {
        free_prefixes(c, declared, out);
    }
    declared.truncate(mark);
}

/// Prepare `e`, a child of an element whose in-scope bindings are `src`, to be
/// placed under an element whose in-scope bindings are `dst`: declare on `e`
/// every binding its subtree needs that `dst` lacks or binds differently.
fn carry_namespaces(e: &mut Element, src: &Scope, dst: &Scope) {
    let mut free = Vec::new();
    free_prefixes(e, &mut Vec::new(), &mut free);
    for p in free {
        let want = match lookup(src, p.as_deref()) {
            Some(u) => u.to_string(),
            None if p.is_none() => String::new(),
            None => continue,
        };
        let have = lookup(dst, p.as_deref()).unwrap_or("");
        if have != want {
            let key = match &p {
                Some(p) => format!("xmlns:{p}"),
                None => "xmlns".to_string(),
            };
            e.attrs.insert(0, (key, want));
        }
    }
}

fn scope_of(root: &Element) -> Scope {
    root.decls()
        .map(|(p, u)| (p.map(str::to_string), u.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Presence

/// A parsed PIDF presence document: the root is always
/// `{urn:ietf:params:xml:ns:pidf}presence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    root: Element,
}

impl Presence {
    /// Parse a PIDF document, refusing DTDs, documents over [`MAX_SIZE`] bytes or
    /// [`MAX_DEPTH`] levels, malformed XML and non-PIDF roots.
    pub fn parse(xml: &[u8]) -> Result<Presence, PidfError> {
        Presence::from_root(parse_element(xml)?)
    }

    /// Wrap a root element; it must be `{urn:ietf:params:xml:ns:pidf}presence`.
    pub fn from_root(root: Element) -> Result<Presence, PidfError> {
        if root.is(NS_PIDF, "presence") {
            Ok(Presence { root })
        } else {
            Err(PidfError::NotPidf)
        }
    }

    /// The `entity` attribute of the root (the presentity URI), `""` if absent.
    pub fn entity(&self) -> &str {
        self.root.attr("entity").unwrap_or("")
    }

    /// The root `presence` element.
    pub fn root(&self) -> &Element {
        &self.root
    }

    /// The `tuple` children of the root, in order.
    pub fn tuples(&self) -> impl Iterator<Item = &Element> {
        self.root.elements().filter(|e| e.is(NS_PIDF, "tuple"))
    }

    /// The `basic` status of the first tuple that has one (`"open"`/`"closed"`).
    pub fn first_basic(&self) -> Option<String> {
        self.tuples()
            .filter_map(|t| t.child(NS_PIDF, "status")?.child(NS_PIDF, "basic"))
            .map(|b| b.text().trim().to_string())
            .next()
    }

    /// The document as UTF-8 XML text with an XML declaration.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        write_element(&self.root, &mut Vec::new(), 0, true, &mut out);
        out.push('\n');
        out
    }
}

fn presence_root(entity: &str) -> Element {
    Element::new(NS_PIDF, "presence")
        .with_attr("xmlns", NS_PIDF)
        .with_attr("entity", entity)
}

/// A document with one tuple, id `confab`, whose `status/basic` is `open` or
/// `closed`: "registered but never published" (open) and "offline" (closed).
pub fn basic(entity: &str, open: bool) -> Presence {
    let tuple = Element::new(NS_PIDF, "tuple")
        .with_attr("id", "confab")
        .with_child(Element::new(NS_PIDF, "status").with_child(
            Element::new(NS_PIDF, "basic").with_text(if open { "open" } else { "closed" }),
        ));
    Presence {
        root: presence_root(entity).with_child(tuple),
    }
}

/// One document for a presentity that publishes from several devices. `docs`
/// come oldest first. The result has root `presence entity=...` and, in this
/// order: all tuples of all docs (in order; a tuple whose id repeats an earlier
/// one replaces it in place), the root `note`s of all docs (deduplicated by
/// text), the `dm:person` elements of the LAST doc that has any, the
/// `dm:device` elements of all docs (a repeated id replaces the earlier one), and
/// every other root child of every doc. Namespace declarations of the documents'
/// roots are merged onto the new root where they do not conflict; moved elements
/// carry whatever else they need.
pub fn combine(entity: &str, docs: &[&Presence]) -> Presence {
    let mut root = presence_root(entity);
    for d in docs {
        for (p, u) in d.root.decls() {
            let Some(p) = p else { continue };
            let key = format!("xmlns:{p}");
            if root.attr(&key).is_none() {
                root.attrs.push((key, u.to_string()));
            }
        }
    }
    let dst = scope_of(&root);

    // Lists with an index by id (or note text), so combining is linear in the documents.
    type Indexed = (Vec<Element>, HashMap<String, usize>);
    let mut tuples: Indexed = Default::default();
    let mut notes: Vec<Element> = Vec::new();
    let mut note_texts: HashSet<String> = HashSet::new();
    let mut devices: Indexed = Default::default();
    let mut others: Vec<Element> = Vec::new();
    let mut persons: Vec<Element> = Vec::new();

    fn put_by_id((list, index): &mut Indexed, e: Element) {
        if let Some(id) = e.attr("id") {
            if let Some(&i) = index.get(id) {
                list[i] = e;
                return;
            }
            index.insert(id.to_string(), list.len());
        }
        list.push(e);
    }

    for d in docs {
        let src = scope_of(&d.root);
        let mut doc_persons = Vec::new();
        for c in d.root.elements() {
            let mut c = c.clone();
            carry_namespaces(&mut c, &src, &dst);
            if c.is(NS_PIDF, "tuple") {
                put_by_id(&mut tuples, c);
            } else if c.is(NS_PIDF, "note") {
                let text = c.text();
                if note_texts.insert(text.trim().to_string()) {
                    notes.push(c);
                }
            } else if c.is(NS_DM, "person") {
                doc_persons.push(c);
            } else if c.is(NS_DM, "device") {
                put_by_id(&mut devices, c);
            } else {
                others.push(c);
            }
        }
        if !doc_persons.is_empty() {
            persons = doc_persons;
        }
    }
    for e in tuples
        .0
        .into_iter()
        .chain(notes)
        .chain(persons)
        .chain(devices.0)
        .chain(others)
    {
        root.children.push(Node::Element(e));
    }
    Presence { root }
}

// ---------------------------------------------------------------------------
// Privacy levels

/// A watcher's Lync 2013 privacy relationship to the presentity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    FriendsAndFamily,
    Workgroup,
    Colleagues,
    External,
    Blocked,
}

impl Level {
    /// All levels, most trusted first.
    pub const ALL: [Level; 5] = [
        Level::FriendsAndFamily,
        Level::Workgroup,
        Level::Colleagues,
        Level::External,
        Level::Blocked,
    ];

    /// Parse a level name: "friends", "friendsandfamily", "friends-and-family",
    /// "family", "workgroup", "colleagues", "external", "externalcontacts",
    /// "blocked", "blockedcontacts"; case-insensitive, ignoring spaces, dashes
    /// and underscores.
    pub fn parse(s: &str) -> Option<Level> {
        let norm: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_' | '\t'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match norm.as_str() {
            "friends" | "friendsandfamily" | "family" => Level::FriendsAndFamily,
            "workgroup" => Level::Workgroup,
            "colleagues" => Level::Colleagues,
            "external" | "externalcontacts" => Level::External,
            "blocked" | "blockedcontacts" => Level::Blocked,
            _ => return None,
        })
    }

    /// "FriendsAndFamily", "Workgroup", "Colleagues", "External" or "Blocked".
    pub fn as_str(self) -> &'static str {
        match self {
            Level::FriendsAndFamily => "FriendsAndFamily",
            Level::Workgroup => "Workgroup",
            Level::Colleagues => "Colleagues",
            Level::External => "External",
            Level::Blocked => "Blocked",
        }
    }

    /// The Lync container id of this level: 400, 300, 200, 100, 32000.
    pub fn container_id(self) -> u32 {
        match self {
            Level::FriendsAndFamily => 400,
            Level::Workgroup => 300,
            Level::Colleagues => 200,
            Level::External => 100,
            Level::Blocked => 32000,
        }
    }

    /// The level whose Lync container id is `id`.
    pub fn from_container_id(id: u32) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.container_id() == id)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a phone tuple, from its rpid `class` (default work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneKind {
    Work,
    Mobile,
    Home,
    Other,
}

/// What a piece of presence content is, for [`view`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `status/basic`, rpid `activities`, ext `availability`, `timestamp`,
    /// a tuple `contact` that is not a phone number.
    Availability,
    /// `note`, and any content not otherwise classified.
    Note,
    /// rpid `place-type`/`place-is`, geopriv, ext `location`.
    Location,
    /// A tuple whose `contact` is a phone number.
    Phone(PhoneKind),
    /// ext `calendar`.
    Calendar,
    /// ext `meeting-subject`, `meeting-location`.
    Meeting,
}

impl Category {
    /// Whether a watcher at `level` may see this content:
    ///
    /// | content                  | F&F | Workgroup | Colleagues | External | Blocked   |
    /// |--------------------------|-----|-----------|------------|----------|-----------|
    /// | availability             | Y   | Y         | Y          | Y        | (offline) |
    /// | note                     | Y   | Y         | Y          | -        | -         |
    /// | location                 | Y   | Y         | Y          | -        | -         |
    /// | work phone               | Y   | Y         | Y          | -        | -         |
    /// | mobile phone             | Y   | Y         | -          | -        | -         |
    /// | home/other phone         | Y   | -         | -          | -        | -         |
    /// | calendar                 | Y   | Y         | Y          | -        | -         |
    /// | meeting subject/location | -   | Y         | -          | -        | -         |
    pub fn visible_to(self, level: Level) -> bool {
        use Level::*;
        match (self, level) {
            (_, Blocked) => false,
            (Category::Availability, _) => true,
            (Category::Note | Category::Location | Category::Calendar, l) => l != External,
            (Category::Phone(PhoneKind::Work), l) => l != External,
            (Category::Phone(PhoneKind::Mobile), l) => matches!(l, FriendsAndFamily | Workgroup),
            (Category::Phone(PhoneKind::Home | PhoneKind::Other), l) => l == FriendsAndFamily,
            (Category::Meeting, l) => l == Workgroup,
        }
    }
}

/// Whether a contact URI is a phone number: `tel:`, or a SIP URI with `user=phone`.
pub fn is_phone_uri(uri: &str) -> bool {
    let u = uri
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase();
    if u.starts_with("tel:") {
        return true;
    }
    if u.starts_with("sip:") || u.starts_with("sips:") {
        let before_headers = u.split('?').next().unwrap_or("");
        return before_headers
            .split(';')
            .skip(1)
            .any(|p| p.trim() == "user=phone");
    }
    false
}

/// If `tuple` is a phone tuple (its `contact` is a phone number), its kind.
pub fn phone_kind(tuple: &Element) -> Option<PhoneKind> {
    let contact = tuple.child(NS_PIDF, "contact")?;
    if !is_phone_uri(&contact.text()) {
        return None;
    }
    let class = tuple
        .child(NS_RPID, "class")
        .map(|c| c.text().trim().to_ascii_lowercase());
    Some(match class.as_deref() {
        None | Some("") | Some("work") | Some("business") => PhoneKind::Work,
        Some("mobile") | Some("cell") => PhoneKind::Mobile,
        Some("home") => PhoneKind::Home,
        Some(_) => PhoneKind::Other,
    })
}

/// How an element is treated by [`view`].
enum Rule {
    /// A structural container: kept, its children are filtered.
    Container,
    /// Always kept whole (`dm:deviceID`: required by the data model).
    Keep,
    /// Content of this category.
    Content(Category),
    /// Not classified on its own: takes its parent's category (or note).
    Inherit,
}

fn rule(e: &Element, parent: (&str, &str)) -> Rule {
    let in_tuple = parent == (NS_PIDF, "tuple");
    match (e.ns.as_str(), e.name.as_str()) {
        (NS_PIDF, "tuple") | (NS_PIDF, "status") | (NS_DM, "person") | (NS_DM, "device") => {
            let ok = match e.name.as_str() {
                "status" => parent == (NS_PIDF, "tuple"),
                _ => parent == (NS_PIDF, "presence"),
            };
            if ok {
                Rule::Container
            } else {
                Rule::Inherit
            }
        }
        (NS_DM, "deviceID") => Rule::Keep,
        (NS_PIDF, "basic") => Rule::Content(Category::Availability),
        (NS_PIDF, "timestamp") | (NS_DM, "timestamp") => Rule::Content(Category::Availability),
        (NS_PIDF, "contact") if in_tuple => Rule::Content(Category::Availability),
        (NS_PIDF, "note") | (NS_DM, "note") => Rule::Content(Category::Note),
        (NS_RPID, "activities") => Rule::Content(Category::Availability),
        (NS_RPID, "place-type") | (NS_RPID, "place-is") => Rule::Content(Category::Location),
        (NS_GEOPRIV, _) => Rule::Content(Category::Location),
        (NS_EXT, "availability") => Rule::Content(Category::Availability),
        (NS_EXT, "location") => Rule::Content(Category::Location),
        (NS_EXT, "calendar") => Rule::Content(Category::Calendar),
        (NS_EXT, "meeting-subject") | (NS_EXT, "meeting-location") => {
            Rule::Content(Category::Meeting)
        }
        _ => Rule::Inherit,
    }
}

/// Filter `e`'s children in place. `inherited` is the category of the nearest
/// classified ancestor (None under structural containers).
fn filter_children(e: &mut Element, inherited: Option<Category>, level: Level) {
    let children = std::mem::take(&mut e.children);
    for n in children {
        match n {
            Node::Text(t) => {
                // Text directly inside a structural container is formatting or
                // unclassified content; inside content it belongs to it.
                if inherited.map_or(Category::Note, |c| c).visible_to(level) {
                    e.children.push(Node::Text(t));
                }
            }
            Node::Element(mut c) => {
                if keep_element(&mut c, (&e.ns, &e.name), inherited, level) {
                    e.children.push(Node::Element(c));
                }
            }
        }
    }
}

/// Decide whether to keep `c` (filtering its subtree in place).
fn keep_element(
    c: &mut Element,
    parent: (&str, &str),
    inherited: Option<Category>,
    level: Level,
) -> bool {
    match rule(c, parent) {
        Rule::Keep => true,
        Rule::Container => {
            if c.is(NS_PIDF, "tuple") {
                if let Some(kind) = phone_kind(c) {
                    if !Category::Phone(kind).visible_to(level) {
                        return false;
                    }
                }
            }
            filter_children(c, None, level);
            true
        }
        Rule::Content(cat) => {
            if !cat.visible_to(level) {
                return false;
            }
            filter_children(c, Some(cat), level);
            true
        }
        Rule::Inherit => {
            let cat = inherited.unwrap_or(Category::Note);
            if !cat.visible_to(level) {
                return false;
            }
            filter_children(c, Some(cat), level);
            true
        }
    }
}

/// What a watcher at `level` sees of `doc`. Content is classified (see
/// [`Category`]) and kept per this table:
///
/// | content                  | F&F | Workgroup | Colleagues | External | Blocked   |
/// |--------------------------|-----|-----------|------------|----------|-----------|
/// | availability             | Y   | Y         | Y          | Y        | (offline) |
/// | note                     | Y   | Y         | Y          | -        | -         |
/// | location                 | Y   | Y         | Y          | -        | -         |
/// | work phone               | Y   | Y         | Y          | -        | -         |
/// | mobile phone             | Y   | Y         | -          | -        | -         |
/// | home/other phone         | Y   | -         | -          | -        | -         |
/// | calendar                 | Y   | Y         | Y          | -        | -         |
/// | meeting subject/location | -   | Y         | -          | -        | -         |
///
/// Availability is `status/basic`, rpid `activities`, confab-ext `availability`,
/// `timestamp`, and a tuple `contact` that is not a phone number. A tuple whose
/// contact is a `tel:` URI (or a SIP URI with `user=phone`) is a phone tuple,
/// kept or dropped whole; its kind is its rpid `class` (work, mobile, home,
/// other; default work). Unclassified content is treated as a note. Tuples keep
/// their `status`, persons and devices their `id` (and `deviceID`), so the result
/// is valid PIDF. Blocked watchers get [`basic`]`(entity, false)`.
pub fn view(doc: &Presence, level: Level) -> Presence {
    if level == Level::Blocked {
        return basic(doc.entity(), false);
    }
    let mut root = doc.root.clone();
    filter_children(&mut root, None, level);
    Presence { root }
}

/// Whether `doc` says "do not disturb": a confab-ext `availability` in
/// 9000..=11999, an rpid `activities` with an `other` whose text contains "do not
/// disturb" (any case), or any element named `dnd` or `do-not-disturb`.
pub fn is_dnd(doc: &Presence) -> bool {
    fn walk(e: &Element) -> bool {
        if e.name.eq_ignore_ascii_case("dnd") || e.name.eq_ignore_ascii_case("do-not-disturb") {
            return true;
        }
        if e.is(NS_EXT, "availability") {
            if let Ok(n) = e.text().trim().parse::<u32>() {
                if (9000..=11999).contains(&n) {
                    return true;
                }
            }
        }
        if e.is(NS_RPID, "activities")
            && e.elements().any(|o| {
                o.name == "other" && o.text().to_ascii_lowercase().contains("do not disturb")
            })
        {
            return true;
        }
        e.elements().any(walk)
    }
    walk(&doc.root)
}

// ---------------------------------------------------------------------------
// Watcher info (RFC 3858)

/// One watcher of a presentity, for [`watcherinfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    /// Unique id of this watcher's subscription.
    pub id: String,
    /// The watcher's URI.
    pub uri: String,
    /// `active`, `pending` or `terminated`.
    pub status: &'static str,
    /// What last happened: `subscribe`, `approved`, `deactivated`, `probation`,
    /// `rejected`, `timeout`, `giveup`, `noresource`.
    pub event: &'static str,
}

/// An `application/watcherinfo+xml` document (RFC 3858) for the presence
/// watchers of `resource`: `state="full"` or `"partial"`, one `watcher-list`.
pub fn watcherinfo(resource: &str, version: u32, full: bool, watchers: &[Watcher]) -> String {
    let mut list = Element::new(NS_WATCHERINFO, "watcher-list")
        .with_attr("resource", resource)
        .with_attr("package", "presence");
    for w in watchers {
        list.children.push(Node::Element(
            Element::new(NS_WATCHERINFO, "watcher")
                .with_attr("id", &w.id)
                .with_attr("status", w.status)
                .with_attr("event", w.event)
                .with_text(&w.uri),
        ));
    }
    let root = Element::new(NS_WATCHERINFO, "watcherinfo")
        .with_attr("xmlns", NS_WATCHERINFO)
        .with_attr("version", &version.to_string())
        .with_attr("state", if full { "full" } else { "partial" })
        .with_child(list);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_element(&root, &mut Vec::new(), 0, true, &mut out);
    out.push('\n');
    out
}
