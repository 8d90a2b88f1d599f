use confab_admin::{parse, suggest, Arg, Command, Expr, ParseError, Pipeline, Statement};

// ---------- helpers ----------

fn bare(s: &str) -> Expr {
    Expr::Bare(s.into())
}
fn st(s: &str) -> Expr {
    Expr::Str(s.into())
}
fn named(name: &str, value: Expr) -> Arg {
    Arg::Named {
        name: name.into(),
        value: Some(value),
    }
}
fn switch(name: &str) -> Arg {
    Arg::Named {
        name: name.into(),
        value: None,
    }
}
fn pos(value: Expr) -> Arg {
    Arg::Positional(value)
}
fn hash(entries: &[(&str, Expr)]) -> Expr {
    Expr::Hash(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Parses `src`, which must be exactly one pipeline.
fn pipeline(src: &str) -> Pipeline {
    let script = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    assert_eq!(script.statements.len(), 1, "{src:?}");
    match script.statements.into_iter().next().unwrap() {
        Statement::Pipeline(p) => p,
        s => panic!("{src:?}: not a pipeline: {s:?}"),
    }
}

/// Parses `src`, which must be exactly one command.
fn command(src: &str) -> Command {
    let p = pipeline(src);
    assert_eq!(p.commands.len(), 1, "{src:?}");
    p.commands.into_iter().next().unwrap()
}

fn check(c: &Command, name: &str, args: Vec<Arg>) {
    assert_eq!(c.name, name);
    assert_eq!(c.args, args, "arguments of {name}");
}

fn error(src: &str) -> ParseError {
    match parse(src) {
        Ok(s) => panic!("{src:?} parsed: {s:?}"),
        Err(e) => e,
    }
}

fn check_error(src: &str, line: u32, column: u32, words: &str) {
    let e = error(src);
    assert_eq!((e.line, e.column), (line, column), "{src:?}: {e}");
    assert!(e.message.contains(words), "{src:?}: {e} (wanted {words:?})");
    assert_eq!(
        e.to_string(),
        format!("line {line}, column {column}: {}", e.message)
    );
}

// ---------- the cookbook lines ----------

#[test]
fn new_admin_role() {
    let c = command("New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator");
    check(
        &c,
        "New-CsAdminRole",
        vec![
            named("Identity", bare("CsUserModifier")),
            named("Template", bare("CsViewOnlyAdministrator")),
        ],
    );
}

#[test]
fn get_admin_role_select_expand() {
    let p = pipeline("Get-CsAdminRole CSUserModifier | Select-Object –ExpandProperty cmdlets | fl");
    assert_eq!(p.commands.len(), 3);
    check(
        &p.commands[0],
        "Get-CsAdminRole",
        vec![pos(bare("CSUserModifier"))],
    );
    check(
        &p.commands[1],
        "Select-Object",
        vec![named("ExpandProperty", bare("cmdlets"))],
    );
    check(&p.commands[2], "fl", vec![]);
}

#[test]
fn set_admin_role_add() {
    let c = command(r#"Set-CsAdminRole -Identity CsUserModifier -Cmdlets @{add="Set-CsUser"}"#);
    check(
        &c,
        "Set-CsAdminRole",
        vec![
            named("Identity", bare("CsUserModifier")),
            named("Cmdlets", hash(&[("add", st("Set-CsUser"))])),
        ],
    );
}

#[test]
fn set_admin_role_remove_array() {
    let c = command(
        r#"Set-CsAdminRole -Identity CsUserModifier –Cmdlets @{remove="Get-CSVoiceRoutingPolicy","Get-CSVoiceTestConfiguration"}"#,
    );
    let list = Expr::Array(vec![
        st("Get-CSVoiceRoutingPolicy"),
        st("Get-CSVoiceTestConfiguration"),
    ]);
    check(
        &c,
        "Set-CsAdminRole",
        vec![
            named("Identity", bare("CsUserModifier")),
            named("Cmdlets", hash(&[("remove", list)])),
        ],
    );
}

#[test]
fn new_admin_role_with_cmdlets() {
    let c = command(
        r#"New-CsAdminRole -Identity CSUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add="set-CsUser"}"#,
    );
    check(
        &c,
        "New-CsAdminRole",
        vec![
            named("Identity", bare("CSUserModifier")),
            named("Template", bare("CsViewOnlyAdministrator")),
            named("Cmdlets", hash(&[("add", st("set-CsUser"))])),
        ],
    );
}

#[test]
fn bare_getters() {
    for name in [
        "Get-CsMeetingConfiguration",
        "Get-CsWebServiceConfiguration",
        "Get-CsServerApplication",
    ] {
        check(&command(name), name, vec![]);
    }
}

#[test]
fn meeting_configuration_booleans() {
    let c = command("Set-CsMeetingConfiguration -PstnCallersBypassLobby $false");
    check(
        &c,
        "Set-CsMeetingConfiguration",
        vec![named("PstnCallersBypassLobby", Expr::Bool(false))],
    );
    let c = command("Set-CsMeetingConfiguration -AssignedConferenceTypeByDefault $false -EnableAssignedConferenceType $true");
    check(
        &c,
        "Set-CsMeetingConfiguration",
        vec![
            named("AssignedConferenceTypeByDefault", Expr::Bool(false)),
            named("EnableAssignedConferenceType", Expr::Bool(true)),
        ],
    );
}

#[test]
fn script_path_command() {
    let c = command(
        r#".\New-CsClonedPolicy.ps1 -SourcePolicyName global -TargetPolicyName "DefaultConferencing" -PolicyType ConferencingPolicy"#,
    );
    check(
        &c,
        r".\New-CsClonedPolicy.ps1",
        vec![
            named("SourcePolicyName", bare("global")),
            named("TargetPolicyName", st("DefaultConferencing")),
            named("PolicyType", bare("ConferencingPolicy")),
        ],
    );
}

#[test]
fn conferencing_pipeline() {
    let p = pipeline("Get-CsConferencingConfiguration | Set-CsConferencingConfiguration -ClientMediaPortRangeEnabled $True");
    check(&p.commands[0], "Get-CsConferencingConfiguration", vec![]);
    check(
        &p.commands[1],
        "Set-CsConferencingConfiguration",
        vec![named("ClientMediaPortRangeEnabled", Expr::Bool(true))],
    );
}

#[test]
fn cert_assignment_then_use() {
    let script = parse(
        "$cert = New-CsWebTrustedCACertificate -Thumbprint \"7a06f5b75287f17d4596118418b77004b4cd4d92\" -CAStore TrustedRootCA\n\
         Set-CsWebServiceConfiguration -TrustedCACerts @{Add=$cert}",
    )
    .unwrap();
    assert_eq!(script.statements.len(), 2);
    let Statement::Assign {
        var,
        value: Expr::Sub(p),
    } = &script.statements[0]
    else {
        panic!("{:?}", script.statements[0])
    };
    assert_eq!(var, "cert");
    assert_eq!(p.commands.len(), 1);
    check(
        &p.commands[0],
        "New-CsWebTrustedCACertificate",
        vec![
            named("Thumbprint", st("7a06f5b75287f17d4596118418b77004b4cd4d92")),
            named("CAStore", bare("TrustedRootCA")),
        ],
    );
    let Statement::Pipeline(p) = &script.statements[1] else {
        panic!()
    };
    check(
        &p.commands[0],
        "Set-CsWebServiceConfiguration",
        vec![named(
            "TrustedCACerts",
            hash(&[("Add", Expr::Var("cert".into()))]),
        )],
    );
    assert_eq!((p.commands[0].span.line, p.commands[0].span.column), (2, 1));
}

#[test]
fn file_transfer_filter() {
    let c = command(
        r#"Set-CsFileTransferFilterConfiguration -Identity global -Extensions @{Add=".jpg"}"#,
    );
    check(
        &c,
        "Set-CsFileTransferFilterConfiguration",
        vec![
            named("Identity", bare("global")),
            named("Extensions", hash(&[("Add", st(".jpg"))])),
        ],
    );
    let p = pipeline("Get-CsFileTransferFilterConfiguration -Identity global | Select-Object –ExpandProperty Extensions");
    check(
        &p.commands[0],
        "Get-CsFileTransferFilterConfiguration",
        vec![named("Identity", bare("global"))],
    );
    check(
        &p.commands[1],
        "Select-Object",
        vec![named("ExpandProperty", bare("Extensions"))],
    );
}

#[test]
fn client_policy() {
    let c = command("Set-CsClientPolicy -Identity global -DisableRTFIm $true");
    check(
        &c,
        "Set-CsClientPolicy",
        vec![
            named("Identity", bare("global")),
            named("DisableRTFIm", Expr::Bool(true)),
        ],
    );
}

// ---------- the rest of the language ----------

#[test]
fn statements_semicolons_newlines_comments() {
    let src = "# set things up\r\nGet-CsUser alice; Get-CsUser bob # trailing\n\n;;\n  Get-CsSite   # done";
    let script = parse(src).unwrap();
    let names: Vec<String> = script
        .statements
        .iter()
        .map(|s| match s {
            Statement::Pipeline(p) => p.commands[0].to_string(),
            s => panic!("{s:?}"),
        })
        .collect();
    assert_eq!(names, ["Get-CsUser alice", "Get-CsUser bob", "Get-CsSite"]);
    assert!(parse("").unwrap().statements.is_empty());
    assert!(parse("  # only a comment\n<# block\ncomment #>\n")
        .unwrap()
        .statements
        .is_empty());
    // a hash inside a word is not a comment
    check(&command("Get-X a#b"), "Get-X", vec![pos(bare("a#b"))]);
}

#[test]
fn colon_form_switches_and_dashes() {
    let c = command("Set-X -Enabled:$false -Force -Name:alice -Count: 3 —Verbose");
    check(
        &c,
        "Set-X",
        vec![
            named("Enabled", Expr::Bool(false)),
            switch("Force"),
            named("Name", bare("alice")),
            named("Count", Expr::Int(3)),
            switch("Verbose"),
        ],
    );
    // a switch right before a pipe, a semicolon or the end
    let p = pipeline("Remove-X -Force | Get-Y -Confirm");
    check(&p.commands[0], "Remove-X", vec![switch("Force")]);
    check(&p.commands[1], "Get-Y", vec![switch("Confirm")]);
    // en dash inside a cmdlet name (cookbook misprint) is a hyphen
    assert_eq!(command("Get–CsUser").name, "Get-CsUser");
}

#[test]
fn numbers_and_null() {
    let c = command("Set-X -A 5 -B -3 -C 1.5 -D –0.25 -E $NULL -F 7a06f5 -G 10.0.0.1");
    check(
        &c,
        "Set-X",
        vec![
            named("A", Expr::Int(5)),
            named("B", Expr::Int(-3)),
            named("C", Expr::Float(1.5)),
            named("D", Expr::Float(-0.25)),
            named("E", Expr::Null),
            named("F", bare("7a06f5")),
            named("G", bare("10.0.0.1")),
        ],
    );
}

#[test]
fn arrays() {
    let c = command(
        r#"Set-X -A "a","b" -B a, b,c -C @("x", 'y') -D @() -E @(1
  2; 3)"#,
    );
    check(
        &c,
        "Set-X",
        vec![
            named("A", Expr::Array(vec![st("a"), st("b")])),
            named("B", Expr::Array(vec![bare("a"), bare("b"), bare("c")])),
            named("C", Expr::Array(vec![st("x"), st("y")])),
            named("D", Expr::Array(vec![])),
            named(
                "E",
                Expr::Array(vec![Expr::Int(1), Expr::Int(2), Expr::Int(3)]),
            ),
        ],
    );
    // positional array
    check(
        &command("Get-X a,b"),
        "Get-X",
        vec![pos(Expr::Array(vec![bare("a"), bare("b")]))],
    );
}

#[test]
fn strings_and_escapes() {
    let c = command(
        r#"Set-X -A 'it''s' -B "say ""hi"" `"now`" `$5`ttab" -C "" -D 'a "b"' -E "x;y|z#w""#,
    );
    check(
        &c,
        "Set-X",
        vec![
            named("A", st("it's")),
            named("B", st("say \"hi\" \"now\" $5\ttab")),
            named("C", st("")),
            named("D", st("a \"b\"")),
            named("E", st("x;y|z#w")),
        ],
    );
}

#[test]
fn curly_quotes() {
    let c = command("Set-CsUser –Identity “Ken Myer” -DisplayName ‘Ken’’s’ -Office „Redmond“");
    check(
        &c,
        "Set-CsUser",
        vec![
            named("Identity", st("Ken Myer")),
            named("DisplayName", st("Ken's")),
            named("Office", st("Redmond")),
        ],
    );
}

#[test]
fn bare_words() {
    let c = command(
        r"Get-X Site:Redmond sip:alice@litwareinc.com Tag:RedmondPolicy .jpg C:\Logs\x.txt * a=b",
    );
    let want: Vec<Arg> = [
        "Site:Redmond",
        "sip:alice@litwareinc.com",
        "Tag:RedmondPolicy",
        ".jpg",
        r"C:\Logs\x.txt",
        "*",
        "a=b",
    ]
    .into_iter()
    .map(|w| pos(bare(w)))
    .collect();
    check(&c, "Get-X", want);
    // quoted parts glue onto a bare word, as in PowerShell
    check(
        &command(r#"Get-X ab"c d""#),
        "Get-X",
        vec![pos(bare("abc d"))],
    );
}

#[test]
fn hashtables() {
    let c = command(
        "Set-X -A @{Add=\"a\"; Remove='b','c'} -B @{\n  \"Replace\" = $x\n  Count=3\n} -C @{}",
    );
    check(
        &c,
        "Set-X",
        vec![
            named(
                "A",
                hash(&[
                    ("Add", st("a")),
                    ("Remove", Expr::Array(vec![st("b"), st("c")])),
                ]),
            ),
            named(
                "B",
                hash(&[("Replace", Expr::Var("x".into())), ("Count", Expr::Int(3))]),
            ),
            named("C", hash(&[])),
        ],
    );
    let h = c.value("a").unwrap();
    assert_eq!(h.hash_get("ADD"), Some(&st("a")));
    assert_eq!(h.hash_get("nope"), None);
}

#[test]
fn assignments_of_values() {
    let script =
        parse("$a = 'x'\n$b=@{Add=1}; $c = 1,2 ; $d = (Get-CsUser alice).SipAddress\n$e = $a")
            .unwrap();
    let values: Vec<(String, Expr)> = script
        .statements
        .into_iter()
        .map(|s| match s {
            Statement::Assign { var, value } => (var, value),
            s => panic!("{s:?}"),
        })
        .collect();
    assert_eq!(values[0], ("a".into(), st("x")));
    assert_eq!(values[1], ("b".into(), hash(&[("Add", Expr::Int(1))])));
    assert_eq!(
        values[2],
        ("c".into(), Expr::Array(vec![Expr::Int(1), Expr::Int(2)]))
    );
    let Expr::Prop(base, prop) = &values[3].1 else {
        panic!("{:?}", values[3])
    };
    assert_eq!(prop, "SipAddress");
    let Expr::Sub(p) = &**base else {
        panic!("{base:?}")
    };
    check(&p.commands[0], "Get-CsUser", vec![pos(bare("alice"))]);
    assert_eq!(values[4], ("e".into(), Expr::Var("a".into())));
}

#[test]
fn subexpressions_and_properties() {
    let c = command("Grant-CsClientPolicy -Identity $user.Identity -PolicyName (Get-CsClientPolicy -Identity Tag:X).Identity -List $a.b.c -V ('x')");
    let sub = Expr::Sub(Pipeline {
        commands: vec![command("Get-CsClientPolicy -Identity Tag:X")],
    });
    // spans differ between the two parses; compare what matters
    let Some(Arg::Named {
        value: Some(Expr::Prop(base, p)),
        ..
    }) = c.param("policyname")
    else {
        panic!("{c:?}")
    };
    assert_eq!(p, "Identity");
    assert_eq!(base.to_string(), sub.to_string());
    assert_eq!(
        c.value("Identity"),
        Some(&Expr::Prop(
            Box::new(Expr::Var("user".into())),
            "Identity".into()
        ))
    );
    assert_eq!(
        c.value("List"),
        Some(&Expr::Prop(
            Box::new(Expr::Prop(Box::new(Expr::Var("a".into())), "b".into())),
            "c".into()
        ))
    );
    assert_eq!(c.value("V"), Some(&st("x")));
    // a member needs to be glued on: `$a .b` is two arguments
    check(
        &command("Get-X $a .b"),
        "Get-X",
        vec![pos(Expr::Var("a".into())), pos(bare(".b"))],
    );
    // multi-command pipeline inside parentheses, across lines
    let c = command("Set-X -U (Get-CsUser |\n  Select-Object -First 1)");
    let Some(Expr::Sub(p)) = c.value("U") else {
        panic!("{c:?}")
    };
    assert_eq!(p.commands.len(), 2);
}

#[test]
fn command_helpers() {
    let c = command("Get-CsAdminRole CSUserModifier -Force -Identity:x extra");
    assert!(c.is("get-csadminrole"));
    assert!(matches!(
        c.param("FORCE"),
        Some(Arg::Named { value: None, .. })
    ));
    assert_eq!(c.value("identity"), Some(&bare("x")));
    assert_eq!(c.param("Ident"), None, "no prefix matching here");
    assert_eq!(
        c.positional().cloned().collect::<Vec<_>>(),
        [bare("CSUserModifier"), bare("extra")]
    );
    assert_eq!(bare("x").as_str(), Some("x"));
    assert_eq!(Expr::Int(1).as_str(), None);
    assert_eq!((c.span.line, c.span.column, c.span.start), (1, 1, 0));
    assert_eq!(
        c.span.end,
        "Get-CsAdminRole CSUserModifier -Force -Identity:x extra".len()
    );
}

#[test]
fn spans_point_at_command_names() {
    let p = pipeline("Get-A x |\n   Set-B -Y z");
    assert_eq!((p.commands[1].span.line, p.commands[1].span.column), (2, 4));
    // columns count characters, not bytes
    let p = pipeline("Get-A “é” | Set-B");
    assert_eq!(p.commands[1].span.column, 13);
}

#[test]
fn display_prints_powershell() {
    let cases = [
        (Expr::Bool(true), "$true"),
        (Expr::Null, "$null"),
        (Expr::Int(-4), "-4"),
        (Expr::Float(2.0), "2.0"),
        (Expr::Float(0.5), "0.5"),
        (st("a \"b\" $c `d"), r#""a `"b`" `$c ``d""#),
        (bare("Site:Redmond"), "Site:Redmond"),
        (bare("has space"), "\"has space\""),
        (bare("5"), "\"5\""),
        (Expr::Array(vec![st("a"), bare("b")]), r#""a", b"#),
        (Expr::Array(vec![st("a")]), r#"@("a")"#),
        (Expr::Array(vec![]), "@()"),
        (
            hash(&[
                ("Add", st("x")),
                ("remove", Expr::Array(vec![st("a"), st("b")])),
            ]),
            r#"@{Add="x"; remove="a", "b"}"#,
        ),
        (Expr::Var("cert".into()), "$cert"),
        (
            Expr::Prop(Box::new(Expr::Var("u".into())), "Identity".into()),
            "$u.Identity",
        ),
        (
            Expr::Prop(Box::new(st("x")), "Length".into()),
            r#"("x").Length"#,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
    let p = pipeline("Get-CsAdminRole CSUserModifier | Select-Object –ExpandProperty cmdlets | fl");
    assert_eq!(
        p.to_string(),
        "Get-CsAdminRole CSUserModifier | Select-Object -ExpandProperty cmdlets | fl"
    );
}

#[test]
fn display_round_trips() {
    let scripts = [
        "New-CsAdminRole -Identity CsUserModifier -Template CsViewOnlyAdministrator -Cmdlets @{add=\"set-CsUser\"}",
        "Set-CsAdminRole -Identity CsUserModifier –Cmdlets @{remove=\"Get-CSVoiceRoutingPolicy\",\"Get-CSVoiceTestConfiguration\"}",
        "$cert = New-CsWebTrustedCACertificate -Thumbprint \"7a06\" -CAStore TrustedRootCA; Set-CsWebServiceConfiguration -TrustedCACerts @{Add=$cert}",
        "Get-X -A 1.5,-2,'it''s',@(@(1,2),3) -B:$false -C (Get-Y | fl).Name -D @{'a b'=@(); c=$null} -Force",
        "$x = 1,2\n$y = @{k=\"`t\"}\n.\\New-CsClonedPolicy.ps1 -SourcePolicyName global",
        "Get-CsUser | ? {$_.Enabled -eq $false -and -not ($_.A -like 'x*' -or $_.B -cmatch '^y')} | select @{n='U'; e={$_.SipAddress}}",
        "Get-X | Where-Object {-not -not $_.A -and ($_.B.C -in 1,'2',$null) -or $_.D}",
    ];
    for src in scripts {
        let once = parse(src).unwrap().to_string();
        let twice = parse(&once)
            .unwrap_or_else(|e| panic!("{once:?}: {e}"))
            .to_string();
        assert_eq!(once, twice, "{src:?}");
    }
}

#[test]
fn line_continuation() {
    check(
        &command("Set-X -A 1 `\n  -B 2"),
        "Set-X",
        vec![named("A", Expr::Int(1)), named("B", Expr::Int(2))],
    );
}

// ---------- script blocks ----------

#[test]
fn script_blocks() {
    use confab_admin::{CmpOp, Cond};
    let cur = |p: &str| Expr::Prop(Box::new(Expr::Var("_".into())), p.into());
    let c = command("Where-Object {$_.Enabled -eq $false}");
    assert_eq!(
        c.args,
        vec![pos(Expr::Block(Box::new(Cond::Cmp {
            left: cur("Enabled"),
            op: CmpOp::Eq,
            case_sensitive: false,
            right: Expr::Bool(false),
        })))]
    );
    // -and binds tighter than -or; -not tighter than both; operators ignore case
    let c = command("? { $_.A -OR $_.B -And -NOT $_.C -CLike 'x*' }");
    let want = Cond::Or(
        Box::new(Cond::Value(cur("A"))),
        Box::new(Cond::And(
            Box::new(Cond::Value(cur("B"))),
            Box::new(Cond::Not(Box::new(Cond::Cmp {
                left: cur("C"),
                op: CmpOp::Like,
                case_sensitive: true,
                right: st("x*"),
            }))),
        )),
    );
    assert_eq!(c.args, vec![pos(Expr::Block(Box::new(want)))]);
    // across lines, with a list on the right, a number, a nested property
    let c = command("where {\n  $_.A.B -in 'x','y' -and\n  $_.N -ge -5\n}");
    let Some(Arg::Positional(Expr::Block(b))) = c.args.first() else {
        panic!("{c:?}")
    };
    assert_eq!(b.to_string(), "$_.A.B -in \"x\", \"y\" -and $_.N -ge -5");
    // the simplified syntax is plain parameters
    check(
        &command("Where-Object Enabled -eq $false"),
        "Where-Object",
        vec![pos(bare("Enabled")), named("eq", Expr::Bool(false))],
    );
    // in a hashtable (a calculated property)
    let c = command("Select-Object @{Name='U'; Expression={$_.SipAddress}}");
    let Some(Arg::Positional(h)) = c.args.first() else {
        panic!()
    };
    assert_eq!(
        h.hash_get("expression"),
        Some(&Expr::Block(Box::new(Cond::Value(cur("SipAddress")))))
    );
}

#[test]
fn script_block_errors() {
    check_error("Get-X | ? {}", 1, 11, "empty script block");
    check_error("Get-X | ? {$_.A -eq}", 1, 17, "missing value after '-eq'");
    check_error(
        "Get-X | ? {$_.A -eq 1",
        1,
        11,
        "unbalanced '{': missing closing '}'",
    );
    check_error("Get-X | ? {$_.A -foo 1}", 1, 17, "unknown operator -foo");
    check_error(
        "Get-X | ? {$_.A -eq 1 2}",
        1,
        23,
        "expected '}' to close '{'",
    );
    check_error(
        "Get-X | ? {$_.A -eq (Get-Y)}",
        1,
        21,
        "commands are not supported",
    );
    check_error(
        "Get-X | ? {$_.A -eq @(Get-Y)}",
        1,
        21,
        "commands are not supported",
    );
    check_error("Get-X | ? {$_.A | Get-Y}", 1, 17, "expected '}'");
    check_error(
        "Get-X | ? {-and}",
        1,
        12,
        "expected a value in the script block",
    );
    check_error(
        "Get-X | ? {{$_}}",
        1,
        12,
        "expected a value in the script block",
    );
    check_error("Get-X }", 1, 7, "no matching '{' or '@{'");
    // nesting is bounded: no input exhausts the stack
    let deep = format!(
        "Get-X | ? {{{}$_{}}}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(error(&deep).message.contains("nested more than 64 deep"));
    let deep = format!("Get-X -A {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).message.contains("nested more than 64 deep"));
    let deep = format!("Get-X | ? {{{}$_}}", "-not ".repeat(10_000));
    assert!(error(&deep).message.contains("nested more than 64 deep"));
}

/// Every prefix and every one-character corruption of pipeline scripts parses or fails
/// with a positioned error; never a panic.
#[test]
fn no_input_makes_the_parser_panic() {
    let scripts = [
        "Get-CsUser | Where-Object {$_.Enabled -eq $false -and -not ($_.A -like 'x*' -or $_.B -cmatch '^y')} | Select-Object @{n='U'; e={$_.SipAddress}}, DisplayName -First 2",
        "Get-CsUser | ? Enabled -EQ $false | sort DisplayName -Descending | ft -Property SipAddress -AutoSize",
        "Get-CsUser | measure -Property X -Sum | fl *; Get-Help Get-CsUser -Full; Get-Command *CsVoice*",
        "Get-CsUser | Export-Csv -Path users.csv -NoTypeInformation",
    ];
    let noise = [
        '{', '}', '(', ')', '@', '$', '-', '\'', '"', '`', '|', ';', ',', '.', '\n', ' ', '_', '=',
    ];
    for src in scripts {
        let chars: Vec<char> = src.chars().collect();
        for i in 0..=chars.len() {
            let prefix: String = chars[..i].iter().collect();
            let _ = parse(&prefix);
            for n in noise {
                let mut v = chars.clone();
                if i < v.len() {
                    v[i] = n;
                } else {
                    v.push(n);
                }
                let s: String = v.iter().collect();
                if let Err(e) = parse(&s) {
                    assert!(e.line >= 1 && e.column >= 1, "{s:?}: {e}");
                }
            }
        }
    }
}

// ---------- errors ----------

#[test]
fn error_unterminated_strings() {
    check_error(
        r#"Set-CsUser -Identity "alice"#,
        1,
        22,
        r#"unterminated string (missing closing ")"#,
    );
    check_error(
        "Get-X\nSet-X -A 'it''s",
        2,
        10,
        "unterminated string (missing closing ')",
    );
    check_error("Set-X -A “open", 1, 10, "unterminated string");
    check_error("Set-X -A \"ends in backtick`", 1, 10, "unterminated string");
    check_error("Get-X <# never closed", 1, 7, "unterminated block comment");
}

#[test]
fn error_unbalanced_brackets() {
    check_error(
        "Set-X -A @{Add=1",
        1,
        10,
        "unbalanced '@{': missing closing '}'",
    );
    check_error(
        "Set-X -A @(1, 2",
        1,
        10,
        "unbalanced '@(': missing closing ')'",
    );
    check_error(
        "Set-X -A (Get-Y",
        1,
        10,
        "unbalanced '(': missing closing ')'",
    );
    check_error("Set-X -A (\n", 1, 10, "unbalanced '('");
    check_error(
        "Set-X -A @{Add=1)",
        1,
        17,
        "expected '}' to close '@{' at line 1, column 10, found ')'",
    );
    check_error("Get-X a)", 1, 8, "unexpected ')' with no matching '('");
    check_error("Get-X }", 1, 7, "unexpected '}'");
    check_error("Set-X -A (1 2)", 1, 13, "expected ')'");
}

#[test]
fn error_hash_entries() {
    check_error(
        r#"Set-X -Cmdlets @{add "Set-CsUser"}"#,
        1,
        22,
        "hashtable entry 'add' has no '='",
    );
    check_error("Set-X -A @{Add}", 1, 15, "hashtable entry 'Add' has no '='");
    check_error("Set-X -A @{Add=}", 1, 15, "missing value after 'Add='");
    check_error("Set-X -A @{$k=1}", 1, 12, "expected a hashtable key");
    check_error(
        "Set-X -A @{a=1 b=2}",
        1,
        16,
        "expected ';' or '}' after hashtable entry",
    );
}

#[test]
fn error_empty_pipeline_elements() {
    check_error("Get-X | | Set-Y", 1, 9, "empty pipeline element");
    check_error("| Get-X", 1, 1, "empty pipeline element");
    check_error(
        "Get-X |",
        1,
        7,
        "empty pipeline element (no command after '|')",
    );
    check_error("Get-X |\n\n| Set-Y", 3, 1, "empty pipeline element");
    check_error("Get-X | ; Set-Y", 1, 7, "empty pipeline element");
}

#[test]
fn error_value_instead_of_command() {
    check_error(
        r#""hello" | Get-X"#,
        1,
        1,
        "expected a command, found a value (string \"hello\")",
    );
    check_error(
        "Get-X | 42",
        1,
        9,
        "expected a command, found a value (number 42)",
    );
    check_error(
        "$x",
        1,
        1,
        "expected a command, found a value (variable $x)",
    );
    check_error("Get-X; @{a=1}", 1, 8, "expected a command, found a value");
    check_error(
        "-Identity alice",
        1,
        1,
        "expected a command, found parameter -Identity",
    );
    check_error(
        "$x = 1,2 | Get-Y",
        1,
        10,
        "a pipeline must start with a command",
    );
    check_error("$x =", 1, 4, "missing value after '$x ='");
}

#[test]
fn error_unexpected_characters() {
    check_error(
        "Get-X | Where-Object { Get-Y }",
        1,
        24,
        "bare word 'Get-Y' in a script block",
    );
    check_error("Get-X [string]", 1, 7, "unexpected character '['");
    check_error("Get-X & y", 1, 7, "unexpected character '&'");
    check_error("Get-X > out.txt", 1, 7, "unexpected character '>'");
    check_error("Get-X $", 1, 7, "unexpected character '$'");
    check_error("Get-X @x", 1, 7, "unexpected character '@'");
    check_error("Get-X = 1", 1, 7, "unexpected '='");
    check_error("Set-X -A 1,", 1, 11, "missing value after ','");
    check_error("Set-X -A:", 1, 7, "missing value after '-A:'");
    check_error(
        "Get-X\n  Set-Y -A \"ok\" -B 'x\n",
        2,
        20,
        "unterminated string",
    );
}

// ---------- suggest ----------

#[test]
fn suggestions() {
    let cmdlets = [
        "Get-CsUser",
        "Set-CsUser",
        "Get-CsAdminRole",
        "New-CsAdminRole",
    ];
    assert_eq!(suggest("get-csusr", cmdlets), Some("Get-CsUser"));
    assert_eq!(suggest("Get-CsUser", cmdlets), Some("Get-CsUser"));
    assert_eq!(suggest("GET-CSADMIN", cmdlets), Some("Get-CsAdminRole"));
    assert_eq!(suggest("Get-CsSite", cmdlets), None);
    assert_eq!(suggest("", cmdlets), None);
    // the closest wins over an earlier prefix match
    assert_eq!(suggest("Ident", ["Identityx", "Idend"]), Some("Idend"));
    assert_eq!(
        suggest("Ident", ["Identity", "Identification"]),
        Some("Identity")
    );
}

#[test]
fn every_prefix_parses_or_errors_without_panicking() {
    let src = "$cert = New-X –Thumbprint “7a06” -A:@{Add=$c; 'k'=1,2}\n<# c #> Get-Y (Get-Z a).B | fl `\n -C @(1;-2.5) ‘x’’y’ a\"b\" # end";
    for (i, _) in src.char_indices() {
        let _ = parse(&src[..i]);
        let _ = parse(&src[i..]);
    }
}
