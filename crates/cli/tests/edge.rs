//! Federation and ethical walls over real sockets: two confab servers for two domains
//! (a.test on 127.0.0.1, b.test on 127.0.0.2) configured with Lync's cmdlets through
//! `confab shell -c`, and one server's IM, file-transfer and rich-text filters.

mod common;
use common::*;
use confab_sip::{Message, Method};
use std::time::Duration;

/// A server with an administrator, for `confab shell`.
fn server(domain: &str, ip: &str, users: u32) -> Server {
    let s = Server::start_for(domain, ip, free_port(ip), users, "");
    s.cli(ADD_ROOT);
    s
}

/// Runs cmdlets as the administrator and waits until the running server has loaded the
/// resulting configuration.
fn configure(s: &Server, script: &str) -> String {
    s.configure(script)
}

fn user(name: &str, domain: &str, s: &Server, tcp: bool) -> Ua {
    let mut ua = if tcp {
        Ua::tcp(name, s.addr())
    } else {
        Ua::udp(name, s.addr())
    };
    ua.domain = domain.to_string();
    assert_eq!(
        ua.register(300).status(),
        Some(200),
        "{name}@{domain} registers"
    );
    ua
}

/// What became of a request: its final status and reason, and what the recipient got.
struct Outcome {
    status: u16,
    reason: String,
    delivered: Option<Message>,
}

/// Sends `req` from `from` (answering the digest challenge); if it reaches `to`, `to`
/// answers `answer`.
fn send(from: &mut Ua, to: &mut Ua, req: Message, answer: u16) -> Outcome {
    let method = req.method().unwrap().clone();
    let req = from.challenge_and_resend(req);
    let seq = req.cseq().unwrap().seq;
    let is_final = |m: &Message| {
        m.status().is_some_and(|s| s >= 200) && m.cseq().is_some_and(|c| c.seq == seq)
    };
    let mut early = None;
    // A refusal comes back at once; otherwise the request is on its way to `to`.
    if let Some(m) = from.recv_timeout(Duration::from_millis(400)) {
        if is_final(&m) {
            early = Some(m);
        }
    }
    let delivered = match early {
        // anything else `to` gets (the ACK of an earlier answer) is not this request
        Some(_) => std::iter::from_fn(|| to.recv_timeout(Duration::from_millis(300)))
            .find(|m| m.method() == Some(&method)),
        None => Some(to.expect_request(method.clone())),
    };
    if let Some(d) = &delivered {
        to.reply(d, answer, "callee-tag");
    }
    let r = match early {
        Some(r) => r,
        None => from.expect_response(&method, seq, 200..=699),
    };
    if method == Method::Invite && r.status() != Some(200) {
        from.send(&ack_for(&req, &r));
    }
    Outcome {
        status: r.status().unwrap(),
        reason: r.reason().map(|t| t.to_string()).unwrap_or_default(),
        delivered,
    }
}

fn im(from: &mut Ua, to: &mut Ua, ctype: &str, body: &str) -> Outcome {
    from.new_call();
    let target = to.aor();
    let mut m = from.request(Method::Message, &target, &target);
    m.set_body(ctype, body.to_string());
    send(from, to, m, 200)
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).to_string()
}

fn assert_refused(o: &Outcome, status: u16, reason: &str) {
    assert!(
        o.delivered.is_none(),
        "nothing is delivered when refused ({reason})"
    );
    assert_eq!(o.status, status, "{}", o.reason);
    assert!(
        o.reason.contains(reason),
        "reason {:?} should contain {reason:?}",
        o.reason
    );
}

/// One domain's route and partner list, as an administrator types them.
fn federate(s: &Server, partner: &str, partner_ip: &str, partner_port: u16) {
    configure(
        s,
        &format!(
            "Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true
             New-CsAllowedDomain -Identity {partner} -Comment \"partner\"
             $r = New-CsStaticRoute -TCPRoute -Destination {partner_ip} -Port {partner_port} -MatchUri {partner}
             Set-CsStaticRoutingConfiguration -Identity global -Route @{{Add=$r}}
             Set-CsExternalAccessPolicy -Identity global -EnableFederationAccess $true"
        ),
    );
}

#[test]
fn two_domains_federate_under_their_administrators_rules() {
    let a = server("a.test", "127.0.0.1", 5);
    let b = server("b.test", "127.0.0.2", 5);
    let mut alice = user("user0001", "a.test", &a, false);
    let mut bob = user("user0001", "b.test", &b, true);

    // Out of the box federation is off (AllowFederatedUsers $false).
    assert_refused(
        &im(&mut alice, &mut bob, "text/plain", "hello?"),
        403,
        "Federation is disabled",
    );

    federate(&a, "b.test", "127.0.0.2", b.port);
    // b has not federated yet: a forwards, b refuses.
    assert_refused(
        &im(&mut alice, &mut bob, "text/plain", "hello?"),
        403,
        "Federation is disabled",
    );
    federate(&b, "a.test", "127.0.0.1", a.port);

    // Allowed both ways: across the TCP route between the servers.
    let o = im(&mut alice, &mut bob, "text/plain", "hello from a");
    assert_eq!(o.status, 200, "{}", o.reason);
    assert_eq!(body(o.delivered.as_ref().unwrap()), "hello from a");
    let o = im(&mut bob, &mut alice, "text/plain", "hello from b");
    assert_eq!(o.status, 200, "{}", o.reason);
    assert_eq!(body(o.delivered.as_ref().unwrap()), "hello from b");

    // A domain that is not listed: refused by a before anything leaves it.
    let mut carol = user("user0002", "a.test", &a, false);
    let mut stranger = user("user0003", "a.test", &a, false);
    stranger.domain = "c.test".into(); // only its address is used, as the target
    assert_refused(
        &im(&mut carol, &mut stranger, "text/plain", "x"),
        403,
        "not an allowed federated domain",
    );

    // A user whose external access policy forbids federation, while others keep it.
    configure(
        &a,
        "New-CsExternalAccessPolicy -Identity NoFederation -EnableFederationAccess $false
         Grant-CsExternalAccessPolicy -Identity sip:user0002@a.test -PolicyName NoFederation",
    );
    assert_refused(
        &im(&mut carol, &mut bob, "text/plain", "x"),
        403,
        "external access policy",
    );
    assert_eq!(
        im(&mut alice, &mut bob, "text/plain", "still fine").status,
        200
    );
    // ... and that user cannot be reached from the partner either.
    assert_refused(
        &im(&mut bob, &mut carol, "text/plain", "x"),
        403,
        "does not take federated",
    );

    // A request claiming to come from b.test but not from b.test's route is refused.
    let mut spoof = Ua::udp_on("127.0.0.3", "user0002", a.addr());
    spoof.domain = "b.test".into();
    spoof.new_call();
    let target = alice.aor();
    let mut m = spoof.request(Method::Message, &target, &target);
    m.set_body("text/plain", "I am bob's colleague");
    spoof.send(&m);
    let r = spoof.expect_response(&Method::Message, m.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(r
        .reason()
        .unwrap()
        .contains("did not come from its federation route"));
    alice.expect_silence(Duration::from_millis(200));

    // b blocks a.test: moved from the allowed list to the blocked list.
    configure(&b, "Remove-CsAllowedDomain -Identity a.test\nNew-CsBlockedDomain -Identity a.test -Comment \"no longer\"");
    assert_refused(
        &im(&mut alice, &mut bob, "text/plain", "x"),
        403,
        "Domain a.test is blocked",
    );
    assert_refused(
        &im(&mut bob, &mut alice, "text/plain", "x"),
        403,
        "Domain a.test is blocked",
    );
}

#[test]
fn an_information_barrier_holds_in_both_directions_and_is_audited() {
    let a = server("a.test", "127.0.0.1", 5);
    let b = server("b.test", "127.0.0.2", 5);
    federate(&a, "b.test", "127.0.0.2", b.port);
    federate(&b, "a.test", "127.0.0.1", a.port);
    // Research (user0001, user0002) may not talk to Sales (user0003) nor to anyone at b.test.
    configure(
        &a,
        r#"New-CsInformationBarrier -Identity ResearchSales -SegmentA "sip:user0001@a.test","sip:user0002@a.test" -SegmentB "sip:user0003@a.test" -Description "research and sales"
           New-CsInformationBarrier -Identity ResearchPartner -SegmentA "sip:user0001@a.test" -SegmentB "*@b.test""#,
    );
    let mut research = user("user0001", "a.test", &a, false);
    let mut sales = user("user0003", "a.test", &a, false);
    let mut other = user("user0004", "a.test", &a, false);
    let mut partner = user("user0001", "b.test", &b, false);

    assert_refused(
        &im(&mut research, &mut sales, "text/plain", "x"),
        403,
        "information barrier ResearchSales",
    );
    assert_refused(
        &im(&mut sales, &mut research, "text/plain", "x"),
        403,
        "information barrier ResearchSales",
    );
    // calls too
    sales.new_call();
    let target = research.aor();
    let mut inv = sales.request(Method::Invite, &target, &target);
    let offer = sdp(&sales);
    inv.set_body("application/sdp", offer);
    assert_refused(
        &send(&mut sales, &mut research, inv, 486),
        403,
        "information barrier",
    );
    // across the federation, both ways
    assert_refused(
        &im(&mut research, &mut partner, "text/plain", "x"),
        403,
        "information barrier ResearchPartner",
    );
    assert_refused(
        &im(&mut partner, &mut research, "text/plain", "x"),
        403,
        "information barrier ResearchPartner",
    );
    // everyone else is unaffected
    assert_eq!(im(&mut other, &mut sales, "text/plain", "hi").status, 200);
    assert_eq!(im(&mut other, &mut partner, "text/plain", "hi").status, 200);

    // Each refusal is in the audit log.
    let (_, audit) = confab_as_admin(a.data(), &["admin", "audit"]);
    assert!(
        audit.contains("refused by information barrier ResearchSales"),
        "{audit}"
    );
    assert!(
        audit.contains("refused by information barrier ResearchPartner"),
        "{audit}"
    );
}

#[test]
fn im_file_transfer_and_rich_text_filters() {
    let s = server("example.test", "127.0.0.1", 5);
    let mut alice = user("user0001", "example.test", &s, false);
    let mut bob = user("user0002", "example.test", &s, false);

    // Default IgnoreLocal True: messages between internal users are not filtered.
    let o = im(
        &mut alice,
        &mut bob,
        "text/plain",
        "see http://intranet/x and www.example.test",
    );
    assert_eq!(o.status, 200);
    assert_eq!(
        body(o.delivered.as_ref().unwrap()),
        "see http://intranet/x and www.example.test"
    );
    configure(
        &s,
        "Set-CsImFilterConfiguration -Identity global -IgnoreLocal $false",
    );

    // Enabled, Action Allow: links are delivered but made non-clickable.
    let o = im(
        &mut alice,
        &mut bob,
        "text/plain",
        "see http://intranet/x and www.example.test",
    );
    assert_eq!(o.status, 200);
    assert_eq!(
        body(o.delivered.as_ref().unwrap()),
        "see _http://intranet/x and _www.example.test"
    );

    configure(
        &s,
        r#"Set-CsImFilterConfiguration -Identity global -Action Warn -WarnMessage "Links are monitored.""#,
    );
    let o = im(&mut alice, &mut bob, "text/plain", "see http://intranet/x");
    assert_eq!(
        body(o.delivered.as_ref().unwrap()),
        "Links are monitored.\r\nsee http://intranet/x"
    );

    configure(
        &s,
        "Set-CsImFilterConfiguration -Identity global -Action Block",
    );
    assert_refused(
        &im(
            &mut alice,
            &mut bob,
            "text/plain",
            "see file://server/share",
        ),
        403,
        "contains a link",
    );
    assert_eq!(
        im(&mut alice, &mut bob, "text/plain", "no links here").status,
        200
    );

    // File transfer (RFC 5547 offer): .jpg added to the blocked extensions.
    configure(
        &s,
        r#"Set-CsFileTransferFilterConfiguration -Identity global -Extensions @{Add=".jpg"}"#,
    );
    let offer = |ua: &mut Ua, file: &str| {
        ua.new_call();
        let target = "sip:user0002@example.test";
        let mut inv = ua.request(Method::Invite, target, target);
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:*\r\na=path:msrp://127.0.0.1:7654/s1;tcp\r\na=file-selector:name:\"{file}\" type:image/jpeg size:1000\r\n"
        );
        inv.set_body("application/sdp", sdp);
        inv
    };
    let inv = offer(&mut alice, "holiday.jpg");
    assert_refused(
        &send(&mut alice, &mut bob, inv, 603),
        403,
        ".jpg files are not allowed",
    );
    let inv = offer(&mut alice, "notes.txt");
    let o = send(&mut alice, &mut bob, inv, 603);
    assert!(
        o.delivered.is_some() && o.status == 603,
        "a .txt offer passes the filter"
    );
    configure(
        &s,
        "Set-CsFileTransferFilterConfiguration -Identity global -Action BlockAll",
    );
    let inv = offer(&mut alice, "notes.txt");
    assert_refused(
        &send(&mut alice, &mut bob, inv, 603),
        403,
        "File transfer is not allowed",
    );

    // Rich text: refused once DisableRTFIm is set; plain text still goes.
    let rtf = r"{\rtf1\ansi {\b bold} text}";
    configure(
        &s,
        "Set-CsImFilterConfiguration -Identity global -Enabled $false",
    );
    assert_eq!(im(&mut alice, &mut bob, "text/rtf", rtf).status, 200);
    configure(
        &s,
        "Set-CsClientPolicy -Identity global -DisableRTFIm $true",
    );
    assert_refused(
        &im(&mut alice, &mut bob, "text/rtf", rtf),
        415,
        "Rich text IM is disabled",
    );
    assert_eq!(im(&mut alice, &mut bob, "text/plain", "plain").status, 200);
}

#[test]
fn remote_users_sign_in_only_as_the_edge_settings_and_their_policy_allow() {
    let s = Server::start_for(
        "example.test",
        "127.0.0.1",
        free_port("127.0.0.1"),
        5,
        "[edge]\ninternal_networks = [\"127.0.0.1/32\"]\n",
    );
    s.cli(ADD_ROOT);
    // inside: as usual
    assert_eq!(
        Ua::udp_on("127.0.0.1", "user0001", s.addr())
            .register(300)
            .status(),
        Some(200)
    );
    // outside (127.0.0.3): the global external access policy has EnableOutsideAccess $false
    let mut remote = Ua::udp_on("127.0.0.3", "user0002", s.addr());
    let r = remote.register(300);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(r.reason().unwrap().contains("does not allow remote access"));
    configure(
        &s,
        "New-CsExternalAccessPolicy -Identity RemoteWorkers -EnableOutsideAccess $true
         Grant-CsExternalAccessPolicy -Identity sip:user0002@example.test -PolicyName RemoteWorkers",
    );
    assert_eq!(
        remote.register(300).status(),
        Some(200),
        "the policy lets user0002 in from outside"
    );
    let mut other = Ua::udp_on("127.0.0.3", "user0003", s.addr());
    assert_eq!(
        other.register(300).status(),
        Some(403),
        "others still may not"
    );
    // the Edge closed to all remote users
    configure(
        &s,
        "Set-CsAccessEdgeConfiguration -AllowOutsideUsers $false",
    );
    let r = remote.register(300);
    assert_eq!(r.status(), Some(403));
    assert!(r.reason().unwrap().contains("Remote access is disabled"));
    assert!(s.log_text().contains("remote access refused"));
}

#[test]
fn defence_settings_come_from_the_store_and_apply_at_once() {
    let s = server("example.test", "127.0.0.1", 5);
    // a wrong value is refused and changes nothing
    let (ok, out) = confab_as_admin(
        s.data(),
        &[
            "shell",
            "-c",
            r#"Set-CsDefenseConfiguration -TrustedAddresses @{Add="not-an-ip"}"#,
        ],
    );
    assert!(
        !ok && out.contains("'not-an-ip' is not an IP address"),
        "{out}"
    );

    configure(
        &s,
        r#"Set-CsDefenseConfiguration -MessagesPerSecond 20 -Burst 40 -BanSeconds 2 -TrustedAddresses @{Add="127.0.0.4"}"#,
    );
    assert!(s.log_text().contains("defence settings changed"));
    let opts = |ua: &mut Ua| {
        let req = ua.request(Method::Options, "sip:example.test", "sip:example.test");
        ua.send(&req);
        req.cseq().unwrap().seq
    };
    let mut flooder = Ua::udp_on("127.0.0.2", "user0001", s.addr());
    let mut trusted = Ua::udp_on("127.0.0.4", "user0002", s.addr());
    for _ in 0..150 {
        opts(&mut flooder);
        opts(&mut trusted);
    }
    s.wait_for_log("flood: address banned");
    while flooder.recv_timeout(Duration::from_millis(100)).is_some() {}
    while trusted.recv_timeout(Duration::from_millis(50)).is_some() {}
    let seq = opts(&mut flooder);
    assert!(
        flooder.recv_timeout(Duration::from_millis(500)).is_none(),
        "banned: no answer to {seq}"
    );
    let seq = opts(&mut trusted);
    assert_eq!(
        trusted
            .expect_response(&Method::Options, seq, 200..=200)
            .status(),
        Some(200),
        "a trusted address is never limited"
    );
    let mut other = Ua::udp_on("127.0.0.3", "user0003", s.addr());
    let seq = opts(&mut other);
    assert_eq!(
        other
            .expect_response(&Method::Options, seq, 200..=200)
            .status(),
        Some(200),
        "another address is served"
    );
    // asked now and then (dropped while banned, which does not extend the ban) until
    // served again
    wait_until("the ban to be lifted", Duration::from_secs(10), || {
        let seq = opts(&mut flooder);
        flooder
            .recv_timeout(Duration::from_millis(300))
            .is_some_and(|r| r.status() == Some(200) && r.cseq().is_some_and(|c| c.seq == seq))
    });
}
