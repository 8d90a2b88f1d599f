//! PowerShell's pipeline helper cmdlets, as Microsoft's reference documents them:
//! Where-Object (script blocks and the simplified syntax), Select-Object, Sort-Object,
//! Measure-Object, Format-List, Format-Table and Export-Csv. They only shape what the
//! cmdlets before them output, so every role may run them (roles.rs, ALWAYS_ALLOWED);
//! Export-Csv writes only into the session's export folder and is audited.

use crate::ast::{CmpOp, Cond, Expr};
use crate::cmdlets::{bad, failed, p, sw, switch_on as on, Cmdlet, Param};
use crate::exec::{Bound, ExecError, Session};
use crate::object::{display, format_list, format_table_with, Obj, TableOptions};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The simplified Where-Object syntax's operator parameters (`-EQ`, `-CEQ`, …).
pub(crate) fn where_operators() -> Vec<&'static str> {
    let mut v = vec![];
    for op in CmpOp::ALL {
        v.push(op.name());
        v.push(crate::cmdlets::leak_str(format!("C{}", op.name())));
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn cmdlet(
    name: &'static str,
    params: Vec<Param>,
    max_positional: usize,
    changes: bool,
    help: &'static str,
    check: fn(&Bound, &Session) -> Result<(), ExecError>,
    run: crate::cmdlets::Run,
) -> Cmdlet {
    Cmdlet {
        name,
        params,
        mandatory: vec![],
        max_positional,
        pipeline_input: true,
        changes,
        help,
        kind: None,
        check,
        run,
    }
}

pub(crate) fn cmdlets() -> Vec<Cmdlet> {
    let mut where_params = vec![p("FilterScript"), p("Property"), p("Value"), sw("Not")];
    where_params.extend(where_operators().into_iter().map(p));
    vec![
        cmdlet(
            "Where-Object",
            where_params,
            2,
            false,
            "Keeps the objects piped in for which a condition holds: a script block ({$_.Enabled -eq $false}) or the simplified form (Where-Object Enabled -eq $false). Aliases: where, ?.",
            check_where,
            where_object,
        ),
        cmdlet(
            "Select-Object",
            vec![
                p("Property"),
                p("ExpandProperty"),
                p("ExcludeProperty"),
                p("First"),
                p("Last"),
                p("Skip"),
                sw("Unique"),
            ],
            1,
            false,
            "Picks properties (-Property, wildcards allowed) or the value of one (-ExpandProperty) of the objects piped in, or some of the objects (-First, -Last, -Skip, -Unique). Alias: select.",
            check_select,
            select_object,
        ),
        cmdlet(
            "Sort-Object",
            vec![p("Property"), sw("Descending"), sw("Unique"), sw("CaseSensitive")],
            1,
            false,
            "Sorts the objects piped in by property values (-Descending, -Unique). Alias: sort.",
            check_specs,
            sort_object,
        ),
        cmdlet(
            "Measure-Object",
            vec![
                p("Property"),
                sw("Sum"),
                sw("Average"),
                sw("Maximum"),
                sw("Minimum"),
            ],
            1,
            false,
            "Counts the objects piped in; with -Property and -Sum, -Average, -Maximum, -Minimum also computes those. Alias: measure.",
            check_specs,
            measure_object,
        ),
        cmdlet(
            "Format-List",
            vec![p("Property")],
            1,
            false,
            "Shows objects as property lists, each property on its own line (alias fl).",
            check_specs,
            passthrough,
        ),
        cmdlet(
            "Format-Table",
            vec![
                p("Property"),
                sw("AutoSize"),
                sw("HideTableHeaders"),
                sw("Wrap"),
            ],
            1,
            false,
            "Shows objects as a table, one column per property (alias ft); -AutoSize sizes columns to their content.",
            check_specs,
            passthrough,
        ),
        cmdlet(
            "Export-Csv",
            vec![
                p("Path"),
                sw("NoTypeInformation"),
                sw("NoClobber"),
                p("Delimiter"),
            ],
            1,
            // writes a file: audited
            true,
            "Writes the objects piped in as comma-separated values (RFC 4180) to a file in the export folder.",
            check_export_csv,
            export_csv,
        ),
    ]
}

fn passthrough(_: &Bound, _: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    Ok(input.unwrap_or_default())
}

fn has_var(e: &Expr) -> bool {
    match e {
        Expr::Var(_) | Expr::Sub(_) => true,
        Expr::Array(items) => items.iter().any(has_var),
        Expr::Hash(entries) => entries.iter().any(|(_, v)| has_var(v)),
        Expr::Prop(base, _) => has_var(base),
        _ => false,
    }
}

// ----- values as PowerShell compares them ----------------------------------------------------

/// A value as a Boolean, as PowerShell converts it: `$null`, `0`, `""` and an empty list
/// are false; a one-element list is its element.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => match a.as_slice() {
            [] => false,
            [one] => truthy(one),
            _ => true,
        },
        Value::Object(_) => true,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Null => Some(0.0),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    display(v)
}

fn fold(s: &str, case_sensitive: bool) -> String {
    if case_sensitive {
        s.to_string()
    } else {
        s.to_lowercase()
    }
}

/// `a -eq b`, `b` converted to the type of `a` (PowerShell's rule).
fn equals(a: &Value, b: &Value, cs: bool) -> bool {
    match a {
        Value::Null => b.is_null(),
        _ if b.is_null() => false,
        Value::Bool(x) => *x == truthy(b),
        Value::Number(_) => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        Value::String(x) => fold(x, cs) == fold(&text(b), cs),
        Value::Array(items) => items.iter().any(|i| equals(i, b, cs)),
        Value::Object(_) => a == b,
    }
}

/// The order of `a` and `b` for -gt/-lt (`b` converted to the type of `a`); `$null` sorts
/// before everything.
fn order(a: &Value, b: &Value, cs: bool) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) => Some(Ordering::Less),
        (_, Value::Null) => Some(Ordering::Greater),
        (Value::Bool(x), _) => Some(x.cmp(&truthy(b))),
        (Value::Number(_), _) => as_number(a)?.partial_cmp(&as_number(b)?),
        (Value::String(x), _) => Some(fold(x, cs).cmp(&fold(&text(b), cs))),
        _ => None,
    }
}

/// PowerShell wildcards: `*` any run, `?` one character, `[abc]`/`[a-z]` one of a set.
pub fn wildcard(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    let p: Vec<char> = fold(pattern, case_sensitive).chars().collect();
    let t: Vec<char> = fold(text, case_sensitive).chars().collect();
    // iterative matching with backtracking to the last `*`: O(len(p) * len(t))
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class_end(&p, pi) {
                Some(end) if class_matches(&p[pi + 1..end], t[ti]) => Some(end + 1 - pi),
                Some(_) => None,
                // an unclosed `[` is a literal
                None if t[ti] == '[' => Some(1),
                None => None,
            },
            Some(c) if *c == t[ti] => Some(1),
            _ => None,
        };
        match step {
            Some(n) => {
                pi += n;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == '*')
}

fn class_end(p: &[char], open: usize) -> Option<usize> {
    p[open + 1..]
        .iter()
        .position(|c| *c == ']')
        .map(|i| open + 1 + i)
}

fn class_matches(set: &[char], c: char) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            if set[i] <= c && c <= set[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// The longest regular expression accepted by -match (and its compiled size is bounded).
const MAX_REGEX: usize = 1000;

fn regex(pattern: &str, case_sensitive: bool) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_REGEX {
        return Err(format!("the pattern is longer than {MAX_REGEX} characters"));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("'{pattern}' is not a valid regular expression: {e}"))
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// `left -op right`.
pub fn compare(left: &Value, op: CmpOp, right: &Value, cs: bool) -> Result<bool, String> {
    // a list on the left filters: the comparison holds when it holds for an element
    if let (Value::Array(items), false) = (
        left,
        matches!(
            op,
            CmpOp::Contains | CmpOp::NotContains | CmpOp::In | CmpOp::NotIn
        ),
    ) {
        for i in items {
            if compare(i, op, right, cs)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    Ok(match op {
        CmpOp::Eq => equals(left, right, cs),
        CmpOp::Ne => !equals(left, right, cs),
        CmpOp::Gt => order(left, right, cs) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(
            order(left, right, cs),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        CmpOp::Lt => order(left, right, cs) == Some(Ordering::Less),
        CmpOp::Le => matches!(
            order(left, right, cs),
            Some(Ordering::Less | Ordering::Equal)
        ),
        CmpOp::Like => wildcard(&text(right), &text(left), cs),
        CmpOp::NotLike => !wildcard(&text(right), &text(left), cs),
        CmpOp::Match => regex(&text(right), cs)?.is_match(&text(left)),
        CmpOp::NotMatch => !regex(&text(right), cs)?.is_match(&text(left)),
        CmpOp::Contains => as_list(left).iter().any(|i| equals(i, right, cs)),
        CmpOp::NotContains => !as_list(left).iter().any(|i| equals(i, right, cs)),
        CmpOp::In => as_list(right).iter().any(|i| equals(i, left, cs)),
        CmpOp::NotIn => !as_list(right).iter().any(|i| equals(i, left, cs)),
    })
}

/// Property `name` of a value (case-insensitive); of each element of a list (PowerShell's
/// member enumeration).
fn member(v: &Value, name: &str) -> Value {
    match v {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|i| member(i, name))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        Value::String(s) if name.eq_ignore_ascii_case("Length") => Value::from(s.chars().count()),
        _ => Value::Null,
    }
}

fn is_current(v: &str) -> bool {
    v == "_" || v.eq_ignore_ascii_case("PSItem")
}

fn obj_value(o: &Obj) -> Value {
    match o {
        Obj::Record { props, .. } => {
            Value::Object(props.iter().cloned().collect::<Map<String, Value>>())
        }
        Obj::Value(v) => v.clone(),
    }
}

/// A value in a script block, `$_` being `cur`.
fn eval(e: &Expr, cur: &Obj, s: &Session) -> Result<Value, ExecError> {
    Ok(match e {
        Expr::Var(v) if is_current(v) => obj_value(cur),
        Expr::Prop(base, name) => match &**base {
            Expr::Var(v) if is_current(v) => match cur {
                Obj::Record { .. } => cur.get(name).cloned().unwrap_or(Value::Null),
                Obj::Value(v) => member(v, name),
            },
            other => member(&eval(other, cur, s)?, name),
        },
        Expr::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| eval(i, cur, s))
                .collect::<Result<_, _>>()?,
        ),
        other => s.literal(other)?,
    })
}

fn holds(c: &Cond, cur: &Obj, s: &Session, b: &Bound) -> Result<bool, ExecError> {
    Ok(match c {
        Cond::Or(x, y) => holds(x, cur, s, b)? || holds(y, cur, s, b)?,
        Cond::And(x, y) => holds(x, cur, s, b)? && holds(y, cur, s, b)?,
        Cond::Not(x) => !holds(x, cur, s, b)?,
        Cond::Value(e) => truthy(&eval(e, cur, s)?),
        Cond::Cmp {
            left,
            op,
            case_sensitive,
            right,
        } => compare(
            &eval(left, cur, s)?,
            *op,
            &eval(right, cur, s)?,
            *case_sensitive,
        )
        .map_err(|m| failed(b, m))?,
    })
}

/// Regular expressions written literally in a condition, checked before anything runs.
fn check_cond(c: &Cond) -> Result<(), String> {
    match c {
        Cond::Or(x, y) | Cond::And(x, y) => {
            check_cond(x)?;
            check_cond(y)
        }
        Cond::Not(x) => check_cond(x),
        Cond::Cmp {
            op: CmpOp::Match | CmpOp::NotMatch,
            right: Expr::Str(p),
            case_sensitive,
            ..
        } => regex(p, *case_sensitive).map(|_| ()),
        _ => Ok(()),
    }
}

// ----- Where-Object ---------------------------------------------------------------------------

/// What a Where-Object command tests.
enum Filter<'c> {
    Block(&'c Cond),
    /// The simplified syntax: property, operator (None: the property's value is true), value.
    Simple {
        property: String,
        op: Option<(CmpOp, bool)>,
        value: Option<&'c Expr>,
        not: bool,
    },
}

fn where_filter<'c>(b: &Bound<'c>, s: &Session) -> Result<Filter<'c>, ExecError> {
    let block = b.get("FilterScript").or_else(|| {
        b.positional
            .first()
            .copied()
            .filter(|e| matches!(e, Expr::Block(_)))
    });
    let ops: Vec<(&'static str, Option<&'c Expr>)> = b
        .named
        .iter()
        .filter(|(n, _)| !["FilterScript", "Property", "Value", "Not"].contains(n))
        .copied()
        .collect();
    if let Some(e) = block {
        let Expr::Block(c) = e else {
            return Err(bad(
                b,
                "FilterScript",
                "a script block is expected, such as {$_.Enabled -eq $false}",
            ));
        };
        if b.positional.len() > 1
            || !ops.is_empty()
            || b.has("Property")
            || b.has("Value")
            || b.has("Not")
        {
            return Err(failed(
                b,
                "Parameter set cannot be resolved: use either a script block or the simplified syntax (Where-Object Name -EQ value)",
            ));
        }
        return Ok(Filter::Block(c));
    }
    let mut positional = b.positional.iter().copied();
    let prop_expr = match b.get("Property") {
        Some(e) => Some(e),
        None => positional.next(),
    };
    let Some(prop_expr) = prop_expr else {
        return Err(ExecError::Missing {
            cmdlet: b.def.name.to_string(),
            param: "FilterScript".into(),
        });
    };
    let property = match s.literal(prop_expr)? {
        Value::String(p) if !p.is_empty() => p,
        other => {
            return Err(bad(
                b,
                "Property",
                format!("'{}' is not a property name", display(&other)),
            ))
        }
    };
    if ops.len() > 1 {
        return Err(failed(
            b,
            format!(
                "Parameter set cannot be resolved: give one operator, not {}",
                ops.iter()
                    .map(|(n, _)| format!("-{n}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ));
    }
    let op = ops.first().map(|(n, v)| {
        let (name, cs) = match n.strip_prefix('C') {
            Some(rest) if CmpOp::parse(rest).is_some() && *n != "Contains" => (rest, true),
            _ => (*n, false),
        };
        (CmpOp::parse(name).map(|(o, _)| (o, cs)), *v)
    });
    let value = match (&op, b.get("Value"), positional.next()) {
        (Some((_, Some(v))), None, None) => Some(*v),
        (Some((_, None)), Some(v), None) | (Some((_, None)), None, Some(v)) => Some(v),
        (None, None, None) => None,
        (None, _, _) => {
            return Err(failed(
                b,
                "a value needs an operator: Where-Object Name -EQ value",
            ))
        }
        (Some((_, _)), _, _) => {
            return Err(failed(
                b,
                "Parameter set cannot be resolved: the value is given twice",
            ))
        }
    };
    Ok(Filter::Simple {
        property,
        op: op.and_then(|(o, _)| o),
        value,
        not: on(b, "Not"),
    })
}

fn check_where(b: &Bound, s: &Session) -> Result<(), ExecError> {
    match where_filter(b, s)? {
        Filter::Block(c) => check_cond(c).map_err(|m| bad(b, "FilterScript", m)),
        Filter::Simple {
            op: Some((CmpOp::Match | CmpOp::NotMatch, cs)),
            value: Some(v),
            ..
        } if !has_var(v) => {
            let p = s.literal(v)?;
            regex(&display(&p), cs)
                .map(|_| ())
                .map_err(|m| bad(b, "Match", m))
        }
        _ => Ok(()),
    }
}

fn where_object(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let filter = where_filter(b, s)?;
    let mut out = vec![];
    for o in input.unwrap_or_default() {
        let keep = match &filter {
            Filter::Block(c) => holds(c, &o, s, b)?,
            Filter::Simple {
                property,
                op,
                value,
                not,
            } => {
                let left = match &o {
                    Obj::Record { .. } => o.get(property).cloned().unwrap_or(Value::Null),
                    Obj::Value(v) => member(v, property),
                };
                let r = match (op, value) {
                    (Some((op, cs)), Some(v)) => {
                        compare(&left, *op, &s.literal(v)?, *cs).map_err(|m| failed(b, m))?
                    }
                    _ => truthy(&left),
                };
                r != *not
            }
        };
        if keep {
            out.push(o);
        }
    }
    Ok(out)
}

// ----- property lists ------------------------------------------------------------------------

/// One entry of a -Property list: a name (wildcards allowed) or a calculated property
/// `@{Name='X'; Expression={$_.Y}}`.
pub(crate) enum Spec<'c> {
    Name(String),
    Calc { name: String, expr: &'c Cond },
}

fn specs<'c>(b: &Bound<'c>, s: &Session, param: &str) -> Result<Option<Vec<Spec<'c>>>, ExecError> {
    let e = match b.get(param) {
        Some(e) => e,
        None if param == "Property" => match b.positional.first() {
            Some(e) => *e,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let items: Vec<&Expr> = match e {
        Expr::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut out = vec![];
    for i in items {
        match i {
            Expr::Hash(entries) => {
                let get = |keys: &[&str]| {
                    entries
                        .iter()
                        .find(|(k, _)| keys.iter().any(|x| x.eq_ignore_ascii_case(k)))
                        .map(|(_, v)| v)
                };
                let expr = match get(&["Expression", "E"]) {
                    Some(Expr::Block(c)) => &**c,
                    _ => {
                        return Err(bad(
                            b,
                            param,
                            "a calculated property needs Expression={…}, e.g. @{Name='User'; Expression={$_.SipAddress}}",
                        ))
                    }
                };
                let name = match get(&["Name", "N", "Label", "L"]) {
                    Some(n) => display(&s.literal(n)?),
                    None => format!("{}", expr),
                };
                if let Some((k, _)) = entries.iter().find(|(k, _)| {
                    !["Expression", "E", "Name", "N", "Label", "L"]
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(k))
                }) {
                    return Err(bad(
                        b,
                        param,
                        format!("'{k}' is not a key of a calculated property (Name, Expression)"),
                    ));
                }
                out.push(Spec::Calc { name, expr });
            }
            Expr::Block(_) => {
                return Err(bad(
                    b,
                    param,
                    "a script block alone is not a property: write @{Name='X'; Expression={…}}",
                ))
            }
            other => match s.literal(other)? {
                Value::String(n) => out.push(Spec::Name(n)),
                Value::Array(a) => {
                    for v in a {
                        out.push(Spec::Name(display(&v)));
                    }
                }
                v => out.push(Spec::Name(display(&v))),
            },
        }
    }
    Ok(Some(out))
}

fn check_specs(b: &Bound, s: &Session) -> Result<(), ExecError> {
    let has_vars =
        b.get("Property").is_some_and(has_var) || b.positional.first().is_some_and(|e| has_var(e));
    if !has_vars {
        if let Some(list) = specs(b, s, "Property")? {
            for sp in &list {
                if let Spec::Calc { expr, .. } = sp {
                    check_cond(expr).map_err(|m| bad(b, "Property", m))?;
                }
            }
            if b.def.name == "Measure-Object" && list.iter().any(|x| matches!(x, Spec::Calc { .. }))
            {
                return Err(bad(b, "Property", "Measure-Object takes property names"));
            }
        }
    }
    Ok(())
}

/// The properties of `o` that `specs` select, in order: wildcards expand to the matching
/// properties (in the object's order), a name it lacks gives `$null` (as PowerShell does).
fn pick(
    o: &Obj,
    specs: &[Spec],
    s: &Session,
    b: &Bound,
) -> Result<Vec<(String, Value)>, ExecError> {
    let mut out: Vec<(String, Value)> = vec![];
    let push = |out: &mut Vec<(String, Value)>, k: String, v: Value| {
        if !out.iter().any(|(x, _)| x.eq_ignore_ascii_case(&k)) {
            out.push((k, v));
        }
    };
    for sp in specs {
        match sp {
            Spec::Name(n) if n.contains(['*', '?', '[']) => {
                if let Obj::Record { props, .. } = o {
                    for (k, v) in props {
                        if wildcard(n, k, false) {
                            push(&mut out, k.clone(), v.clone());
                        }
                    }
                }
            }
            Spec::Name(n) => {
                let (k, v) = match o {
                    Obj::Record { props, .. } => props
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(n))
                        .cloned()
                        .unwrap_or((n.clone(), Value::Null)),
                    Obj::Value(v) => (n.clone(), member(v, n)),
                };
                push(&mut out, k, v);
            }
            Spec::Calc { name, expr } => {
                let v = match expr {
                    Cond::Value(e) => eval(e, o, s)?,
                    c => Value::Bool(holds(c, o, s, b)?),
                };
                push(&mut out, name.clone(), v);
            }
        }
    }
    Ok(out)
}

// ----- Select-Object ---------------------------------------------------------------------------

fn count_arg(b: &Bound, s: &Session, name: &str) -> Result<Option<usize>, ExecError> {
    let Some(e) = b.get(name) else {
        return Ok(None);
    };
    match s.literal(e)? {
        Value::Number(n) if n.as_u64().is_some() => Ok(Some(n.as_u64().unwrap_or(0) as usize)),
        Value::String(t) if t.trim().parse::<usize>().is_ok() => {
            Ok(t.trim().parse::<usize>().ok())
        }
        other => Err(bad(
            b,
            name,
            format!(
                "Cannot convert value \"{}\" to type \"System.Int32\": a count of 0 or more is expected",
                display(&other)
            ),
        )),
    }
}

fn check_select(b: &Bound, s: &Session) -> Result<(), ExecError> {
    for n in ["First", "Last", "Skip"] {
        if b.get(n).is_some_and(|e| !has_var(e)) {
            count_arg(b, s, n)?;
        }
    }
    if b.has("ExpandProperty") && (b.has("Property") || !b.positional.is_empty()) {
        return Err(failed(
            b,
            "use -ExpandProperty or -Property, not both (confab does not add properties to expanded values)",
        ));
    }
    check_specs(b, s)
}

fn select_object(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let mut input = input.unwrap_or_default();
    // -Skip, then -First/-Last; -Skip counts from the end when -Last is given
    let (first, last, skip) = (
        count_arg(b, s, "First")?,
        count_arg(b, s, "Last")?,
        count_arg(b, s, "Skip")?.unwrap_or(0),
    );
    if last.is_some() && first.is_none() {
        let keep = input.len().saturating_sub(skip);
        input.truncate(keep);
    } else {
        input.drain(..skip.min(input.len()));
    }
    if first.is_some() || last.is_some() {
        let n = input.len();
        let f = first.unwrap_or(0).min(n);
        let l = last.unwrap_or(0).min(n - f);
        let mut kept: Vec<Obj> = input.drain(..f).collect();
        let tail_start = input.len() - l;
        kept.extend(input.drain(tail_start..));
        input = kept;
    }
    let mut out: Vec<Obj> = vec![];
    if let Some(name) = b.get("ExpandProperty") {
        let name = display(&s.literal(name)?);
        for o in &input {
            let v = match o {
                Obj::Record { props, .. } => props
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.clone()),
                Obj::Value(Value::Object(m)) => m
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.clone()),
                Obj::Value(_) => None,
            };
            match v {
                Some(Value::Array(items)) => out.extend(items.into_iter().map(Obj::Value)),
                Some(Value::Null) => {}
                Some(v) => out.push(Obj::Value(v)),
                None => return Err(failed(b, format!("Property \"{name}\" cannot be found."))),
            }
        }
    } else if let Some(list) = specs(b, s, "Property")? {
        let exclude = specs(b, s, "ExcludeProperty")?.unwrap_or_default();
        for o in &input {
            let mut props = pick(o, &list, s, b)?;
            props.retain(|(k, _)| {
                !exclude
                    .iter()
                    .any(|x| matches!(x, Spec::Name(n) if wildcard(n, k, false)))
            });
            let ty = match o {
                Obj::Record { type_name, .. } => type_name.trim_start_matches("Selected."),
                Obj::Value(_) => "Object",
            };
            out.push(Obj::record(&format!("Selected.{ty}"), props));
        }
    } else {
        out = input;
    }
    if on(b, "Unique") {
        // Select-Object -Unique compares exactly (case-sensitively), keeping the first
        let mut seen: Vec<Obj> = vec![];
        out.retain(|o| {
            if seen.contains(o) {
                false
            } else {
                seen.push(o.clone());
                true
            }
        });
    }
    Ok(out)
}

// ----- Sort-Object ---------------------------------------------------------------------------

/// The order Sort-Object puts values in: `$null` first, numbers by value, text ignoring case
/// (unless `cs`), otherwise by the displayed text.
fn sort_cmp(a: &Value, b: &Value, cs: bool) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(_), Value::Number(_)) => as_number(a)
            .partial_cmp(&as_number(b))
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => {
            let (x, y) = (text(a), text(b));
            fold(&x, cs).cmp(&fold(&y, cs)).then_with(|| {
                if cs {
                    Ordering::Equal
                } else {
                    // PowerShell puts lower case first among equals ignoring case
                    y.cmp(&x)
                }
            })
        }
    }
}

fn sort_keys(
    o: &Obj,
    specs: &Option<Vec<Spec>>,
    s: &Session,
    b: &Bound,
) -> Result<Vec<Value>, ExecError> {
    Ok(match (specs, o) {
        (Some(list), _) => pick(o, list, s, b)?.into_iter().map(|(_, v)| v).collect(),
        (None, Obj::Value(v)) => vec![v.clone()],
        // no property: a record sorts by its identity, or its first property
        (None, Obj::Record { props, .. }) => vec![o
            .get("Identity")
            .or_else(|| props.first().map(|(_, v)| v))
            .cloned()
            .unwrap_or(Value::Null)],
    })
}

fn sort_object(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    let specs = specs(b, s, "Property")?;
    let cs = on(b, "CaseSensitive");
    let desc = on(b, "Descending");
    let mut keyed = vec![];
    for o in input.unwrap_or_default() {
        keyed.push((sort_keys(&o, &specs, s, b)?, o));
    }
    let cmp = |x: &[Value], y: &[Value]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| sort_cmp(a, b, cs))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    };
    // stable, as PowerShell's
    keyed.sort_by(|(x, _), (y, _)| {
        let o = cmp(x, y);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    if on(b, "Unique") {
        // equal keys (ignoring case unless -CaseSensitive) keep the first
        let unique_eq = |x: &[Value], y: &[Value]| {
            x.iter().zip(y).all(|(a, b)| match (a, b) {
                (Value::String(p), Value::String(q)) => fold(p, cs) == fold(q, cs),
                _ => sort_cmp(a, b, cs) == Ordering::Equal,
            })
        };
        keyed.dedup_by(|later, earlier| unique_eq(&later.0, &earlier.0));
    }
    Ok(keyed.into_iter().map(|(_, o)| o).collect())
}

// ----- Measure-Object --------------------------------------------------------------------------

fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn measure_object(
    b: &Bound,
    s: &mut Session,
    input: Option<Vec<Obj>>,
) -> Result<Vec<Obj>, ExecError> {
    let input = input.unwrap_or_default();
    let names: Vec<Option<String>> = match specs(b, s, "Property")? {
        None => vec![None],
        Some(list) => {
            let mut names = vec![];
            for sp in list {
                if let Spec::Name(n) = sp {
                    if n.contains(['*', '?', '[']) {
                        // wildcards: every matching property of the first record
                        if let Some(Obj::Record { props, .. }) = input.first() {
                            names.extend(
                                props
                                    .iter()
                                    .filter(|(k, _)| wildcard(&n, k, false))
                                    .map(|(k, _)| Some(k.clone())),
                            );
                        }
                    } else {
                        names.push(Some(n));
                    }
                }
            }
            names
        }
    };
    let (sum, avg, max, min) = (
        on(b, "Sum"),
        on(b, "Average"),
        on(b, "Maximum"),
        on(b, "Minimum"),
    );
    let mut out = vec![];
    for name in names {
        let values: Vec<Value> = match &name {
            None => input.iter().map(obj_value).collect(),
            Some(n) => {
                let vals: Vec<Value> = input
                    .iter()
                    .filter_map(|o| match o {
                        Obj::Record { props, .. } => props
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(n))
                            .map(|(_, v)| v.clone()),
                        Obj::Value(v) => Some(member(v, n)),
                    })
                    .collect();
                if vals.is_empty() && !input.is_empty() {
                    return Err(failed(
                        b,
                        format!(
                            "The property \"{n}\" cannot be found in the input for any objects."
                        ),
                    ));
                }
                // $null values are not measured
                vals.into_iter().filter(|v| !v.is_null()).collect()
            }
        };
        let count = values.len();
        let numeric = || -> Result<Vec<f64>, ExecError> {
            values
                .iter()
                .map(|v| {
                    as_number(v)
                        .filter(|_| !matches!(v, Value::Bool(_) | Value::Null))
                        .ok_or_else(|| {
                            failed(
                                b,
                                format!("Input object \"{}\" is not numeric.", display(v)),
                            )
                        })
                })
                .collect()
        };
        let extreme = |want: Ordering| -> Value {
            let all_numbers = values
                .iter()
                .all(|v| as_number(v).is_some() && !v.is_boolean());
            let mut best: Option<&Value> = None;
            for v in &values {
                let better = match best {
                    None => true,
                    Some(cur) if all_numbers => {
                        as_number(v).partial_cmp(&as_number(cur)) == Some(want)
                    }
                    Some(cur) => sort_cmp(v, cur, false) == want,
                };
                if better {
                    best = Some(v);
                }
            }
            match best {
                Some(v) if all_numbers => number_value(as_number(v).unwrap_or(0.0)),
                Some(v) => v.clone(),
                None => Value::Null,
            }
        };
        let total = if sum || avg {
            Some(numeric()?.iter().sum::<f64>())
        } else {
            None
        };
        out.push(Obj::record(
            "GenericMeasureInfo",
            vec![
                ("Count".into(), Value::from(count)),
                (
                    "Average".into(),
                    match total {
                        Some(t) if avg && count > 0 => number_value(t / count as f64),
                        _ => Value::Null,
                    },
                ),
                (
                    "Sum".into(),
                    match total {
                        Some(t) if sum => number_value(t),
                        _ => Value::Null,
                    },
                ),
                (
                    "Maximum".into(),
                    if max {
                        extreme(Ordering::Greater)
                    } else {
                        Value::Null
                    },
                ),
                (
                    "Minimum".into(),
                    if min {
                        extreme(Ordering::Less)
                    } else {
                        Value::Null
                    },
                ),
                (
                    "Property".into(),
                    name.map(Value::String).unwrap_or(Value::Null),
                ),
            ],
        ));
    }
    Ok(out)
}

// ----- Format-List / Format-Table --------------------------------------------------------------

/// The text of Format-List or Format-Table for `objs`; `None` for other cmdlets.
pub(crate) fn render(b: &Bound, s: &Session, objs: &[Obj]) -> Result<Option<String>, ExecError> {
    let list = b.def.name == "Format-List";
    if !list && b.def.name != "Format-Table" {
        return Ok(None);
    }
    let shaped: Vec<Obj> = match specs(b, s, "Property")? {
        Some(sp) => objs
            .iter()
            .map(|o| match o {
                Obj::Record { type_name, .. } => Ok(Obj::record(type_name, pick(o, &sp, s, b)?)),
                Obj::Value(_) => Ok(o.clone()),
            })
            .collect::<Result<_, ExecError>>()?,
        None => objs.to_vec(),
    };
    let explicit = b.get("Property").is_some() || !b.positional.is_empty();
    Ok(Some(if list {
        format_list(&shaped)
    } else {
        format_table_with(
            &shaped,
            &TableOptions {
                // without a property list, the first four properties (as for a type with no
                // table view); with one, every property asked for
                max_cols: if explicit { usize::MAX } else { 4 },
                autosize: on(b, "AutoSize") || on(b, "Wrap"),
                hide_headers: on(b, "HideTableHeaders"),
            },
        )
    }))
}

// ----- Export-Csv ------------------------------------------------------------------------------

fn delimiter(b: &Bound, s: &Session) -> Result<char, ExecError> {
    let Some(e) = b.get("Delimiter") else {
        return Ok(',');
    };
    let d = display(&s.literal(e)?);
    let mut chars = d.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c != '"' && c != '\r' && c != '\n' => Ok(c),
        _ => Err(bad(
            b,
            "Delimiter",
            format!("'{d}' is not one character (and not a quote or line break)"),
        )),
    }
}

fn check_export_csv(b: &Bound, s: &Session) -> Result<(), ExecError> {
    if !b.has("Path") && b.positional.is_empty() {
        return Err(ExecError::Missing {
            cmdlet: b.def.name.into(),
            param: "Path".into(),
        });
    }
    if s.export_dir.is_none() {
        return Err(failed(
            b,
            "files are written only in the data directory's export folder, and this session has none",
        ));
    }
    if b.get("Delimiter").is_some_and(|e| !has_var(e)) {
        delimiter(b, s)?;
    }
    Ok(())
}

/// One RFC 4180 field: always quoted (as Export-Csv does), quotes doubled.
fn csv_field(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// The CSV text of `objs`: the columns are the first object's properties (as in PowerShell).
pub fn to_csv(objs: &[Obj], delim: char, type_line: bool) -> String {
    let mut out = String::new();
    let Some(first) = objs.first() else {
        return out;
    };
    let cols: Vec<String> = match first {
        Obj::Record { props, .. } => props.iter().map(|(k, _)| k.clone()).collect(),
        Obj::Value(_) => vec!["Value".into()],
    };
    if type_line {
        let ty = match first {
            Obj::Record { type_name, .. } => type_name.as_str(),
            Obj::Value(_) => "Value",
        };
        out.push_str(&format!("#TYPE {ty}\r\n"));
    }
    let line = |out: &mut String, cells: Vec<String>| {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(delim);
            }
            csv_field(out, c);
        }
        out.push_str("\r\n");
    };
    line(&mut out, cols.clone());
    for o in objs {
        let cells = match o {
            Obj::Record { .. } => cols
                .iter()
                .map(|c| o.get(c).map(display).unwrap_or_default())
                .collect(),
            Obj::Value(v) => vec![display(v)],
        };
        line(&mut out, cells);
    }
    out
}

fn export_csv(b: &Bound, s: &mut Session, input: Option<Vec<Obj>>) -> Result<Vec<Obj>, ExecError> {
    use std::io::Write;
    let delim = delimiter(b, s)?;
    let path = crate::cmdlets::export_file(b, s, "Path", true)?;
    match std::fs::symlink_metadata(&path) {
        Ok(_) if on(b, "NoClobber") => {
            return Err(failed(
                b,
                format!("The file '{}' already exists (-NoClobber).", path.display()),
            ))
        }
        Ok(m) if m.file_type().is_file() => std::fs::remove_file(&path)
            .map_err(|e| failed(b, format!("{}: {e}", path.display())))?,
        Ok(_) => {
            return Err(failed(
                b,
                format!(
                    "'{}' exists and is not a plain file: not overwritten",
                    path.display()
                ),
            ))
        }
        Err(_) => {}
    }
    let text = to_csv(
        &input.unwrap_or_default(),
        delim,
        !on(b, "NoTypeInformation"),
    );
    let mut o = std::fs::OpenOptions::new();
    // O_EXCL: refuses a file or link that appeared meanwhile
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(&path)
        .map_err(|e| failed(b, format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| failed(b, format!("{}: {e}", path.display())))?;
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard("sip:a*", "SIP:alice@x", false));
        assert!(!wildcard("sip:a*", "SIP:alice@x", true));
        assert!(wildcard("?ob", "bob", false));
        assert!(wildcard("[ab]ob", "bob", false));
        assert!(wildcard("[a-c]ob", "bob", false));
        assert!(!wildcard("[x-z]ob", "bob", false));
        assert!(wildcard("*", "", false));
        assert!(wildcard("*ice*", "alice", false));
        assert!(!wildcard("alice", "alice2", false));
        assert!(wildcard("a[", "a[", false));
        assert!(!wildcard(&"*a".repeat(50), &"a".repeat(40), false));
    }

    #[test]
    fn comparisons_follow_the_left_operand() {
        let c = |l: Value, op, r: Value| compare(&l, op, &r, false).unwrap();
        assert!(c(json!("Alice"), CmpOp::Eq, json!("alice")));
        assert!(!compare(&json!("Alice"), CmpOp::Eq, &json!("alice"), true).unwrap());
        assert!(c(json!(false), CmpOp::Eq, json!(false)));
        assert!(c(json!(10), CmpOp::Gt, json!("9")));
        assert!(
            c(json!("10"), CmpOp::Lt, json!("9")),
            "text compares as text"
        );
        assert!(c(Value::Null, CmpOp::Eq, Value::Null));
        assert!(!c(json!("x"), CmpOp::Eq, Value::Null));
        assert!(c(Value::Null, CmpOp::Lt, json!(1)));
        assert!(c(json!(["a", "B"]), CmpOp::Contains, json!("b")));
        assert!(c(json!("b"), CmpOp::In, json!(["a", "B"])));
        assert!(
            c(json!(["a", "b"]), CmpOp::Eq, json!("B")),
            "a list filters"
        );
        assert!(c(json!("sip:bob@x"), CmpOp::Match, json!("^SIP:b")));
        assert!(compare(&json!("x"), CmpOp::Match, &json!("("), false).is_err());
        assert!(!truthy(&json!([0])) && truthy(&json!([0, 0])));
    }

    #[test]
    fn csv_quotes_as_rfc_4180() {
        let o = Obj::record(
            "T",
            vec![
                ("A".into(), json!("say \"hi\", then\nleave")),
                ("B".into(), json!(true)),
                ("C".into(), Value::Null),
            ],
        );
        assert_eq!(
            to_csv(&[o], ',', false),
            "\"A\",\"B\",\"C\"\r\n\"say \"\"hi\"\", then\nleave\",\"True\",\"\"\r\n"
        );
    }
}
