//! The Control Panel (`/_/cscp/…`): every topic renders for CsAdministrator, roles decide
//! what an administrator sees and may change, changes run through the shell's session
//! (validation, RBAC, audit with origin `web …`), CSRF, the external face has none of it;
//! and the flow in headless Chromium.

mod common;
use common::browser::{screenshot_dir, Browser};
use common::{confab, free_port, Server};

struct Web {
    server: Server,
    internal: u16,
    external: u16,
}

fn web_server(users: u32) -> Web {
    let (internal, external) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let server = Server::start(
        users,
        &format!(
            "[web]\ninternal = \"127.0.0.1:{internal}\"\nexternal = \"127.0.0.1:{external}\"\n"
        ),
    );
    Web {
        server,
        internal,
        external,
    }
}

const ROOT_PW: &str = "root-password-1";

impl Web {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.internal)
    }

    /// The first administrator (CsAdministrator `root`).
    fn add_root(&self) {
        self.server.cli(&[
            "admin",
            "add",
            "root",
            "--role",
            "CsAdministrator",
            "--password",
            ROOT_PW,
        ]);
    }

    /// Another administrator with `role`, added by root.
    fn add_admin(&self, name: &str, role: &str, password: &str) {
        let o = confab()
            .args([
                "admin",
                "add",
                name,
                "--role",
                role,
                "--password",
                password,
                "--as",
                "root",
                "--data",
            ])
            .arg(self.server.data())
            .env("CONFAB_ADMIN", "root")
            .env("CONFAB_ADMIN_PASSWORD", ROOT_PW)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// `confab shell -c script` as root: its output.
    fn shell(&self, script: &str) -> String {
        let o = confab()
            .args(["shell", "-c", script, "--data"])
            .arg(self.server.data())
            .env("CONFAB_ADMIN", "root")
            .env("CONFAB_ADMIN_PASSWORD", ROOT_PW)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{script}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }
}

/// An HTTPS client with a cookie jar (the server's certificate is self-signed).
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .cookie_store(true)
            .build()
            .unwrap();
        Http { rt, client }
    }

    fn get(&self, url: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    fn post(&self, url: &str, form: &[(&str, &str)]) -> (u16, String) {
        self.rt.block_on(async {
            let r = self.client.post(url).form(form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    /// Signs in as an administrator on the internal face.
    fn sign_in_admin(&self, w: &Web, name: &str, password: &str) {
        let (status, body) = self.post(
            &w.url("/_/signin"),
            &[
                ("as", "admin"),
                ("next", "/_/cscp"),
                ("name", name),
                ("password", password),
            ],
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Administrator"), "{body}");
    }
}

/// The value of property `name` in the shell's list output (`Name : value`).
fn prop(out: &str, name: &str) -> String {
    out.lines()
        .filter_map(|l| l.split_once(" : ").or_else(|| l.split_once(" :")))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().unwrap().to_string()
}

const TOPICS: &[(&str, &str)] = &[
    ("/_/cscp", "Home"),
    ("/_/cscp/users", "Users"),
    ("/_/cscp/im", "IM and Presence"),
    ("/_/cscp/conferencing", "Conferencing"),
    ("/_/cscp/voice", "Voice Routing"),
    ("/_/cscp/external", "External User Access"),
    ("/_/cscp/security", "Security"),
    ("/_/cscp/monitoring", "Monitoring"),
];

#[test]
fn every_topic_renders_for_an_administrator_and_changes_are_the_shells() {
    let w = web_server(2);
    w.add_root();
    let h = Http::new();
    // not signed in: to the sign-in page
    let (_, body) = h.get(&w.url("/_/cscp/users"));
    assert!(body.contains("Sign in to the Control Panel"), "{body}");
    h.sign_in_admin(&w, "root", ROOT_PW);
    for (path, title) in TOPICS {
        let (status, body) = h.get(&w.url(path));
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body.contains(&format!("<h1>{title}</h1>")),
            "{path}: {body}"
        );
        assert!(
            body.contains(&format!("aria-current=\"page\">{title}</a>")),
            "{path}"
        );
        assert!(!body.contains("style="), "{path}: no inline style");
    }
    let (_, home) = h.get(&w.url("/_/cscp"));
    assert!(
        home.contains("<svg") && home.contains("Registrations"),
        "charts: {home}"
    );
    let (_, conf) = h.get(&w.url("/_/cscp/conferencing"));
    for noun in [
        "CsMeetingConfiguration",
        "CsConferencingPolicy",
        "CsDialInConferencingAccessNumber",
        "CsPinPolicy",
    ] {
        assert!(conf.contains(noun), "{noun}");
    }

    // a change through the generated form: only what changed is sent
    let url = w.url("/_/cscp/conferencing/CsMeetingConfiguration?id=Global");
    let (status, form) = h.get(&url);
    assert_eq!(status, 200);
    assert!(
        form.contains("name=\"p.AdmitAnonymousUsersByDefault\""),
        "{form}"
    );
    let token = csrf(&form);
    let post_url = w.url("/_/cscp/conferencing/CsMeetingConfiguration");
    let (status, body) = h.post(
        &post_url,
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "Global"),
            ("o.AdmitAnonymousUsersByDefault", "True"),
            ("b.AdmitAnonymousUsersByDefault", "1"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Set-CsMeetingConfiguration Global: done."),
        "{body}"
    );
    assert_eq!(
        prop(
            &w.shell("Get-CsMeetingConfiguration -Identity Global"),
            "AdmitAnonymousUsersByDefault"
        ),
        "False"
    );

    // the shell's validation message, and the form keeps what was typed
    let (status, body) = h.post(
        &post_url,
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "Global"),
            ("o.DesignateAsPresenter", "Company"),
            ("p.DesignateAsPresenter", "Nobody"),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not one of"), "{body}");
    // an unknown field is refused, naming it, and nothing changes
    let (status, body) = h.post(
        &post_url,
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "Global"),
            ("p.Bogus", "1"),
            ("o.PstnCallersBypassLobby", "True"),
            ("b.PstnCallersBypassLobby", "1"),
        ],
    );
    assert_eq!(status, 400);
    assert!(body.contains("unknown field 'p.Bogus'"), "{body}");
    assert_eq!(
        prop(
            &w.shell("Get-CsMeetingConfiguration -Identity Global"),
            "PstnCallersBypassLobby"
        ),
        "True"
    );
    // a new policy, then its form
    let (status, body) = h.post(
        &w.url("/_/cscp/conferencing/CsConferencingPolicy"),
        &[
            ("csrf", token.as_str()),
            ("action", "new"),
            ("scope", "Tag"),
            ("name", "SmallMeetings"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("New-CsConferencingPolicy Tag:SmallMeetings: done."),
        "{body}"
    );
    assert!(body.contains("name=\"p.MaxMeetingSize\""), "{body}");
    assert!(w
        .shell("Get-CsConferencingPolicy")
        .contains("Tag:SmallMeetings"));

    // without the CSRF token: refused, nothing changed
    let (status, _) = h.post(
        &post_url,
        &[
            ("action", "set"),
            ("identity", "Global"),
            ("o.AdmitAnonymousUsersByDefault", "False"),
            ("b.AdmitAnonymousUsersByDefault", "1"),
            ("p.AdmitAnonymousUsersByDefault", "on"),
        ],
    );
    assert_eq!(status, 403);
    let (status, _) = h.post(
        &post_url,
        &[
            ("csrf", "0123456789abcdef0123456789abcdef"),
            ("action", "set"),
            ("identity", "Global"),
            ("o.AdmitAnonymousUsersByDefault", "False"),
            ("b.AdmitAnonymousUsersByDefault", "1"),
            ("p.AdmitAnonymousUsersByDefault", "on"),
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(
        prop(
            &w.shell("Get-CsMeetingConfiguration -Identity Global"),
            "AdmitAnonymousUsersByDefault"
        ),
        "False"
    );

    // "Run a command" on Home: the shell's output and warnings
    let (status, body) = h.post(
        &w.url("/_/cscp/run"),
        &[
            ("csrf", token.as_str()),
            (
                "command",
                "Get-CsPinPolicy | Select-Object -ExpandProperty MinPasswordLength",
            ),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("5"), "{body}");

    // Security: a custom role made and narrowed from the page
    let roles = w.url("/_/cscp/security/roles");
    let (status, body) = h.post(
        &roles,
        &[
            ("csrf", token.as_str()),
            ("action", "new"),
            ("identity", "PinDesk"),
            ("template", "CsHelpDesk"),
            ("config_scopes", ""),
            ("user_scopes", ""),
            ("cmdlets", ""),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("New-CsAdminRole PinDesk: done.") && body.contains("Set-CsAdminRole"),
        "{body}"
    );
    let (status, body) = h.post(
        &roles,
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "PinDesk"),
            ("config_scopes", "Global"),
            ("user_scopes", "Global"),
            ("cmdlets", "Get-CsUser\nUnlock-CsClientPin"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let cmdlets =
        w.shell("Get-CsAdminRole -Identity PinDesk | Select-Object -ExpandProperty Cmdlets");
    assert_eq!(
        cmdlets.split_whitespace().collect::<Vec<_>>(),
        ["Get-CsUser", "Unlock-CsClientPin"],
        "{cmdlets}"
    );

    // every change is in the audit log with origin web, and Monitoring finds it
    let (status, body) = h.get(&w.url("/_/cscp/monitoring?contains=Set-CsMeetingConfiguration"));
    assert_eq!(status, 200);
    assert!(body.contains("Set-CsMeetingConfiguration -Identity &#39;Global&#39; -AdmitAnonymousUsersByDefault $false")
        || body.contains("Set-CsMeetingConfiguration -Identity 'Global' -AdmitAnonymousUsersByDefault $false"), "{body}");
    assert!(body.contains("web 127.0.0.1:"), "{body}");
    let (status, body) = h.get(&w.url("/_/cscp/monitoring?since=not-a-time"));
    assert_eq!(status, 400);
    assert!(body.contains("is not a UTC time"), "{body}");
    let audit = w.shell("Get-CsAuditLog -Contains New-CsConferencingPolicy");
    assert!(audit.contains("web 127.0.0.1:"), "{audit}");
}

#[test]
fn users_are_created_changed_granted_and_removed() {
    let w = web_server(2);
    w.add_root();
    let h = Http::new();
    h.sign_in_admin(&w, "root", ROOT_PW);
    let (_, page) = h.get(&w.url("/_/cscp/users?q=0001"));
    assert!(
        page.contains("sip:user0001@example.test") && !page.contains("sip:user0000@example.test"),
        "{page}"
    );
    let token = csrf(&page);
    // the store's rules, as the shell reports them; the form keeps what was typed
    let (status, body) = h.post(
        &w.url("/_/cscp/users"),
        &[
            ("csrf", token.as_str()),
            ("sip", "carol@example.test"),
            ("display", "Carol"),
            ("password", ""),
            ("ou", ""),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("password is empty") && body.contains("value=\"carol@example.test\""),
        "{body}"
    );
    // a name taken
    let (status, body) = h.post(
        &w.url("/_/cscp/users"),
        &[
            ("csrf", token.as_str()),
            ("sip", "user0001@example.test"),
            ("display", ""),
            ("password", "pw-x-1"),
            ("ou", ""),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("user0001@example.test"), "{body}");
    let (status, body) = h.post(
        &w.url("/_/cscp/users"),
        &[
            ("csrf", token.as_str()),
            ("sip", "carol@example.test"),
            ("display", "Carol"),
            ("password", "carol-password-1"),
            ("ou", ""),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("New-CsUser sip:carol@example.test: done."),
        "{body}"
    );
    assert!(w
        .shell("Get-CsUser -Identity sip:carol@example.test")
        .contains("Carol"));
    // the password is never in the audit log
    let audit = w.shell("Get-CsAuditLog -Contains New-CsUser");
    assert!(
        audit.contains("********") && !audit.contains("carol-password-1"),
        "{audit}"
    );

    let user_url = w.url("/_/cscp/users/user");
    let (status, body) = h.post(
        &user_url,
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "sip:carol@example.test"),
            ("o.Enabled", "True"),
            ("o.DisplayName", "Carol"),
            ("p.DisplayName", "Carol"),
            ("o.LineURI", ""),
            ("p.LineURI", "tel:+14255550100"),
            ("o.EnterpriseVoiceEnabled", "False"),
            ("p.EnterpriseVoiceEnabled", "on"),
            ("o.HostedVoiceMail", "False"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let shown = w.shell("Get-CsUser -Identity sip:carol@example.test");
    assert!(shown.contains("tel:+14255550100"), "{shown}");
    assert_eq!(
        prop(&shown, "Enabled"),
        "False",
        "the unchecked box disables"
    );
    assert_eq!(prop(&shown, "EnterpriseVoiceEnabled"), "True");
    w.shell("New-CsVoicePolicy -Identity Tag:Intl");
    let (status, body) = h.post(
        &user_url,
        &[
            ("csrf", token.as_str()),
            ("action", "grant"),
            ("identity", "sip:carol@example.test"),
            ("noun", "CsVoicePolicy"),
            ("policy", "Intl"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(w
        .shell("Get-CsUser -Identity sip:carol@example.test")
        .contains("Intl"));
    let (status, _) = h.post(
        &user_url,
        &[
            ("csrf", token.as_str()),
            ("action", "remove"),
            ("identity", "sip:carol@example.test"),
        ],
    );
    assert_eq!(status, 200);
    let (status, body) = h.get(&w.url("/_/cscp/users/user?id=sip:carol@example.test"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not found"), "{body}");
}

#[test]
fn roles_decide_what_an_administrator_sees_and_changes() {
    let w = web_server(1);
    w.add_root();
    w.add_admin("viewer", "CsViewOnlyAdministrator", "viewer-password-1");
    w.add_admin("voice", "CsVoiceAdministrator", "voice-password-1");
    w.shell("New-CsAdminRole -Identity DialPlansOnly -Template CsVoiceAdministrator -Cmdlets @('Get-CsDialPlan', 'Set-CsDialPlan', 'New-CsDialPlan')");
    w.add_admin("dialplans", "DialPlansOnly", "dialplans-password-1");

    // view-only: every topic but Monitoring, no forms, a POST refused by the shell's RBAC
    let h = Http::new();
    h.sign_in_admin(&w, "viewer", "viewer-password-1");
    let (status, body) = h.get(&w.url("/_/cscp/conferencing/CsMeetingConfiguration?id=Global"));
    assert_eq!(status, 200);
    assert!(
        !body.contains("action=\"set\"")
            && !body.contains("Commit")
            && !body.contains("method=\"post\" action=\"/_/cscp/conferencing"),
        "{body}"
    );
    let (_, body) = h.get(&w.url("/_/cscp/users"));
    assert!(!body.contains("New-CsUser"), "{body}");
    let token = csrf(&body);
    let (status, body) = h.post(
        &w.url("/_/cscp/conferencing/CsMeetingConfiguration"),
        &[
            ("csrf", token.as_str()),
            ("action", "set"),
            ("identity", "Global"),
            ("o.AdmitAnonymousUsersByDefault", "True"),
            ("b.AdmitAnonymousUsersByDefault", "1"),
        ],
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Set-CsMeetingConfiguration"), "{body}");
    assert_eq!(
        prop(
            &w.shell("Get-CsMeetingConfiguration -Identity Global"),
            "AdmitAnonymousUsersByDefault"
        ),
        "True"
    );
    let (status, body) = h.get(&w.url("/_/cscp/monitoring"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("do not include Monitoring"), "{body}");
    let audit = w.shell("Get-CsAuditLog -Admin viewer");
    assert!(
        audit.contains("refused") && audit.contains("web 127.0.0.1:"),
        "{audit}"
    );

    // a voice administrator changes voice, not conferencing
    let h = Http::new();
    h.sign_in_admin(&w, "voice", "voice-password-1");
    let (status, body) = h.get(&w.url("/_/cscp/voice"));
    assert_eq!(status, 200);
    assert!(
        body.contains("New CsVoiceRoute") && body.contains("Test-CsVoiceNormalizationRule"),
        "{body}"
    );
    let (_, body) = h.get(&w.url("/_/cscp"));
    assert!(
        !body.contains("href=\"/_/cscp/monitoring\""),
        "no Monitoring in the nav: {body}"
    );

    // a custom role limited to dial plans: nothing else, even typed in the URL
    let h = Http::new();
    h.sign_in_admin(&w, "dialplans", "dialplans-password-1");
    let (status, body) = h.get(&w.url("/_/cscp/voice"));
    assert_eq!(status, 200);
    assert!(
        body.contains("CsDialPlan") && !body.contains("<h2 id=\"CsVoiceRoute\""),
        "{body}"
    );
    for path in [
        "/_/cscp/conferencing",
        "/_/cscp/users",
        "/_/cscp/monitoring",
        "/_/cscp/conferencing/CsMeetingConfiguration?id=Global",
    ] {
        let (status, body) = h.get(&w.url(path));
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("Refused"), "{path}");
    }
}

#[test]
fn the_external_face_has_no_control_panel() {
    let w = web_server(1);
    w.add_root();
    let h = Http::new();
    for path in [
        "/_/cscp",
        "/_/cscp/users",
        "/cscp",
        "/_/cscp/conferencing/CsMeetingConfiguration?id=Global",
    ] {
        let (status, _) = h.get(&format!("https://127.0.0.1:{}{path}", w.external));
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = h.post(
        &format!("https://127.0.0.1:{}/_/cscp/run", w.external),
        &[("command", "Get-CsUser")],
    );
    assert!(status == 403 || status == 404, "{status}");
}

/// Form fields on the page without a label (keyboard and screen-reader users need one).
fn unlabelled(b: &Browser) -> serde_json::Value {
    b.eval("return [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')].filter(e => !(e.labels && e.labels.length)).map(e => e.name)")
}

#[test]
fn an_administrator_uses_the_control_panel_in_chromium() {
    let w = web_server(2);
    w.add_root();
    w.add_admin("voice", "CsVoiceAdministrator", "voice-password-1");
    let shots = screenshot_dir();
    let b = Browser::start();
    b.goto(&w.url("/cscp"));
    b.wait_text("main", "administrator's name");
    b.fill("input[name=name]", "root");
    b.fill("input[name=password]", ROOT_PW);
    b.click("button[type=submit]");
    b.wait_text("main h1", "Home");
    assert!(b.exists("nav ul a[aria-current=page]"));
    assert_eq!(unlabelled(&b), serde_json::json!([]));
    if let Some(d) = &shots {
        b.screenshot(&d.join("cscp-home.png"));
    }

    // create a user
    b.click("nav a[href='/_/cscp/users']");
    b.wait_text("main h1", "Users");
    b.fill("#new-sip", "sip:dave@example.test");
    b.fill("#new-name", "Dave Example");
    b.fill("#new-pw", "dave-password-1");
    b.click("form[action='/_/cscp/users'][method=post] button[type=submit]");
    b.wait_text("main", "New-CsUser sip:dave@example.test: done.");
    assert!(w
        .shell("Get-CsUser -Identity sip:dave@example.test")
        .contains("Dave Example"));
    b.click("a[href='/_/cscp/users']");
    b.wait_text("main", "sip:dave@example.test");
    assert_eq!(unlabelled(&b), serde_json::json!([]));
    if let Some(d) = &shots {
        b.screenshot(&d.join("cscp-users.png"));
    }

    // change the meeting configuration with the keyboard-usable form
    b.click("nav a[href='/_/cscp/conferencing']");
    b.wait_text("main h1", "Conferencing");
    assert_eq!(unlabelled(&b), serde_json::json!([]));
    if let Some(d) = &shots {
        b.screenshot(&d.join("cscp-conferencing.png"));
    }
    b.click("a[href='/_/cscp/conferencing/CsMeetingConfiguration?id=Global']");
    b.wait_text("main h2", "CsMeetingConfiguration Global");
    assert_eq!(unlabelled(&b), serde_json::json!([]));
    b.click("#p-AdmitAnonymousUsersByDefault");
    b.select("#p-DesignateAsPresenter", "Everyone");
    b.click("form[action='/_/cscp/conferencing/CsMeetingConfiguration'] button[type=submit]");
    b.wait_text("main", "Set-CsMeetingConfiguration Global: done.");
    let shown = w.shell("Get-CsMeetingConfiguration -Identity Global");
    assert_eq!(prop(&shown, "AdmitAnonymousUsersByDefault"), "False");
    assert_eq!(prop(&shown, "DesignateAsPresenter"), "Everyone");

    // sign out; a delegated administrator is refused a page outside their role
    b.click("header form button[type=submit]");
    b.wait_text("main h1", "Sign in");
    b.goto(&w.url("/_/signin?as=admin&next=/_/cscp"));
    b.fill("input[name=name]", "voice");
    b.fill("input[name=password]", "voice-password-1");
    b.click("button[type=submit]");
    b.wait_text("main h1", "Home");
    assert!(!b.exists("nav a[href='/_/cscp/monitoring']"));
    b.goto(&w.url("/_/cscp/monitoring"));
    b.wait_text("main", "do not include Monitoring");
    assert_eq!(b.text("main h1"), "Refused");
    if let Some(d) = &shots {
        b.screenshot(&d.join("cscp-refused.png"));
    }
}
