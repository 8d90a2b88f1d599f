//! The roster as the conference event package carries it (RFC 4575): a full document for a
//! new subscription, partial ones (changed users, `state="deleted"` for those who left)
//! after, with a version that grows by one per notification of a subscription.

use confab_sip::pidf::escape_into;
use std::fmt::Write;

/// One participant as the roster shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The user's URI (`sip:bob@example.test`).
    pub user: String,
    /// The endpoint: the participant's handle in this meeting (`p3`), as an URI.
    pub endpoint: String,
    pub display: String,
    pub role: &'static str,
    pub muted: bool,
    pub on_hold: bool,
}

/// What a notification carries.
pub(crate) enum Change<'a> {
    Full(&'a [Entry]),
    /// Users added or changed, and users gone.
    Partial {
        changed: &'a [Entry],
        gone: &'a [(String, String)],
    },
}

/// `conference-info` for `entity` (the conference URI).
pub(crate) fn document(
    entity: &str,
    subject: &str,
    version: u64,
    count: usize,
    change: Change<'_>,
) -> String {
    let mut x = String::with_capacity(512);
    let state = match change {
        Change::Full(_) => "full",
        Change::Partial { .. } => "partial",
    };
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    x.push_str("<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"");
    escape_into(entity, true, &mut x);
    let _ = write!(x, "\" state=\"{state}\" version=\"{version}\">\r\n");
    if let Change::Full(_) = change {
        x.push_str(" <conference-description>\r\n  <subject>");
        escape_into(subject, false, &mut x);
        x.push_str("</subject>\r\n </conference-description>\r\n");
    }
    let _ = write!(
        x,
        " <conference-state>\r\n  <user-count>{count}</user-count>\r\n </conference-state>\r\n"
    );
    x.push_str(" <users>\r\n");
    let (entries, gone): (&[Entry], &[(String, String)]) = match change {
        Change::Full(e) => (e, &[]),
        Change::Partial { changed, gone } => (changed, gone),
    };
    for e in entries {
        // a changed user is sent whole (its endpoint list is one entry)
        user(&mut x, e, "full");
    }
    for (u, ep) in gone {
        x.push_str("  <user entity=\"");
        escape_into(u, true, &mut x);
        x.push_str("\" state=\"partial\">\r\n   <endpoint entity=\"");
        escape_into(ep, true, &mut x);
        x.push_str("\" state=\"deleted\">\r\n    <status>disconnected</status>\r\n   </endpoint>\r\n  </user>\r\n");
    }
    x.push_str(" </users>\r\n</conference-info>\r\n");
    x
}

fn user(x: &mut String, e: &Entry, state: &str) {
    x.push_str("  <user entity=\"");
    escape_into(&e.user, true, x);
    let _ = write!(x, "\" state=\"{state}\">\r\n   <display-text>");
    escape_into(&e.display, false, x);
    let _ = write!(
        x,
        "</display-text>\r\n   <roles><entry>{}</entry></roles>\r\n   <endpoint entity=\"",
        e.role
    );
    escape_into(&e.endpoint, true, x);
    let status = if e.on_hold { "on-hold" } else { "connected" };
    let media = match (e.muted, e.on_hold) {
        (_, true) => "inactive",
        (true, false) => "recvonly",
        (false, false) => "sendrecv",
    };
    let _ = write!(
        x,
        "\">\r\n    <status>{status}</status>\r\n    <joining-method>dialed-in</joining-method>\r\n    \
         <media id=\"1\">\r\n     <type>audio</type>\r\n     <status>{media}</status>\r\n    </media>\r\n   \
         </endpoint>\r\n  </user>\r\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_sip::pidf::parse_element;

    fn entry(n: &str, muted: bool) -> Entry {
        Entry {
            user: format!("sip:{n}@example.test"),
            endpoint: format!("sip:{n}@example.test;ep=p1"),
            display: format!("<{n}> & co"),
            role: "attendee",
            muted,
            on_hold: false,
        }
    }

    #[test]
    fn full_document_is_well_formed_and_lists_everyone() {
        let e = [entry("bob", false), entry("carol", true)];
        let doc = document(
            "sip:alice@example.test;gruu;opaque=app:conf:focus:id:K",
            "A & B",
            1,
            2,
            Change::Full(&e),
        );
        parse_element(doc.as_bytes()).expect("well-formed XML");
        assert!(doc.contains("state=\"full\" version=\"1\""));
        assert!(doc.contains("<user-count>2</user-count>"));
        assert!(doc.contains("sip:carol@example.test"));
        assert!(
            doc.contains("<status>recvonly</status>"),
            "muted shows as recvonly"
        );
        assert!(doc.contains("&lt;bob&gt; &amp; co"));
        assert!(doc.contains("A &amp; B"));
    }

    #[test]
    fn partial_document_names_changes_and_deletions() {
        let e = [entry("dave", false)];
        let gone = [(
            "sip:bob@example.test".to_string(),
            "sip:bob@example.test;ep=p1".to_string(),
        )];
        let doc = document(
            "sip:c",
            "s",
            7,
            2,
            Change::Partial {
                changed: &e,
                gone: &gone,
            },
        );
        parse_element(doc.as_bytes()).expect("well-formed XML");
        assert!(doc.contains("state=\"partial\" version=\"7\""));
        assert!(doc.contains("state=\"deleted\""));
        assert!(doc.contains("sip:dave@example.test"));
        assert!(!doc.contains("<subject>"));
    }
}
