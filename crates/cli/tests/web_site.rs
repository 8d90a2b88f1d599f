//! The web site's listeners and pages shared by every part: HTTPS on the internal and
//! external faces, the HTTP companions, simple URL routing, autodiscover, sign-in, and the
//! browser harness (headless Chromium).

mod common;
use common::browser::Browser;
use common::{free_port, Server};

struct Web {
    server: Server,
    internal: u16,
    external: u16,
    internal_http: u16,
}

fn web_server(users: u32) -> Web {
    let (internal, external, internal_http) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let server = Server::start(
        users,
        &format!(
            "[web]\ninternal = \"127.0.0.1:{internal}\"\nexternal = \"127.0.0.1:{external}\"\ninternal_http = \"127.0.0.1:{internal_http}\"\n"
        ),
    );
    Web { server, internal, external, internal_http }
}

#[test]
fn a_user_signs_in_in_chromium_and_gets_a_strict_cookie() {
    let w = web_server(2);
    let b = Browser::start();
    b.goto(&format!("https://127.0.0.1:{}/_/signin", w.internal));
    b.fill("input[name=name]", "user0001@example.test");
    b.fill("input[name=password]", "wrong-password");
    b.click("button[type=submit]");
    b.wait_text("main", "wrong");
    b.fill("input[name=name]", "user0001@example.test");
    b.fill("input[name=password]", "pw-user0001");
    b.click("button[type=submit]");
    common::wait_until("signed in", common::browser::WAIT, || b.current_url().ends_with("/_/meet"));
    let cookies = b.cookies();
    let c = cookies
        .iter()
        .find(|c| c.name() == "__Host-confab-user")
        .expect("the session cookie");
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(format!("{:?}", c.same_site()), "Some(Strict)");
    // scripts cannot read it
    assert_eq!(b.eval("return document.cookie"), serde_json::json!(""));
}
