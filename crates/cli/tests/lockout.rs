//! Sign-in lockouts end to end (a real `confab serve` on loopback, UDP clients on several
//! loopback addresses): a client retrying a stale password is not a guesser, guessing across
//! accounts locks the address but not the users who signed in from there, and guessing one
//! account locks that account with a 403 that names the lock and its end.

mod common;
use common::*;
use confab_sip::{HeaderName, Message};
use std::time::{Duration, Instant};

const CONFIG: &str = "[defence]\nmax_auth_failures_per_user = 3\nmax_auth_failures_per_address = 3\nauth_retry_secs = 2\nlockout_secs = 30\n";

fn reason(r: &Message) -> String {
    r.reason().map(|t| t.to_string()).unwrap_or_default()
}

fn retry_after(r: &Message) -> u64 {
    r.header(&HeaderName::RetryAfter)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {}", first_line(r)))
}

fn with_password(ip: &str, user: &str, password: &str, s: &Server) -> Ua {
    let mut ua = Ua::udp_on(ip, user, s.addr());
    ua.password = password.into();
    ua
}

#[test]
fn a_client_retrying_a_stale_password_locks_neither_the_account_nor_the_address() {
    let s = Server::start(5, CONFIG);
    // like baresip with an old password: it answers every fresh challenge at once, and is
    // started twice
    let mut stale = with_password("127.0.0.2", "user0001", "old", &s);
    let mut answers = vec![];
    for _ in 0..2 {
        for _ in 0..10 {
            answers.push(stale.register(300));
        }
    }
    assert_eq!(
        answers[0].status(),
        Some(401),
        "the first try is checked and fails"
    );
    // the rest come within the back-off (2 s, then 4 s): refused unchecked and uncounted
    // (a slow machine may let one more be checked, never enough to lock the account)
    let checked = answers.iter().filter(|r| r.status() == Some(401)).count();
    assert!(checked <= 2, "{checked} tries checked");
    for r in answers.iter().filter(|r| r.status() != Some(401)) {
        assert_eq!(r.status(), Some(403), "{}", first_line(r));
        assert!(
            reason(r).contains("user0001@example.test") && reason(r).contains("not checked again"),
            "{}",
            first_line(r)
        );
        assert!(retry_after(r) <= 5);
    }
    // neither the account nor the address is locked: the owner signs in elsewhere, and a
    // colleague behind the same address signs in
    let mut owner = Ua::udp_on("127.0.0.3", "user0001", s.addr());
    let r = owner.register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let mut colleague = Ua::udp_on("127.0.0.2", "user0002", s.addr());
    let r = colleague.register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    // once the password is fixed, the stale client signs in when its back-off is over
    stale.password = "pw-user0001".into();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = stale.register(300);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused: {}",
            first_line(&r)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !s.log_text().contains("password guessing"),
        "nothing was locked"
    );
}

#[test]
fn guessing_across_accounts_locks_the_address_but_not_a_user_who_signed_in_from_there() {
    let s = Server::start(6, CONFIG);
    let mut known = Ua::udp_on("127.0.0.4", "user0000", s.addr());
    assert_eq!(known.register(300).status(), Some(200));
    for u in ["user0001", "user0002", "user0003"] {
        let r = with_password("127.0.0.4", u, "guess", &s).register(300);
        assert_eq!(r.status(), Some(401), "{u}: {}", first_line(&r));
    }
    let r = Ua::udp_on("127.0.0.4", "user0005", s.addr()).register(300);
    assert_eq!(r.status(), Some(403), "{}", first_line(&r));
    assert!(
        reason(&r).contains("Address 127.0.0.4 is locked") && reason(&r).contains("until"),
        "{}",
        first_line(&r)
    );
    assert!(retry_after(&r) >= 29);
    assert!(s.log_text().contains("password guessing: address locked"));
    // the user who signed in from there before still signs in from there
    let r = known.register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    // and the others sign in from elsewhere
    let r = Ua::udp_on("127.0.0.5", "user0005", s.addr()).register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
}

#[test]
fn guessing_one_account_locks_it_with_a_403_naming_the_lock_and_its_end() {
    let s = Server::start(5, CONFIG);
    let mut owner = Ua::udp_on("127.0.0.6", "user0004", s.addr());
    assert_eq!(owner.register(300).status(), Some(200));
    // a guesser of user0004 spreading over addresses: each address's first try counts
    for ip in ["127.0.0.7", "127.0.0.8", "127.0.0.9"] {
        let r = with_password(ip, "user0004", "guess", &s).register(300);
        assert_eq!(r.status(), Some(401), "{ip}: {}", first_line(&r));
    }
    for ip in ["127.0.0.10", "127.0.0.7"] {
        let r = with_password(ip, "user0004", "guess-again", &s).register(300);
        assert_eq!(r.status(), Some(403), "{}", first_line(&r));
        let why = reason(&r);
        assert!(
            why.contains("Account user0004@example.test is locked") || ip == "127.0.0.7",
            "{why}"
        );
        assert!(why.contains("until") && why.ends_with("UTC"), "{why}");
        assert!(retry_after(&r) >= 2);
    }
    let r = Ua::udp_on("127.0.0.10", "user0004", s.addr()).register(300);
    assert!(
        r.status() == Some(403) && reason(&r).contains("Account user0004@example.test is locked"),
        "the right password from a new address waits too: {}",
        first_line(&r)
    );
    assert!((29..=31).contains(&retry_after(&r)), "{}", retry_after(&r));
    assert!(s.log_text().contains("password guessing: account locked"));
    // the owner, from the address it signed in from, is not locked out; other accounts
    // are not either
    let r = owner.register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
    let r = Ua::udp_on("127.0.0.10", "user0001", s.addr()).register(300);
    assert_eq!(r.status(), Some(200), "{}", first_line(&r));
}
