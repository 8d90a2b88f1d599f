//! Headless Chromium for the web site's end-to-end tests, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`, through the `fantoccini` client). A blocking
//! wrapper, so tests read like the others: each call waits for its answer.
//!
//! ```ignore
//! let b = Browser::start();
//! b.goto("https://127.0.0.1:4443/_/signin");
//! b.fill("input[name=name]", "alice@example.test");
//! b.click("button[type=submit]");
//! b.wait_text("main", "Your meetings");
//! ```
//! The server's certificate is self-signed: the browser accepts it (`acceptInsecureCerts`).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// How long a wait for a page element lasts.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Whether Chromium and its driver are installed (CI installs them; a developer without
/// them gets a clear failure, not a skipped test).
pub fn available() -> bool {
    std::path::Path::new("/usr/bin/chromedriver").exists()
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session.
    pub fn start() -> Browser {
        assert!(
            available(),
            "the web tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        let port = super::free_port("127.0.0.1");
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--dns-prefetch-disable",
                    // names such as meet.example.test resolve to loopback only, never to DNS
                    "--host-resolver-rules=MAP * 127.0.0.1, EXCLUDE localhost",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match rt.block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url),
            ) {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("could not start a Chromium session: {e}"),
            }
        };
        Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.rt
            .block_on(self.c().goto(url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    pub fn current_url(&self) -> String {
        self.rt
            .block_on(self.c().current_url())
            .unwrap()
            .to_string()
    }

    /// The page's HTML as it is now.
    pub fn source(&self) -> String {
        self.rt.block_on(self.c().source()).unwrap()
    }

    /// Waits for an element matching `css` and returns its text.
    pub fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            let e = self
                .c()
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no element {css}: {e}"));
            e.text().await.unwrap()
        })
    }

    /// Whether an element matching `css` is on the page now.
    pub fn exists(&self, css: &str) -> bool {
        self.rt.block_on(self.c().find(Locator::Css(css))).is_ok()
    }

    /// Waits until the text of the first element matching `css` contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.rt.block_on(async {
                match self.c().find(Locator::Css(css)).await {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                }
            });
            if t.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never contained {needle:?}; it has {t:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until no element's text under `css` contains `needle`.
    pub fn wait_text_gone(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.rt.block_on(async {
                match self.c().find(Locator::Css(css)).await {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                }
            });
            if !t.contains(needle) {
                return;
            }
            assert!(Instant::now() < deadline, "{css} still contains {needle:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `value` into the field matching `css` (after clearing it).
    pub fn fill(&self, css: &str, value: &str) {
        self.rt.block_on(async {
            let e = self
                .c()
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no field {css}: {e}"));
            e.clear().await.unwrap();
            e.send_keys(value).await.unwrap();
        })
    }

    /// Chooses the option with `value` in the select matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.rt.block_on(async {
            let e = self
                .c()
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no select {css}: {e}"));
            e.select_by_value(value)
                .await
                .unwrap_or_else(|e| panic!("{css}: no option {value}: {e}"));
        })
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        self.rt.block_on(async {
            let e = self
                .c()
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"));
            e.click()
                .await
                .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        })
    }

    /// Presses keys in the focused element (e.g. "\u{e007}" for Enter, "\u{e004}" for Tab).
    pub fn keys(&self, keys: &str) {
        self.rt.block_on(async {
            let a = self.c().active_element().await.unwrap();
            a.send_keys(keys).await.unwrap();
        })
    }

    /// The `id` (or the tag name, when it has none) of the focused element.
    pub fn focused(&self) -> String {
        self.rt.block_on(async {
            let a = self.c().active_element().await.unwrap();
            match a.attr("id").await.unwrap() {
                Some(id) if !id.is_empty() => id,
                _ => a.tag_name().await.unwrap(),
            }
        })
    }

    /// Runs a script in the page (for what WebDriver cannot ask directly, e.g.
    /// `return document.cookie`).
    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.rt.block_on(self.c().execute(script, vec![])).unwrap()
    }

    /// Saves a PNG of the window to `path` (docs' screenshots), creating its folder.
    pub fn screenshot(&self, path: &std::path::Path) {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// The cookies the browser holds for the current page's site (names and flags).
    pub fn cookies(&self) -> Vec<fantoccini::cookies::Cookie<'static>> {
        self.rt.block_on(self.c().get_all_cookies()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), c.close()).await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots for the docs go when `CONFAB_SCREENSHOTS` names a folder (e.g.
/// `CONFAB_SCREENSHOTS=$PWD/docs/screenshots cargo test -p confab-cli --test web_…`);
/// `None`: none are taken.
pub fn screenshot_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("CONFAB_SCREENSHOTS").map(std::path::PathBuf::from)
}
