//! Where a call to a phone number goes (Lync §4): the number the caller's dial plan makes of
//! what was dialled, and — when no user has that number — the ways out to the PSTN in the
//! order they are tried: the caller's voice policy's usages in order, for each the matching
//! routes by Priority, for each route its gateways starting at a rotating offset (round
//! robin), each gateway once, the number as that gateway's trunk writes it, and the caller
//! ID the route asks for. The server's live routing and the Test- cmdlets share this.

use crate::route::{candidates, Route};

/// What the gateway is told about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerId {
    /// The caller's own identity (their LineURI number when they have one).
    Keep,
    /// SuppressCallerId without an AlternateCallerId: anonymous (RFC 3323 Privacy: id).
    Suppress,
    /// SuppressCallerId with an AlternateCallerId: this number instead.
    Replace(String),
}

/// One way out to the PSTN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// The gateway's identity as routes name it (`PstnGateway:<gateway>`, lower case).
    pub gateway: String,
    /// The number as the gateway's trunk writes it (outbound translation applied).
    pub number: String,
    pub usage: String,
    pub route: String,
    pub caller_id: CallerId,
}

/// The ways out for `number` (already normalised), in failover order. `rotate` spreads calls
/// over a route's gateways (pass a counter that moves per call); `translate(gateway, number)`
/// applies that gateway's trunk outbound translation rules. Empty: no usage of the policy
/// has a route that matches.
pub fn pstn_legs(
    usages: &[String],
    routes: &[Route],
    number: &str,
    rotate: usize,
    translate: impl Fn(&str, &str) -> String,
) -> Vec<Leg> {
    let mut legs: Vec<Leg> = Vec::new();
    for c in candidates(usages, routes, number) {
        let gws = &c.route.gateways;
        if gws.is_empty() {
            continue;
        }
        let start = rotate % gws.len();
        for i in 0..gws.len() {
            let gw = &gws[(start + i) % gws.len()];
            if legs.iter().any(|l| l.gateway.eq_ignore_ascii_case(gw)) {
                continue; // each gateway once: one that failed is not asked again
            }
            let caller_id = match (
                c.route.suppress_caller_id,
                c.route.alternate_caller_id.trim(),
            ) {
                (false, _) => CallerId::Keep,
                (true, "") => CallerId::Suppress,
                (true, alt) => CallerId::Replace(alt.to_string()),
            };
            legs.push(Leg {
                gateway: gw.clone(),
                number: translate(gw, number),
                usage: c.usage.to_string(),
                route: c.route.name.clone(),
                caller_id,
            });
        }
    }
    legs
}

/// What a user dialled, from the user part of a `tel:` or `sip:` URI: `+`, digits, `*`, `#`,
/// with RFC 3966's visual separators (`-`, `.`, `(`, `)`) dropped and an `;ext=` kept.
/// None when it is not a number (a name, or nothing left).
pub fn dialed_number(user: &str) -> Option<String> {
    let (main, params) = match user.split_once(';') {
        Some((m, p)) => (m, Some(p)),
        None => (user, None),
    };
    let mut out = String::with_capacity(main.len());
    for (i, c) in main.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' | '*' | '#' => out.push(c),
            '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if out.trim_start_matches('+').is_empty() || out.len() > 32 {
        return None;
    }
    // ;ext= survives (tel:+14255550100;ext=100); other parameters (phone-context) do not
    if let Some(ext) = params.and_then(|p| {
        p.split(';').find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| k.eq_ignore_ascii_case("ext"))
                .map(|(_, v)| v)
        })
    }) {
        if ext.is_empty() || ext.len() > 20 || !ext.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        out.push_str(";ext=");
        out.push_str(ext);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, pattern: &str, usage: &str, gws: &[&str], priority: i64) -> Route {
        Route {
            name: name.into(),
            number_pattern: pattern.into(),
            pstn_usages: vec![usage.into()],
            gateways: gws.iter().map(|s| s.to_string()).collect(),
            priority,
            ..Route::default()
        }
    }

    #[test]
    fn legs_follow_usages_priorities_and_rotate_gateways() {
        let routes = vec![
            route(
                "Intl",
                r"^\+(?!1)\d+$",
                "International",
                &["PstnGateway:c"],
                0,
            ),
            route("Local2", r"^\+1\d{10}$", "Local", &["PstnGateway:b"], 2),
            route(
                "Local1",
                r"^\+1\d{10}$",
                "Local",
                &["PstnGateway:a", "PstnGateway:b"],
                1,
            ),
        ];
        let usages = vec!["Local".to_string(), "International".to_string()];
        let plus = |_: &str, n: &str| n.trim_start_matches('+').to_string();
        let legs = pstn_legs(&usages, &routes, "+14255550100", 0, plus);
        let gws: Vec<_> = legs
            .iter()
            .map(|l| (l.route.as_str(), l.gateway.as_str()))
            .collect();
        // Local1 by Priority first (a then b), Local2's b already asked
        assert_eq!(
            gws,
            [("Local1", "PstnGateway:a"), ("Local1", "PstnGateway:b")]
        );
        assert_eq!(legs[0].number, "14255550100");
        let next = pstn_legs(&usages, &routes, "+14255550100", 1, plus);
        assert_eq!(
            next[0].gateway, "PstnGateway:b",
            "the next call starts at the next gateway"
        );
        let intl = pstn_legs(&usages, &routes, "+441234567", 0, plus);
        assert_eq!(intl.len(), 1);
        assert_eq!(intl[0].usage, "International");
        assert!(pstn_legs(&usages[..1], &routes, "+441234567", 0, plus).is_empty());
    }

    #[test]
    fn caller_id_per_route() {
        let mut r = route("R", r"^\+", "U", &["g"], 0);
        r.suppress_caller_id = true;
        let u = vec!["U".to_string()];
        let id = |r: &Route| {
            pstn_legs(&u, std::slice::from_ref(r), "+1", 0, |_, n| n.into())[0]
                .caller_id
                .clone()
        };
        assert_eq!(id(&r), CallerId::Suppress);
        r.alternate_caller_id = "+14255550000".into();
        assert_eq!(id(&r), CallerId::Replace("+14255550000".into()));
        r.suppress_caller_id = false;
        assert_eq!(id(&r), CallerId::Keep);
    }

    #[test]
    fn dialled_numbers() {
        assert_eq!(dialed_number("+1-425-555-0100").unwrap(), "+14255550100");
        assert_eq!(dialed_number("(425)555.0100").unwrap(), "4255550100");
        assert_eq!(
            dialed_number("+14255550100;ext=100").unwrap(),
            "+14255550100;ext=100"
        );
        assert_eq!(
            dialed_number("2000;phone-context=example.test").unwrap(),
            "2000"
        );
        assert_eq!(dialed_number("*86#").unwrap(), "*86#");
        for bad in ["alice", "", "+", "1+2", "12a", "+1;ext=x", &"1".repeat(40)] {
            assert!(dialed_number(bad).is_none(), "{bad}");
        }
    }
}
