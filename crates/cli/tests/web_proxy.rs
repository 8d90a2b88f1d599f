//! The reverse-proxy recipe (docs/reverse-proxy.md): Debian's nginx runs the very file the
//! documentation shows, docs/nginx/confab-published.conf, in front of confab on loopback,
//! and the published names are checked through it — autodiscover, sign-in, a meeting's
//! page, the external face's refusals, HTTP → HTTPS, and names that are not published.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, Server, ADD_ROOT};

/// The documented nginx configuration (one source for the doc and this test).
const TEMPLATE: &str = include_str!("../../../docs/nginx/confab-published.conf");

const NGINX: &str = "/usr/sbin/nginx";

/// nginx as this test's child (not a daemon), its files in a temporary directory.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- nginx error.log ----\n{}", self.error_log());
        }
    }
}

/// Fills the template's `${NAME}` placeholders.
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut conf = template.to_string();
    for (k, v) in vars {
        conf = conf.replace(&format!("${{{k}}}"), v);
    }
    assert!(
        !conf.contains("${"),
        "a placeholder is left unfilled:\n{conf}"
    );
    conf
}

/// Starts nginx with the published site (`vars` fill the template) and waits until it
/// accepts on `https`.
fn start_nginx(vars: &[(&str, String)], https: SocketAddr) -> Nginx {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "the reverse-proxy test needs Debian's nginx (apt-get install nginx)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("confab.conf"), fill(TEMPLATE, vars)).unwrap();
    // as root (CI), workers would run as nobody, who cannot enter the private temp dir
    let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    let main = format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/confab.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let t = Command::new(NGINX)
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        t.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nginx");
    let mut n = Nginx { child, dir };
    common::wait_until("nginx to listen", Duration::from_secs(15), || {
        assert!(
            n.child.try_wait().unwrap().is_none(),
            "nginx exited:\n{}",
            n.error_log()
        );
        TcpStream::connect_timeout(&https, Duration::from_millis(200)).is_ok()
    });
    n
}

/// A client that sends every published name to the proxy (no DNS), skips certificate checks
/// (the proxy's public certificate is the test's self-signed one) and follows no redirects.
fn client(names: &[&str], to: SocketAddr) -> reqwest::blocking::Client {
    client_from(names, to, None)
}

/// [`client`], connecting from `local` (another loopback address: another Internet client).
fn client_from(names: &[&str], to: SocketAddr, local: Option<&str>) -> reqwest::blocking::Client {
    let mut b = reqwest::blocking::Client::builder()
        .local_address(local.map(|l| l.parse::<std::net::IpAddr>().unwrap()))
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for n in names {
        b = b.resolve(n, to);
    }
    b.build().unwrap()
}

#[test]
fn nginx_publishes_the_external_site_as_the_cookbook_recipe() {
    let (internal, external, external_http) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let server = Server::start(
        2,
        &format!(
            "[web]\ninternal = \"127.0.0.1:{internal}\"\nexternal = \"127.0.0.1:{external}\"\n\
             external_http = \"127.0.0.1:{external_http}\"\ntrusted_proxies = [\"127.0.0.1\"]\n"
        ),
    );
    server.cli(ADD_ROOT);
    server.configure(
        "$e = New-CsSimpleUrlEntry -Url \"https://meet.example.test\"; \
         $m = New-CsSimpleUrl -Component \"meet\" -Domain \"example.test\" -SimpleUrlEntry $e -ActiveUrl \"https://meet.example.test\"; \
         $f = New-CsSimpleUrlEntry -Url \"https://dialin.example.test\"; \
         $d = New-CsSimpleUrl -Component \"dialin\" -Domain \"*\" -SimpleUrlEntry $f -ActiveUrl \"https://dialin.example.test\"; \
         Set-CsSimpleUrlConfiguration -Identity Global -SimpleUrl @{Add=$m,$d}",
    );
    let meeting = common::first_json(&server.cli(&[
        "meeting",
        "create",
        "--json",
        "--organizer",
        "user0001",
        "--subject",
        "Through the proxy",
    ]))
    .expect("the meeting as JSON");
    let key = meeting["key"]
        .as_str()
        .expect("the meeting's key")
        .to_string();

    // confab's generated certificate (it covers *.example.test) is both the proxy's public
    // certificate here and the one nginx verifies the front end against
    let cert = server.data().join("tls/cert.pem").display().to_string();
    let key_file = server.data().join("tls/key.pem").display().to_string();
    let (https, http) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let https_addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    let http_addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let nginx = start_nginx(
        &[
            ("DOMAIN", "example.test".into()),
            ("PUBLIC_HTTPS", https_addr.to_string()),
            ("PUBLIC_HTTP", http_addr.to_string()),
            ("PUBLIC_CERT", cert.clone()),
            ("PUBLIC_KEY", key_file),
            ("FRONTEND_HTTPS", format!("127.0.0.1:{external}")),
            ("FRONTEND_HTTP", format!("127.0.0.1:{external_http}")),
            ("FRONTEND_CA", cert),
        ],
        https_addr,
    );
    let names = [
        "meet.example.test",
        "dialin.example.test",
        "lyncdiscover.example.test",
        "admin.example.test",
    ];
    let web = client(&names, https_addr);
    let plain = client(&names, http_addr);
    let get = |c: &reqwest::blocking::Client, url: String| {
        c.get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    };

    // autodiscover at lyncdiscover.<domain>: the external face answers, names as the client used them
    let r = get(&web, format!("https://lyncdiscover.example.test:{https}/"));
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!(j["AccessLocation"], "External", "{j}");
    let r = get(&web, format!("https://lyncdiscover.example.test:{https}/autodiscover/autodiscoverservice.svc/root/user"));
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = r.json().unwrap();
    let links = j["Links"].as_array().expect("Links").clone();
    let meet = links
        .iter()
        .find(|l| l["token"] == "Meet")
        .expect("a Meet link");
    assert_eq!(meet["href"], "https://meet.example.test", "{j}");
    let dialin = links
        .iter()
        .find(|l| l["token"] == "Dialin")
        .expect("a Dialin link");
    assert_eq!(dialin["href"], "https://dialin.example.test", "{j}");

    // the sign-in page, with confab's security headers through the proxy and nothing cached
    let r = get(&web, format!("https://meet.example.test:{https}/_/signin"));
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().unwrap().contains("Sign in"));

    // the external face serves no Control Panel, REST API or metrics, whatever the name
    for path in [
        "/_/cscp",
        "/cscp",
        "/api/v1/users",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        for host in ["meet.example.test", "dialin.example.test"] {
            let r = get(&web, format!("https://{host}:{https}{path}"));
            assert_eq!(r.status(), 404, "{host}{path}");
            assert!(
                r.headers().contains_key("content-security-policy"),
                "{host}{path}: confab's 404"
            );
        }
    }

    // a meeting's page at its meet URL, through nginx with the published name as Host and SNI
    let r = get(
        &web,
        format!("https://meet.example.test:{https}/user0001/{key}"),
    );
    assert!(
        r.headers().contains_key("content-security-policy"),
        "confab answered"
    );
    let status = r.status();
    let body = r.text().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Through the proxy"), "{body}");
    // the meeting page's live updates (server-sent events) are not buffered by the
    // proxy, nothing is cached, and the timeouts are the cookbook's 960 s:
    for setting in [
        "proxy_buffering off;",
        "proxy_cache off;",
        "proxy_read_timeout 960s;",
        "proxy_send_timeout 960s;",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ] {
        assert_eq!(
            TEMPLATE.matches(setting).count(),
            4,
            "{setting} in each published server"
        );
    }
    assert_eq!(
        TEMPLATE.matches("proxy_ssl_verify on;").count(),
        3,
        "TLS to the front end is verified"
    );

    // HTTP (80 → 8080): autodiscover over http, everything else redirected to https
    let r = get(&plain, format!("http://lyncdiscover.example.test:{http}/"));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["AccessLocation"],
        "External"
    );
    let r = get(
        &plain,
        format!("http://meet.example.test:{http}/user0001/{key}"),
    );
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://meet.example.test/user0001/{key}").as_str()
    );

    // a name that is not published gets no answer: no handshake on 443, nothing on 80
    assert!(web
        .get(format!("https://admin.example.test:{https}/"))
        .send()
        .is_err());
    assert!(plain
        .get(format!("http://admin.example.test:{http}/"))
        .send()
        .is_err());

    // sign-in throttling sees the Internet client nginx names in X-Forwarded-For (confab
    // trusts it from 127.0.0.1, the proxy: [web] trusted_proxies), not the proxy: a guesser
    // at 127.0.0.2 is throttled, a user at 127.0.0.3 still signs in
    let guesser = client_from(&names, https_addr, Some("127.0.0.2"));
    let user = client_from(&names, https_addr, Some("127.0.0.3"));
    let sign_in =
        |c: &reqwest::blocking::Client, name: &str, password: &str, spoof: Option<&str>| {
            let mut req = c
                .post(format!("https://meet.example.test:{https}/_/signin"))
                .form(&[("name", name), ("password", password), ("next", "/_/meet")]);
            if let Some(s) = spoof {
                req = req.header("x-forwarded-for", s);
            }
            req.send().expect("POST /_/signin").status()
        };
    let mut throttled = false;
    for i in 0..14 {
        let st = sign_in(&guesser, &format!("nobody{i}@example.test"), "wrong", None);
        if st == 429 {
            throttled = true;
            break;
        }
        assert_eq!(st, 401, "attempt {i}");
    }
    assert!(throttled, "the guesser is throttled");
    // what the guesser writes in X-Forwarded-For itself is not believed
    assert_eq!(
        sign_in(
            &guesser,
            "user0001@example.test",
            "pw-user0001",
            Some("127.0.0.9")
        ),
        429
    );
    assert_eq!(
        sign_in(&user, "user0001@example.test", "pw-user0001", None),
        303,
        "another client is not throttled"
    );
    let log = server.log_text();
    assert!(
        log.contains("127.0.0.2"),
        "the guesser's address is in the log"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !nginx.error_log().contains("[emerg]"),
        "{}",
        nginx.error_log()
    );
}
