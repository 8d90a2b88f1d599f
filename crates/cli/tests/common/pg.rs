//! Tests on a PostgreSQL store: a fresh schema per test on the server CONFAB_TEST_POSTGRES
//! names (dropped at the end; with CONFAB_REQUIRE_POSTGRES=1 a missing URL fails instead of
//! skipping), `confab` commands against it, and `confab serve` processes sharing it (the
//! front ends of a pool).

use super::*;
use std::process::Output;

/// A fresh schema on the test server, dropped on drop; `url` selects it.
pub struct Schema {
    server: String,
    name: String,
    pub url: String,
}

impl Schema {
    pub fn new() -> Option<Schema> {
        let server = match std::env::var("CONFAB_TEST_POSTGRES") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var("CONFAB_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "CONFAB_REQUIRE_POSTGRES=1 but CONFAB_TEST_POSTGRES is not set"
                );
                eprintln!("CONFAB_TEST_POSTGRES not set: skipping");
                return None;
            }
        };
        let name = format!("confab_test_{:016x}", rand::random::<u64>());
        let mut c = postgres::Client::connect(&server, postgres::NoTls)
            .expect("connecting to CONFAB_TEST_POSTGRES");
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { server, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + String::from_utf8_lossy(&o.stderr).as_ref()
}

/// `confab ARGS --store STORE`, which must succeed; its standard output.
pub fn run(store: &str, args: &[&str]) -> String {
    let o = confab()
        .args(args)
        .args(["--store", store])
        .env("CONFAB_ADMIN", "root")
        .env("CONFAB_ADMIN_PASSWORD", "rootpassword1")
        .output()
        .unwrap();
    assert!(o.status.success(), "confab {args:?}: {}", text(&o));
    // stdout only: stderr names the store, which differs between stores compared
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A `confab serve` on `ip` using `store`, killed on drop.
pub struct Serve {
    pub child: Child,
    pub addr: std::net::SocketAddr,
    pub log: std::path::PathBuf,
    pub dir: tempfile::TempDir,
}

impl Serve {
    pub fn start(ip: &str, store: &str) -> Serve {
        Self::start_with(ip, store, "")
    }

    /// With more configuration (TOML after `listen` and `domains`).
    pub fn start_with(ip: &str, store: &str, config: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(ip);
        let cfg = dir.path().join("confab.toml");
        std::fs::write(
            &cfg,
            format!("listen = [\"{ip}:{port}\"]\ndomains = [\"{DOMAIN}\"]\n{config}"),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let child = confab()
            .args(["serve", "--config"])
            .arg(&cfg)
            .arg("--data")
            .arg(dir.path())
            .args(["--store", store, "--workers", "2"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Serve {
            child,
            addr: format!("{ip}:{port}").parse().unwrap(),
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ua = Ua::udp_on(ip, "probe", s.addr);
        loop {
            let target = format!("sip:{}", host_port(&s.addr));
            let req = ua.request(Method::Options, &target, &target);
            ua.send(&req);
            if ua
                .recv_timeout(Duration::from_millis(200))
                .and_then(|r| r.status())
                == Some(200)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "confab did not start:\n{}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
        }
    }
}

impl Serve {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: nothing is flushed, nothing said to the others.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} log ----\n{}",
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Retries `f` for up to 10 s (servers notice store changes by polling), returning its last result.
pub fn eventually<T>(mut f: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = f();
        if ok(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
