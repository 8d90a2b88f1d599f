//! What flows through a pipeline, and how the shell prints it the way the Lync Management
//! Shell does (Format-List property lists by default, Format-Table on request).

use serde_json::Value;

/// A pipeline object: a record with ordered properties (a configuration document, a user,
/// a role), or a bare value (what `Select-Object -ExpandProperty` yields).
#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    Record {
        type_name: String,
        props: Vec<(String, Value)>,
    },
    Value(Value),
}

impl Obj {
    pub fn record(type_name: &str, props: Vec<(String, Value)>) -> Obj {
        Obj::Record {
            type_name: type_name.to_string(),
            props,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Obj::Record { props, .. } => props
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
            Obj::Value(_) => None,
        }
    }

    pub fn identity(&self) -> Option<String> {
        self.get("Identity")
            .and_then(|v| v.as_str().map(str::to_string))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Obj::Record { type_name, props } => {
                let mut m = serde_json::Map::new();
                m.insert("_type".into(), Value::String(type_name.clone()));
                for (k, v) in props {
                    m.insert(k.clone(), v.clone());
                }
                Value::Object(m)
            }
            Obj::Value(v) => v.clone(),
        }
    }
}

/// A value as PowerShell displays it in a list: True/False, lists in braces.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "{{{}}}",
            a.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", display(v)))
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// Format-List: `Name : value` lines, names padded to the longest, a blank line between records.
pub fn format_list(objs: &[Obj]) -> String {
    let mut out = String::new();
    for o in objs {
        match o {
            Obj::Record { props, .. } => {
                let w = props.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                out.push('\n');
                for (k, v) in props {
                    out.push_str(&format!("{k:<w$} : {}\n", display(v)));
                }
            }
            Obj::Value(v) => {
                out.push_str(&display(v));
                out.push('\n');
            }
        }
    }
    if objs.iter().any(|o| matches!(o, Obj::Record { .. })) {
        out.push('\n');
    }
    out
}

/// Format-Table: the first `max_cols` properties as columns.
pub fn format_table(objs: &[Obj], max_cols: usize) -> String {
    let Some(Obj::Record { props, .. }) = objs.iter().find(|o| matches!(o, Obj::Record { .. }))
    else {
        return format_list(objs);
    };
    let cols: Vec<&str> = props
        .iter()
        .take(max_cols)
        .map(|(k, _)| k.as_str())
        .collect();
    let cell = |o: &Obj, c: &str| o.get(c).map(display).unwrap_or_default();
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            objs.iter()
                .map(|o| cell(o, c).chars().count().min(40))
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let mut out = String::from("\n");
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{:<w$}", v.chars().take(40).collect::<String>(), w = *w))
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_string()
    };
    out.push_str(&line(cols.iter().map(|c| c.to_string()).collect()));
    out.push('\n');
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    out.push('\n');
    for o in objs {
        out.push_str(&line(cols.iter().map(|c| cell(o, c)).collect()));
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_look_like_powershell() {
        let o = Obj::record(
            "X",
            vec![
                ("Identity".into(), json!("Global")),
                ("PstnCallersBypassLobby".into(), json!(false)),
                ("Extensions".into(), json!([".exe", ".jpg"])),
            ],
        );
        let t = format_list(&[o]);
        assert!(t.contains("Identity               : Global\n"), "{t}");
        assert!(t.contains("PstnCallersBypassLobby : False\n"));
        assert!(t.contains("Extensions             : {.exe, .jpg}\n"));
        assert_eq!(
            format_list(&[Obj::Value(json!("Set-CsUser"))]),
            "Set-CsUser\n"
        );
    }
}
