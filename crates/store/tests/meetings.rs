//! Meetings in the central store, on SQLite and (when configured) PostgreSQL.

mod common;
use common::{test_dbs, TestDb};
use confab_store::meetings::{valid_conference_id, PRIVATE_MEETING_GRACE_SECS};
use confab_store::{
    Access, MeetingKind, NewMeeting, NewUser, Presenters, Store, StoreError,
    MAX_MEETINGS_PER_ORGANIZER,
};

fn store(db: &TestDb) -> Store {
    let s = db.open().unwrap();
    for u in ["Alice", "bob"] {
        s.add_user(&NewUser {
            username: u,
            domain: "a.test",
            display_name: "",
            password: "pw",
        })
        .unwrap();
    }
    s
}

fn new(organizer: &str, kind: MeetingKind) -> NewMeeting {
    NewMeeting {
        organizer: organizer.into(),
        kind,
        access: Access::SameEnterprise,
        subject: String::new(),
        presenters: Presenters::Company,
        pstn_bypass_lobby: true,
        invitees: vec![],
        end_at: None,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn assigned_is_the_same_every_time_private_is_new() {
    for db in &test_dbs() {
        let s = store(db);
        let v0 = s.meetings_version().unwrap();
        let a1 = s
            .create_meeting(&new("sip:ALICE@a.test", MeetingKind::Assigned))
            .unwrap();
        let a2 = s
            .create_meeting(&new("alice@a.test", MeetingKind::Assigned))
            .unwrap();
        assert_eq!(a1, a2, "{}", db.name);
        assert_eq!(a1.organizer, "alice@a.test");
        assert_eq!(a1.expires_at, None, "an assigned meeting never expires");
        assert_eq!(a1.key.len(), 8);
        assert!(a1
            .key
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert!(
            valid_conference_id(&a1.conference_id),
            "{}",
            a1.conference_id
        );
        assert_eq!(
            a1.uri(),
            format!("sip:alice@a.test;gruu;opaque=app:conf:focus:id:{}", a1.key)
        );
        assert_eq!(
            a1.meet_url(),
            format!("https://meet.a.test/alice/{}", a1.key)
        );
        assert!(s.meetings_version().unwrap() > v0);

        let p1 = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap();
        let p2 = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap();
        assert_ne!(p1.key, p2.key);
        assert_ne!(p1.conference_id, p2.conference_id);
        assert_ne!(p1.key, a1.key);
        assert_eq!(
            p1.expires_at,
            Some(p1.created_at + PRIVATE_MEETING_GRACE_SECS)
        );

        // lookups
        assert_eq!(
            s.meeting("alice@a.test", &p1.key.to_lowercase()).unwrap(),
            Some(p1.clone())
        );
        assert_eq!(s.meeting("bob@a.test", &p1.key).unwrap(), None);
        assert_eq!(s.meeting_by_key(&p2.key).unwrap(), Some(p2.clone()));
        assert_eq!(
            s.meeting_by_conference_id(&a1.conference_id).unwrap(),
            Some(a1.clone())
        );
        assert_eq!(s.meeting_by_conference_id("12345").unwrap(), None);
        assert_eq!(s.meeting_by_key("'; DROP TABLE").unwrap(), None);
        assert_eq!(s.meetings(Some("alice@a.test")).unwrap().len(), 3);
        assert_eq!(s.meetings(Some("bob@a.test")).unwrap().len(), 0);
        assert_eq!(s.meetings(None).unwrap().len(), 3);
    }
}

#[test]
fn assigned_meetings_make_everyone_company_and_keep_no_end() {
    for db in &test_dbs() {
        let s = store(db);
        let mut m = new("bob@a.test", MeetingKind::Assigned);
        m.presenters = Presenters::Everyone;
        m.end_at = Some(now() + 3600);
        let a = s.create_meeting(&m).unwrap();
        assert_eq!(a.presenters, Presenters::Company, "{}", db.name);
        assert_eq!(a.end_at, None);
        let mut p = new("bob@a.test", MeetingKind::Private);
        p.presenters = Presenters::Everyone;
        p.subject = "Weekly sync".into();
        p.access = Access::Invited;
        p.invitees = vec![
            "sip:Alice@A.test".into(),
            "carol@b.test".into(),
            "alice@a.test".into(),
        ];
        let end = now() + 3600;
        p.end_at = Some(end);
        let p = s.create_meeting(&p).unwrap();
        assert_eq!(p.presenters, Presenters::Everyone);
        assert_eq!(p.invitees, ["alice@a.test", "carol@b.test"]);
        assert_eq!(p.expires_at, Some(end + PRIVATE_MEETING_GRACE_SECS));
        assert_eq!(s.meeting_by_key(&p.key).unwrap().unwrap(), p);
    }
}

#[test]
fn conference_ids_are_unique() {
    for db in &test_dbs() {
        let s = store(db);
        let mut ids = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for _ in 0..200 {
            let m = s
                .create_meeting(&new("alice@a.test", MeetingKind::Private))
                .unwrap();
            assert!(ids.insert(m.conference_id), "{}", db.name);
            assert!(keys.insert(m.key));
        }
    }
}

#[test]
fn expiry_deletes_only_expired_private_meetings() {
    for db in &test_dbs() {
        let s = store(db);
        let t = now();
        let a = s
            .create_meeting(&new("alice@a.test", MeetingKind::Assigned))
            .unwrap();
        let unused = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap();
        let used = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap();
        let mut e = new("alice@a.test", MeetingKind::Private);
        e.end_at = Some(t + 100);
        let ended = s.create_meeting(&e).unwrap();
        // a join 10 days later keeps the meeting without an end for 14 more days
        s.touch_meeting(used.id, t + 10 * 86400).unwrap();
        let used = s.meeting_by_key(&used.key).unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(t + 10 * 86400), "{}", db.name);
        assert_eq!(used.expires_at, Some(t + 24 * 86400));
        // a use does not move the expiry of a meeting with an end
        s.touch_meeting(ended.id, t + 86400).unwrap();
        assert_eq!(
            s.meeting_by_key(&ended.key).unwrap().unwrap().expires_at,
            Some(t + 100 + PRIVATE_MEETING_GRACE_SECS)
        );
        s.touch_meeting(a.id, t + 86400).unwrap();
        assert_eq!(s.meeting_by_key(&a.key).unwrap().unwrap().expires_at, None);

        assert_eq!(s.expire_meetings(t + 13 * 86400).unwrap(), 0);
        let v = s.meetings_version().unwrap();
        // day 14 + a bit: the unused one and the one that ended go
        assert_eq!(s.expire_meetings(t + 14 * 86400 + 200).unwrap(), 2);
        assert!(s.meetings_version().unwrap() > v);
        assert_eq!(s.meeting_by_key(&unused.key).unwrap(), None);
        assert_eq!(s.meeting_by_key(&ended.key).unwrap(), None);
        assert!(s.meeting_by_key(&used.key).unwrap().is_some());
        assert_eq!(s.expire_meetings(t + 25 * 86400).unwrap(), 1);
        // an assigned meeting never expires
        assert_eq!(s.expire_meetings(i64::MAX).unwrap(), 0);
        assert_eq!(
            s.meetings(None).unwrap(),
            vec![s.meeting_by_key(&a.key).unwrap().unwrap()]
        );
    }
}

#[test]
fn per_organizer_limit() {
    for db in test_dbs().iter().take(1) {
        // SQLite only: a thousand inserts over the PostgreSQL thread is slow and tests
        // nothing more
        let s = store(db);
        for _ in 0..MAX_MEETINGS_PER_ORGANIZER {
            s.create_meeting(&new("alice@a.test", MeetingKind::Private))
                .unwrap();
        }
        let e = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap_err();
        assert!(
            matches!(e, StoreError::TooManyMeetings { max: 1000, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("MaxScheduledMeetingsPerOrganizer"),
            "{e}"
        );
        // another organizer is not affected
        s.create_meeting(&new("bob@a.test", MeetingKind::Private))
            .unwrap();
        assert_eq!(s.meetings(Some("alice@a.test")).unwrap().len(), 1000);
    }
}

#[test]
fn remove_and_unknown_organizer_and_bad_input() {
    for db in &test_dbs() {
        let s = store(db);
        let m = s
            .create_meeting(&new("alice@a.test", MeetingKind::Private))
            .unwrap();
        assert!(
            !s.remove_meeting("bob@a.test", &m.key).unwrap(),
            "{}",
            db.name
        );
        assert!(s
            .remove_meeting("Alice@A.test", &m.key.to_lowercase())
            .unwrap());
        assert!(!s.remove_meeting("alice@a.test", &m.key).unwrap());
        assert_eq!(s.meeting_by_key(&m.key).unwrap(), None);

        let e = s
            .create_meeting(&new("zed@a.test", MeetingKind::Private))
            .unwrap_err();
        assert!(
            matches!(e, StoreError::NoSuchUser(ref u) if u == "zed@a.test"),
            "{e:?}"
        );
        for bad in [
            NewMeeting {
                organizer: "alice".into(),
                ..new("x@a.test", MeetingKind::Private)
            },
            NewMeeting {
                subject: "a\r\nb".into(),
                ..new("alice@a.test", MeetingKind::Private)
            },
            NewMeeting {
                subject: "x".repeat(300),
                ..new("alice@a.test", MeetingKind::Private)
            },
            NewMeeting {
                invitees: vec!["not an address".into()],
                ..new("alice@a.test", MeetingKind::Private)
            },
            NewMeeting {
                end_at: Some(1000),
                ..new("alice@a.test", MeetingKind::Private)
            },
        ] {
            assert!(
                matches!(s.create_meeting(&bad), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(s.meetings(None).unwrap().is_empty());

        // a user's meetings go with them
        s.create_meeting(&new("bob@a.test", MeetingKind::Assigned))
            .unwrap();
        let v = s.meetings_version().unwrap();
        s.remove_user("bob", "a.test").unwrap();
        assert!(s.meetings(None).unwrap().is_empty());
        assert!(s.meetings_version().unwrap() > v);
    }
}

#[test]
fn meetings_survive_backup_and_restore() {
    for db in &test_dbs() {
        let s = store(db);
        let a = s
            .create_meeting(&new("alice@a.test", MeetingKind::Assigned))
            .unwrap();
        let mut p = new("bob@a.test", MeetingKind::Private);
        p.invitees = vec!["alice@a.test".into()];
        let p = s.create_meeting(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.db");
        s.backup_to(&file).unwrap();
        let target = Store::open_in_memory().unwrap();
        target.restore_from(&file).unwrap();
        assert_eq!(
            target.meetings(None).unwrap(),
            vec![a.clone(), p],
            "{}",
            db.name
        );
        assert!(target.meetings_version().unwrap() > 0);
        // the assigned meeting is still the one
        assert_eq!(
            target
                .create_meeting(&new("alice@a.test", MeetingKind::Assigned))
                .unwrap(),
            a
        );
    }
}
