//! A dialog of the focus with a participant (its INVITE call, or a subscription): what the
//! focus needs to send requests in it (RFC 3261 §12), and the small header edits of
//! answers and requests inside it.

use crate::core::{Core, SERVER_NAME};
use crate::net::{Dest, Source};
use crate::pipeline::Verdict;
use confab_sip::values::NameAddr;
use confab_sip::{HeaderName, Message, Method, Text, Uri};

/// One dialog of the focus with a participant: what it needs to send requests in it.
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    /// The To header the focus answered with (its tag included): our From in requests.
    pub(crate) ours: String,
    pub(crate) our_tag: String,
    /// The participant's From header (its tag included): our To in requests.
    pub(crate) theirs: String,
    pub(crate) their_tag: String,
    /// Remote target (the participant's Contact URI).
    pub(crate) target: String,
    pub(crate) routes: Vec<String>,
    pub(crate) dest: Dest,
    pub(crate) cseq: u32,
}

impl Dialog {
    pub(crate) fn new(
        msg: &Message,
        src: &Source,
        core: &Core,
        our_tag: &str,
    ) -> Result<Dialog, Verdict> {
        let contact = msg
            .header(&HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|c| c.uri_str.to_string())
            .ok_or_else(|| Verdict::reply(400, "Missing or malformed Contact"))?;
        if !Uri::parse(&contact)
            .is_ok_and(|u| matches!(u.scheme, confab_sip::Scheme::Sip | confab_sip::Scheme::Sips))
        {
            return Err(Verdict::reply(400, "Contact must be a SIP URI"));
        }
        let routes: Vec<String> = msg
            .headers
            .get_all(&HeaderName::RecordRoute)
            .map(|r| r.to_string())
            .collect();
        let dest = core
            .dialog_dest(msg, src, &contact, &routes)
            .ok_or_else(|| {
                Verdict::reply(400, "Contact not reachable (host must be an IP address)")
            })?;
        let (Some(to), Some(from), Some(call_id)) =
            (msg.header(&HeaderName::To), msg.from_hdr(), msg.call_id())
        else {
            return Err(Verdict::reply(400, "Missing To, From or Call-ID"));
        };
        let their_tag = from
            .tag()
            .ok_or_else(|| Verdict::reply(400, "From without a tag"))?
            .to_string();
        Ok(Dialog {
            call_id: call_id.to_string(),
            ours: format!("{to};tag={our_tag}"),
            our_tag: our_tag.to_string(),
            theirs: msg
                .header(&HeaderName::From)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            their_tag,
            target: contact,
            routes,
            dest,
            cseq: 0,
        })
    }

    /// Takes the answer's To (the answerer's tag with it) as our side: for a dialog made
    /// from an INVITE that another server answered (a seat in a meeting hosted by another
    /// front end of the pool).
    pub(crate) fn answered_with(&mut self, to: &str, tag: &str) {
        self.ours = to.to_string();
        self.our_tag = tag.to_string();
    }

    /// A request of the focus inside this dialog.
    pub(crate) fn request(&mut self, core: &Core, method: Method) -> Option<Message> {
        self.cseq += 1;
        let mut req = Message::request(method.clone(), Text::from(self.target.as_str()));
        req.headers.push(HeaderName::Via, core.own_via(&self.dest)?);
        req.headers.push(HeaderName::MaxForwards, "70");
        for r in &self.routes {
            req.headers.push(HeaderName::Route, r.clone());
        }
        req.headers.push(HeaderName::From, self.ours.clone());
        req.headers.push(HeaderName::To, self.theirs.clone());
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers.push(
            HeaderName::CSeq,
            format!("{} {}", self.cseq, method.as_str()),
        );
        req.headers.push(HeaderName::Server, SERVER_NAME);
        Some(req)
    }
}

/// A response inside a dialog keeps the request's To (it carries the focus's tag).
pub(super) fn fix_to(resp: &mut Message, req: &Message) {
    resp.headers.remove_all(&HeaderName::To);
    resp.headers.push(
        HeaderName::To,
        req.header(&HeaderName::To)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    );
}

/// Puts `name` as the display name of a request's From (the dialog is matched by URI and
/// tag, not by display name: RFC 3261 §12.2.1.1).
pub(super) fn rename_from(req: &mut Message, name: &str) {
    let Some(from) = req.header(&HeaderName::From).map(|t| t.to_string()) else {
        return;
    };
    let start = from.find('<').unwrap_or(0);
    let renamed = format!("\"{name}\" {}", &from[start..]);
    req.headers.remove_all(&HeaderName::From);
    req.headers.push(HeaderName::From, renamed);
}
