//! `/api/v1/meetings` over real HTTP on loopback: users signed in with their SIP password
//! manage only their own meetings; wrong passwords are refused and throttled;
//! administrators go through the meeting cmdlets' RBAC and OU scopes; the live routes
//! reach a `LiveMeetings` implementation (a small one written here: the real trait, with
//! the roster kept in a map).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use confab_store::{AuditFilter, NewUser, Store};
use confab_web::{
    Actor, LiveAction, LiveError, LiveMeetings, LiveParticipant, LiveRoster, MeetingAction,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const SALES: &str = "OU=Sales,DC=example,DC=test";

/// The live meetings of a test: rosters by key; the users allowed to act on each (as the
/// focus would: organizer or presenter); every action done.
#[derive(Default)]
struct Focus {
    rosters: Mutex<HashMap<String, (LiveRoster, Vec<String>)>>,
    done: Mutex<Vec<(String, Actor, String, LiveAction)>>,
}

impl LiveMeetings for Focus {
    fn roster(&self, key: &str) -> Option<LiveRoster> {
        self.rosters
            .lock()
            .unwrap()
            .get(key)
            .map(|(r, _)| r.clone())
    }

    fn act(
        &self,
        key: &str,
        actor: &Actor,
        participant: &str,
        action: LiveAction,
    ) -> Result<(), LiveError> {
        let mut rosters = self.rosters.lock().unwrap();
        let (roster, controllers) = rosters.get_mut(key).ok_or(LiveError::NotLive)?;
        if let Actor::User(u) = actor {
            if !controllers.contains(u) {
                return Err(LiveError::Forbidden);
            }
        }
        match action {
            LiveAction::Admit => {
                let i = roster
                    .lobby
                    .iter()
                    .position(|p| p.id == participant)
                    .ok_or_else(|| {
                        if roster.participants.iter().any(|p| p.id == participant) {
                            LiveError::Invalid(format!("{participant} is not in the lobby"))
                        } else {
                            LiveError::NoSuchParticipant
                        }
                    })?;
                let p = roster.lobby.remove(i);
                roster.participants.push(p);
            }
            _ => {
                let p = roster
                    .participants
                    .iter_mut()
                    .find(|p| p.id == participant)
                    .ok_or(LiveError::NoSuchParticipant)?;
                p.muted = action == LiveAction::Mute;
            }
        }
        self.done.lock().unwrap().push((
            key.to_string(),
            actor.clone(),
            participant.to_string(),
            action,
        ));
        Ok(())
    }

    fn meeting_act(
        &self,
        key: &str,
        actor: &Actor,
        action: MeetingAction,
    ) -> Result<(), LiveError> {
        let mut rosters = self.rosters.lock().unwrap();
        let (roster, controllers) = rosters.get_mut(key).ok_or(LiveError::NotLive)?;
        if let Actor::User(u) = actor {
            if !controllers.contains(u) {
                return Err(LiveError::Forbidden);
            }
        }
        match action {
            MeetingAction::Lock => roster.locked = true,
            MeetingAction::Unlock => roster.locked = false,
            MeetingAction::End => {
                rosters.remove(key);
            }
        }
        Ok(())
    }

    fn may_lead(&self, key: &str, user: &str) -> Option<bool> {
        let rosters = self.rosters.lock().unwrap();
        rosters.get(key).map(|(_, c)| c.iter().any(|c| c == user))
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        // no live changes here: a receiver whose sender is gone
        tokio::sync::broadcast::channel(1).1
    }
}

struct Server {
    base: String,
    store: Arc<Store>,
    focus: Arc<Focus>,
    client: Client,
    _dir: tempfile::TempDir,
}

/// alice (Sales OU) and bob (no OU), passwords pw-alice and pw-bob; carol disabled; root
/// is CsAdministrator, sales a CsUserAdministrator scoped to Sales, viewer
/// CsViewOnlyAdministrator.
async fn start(live: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    for (name, ou) in [("alice", Some(SALES)), ("bob", None), ("carol", None)] {
        store
            .add_user_in_ou(
                &NewUser {
                    username: name,
                    domain: "example.test",
                    display_name: "",
                    password: &format!("pw-{name}"),
                },
                ou,
            )
            .unwrap();
    }
    store.set_enabled("carol", "example.test", false).unwrap();
    let root = store
        .add_admin("root", "rootpassword1", &["CsAdministrator".into()])
        .unwrap();
    let principal = confab_admin::principal_for(&store, &root).unwrap();
    let mut shell = confab_admin::Session::new(&store, principal, "local shell", "example.test");
    shell
        .run(&format!(
            r#"New-CsAdminRole -Identity SalesAdmins -Template CsUserAdministrator -UserScopes "OU:{SALES}""#
        ))
        .unwrap();
    store
        .add_admin("sales", "salespassword1", &["SalesAdmins".into()])
        .unwrap();
    store
        .add_admin(
            "viewer",
            "viewerpassword1",
            &["CsViewOnlyAdministrator".into()],
        )
        .unwrap();
    let focus = Arc::new(Focus::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let options = confab_web::ApiOptions {
        sign_in: confab_web::signin::SignInLimits {
            per_account: 3,
            ..Default::default()
        },
        live_meetings: live.then(|| focus.clone() as Arc<dyn LiveMeetings>),
        ..Default::default()
    };
    tokio::spawn(confab_web::serve_with(
        listener,
        store.clone(),
        "example.test".into(),
        None,
        options,
    ));
    Server {
        base: format!("http://{addr}/api/v1"),
        store,
        focus,
        client: Client::new(),
        _dir: dir,
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Token(&'a str),
    User(&'a str, &'a str),
}

impl Server {
    async fn token(&self, name: &str, password: &str) -> String {
        let res = self
            .client
            .post(format!("{}/tokens", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn call(
        &self,
        auth: Auth<'_>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::Token(t) => req.bearer_auth(t),
            Auth::User(u, p) => req.basic_auth(u, Some(p)),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, headers, v)
    }

    async fn get(&self, auth: Auth<'_>, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(auth, reqwest::Method::GET, path, None).await;
        (s, v)
    }

    async fn post(&self, auth: Auth<'_>, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(auth, reqwest::Method::POST, path, Some(body))
            .await;
        (s, v)
    }

    async fn delete(&self, auth: Auth<'_>, path: &str) -> StatusCode {
        self.call(auth, reqwest::Method::DELETE, path, None).await.0
    }
}

fn key_of(v: &Value) -> String {
    v["objects"][0]["Identity"].as_str().unwrap().to_string()
}

const ALICE: Auth = Auth::User("alice@example.test", "pw-alice");
// RFC 7617: the user-id has no colon, so no sip: scheme; case does not matter
const BOB: Auth = Auth::User("Bob@Example.test", "pw-bob");

#[tokio::test]
async fn users_manage_only_their_own_meetings() {
    let s = start(false).await;
    let (st, v) = s
        .post(ALICE, "/meetings", json!({"kind": "Private", "subject": "Budget", "access": "invited", "invitees": ["bob@example.test"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let m = &v["objects"][0];
    assert_eq!(m["Organizer"], "sip:alice@example.test");
    assert_eq!(m["Kind"], "Private");
    assert_eq!(m["Access"], "Invited");
    assert_eq!(m["Subject"], "Budget");
    assert!(m["Uri"]
        .as_str()
        .unwrap()
        .ends_with(&format!("opaque=app:conf:focus:id:{}", key_of(&v))));
    let alice_key = key_of(&v);
    // the default kind (assigned), the same twice
    let (st, a1) = s.post(ALICE, "/meetings", json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(a1["objects"][0]["Kind"], "Assigned");
    let (_, a2) = s
        .post(
            ALICE,
            "/meetings",
            json!({"organizer": "sip:Alice@example.test"}),
        )
        .await;
    assert_eq!(key_of(&a1), key_of(&a2));
    assert_eq!(a2["warnings"].as_array().unwrap().len(), 1);

    // not for someone else, and bad input is named
    let (st, v) = s
        .post(ALICE, "/meetings", json!({"organizer": "bob@example.test"}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = s
        .post(ALICE, "/meetings", json!({"access": "Public"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Locked, Invited, SameEnterprise, Everyone"),
        "{v}"
    );
    let (st, v) = s
        .post(ALICE, "/meetings", json!({"acces": "Everyone"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("'acces'"), "{v}");

    let (st, b) = s.post(BOB, "/meetings", json!({"kind": "Private"})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let bob_key = key_of(&b);

    let (st, list) = s.get(ALICE, "/meetings").await;
    assert_eq!(st, StatusCode::OK);
    let keys: Vec<&str> = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Identity"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(!keys.contains(&bob_key.as_str()));
    let (_, list) = s.get(ALICE, "/meetings?organizer=bob@example.test").await;
    assert_eq!(list["objects"], json!([]));

    // someone else's meeting does not exist for alice
    let (st, v) = s.get(ALICE, &format!("/meetings/{bob_key}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(
        s.delete(ALICE, &format!("/meetings/{bob_key}")).await,
        StatusCode::NOT_FOUND
    );
    assert!(s.store.meeting_by_key(&bob_key).unwrap().is_some());
    let (st, _) = s.get(ALICE, "/meetings/NOSUCH99").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, v) = s
        .get(ALICE, &format!("/meetings/{}", alice_key.to_lowercase()))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(key_of(&v), alice_key);
    assert_eq!(
        s.delete(ALICE, &format!("/meetings/{alice_key}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(ALICE, &format!("/meetings/{alice_key}")).await.0,
        StatusCode::NOT_FOUND
    );

    // a user's password opens the meeting routes only; a disabled user none
    let (st, _) = s.get(ALICE, "/users").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .get(Auth::User("carol@example.test", "pw-carol"), "/meetings")
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled() {
    let s = start(false).await;
    let wrong = Auth::User("alice@example.test", "guess");
    let (st, h, v) = s.call(wrong, reqwest::Method::GET, "/meetings", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(h[reqwest::header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // an unknown user is refused the same way
    let (st, _) = s
        .get(Auth::User("zed@example.test", "pw-zed"), "/meetings")
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // per_account is 3: the attempts after the third failure are answered 429 without
    // being evaluated, even with the right password
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(s.get(wrong, "/meetings").await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let (st, h, _) = s.call(ALICE, reqwest::Method::GET, "/meetings", None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        h[reqwest::header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // another user is not affected
    assert_eq!(s.get(BOB, "/meetings").await.0, StatusCode::OK);
    // a malformed header is a 401, not a crash
    let res = s
        .client
        .get(format!("{}/meetings", s.base))
        .header("Authorization", "Basic !!!not-base64")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn administrators_by_role_and_scope() {
    let s = start(false).await;
    let root = s.token("root", "rootpassword1").await;
    let sales = s.token("sales", "salespassword1").await;
    let viewer = s.token("viewer", "viewerpassword1").await;

    let (st, v) = s
        .post(
            Auth::Token(&root),
            "/meetings",
            json!({"organizer": "bob@example.test", "kind": "Private", "subject": "it's"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["command"]
        .as_str()
        .unwrap()
        .starts_with("New-CsMeeting -Organizer 'bob@example.test' -Private"));
    let bob_key = key_of(&v);
    let (st, v) = s
        .post(Auth::Token(&root), "/meetings", json!({"kind": "Private"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // the Sales administrator: alice yes, bob no
    let (st, v) = s
        .post(
            Auth::Token(&sales),
            "/meetings",
            json!({"organizer": "alice@example.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let alice_key = key_of(&v);
    let (st, v) = s
        .post(
            Auth::Token(&sales),
            "/meetings",
            json!({"organizer": "bob@example.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("outside the user scopes"),
        "{v}"
    );
    let (st, _) = s
        .get(Auth::Token(&sales), &format!("/meetings/{bob_key}"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        s.delete(Auth::Token(&sales), &format!("/meetings/{bob_key}"))
            .await,
        StatusCode::FORBIDDEN
    );
    let (_, list) = s.get(Auth::Token(&sales), "/meetings").await;
    assert_eq!(list["objects"].as_array().unwrap().len(), 1);
    assert_eq!(key_of(&list), alice_key);

    // the viewer lists everything and changes nothing
    let (_, list) = s.get(Auth::Token(&viewer), "/meetings").await;
    assert_eq!(list["objects"].as_array().unwrap().len(), 2);
    let (st, v) = s
        .post(
            Auth::Token(&viewer),
            "/meetings",
            json!({"organizer": "bob@example.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        s.delete(Auth::Token(&viewer), &format!("/meetings/{bob_key}"))
            .await,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        s.get(Auth::Token(&root), "/meetings/NOSUCH99").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete(Auth::Token(&root), &format!("/meetings/{bob_key}"))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(Auth::Token(&root), &format!("/meetings/{bob_key}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let audit = s.store.query_audit(&AuditFilter::default()).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.admin == "sales" && !e.success && e.command.contains("New-CsMeeting")),
        "{audit:?}"
    );
    assert!(audit
        .iter()
        .any(|e| e.admin == "root" && e.success && e.command.starts_with("Remove-CsMeeting")));
}

fn participant(id: &str, role: &str) -> LiveParticipant {
    LiveParticipant {
        id: id.into(),
        display: id.into(),
        role: role.into(),
        muted: false,
        origin: "enterprise".into(),
    }
}

#[tokio::test]
async fn live_routes_reach_the_focus() {
    // without a focus in the process: not live
    let s = start(false).await;
    let (_, v) = s.post(ALICE, "/meetings", json!({})).await;
    let (st, v) = s
        .get(ALICE, &format!("/meetings/{}/roster", key_of(&v)))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["kind"], "not_live");

    let s = start(true).await;
    let root = s.token("root", "rootpassword1").await;
    let sales = s.token("sales", "salespassword1").await;
    let (_, v) = s
        .post(ALICE, "/meetings", json!({"access": "SameEnterprise"}))
        .await;
    let key = key_of(&v);
    let (_, v) = s.post(BOB, "/meetings", json!({"kind": "Private"})).await;
    let bob_key = key_of(&v);
    s.focus.rosters.lock().unwrap().insert(
        key.clone(),
        (
            LiveRoster {
                participants: vec![participant("sip:alice@example.test", "organizer")],
                lobby: vec![participant("sip:guest@other.test", "attendee")],
                locked: false,
            },
            vec!["alice@example.test".into()],
        ),
    );

    let (st, r) = s.get(ALICE, &format!("/meetings/{key}/roster")).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["lobby"][0]["id"], "sip:guest@other.test");
    assert_eq!(r["participants"][0]["role"], "organizer");
    // someone else's meeting, or one not live
    assert_eq!(
        s.get(BOB, &format!("/meetings/{key}/roster")).await.0,
        StatusCode::NOT_FOUND
    );
    let (st, v) = s.get(BOB, &format!("/meetings/{bob_key}/roster")).await;
    assert_eq!(
        (st, v["kind"].clone()),
        (StatusCode::NOT_FOUND, json!("not_live"))
    );
    assert_eq!(
        s.get(Auth::Token(&root), &format!("/meetings/{key}/roster"))
            .await
            .0,
        StatusCode::OK
    );

    // the organizer admits the guest (the id URL-encoded)
    let guest = "sip%3Aguest%40other.test";
    let (st, v) = s
        .post(
            ALICE,
            &format!("/meetings/{key}/participants/{guest}/admit"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, r) = s.get(ALICE, &format!("/meetings/{key}/roster")).await;
    assert_eq!(r["lobby"], json!([]));
    assert_eq!(r["participants"][1]["id"], "sip:guest@other.test");
    // not twice; no such participant; no such action
    let (st, v) = s
        .post(
            ALICE,
            &format!("/meetings/{key}/participants/{guest}/admit"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .post(
            ALICE,
            &format!("/meetings/{key}/participants/sip%3Anobody%40x.test/mute"),
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["kind"].clone()),
        (StatusCode::NOT_FOUND, json!("no_such_participant"))
    );
    let (st, v) = s
        .post(
            ALICE,
            &format!("/meetings/{key}/participants/{guest}/explode"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("admit, deny, mute, unmute, remove"),
        "{v}"
    );
    // bob is neither organizer nor presenter: the meeting does not exist for him
    let (st, _) = s
        .post(
            BOB,
            &format!("/meetings/{key}/participants/{guest}/mute"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // an administrator mutes; outside their scope they cannot
    let (st, _) = s
        .post(
            Auth::Token(&sales),
            &format!("/meetings/{key}/participants/{guest}/mute"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .post(
            Auth::Token(&sales),
            &format!("/meetings/{bob_key}/participants/{guest}/mute"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (_, r) = s
        .get(Auth::Token(&root), &format!("/meetings/{key}/roster"))
        .await;
    assert_eq!(r["participants"][1]["muted"], true);

    let done = s.focus.done.lock().unwrap().clone();
    assert_eq!(
        done,
        [
            (
                key.clone(),
                Actor::User("alice@example.test".into()),
                "sip:guest@other.test".into(),
                LiveAction::Admit
            ),
            (
                key.clone(),
                Actor::Admin("sales".into()),
                "sip:guest@other.test".into(),
                LiveAction::Mute
            ),
        ]
    );
    let audit = s
        .store
        .query_audit(&AuditFilter {
            admin: Some("sales".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.success && e.command.contains(&format!("meeting mute {key}"))),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_meeting_routes() {
    let s = start(false).await;
    let doc: Value = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/meetings", "get"),
        ("/api/v1/meetings", "post"),
        ("/api/v1/meetings/{key}", "get"),
        ("/api/v1/meetings/{key}", "delete"),
        ("/api/v1/meetings/{key}/roster", "get"),
        ("/api/v1/meetings/{key}/participants/{id}/{action}", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["userBasic"]["scheme"],
        "basic"
    );
    let fields = doc["components"]["schemas"]["NewMeeting"]["properties"]
        .as_object()
        .unwrap();
    for f in [
        "organizer",
        "kind",
        "access",
        "subject",
        "presenters",
        "pstn_bypass_lobby",
        "invitees",
        "end",
        "site",
    ] {
        assert!(fields.contains_key(f), "{f}");
    }
}

#[tokio::test]
async fn users_set_their_own_pin_and_meetings_list_dial_in_numbers() {
    let s = start(false).await;
    let (st, v) = s.get(ALICE, "/me/pin").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_pin_set"], json!(false));
    assert_eq!(v["user"], json!("sip:alice@example.test"));
    let put = |auth, body: Value| {
        let s = &s;
        async move {
            let (st, _, v) = s
                .call(auth, reqwest::Method::PUT, "/me/pin", Some(body))
                .await;
            (st, v)
        }
    };
    // refusals name the rule and change nothing
    for (body, says) in [
        (json!({"pin": "1234"}), "MinPasswordLength"),
        (json!({"pin": "55555"}), "AllowCommonPatterns"),
        (json!({"pin": "12a45"}), "digits"),
        (json!({"pin": 73915}), "string"),
        (json!({"pin": "73915", "user": "bob"}), "unknown field"),
        (json!({}), "missing 'pin'"),
    ] {
        let (st, v) = put(ALICE, body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    assert!(
        !s.store
            .client_pin_info("alice@example.test")
            .unwrap()
            .is_pin_set
    );
    let (st, v) = put(ALICE, json!({"pin": "073915"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_pin_set"], json!(true));
    assert!(v["last_changed"].is_string());
    assert_eq!(
        s.store
            .verify_client_pin("alice@example.test", "073915", 10, 0, 2_000_000_000)
            .unwrap(),
        confab_store::PinCheck::Valid
    );
    // a wrong password, a disabled user, an administrator's token: no
    let (st, _) = s
        .get(Auth::User("alice@example.test", "nope"), "/me/pin")
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = put(
        Auth::User("carol@example.test", "pw-carol"),
        json!({"pin": "73915"}),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let root = s.token("root", "rootpassword1").await;
    let (st, v) = s.get(Auth::Token(&root), "/me/pin").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // audited, without the PIN
    let audit = s.store.query_audit(&AuditFilter::default()).unwrap();
    let mine: Vec<_> = audit
        .iter()
        .filter(|a| a.admin == "sip:alice@example.test")
        .collect();
    assert!(mine.iter().any(|a| a.success), "{audit:?}");
    assert!(mine
        .iter()
        .any(|a| !a.success && a.result.contains("MinPasswordLength")));
    assert!(!audit.iter().any(|a| a.command.contains("073915")));

    // a meeting shows the access numbers of its organizer's region
    let (st, v) = s
        .post(
            Auth::Token(&root),
            "/cmdlets",
            json!({"command": "New-CsDialInConferencingAccessNumber -PrimaryUri sip:dialin@example.test -DisplayNumber '+1 (425) 555-0100' -LineUri tel:+14255550100 -Regions Redmond; Set-CsDialPlan -DialinConferencingRegion Redmond"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s.post(ALICE, "/meetings", json!({"kind": "Private"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let key = key_of(&v);
    let expect = json!([{"uri": "sip:dialin@example.test", "display_number": "+1 (425) 555-0100", "line_uri": "tel:+14255550100", "languages": ["en-US"]}]);
    assert_eq!(v["objects"][0]["DialIn"], expect);
    let (_, v) = s.get(ALICE, &format!("/meetings/{key}")).await;
    assert_eq!(v["objects"][0]["DialIn"], expect);
    assert_eq!(
        v["objects"][0]["DialInNumbers"],
        json!(["+1 (425) 555-0100"])
    );
    let (_, v) = s.get(Auth::Token(&root), &format!("/meetings/{key}")).await;
    assert_eq!(v["objects"][0]["DialIn"], expect);

    let doc: Value = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/me/pin"]["put"].is_object());
    assert!(doc["paths"]["/api/v1/me/pin"]["get"].is_object());
    assert!(doc["components"]["schemas"]["PinInfo"].is_object());
}

#[tokio::test]
async fn users_set_their_own_call_forwarding_under_their_policies() {
    let s = start(false).await;
    let defaults = json!({"immediate": null, "simul_ring": null, "team": [], "team_delay_secs": 0,
        "unanswered": null, "unanswered_after_secs": 20, "busy": null});
    let (st, v) = s.get(ALICE, "/me/forwarding").await;
    assert_eq!((st, &v), (StatusCode::OK, &defaults), "{v}");
    let send = |auth, method: reqwest::Method, body: Option<Value>| {
        let s = &s;
        async move {
            let (st, _, v) = s.call(auth, method, "/me/forwarding", body).await;
            (st, v)
        }
    };
    let stored = || {
        s.store
            .get_user("alice", "example.test")
            .unwrap()
            .unwrap()
            .call_forwarding
    };

    // refusals name the setting and the rule, and change nothing
    for (body, says) in [
        (
            json!({"simul_ring": "tel:+14255550199"}),
            "EnterpriseVoiceEnabled",
        ),
        (json!({"unanswered": "voicemail"}), "HostedVoiceMail"),
        (json!({"busy": "sip:nobody@example.test"}), "not a user"),
        (json!({"immediate": "sip:alice@example.test"}), "themself"),
        (json!({"team": ["alice@example.test"]}), "team:"),
        (
            json!({"immediate": "sip:bob@example.test", "simul_ring": "sip:bob@example.test"}),
            "cannot be combined",
        ),
        (
            json!({"unanswered_after_secs": 500}),
            "unanswered_after_secs",
        ),
        (
            json!({"forward_to": "sip:bob@example.test"}),
            "unknown field",
        ),
        (json!({"busy": "bob"}), "not a forwarding target"),
        (json!(["sip:bob@example.test"]), "call forwarding settings"),
    ] {
        let (st, v) = send(ALICE, reqwest::Method::PUT, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    assert_eq!(stored(), None);

    // the administrator gives alice Enterprise Voice, a number and hosted voicemail
    let root = s.token("root", "rootpassword1").await;
    let (st, v) = s
        .post(
            Auth::Token(&root),
            "/cmdlets",
            json!({"command": "Set-CsUser -Identity sip:alice@example.test -EnterpriseVoiceEnabled $true -LineURI tel:+14255550100; Set-CsHostedVoicemailPolicy -Destination 'sip:voicemail@127.0.0.1:5090;transport=tcp'"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _, v) = s
        .call(
            Auth::Token(&root),
            reqwest::Method::PATCH,
            "/users/alice@example.test",
            Some(json!({"HostedVoiceMail": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = s.get(Auth::Token(&root), "/users/alice@example.test").await;
    assert_eq!(v["objects"][0]["HostedVoiceMail"], json!(true), "{v}");
    let wanted = json!({"simul_ring": "tel:+14255550199", "team": ["Bob@Example.test"],
        "team_delay_secs": 5, "unanswered": "voicemail", "unanswered_after_secs": 15,
        "busy": "sip:bob@example.test"});
    let (st, v) = send(ALICE, reqwest::Method::PUT, Some(wanted)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["team"], json!(["bob@example.test"]), "stored spelling");
    assert_eq!(v["simul_ring"], json!("tel:+14255550199"));
    let (_, got) = s.get(ALICE, "/me/forwarding").await;
    assert_eq!(got, v);
    let text = stored().expect("stored");
    assert_eq!(
        confab_voice::CallForwarding::from_json(&text)
            .unwrap()
            .unanswered_after_secs,
        15
    );
    // its own number is no target
    let (st, v) = send(
        ALICE,
        reqwest::Method::PUT,
        Some(json!({"immediate": "tel:+14255550100"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // the voice policy decides; a refused change leaves the settings as they were
    let (st, v) = s
        .post(
            Auth::Token(&root),
            "/cmdlets",
            json!({"command": "Set-CsVoicePolicy -AllowSimulRing $false -EnableTeamCall $false"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = send(
        ALICE,
        reqwest::Method::PUT,
        Some(json!({"simul_ring": "sip:bob@example.test"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("simul_ring")
            && v["error"]
                .as_str()
                .unwrap()
                .contains("AllowSimulRing $false"),
        "{v}"
    );
    let (st, v) = send(
        ALICE,
        reqwest::Method::PUT,
        Some(json!({"team": ["bob@example.test"]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("EnableTeamCall"),
        "{v}"
    );
    assert_eq!(stored().as_deref(), Some(text.as_str()));
    let (st, v) = send(
        ALICE,
        reqwest::Method::PUT,
        Some(json!({"immediate": "voicemail"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["immediate"], json!("voicemail"));

    // back to the defaults
    let (st, v) = send(ALICE, reqwest::Method::DELETE, None).await;
    assert_eq!((st, &v), (StatusCode::OK, &defaults), "{v}");
    assert_eq!(stored(), None);

    // a wrong password, a disabled user, an administrator's token: no
    let (st, _) = s
        .get(Auth::User("alice@example.test", "nope"), "/me/forwarding")
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = send(
        Auth::User("carol@example.test", "pw-carol"),
        reqwest::Method::PUT,
        Some(json!({"busy": "sip:bob@example.test"})),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s.get(Auth::Token(&root), "/me/forwarding").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Set-CsUserCallForwarding"),
        "{v}"
    );
    // bob's settings were never touched
    assert_eq!(
        s.store
            .get_user("bob", "example.test")
            .unwrap()
            .unwrap()
            .call_forwarding,
        None
    );

    // audited under the user, refusals too
    let audit = s.store.query_audit(&AuditFilter::default()).unwrap();
    let mine: Vec<_> = audit
        .iter()
        .filter(|a| {
            a.admin == "sip:alice@example.test" && a.command.starts_with("Set-CsUserCallForwarding")
        })
        .collect();
    assert!(
        mine.iter()
            .any(|a| a.success && a.command.contains("-Clear")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|a| !a.success && a.result.contains("AllowSimulRing")),
        "{mine:?}"
    );

    let doc: Value = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in ["get", "put", "delete"] {
        assert!(doc["paths"]["/api/v1/me/forwarding"][m].is_object(), "{m}");
    }
    assert!(doc["components"]["schemas"]["CallForwarding"]["properties"]["simul_ring"].is_object());
}
