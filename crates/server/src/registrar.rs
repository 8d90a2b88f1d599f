//! The registrar (RFC 3261 §10.3): binds contacts to an address of record after digest
//! authentication (401). Several contacts per AoR, q-values, per-contact and header
//! Expires, min/max expiry (423), `Contact: *` removal, RFC 5626 instance/reg-id and flows.

use crate::core::{behind_nat, random_token, AuthResult, Core, Shard, SERVER_NAME};
use crate::location::Binding;
use crate::net::{Outgoing, Source};
use crate::users::user_key;
use confab_sip::message::parse_delta_seconds;
use confab_sip::values::NameAddr;
use confab_sip::{response_to, HeaderName, Message, Scheme};
use std::time::{Duration, Instant, SystemTime};

/// A Contact of a REGISTER, validated.
struct ContactReq {
    uri: String,
    expires: u32,
    q: u16,
    instance: Option<String>,
    reg_id: Option<u32>,
}

fn parse_q(v: &str) -> Option<u16> {
    let f: f32 = v.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&f)
        .then(|| (f * 1000.0).round() as u16)
}

/// RFC 1123 date for the Date header of a 200 to REGISTER (clients sync clocks from it).
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    confab_sip::message::UtcTime::from_unix(secs as i64).rfc1123()
}

impl Core {
    pub(crate) fn handle_register(
        &self,
        shard: &mut Shard,
        key: &str,
        msg: &Message,
        src: &Source,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        let user = match self.authenticate(msg, true, src.remote.ip(), now) {
            AuthResult::Ok(u) => u,
            AuthResult::Respond(r) => return self.respond(shard, key, r, now, out),
        };
        let aor = user_key(&user.username, &user.domain);
        let before = self.location.has_bindings(&aor, now);
        let resp = self.register(msg, src, &user, now);
        if resp.status() == Some(200) {
            let after = self.location.has_bindings(&aor, now);
            if before != after {
                if !after {
                    let gone = self.presence.drop_publications(&aor);
                    if !gone.is_empty() {
                        tracing::info!(%aor, "signed out on every device: publications removed");
                    }
                    for id in gone {
                        self.share_publication(&aor, id, "", None, now);
                    }
                }
                // presence from the registrar's knowledge changed (available / offline)
                shard
                    .jobs
                    .push(crate::core::Job::NotifyWatchers(aor.clone()));
            }
            if after && self.offline_pending.lock().contains(&aor) {
                shard.jobs.push(crate::core::Job::DeliverOffline(aor));
            }
        }
        self.respond(shard, key, resp, now, out);
    }

    fn register(
        &self,
        msg: &Message,
        src: &Source,
        user: &crate::users::UserCred,
        now: Instant,
    ) -> Message {
        let err = |status: u16, reason: &str| self.error_response(msg, status, reason);
        let to = msg.to_hdr().expect("validated");
        let to_uri = to.uri();
        if !matches!(to_uri.scheme, Scheme::Sip | Scheme::Sips) {
            return err(400, "Address of record must be a SIP URI");
        }
        if !(self.is_our_domain(to_uri.host) || self.is_us(to_uri.host, to_uri.port)) {
            return err(403, "Domain not served here");
        }
        if !to_uri
            .user
            .is_some_and(|u| u.eq_ignore_ascii_case(&user.username))
        {
            return err(403, "Authenticated user does not match To");
        }
        let aor = user_key(&user.username, &user.domain);
        let call_id = msg.call_id().map(|c| c.to_string()).unwrap_or_default();
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = msg.expires();
        let reg = &self.cfg.registrar;

        let contact_values: Vec<&str> = msg
            .headers
            .get_all(&HeaderName::Contact)
            .map(|v| v.as_str())
            .collect();
        if contact_values.iter().any(|c| c.trim() == "*") {
            if contact_values.len() != 1 || header_expires != Some(0) {
                return err(400, "Contact: * needs Expires: 0 and no other Contact");
            }
            let removed = self.location.update(&aor, |list| {
                if list.iter().any(|b| b.call_id == call_id && cseq <= b.cseq) {
                    return None;
                }
                let keys: Vec<(String, Option<Binding>)> =
                    list.drain(..).map(|b| (b.key(), None)).collect();
                Some(keys)
            });
            let Some(removed) = removed else {
                return err(400, "CSeq not higher than the registration's");
            };
            self.share_bindings(&aor, removed, src);
            return self.registered_ok(msg, &aor, now);
        }

        let mut reqs = Vec::with_capacity(contact_values.len());
        let mut too_brief = false;
        for v in &contact_values {
            let Ok(na) = NameAddr::parse(v) else {
                return err(400, "Malformed Contact");
            };
            let uri = na.uri();
            if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) {
                return err(400, "Contact must be a SIP URI");
            }
            let expires = match na.param("expires") {
                Some(e) => match parse_delta_seconds(e) {
                    Some(e) => e,
                    None => return err(400, "Malformed expires parameter in Contact"),
                },
                None => header_expires.unwrap_or(reg.default_expires),
            };
            if expires != 0 && expires < reg.min_expires {
                too_brief = true;
            }
            let q = match na.param("q") {
                Some(q) => match parse_q(q) {
                    Some(q) => q,
                    None => return err(400, "Malformed q-value in Contact"),
                },
                None => 1000,
            };
            let reg_id = match na.param("reg-id") {
                Some(r) => match r.parse::<u32>() {
                    Ok(r) => Some(r),
                    Err(_) => return err(400, "Malformed reg-id in Contact"),
                },
                None => None,
            };
            // +sip.instance is a quoted <urn:…> (RFC 5626); anything else could not be
            // listed back in our 200 OK
            let instance = match na.param("+sip.instance") {
                None => None,
                Some(v) => match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    Some(inner)
                        if !inner.is_empty()
                            && !inner.contains(['"', '\\', ',', ';'])
                            && !inner.chars().any(char::is_control) =>
                    {
                        Some(inner.to_string())
                    }
                    _ => return err(400, "Malformed +sip.instance in Contact"),
                },
            };
            reqs.push(ContactReq {
                uri: na.uri_str.to_string(),
                expires: expires.min(reg.max_expires),
                q,
                instance,
                reg_id,
            });
        }
        if too_brief {
            let mut r = err(423, "Interval Too Brief");
            r.headers
                .push(HeaderName::MinExpires, reg.min_expires.to_string());
            return r;
        }

        // Use the flow the REGISTER came on when the contact can't be reached directly:
        // the client is behind NAT, asked for outbound (reg-id), or gave a host name.
        let via = msg.top_via().expect("validated");
        let nat = behind_nat(&via, src);
        let paths: Vec<String> = msg
            .headers
            .get_all(&HeaderName::Path)
            .map(|p| p.to_string())
            .collect();
        let user_agent = msg.header(&HeaderName::UserAgent).map(|u| u.to_string());

        let outcome = self.location.update(&aor, |list| {
            list.retain(|b| b.expires_at > now);
            // a request's binding changes are made all together or not at all (§10.3): with
            // several contacts, work on a copy and keep it only if every one succeeded
            let mut staged = (reqs.len() > 1).then(|| list.clone());
            // what the pool's shared location is told (nothing without a pool)
            let share = self.pool.is_some();
            let mut changes: Vec<(String, Option<Binding>)> = vec![];
            let work: &mut Vec<Binding> = match staged.as_mut() {
                Some(copy) => copy,
                None => &mut *list,
            };
            for c in &reqs {
                let host_is_ip = confab_sip::Uri::parse(&c.uri)
                    .is_ok_and(|u| u.host_unbracketed().parse::<std::net::IpAddr>().is_ok());
                let flow = (nat || c.reg_id.is_some() || !host_is_ip).then(|| src.flow());
                let binding = Binding {
                    uri: c.uri.clone(),
                    q: c.q,
                    expires_at: now + Duration::from_secs(c.expires as u64),
                    call_id: call_id.clone(),
                    cseq,
                    instance: c.instance.clone(),
                    reg_id: c.reg_id,
                    flow,
                    path: paths.clone(),
                    user_agent: user_agent.clone(),
                    owner: None,
                };
                match work.iter().position(|b| b.same_as(&binding)) {
                    Some(i) => {
                        if work[i].call_id == call_id && cseq <= work[i].cseq {
                            return Err((400, "CSeq not higher than the registration's"));
                        }
                        if c.expires == 0 {
                            let gone = work.remove(i);
                            if share {
                                changes.push((gone.key(), None));
                            }
                        } else {
                            let old = std::mem::replace(&mut work[i], binding);
                            if share {
                                let new_key = work[i].key();
                                if old.key() != new_key {
                                    changes.push((old.key(), None));
                                }
                                changes.push((new_key, Some(work[i].clone())));
                            }
                        }
                    }
                    None if c.expires == 0 => {}
                    None => {
                        if work.len() >= self.cfg.registrar.max_contacts {
                            return Err((403, "Too many contacts for this address"));
                        }
                        if share {
                            changes.push((binding.key(), Some(binding.clone())));
                        }
                        work.push(binding);
                    }
                }
            }
            if let Some(copy) = staged {
                *list = copy;
            }
            Ok(changes)
        });
        let changes = match outcome {
            Ok(changes) => changes,
            Err((status, reason)) => return err(status, reason),
        };
        if self.pool.is_some() {
            self.share_bindings(&aor, changes, src);
        }
        if let Some(conn) = src.conn {
            if let Some(max) = reqs.iter().map(|c| c.expires).max().filter(|e| *e > 0) {
                let until = now + Duration::from_secs(max as u64);
                let mut pins = self.pinned.lock();
                let e = pins.entry(conn).or_insert(until);
                *e = (*e).max(until);
            }
        }
        let mut resp = self.registered_ok(msg, &aor, now);
        if msg
            .headers
            .get_all(&HeaderName::Supported)
            .any(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("path")))
        {
            for p in &paths {
                resp.headers.push(HeaderName::Path, p.clone());
            }
        }
        resp
    }

    /// 200 OK listing every current binding with its remaining time (§10.3 step 8).
    fn registered_ok(&self, msg: &Message, aor: &str, now: Instant) -> Message {
        let mut resp = response_to(msg, 200, None, Some(&random_token(10)));
        for b in self.location.lookup(aor, now) {
            let left = b.expires_at.saturating_duration_since(now).as_secs().max(1);
            let mut v = format!("<{}>;expires={left}", b.uri);
            if b.q != 1000 {
                v.push_str(&format!(";q={}.{:03}", b.q / 1000, b.q % 1000));
            }
            if let Some(i) = &b.instance {
                v.push_str(&format!(";+sip.instance=\"{i}\""));
            }
            if let Some(r) = b.reg_id {
                v.push_str(&format!(";reg-id={r}"));
            }
            resp.headers.push(HeaderName::Contact, v);
        }
        resp.headers
            .push(HeaderName::Date, http_date(self.wall.system_time_at(now)));
        resp.headers.push(HeaderName::Server, SERVER_NAME);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc1123() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(http_date(t), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("x"), None);
    }
}
