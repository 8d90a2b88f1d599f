//! Stage 2: who really sent the request. A local user is proven by digest (RFC 3261 §22,
//! with `qop=auth` and a `uri` that is the Request-URI); a trusted peer by the source of
//! its connection; a dialog by confab's own signed Route entry; a federated partner by the
//! route its traffic comes from. Everything else is anonymous, whatever its From says.

use super::classify::{Classified, Kind, Sender};
use super::Verdict;
use crate::core::Core;
use crate::users::{user_key, UserCred};
use confab_sip::digest::{self, Algorithm, Challenge, Credentials, NonceCheck};
use confab_sip::{HeaderName, Message, Uri};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where a request really comes from, once authenticated.
#[derive(Debug)]
pub(crate) enum Origin {
    /// A local user (`user@domain` key), proven by digest on this request (or trusted as
    /// claimed where `[auth] challenge_requests = false` says so).
    LocalUser(String),
    /// A configured trusted peer (a PSTN gateway, an application server): `[trust] peers`.
    TrustedPeer,
    /// Inside a dialog confab record-routed (its signed Route entry came back).
    Dialog,
    /// A PSTN gateway (CsPstnGateway), by the address and transport its request came on:
    /// its identity (`PstnGateway:<gateway>`). It brings calls in to our users' numbers.
    Gateway(String),
    /// A federated domain whose traffic came from that domain's route.
    Partner(String),
    /// Claims another domain but did not come from its route.
    Remote(String),
    /// No identity: the reason why.
    Anonymous(&'static str),
}

/// Outcome of checking a request's digest credentials.
pub(crate) enum AuthResult {
    Ok(Arc<UserCred>),
    /// Send this response (a challenge, 400 or 403).
    Respond(Message),
}

impl Core {
    /// Stage 2 for a request that is to be proxied or served for a user.
    pub(crate) fn authenticate_request(
        &self,
        msg: &Message,
        req: &Classified,
        src: &crate::net::Source,
        now: Instant,
    ) -> Result<Origin, Verdict> {
        if self
            .cfg
            .trust
            .is_trusted_peer(src.transport, src.remote.ip())
        {
            return Ok(Origin::TrustedPeer);
        }
        if req.kind == Kind::InDialog {
            return Ok(Origin::Dialog);
        }
        if let Some(gw) = self
            .policies
            .get()
            .voice()
            .gateway_at(src.transport, src.remote)
        {
            return Ok(Origin::Gateway(gw.identity.clone()));
        }
        match &req.sender {
            Sender::Local { key } => {
                if !self.cfg.auth.challenge_requests {
                    return Ok(Origin::LocalUser(key.clone()));
                }
                match self.authenticate(msg, false, src.remote.ip(), now) {
                    AuthResult::Ok(user) => {
                        let proven = user_key(&user.username, &user.domain);
                        if proven != *key {
                            return Err(Verdict::reply(
                                403,
                                "Authenticated user does not match From",
                            ));
                        }
                        Ok(Origin::LocalUser(proven))
                    }
                    AuthResult::Respond(r) => Err(Verdict::Respond(Box::new(r))),
                }
            }
            Sender::Foreign { domain, .. } => {
                if self
                    .policies
                    .get()
                    .is_partner_source(domain, src.remote.ip())
                {
                    Ok(Origin::Partner(domain.clone()))
                } else {
                    Ok(Origin::Remote(domain.clone()))
                }
            }
            Sender::Anonymous(why) => Ok(Origin::Anonymous(why)),
        }
    }

    /// Digest authentication (RFC 3261 §22). `register` selects 401/Authorization,
    /// otherwise 407/Proxy-Authorization.
    pub(crate) fn authenticate(
        &self,
        msg: &Message,
        register: bool,
        ip: IpAddr,
        now: Instant,
    ) -> AuthResult {
        let (hdr, status) = if register {
            (HeaderName::Authorization, 401)
        } else {
            (HeaderName::ProxyAuthorization, 407)
        };
        let method = msg.method().map(|m| m.as_str()).unwrap_or("");
        let mut stale = false;
        for value in msg.headers.get_all(&hdr) {
            if !value
                .trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
            {
                continue; // other schemes are not ours to judge (RFC 4475 regaut01)
            }
            let creds = match Credentials::parse(value) {
                Ok(c) => c,
                Err(e) => {
                    return AuthResult::Respond(self.error_response(
                        msg,
                        400,
                        &format!("Bad credentials: {e}"),
                    ))
                }
            };
            if !self.is_our_domain(&creds.realm) {
                continue;
            }
            // `user@domain` (desk phones, Lync) and `user@` (sipsak) name the same user when
            // the domain is ours or empty; the HA1 is then over that whole name.
            let (name, form) = match creds.username.split_once('@') {
                None => (&*creds.username, NameForm::User),
                Some((u, "")) => (u, NameForm::UserAt),
                Some((u, d)) if d.eq_ignore_ascii_case(&creds.realm) => (u, NameForm::UserAtDomain),
                Some(_) => {
                    return AuthResult::Respond(self.error_response(
                        msg,
                        403,
                        "Digest user name names another domain than the realm",
                    ))
                }
            };
            let who = user_key(name, &creds.realm);
            if let Err(refusal) = self.defence.auth_gate(&who, ip, now) {
                let mut r = self.error_response(msg, 403, &refusal.reason);
                let secs = refusal.retry_after.as_secs() + 1;
                r.headers.push(HeaderName::RetryAfter, secs.to_string());
                return AuthResult::Respond(r);
            }
            if creds.qop.is_none() && !self.cfg.auth.allow_rfc2069 {
                tracing::info!(user = %who, %ip, "digest response without qop refused");
                return AuthResult::Respond(self.error_response(
                    msg,
                    403,
                    "Digest responses without qop=auth are not accepted",
                ));
            }
            let uri_ok =
                digest_uri_matches(&creds.uri, msg.uri().map(|u| u.as_str()).unwrap_or(""))
                    || (self.cfg.auth.accept_server_digest_uri && self.names_us(&creds.uri));
            if !uri_ok {
                tracing::info!(user = %who, %ip, uri = %creds.uri, "digest uri is not the Request-URI");
                return AuthResult::Respond(self.error_response(
                    msg,
                    400,
                    "Digest uri does not match the Request-URI",
                ));
            }
            let Some(user) = self.users.get(name, &creds.realm) else {
                tracing::info!(user = %creds.username, realm = %creds.realm, %ip, "authentication failed: unknown user");
                self.defence.auth_failed(&who, ip, now);
                break;
            };
            let alg = creds.algorithm_or_default();
            let ha1 = match (alg, form) {
                (Algorithm::Md5, NameForm::User) => &user.ha1_md5,
                (Algorithm::Sha256, NameForm::User) => &user.ha1_sha256,
                (Algorithm::Md5, NameForm::UserAtDomain) => &user.ha1_md5_at_domain,
                (Algorithm::Md5, NameForm::UserAt) => &user.ha1_md5_at,
                (Algorithm::Sha256, _) => {
                    return AuthResult::Respond(self.error_response(
                        msg,
                        403,
                        "SHA-256 digest is offered only for the plain user name",
                    ))
                }
            };
            if ha1.is_empty() {
                tracing::warn!(user = %who, %ip, "client signs in as {} but no HA1 for that form is stored yet: set the user's password again", creds.username);
                return AuthResult::Respond(self.error_response(
                    msg,
                    403,
                    "No credentials for this form of the user name; ask the administrator to set the password again",
                ));
            }
            if !digest::verify(&creds, method, ha1) {
                tracing::info!(user = %creds.username, %ip, "authentication failed: wrong password");
                self.defence.auth_failed(&who, ip, now);
                break;
            }
            match self
                .nonces
                .check(&creds.nonce, creds.nc, self.wall.unix_at(now))
            {
                NonceCheck::Valid => {}
                NonceCheck::Stale => {
                    stale = true;
                    break;
                }
                NonceCheck::Invalid | NonceCheck::Replay => break,
            }
            if !user.enabled {
                return AuthResult::Respond(self.error_response(msg, 403, "Account disabled"));
            }
            self.defence.auth_succeeded(&who, ip, now);
            // A remote user (outside the internal networks) signs in through the Edge.
            if self.cfg.edge.is_outside(ip) {
                if let Err(r) = self.policies.get().check_remote_access(&who) {
                    tracing::info!(user = %who, %ip, "remote access refused: {}", r.reason);
                    return AuthResult::Respond(self.error_response(msg, r.status, &r.reason));
                }
            }
            return AuthResult::Ok(user);
        }
        AuthResult::Respond(self.challenge(msg, status, stale, now))
    }

    /// Whether a URI names this server itself (an address or domain of ours, no user).
    fn names_us(&self, uri: &str) -> bool {
        Uri::parse(uri).is_ok_and(|u| {
            u.user.is_none() && (self.is_us(u.host, u.port) || self.is_our_domain(u.host))
        })
    }

    fn challenge(&self, msg: &Message, status: u16, stale: bool, now: Instant) -> Message {
        let mut resp = self.error_response(msg, status, confab_sip::message::reason_phrase(status));
        let realm = msg
            .from_hdr()
            .map(|f| f.uri().host.to_ascii_lowercase())
            .filter(|h| self.is_our_domain(h))
            .unwrap_or_else(|| self.default_domain().to_string());
        let name = if status == 401 {
            HeaderName::WwwAuthenticate
        } else {
            HeaderName::ProxyAuthenticate
        };
        let nonce = self.nonces.issue(self.wall.unix_at(now));
        let mut algs = vec![Algorithm::Md5];
        if self.cfg.auth.sha256 {
            algs.push(Algorithm::Sha256);
        }
        for algorithm in algs {
            let c = Challenge {
                realm: realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            };
            resp.headers.push(name.clone(), c.to_header_value());
        }
        resp
    }
}

/// Which user name a digest response was computed over.
#[derive(Clone, Copy)]
enum NameForm {
    User,
    UserAtDomain,
    UserAt,
}

/// RFC 3261 §22.4 / RFC 2617 §3.2.2.5: the digest `uri` must be the Request-URI. Compared as
/// URIs (scheme, user, host and port; host case-insensitively), so a client that writes the
/// same URI with other parameters or escaping is not refused, but one that replays a response
/// made for another target is.
fn digest_uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    match (Uri::parse(digest_uri), Uri::parse(request_uri)) {
        (Ok(a), Ok(b)) => {
            a.scheme == b.scheme
                && a.user == b.user
                && a.host.eq_ignore_ascii_case(b.host)
                && a.port.unwrap_or(5060) == b.port.unwrap_or(5060)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::digest_uri_matches;

    #[test]
    fn digest_uri_is_the_request_uri() {
        assert!(digest_uri_matches("sip:example.test", "sip:example.test"));
        assert!(digest_uri_matches(
            "sip:bob@EXAMPLE.test;transport=tcp",
            "sip:bob@example.test"
        ));
        assert!(digest_uri_matches(
            "sip:bob@example.test:5060",
            "sip:bob@example.test"
        ));
        assert!(!digest_uri_matches(
            "sip:carol@example.test",
            "sip:bob@example.test"
        ));
        assert!(!digest_uri_matches(
            "sip:bob@other.test",
            "sip:bob@example.test"
        ));
        assert!(!digest_uri_matches(
            "sip:bob@example.test:5070",
            "sip:bob@example.test"
        ));
        assert!(!digest_uri_matches("garbage", "sip:bob@example.test"));
    }
}
