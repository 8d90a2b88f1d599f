use super::*;
use serde_json::json;

#[test]
fn every_definition_names_exactly_its_struct_fields() {
    for def in definitions()
        .iter()
        .copied()
        .chain([ServerApplication::DEF])
    {
        let defaults = def.defaults();
        let names: Vec<&str> = def.props.iter().map(|p| p.name).collect();
        let mut keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        keys.sort_unstable();
        assert_eq!(sorted, keys, "{}: table and struct disagree", def.noun);
        for p in def.props {
            assert!(def.prop(&p.name.to_ascii_lowercase()).is_some());
        }
    }
}

fn round_trip<T: Document + PartialEq + std::fmt::Debug>(changed: T) {
    // the defaults, an empty body and a changed document each come back as they went
    let (from_empty, bad) = T::from_body(&Map::new());
    assert!(bad.is_empty());
    assert_eq!(from_empty, T::default(), "{}", T::DEF.noun);
    assert_eq!(T::from_body(&T::DEF.defaults()).0, T::default());
    let body = changed.to_body();
    let (back, bad) = T::from_body(&body);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(back, changed);
    assert_ne!(
        back,
        T::default(),
        "{}: the test changes something",
        T::DEF.noun
    );
    let text = serde_json::to_string(&body).unwrap();
    assert_eq!(
        T::from_body(&serde_json::from_str(&text).unwrap()).0,
        changed
    );
}

#[test]
fn typed_documents_round_trip() {
    round_trip(MeetingConfiguration {
        pstn_callers_bypass_lobby: false,
        designate_as_presenter: DesignateAsPresenter::Everyone,
        logo_url: "https://x.test/logo.gif".into(),
        ..Default::default()
    });
    round_trip(ConferencingConfiguration {
        max_upload_file_size_mb: 10,
        ..Default::default()
    });
    round_trip(ConferencingPolicy {
        max_video_conference_resolution: VideoResolution::CIF,
        enable_app_desktop_sharing: AppDesktopSharing::None,
        ..Default::default()
    });
    round_trip(ClientPolicy {
        disable_rtf_im: Some(true),
        disable_html_im: Some(false),
        display_photo: DisplayPhoto::NoPhoto,
        im_warning: "Be nice".into(),
        ..Default::default()
    });
    round_trip(ImFilterConfiguration {
        action: ImFilterAction::Block,
        prefixes: vec!["http:".into()],
        ..Default::default()
    });
    round_trip(FileTransferFilterConfiguration {
        action: FileTransferAction::BlockAll,
        extensions: vec![],
        ..Default::default()
    });
    round_trip(WebServiceConfiguration {
        trusted_ca_certs: vec![TrustedCaCert {
            thumbprint: "AB".repeat(20),
            ca_store: "TrustedRootCA".into(),
        }],
        use_windows_auth: WindowsAuth::NTLM,
        ..Default::default()
    });
    round_trip(ExternalAccessPolicy {
        enable_federation_access: true,
        ..Default::default()
    });
    round_trip(DefenseConfiguration {
        trusted_addresses: vec!["127.0.0.1".into()],
        ..Default::default()
    });
    round_trip(AccessEdgeConfiguration {
        verification_level: VerificationLevel::AlwaysVerifiable,
        ..Default::default()
    });
    round_trip(AllowedDomain {
        proxy_fqdn: "127.0.0.2".into(),
        ..Default::default()
    });
    round_trip(BlockedDomain {
        comment: "no".into(),
    });
    round_trip(StaticRoutingConfiguration {
        route: vec![StaticRoute {
            transport: RouteTransport::TCP,
            destination: "127.0.0.2".into(),
            port: Some(5070),
            match_uri: "b.test".into(),
            ..Default::default()
        }],
    });
    round_trip(InformationBarrier {
        segment_a: vec!["*@a.test".into()],
        ..Default::default()
    });
    round_trip(ServerApplication {
        enabled: true,
        ..Default::default()
    });
}

#[test]
fn defaults_follow_lync() {
    let d = MeetingConfiguration::DEF.defaults();
    assert_eq!(d["PstnCallersBypassLobby"], json!(true));
    assert_eq!(d["DesignateAsPresenter"], json!("Company"));
    assert_eq!(ClientPolicy::DEF.default_of("DisableRTFIm"), Value::Null);
    assert_eq!(ClientPolicy::DEF.default_of("TracingLevel"), json!("Light"));
    assert_eq!(
        ImFilterConfiguration::DEF.default_of("Action"),
        json!("Allow")
    );
    let f = FileTransferFilterConfiguration::DEF.defaults();
    assert!(f["Extensions"].as_array().unwrap().contains(&json!(".exe")));
    assert_eq!(
        AccessEdgeConfiguration::DEF.default_of("AllowOutsideUsers"),
        json!(true)
    );
    assert_eq!(
        ExternalAccessPolicy::DEF.default_of("EnableFederationAccess"),
        json!(false)
    );
    // enum tables list what the struct accepts
    for def in definitions() {
        for p in def.props {
            if let PropType::Enum(values) = p.ty {
                assert!(values.contains(&def.default_of(p.name).as_str().unwrap()));
            }
        }
    }
}

#[test]
fn a_bad_value_takes_the_default_and_is_named() {
    let body = json!({"Enabled": "yes", "Action": "Block", "Frob": 1});
    let (f, bad) = ImFilterConfiguration::from_body(body.as_object().unwrap());
    assert_eq!(bad, vec!["Enabled".to_string()]);
    assert!(f.enabled);
    assert_eq!(f.action, ImFilterAction::Block);
}

#[test]
fn enforcement_is_declared_for_every_property() {
    let c = ClientPolicy::DEF;
    let enforced: Vec<&str> = c
        .props
        .iter()
        .filter(|p| p.enforcement.is_enforced())
        .map(|p| p.name)
        .collect();
    assert_eq!(enforced, ["DisableRTFIm"]);
    // the rules of meeting creation read it (confab_admin::meetings)
    assert!(MeetingConfiguration::DEF.is_enforced());
    // the focus and the MCU read these (MaxMeetingSize, the client audio port range...)
    assert!(ConferencingConfiguration::DEF.is_enforced());
    assert!(ConferencingPolicy::DEF.is_enforced());
    let cp: Vec<&str> = ConferencingPolicy::DEF
        .props
        .iter()
        .filter(|p| p.enforcement.is_enforced())
        .map(|p| p.name)
        .collect();
    assert_eq!(
        cp,
        [
            "AllowIPAudio",
            "AllowNonEnterpriseVoiceUsersToDialOut",
            "AllowAnonymousUsersToDialOut",
            "AllowAnonymousParticipantsInMeetings",
            "EnableDialInConferencing",
            "MaxMeetingSize"
        ]
    );
    assert!(ImFilterConfiguration::DEF.is_enforced());
    assert!(BlockedDomain::DEF.not_enforced().next().is_none());
    assert!(
        BlockedDomain::DEF.is_enforced(),
        "a blocked domain's existence is enforced"
    );
    for def in definitions() {
        let any = def
            .props
            .iter()
            .any(|p| matches!(p.enforcement, Enforcement::Enforced(_)));
        // a kind the server does not read enforces nothing; one with an enforced property is read
        assert!(def.read_by_server || !any, "{}", def.noun);
        assert!(!any || def.read_by_server, "{}", def.noun);
    }
    for def in definitions() {
        for p in def.props {
            assert!(!p.enforcement.note().is_empty());
        }
    }
}

#[test]
fn the_most_specific_document_is_in_force() {
    let def = StaticRoutingConfiguration::DEF;
    let docs = vec![
        ("Global".to_string(), 0),
        ("Site:Redmond".to_string(), 1),
        ("Site:Dublin".to_string(), 2),
        ("Service:Registrar:pool.a.test".to_string(), 3),
        ("Service:Registrar:other.a.test".to_string(), 4),
    ];
    let at = |site: Option<&str>, pool: Option<&str>| Placement {
        site: site.map(str::to_string),
        pool: pool.map(str::to_string),
    };
    assert_eq!(effective(def, &docs, &at(None, None)), Some(&0));
    assert_eq!(effective(def, &docs, &at(Some("redmond"), None)), Some(&1));
    assert_eq!(effective(def, &docs, &at(Some("Dublin"), None)), Some(&2));
    assert_eq!(effective(def, &docs, &at(Some("Paris"), None)), Some(&0));
    assert_eq!(
        effective(def, &docs, &at(Some("Redmond"), Some("pool.a.test"))),
        Some(&3)
    );
    assert_eq!(effective(def, &docs[1..3], &at(Some("Paris"), None)), None);
    // a site document of a kind without site scope is never in force; tags are per user
    let edge = AccessEdgeConfiguration::DEF;
    let docs = vec![("Site:Redmond".to_string(), 1), ("Tag:X".to_string(), 2)];
    assert_eq!(effective(edge, &docs, &at(Some("Redmond"), None)), None);
    assert_eq!(Scope::of("Tag:Fed"), Scope::Tag("Fed"));
    assert_eq!(
        Scope::of("Service:Registrar:p.test/App"),
        Scope::Service {
            role: "Registrar",
            fqdn: "p.test"
        }
    );
}

#[test]
fn assignments_know_every_policy_kind() {
    let a = UserPolicyAssignment {
        conferencing_policy: Some("A".into()),
        client_policy: Some("B".into()),
        external_access_policy: Some("C".into()),
        pin_policy: Some("D".into()),
        dial_plan: Some("E".into()),
        voice_policy: Some("F".into()),
        hosted_voicemail_policy: Some("G".into()),
    };
    let body = serde_json::to_value(&a).unwrap();
    for def in definitions().iter().filter(|d| d.is_policy) {
        assert!(body.get(def.short_name()).is_some(), "{}", def.noun);
        assert!(a.get(def.short_name()).is_some());
    }
}

/// A value of each table type that the admin shell could store.
fn sample(ty: PropType) -> Value {
    match ty {
        PropType::Bool | PropType::OptBool => json!(true),
        PropType::Int { max, .. } => json!(max),
        PropType::Str { .. } => json!("x"),
        PropType::Enum(values) => json!(values.last().unwrap()),
        PropType::StrList => json!(["a", "b"]),
        PropType::ObjList { key, .. } => json!([{ key: "x" }]),
    }
}

#[test]
fn the_table_types_are_the_struct_types() {
    // every value the table admits (at its bounds) reads back through the struct unchanged
    for def in definitions()
        .iter()
        .copied()
        .chain([ServerApplication::DEF])
    {
        for p in def.props {
            let mut body = Map::new();
            body.insert(p.name.to_string(), sample(p.ty));
            if let PropType::Int { min, .. } = p.ty {
                body.insert(p.name.to_string(), json!(min));
                assert!(def.unreadable(&body).is_empty(), "{} {}", def.noun, p.name);
            }
            if p.ty == PropType::OptBool {
                body.insert(p.name.to_string(), Value::Null);
                assert!(def.unreadable(&body).is_empty(), "{} {}", def.noun, p.name);
            }
            body.insert(p.name.to_string(), sample(p.ty));
            assert!(def.unreadable(&body).is_empty(), "{} {}", def.noun, p.name);
            // and a value of another type does not
            body.insert(p.name.to_string(), json!({"not": "this"}));
            assert_eq!(def.unreadable(&body), [p.name], "{}", def.noun);
        }
    }
}

#[test]
fn enterprise_voice_documents_have_lyncs_defaults() {
    let plan = DialPlan::default();
    assert_eq!(plan.normalization_rules.len(), 1);
    let r = &plan.normalization_rules[0];
    assert_eq!(r.name, DEFAULT_NORMALIZATION_RULE);
    assert_eq!(
        (r.pattern.as_str(), r.translation.as_str()),
        (r"^(\d{11})$", "+$1")
    );
    let t = OutboundTranslationRule::default();
    assert_eq!(
        (t.pattern.as_str(), t.translation.as_str()),
        (r"^\+(\d*)$", "$1")
    );
    let vp = VoicePolicy::default();
    assert!(vp.allow_simul_ring && vp.allow_call_forwarding && vp.enable_team_call);
    assert!(!vp.enable_call_park && !vp.prevent_pstn_toll_bypass);
    assert_eq!(vp.pstn_voicemail_escape_timer, 1500);
    assert_eq!(
        vp.call_forwarding_simul_ring_usage_type,
        CallForwardingSimulRingUsageType::VoicePolicyUsage
    );
    let trunk = TrunkConfiguration::default();
    assert_eq!(trunk.srtp_mode, SrtpMode::Required);
    assert!(trunk.enable_refer_support && trunk.enable_fast_failover_timer);
    assert_eq!(trunk.max_early_dialogs, 20);
    assert!(!trunk.remove_plus_from_uri && !trunk.forward_pai && !trunk.forward_call_history);
    assert_eq!(VoiceRoute::default().number_pattern, DEFAULT_ROUTE_PATTERN);
    assert_eq!(PstnGateway::default().port, 5060);
    assert_eq!(PstnGateway::default().transport, GatewayTransport::TCP);
    // the server routes calls by them (crates/server/src/voice/); the usage list itself is
    // the shell's (it refuses unknown usages)
    for def in [
        VoicePolicy::DEF,
        VoiceRoute::DEF,
        TrunkConfiguration::DEF,
        PstnGateway::DEF,
    ] {
        assert!(def.read_by_server, "{}", def.noun);
        assert!(def.is_enforced(), "{}", def.noun);
    }
    assert!(!PstnUsage::DEF.read_by_server);
    assert!(DialPlan::DEF
        .prop("NormalizationRules")
        .unwrap()
        .enforcement
        .is_enforced());
    // what a Mediation Server or media would do is said not to be done
    for (def, name) in [
        (TrunkConfiguration::DEF, "SRTPMode"),
        (TrunkConfiguration::DEF, "EnableBypass"),
        (VoicePolicy::DEF, "EnableCallPark"),
    ] {
        assert!(!def.prop(name).unwrap().enforcement.is_enforced(), "{name}");
    }
    round_trip(DialPlan {
        normalization_rules: vec![NormalizationRule {
            name: "Four".into(),
            pattern: r"^(\d{4})$".into(),
            translation: "+1425555$1".into(),
            is_internal_extension: true,
            ..Default::default()
        }],
        ..Default::default()
    });
    round_trip(TrunkConfiguration {
        outbound_translation_rules_list: vec![OutboundTranslationRule {
            name: "Strip".into(),
            ..Default::default()
        }],
        srtp_mode: SrtpMode::Optional,
        ..Default::default()
    });
}

#[test]
fn hosted_voicemail_destinations_are_sip_uris_of_ip_addresses() {
    let d = |raw: &str| VoicemailDestination::parse(raw).unwrap().unwrap();
    let v = d("sip:voicemail@127.0.0.1:5090;transport=tcp");
    assert_eq!(v.user.as_deref(), Some("voicemail"));
    assert_eq!(v.socket_addr(), "127.0.0.1:5090".parse().unwrap());
    assert_eq!(v.transport(), VoicemailTransport::Tcp);
    assert_eq!(v.to_string(), "sip:voicemail@127.0.0.1:5090;transport=tcp");
    // defaults: UDP on 5060 (RFC 3263 for a numeric host), TLS on 5061 for sips:
    let plain = d(" SIP:10.0.0.5 ");
    assert_eq!(
        (plain.transport(), plain.port(), plain.user.as_deref()),
        (VoicemailTransport::Udp, 5060, None)
    );
    assert_eq!(plain.to_string(), "sip:10.0.0.5");
    let tls = d("sip:vm@[::1];Transport=TLS");
    assert_eq!(
        (tls.transport(), tls.port()),
        (VoicemailTransport::Tls, 5061)
    );
    assert_eq!(tls.to_string(), "sip:vm@[::1];transport=tls");
    let secure = d("sips:vm@192.0.2.1:6061");
    assert_eq!(
        (secure.transport(), secure.port()),
        (VoicemailTransport::Tls, 6061)
    );
    assert_eq!(VoicemailDestination::parse("  ").unwrap(), None);
    for bad in [
        "voicemail@127.0.0.1",
        "sip:vm@exchange.example.test",
        "sip:vm@127.0.0.1:0",
        "sip:vm@127.0.0.1:70000",
        "sip:vm@127.0.0.1:50a",
        "sip:vm@127.0.0.1;transport=sctp",
        "sip:vm@127.0.0.1;lr",
        "sips:vm@127.0.0.1;transport=udp",
        "sip:v m@127.0.0.1",
        "sip:@127.0.0.1",
        "sip:vm@[::1",
        "sip:vm@[::1]x",
        "sip:vm@::1",
        "sip:vm@127.0.0.1\u{e9}",
    ] {
        let e = VoicemailDestination::parse(bad).unwrap_err();
        assert!(e.contains("voicemail server's SIP URI"), "{bad}: {e}");
    }
    let p = HostedVoicemailPolicy {
        destination: "sip:vm@127.0.0.1:5090".into(),
        ..Default::default()
    };
    assert_eq!(p.destination().unwrap().port(), 5090);
    assert_eq!(HostedVoicemailPolicy::default().destination(), None);
    assert!(HostedVoicemailPolicy::DEF.read_by_server);
    assert!(HostedVoicemailPolicy::DEF
        .prop("Destination")
        .unwrap()
        .enforcement
        .is_enforced());
}
