//! Enabling users and setting their passwords.
//!
//! - `Enable-CsUser` with Lync's parameters where they fit. In Lync it gives an Active
//!   Directory user a SIP address and a registrar pool; in confab a user exists in its
//!   directory already (`New-CsUser`), with one address (`user@domain`) that does not change.
//!   So -RegistrarPool must name a pool `Get-CsPool` lists (every front end of the store
//!   serves every user: the pool is checked, not recorded), and -SipAddress,
//!   -SipAddressType and -SipDomain must agree with the user's address: confab does not
//!   rename users. Everything is checked before the first user changes; then the user may
//!   sign in (`Disable-CsUser` stops that).
//! - confab's `Set-CsUserPassword`: Lync leaves passwords to Active Directory; confab's
//!   directory keeps the SIP password, set here by an administrator (the user's web
//!   sessions end, the old password stops working at once). Audited with the password
//!   redacted.

use super::*;

/// Lync's -SipAddressType values.
const SIP_ADDRESS_TYPES: &[&str] = &[
    "FirstLastName",
    "EmailAddress",
    "UserPrincipalName",
    "SAMAccountName",
    "None",
];

pub(super) fn cmdlets() -> Vec<FixedCmdlet> {
    vec![
        (
            "Enable-CsUser",
            &[
                "Identity",
                "RegistrarPool",
                "SipAddress",
                "SipAddressType",
                "SipDomain",
            ],
            &["Identity"],
            true,
            true,
            "Allows a user to sign in. confab's users exist in its directory already (New-CsUser) with an address that does not change: -RegistrarPool, -SipAddress, -SipAddressType and -SipDomain are checked (a pool Get-CsPool lists; the user's own address) but not acted on.",
            enable_user,
        ),
        (
            "Set-CsUserPassword",
            &["Identity", "Password"],
            &["Identity", "Password"],
            false,
            true,
            "confab's: sets a user's SIP password (Lync leaves passwords to Active Directory; confab's directory keeps them). The user's web sessions end and the old password stops working at once; the audit log never shows the password.",
            set_user_password,
        ),
    ]
}

/// A SIP address without its scheme, lower case.
fn bare_address(a: &str) -> String {
    let a = a.trim();
    crate::schema::strip_ci(a, "sip:")
        .unwrap_or(a)
        .to_ascii_lowercase()
}

fn enable_user(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    // every parameter and every target is checked before the first user changes
    if let Some(pool) = text_arg(b, s, "RegistrarPool")? {
        let pools = super::pool::pools_of(&super::pool::front_ends(b, s)?);
        if !pools.iter().any(|p| p.eq_ignore_ascii_case(pool.trim())) {
            let known = if pools.is_empty() {
                "none: no front end has started on this store yet".to_string()
            } else {
                pools.join(", ")
            };
            return Err(bad(
                b,
                "RegistrarPool",
                format!(
                    "'{pool}' is not a pool of this deployment (Get-CsPool lists them: {known})"
                ),
            ));
        }
    }
    let address = text_arg(b, s, "SipAddress")?;
    if let Some(a) = &address {
        let t = a.trim();
        if crate::schema::strip_ci(t, "sip:").is_none() || !t.contains('@') {
            return Err(bad(
                b,
                "SipAddress",
                format!("'{a}' is not a SIP address such as sip:alice@example.test"),
            ));
        }
    }
    let kind = match text_arg(b, s, "SipAddressType")? {
        None => None,
        Some(t) => Some(
            SIP_ADDRESS_TYPES
                .iter()
                .copied()
                .find(|k| k.eq_ignore_ascii_case(t.trim()))
                .ok_or_else(|| {
                    bad(
                        b,
                        "SipAddressType",
                        format!("'{t}' is not one of {}", SIP_ADDRESS_TYPES.join(", ")),
                    )
                })?,
        ),
    };
    match kind {
        Some("FirstLastName") => {
            return Err(bad(
                b,
                "SipAddressType",
                "confab's directory has no first and last names: a user's address is the user@domain New-CsUser gave; use SAMAccountName, EmailAddress or UserPrincipalName (which name that address), or leave it out",
            ))
        }
        Some("None") if address.is_none() => {
            return Err(bad(
                b,
                "SipAddressType",
                "None means the address is given by -SipAddress, which is missing",
            ))
        }
        _ => {}
    }
    let domain = text_arg(b, s, "SipDomain")?;
    let targets = super::forwarding::users(b, s, input)?;
    if address.is_some() && targets.len() > 1 {
        return Err(bad(
            b,
            "SipAddress",
            "a SIP address belongs to one user; enable one user at a time with it",
        ));
    }
    for u in &targets {
        let own = u.address().to_ascii_lowercase();
        if let Some(a) = &address {
            if bare_address(a) != own {
                return Err(bad(
                    b,
                    "SipAddress",
                    format!("'{a}' is not the address of sip:{} (confab does not rename users: New-CsUser with the new address, then Remove-CsUser the old one)", u.address()),
                ));
            }
        }
        if let Some(d) = &domain {
            if !d.trim().eq_ignore_ascii_case(&u.domain) {
                return Err(bad(
                    b,
                    "SipDomain",
                    format!(
                        "'{d}' is not the domain of sip:{} (confab does not rename users)",
                        u.address()
                    ),
                ));
            }
        }
    }
    for u in &targets {
        s.store
            .set_enabled(&u.username, &u.domain, true)
            .map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}

fn set_user_password(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let password =
        text_arg(b, s, "Password")?.ok_or_else(|| bad(b, "Password", "a password is needed"))?;
    confab_store::validate_password(&password).map_err(|e| bad(b, "Password", store_message(e)))?;
    // the user is found and checked against the caller's user scopes before anything changes
    for (u, d) in user_targets(b, s, input)? {
        s.store
            .set_password(&u, &d, &password)
            .map_err(|e| store_err(b, e))?;
    }
    Ok(vec![])
}
