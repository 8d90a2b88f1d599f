//! Building cmdlet text from REST input. Every value is quoted, so input can only ever be
//! data: strings in single quotes with quotes doubled (or, when they contain a curly
//! single quote, which the shell also treats as a quote, in double quotes with backtick
//! escapes), booleans as `$true`/`$false`, numbers as they are, arrays as `@(a, b)`, objects
//! as `@{Key=value}`. Names (parameters, hashtable keys, config nouns) must be plain
//! identifiers: ASCII letters and digits, starting with a letter.

use serde_json::{Map, Value};

use crate::ApiError;

/// ASCII letters and digits, starting with a letter (at most 128 characters).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && s.len() <= 128
}

fn is_curly_squote(c: char) -> bool {
    matches!(c, '\u{2018}' | '\u{2019}' | '\u{201A}')
}

fn is_dquote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

/// A string literal the shell reads back as exactly `s`.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    if s.chars().any(is_curly_squote) {
        // a doubled curly quote would read back as a straight one: use a double-quoted
        // string, escaping what is special there (backtick, `$`, the double quotes)
        out.push('"');
        for c in s.chars() {
            if c == '`' || c == '$' || is_dquote(c) {
                out.push('`');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
    }
    out
}

/// A JSON value as a shell value. `what` names it in error messages.
pub fn quote_value(v: &Value, what: &str) -> Result<String, ApiError> {
    quote_in(v, what, false)
}

fn quote_in(v: &Value, what: &str, in_array: bool) -> Result<String, ApiError> {
    Ok(match v {
        Value::Null => "$null".to_string(),
        Value::Bool(true) => "$true".to_string(),
        Value::Bool(false) => "$false".to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| ApiError::bad_request(format!("{what}: unsupported number")))?;
                // Display never uses an exponent; keep a decimal point so it stays a float
                let s = f.to_string();
                if s.contains('.') {
                    s
                } else {
                    format!("{s}.0")
                }
            }
        }
        Value::String(s) => quote_str(s),
        Value::Array(items) => {
            if in_array {
                return Err(ApiError::bad_request(format!(
                    "{what}: nested arrays are not supported"
                )));
            }
            let parts = items
                .iter()
                .map(|i| quote_in(i, what, true))
                .collect::<Result<Vec<_>, _>>()?;
            format!("@({})", parts.join(", "))
        }
        Value::Object(m) => {
            let mut parts = Vec::with_capacity(m.len());
            for (k, v) in m {
                if !is_identifier(k) {
                    return Err(ApiError::bad_request(format!(
                        "{what}: '{k}' is not a valid key (letters and digits only)"
                    )));
                }
                parts.push(format!("{k}={}", quote_in(v, what, false)?));
            }
            format!("@{{{}}}", parts.join("; "))
        }
    })
}

/// `-Name value` for each property of a PATCH body, in order. Names must be identifiers,
/// distinct (ignoring case), and must not (even abbreviated) name -Identity, which comes
/// from the path.
pub fn parameters(props: &Map<String, Value>) -> Result<String, ApiError> {
    if props.is_empty() {
        return Err(ApiError::bad_request(
            "the request body names no property to change",
        ));
    }
    let mut seen: Vec<String> = vec![];
    let mut out = String::new();
    for (name, value) in props {
        if !is_identifier(name) {
            return Err(ApiError::bad_request(format!(
                "'{name}' is not a valid property name (letters and digits only)"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if "identity".starts_with(&lower) {
            return Err(ApiError::bad_request(
                "the identity comes from the path; it cannot be changed in the body",
            ));
        }
        if seen.contains(&lower) {
            return Err(ApiError::bad_request(format!(
                "property '{name}' is given twice"
            )));
        }
        seen.push(lower);
        out.push_str(&format!(" -{name} {}", quote_value(value, name)?));
    }
    Ok(out)
}

/// `sip:address`, unless it already has the scheme.
fn sip_identity(address: &str) -> Result<String, ApiError> {
    let a = address.trim();
    if a.is_empty() {
        return Err(ApiError::bad_request("empty user address"));
    }
    let has_scheme = a.len() > 4 && a[..4].eq_ignore_ascii_case("sip:");
    Ok(quote_str(&if has_scheme {
        a.to_string()
    } else {
        format!("sip:{a}")
    }))
}

/// `Get-CsUser -Identity 'sip:{address}'`
pub fn get_user(address: &str) -> Result<String, ApiError> {
    Ok(format!("Get-CsUser -Identity {}", sip_identity(address)?))
}

/// `Set-CsUser -Identity 'sip:{address}' -Prop value …`
pub fn set_user(address: &str, props: &Map<String, Value>) -> Result<String, ApiError> {
    Ok(format!(
        "Set-CsUser -Identity {}{}",
        sip_identity(address)?,
        parameters(props)?
    ))
}

/// `New-CsUser -Identity 'sip:{SipAddress}' -Password '…' [-DisplayName '…'] [-OU '…']`
/// from `POST /users`' body: the fields are strings, `SipAddress` and `Password` are
/// required, any other field is refused.
pub fn new_user(body: &Map<String, Value>) -> Result<String, ApiError> {
    const FIELDS: &[&str] = &["SipAddress", "Password", "DisplayName", "OU"];
    if let Some(k) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field '{k}' (accepted: {})",
            FIELDS.join(", ")
        )));
    }
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
        }
    };
    let address =
        text("SipAddress")?.ok_or_else(|| ApiError::bad_request("missing 'SipAddress'"))?;
    let password = text("Password")?.ok_or_else(|| ApiError::bad_request("missing 'Password'"))?;
    let bare = address.trim();
    let bare = match bare.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sip:") => &bare[4..],
        _ => bare,
    };
    match bare.split_once('@') {
        Some((u, d)) if !u.is_empty() && !d.is_empty() => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "'SipAddress' must be a SIP address such as sip:alice@example.test, not '{address}'"
            )))
        }
    }
    let mut cmd = format!(
        "New-CsUser -Identity {} -Password {}",
        sip_identity(address)?,
        quote_str(password)
    );
    if let Some(n) = text("DisplayName")? {
        cmd.push_str(&format!(" -DisplayName {}", quote_str(n)));
    }
    if let Some(ou) = text("OU")? {
        cmd.push_str(&format!(" -OU {}", quote_str(ou)));
    }
    Ok(cmd)
}

/// `Remove-CsUser -Identity 'sip:{address}'`
pub fn remove_user(address: &str) -> Result<String, ApiError> {
    Ok(format!(
        "Remove-CsUser -Identity {}",
        sip_identity(address)?
    ))
}

/// Checks that `noun` names a configuration type (one with Get-/Set- cmdlets).
pub fn config_noun(noun: &str) -> Result<&'static str, ApiError> {
    if !is_identifier(noun) {
        return Err(ApiError::bad_request(format!(
            "'{noun}' is not a valid configuration type (letters and digits only)"
        )));
    }
    match confab_admin::cmdlets::find(&format!("Get-{noun}")) {
        Some(c) if c.kind.is_some() => Ok(c.name.strip_prefix("Get-").unwrap_or(c.name)),
        _ => Err(ApiError::not_found(format!(
            "no configuration type '{noun}'"
        ))),
    }
}

fn identity_arg(identity: &str) -> Result<String, ApiError> {
    if identity.trim().is_empty() {
        return Err(ApiError::bad_request("empty identity"));
    }
    Ok(quote_str(identity))
}

/// `Get-{noun}` or `Get-{noun} -Identity '{identity}'`
pub fn get_config(noun: &str, identity: Option<&str>) -> Result<String, ApiError> {
    let noun = config_noun(noun)?;
    Ok(match identity {
        None => format!("Get-{noun}"),
        Some(id) => format!("Get-{noun} -Identity {}", identity_arg(id)?),
    })
}

/// `Set-{noun} -Identity '{identity}' -Prop value …`
pub fn set_config(
    noun: &str,
    identity: &str,
    props: &Map<String, Value>,
) -> Result<String, ApiError> {
    let noun = config_noun(noun)?;
    if confab_admin::cmdlets::find(&format!("Set-{noun}")).is_none() {
        return Err(ApiError::bad_request(format!("{noun} cannot be changed")));
    }
    Ok(format!(
        "Set-{noun} -Identity {}{}",
        identity_arg(identity)?,
        parameters(props)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_admin::{parse, Arg, Expr, Statement};
    use serde_json::json;

    /// The value of the last argument of the only command in `src`.
    fn parsed_value(src: &str) -> Expr {
        let script = parse(src).expect("parses");
        assert_eq!(script.statements.len(), 1, "{src}");
        let Statement::Pipeline(p) = &script.statements[0] else {
            panic!("not a pipeline: {src}")
        };
        assert_eq!(p.commands.len(), 1, "{src}");
        match p.commands[0].args.last().expect("an argument") {
            Arg::Named { value: Some(v), .. } => v.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn strings_read_back_exactly() {
        let nasty = [
            "plain",
            "it's",
            "''",
            "'; Remove-CsUser -Identity sip:x@y #",
            "a\u{2019}b; Set-CsUser x",
            "\u{2018}\u{2019}\u{201A}'",
            "quote \" and \u{201C}curly\u{201D} $var `tick `n",
            "line\nbreak | pipe ; semi",
            "-Enabled",
            "",
            "5",
            "$true",
        ];
        for s in nasty {
            let src = format!("Set-CsUser -Identity x -DisplayName {}", quote_str(s));
            assert_eq!(parsed_value(&src), Expr::Str(s.to_string()), "{src}");
        }
    }

    #[test]
    fn values() {
        assert_eq!(quote_value(&json!(true), "x").unwrap(), "$true");
        assert_eq!(quote_value(&json!(false), "x").unwrap(), "$false");
        assert_eq!(quote_value(&json!(null), "x").unwrap(), "$null");
        assert_eq!(quote_value(&json!(-5), "x").unwrap(), "-5");
        assert_eq!(quote_value(&json!(2.5), "x").unwrap(), "2.5");
        assert_eq!(
            quote_value(&json!(["a", "b'c"]), "x").unwrap(),
            "@('a', 'b''c')"
        );
        assert!(quote_value(&json!([[1]]), "x").is_err());
        assert!(quote_value(&json!({"a b": 1}), "x").is_err());
        let src = format!(
            "Set-CsUser -Identity x -X {}",
            quote_value(&json!(-5), "x").unwrap()
        );
        assert_eq!(parsed_value(&src), Expr::Int(-5));
        let src = format!(
            "Set-CsUser -Identity x -X {}",
            quote_value(&json!(1e20), "x").unwrap()
        );
        assert_eq!(parsed_value(&src), Expr::Float(1e20));
        let src = format!(
            "Set-CsUser -Identity x -X {}",
            quote_value(&json!([1, "a", true]), "x").unwrap()
        );
        assert_eq!(
            parsed_value(&src),
            Expr::Array(vec![Expr::Int(1), Expr::Str("a".into()), Expr::Bool(true)])
        );
        let src = format!(
            "Set-CsUser -Identity x -X {}",
            quote_value(&json!(["only"]), "x").unwrap()
        );
        assert_eq!(
            parsed_value(&src),
            Expr::Array(vec![Expr::Str("only".into())])
        );
        let src = format!(
            "Set-CsUser -Identity x -X {}",
            quote_value(&json!({"add": ["a", "b"]}), "x").unwrap()
        );
        assert_eq!(
            parsed_value(&src),
            Expr::Hash(vec![(
                "add".into(),
                Expr::Array(vec![Expr::Str("a".into()), Expr::Str("b".into())])
            )])
        );
    }

    #[test]
    fn property_names() {
        let ok = json!({"Enabled": false, "DisplayName": "Al'ice"});
        let params = parameters(ok.as_object().unwrap()).unwrap();
        assert!(
            params.contains(" -Enabled $false") && params.contains(" -DisplayName 'Al''ice'"),
            "{params}"
        );
        assert_eq!(
            parameters(json!({"Enabled": false}).as_object().unwrap()).unwrap(),
            " -Enabled $false"
        );
        for bad in [
            json!({"Enabled; Remove-CsUser": 1}),
            json!({"-Enabled": 1}),
            json!({"": 1}),
            json!({"9x": 1}),
            json!({"Dis_play": 1}),
        ] {
            assert!(parameters(bad.as_object().unwrap()).is_err(), "{bad}");
        }
        for identity in [
            json!({"Identity": "x"}),
            json!({"iden": "x"}),
            json!({"I": "x"}),
        ] {
            assert!(
                parameters(identity.as_object().unwrap()).is_err(),
                "{identity}"
            );
        }
        assert!(parameters(
            json!({"Enabled": true, "enabled": false})
                .as_object()
                .unwrap()
        )
        .is_err());
        assert!(parameters(&Map::new()).is_err());
    }

    #[test]
    fn commands() {
        assert_eq!(
            get_user("user0001@example.test").unwrap(),
            "Get-CsUser -Identity 'sip:user0001@example.test'"
        );
        assert_eq!(
            get_user("sip:a@b").unwrap(),
            "Get-CsUser -Identity 'sip:a@b'"
        );
        assert_eq!(
            get_config("CsMeetingConfiguration", None).unwrap(),
            "Get-CsMeetingConfiguration"
        );
        assert_eq!(
            get_config("csmeetingconfiguration", Some("Global")).unwrap(),
            "Get-CsMeetingConfiguration -Identity 'Global'"
        );
        assert_eq!(
            set_config(
                "CsMeetingConfiguration",
                "Site:Redmond",
                json!({"PstnCallersBypassLobby": false})
                    .as_object()
                    .unwrap()
            )
            .unwrap(),
            "Set-CsMeetingConfiguration -Identity 'Site:Redmond' -PstnCallersBypassLobby $false"
        );
        assert_eq!(
            get_config("CsUser", None).unwrap_err().status,
            axum::http::StatusCode::NOT_FOUND
        );
        assert_eq!(
            get_config("Nope", None).unwrap_err().status,
            axum::http::StatusCode::NOT_FOUND
        );
        assert_eq!(
            get_config("Cs-User", None).unwrap_err().status,
            axum::http::StatusCode::BAD_REQUEST
        );
        // every generated command parses to a single command
        let cmd = set_user(
            "a'b@c; Remove-CsUser",
            json!({"DisplayName": "x'; Remove-CsUser y"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let script = parse(&cmd).unwrap();
        assert_eq!(script.statements.len(), 1);
    }

    #[test]
    fn new_and_remove_user() {
        let body = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(
            new_user(&body(json!({"SipAddress": "carol@example.test", "Password": "it's mine", "DisplayName": "Carol", "OU": "OU=Sales,DC=example,DC=test"}))).unwrap(),
            "New-CsUser -Identity 'sip:carol@example.test' -Password 'it''s mine' -DisplayName 'Carol' -OU 'OU=Sales,DC=example,DC=test'"
        );
        for (b, says) in [
            (json!({"Password": "x"}), "missing 'SipAddress'"),
            (json!({"SipAddress": "a@b"}), "missing 'Password'"),
            (
                json!({"SipAddress": "a@b", "Password": 1}),
                "'Password' must be a string",
            ),
            (
                json!({"SipAddress": "a@b", "Password": "x", "Roles": "all"}),
                "unknown field 'Roles'",
            ),
            (
                json!({"SipAddress": "sip:@b", "Password": "x"}),
                "'SipAddress' must be a SIP address",
            ),
            (
                json!({"SipAddress": "alice", "Password": "x"}),
                "'SipAddress' must be a SIP address",
            ),
        ] {
            let e = new_user(&body(b.clone())).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{b}");
            assert!(e.message.contains(says), "{b}: {}", e.message);
        }
        // input stays data: one command, whatever the password holds
        let cmd = new_user(&body(
            json!({"SipAddress": "a@b", "Password": "x'; Remove-CsUser -Identity sip:root@b #"}),
        ))
        .unwrap();
        assert_eq!(parse(&cmd).unwrap().statements.len(), 1);
        assert_eq!(
            confab_admin::cmdlets::redact(&cmd),
            "New-CsUser -Identity 'sip:a@b' -Password ********"
        );
        assert_eq!(
            remove_user("carol@example.test").unwrap(),
            "Remove-CsUser -Identity 'sip:carol@example.test'"
        );
    }
}
