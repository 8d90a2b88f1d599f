//! PIDF parsing, combining, privacy filtering and watcher-info, on real documents.

use confab_sip::pidf::{
    basic, combine, is_dnd, parse_element, view, watcherinfo, Element, Level, Node, PidfError,
    Presence, Watcher, MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACES, MAX_SIZE, NS_DM, NS_EXT,
    NS_GEOPRIV, NS_PIDF, NS_RPID, NS_WATCHERINFO,
};

/// An RFC 4480 style document with everything the privacy table distinguishes.
const RICH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:cf="urn:confab:params:xml:ns:pidf-ext"
    entity="sip:alice@example.com">
  <tuple id="pc">
    <status>
      <basic>open</basic>
    </status>
    <cf:availability>6500</cf:availability>
    <contact priority="0.8">sip:alice@pc.example.com</contact>
    <note xml:lang="en">At my desk &amp; online</note>
    <timestamp>2026-11-25T10:00:00Z</timestamp>
  </tuple>
  <tuple id="mobile">
    <status><basic>open</basic></status>
    <rpid:class>mobile</rpid:class>
    <contact>tel:+15551230001</contact>
  </tuple>
  <tuple id="home">
    <status><basic>open</basic></status>
    <rpid:class>home</rpid:class>
    <contact>tel:+15551230002</contact>
  </tuple>
  <tuple id="work">
    <status><basic>open</basic></status>
    <rpid:class>work</rpid:class>
    <contact>tel:+15551230003</contact>
  </tuple>
  <tuple id="desk">
    <status><basic>open</basic></status>
    <contact>sip:+15551230004@example.com;user=phone</contact>
  </tuple>
  <note>Back at 3pm</note>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:busy/>
      <rpid:on-the-phone/>
    </rpid:activities>
    <rpid:place-type><rpid:office/></rpid:place-type>
    <rpid:place-is><rpid:audio><rpid:noisy/></rpid:audio></rpid:place-is>
    <rpid:mood><rpid:happy/></rpid:mood>
    <dm:note>In the Berlin office</dm:note>
    <cf:location>Berlin, 4th floor</cf:location>
    <cf:calendar state="busy" working-hours="09:00-17:00">
      <cf:free-busy>busy until 11:00</cf:free-busy>
    </cf:calendar>
    <cf:meeting-subject>Q4 budget review</cf:meeting-subject>
    <cf:meeting-location>Room 4.12</cf:meeting-location>
    <gp:geopriv>
      <gp:location-info><gp:civic>Berlin</gp:civic></gp:location-info>
    </gp:geopriv>
    <dm:timestamp>2026-11-25T10:00:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="d1">
    <dm:deviceID>urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6</dm:deviceID>
    <dm:note>Laptop</dm:note>
  </dm:device>
</presence>
"#;

fn rich() -> Presence {
    Presence::parse(RICH.as_bytes()).expect("rich document parses")
}

/// Every element `{ns}name` anywhere under `e` (including `e`).
fn find_all<'a>(e: &'a Element, ns: &str, name: &str, out: &mut Vec<&'a Element>) {
    if e.is(ns, name) {
        out.push(e);
    }
    for c in e.elements() {
        find_all(c, ns, name, out);
    }
}

fn count(doc: &Presence, ns: &str, name: &str) -> usize {
    let mut v = Vec::new();
    find_all(doc.root(), ns, name, &mut v);
    v.len()
}

fn has(doc: &Presence, ns: &str, name: &str) -> bool {
    count(doc, ns, name) > 0
}

fn tuple_ids(doc: &Presence) -> Vec<String> {
    doc.tuples()
        .map(|t| t.attr("id").unwrap_or("").to_string())
        .collect()
}

fn texts(doc: &Presence, ns: &str, name: &str) -> Vec<String> {
    let mut v = Vec::new();
    find_all(doc.root(), ns, name, &mut v);
    v.iter().map(|e| e.text().trim().to_string()).collect()
}

/// The document as a watcher gets it: serialized and parsed again.
fn seen(level: Level) -> Presence {
    let v = view(&rich(), level);
    let again = Presence::parse(v.to_xml().as_bytes()).expect("view output is valid PIDF");
    assert_eq!(again, v, "view output round-trips");
    again
}

/// Each tuple keeps its status with basic.
fn assert_tuples_valid(doc: &Presence) {
    for t in doc.tuples() {
        let status = t.child(NS_PIDF, "status").expect("tuple keeps status");
        assert!(
            status.child(NS_PIDF, "basic").is_some(),
            "status keeps basic"
        );
    }
}

#[test]
fn pidf_parse_rich_fields() {
    let d = rich();
    assert_eq!(d.entity(), "sip:alice@example.com");
    assert_eq!(tuple_ids(&d), ["pc", "mobile", "home", "work", "desk"]);
    assert_eq!(d.first_basic().as_deref(), Some("open"));
    let pc = d.tuples().next().unwrap();
    let note = pc.child(NS_PIDF, "note").unwrap();
    assert_eq!(note.text(), "At my desk & online");
    assert_eq!(note.attr("xml:lang"), Some("en"));
    assert_eq!(
        pc.child(NS_PIDF, "contact").unwrap().attr("priority"),
        Some("0.8")
    );
    let person = d.root().child(NS_DM, "person").unwrap();
    assert_eq!(person.prefix.as_deref(), Some("dm"));
    assert_eq!(person.attr("id"), Some("p1"));
    let acts = person.child(NS_RPID, "activities").unwrap();
    let names: Vec<&str> = acts.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["busy", "on-the-phone"]);
    // Whitespace between elements is not kept as text.
    assert!(acts.children.iter().all(|n| matches!(n, Node::Element(_))));
    assert!(has(&d, NS_GEOPRIV, "civic"));
    assert!(!is_dnd(&d));
}

#[test]
fn pidf_view_friends_and_family() {
    let v = seen(Level::FriendsAndFamily);
    assert_tuples_valid(&v);
    assert_eq!(v.entity(), "sip:alice@example.com");
    // availability
    assert_eq!(count(&v, NS_PIDF, "basic"), 5);
    assert!(has(&v, NS_RPID, "activities"));
    assert!(has(&v, NS_RPID, "busy"));
    assert_eq!(texts(&v, NS_EXT, "availability"), ["6500"]);
    assert_eq!(count(&v, NS_PIDF, "timestamp"), 1);
    assert_eq!(count(&v, NS_DM, "timestamp"), 1);
    // phones: all of them
    assert_eq!(tuple_ids(&v), ["pc", "mobile", "home", "work", "desk"]);
    // notes
    assert_eq!(
        texts(&v, NS_PIDF, "note"),
        ["At my desk & online", "Back at 3pm"]
    );
    assert_eq!(texts(&v, NS_DM, "note"), ["In the Berlin office", "Laptop"]);
    assert!(has(&v, NS_RPID, "mood"), "unknown content is like a note");
    // location
    assert!(has(&v, NS_RPID, "place-type"));
    assert!(has(&v, NS_RPID, "place-is"));
    assert!(has(&v, NS_GEOPRIV, "geopriv"));
    assert!(has(&v, NS_GEOPRIV, "civic"));
    assert!(has(&v, NS_EXT, "location"));
    // calendar
    assert!(has(&v, NS_EXT, "calendar"));
    assert!(has(&v, NS_EXT, "free-busy"));
    // meeting: hidden from F&F
    assert!(!has(&v, NS_EXT, "meeting-subject"));
    assert!(!has(&v, NS_EXT, "meeting-location"));
    // structure
    assert!(has(&v, NS_DM, "person"));
    assert!(has(&v, NS_DM, "deviceID"));
}

#[test]
fn pidf_view_workgroup() {
    let v = seen(Level::Workgroup);
    assert_tuples_valid(&v);
    assert_eq!(count(&v, NS_PIDF, "basic"), 4);
    assert!(has(&v, NS_RPID, "activities"));
    assert_eq!(texts(&v, NS_EXT, "availability"), ["6500"]);
    assert_eq!(count(&v, NS_PIDF, "timestamp"), 1);
    // work and mobile phones, no home phone
    assert_eq!(tuple_ids(&v), ["pc", "mobile", "work", "desk"]);
    assert_eq!(
        texts(&v, NS_PIDF, "note"),
        ["At my desk & online", "Back at 3pm"]
    );
    assert_eq!(texts(&v, NS_DM, "note"), ["In the Berlin office", "Laptop"]);
    assert!(has(&v, NS_RPID, "mood"));
    assert!(has(&v, NS_RPID, "place-type"));
    assert!(has(&v, NS_RPID, "place-is"));
    assert!(has(&v, NS_GEOPRIV, "geopriv"));
    assert!(has(&v, NS_EXT, "location"));
    assert!(has(&v, NS_EXT, "calendar"));
    // meeting: only Workgroup sees it
    assert_eq!(texts(&v, NS_EXT, "meeting-subject"), ["Q4 budget review"]);
    assert_eq!(texts(&v, NS_EXT, "meeting-location"), ["Room 4.12"]);
}

#[test]
fn pidf_view_colleagues() {
    let v = seen(Level::Colleagues);
    assert_tuples_valid(&v);
    assert_eq!(count(&v, NS_PIDF, "basic"), 3);
    assert!(has(&v, NS_RPID, "activities"));
    assert_eq!(texts(&v, NS_EXT, "availability"), ["6500"]);
    // work phones only (tel: class work, and sip user=phone with no class)
    assert_eq!(tuple_ids(&v), ["pc", "work", "desk"]);
    assert!(!texts(&v, NS_PIDF, "contact")
        .iter()
        .any(|c| c.contains("1230001")));
    assert!(!texts(&v, NS_PIDF, "contact")
        .iter()
        .any(|c| c.contains("1230002")));
    assert_eq!(
        texts(&v, NS_PIDF, "note"),
        ["At my desk & online", "Back at 3pm"]
    );
    assert_eq!(texts(&v, NS_DM, "note"), ["In the Berlin office", "Laptop"]);
    assert!(has(&v, NS_RPID, "place-type"));
    assert!(has(&v, NS_RPID, "place-is"));
    assert!(has(&v, NS_GEOPRIV, "geopriv"));
    assert!(has(&v, NS_EXT, "location"));
    assert!(has(&v, NS_EXT, "calendar"));
    assert!(!has(&v, NS_EXT, "meeting-subject"));
    assert!(!has(&v, NS_EXT, "meeting-location"));
}

#[test]
fn pidf_view_external() {
    let v = seen(Level::External);
    assert_tuples_valid(&v);
    // availability only
    assert_eq!(tuple_ids(&v), ["pc"]);
    assert_eq!(texts(&v, NS_PIDF, "basic"), ["open"]);
    assert_eq!(texts(&v, NS_EXT, "availability"), ["6500"]);
    assert!(has(&v, NS_RPID, "activities"));
    assert!(has(&v, NS_RPID, "busy"));
    assert!(has(&v, NS_RPID, "on-the-phone"));
    assert_eq!(texts(&v, NS_PIDF, "contact"), ["sip:alice@pc.example.com"]);
    assert_eq!(count(&v, NS_PIDF, "timestamp"), 1);
    // no notes of any kind, no unknown content
    assert!(!has(&v, NS_PIDF, "note"));
    assert!(!has(&v, NS_DM, "note"));
    assert!(!has(&v, NS_RPID, "mood"));
    assert!(!has(&v, NS_RPID, "class"));
    // no location
    assert!(!has(&v, NS_RPID, "place-type"));
    assert!(!has(&v, NS_RPID, "place-is"));
    assert!(!has(&v, NS_GEOPRIV, "geopriv"));
    assert!(!has(&v, NS_EXT, "location"));
    // no phones, calendar, meeting
    assert!(!v.to_xml().contains("tel:"));
    assert!(!v.to_xml().contains("user=phone"));
    assert!(!has(&v, NS_EXT, "calendar"));
    assert!(!has(&v, NS_EXT, "meeting-subject"));
    assert!(!has(&v, NS_EXT, "meeting-location"));
    // the person and device stay, valid: person with its id and activities,
    // device with its id and deviceID
    let person = v.root().child(NS_DM, "person").unwrap();
    assert_eq!(person.attr("id"), Some("p1"));
    let kids: Vec<&str> = person.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(kids, ["activities", "timestamp"]);
    let device = v.root().child(NS_DM, "device").unwrap();
    let kids: Vec<&str> = device.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(kids, ["deviceID"]);
}

#[test]
fn pidf_view_blocked_is_offline() {
    let v = seen(Level::Blocked);
    assert_eq!(v, basic("sip:alice@example.com", false));
    assert_eq!(tuple_ids(&v), ["confab"]);
    assert_eq!(texts(&v, NS_PIDF, "basic"), ["closed"]);
    assert!(!has(&v, NS_RPID, "activities"));
    assert!(!has(&v, NS_EXT, "availability"));
    assert!(!has(&v, NS_DM, "person"));
    assert!(!has(&v, NS_PIDF, "note"));
    assert!(!v.to_xml().contains("alice@pc"));
}

#[test]
fn pidf_view_status_keeps_basic_when_extensions_hidden() {
    let doc = Presence::parse(
        br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"
              xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10">
              <tuple id="t"><status><basic>closed</basic><gp:geopriv><gp:x/></gp:geopriv></status></tuple>
            </presence>"#,
    )
    .unwrap();
    let v = view(&doc, Level::External);
    let status = v.tuples().next().unwrap().child(NS_PIDF, "status").unwrap();
    let kids: Vec<&str> = status.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(kids, ["basic"]);
    assert!(has(&view(&doc, Level::Colleagues), NS_GEOPRIV, "x"));
}

#[test]
fn pidf_round_trip() {
    let d = rich();
    let xml = d.to_xml();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let again = Presence::parse(xml.as_bytes()).unwrap();
    assert_eq!(again, d);
    assert_eq!(again.to_xml(), xml);
    // Escaping survives in text and attributes.
    let odd = Presence::parse(
        "<p:presence xmlns:p='urn:ietf:params:xml:ns:pidf' entity='sip:a&amp;&quot;b@x'>\
         <p:note>1 &lt; 2 &gt; 0 &#x263A; <![CDATA[<raw> & stuff]]></p:note></p:presence>"
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(odd.entity(), "sip:a&\"b@x");
    assert_eq!(odd.root().prefix.as_deref(), Some("p"));
    let note = odd.root().child(NS_PIDF, "note").unwrap();
    assert_eq!(note.text(), "1 < 2 > 0 \u{263A} <raw> & stuff");
    assert_eq!(Presence::parse(odd.to_xml().as_bytes()).unwrap(), odd);
}

#[test]
fn pidf_basic_documents() {
    let open = basic("sip:carol@example.com", true);
    assert_eq!(open.entity(), "sip:carol@example.com");
    assert_eq!(tuple_ids(&open), ["confab"]);
    assert_eq!(open.first_basic().as_deref(), Some("open"));
    let closed = basic("sip:carol@example.com", false);
    assert_eq!(closed.first_basic().as_deref(), Some("closed"));
    let xml = open.to_xml();
    assert!(xml.contains(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@example.com">"#
    ));
    assert_eq!(Presence::parse(xml.as_bytes()).unwrap(), open);
}

const DEVICE_A: &str = r#"<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
          xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
          entity="sip:alice@example.com">
  <tuple id="laptop">
    <status><basic>open</basic></status>
    <contact>sip:alice@laptop.example.com</contact>
  </tuple>
  <tuple id="shared">
    <status><basic>closed</basic></status>
  </tuple>
  <note>Working from home</note>
  <note>Call me</note>
  <dm:person id="alice">
    <rpid:activities><rpid:away/></rpid:activities>
  </dm:person>
  <dm:device id="dev-laptop"><dm:deviceID>mac:8asd7asd7</dm:deviceID></dm:device>
</presence>"#;

// A different prefix style: PIDF itself prefixed, rpid under another prefix
// declared on the root, plus an unknown root child.
const DEVICE_B: &str = r#"<?xml version="1.0"?>
<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf"
            xmlns:d="urn:ietf:params:xml:ns:pidf:data-model"
            xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"
            xmlns:x="urn:example:unknown"
            entity="sip:alice@example.com">
  <p:tuple id="phone">
    <p:status><p:basic>open</p:basic></p:status>
    <r:class>mobile</r:class>
    <p:contact>tel:+15550001111</p:contact>
  </p:tuple>
  <p:tuple id="shared">
    <p:status><p:basic>open</p:basic></p:status>
  </p:tuple>
  <p:note>Call me</p:note>
  <d:person id="alice">
    <r:activities><r:busy/></r:activities>
    <d:note>in a call</d:note>
  </d:person>
  <d:device id="dev-phone"><d:deviceID>imei:1234</d:deviceID></d:device>
  <x:custom x:flag="1">kept</x:custom>
</p:presence>"#;

#[test]
fn pidf_combine_two_devices() {
    let a = Presence::parse(DEVICE_A.as_bytes()).unwrap();
    let b = Presence::parse(DEVICE_B.as_bytes()).unwrap();
    let c = combine("sip:alice@example.com", &[&a, &b]);
    assert_eq!(c.entity(), "sip:alice@example.com");
    // tuples from both, in order; "shared" from the later doc, in place
    assert_eq!(tuple_ids(&c), ["laptop", "shared", "phone"]);
    let shared = c.tuples().nth(1).unwrap();
    assert_eq!(
        shared
            .child(NS_PIDF, "status")
            .unwrap()
            .child(NS_PIDF, "basic")
            .unwrap()
            .text(),
        "open"
    );
    // notes deduplicated
    let notes: Vec<String> = c
        .root()
        .elements()
        .filter(|e| e.is(NS_PIDF, "note"))
        .map(|e| e.text())
        .collect();
    assert_eq!(notes, ["Working from home", "Call me"]);
    // latest person only
    assert_eq!(count(&c, NS_DM, "person"), 1);
    assert!(has(&c, NS_RPID, "busy"));
    assert!(!has(&c, NS_RPID, "away"));
    assert_eq!(texts(&c, NS_DM, "note"), ["in a call"]);
    // devices from both
    let devs: Vec<&str> = c
        .root()
        .elements()
        .filter(|e| e.is(NS_DM, "device"))
        .map(|e| e.attr("id").unwrap())
        .collect();
    assert_eq!(devs, ["dev-laptop", "dev-phone"]);
    // unknown root child kept
    let custom = c.root().child("urn:example:unknown", "custom").unwrap();
    assert_eq!(custom.text(), "kept");
    // order: tuples, notes, then the rest
    let order: Vec<&str> = c.root().elements().map(|e| e.name.as_str()).collect();
    assert_eq!(
        order,
        ["tuple", "tuple", "tuple", "note", "note", "person", "device", "device", "custom"]
    );
    // the serialized document declares everything it uses and round-trips
    let xml = c.to_xml();
    let again = Presence::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"));
    assert_eq!(again, c);
    assert!(again.tuples().any(|t| t.child(NS_RPID, "class").is_some()));
    // filtering the combination works across both prefix styles
    let col = view(&c, Level::Colleagues);
    assert_eq!(tuple_ids(&col), ["laptop", "shared"]);
    let wg = view(&c, Level::Workgroup);
    assert_eq!(tuple_ids(&wg), ["laptop", "shared", "phone"]);
    let ext = view(&c, Level::External);
    assert!(!has(&ext, "urn:example:unknown", "custom"));
    assert!(!has(&ext, NS_PIDF, "note"));
}

#[test]
fn pidf_combine_person_from_last_doc_that_has_one() {
    let a = Presence::parse(DEVICE_A.as_bytes()).unwrap();
    let no_person = basic("sip:alice@example.com", true);
    let c = combine("sip:alice@example.com", &[&a, &no_person]);
    assert!(has(&c, NS_RPID, "away"));
    assert_eq!(tuple_ids(&c), ["laptop", "shared", "confab"]);
    assert_eq!(combine("sip:x@y", &[]).tuples().count(), 0);
}

#[test]
fn pidf_combine_carries_namespaces_declared_on_moved_ancestor() {
    // The rpid prefix is declared on the root of one doc and bound to something
    // else on the root of the other: moved elements carry their own binding.
    let a = Presence::parse(
        br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:q="urn:example:a" entity="sip:a@x">
              <tuple id="1"><status><basic>open</basic></status><q:thing/></tuple></presence>"#,
    )
    .unwrap();
    let b = Presence::parse(
        br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:q="urn:example:b" entity="sip:a@x">
              <tuple id="2"><status><basic>open</basic></status><q:thing/></tuple></presence>"#,
    )
    .unwrap();
    let c = combine("sip:a@x", &[&a, &b]);
    let again = Presence::parse(c.to_xml().as_bytes()).unwrap();
    let t: Vec<&Element> = again.tuples().collect();
    assert!(t[0].child("urn:example:a", "thing").is_some());
    assert!(t[1].child("urn:example:b", "thing").is_some());
}

fn ext_doc(inner: &str) -> Presence {
    let xml = format!(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:cf="urn:confab:params:xml:ns:pidf-ext"
             xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
             entity="sip:d@example.com"><tuple id="t"><status><basic>open</basic></status></tuple>{inner}</presence>"#
    );
    Presence::parse(xml.as_bytes()).unwrap()
}

#[test]
fn pidf_is_dnd_variants() {
    assert!(!is_dnd(&basic("sip:d@example.com", true)));
    assert!(is_dnd(&ext_doc(
        "<dm:person id='p'><cf:availability>9500</cf:availability></dm:person>"
    )));
    assert!(is_dnd(&ext_doc("<cf:availability>9000</cf:availability>")));
    assert!(is_dnd(&ext_doc(
        "<cf:availability> 11999 </cf:availability>"
    )));
    assert!(!is_dnd(&ext_doc(
        "<cf:availability>12000</cf:availability>"
    )));
    assert!(!is_dnd(&ext_doc("<cf:availability>6500</cf:availability>")));
    assert!(!is_dnd(&ext_doc("<cf:availability>busy</cf:availability>")));
    assert!(is_dnd(&ext_doc(
        "<dm:person id='p'><rpid:activities><rpid:other>Urgent only: Do Not Disturb</rpid:other></rpid:activities></dm:person>"
    )));
    assert!(!is_dnd(&ext_doc(
        "<dm:person id='p'><rpid:activities><rpid:other>In a meeting</rpid:other></rpid:activities></dm:person>"
    )));
    // "do not disturb" in a note is not a DND state
    assert!(!is_dnd(&ext_doc(
        "<note>do not disturb me with email</note>"
    )));
    assert!(is_dnd(&ext_doc("<cf:dnd/>")));
    assert!(is_dnd(&ext_doc(
        "<dm:person id='p'><x:do-not-disturb xmlns:x='urn:example:x'/></dm:person>"
    )));
}

#[test]
fn pidf_levels() {
    for (s, l) in [
        ("friends", Level::FriendsAndFamily),
        ("FriendsAndFamily", Level::FriendsAndFamily),
        ("friends-and-family", Level::FriendsAndFamily),
        ("Friends and Family", Level::FriendsAndFamily),
        ("family", Level::FriendsAndFamily),
        ("WORKGROUP", Level::Workgroup),
        ("work_group", Level::Workgroup),
        ("colleagues", Level::Colleagues),
        ("external", Level::External),
        ("External Contacts", Level::External),
        ("blocked", Level::Blocked),
        ("blocked_contacts", Level::Blocked),
    ] {
        assert_eq!(Level::parse(s), Some(l), "{s}");
    }
    assert_eq!(Level::parse("public"), None);
    assert_eq!(Level::parse(""), None);
    let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
    assert_eq!(
        names,
        [
            "FriendsAndFamily",
            "Workgroup",
            "Colleagues",
            "External",
            "Blocked"
        ]
    );
    let ids: Vec<u32> = Level::ALL.iter().map(|l| l.container_id()).collect();
    assert_eq!(ids, [400, 300, 200, 100, 32000]);
    for l in Level::ALL {
        assert_eq!(Level::parse(l.as_str()), Some(l));
        assert_eq!(Level::from_container_id(l.container_id()), Some(l));
    }
}

fn err(xml: &[u8]) -> PidfError {
    Presence::parse(xml).expect_err("must be refused")
}

fn short_ascii(e: &PidfError) {
    let s = e.to_string();
    assert!(s.is_ascii() && !s.is_empty() && s.len() <= 60, "{s}");
    assert!(!s.contains('\r') && !s.contains('\n'));
}

#[test]
fn pidf_errors_not_xml() {
    for bad in [
        &b"hello"[..],
        b"",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'></tuple>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple></presence></tuple>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' a='1' a='2'/>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>&bogus;</presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><x:y/></presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/><presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>trailing",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>\xff\xfe</presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity=noquotes/>",
    ] {
        let e = err(bad);
        assert!(matches!(e, PidfError::Malformed(_)), "{:?} -> {e:?}", String::from_utf8_lossy(bad));
        short_ascii(&e);
        assert!(e.to_string().starts_with("Malformed XML"));
    }
}

#[test]
fn pidf_errors_wrong_root() {
    for bad in [
        &b"<presence entity='sip:a@b'/>"[..],
        b"<presence xmlns='urn:ietf:params:xml:ns:cpim-pidf' entity='sip:a@b'/>",
        b"<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo'/>",
        b"<p:tuple xmlns:p='urn:ietf:params:xml:ns:pidf'/>",
    ] {
        let e = err(bad);
        assert_eq!(e, PidfError::NotPidf);
        short_ascii(&e);
    }
}

#[test]
fn pidf_errors_doctype() {
    let lol = br#"<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&lol2;</note></presence>"#;
    let e = err(lol);
    assert_eq!(e, PidfError::Doctype);
    short_ascii(&e);
    assert_eq!(
        err(b"<!DOCTYPE presence><presence xmlns='urn:ietf:params:xml:ns:pidf'/>"),
        PidfError::Doctype
    );
}

#[test]
fn pidf_errors_too_large() {
    let head = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><note>";
    let tail = "</note></presence>";
    let fill = MAX_SIZE - head.len() - tail.len();
    let exact = format!("{head}{}{tail}", "x".repeat(fill));
    assert_eq!(exact.len(), MAX_SIZE);
    assert!(
        Presence::parse(exact.as_bytes()).is_ok(),
        "exactly 64 KiB is accepted"
    );
    let over = format!("{head}{}{tail}", "x".repeat(fill + 1));
    let e = err(over.as_bytes());
    assert_eq!(e, PidfError::TooLarge);
    short_ascii(&e);
}

#[test]
fn pidf_errors_too_deep() {
    let nest = |depth: usize| {
        let mut s = String::from("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>");
        for _ in 1..depth {
            s.push_str("<note>");
        }
        for _ in 1..depth {
            s.push_str("</note>");
        }
        s.push_str("</presence>");
        s
    };
    assert!(Presence::parse(nest(MAX_DEPTH).as_bytes()).is_ok());
    let e = err(nest(MAX_DEPTH + 1).as_bytes());
    assert_eq!(e, PidfError::TooDeep);
    short_ascii(&e);
    // An empty element at the limit counts too.
    let mut s = nest(MAX_DEPTH);
    s = s.replacen("</note>", "<note/></note>", 1);
    assert_eq!(err(s.as_bytes()), PidfError::TooDeep);
}

#[test]
fn pidf_watcherinfo_document() {
    let watchers = [
        Watcher {
            id: "w1".into(),
            uri: "sip:bob@example.com".into(),
            status: "active",
            event: "approved",
        },
        Watcher {
            id: "w2".into(),
            uri: "sip:eve@example.com;x=<&>".into(),
            status: "pending",
            event: "subscribe",
        },
    ];
    let xml = watcherinfo("sip:alice@example.com", 7, true, &watchers);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let root = parse_element(xml.as_bytes()).unwrap();
    assert!(root.is(NS_WATCHERINFO, "watcherinfo"));
    assert_eq!(root.attr("version"), Some("7"));
    assert_eq!(root.attr("state"), Some("full"));
    let lists: Vec<&Element> = root.elements().collect();
    assert_eq!(lists.len(), 1);
    let list = lists[0];
    assert!(list.is(NS_WATCHERINFO, "watcher-list"));
    assert_eq!(list.attr("resource"), Some("sip:alice@example.com"));
    assert_eq!(list.attr("package"), Some("presence"));
    let ws: Vec<&Element> = list.elements().collect();
    assert_eq!(ws.len(), 2);
    assert!(ws.iter().all(|w| w.is(NS_WATCHERINFO, "watcher")));
    assert_eq!(ws[0].attr("id"), Some("w1"));
    assert_eq!(ws[0].attr("status"), Some("active"));
    assert_eq!(ws[0].attr("event"), Some("approved"));
    assert_eq!(ws[0].text(), "sip:bob@example.com");
    assert_eq!(ws[1].attr("status"), Some("pending"));
    assert_eq!(ws[1].attr("event"), Some("subscribe"));
    assert_eq!(ws[1].text(), "sip:eve@example.com;x=<&>");

    let partial = watcherinfo("sip:alice@example.com", 8, false, &[]);
    let root = parse_element(partial.as_bytes()).unwrap();
    assert_eq!(root.attr("state"), Some("partial"));
    assert_eq!(root.elements().next().unwrap().elements().count(), 0);
}

#[test]
fn pidf_errors_too_many_attributes_or_namespaces() {
    let attrs = |n: usize| (0..n).map(|i| format!(" a{i}=''")).collect::<String>();
    let doc = |n: usize| {
        format!(
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><note{}/></presence>",
            attrs(n)
        )
    };
    assert!(Presence::parse(doc(MAX_ATTRIBUTES).as_bytes()).is_ok());
    let e = err(doc(MAX_ATTRIBUTES + 1).as_bytes());
    assert_eq!(e, PidfError::TooManyAttributes);
    short_ascii(&e);
    // namespace bindings in scope add up along the nesting
    let nest = |bindings: usize| {
        let mut s = String::from("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>");
        let mut left = bindings - 1;
        let mut depth = 0;
        while left > 0 {
            let here = left.min(MAX_ATTRIBUTES);
            s.push_str("<note");
            for i in 0..here {
                s.push_str(&format!(" xmlns:p{left}x{i}='urn:x:{i}'"));
            }
            s.push('>');
            left -= here;
            depth += 1;
        }
        s.push_str(&"</note>".repeat(depth));
        s.push_str("</presence>");
        s
    };
    assert!(Presence::parse(nest(MAX_NAMESPACES).as_bytes()).is_ok());
    assert_eq!(
        err(nest(MAX_NAMESPACES + 1).as_bytes()),
        PidfError::TooManyAttributes
    );
}

/// The least time of several runs (load on the machine only adds time), the worst and the
/// plain document measured in turns so both see the same load.
fn work_ratio(worst: &dyn Fn(), plain: &dyn Fn()) -> f64 {
    let time = |f: &dyn Fn()| {
        let t = std::time::Instant::now();
        for _ in 0..3 {
            f();
        }
        t.elapsed()
    };
    let (mut w, mut p) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..7 {
        w = w.min(time(worst));
        p = p.min(time(plain));
    }
    w.as_secs_f64() / p.as_secs_f64().max(1e-3)
}

/// Everything the server does with a published document: parse, combine with another
/// publication, the privacy views, DND, serialize.
fn full_use(xml: &str) {
    let Ok(d) = Presence::parse(xml.as_bytes()) else {
        return;
    };
    let c = combine("sip:a@b", &[&d, &d]);
    for l in [Level::FriendsAndFamily, Level::Colleagues, Level::External] {
        let _ = view(&c, l).to_xml();
    }
    let _ = is_dnd(&c);
}

/// The worst documents one can build within MAX_SIZE cost about what a plain document of
/// the same size does: no scan is quadratic.
#[test]
fn pidf_work_is_linear_in_size() {
    let n = MAX_SIZE - 400;
    let head = "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' entity='sip:a@b'>";
    let fill = |unit: &dyn Fn(usize) -> String| {
        let mut s = String::from(head);
        let mut i = 0;
        while s.len() < n {
            s.push_str(&unit(i));
            i += 1;
        }
        s.push_str("</presence>");
        s
    };
    // one device publishing the same tuple over and over: cheap for any implementation
    let plain = fill(&|_| "<tuple id='t'><status><basic>open</basic></status></tuple>".into());
    let full_attrs = (0..MAX_ATTRIBUTES)
        .map(|i| format!(" a{i}=''"))
        .collect::<String>();
    let decls = (0..MAX_ATTRIBUTES - 3)
        .map(|i| format!(" xmlns:p{i}='urn:x:{i}'"))
        .collect::<String>();
    let worst: Vec<(&str, String)> = vec![
        (
            "distinct tuple ids",
            fill(&|i| format!("<tuple id='{i}'/>")),
        ),
        (
            "distinct device ids",
            fill(&|i| format!("<dm:device id='{i}'/>")),
        ),
        ("distinct notes", fill(&|i| format!("<note>{i}</note>"))),
        (
            "elements full of attributes",
            fill(&|_| format!("<note{full_attrs}/>")),
        ),
        (
            "the most namespaces in scope, prefixes looked up",
            format!(
                "{}{}</note></presence>",
                head.replace('>', &format!("{decls}><note{decls}>")),
                "<p0:x p0:a='' p0:b=''/>".repeat(n / 26)
            ),
        ),
    ];
    for (what, doc) in &worst {
        assert!(doc.len() <= MAX_SIZE, "{what}: {}", doc.len());
        let ratio = work_ratio(&|| full_use(doc), &|| full_use(&plain));
        eprintln!("{what}: {ratio:.2}");
        assert!(
            ratio < 10.0,
            "{what}: {ratio:.1} times the work of a plain document"
        );
    }
}
