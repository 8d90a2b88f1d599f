//! The rules of users' dial-in PINs, in one place for the cmdlets (`Set-CsClientPin`,
//! `Get-CsClientPinInfo`), the REST API (users setting their own PIN with their SIP
//! password) and the server (which checks PINs entered on phones with
//! `Store::verify_client_pin`, taking [`max_failures`] and [`lifetime_days`] of the
//! caller's policy).
//!
//! A user's CsPinPolicy is the `Tag:` policy granted to them (Grant-CsPinPolicy), else the
//! `Site:` one, else Global, else Lync's defaults. A PIN must be digits only, at least
//! MinPasswordLength and at most 24 long; unless AllowCommonPatterns is $true it may not be
//! one digit repeated (11111), a run of consecutive digits up or down (12345, 54321), nor
//! the user's own extension or number (the whole number, or as many of its last digits as
//! the PIN has); it may not be one of the user's last PINHistoryCount PINs (the store
//! checks that against the hashes). See docs/dial-in.md.

use crate::policies::{policy_of, user_and_assignment};
use confab_policy::{DialPlan, PinPolicy};
use confab_store::{PinInfo, Store, StoreError, User, MAX_PIN_LEN};

/// What MaximumLogonAttempts 0 (Lync's "not set") means: locked after 10 failures.
pub use confab_policy::DEFAULT_PIN_MAX_FAILURES as DEFAULT_MAX_FAILURES;

/// Failed PIN sign-ins after which the PIN locks (`Store::verify_client_pin`'s
/// `max_failures`): MaximumLogonAttempts, 0 meaning [`DEFAULT_MAX_FAILURES`]. The same as
/// `PinPolicy::max_failures` (confab-policy), which the server calls.
pub fn max_failures(p: &PinPolicy) -> u32 {
    p.max_failures()
}

/// Days a PIN is valid (`Store::verify_client_pin`'s `lifetime_days`): PINLifetime, 0 for
/// never. The same as `PinPolicy::lifetime_days`.
pub fn lifetime_days(p: &PinPolicy) -> u32 {
    p.lifetime_days()
}

/// How many of the user's last PINs a new one may not repeat (PINHistoryCount).
pub fn history_count(p: &PinPolicy) -> u32 {
    u32::try_from(p.pin_history_count.max(0)).unwrap_or(0)
}

/// The shortest PIN the policy allows (MinPasswordLength, within Lync's 4..=24).
pub fn min_length(p: &PinPolicy) -> usize {
    usize::try_from(p.min_password_length)
        .unwrap_or(5)
        .clamp(confab_store::MIN_PIN_LEN, MAX_PIN_LEN)
}

/// The CsPinPolicy of the user `user_key` (`user@domain`): granted (Tag:) if it still
/// exists, else `Site:<site>`, else Global, else Lync's defaults. `NoSuchUser` for a user
/// the store does not have.
pub fn pin_policy_for(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
) -> Result<PinPolicy, StoreError> {
    let (_, a) = user_and_assignment(store, user_key)?;
    policy_of(store, a.pin_policy.as_deref(), site)
}

/// The CsDialPlan of the user `user_key`, resolved like [`pin_policy_for`].
pub fn dial_plan_for(
    store: &Store,
    user_key: &str,
    site: Option<&str>,
) -> Result<DialPlan, StoreError> {
    let (_, a) = user_and_assignment(store, user_key)?;
    policy_of(store, a.dial_plan.as_deref(), site)
}

/// Whether `pin` is a common pattern: one digit repeated, or consecutive digits going up or
/// down by one (12345, 54321).
pub fn is_common_pattern(pin: &str) -> bool {
    let b = pin.as_bytes();
    if b.len() < 2 {
        return false;
    }
    let step = |d: i8| b.windows(2).all(|w| w[1] as i8 - w[0] as i8 == d);
    step(0) || step(1) || step(-1)
}

/// Whether `pin` is the user's own extension or number (whole, or its last digits).
fn is_own_number(pin: &str, user: &User) -> bool {
    let Some(uri) = user.line_uri.as_deref() else {
        return false;
    };
    let rest = uri.strip_prefix("tel:+").unwrap_or(uri);
    let (number, ext) = match rest.split_once(";ext=") {
        Some((n, e)) => (n, Some(e)),
        None => (rest, None),
    };
    ext == Some(pin) || number == pin || number.ends_with(pin)
}

/// Checks `pin` against the policy's rules for `user` (everything but the history, which
/// needs the stored hashes). The error says which rule, naming the setting.
pub fn check_pin(policy: &PinPolicy, pin: &str, user: &User) -> Result<(), String> {
    if pin.is_empty() {
        return Err("the PIN is empty".into());
    }
    if !pin.bytes().all(|c| c.is_ascii_digit()) {
        return Err("a PIN is made of the digits 0-9 only".into());
    }
    let min = min_length(policy);
    if pin.len() < min {
        return Err(format!(
            "the PIN has {} digits; at least {min} are required (CsPinPolicy MinPasswordLength)",
            pin.len()
        ));
    }
    if pin.len() > MAX_PIN_LEN {
        return Err(format!(
            "the PIN has {} digits; at most {MAX_PIN_LEN} are allowed",
            pin.len()
        ));
    }
    if !policy.allow_common_patterns {
        if is_common_pattern(pin) {
            return Err("the PIN is a common pattern (one digit repeated, or consecutive digits such as 12345 or 54321), which CsPinPolicy AllowCommonPatterns $false refuses".into());
        }
        if is_own_number(pin, user) {
            return Err("the PIN is the user's own extension or phone number, which CsPinPolicy AllowCommonPatterns $false refuses".into());
        }
    }
    Ok(())
}

/// A random PIN that `policy` accepts for `user`, MinPasswordLength digits long (as Lync's
/// Set-CsClientPin without -Pin makes one).
pub fn generate_pin(policy: &PinPolicy, user: &User) -> String {
    use rand::Rng;
    let len = min_length(policy);
    let mut rng = rand::thread_rng();
    let mut pin = String::with_capacity(len);
    // almost every random PIN passes; the bound only guards against a policy that could
    // refuse them all
    for _ in 0..1000 {
        pin.clear();
        pin.extend((0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))));
        if check_pin(policy, &pin, user).is_ok() {
            break;
        }
    }
    pin
}

/// Sets `user_key`'s PIN under their PIN policy (resolved at `site`): `Invalid` with the
/// rule's message when refused, history included. `pin` None: a random valid PIN is made.
/// Returns the PIN set.
pub fn set_pin(
    store: &Store,
    user_key: &str,
    pin: Option<&str>,
    site: Option<&str>,
    now: i64,
) -> Result<String, StoreError> {
    let (user, a) = user_and_assignment(store, user_key)?;
    let policy: PinPolicy = policy_of(store, a.pin_policy.as_deref(), site)?;
    let pin = match pin {
        Some(p) => {
            check_pin(&policy, p, &user).map_err(StoreError::Invalid)?;
            p.to_string()
        }
        None => generate_pin(&policy, &user),
    };
    store.set_client_pin(&user.address(), &pin, history_count(&policy), now)?;
    Ok(pin)
}

/// When the user's PIN expires (unix seconds) under `policy`: never (`None`) when none is
/// set or PINLifetime is 0.
pub fn expires_at(info: &PinInfo, policy: &PinPolicy) -> Option<i64> {
    let days = lifetime_days(policy);
    match (info.last_changed, days) {
        (Some(at), d) if d > 0 => Some(at.saturating_add(i64::from(d) * 86_400)),
        _ => None,
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_store::NewUser;

    fn user(line_uri: Option<&str>) -> User {
        let s = Store::open_in_memory().unwrap();
        s.add_user(&NewUser {
            username: "alice",
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
        s.set_line_uri("alice", "a.test", line_uri).unwrap();
        s.get_user("alice", "a.test").unwrap().unwrap()
    }

    #[test]
    fn rules() {
        let p = PinPolicy::default();
        let u = user(Some("tel:+14255550100;ext=4242"));
        assert!(check_pin(&p, "73914", &u).is_ok());
        for (pin, says) in [
            ("", "empty"),
            ("12a45", "digits 0-9"),
            ("7391", "at least 5"),
            ("1234567890123456789012345", "at most 24"),
            ("77777", "common pattern"),
            ("34567", "common pattern"),
            ("98765", "common pattern"),
            ("14255550100", "own extension or phone number"),
            ("50100", "own extension or phone number"),
        ] {
            let e = check_pin(&p, pin, &u).unwrap_err();
            assert!(e.contains(says), "{pin}: {e}");
        }
        let ext = PinPolicy {
            min_password_length: 4,
            ..PinPolicy::default()
        };
        assert!(check_pin(&ext, "4242", &u)
            .unwrap_err()
            .contains("extension"));
        let lax = PinPolicy {
            allow_common_patterns: true,
            ..PinPolicy::default()
        };
        assert!(check_pin(&lax, "12345", &u).is_ok());
        assert!(check_pin(&lax, "1234", &u).is_err(), "length still counts");
        assert!(!is_common_pattern("13579") && !is_common_pattern("90123"));
    }

    #[test]
    fn generated_pins_follow_the_policy() {
        let u = user(None);
        let p = PinPolicy {
            min_password_length: 8,
            ..PinPolicy::default()
        };
        for _ in 0..50 {
            let pin = generate_pin(&p, &u);
            assert_eq!(pin.len(), 8);
            check_pin(&p, &pin, &u).unwrap();
        }
    }

    #[test]
    fn attempts_and_lifetime() {
        let mut p = PinPolicy::default();
        assert_eq!(max_failures(&p), DEFAULT_MAX_FAILURES);
        assert_eq!(lifetime_days(&p), 0);
        p.maximum_logon_attempts = 3;
        p.pin_lifetime = 30;
        assert_eq!((max_failures(&p), lifetime_days(&p)), (3, 30));
        let info = PinInfo {
            is_pin_set: true,
            last_changed: Some(1000),
            ..PinInfo::default()
        };
        assert_eq!(expires_at(&info, &p), Some(1000 + 30 * 86_400));
        assert_eq!(expires_at(&info, &PinPolicy::default()), None);
    }
}
