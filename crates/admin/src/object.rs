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

/// How Format-Table lays out its columns.
#[derive(Clone, Debug)]
pub struct TableOptions {
    /// At most this many columns (the first properties of the first object).
    pub max_cols: usize,
    /// Columns as wide as their widest cell; otherwise cells are cut at
    /// [`MAX_CELL`] characters, ending in `...`.
    pub autosize: bool,
    pub hide_headers: bool,
}

/// The widest a column grows without `-AutoSize`.
pub const MAX_CELL: usize = 40;

/// Format-Table: the first `max_cols` properties as columns.
pub fn format_table(objs: &[Obj], max_cols: usize) -> String {
    format_table_with(
        objs,
        &TableOptions {
            max_cols,
            autosize: false,
            hide_headers: false,
        },
    )
}

/// Format-Table as PowerShell prints it: a header underlined by dashes as long as each
/// header, columns one space apart, numbers right-aligned, trailing spaces trimmed.
pub fn format_table_with(objs: &[Obj], opt: &TableOptions) -> String {
    let Some(Obj::Record { props, .. }) = objs.iter().find(|o| matches!(o, Obj::Record { .. }))
    else {
        return format_list(objs);
    };
    let cols: Vec<&str> = props
        .iter()
        .take(opt.max_cols)
        .map(|(k, _)| k.as_str())
        .collect();
    let cut = |t: String| -> String {
        let n = t.chars().count();
        if opt.autosize || n <= MAX_CELL {
            t
        } else {
            let mut s: String = t.chars().take(MAX_CELL - 3).collect();
            s.push_str("...");
            s
        }
    };
    // a table cell is one line
    let cell = |o: &Obj, c: &str| {
        cut(o
            .get(c)
            .map(display)
            .unwrap_or_default()
            .replace(['\r', '\n'], " "))
    };
    let numeric: Vec<bool> = cols
        .iter()
        .map(|c| {
            let mut vals = objs
                .iter()
                .filter_map(|o| o.get(c))
                .filter(|v| !v.is_null());
            let mut any = false;
            let all = vals.all(|v| {
                any = true;
                v.is_number()
            });
            any && all
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            objs.iter()
                .map(|o| cell(o, c).chars().count())
                .max()
                .unwrap_or(0)
                .max(if opt.hide_headers {
                    0
                } else {
                    c.chars().count()
                })
        })
        .collect();
    let mut out = String::from("\n");
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((v, w), right)| {
                if *right {
                    format!("{v:>w$}", w = *w)
                } else {
                    format!("{v:<w$}", w = *w)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_string()
    };
    if !opt.hide_headers {
        out.push_str(&line(cols.iter().map(|c| c.to_string()).collect()));
        out.push('\n');
        out.push_str(&line(
            cols.iter().map(|c| "-".repeat(c.chars().count())).collect(),
        ));
        out.push('\n');
    }
    for o in objs {
        out.push_str(&line(cols.iter().map(|c| cell(o, c)).collect()));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// What the shell prints for objects no Format- cmdlet shaped (PowerShell's Out-Default):
/// help as help text, command lists and selected objects of up to four properties as a
/// table (PowerShell's rule for objects without a view), everything else as a list.
pub fn format_default(objs: &[Obj]) -> String {
    let records: Vec<&Obj> = objs
        .iter()
        .filter(|o| matches!(o, Obj::Record { .. }))
        .collect();
    let Some(Obj::Record { type_name, props }) = records.first() else {
        return format_list(objs);
    };
    let same_type = records
        .iter()
        .all(|o| matches!(o, Obj::Record { type_name: t, .. } if t == type_name));
    if !same_type || records.len() != objs.len() {
        return format_list(objs);
    }
    if type_name.starts_with(crate::help::HELP_TYPE) {
        return objs.iter().map(crate::help::render).collect();
    }
    let table = matches!(type_name.as_str(), "CommandInfo" | "HelpInfoShort")
        || (type_name.starts_with("Selected.") && props.len() <= 4);
    if table {
        format_table_with(
            objs,
            &TableOptions {
                max_cols: usize::MAX,
                autosize: false,
                hide_headers: false,
            },
        )
    } else {
        format_list(objs)
    }
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
