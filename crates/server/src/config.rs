//! The TOML configuration file. Errors name the file, line and key.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    /// WebSocket (RFC 7118), plain.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Transport {
    /// As in a Via header.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// As in a URI's `transport=` parameter.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// Encrypted hop (what a `sips:` Request-URI requires, RFC 5630).
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    pub fn parse(s: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| s.eq_ignore_ascii_case(t.param()))
    }
}

/// One socket to listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Parses `ADDR:PORT` (UDP and TCP), or `T:ADDR:PORT` with T one of udp, tcp, tls, ws, wss;
/// IPv6 as `[::1]:5060`.
pub fn parse_listen(s: &str) -> Result<Vec<Listen>, String> {
    let (transports, addr) = match s.split_once(':') {
        Some((t, rest)) if Transport::parse(t).is_some() => {
            (vec![Transport::parse(t).unwrap()], rest)
        }
        _ => (vec![Transport::Udp, Transport::Tcp], s),
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("'{s}' is not ADDR:PORT (for example 127.0.0.1:5060, [::1]:5060, tcp:127.0.0.1:5060, tls:127.0.0.1:5061 or wss:127.0.0.1:7443)"))?;
    Ok(transports
        .into_iter()
        .map(|transport| Listen { transport, addr })
        .collect())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `ADDR:PORT` (UDP and TCP) or `udp:` / `tcp:` / `tls:` / `ws:` / `wss:ADDR:PORT`.
    pub listen: Vec<String>,
    /// SIP domains served; the first is the default for new users.
    pub domains: Vec<String>,
    pub data_dir: PathBuf,
    /// Where the central store lives: unset for SQLite in `data_dir`, or a PostgreSQL URL
    /// (`postgres://user:password@host/db`) that several servers can share.
    pub store: Option<String>,
    /// Tokio worker threads; default: one per core.
    pub workers: Option<usize>,
    /// The Lync site this server belongs to (e.g. "Redmond"): `Site:<site>` configuration
    /// documents override the Global ones on it. Unset: only Global (and per-user) apply.
    pub site: Option<String>,
    pub registrar: RegistrarConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub im: ImConfig,
    pub presence: PresenceConfig,
    pub http: HttpConfig,
    /// The web site: meeting and dial-in pages, autodiscover, the Control Panel.
    pub web: WebConfig,
    /// Flood and password-guessing defence (see defence.rs).
    pub defence: crate::defence::DefenceConfig,
    pub edge: EdgeConfig,
    /// Peers trusted without sign-in (PSTN gateways, application servers).
    pub trust: TrustConfig,
    /// Limits on server application (filter script) runs.
    pub scripts: ScriptsConfig,
    pub log: LogConfig,
    pub tls: TlsConfig,
    /// The conference focus and audio MCU (docs/meetings.md, docs/media.md).
    pub meetings: MeetingsConfig,
    /// Enterprise voice (docs/voice.md): calls to phone numbers.
    pub voice: VoiceConfig,
    /// The pool of front ends on one store (docs/pool.md).
    pub pool: PoolConfig,
}

/// This front end in the pool: the shared location, heartbeats, forwarding between front
/// ends (docs/pool.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Share registrations through the store (a single server is a pool of one). `false`:
    /// registrations live in this process only (saved at a clean stop), as before pools.
    pub enabled: bool,
    /// This front end's name (Get-CsComputer's Identity); unset: its pool address.
    pub name: Option<String>,
    /// `tcp:IP:PORT` (or `tls:`) where the other front ends reach this one; unset: the
    /// first TCP listener with a specific address.
    pub address: Option<String>,
    /// How often the shared location is read for the others' changes (milliseconds).
    pub poll_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            enabled: true,
            name: None,
            address: None,
            poll_ms: 100,
        }
    }
}

impl PoolConfig {
    /// `address` parsed: a TCP or TLS listener address.
    pub fn parsed_address(&self) -> Result<Option<Listen>, String> {
        let Some(a) = &self.address else {
            return Ok(None);
        };
        let l = parse_listen(a).map_err(|e| format!("key 'pool.address': {e}"))?;
        match l.as_slice() {
            [one] if matches!(one.transport, Transport::Tcp | Transport::Tls) => Ok(Some(*one)),
            _ => Err(format!(
                "key 'pool.address': '{a}' must be tcp:IP:PORT or tls:IP:PORT (front ends talk over a connection)"
            )),
        }
    }
}

/// Enterprise voice timers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// Lync's fast failover (CsTrunkConfiguration EnableFastFailoverTimer): a gateway that
    /// has not started ringing (a provisional answer other than 100) this long after the
    /// INVITE is given up and the next way out is tried. Lync's is 10 s.
    pub fast_failover_secs: u64,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            fast_failover_secs: 10,
        }
    }
}

/// Meetings: the focus's limits and the audio MCU's sockets and threads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingsConfig {
    /// Serve meetings at all (the focus and the MCU).
    pub enabled: bool,
    /// The address the MCU binds its RTP sockets to and puts in its SDP; unset: the IP
    /// address of the first SIP listener.
    pub media_address: Option<std::net::IpAddr>,
    /// The MCU's own RTP/RTCP ports (even RTP port, RTCP on the next).
    pub media_port_min: u16,
    pub media_port_max: u16,
    /// Mixer threads (each room is mixed by one of them).
    pub mixer_threads: usize,
    /// A participant that sends neither RTP nor RTCP for this long is hung up.
    pub rtp_timeout_secs: u64,
    /// A caller nobody admits from the lobby is hung up after this long.
    pub lobby_timeout_secs: u64,
    /// Participants (lobby included) in all meetings on this server.
    pub max_participants: usize,
}

impl Default for MeetingsConfig {
    fn default() -> Self {
        MeetingsConfig {
            enabled: true,
            media_address: None,
            media_port_min: 49152,
            media_port_max: 57500,
            mixer_threads: 2,
            rtp_timeout_secs: 30,
            lobby_timeout_secs: 900,
            max_participants: 1000,
        }
    }
}

/// Certificates for the TLS and WSS listeners and for TLS connections to peers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (ours first). Unset: `<data_dir>/tls/cert.pem`, generated
    /// (self-signed for the first domain) on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM files of CA certificates whose chains are trusted for peers, beside the
    /// thumbprints in CsWebServiceConfiguration TrustedCACerts.
    pub ca_files: Vec<PathBuf>,
    /// Whether peers connecting to our TLS listeners are asked for a certificate.
    pub client_certs: ClientCerts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCerts {
    /// Not asked for.
    None,
    /// Asked for; one that is presented must be trusted (a client without one is let in).
    #[default]
    Optional,
    /// Every peer must present a trusted certificate (mutual TLS, server to server).
    Required,
}

/// Per message and script limits of server applications (see docs/scripts.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptsConfig {
    /// Rhai operations a script may take on one message.
    pub max_operations: u64,
    /// Wall-clock milliseconds a script may take on one message.
    pub timeout_ms: u64,
    /// Bytes of one string, and entries of one array or map, a script may build.
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
}

impl Default for ScriptsConfig {
    fn default() -> Self {
        let l = confab_scripts::Limits::default();
        ScriptsConfig {
            max_operations: l.max_operations,
            timeout_ms: l.timeout.as_millis() as u64,
            max_string_size: l.max_string_size,
            max_array_size: l.max_array_size,
            max_map_size: l.max_map_size,
        }
    }
}

impl ScriptsConfig {
    pub fn limits(&self) -> confab_scripts::Limits {
        confab_scripts::Limits {
            max_operations: self.max_operations,
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            max_string_size: self.max_string_size,
            max_array_size: self.max_array_size,
            max_map_size: self.max_map_size,
            ..confab_scripts::Limits::default()
        }
    }
}

/// Where this server meets the outside (Lync's Edge role).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address ranges of the company network, e.g. ["10.0.0.0/8", "192.168.0.0/16"]. Users
    /// signing in from elsewhere are remote users: allowed only by CsAccessEdgeConfiguration
    /// AllowOutsideUsers and their CsExternalAccessPolicy EnableOutsideAccess. Empty: every
    /// address counts as internal.
    pub internal_networks: Vec<Network>,
}

impl EdgeConfig {
    /// Whether a client at `ip` is outside the company network.
    pub fn is_outside(&self, ip: std::net::IpAddr) -> bool {
        !self.internal_networks.is_empty() && !self.internal_networks.iter().any(|n| n.contains(ip))
    }
}

/// Trusted peers (Lync's trusted application servers and PSTN gateways): a request from one
/// is not challenged and may be relayed, as a gateway's calls must be. Recognised by the
/// source address of a TCP, TLS or WebSocket connection only: a UDP source address can be
/// forged.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Address ranges, e.g. ["10.1.2.3", "127.0.0.5"].
    pub peers: Vec<Network>,
}

impl TrustConfig {
    /// Whether a request that came on `transport` from `ip` is from a trusted peer.
    pub fn is_trusted_peer(&self, transport: Transport, ip: std::net::IpAddr) -> bool {
        transport.is_reliable() && self.peers.iter().any(|n| n.contains(ip))
    }
}

/// An address range in CIDR form (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::*;
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map(V4).unwrap_or(V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (V4(n), V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (V6(n), V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((&s, ""));
        let addr: std::net::IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an address range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?
        };
        Ok(Network { addr, prefix })
    }
}

/// The administration REST API (plain HTTP: keep it on loopback or behind a TLS proxy).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// e.g. "127.0.0.1:8080"; unset: no REST API.
    pub listen: Option<String>,
}

/// The web site (docs/web.md): Lync's internal (443) and external (4443) HTTPS sites and
/// their plain HTTP companions (80, 8080: autodiscover and redirects). Each unset: not
/// served. The external site is what the reverse proxy publishes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// HTTPS, the internal site (everything: meetings, dial-in, Control Panel, REST API).
    pub internal: Option<String>,
    /// HTTPS, the external site (meetings, dial-in, autodiscover only).
    pub external: Option<String>,
    /// Plain HTTP beside the internal site.
    pub internal_http: Option<String>,
    /// Plain HTTP beside the external site.
    pub external_http: Option<String>,
    /// The SIP address clients outside use (the Access Edge's public name), `FQDN:PORT`,
    /// for autodiscover; unset: the internal SIP listener.
    pub external_sip: Option<String>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed: a request from one
    /// of them is taken to come from the last address in that header that is not itself a
    /// trusted proxy (sign-in throttling, the audit log). Empty: the peer, always.
    pub trusted_proxies: Vec<String>,
}

impl WebConfig {
    /// [`WebConfig::trusted_proxies`], parsed (validated at load).
    pub fn trusted_proxy_addrs(&self) -> Vec<std::net::IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// The configured listeners: (key, address).
    pub fn listeners(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        [
            ("internal", &self.internal),
            ("external", &self.external),
            ("internal_http", &self.internal_http),
            ("external_http", &self.external_http),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?.parse().ok()?)))
    }

    fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("internal", &self.internal),
            ("external", &self.external),
            ("internal_http", &self.internal_http),
            ("external_http", &self.external_http),
        ] {
            if let Some(v) = v {
                v.parse::<SocketAddr>()
                    .map_err(|_| format!("key 'web.{k}': '{v}' is not ADDR:PORT"))?;
            }
        }
        for a in &self.trusted_proxies {
            a.parse::<std::net::IpAddr>()
                .map_err(|_| format!("key 'web.trusted_proxies': '{a}' is not an IP address"))?;
        }
        if let Some(e) = &self.external_sip {
            let ok = e
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(format!("key 'web.external_sip': '{e}' is not FQDN:PORT"));
            }
        }
        Ok(())
    }
}

/// Expiry bounds of PUBLISH and SUBSCRIBE (RFC 3903, RFC 6665).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// Shorter (non-zero) expiry gets 423 Interval Too Brief.
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            min_expires: 60,
            max_expires: 86400,
            default_expires: 3600,
        }
    }
}

/// Instant messages kept for users who are offline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImConfig {
    /// Messages kept per user; beyond it the sender gets 486.
    pub max_stored_per_user: usize,
    /// Bytes of message bodies kept per user; beyond it the sender gets 486.
    pub max_stored_bytes_per_user: usize,
    /// A larger message for an offline user gets 413.
    pub max_stored_message_bytes: usize,
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            max_stored_per_user: 100,
            max_stored_bytes_per_user: 1 << 20,
            max_stored_message_bytes: 16 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Seconds a nonce stays valid; after that the client gets `stale=true`.
    pub nonce_lifetime: u32,
    /// Challenge requests other than REGISTER (with 407) from local users.
    pub challenge_requests: bool,
    /// Accept digest responses without `qop=auth` (RFC 2069, no client nonce: open to
    /// chosen-plaintext attacks). Off by default; such a response is refused with 403.
    pub allow_rfc2069: bool,
    /// Also accept a digest `uri` that names this server (its address or domain, no user)
    /// instead of the Request-URI: sipp's `[authentication]` puts the server's address there.
    /// Off by default (the `uri` must be the Request-URI, RFC 3261 §22.4).
    pub accept_server_digest_uri: bool,
    /// Also offer SHA-256 (RFC 8760), after MD5. Off by default: some deployed clients
    /// (baresip 1.0 / libre 1.1 in Debian 12) give up on a challenge that lists an
    /// algorithm they do not know instead of choosing the one they do.
    pub sha256: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Larger messages are answered 513.
    pub max_message_bytes: usize,
    /// TCP connections without traffic are closed after this many seconds
    /// (unless a registration still uses them).
    pub tcp_idle_timeout: u64,
    pub tcp_max_connections: usize,
    /// TCP connections one address may hold open.
    pub tcp_max_connections_per_address: usize,
    /// Messages queued for one TCP connection before it is considered stuck and closed.
    pub tcp_send_queue: usize,
    /// Server and client transactions kept at once; beyond it new requests get 503.
    pub max_transactions: usize,
    /// Overload shedding: a request that waited longer than this in the receive queue and
    /// would start new work (no To tag) is answered 503 with Retry-After.
    pub max_queue_delay_ms: u64,
    /// Pending server transactions one source address may have (its share of
    /// `max_transactions`); beyond it its requests get 503 with Retry-After. Addresses in
    /// `[defence] trusted` are not limited.
    pub max_transactions_per_source: usize,
    /// Presence documents one user may have published at once (one per device); beyond
    /// it a new PUBLISH gets 403 naming the limit.
    pub max_publications_per_user: usize,
    /// Presence documents published on the server; beyond it 503 with Retry-After.
    pub max_publications: usize,
    /// Presence and watcher-info subscriptions one watcher may hold; beyond it a new
    /// SUBSCRIBE gets 403 naming the limit.
    pub max_subscriptions_per_user: usize,
    /// Subscriptions on the server; beyond it 503 with Retry-After.
    pub max_subscriptions: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "confab_server=debug".
    pub level: String,
    /// Log every SIP message sent and received (toggle at run time with SIGUSR1).
    pub sip_trace: bool,
}

/// The dotted key an error at byte `at` of a TOML text is about: the key of the line it is
/// on, under the nearest `[table]` header above it.
fn key_at(text: &str, at: Option<usize>) -> Option<String> {
    let at = at?.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = text[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']'))
            .then(|| l.trim_matches(['[', ']']).trim().to_string())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// The log levels a `[log] level` directive may name.
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// `[log] level` is a tracing filter: comma-separated `LEVEL` or `TARGET=LEVEL`
/// (`info,confab_server=debug`). A word that is not a level (`verbose`) would be read by
/// tracing as a target and silence every log line, so it is refused here, naming the key.
fn check_log_level(level: &str) -> Result<(), String> {
    let bad = |d: &str| {
        format!(
            "key 'log.level': '{d}' is not a log level ({}) nor TARGET=LEVEL",
            LOG_LEVELS.join(", ")
        )
    };
    if level.trim().is_empty() {
        return Err(bad(level));
    }
    for d in level.split(',') {
        let d = d.trim();
        let lvl = match d.rsplit_once('=') {
            Some((target, lvl)) if !target.trim().is_empty() => lvl,
            Some(_) => return Err(bad(d)),
            None => d,
        };
        if !LOG_LEVELS
            .iter()
            .any(|l| l.eq_ignore_ascii_case(lvl.trim()))
        {
            return Err(bad(d));
        }
    }
    Ok(())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["127.0.0.1:5060".into()],
            domains: vec!["example.test".into()],
            data_dir: PathBuf::from("confab-data"),
            store: None,
            workers: None,
            site: None,
            registrar: RegistrarConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            im: ImConfig::default(),
            presence: PresenceConfig::default(),
            http: HttpConfig::default(),
            web: WebConfig::default(),
            defence: Default::default(),
            edge: EdgeConfig::default(),
            trust: TrustConfig::default(),
            scripts: ScriptsConfig::default(),
            log: LogConfig::default(),
            tls: TlsConfig::default(),
            meetings: MeetingsConfig::default(),
            voice: VoiceConfig::default(),
            pool: PoolConfig::default(),
        }
    }
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 86400,
            default_expires: 3600,
            max_contacts: 16,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_lifetime: 300,
            challenge_requests: true,
            allow_rfc2069: false,
            accept_server_digest_uri: false,
            sha256: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 32 * 1024,
            tcp_idle_timeout: 180,
            tcp_max_connections: 16384,
            tcp_max_connections_per_address: 256,
            tcp_send_queue: 1024,
            max_transactions: 1_000_000,
            max_queue_delay_ms: 20,
            max_transactions_per_source: 100_000,
            max_publications_per_user: 32,
            max_publications: 200_000,
            max_subscriptions_per_user: 2_000,
            max_subscriptions: 500_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            sip_trace: false,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses TOML; an error reads `FILE:LINE:COL: message` and names the key.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    (
                        before.matches('\n').count() + 1,
                        before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
                    )
                })
                .unwrap_or((0, 0));
            match key_at(text, e.span().map(|s| s.start)) {
                Some(key) if !e.message().contains(&key) => {
                    format!("{file}:{line}:{col}: key '{key}': {}", e.message())
                }
                _ => format!("{file}:{line}:{col}: {}", e.message()),
            }
        })?;
        cfg.validate().map_err(|e| format!("{file}: {e}"))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        check_log_level(&self.log.level)?;
        if self.listen.is_empty() {
            return Err("key 'listen': at least one address is needed".into());
        }
        for l in &self.listen {
            parse_listen(l).map_err(|e| format!("key 'listen': {e}"))?;
        }
        if self.domains.is_empty() {
            return Err("key 'domains': at least one SIP domain is needed".into());
        }
        if !(1..=60).contains(&self.voice.fast_failover_secs) {
            return Err("key 'voice.fast_failover_secs': give 1 to 60 seconds".into());
        }
        for d in &self.domains {
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
            {
                return Err(format!("key 'domains': '{d}' is not a domain name"));
            }
        }
        let r = &self.registrar;
        if r.min_expires > r.max_expires
            || r.default_expires < r.min_expires
            || r.default_expires > r.max_expires
        {
            return Err(
                "section [registrar]: need min_expires <= default_expires <= max_expires".into(),
            );
        }
        let p = &self.presence;
        if p.min_expires > p.max_expires
            || p.default_expires < p.min_expires
            || p.default_expires > p.max_expires
        {
            return Err(
                "section [presence]: need min_expires <= default_expires <= max_expires".into(),
            );
        }
        if self.limits.max_message_bytes < 1024 {
            return Err("key 'limits.max_message_bytes': must be at least 1024".into());
        }
        if let Some(h) = &self.http.listen {
            h.parse::<SocketAddr>()
                .map_err(|_| format!("key 'http.listen': '{h}' is not ADDR:PORT"))?;
        }
        self.web.validate()?;
        self.pool.parsed_address()?;
        if !(10..=10_000).contains(&self.pool.poll_ms) {
            return Err("key 'pool.poll_ms': must be 10 to 10000".into());
        }
        if let Some(n) = &self.pool.name {
            if n.is_empty()
                || n.len() > 255
                || n.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err("key 'pool.name': 1 to 255 characters, no spaces".into());
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("section [tls]: 'cert' and 'key' go together".into());
        }
        if self.workers == Some(0) {
            return Err("key 'workers': must be at least 1".into());
        }
        let m = &self.meetings;
        if m.media_port_min < 1024 || m.media_port_min >= m.media_port_max {
            return Err("section [meetings]: need 1024 <= media_port_min < media_port_max".into());
        }
        if m.mixer_threads == 0 || m.mixer_threads > 64 {
            return Err("key 'meetings.mixer_threads': must be 1 to 64".into());
        }
        if m.rtp_timeout_secs == 0 || m.lobby_timeout_secs == 0 || m.max_participants == 0 {
            return Err(
                "section [meetings]: rtp_timeout_secs, lobby_timeout_secs and max_participants must be at least 1"
                    .into(),
            );
        }
        if let Some(site) = &self.site {
            // the characters of a site name in an identity (Site:<name>)
            if site.is_empty()
                || site.len() > 64
                || !site
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_. ".contains(c))
            {
                return Err(format!(
                    "key 'site': '{site}' is not a site name (letters, digits, '-', '_', '.', space)"
                ));
            }
        }
        Ok(())
    }

    /// Where this server stands for Site: and Service: documents: its site, and its pool
    /// (the first domain, the FQDN the admin shell uses in Service: scopes).
    pub fn placement(&self) -> confab_policy::Placement {
        confab_policy::Placement {
            site: self.site.clone(),
            pool: self.domains.first().cloned(),
        }
    }

    pub fn listeners(&self) -> Vec<Listen> {
        let mut out: Vec<Listen> = vec![];
        for l in &self.listen {
            for x in parse_listen(l).expect("validated") {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn networks_parse_and_match() {
        let n = Network::try_from("10.1.0.0/16".to_string()).unwrap();
        assert!(
            n.contains("10.1.200.3".parse().unwrap()) && !n.contains("10.2.0.1".parse().unwrap())
        );
        assert!(
            n.contains("::ffff:10.1.0.9".parse().unwrap()),
            "v4-mapped v6 addresses match v4 ranges"
        );
        let host = Network::try_from("127.0.0.1".to_string()).unwrap();
        assert!(
            host.contains("127.0.0.1".parse().unwrap())
                && !host.contains("127.0.0.2".parse().unwrap())
        );
        let all = Network::try_from("0.0.0.0/0".to_string()).unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6 = Network::try_from("fd00::/8".to_string()).unwrap();
        assert!(
            v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap())
        );
        assert!(Network::try_from("10.0.0.0/33".to_string())
            .unwrap_err()
            .contains("0 to 32"));
        assert!(Network::try_from("ten/8".to_string())
            .unwrap_err()
            .contains("not an address range"));
        let e = EdgeConfig {
            internal_networks: vec![n],
        };
        assert!(
            e.is_outside("192.0.2.1".parse().unwrap())
                && !e.is_outside("10.1.0.1".parse().unwrap())
        );
        assert!(
            !EdgeConfig::default().is_outside("192.0.2.1".parse().unwrap()),
            "no ranges: everything is inside"
        );
    }

    use super::*;

    #[test]
    fn errors_name_file_line_and_key() {
        let e = Config::from_toml(
            "domains = [\"a.test\"]\n\n[registrar]\nmin_expire = 5\n",
            "c.toml",
        )
        .unwrap_err();
        assert!(e.starts_with("c.toml:4:"), "{e}");
        assert!(e.contains("min_expire"), "{e}");
        let e = Config::from_toml("listen = [\"nowhere\"]\n", "c.toml").unwrap_err();
        assert!(e.contains("listen") && e.contains("nowhere"), "{e}");
        let e = Config::from_toml("[limits]\ntcp_idle_timeout = \"soon\"\n", "c.toml").unwrap_err();
        assert!(e.starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn type_errors_name_the_key_and_bad_levels_are_refused() {
        let e = Config::from_toml("[limits]\ntcp_idle_timeout = \"soon\"\n", "c.toml").unwrap_err();
        assert!(e.contains("limits.tcp_idle_timeout"), "{e}");
        let e = Config::from_toml("workers = \"two\"\n", "c.toml").unwrap_err();
        assert!(e.starts_with("c.toml:1:") && e.contains("'workers'"), "{e}");
        let e = Config::from_toml("[log]\nlevel = \"verbose\"\n", "c.toml").unwrap_err();
        assert!(
            e.contains("log.level") && e.contains("verbose") && e.contains("debug"),
            "{e}"
        );
        for ok in [
            "info",
            "WARN",
            "info,confab_server=debug",
            "confab_web=trace , warn",
            "off",
        ] {
            check_log_level(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "verbose", "confab_server", "=debug", "info,confab=loud"] {
            assert!(check_log_level(bad).is_err(), "{bad}");
        }
        assert_eq!(
            key_at("a = 1\n[web]\ninternal = 5\n", Some(20)).as_deref(),
            Some("web.internal")
        );
    }

    #[test]
    fn the_site_places_the_server() {
        let c =
            Config::from_toml("site = \"Redmond\"\ndomains = [\"a.test\"]\n", "c.toml").unwrap();
        assert_eq!(
            c.placement(),
            confab_policy::Placement {
                site: Some("Redmond".into()),
                pool: Some("a.test".into())
            }
        );
        assert_eq!(Config::default().placement().site, None);
        let e = Config::from_toml("site = \"Red:mond\"\n", "c.toml").unwrap_err();
        assert!(e.contains("'site'") && e.contains("Red:mond"), "{e}");
    }

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("127.0.0.1:5080").unwrap().len(), 2);
        let l = parse_listen("tcp:[::1]:5061").unwrap();
        assert_eq!(
            l,
            [Listen {
                transport: Transport::Tcp,
                addr: "[::1]:5061".parse().unwrap()
            }]
        );
        assert!(parse_listen("udp:localhost:5060").is_err());
        let l = parse_listen("wss:127.0.0.1:7443").unwrap();
        assert_eq!(
            l,
            [Listen {
                transport: Transport::Wss,
                addr: "127.0.0.1:7443".parse().unwrap()
            }]
        );
        assert_eq!(
            parse_listen("TLS:127.0.0.1:5061").unwrap()[0].transport,
            Transport::Tls
        );
        assert!(parse_listen("dtls:127.0.0.1:5061").is_err());
    }
}
