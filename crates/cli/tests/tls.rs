//! TLS and WebSocket transports end to end: registration and a call over TLS, sips:
//! routing (RFC 5630), certificate trust through CsWebServiceConfiguration TrustedCACerts,
//! two confab servers federating over mutual TLS, and clients on ws:// and wss://.

mod common;

use common::*;
use confab_sip::{HeaderName, Message, Method};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn thumbprint(der: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The thumbprint of the certificate confab generated in its data directory.
fn server_thumbprint(s: &Server) -> String {
    let der = CertificateDer::from_pem_file(s.data().join("tls").join("cert.pem"))
        .expect("generated certificate");
    thumbprint(&der)
}

/// Trusts exactly one server certificate, by thumbprint (as a user who was shown it would).
#[derive(Debug)]
struct Pinned(String);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if thumbprint(ee) == self.0 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(
    server_thumbprint: &str,
    client_cert: Option<&rcgen::CertifiedKey>,
) -> Arc<rustls::ClientConfig> {
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(server_thumbprint.to_string())));
    Arc::new(match client_cert {
        Some(ck) => {
            let key = PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
            b.with_client_auth_cert(vec![ck.cert.der().clone()], key)
                .unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Runs a cmdlet script on `s` as its administrator (created on first use).
fn shell(s: &Server, script: &str) -> String {
    let (_, listed) = confab_as_admin(s.data(), &["admin", "list"]);
    if !listed.contains("root") {
        let (ok, out) = confab_as_admin(s.data(), ADD_ROOT);
        assert!(ok, "admin add: {out}");
    }
    let (ok, text) = confab_as_admin(s.data(), &["shell", "-c", script]);
    assert!(ok, "{script}\n{text}");
    text
}

fn wait_for_log(s: &Server, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log_text().contains(needle) {
        assert!(Instant::now() < deadline, "log never showed {needle:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn registered(ua: &mut Ua) {
    let r = ua.register(600);
    assert_eq!(
        r.status(),
        Some(200),
        "{} registers over {}",
        ua.user,
        ua.transport()
    );
}

/// Sends a MESSAGE from `from` to `to_uri` (answering the 407 challenge); returns the
/// request as finally sent. The recipient must answer before [`final_response`].
fn send_message(from: &mut Ua, to_uri: &str, text: &str) -> Message {
    from.new_call();
    let mut m = from.request(Method::Message, to_uri, to_uri);
    m.set_body("text/plain", text.to_string());
    from.challenge_and_resend(m)
}

fn final_response(from: &mut Ua, req: &Message) -> Message {
    from.expect_response(&Method::Message, req.cseq().unwrap().seq, 200..=699)
}

/// A MESSAGE that no one answers (refused on the way); returns the final response.
fn message(from: &mut Ua, to_uri: &str, text: &str) -> Message {
    let req = send_message(from, to_uri, text);
    final_response(from, &req)
}

/// `from` sends `text` to `to`, who receives it (and answers 200).
fn deliver(from: &mut Ua, to: &mut Ua, to_uri: &str, text: &str) -> Message {
    let req = send_message(from, to_uri, text);
    let got = receive_message(to, text);
    assert_eq!(final_response(from, &req).status(), Some(200));
    got
}

fn receive_message(ua: &mut Ua, text: &str) -> Message {
    let got = ua.expect_request(Method::Message);
    assert_eq!(&got.body[..], text.as_bytes());
    ua.reply(&got, 200, "rx");
    got
}

#[test]
fn tls_registration_call_and_sips_rules() {
    let tls_port = free_port("127.0.0.1");
    let s = Server::start_full(
        "127.0.0.1",
        free_port("127.0.0.1"),
        DOMAIN,
        &[format!("tls:127.0.0.1:{tls_port}")],
        10,
        "",
    );
    let thumb = server_thumbprint(&s);
    // the generated certificate's fingerprint is shown, so a user can check it
    assert!(
        s.log_text().contains(&format!("SHA-1 thumbprint {thumb}")),
        "{}",
        s.log_text()
    );
    let cfg = client_config(&thumb, None);
    let mut alice = Ua::tls("user0001", addr("127.0.0.1", tls_port), cfg.clone());
    let mut bob = Ua::tls("user0002", addr("127.0.0.1", tls_port), cfg.clone());
    registered(&mut alice);
    registered(&mut bob);
    call(&mut alice, &mut bob, Some("TLS"));

    // RFC 5630: a sips: request reaches a TLS-registered user, never a UDP-registered one
    let mut carol = Ua::udp("user0003", s.addr());
    registered(&mut carol);
    let got = deliver(
        &mut alice,
        &mut bob,
        &format!("sips:user0002@{DOMAIN}"),
        "secure hello",
    );
    assert!(got
        .header(&HeaderName::Via)
        .unwrap()
        .starts_with("SIP/2.0/TLS "));
    let r = message(
        &mut alice,
        &format!("sips:user0003@{DOMAIN}"),
        "not over UDP",
    );
    assert_eq!(r.status(), Some(480), "{}", first_line(&r));
    assert!(r.reason().unwrap().contains("TLS"), "{}", first_line(&r));
    carol.expect_silence(Duration::from_millis(300));
    // plain sip: to carol still works, from a TLS caller to a UDP callee
    deliver(
        &mut alice,
        &mut carol,
        &format!("sip:user0003@{DOMAIN}"),
        "hi carol",
    );

    // a client that does not trust the server's certificate stops at the handshake
    let tcp = std::net::TcpStream::connect(addr("127.0.0.1", tls_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let mut conn =
        rustls::ClientConnection::new(client_config(&"0".repeat(40), None), name).unwrap();
    let mut tcp = tcp;
    let mut failed = false;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            assert!(e.to_string().contains("not the pinned certificate"), "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed, "the handshake must fail");
}

#[test]
fn sips_without_a_tls_listener_is_416() {
    let s = Server::start(5, "");
    let mut alice = Ua::udp("user0001", s.addr());
    registered(&mut alice);
    let req = alice.request(
        Method::Message,
        &format!("sips:user0002@{DOMAIN}"),
        &format!("sips:user0002@{DOMAIN}"),
    );
    alice.send(&req);
    let r = alice.expect_response(&Method::Message, req.cseq().unwrap().seq, 200..=699);
    assert_eq!(r.status(), Some(416), "{}", first_line(&r));
}

#[test]
fn client_certificates_are_checked_against_trusted_ca_certs() {
    let tls_port = free_port("127.0.0.1");
    let s = Server::start_full(
        "127.0.0.1",
        free_port("127.0.0.1"),
        DOMAIN,
        &[format!("tls:127.0.0.1:{tls_port}")],
        5,
        "[tls]\nclient_certs = \"required\"\n",
    );
    let thumb = server_thumbprint(&s);
    let peer = rcgen::generate_simple_self_signed(vec!["peer.test".to_string()]).unwrap();
    let peer_thumb = thumbprint(peer.cert.der());
    let options = |ua: &mut Ua| {
        let req = ua.request(
            Method::Options,
            &format!("sip:{DOMAIN}"),
            &format!("sip:{DOMAIN}"),
        );
        ua.send(&req);
        ua.recv_timeout(Duration::from_millis(700))
    };

    // an unknown certificate, and none at all, are refused
    let mut ua = Ua::tls(
        "user0001",
        addr("127.0.0.1", tls_port),
        client_config(&thumb, Some(&peer)),
    );
    assert!(
        options(&mut ua).is_none(),
        "an untrusted client certificate is refused"
    );
    wait_for_log(&s, &format!("certificate {peer_thumb} is not trusted"));
    let mut ua = Ua::tls(
        "user0001",
        addr("127.0.0.1", tls_port),
        client_config(&thumb, None),
    );
    assert!(
        options(&mut ua).is_none(),
        "a client without a certificate is refused"
    );

    // trusted by thumbprint, the way Lync lists trusted certificates
    shell(
        &s,
        &format!(
            "$c = New-CsWebTrustedCACertificate -Thumbprint {peer_thumb} -CAStore TrustedRootCA\nSet-CsWebServiceConfiguration -TrustedCACerts @{{Add=$c}}"
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut ua = Ua::tls(
            "user0001",
            addr("127.0.0.1", tls_port),
            client_config(&thumb, Some(&peer)),
        );
        if options(&mut ua).is_some_and(|r| r.status() == Some(200)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the trusted certificate was never accepted"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Federation settings of one side: TLS route to the partner, partner allowed, users
/// allowed to federate.
fn federate(s: &Server, partner: &str, partner_ip: &str, partner_tls_port: u16) {
    shell(
        s,
        &format!(
            "$r = New-CsStaticRoute -TLSRoute -Destination {partner_ip} -Port {partner_tls_port} -MatchUri {partner}\n\
             Set-CsStaticRoutingConfiguration -Route @{{Add=$r}}\n\
             Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true\n\
             New-CsAllowedDomain -Identity {partner}\n\
             Set-CsExternalAccessPolicy -Identity Global -EnableFederationAccess $true"
        ),
    );
}

fn trust(s: &Server, thumbprint: &str) {
    shell(
        s,
        &format!(
            "$c = New-CsWebTrustedCACertificate -Thumbprint {thumbprint} -CAStore TrustedRootCA\nSet-CsWebServiceConfiguration -TrustedCACerts @{{Add=$c}}"
        ),
    );
}

#[test]
fn two_servers_federate_over_mutual_tls() {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let required = "[tls]\nclient_certs = \"required\"\n";
    let a = Server::start_full(
        "127.0.0.1",
        free_port("127.0.0.1"),
        "a.test",
        &[format!("tls:127.0.0.1:{pa}")],
        3,
        required,
    );
    let b = Server::start_full(
        "127.0.0.2",
        free_port("127.0.0.2"),
        "b.test",
        &[format!("tls:127.0.0.2:{pb}")],
        3,
        required,
    );
    federate(&a, "b.test", "127.0.0.2", pb);
    federate(&b, "a.test", "127.0.0.1", pa);
    let mut alice = Ua::udp("user0001", a.addr());
    alice.domain = "a.test".into();
    let mut bob = Ua::udp("user0002", b.addr());
    bob.domain = "b.test".into();
    registered(&mut alice);
    registered(&mut bob);

    // neither trusts the other's self-signed certificate yet: the MESSAGE cannot leave
    // (the failed branch's 503 reaches the sender as 500, RFC 3261 §16.7)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = message(&mut alice, "sip:user0002@b.test", "too early");
        if r.status() == Some(500) {
            break;
        }
        // the route may not have been loaded yet (404 no route, 403 not federated)
        assert!(matches!(r.status(), Some(403 | 404)), "{}", first_line(&r));
        assert!(
            Instant::now() < deadline,
            "the federation settings never took effect"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for_log(&a, "TLS connection refused");
    bob.expect_silence(Duration::from_millis(200));

    trust(&a, &server_thumbprint(&b));
    trust(&b, &server_thumbprint(&a));
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let req = send_message(&mut alice, "sip:user0002@b.test", "hello from a.test");
        if let Some(got) = bob.recv_timeout(Duration::from_secs(2)) {
            assert_eq!(got.method(), Some(&Method::Message));
            bob.reply(&got, 200, "rx");
            assert_eq!(final_response(&mut alice, &req).status(), Some(200));
            break got;
        }
        let r = final_response(&mut alice, &req);
        assert_eq!(r.status(), Some(500), "{}", first_line(&r));
        assert!(
            Instant::now() < deadline,
            "the partners never trusted each other"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let vias: Vec<String> = got
        .headers
        .get_all(&HeaderName::Via)
        .map(|v| v.to_string())
        .collect();
    assert!(
        vias.iter()
            .any(|v| v.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{pa}"))),
        "crossed between the servers over TLS: {vias:?}"
    );
    // and back: bob answers with a MESSAGE of his own over the reverse TLS connection
    deliver(
        &mut bob,
        &mut alice,
        "sip:user0001@a.test",
        "hello from b.test",
    );
}

#[test]
fn websocket_clients_register_and_receive_messages() {
    let (ws, wss) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let s = Server::start_full(
        "127.0.0.1",
        free_port("127.0.0.1"),
        DOMAIN,
        &[format!("ws:127.0.0.1:{ws}"), format!("wss:127.0.0.1:{wss}")],
        5,
        "",
    );
    let cfg = client_config(&server_thumbprint(&s), None);
    let mut alice = Ua::ws("user0001", addr("127.0.0.1", ws), None);
    let mut bob = Ua::ws("user0002", addr("127.0.0.1", wss), Some(cfg));
    let mut carol = Ua::udp("user0003", s.addr());
    registered(&mut alice);
    registered(&mut bob);
    registered(&mut carol);

    let got = deliver(
        &mut carol,
        &mut alice,
        &format!("sip:user0001@{DOMAIN}"),
        "to ws",
    );
    assert!(got
        .header(&HeaderName::Via)
        .unwrap()
        .starts_with("SIP/2.0/WS "));
    let got = deliver(
        &mut carol,
        &mut bob,
        &format!("sip:user0002@{DOMAIN}"),
        "to wss",
    );
    assert!(got
        .header(&HeaderName::Via)
        .unwrap()
        .starts_with("SIP/2.0/WSS "));
    // between the two WebSocket clients
    deliver(
        &mut alice,
        &mut bob,
        &format!("sip:user0002@{DOMAIN}"),
        "ws to wss",
    );

    // RFC 7118: a WebSocket without the "sip" subprotocol is refused
    let req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://127.0.0.1:{ws}/"
    ))
    .unwrap();
    let plain = std::net::TcpStream::connect(addr("127.0.0.1", ws)).unwrap();
    assert!(tungstenite::client::client(req, plain).is_err());
}
