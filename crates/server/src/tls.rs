//! TLS for the `tls:` and `wss:` listeners and for TLS connections to peers (rustls, ring).
//!
//! Our certificate comes from `[tls] cert`/`key`, or from `<data_dir>/tls/`, where a
//! self-signed one for the first domain is generated on first start. Peers (a server we
//! connect to, a client or server presenting a client certificate) are trusted when the
//! SHA-1 thumbprint of their certificate, or of a certificate of the chain they present, is
//! listed in CsWebServiceConfiguration TrustedCACerts (as Lync shows thumbprints), or when
//! their chain leads to a CA of `[tls] ca_files`.

use crate::config::{ClientCerts, Config, TlsConfig};
use anyhow::{anyhow, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether a SHA-1 thumbprint (40 upper-case hex digits) is in the trust list; read at
/// each handshake so TrustedCACerts changes take effect without a restart.
pub type TrustedThumbprints = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// SHA-1 of the DER certificate in upper-case hex, the thumbprint Lync shows.
pub fn thumbprint(der: &[u8]) -> String {
    use sha1::Digest;
    hex_upper(&sha1::Sha1::digest(der), "")
}

/// SHA-256 of the DER certificate, colon-separated (as browsers and openssl show it).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex_upper(&sha2::Sha256::digest(der), ":")
}

fn hex_upper(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Our certificate chain and key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where it was read from, and whether it was generated just now.
    pub cert_path: PathBuf,
    pub generated: bool,
}

impl Identity {
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.chain[0])
    }

    pub fn sha256(&self) -> String {
        sha256_fingerprint(&self.chain[0])
    }
}

fn load_pem(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate file", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{}: no certificate in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: no PEM private key in it", key.display()))?;
    Ok((chain, key))
}

/// Reads the configured certificate, or the one in `<data_dir>/tls/`, generating a
/// self-signed one there (SANs: the served domains and the listen IPs) when there is none.
pub fn load_or_create(cfg: &Config) -> anyhow::Result<Identity> {
    if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
        let (chain, key) = load_pem(cert, key)?;
        return Ok(Identity {
            chain,
            key,
            cert_path: cert.clone(),
            generated: false,
        });
    }
    let dir = cfg.data_dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        let (chain, k) = load_pem(&cert, &key)?;
        return Ok(Identity {
            chain,
            key: k,
            cert_path: cert,
            generated: false,
        });
    }
    let mut names: Vec<String> = cfg.domains.clone();
    // the web site's names (meet., dialin., lyncdiscover. …): a wildcard per domain
    for d in &cfg.domains {
        if d.contains('.') {
            names.push(format!("*.{d}"));
        }
    }
    let ips = cfg.listeners().into_iter().map(|l| l.addr.ip());
    for ip in ips.chain(cfg.web.listeners().map(|(_, a)| a.ip())) {
        let unspecified = ip.is_unspecified();
        let ip = ip.to_string();
        if !unspecified && !names.contains(&ip) {
            names.push(ip);
        }
    }
    let mut params =
        rcgen::CertificateParams::new(names).context("making the self-signed certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cfg.domains[0].clone());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "confab (self-signed)");
    let key_pair = rcgen::KeyPair::generate().context("generating a TLS key")?;
    let c = params
        .self_signed(&key_pair)
        .context("signing the self-signed certificate")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, c.pem()).with_context(|| format!("writing {}", cert.display()))?;
    let key_der = PrivateKeyDer::try_from(key_pair.serialize_der())
        .map_err(|e| anyhow!("generated key: {e}"))?;
    Ok(Identity {
        chain: vec![c.der().clone()],
        key: key_der,
        cert_path: cert,
        generated: true,
    })
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn load_cas(files: &[PathBuf]) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for f in files {
        for c in CertificateDer::pem_file_iter(f)
            .with_context(|| format!("reading CA file {}", f.display()))?
        {
            let c = c.with_context(|| format!("{}: not a PEM certificate file", f.display()))?;
            roots
                .add(c)
                .with_context(|| format!("{}: unusable CA certificate", f.display()))?;
        }
    }
    Ok(roots)
}

/// The trust rules, for both directions.
#[derive(Clone)]
struct PeerTrust {
    provider: Arc<CryptoProvider>,
    /// From `[tls] ca_files`; may be empty.
    roots: Arc<RootCertStore>,
    thumbprints: TrustedThumbprints,
}

impl std::fmt::Debug for PeerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTrust")
            .field("ca_roots", &self.roots.len())
            .finish()
    }
}

enum Decision {
    /// The peer's own certificate is listed: pinned, no chain or name to check.
    Pinned,
    /// Verify the chain (and for servers the name) against these anchors.
    Chain(Arc<RootCertStore>),
}

impl PeerTrust {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<Decision, rustls::Error> {
        let own = thumbprint(end_entity);
        if (self.thumbprints)(&own) {
            return Ok(Decision::Pinned);
        }
        // A listed issuer the peer sent along: it becomes the anchor of this verification.
        let mut anchors = RootCertStore::empty();
        for c in intermediates {
            if (self.thumbprints)(&thumbprint(c)) {
                let _ = anchors.add(c.clone().into_owned());
            }
        }
        if !anchors.is_empty() {
            return Ok(Decision::Chain(Arc::new(anchors)));
        }
        if !self.roots.is_empty() {
            return Ok(Decision::Chain(self.roots.clone()));
        }
        tracing::warn!(thumbprint = %own, "TLS peer refused: its certificate is not trusted (not in TrustedCACerts, no CA file)");
        Err(rustls::Error::General(format!(
            "certificate {own} is not trusted"
        )))
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
struct PeerServerVerifier(PeerTrust);

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.decide(end_entity, intermediates)? {
            Decision::Pinned => Ok(ServerCertVerified::assertion()),
            Decision::Chain(roots) => {
                let v = WebPkiServerVerifier::builder_with_provider(roots, self.0.provider.clone())
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

#[derive(Debug)]
struct PeerClientVerifier {
    trust: PeerTrust,
    mode: ClientCerts,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.mode != ClientCerts::None
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mode == ClientCerts::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.trust.decide(end_entity, intermediates)? {
            Decision::Pinned => Ok(ClientCertVerified::assertion()),
            Decision::Chain(roots) => {
                let v =
                    WebPkiClientVerifier::builder_with_provider(roots, self.trust.provider.clone())
                        .build()
                        .map_err(|e| rustls::Error::General(e.to_string()))?;
                v.verify_client_cert(end_entity, intermediates, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.trust.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.trust.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.schemes()
    }
}

/// What the transports need: an acceptor for our listeners, a connector for peers.
#[derive(Clone)]
pub struct TlsContext {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
}

impl TlsContext {
    /// Both configurations offer our certificate (the client side too: mutual TLS between
    /// servers) and check peers with the trust rules above.
    pub fn new(
        identity: &Identity,
        tls: &TlsConfig,
        thumbprints: TrustedThumbprints,
    ) -> anyhow::Result<TlsContext> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let trust = PeerTrust {
            provider: provider.clone(),
            roots: Arc::new(load_cas(&tls.ca_files)?),
            thumbprints,
        };
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(PeerClientVerifier {
                trust: trust.clone(),
                mode: tls.client_certs,
            }))
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .context("our TLS certificate and key do not fit together")?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerServerVerifier(trust)))
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .context("our TLS certificate and key do not fit together")?;
        Ok(TlsContext {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name to ask a peer for (SNI) and check its certificate against: the host of the
/// Request-URI of an outgoing request (a partner's domain), else the peer's address.
pub fn server_name_for(bytes: &[u8], peer: IpAddr) -> ServerName<'static> {
    let line = bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let host = std::str::from_utf8(line)
        .ok()
        .filter(|l| !l.starts_with("SIP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|u| {
            confab_sip::Uri::parse(u)
                .ok()
                .map(|u| u.host_unbracketed().to_string())
        });
    if let Some(h) = host {
        if let Ok(ip) = h.parse::<IpAddr>() {
            return ServerName::IpAddress(ip.into());
        }
        if let Ok(n) = ServerName::try_from(h) {
            return n;
        }
    }
    ServerName::IpAddress(peer.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_comes_from_the_request_uri() {
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let n = server_name_for(b"MESSAGE sip:bob@b.test SIP/2.0\r\nVia: x\r\n\r\n", ip);
        assert_eq!(n.to_str(), "b.test");
        let n = server_name_for(
            b"BYE sip:bob@127.0.0.9:5061;transport=tls SIP/2.0\r\n\r\n",
            ip,
        );
        assert_eq!(n.to_str(), "127.0.0.9");
        let n = server_name_for(b"SIP/2.0 200 OK\r\n\r\n", ip);
        assert_eq!(n.to_str(), "127.0.0.2");
    }

    #[test]
    fn generated_certificate_is_kept_and_thumbprinted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            data_dir: dir.path().to_path_buf(),
            domains: vec!["a.test".into()],
            ..Config::default()
        };
        let first = load_or_create(&cfg).unwrap();
        assert!(first.generated);
        assert_eq!(first.thumbprint().len(), 40);
        let again = load_or_create(&cfg).unwrap();
        assert!(
            !again.generated,
            "the second start reuses the stored certificate"
        );
        assert_eq!(first.thumbprint(), again.thumbprint());
        let ctx = TlsContext::new(&again, &cfg.tls, Arc::new(|_: &str| false));
        assert!(ctx.is_ok());
    }

    #[test]
    fn bad_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let cfg = Config {
            tls: TlsConfig {
                cert: Some(cert.clone()),
                key: Some(cert),
                ..TlsConfig::default()
            },
            ..Config::default()
        };
        let e = load_or_create(&cfg).err().unwrap().to_string();
        assert!(e.contains("c.pem"), "{e}");
    }
}
