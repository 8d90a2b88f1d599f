//! Sites over real sockets: two confab servers of one domain, one at site Redmond and one
//! at site Dublin (`site` in confab.toml), given the same configuration documents with
//! Lync's cmdlets. A `Site:` document takes effect on the server of that site only, over
//! the Global one; a per-user policy overrides both. And the shells (local and remote)
//! print a warning for a property confab does not enforce.

mod common;
use common::*;
use confab_sip::Method;
use std::time::{Duration, Instant};

fn server(site: &str, http: Option<u16>) -> Server {
    let mut config = format!("site = \"{site}\"\n");
    if let Some(h) = http {
        config.push_str(&format!("[http]\nlisten = \"127.0.0.1:{h}\"\n"));
    }
    let s = Server::start_for(
        "example.test",
        "127.0.0.1",
        free_port("127.0.0.1"),
        3,
        &config,
    );
    s.cli(ADD_ROOT);
    s
}

/// Runs cmdlets as the administrator and waits until the running server has loaded the
/// resulting configuration.
fn configure(s: &Server, script: &str) -> String {
    s.configure(script)
}

fn user(name: &str, s: &Server) -> Ua {
    let mut ua = Ua::udp(name, s.addr());
    assert_eq!(ua.register(300).status(), Some(200), "{name} registers");
    ua
}

/// Sends a MESSAGE from `from` to `to`; `to` answers 200 if it gets it. Returns the final
/// status `from` saw and the body `to` received, if any.
fn im(from: &mut Ua, to: &mut Ua, ctype: &str, body: &str) -> (u16, Option<String>) {
    from.new_call();
    let target = to.aor();
    let mut m = from.request(Method::Message, &target, &target);
    m.set_body(ctype, body.to_string());
    let req = from.challenge_and_resend(m);
    let seq = req.cseq().unwrap().seq;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delivered = None;
    loop {
        assert!(Instant::now() < deadline, "no final answer to the MESSAGE");
        if let Some(m) = to.recv_timeout(Duration::from_millis(20)) {
            if m.method() == Some(&Method::Message) {
                to.reply(&m, 200, "callee-tag");
                delivered = Some(String::from_utf8_lossy(&m.body).to_string());
            }
        }
        if let Some(r) = from.recv_timeout(Duration::from_millis(20)) {
            if r.status().is_some_and(|s| s >= 200) && r.cseq().is_some_and(|c| c.seq == seq) {
                return (r.status().unwrap(), delivered);
            }
        }
    }
}

/// The same documents on both servers: IM links blocked at site Redmond (between internal
/// users too: IgnoreLocal off), rich text
/// disabled at site Dublin; Global leaves both at Lync's defaults.
const SITE_DOCUMENTS: &str =
    "New-CsImFilterConfiguration -Identity site:Redmond -Action Block -IgnoreLocal $false; \
     New-CsClientPolicy -Identity site:Dublin -DisableRTFIm $true; \
     Set-CsClientPolicy -Identity Global -DisableRTFIm $false";

#[test]
fn a_site_document_takes_effect_on_the_servers_of_that_site_only() {
    let redmond = server("Redmond", None);
    let dublin = server("Dublin", None);
    for s in [&redmond, &dublin] {
        configure(s, SITE_DOCUMENTS);
    }
    let link = "see http://x.test/page";
    let rtf = "{\\rtf1 hello}";

    // Redmond: its site's IM filter blocks links; the Dublin client policy is not in force
    let mut alice = user("user0001", &redmond);
    let mut bob = user("user0002", &redmond);
    let (status, got) = im(&mut alice, &mut bob, "text/plain", link);
    assert_eq!((status, got), (403, None), "Site:Redmond Action Block");
    let (status, got) = im(&mut alice, &mut bob, "text/rtf", rtf);
    assert_eq!(status, 200);
    assert_eq!(got.as_deref(), Some(rtf));

    // Dublin: the Global IM filter (IgnoreLocal: messages between our own users are not
    // filtered); rich text refused
    let mut carol = user("user0001", &dublin);
    let mut dave = user("user0002", &dublin);
    let (status, got) = im(&mut carol, &mut dave, "text/plain", link);
    assert_eq!(status, 200);
    assert_eq!(got.as_deref(), Some(link));
    let (status, got) = im(&mut carol, &mut dave, "text/rtf", rtf);
    assert_eq!((status, got), (415, None), "Site:Dublin DisableRTFIm");

    // a per-user policy overrides the site's for the users it is granted to
    configure(
        &dublin,
        "New-CsClientPolicy -Identity RichText -DisableRTFIm $false; \
         Grant-CsClientPolicy -Identity sip:user0001@example.test -PolicyName RichText; \
         Grant-CsClientPolicy -Identity sip:user0002@example.test -PolicyName RichText",
    );
    let (status, got) = im(&mut carol, &mut dave, "text/rtf", rtf);
    assert_eq!(status, 200);
    assert_eq!(got.as_deref(), Some(rtf));

    // removing the site document brings back the Global one (Allow: links made
    // non-clickable, here between our own users too)
    configure(
        &redmond,
        "Remove-CsImFilterConfiguration -Identity site:Redmond; \
         Set-CsImFilterConfiguration -Identity Global -IgnoreLocal $false",
    );
    let (status, got) = im(&mut alice, &mut bob, "text/plain", link);
    assert_eq!(status, 200);
    assert_eq!(got.as_deref(), Some("see _http://x.test/page"));

    // the server says which documents are another site's
    assert!(
        redmond
            .log_text()
            .contains("documents of other sites or pools are not in force on this server"),
        "{}",
        redmond.log_text()
    );
}

#[test]
fn shells_warn_about_properties_confab_does_not_enforce() {
    let http = free_port("127.0.0.1");
    let s = server("Redmond", Some(http));
    let out = configure(
        &s,
        "Set-CsClientPolicy -DisableHtmlIm $true -DisableRTFIm $true",
    );
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("WARNING: ")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].starts_with("WARNING: Set-CsClientPolicy: DisableHtmlIm is not enforced"),
        "{out}"
    );

    let url = format!("http://127.0.0.1:{http}");
    let remote =
        |script: &str| confab_as_admin(s.data(), &["shell", "--server", &url, "-c", script]);
    let (ok, out) = remote("Set-CsImFilterConfiguration -AllowMessage 'hi' -Action Warn");
    assert!(ok, "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("WARNING: ")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].contains("AllowMessage is not enforced"),
        "{out}"
    );
    let (ok, out) = remote("Get-Help Set-CsImFilterConfiguration");
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("NotEnforced") && l.contains("-AllowMessage")),
        "{out}"
    );
}
