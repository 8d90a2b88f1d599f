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
    Web {
        server,
        internal,
        external,
        internal_http,
    }
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
    common::wait_until("signed in", common::browser::WAIT, || {
        b.current_url().ends_with("/_/meet")
    });
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

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("lyncdiscover.example.test", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap()
}

#[test]
fn each_face_serves_its_share_and_http_answers_autodiscover_or_redirects() {
    let w = web_server(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client();
        let status = |url: String| {
            let c = c.clone();
            async move { c.get(&url).send().await.unwrap().status().as_u16() }
        };
        // the REST API and the metrics: internal face only
        assert_eq!(
            status(format!(
                "https://127.0.0.1:{}/api/v1/openapi.json",
                w.internal
            ))
            .await,
            200
        );
        assert_eq!(
            status(format!(
                "https://127.0.0.1:{}/api/v1/openapi.json",
                w.external
            ))
            .await,
            404
        );
        assert_eq!(
            status(format!("https://127.0.0.1:{}/metrics", w.external)).await,
            404
        );
        assert_eq!(
            status(format!("https://127.0.0.1:{}/_/signin", w.external)).await,
            200
        );
        // administrators sign in on the internal face only
        let page = c
            .get(format!(
                "https://127.0.0.1:{}/_/signin?as=admin",
                w.external
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("SIP address") && !page.contains("Administrator name"),
            "{page}"
        );
        // plain HTTP: autodiscover by host name, everything else to https
        let r = c
            .get(format!(
                "http://lyncdiscover.example.test:{}/",
                w.internal_http
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["AccessLocation"], "Internal");
        assert!(j["Root"]["Links"][1]["href"].as_str().unwrap().starts_with(
            "https://lyncdiscover.example.test/autodiscover/autodiscoverservice.svc/root/user"
        ));
        let r = c
            .get(format!(
                "http://127.0.0.1:{}/meet/alice/ABCD2345?x=1",
                w.internal_http
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 308);
        assert_eq!(
            r.headers()["location"].to_str().unwrap(),
            "https://127.0.0.1/meet/alice/ABCD2345?x=1",
            "the original path, on https"
        );
    });
    assert!(!w.server.log_text().contains("panicked"));
}
