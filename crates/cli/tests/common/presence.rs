//! Presence helpers for tests: a PIDF document, PUBLISH, SUBSCRIBE and the NOTIFYs that
//! follow.

use super::*;

/// A PIDF document of `user` with one open tuple carrying `note`.
pub fn pidf(user: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:{user}@example.test\">\
<tuple id=\"t-{note}\"><status><basic>open</basic></status><note>{note}</note></tuple></presence>"
    )
}

pub fn publish(ua: &mut Ua, body: Option<&str>, expires: u32, if_match: Option<&str>) -> Message {
    ua.new_call();
    let to = ua.aor();
    let mut req = ua.request(Method::Publish, &to, &to);
    req.headers.remove_all(&HeaderName::Contact);
    req.headers.push(HeaderName::Event, "presence");
    req.headers.push(HeaderName::Expires, expires.to_string());
    if let Some(tag) = if_match {
        req.headers.push(HeaderName::SipIfMatch, tag.to_string());
    }
    if let Some(b) = body {
        req.set_body("application/pidf+xml", b.to_string());
    }
    ua.send_authenticated(req)
}

pub fn etag(r: &Message) -> String {
    r.header(&HeaderName::SipETag)
        .expect("SIP-ETag")
        .to_string()
}

/// The next NOTIFY for this UA, answered 200.
pub fn notify(ua: &mut Ua) -> Message {
    let n = ua.expect_request(Method::Notify);
    ua.reply(&n, 200, "w");
    n
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).to_string()
}

/// Subscribes `watcher` to `presentity`; returns the 200 and the first NOTIFY.
pub fn subscribe(
    watcher: &mut Ua,
    presentity: &str,
    event: &str,
    expires: u32,
) -> (Message, Message) {
    watcher.new_call();
    let uri = format!("sip:{presentity}@example.test");
    let mut req = watcher.request(Method::Subscribe, &uri, &uri);
    req.headers.push(HeaderName::Event, event);
    req.headers.push(HeaderName::Expires, expires.to_string());
    req.headers.push(HeaderName::Accept, "application/pidf+xml");
    let req = watcher.challenge_and_resend(req);
    let ok = watcher.expect_response(&Method::Subscribe, req.cseq().unwrap().seq, 200..=699);
    assert_eq!(ok.status(), Some(200), "SUBSCRIBE: {}", first_line(&ok));
    let n = notify(watcher);
    assert_eq!(n.header(&HeaderName::Event).unwrap().as_str(), event);
    (ok, n)
}
