//! The generic pages of configuration objects: for each noun of a topic, a list
//! (`Get-X`: identity and key properties), a detail form generated from the object's schema
//! (`Set-X` with the properties that changed), `New-X` at a scope the kind allows,
//! `Remove-X`, and `Grant-X` for policies. Field names are checked against the schema (an
//! unknown one is refused, naming it) and every value is quoted: the form can only ever be
//! data for the cmdlet.

use std::sync::OnceLock;

use axum::extract::{Path, Query, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use confab_admin::object::{display, Obj};
use confab_admin::schema::{PropType, ScopeKind};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::{
    check_fields, csrf_field, field, read_form, status_of, topic, with_status, Ctx, Fields,
    Outcome, Topic,
};
use crate::script::quote_str;

/// A noun the pages manage: its editable properties and how its objects are named.
pub(crate) struct Noun {
    pub noun: &'static str,
    pub props: Vec<(&'static str, PropType)>,
    /// The scopes New- may create ("Global", "Site", "Tag", "Service:<Role>", "Named",
    /// "Rule"); empty: no New-/Remove-.
    pub new_scopes: Vec<String>,
    pub is_policy: bool,
    /// Each property's default (in the order of `props`): what a New form starts from.
    pub defaults: Vec<Value>,
}

const RULE_PROPS: &[(&str, PropType)] = &[
    ("Pattern", PropType::Str { max_len: 1024 }),
    ("Translation", PropType::Str { max_len: 1024 }),
    (
        "Priority",
        PropType::Int {
            min: 0,
            max: 1_000_000,
        },
    ),
    ("Description", PropType::Str { max_len: 1024 }),
    ("IsInternalExtension", PropType::Bool),
];

fn nouns() -> &'static [Noun] {
    static N: OnceLock<Vec<Noun>> = OnceLock::new();
    N.get_or_init(|| {
        let mut v: Vec<Noun> = confab_admin::schema::kinds()
            .into_iter()
            .map(|k| Noun {
                noun: k.noun,
                props: k.props.iter().map(|p| (p.name, p.ty)).collect(),
                new_scopes: if k.get_set_only {
                    vec![]
                } else {
                    k.scopes
                        .iter()
                        // Global always exists (at its defaults until changed): New- makes
                        // the other scopes
                        .filter(|s| !matches!(s, ScopeKind::Global) || k.scopes.len() == 1)
                        .map(|s| match s {
                            ScopeKind::Global => "Global".to_string(),
                            ScopeKind::Site => "Site".to_string(),
                            ScopeKind::Tag => "Tag".to_string(),
                            ScopeKind::Service(r) => format!("Service:{r}"),
                            ScopeKind::Named => "Named".to_string(),
                        })
                        .collect()
                },
                is_policy: k.is_policy,
                defaults: k.props.iter().map(|p| p.default.clone()).collect(),
            })
            .collect();
        v.push(Noun {
            noun: "CsVoiceNormalizationRule",
            props: RULE_PROPS.to_vec(),
            new_scopes: vec!["Rule".to_string()],
            is_policy: false,
            defaults: vec![Value::Null; RULE_PROPS.len()],
        });
        v
    })
}

pub(crate) fn noun(name: &str) -> Option<&'static Noun> {
    nouns().iter().find(|n| n.noun == name)
}

impl Noun {
    fn prop(&self, name: &str) -> Option<(&'static str, PropType)> {
        self.props.iter().copied().find(|(n, _)| *n == name)
    }

    /// Up to three properties shown in the list.
    fn key_props(&self) -> Vec<&'static str> {
        self.props
            .iter()
            .filter(|(_, t)| !matches!(t, PropType::ObjList { .. }))
            .map(|(n, _)| *n)
            .take(3)
            .collect()
    }
}

/// A value as the form shows it (lists one per line).
fn form_value(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(items)) => items.iter().map(display).collect::<Vec<_>>().join("\n"),
        Some(v) => display(v),
        None => String::new(),
    }
}

fn detail_href(topic: &str, noun: &str, identity: &str) -> String {
    format!(
        "/_/cscp/{topic}/{noun}?{}",
        serde_urlencoded::to_string([("id", identity)]).unwrap_or_default()
    )
}

/// `GET /_/cscp/{topic}`: every noun of the topic the administrator may read.
pub(crate) async fn topic_page(ctx: Ctx, Path(slug): Path<String>) -> Response {
    let Some(t) = topic(&slug).filter(|t| !t.nouns.is_empty()) else {
        return super::super::page::error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page here.",
        );
    };
    if let Err(r) = ctx.require(t) {
        return r;
    }
    topic_view(&ctx, t, Outcome::None, None)
        .await
        .into_response()
}

async fn topic_view(
    ctx: &Ctx,
    t: &'static Topic,
    outcome: Outcome,
    typed: Option<(&str, &Fields)>,
) -> super::Html {
    let mut sections: Vec<Markup> = vec![];
    for n in t.nouns.iter().filter_map(|n| noun(n)) {
        if !ctx.may(&format!("Get-{}", n.noun)) {
            continue;
        }
        let listed = ctx.run(format!("Get-{}", n.noun)).await;
        let typed_here = typed.filter(|(tn, _)| *tn == n.noun).map(|(_, f)| f);
        sections.push(noun_section(
            ctx,
            t,
            n,
            listed.map(|o| o.objects),
            typed_here,
        ));
    }
    let test_form = if t.slug == "voice" && ctx.may("Test-CsVoiceNormalizationRule") {
        test_form(ctx, None, "", "")
    } else {
        html! {}
    };
    ctx.page(
        t.title,
        t.slug,
        html! {
            (outcome.markup())
            @if t.slug == "voice" { (test_form) }
            @for s in sections { (s) }
        },
    )
}

pub(crate) fn noun_section(
    ctx: &Ctx,
    t: &Topic,
    n: &Noun,
    objects: Result<Vec<Obj>, confab_admin::ExecError>,
    typed: Option<&Fields>,
) -> Markup {
    let keys = n.key_props();
    let may_new = !n.new_scopes.is_empty() && ctx.may(&format!("New-{}", n.noun));
    let may_set = ctx.may(&format!("Set-{}", n.noun));
    let id_anchor = n.noun.to_string();
    html! {
        section aria-labelledby=(id_anchor) {
            h2 #(id_anchor) { (n.noun) }
            @match &objects {
                Err(e) => p.error role="alert" { (e.to_string()) },
                Ok(objs) if objs.is_empty() => p.muted { "None." },
                Ok(objs) => table {
                    thead { tr { th scope="col" { "Identity" } @for k in &keys { th scope="col" { (k) } } } }
                    tbody {
                        @for o in objs {
                            @let id = o.identity().unwrap_or_default();
                            tr {
                                td { a href=(detail_href(t.slug, n.noun, &id)) { (id) } span.muted { @if may_set { " (edit)" } } }
                                @for k in &keys { td { (form_value(o.get(k))) } }
                            }
                        }
                    }
                },
            }
            @if may_new { (new_form(ctx, t, n, typed)) }
        }
    }
}

fn new_form(ctx: &Ctx, t: &Topic, n: &Noun, typed: Option<&Fields>) -> Markup {
    let typed_scope = typed.and_then(|f| field(f, "scope")).unwrap_or("");
    let typed_name = typed.and_then(|f| field(f, "name")).unwrap_or("");
    let sid = format!("new-{}-scope", n.noun);
    let nid = format!("new-{}-name", n.noun);
    let only_named = n.new_scopes.iter().all(|s| s == "Named" || s == "Rule");
    html! {
        form.card method="post" action=(format!("/_/cscp/{}/{}", t.slug, n.noun)) {
            (csrf_field(ctx))
            input type="hidden" name="action" value="new";
            h3 { "New " (n.noun) }
            @if !only_named {
                label for=(sid) { "Scope" }
                select #(sid) name="scope" {
                    @for s in &n.new_scopes {
                        @let label = match s.as_str() { "Tag" => "Per-user (Tag:)".to_string(), "Site" => "Site:".to_string(), "Global" => "Global".to_string(), other => format!("{other}:") };
                        option value=(s) selected[typed_scope == s.as_str()] { (label) }
                    }
                }
            } @else {
                input type="hidden" name="scope" value=(n.new_scopes[0]);
            }
            label for=(nid) {
                @if n.new_scopes.iter().any(|s| s == "Rule") { "Identity (scope/name, e.g. Global/Prefix or Tag:London/Seven digits)" }
                @else if only_named { "Identity" }
                @else { "Name (site name, policy name or pool FQDN; empty for Global)" }
            }
            input #(nid) name="name" value=(typed_name);
            @if only_named {
                fieldset {
                    legend { "Properties" }
                    @for ((p, ty), d) in n.props.iter().zip(&n.defaults) {
                        @let original = form_value(Some(d));
                        @let value = typed_value(typed, p, *ty).unwrap_or_else(|| original.clone());
                        (prop_input(&format!("new-{}", n.noun), p, *ty, &value, &original))
                    }
                }
            }
            button type="submit" { "New" }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct IdQuery {
    #[serde(default)]
    id: String,
}

/// `GET /_/cscp/{topic}/{noun}?id=…`: one object's form.
pub(crate) async fn detail(
    ctx: Ctx,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<IdQuery>,
) -> Response {
    let (t, n) = match topic_noun(&ctx, &slug, &name) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !ctx.may(&format!("Get-{}", n.noun)) {
        return ctx.refused(&format!(
            "Your roles ({}) do not include Get-{}.",
            ctx.role_names(),
            n.noun
        ));
    }
    detail_view(&ctx, t, n, &q.id, Outcome::None, None).await
}

// the refusal is a ready response (a page), built once per request
#[allow(clippy::result_large_err)]
fn topic_noun(
    ctx: &Ctx,
    slug: &str,
    name: &str,
) -> Result<(&'static Topic, &'static Noun), Response> {
    let t = topic(slug).ok_or_else(not_found)?;
    ctx.require(t)?;
    if !t.nouns.contains(&name) {
        return Err(not_found());
    }
    let n = noun(name).ok_or_else(not_found)?;
    Ok((t, n))
}

fn not_found() -> Response {
    super::super::page::error_page(StatusCode::NOT_FOUND, "Not found", "There is no page here.")
}

async fn detail_view(
    ctx: &Ctx,
    t: &Topic,
    n: &Noun,
    id: &str,
    outcome: Outcome,
    typed: Option<&Fields>,
) -> Response {
    let got = ctx
        .run(format!("Get-{} -Identity {}", n.noun, quote_str(id)))
        .await;
    let obj = match got {
        Ok(o) => o.objects.into_iter().next(),
        Err(e) => {
            let page = ctx.page(
                n.noun,
                t.slug,
                html! { (outcome.markup()) p.error role="alert" { (e.to_string()) } },
            );
            return with_status(page, status_of(&e));
        }
    };
    let Some(obj) = obj else {
        return with_status(
            ctx.page(n.noun, t.slug, html! { (outcome.markup()) p.error role="alert" { "There is no " (n.noun) " " (id) "." } }),
            StatusCode::NOT_FOUND,
        );
    };
    let may_set = ctx.may(&format!("Set-{}", n.noun));
    let may_remove = !n.new_scopes.is_empty() && ctx.may(&format!("Remove-{}", n.noun));
    let may_grant = n.is_policy && ctx.may(&format!("Grant-{}", n.noun)) && id.starts_with("Tag:");
    let action = format!("/_/cscp/{}/{}", t.slug, n.noun);
    // what the form shows: what was typed (after a refusal), else the object's values
    let value_of = |p: &str| -> String {
        match typed {
            Some(f) => {
                if let Some((_, PropType::Bool)) = n.prop(p) {
                    if field(f, &format!("b.{p}")).is_some() {
                        return if field(f, &format!("p.{p}")).is_some() {
                            "True".into()
                        } else {
                            "False".into()
                        };
                    }
                }
                field(f, &format!("p.{p}"))
                    .map(str::to_string)
                    .unwrap_or_else(|| form_value(obj.get(p)))
            }
            None => form_value(obj.get(p)),
        }
    };
    let body = html! {
        p { a href=(format!("/_/cscp/{}#{}", t.slug, n.noun)) { "← " (t.title) } }
        (outcome.markup())
        h2 { (n.noun) " " (id) }
        @if may_set {
            form.card method="post" action=(action) {
                (csrf_field(ctx))
                input type="hidden" name="action" value="set";
                input type="hidden" name="identity" value=(id);
                @for (p, ty) in &n.props {
                    @let original = form_value(obj.get(p));
                    (prop_input("p", p, *ty, &value_of(p), &original))
                }
                button type="submit" { "Commit" }
            }
        } @else {
            table {
                tbody {
                    @for (p, _) in &n.props { tr { th scope="row" { (p) } td { (form_value(obj.get(p))) } } }
                }
            }
        }
        @if may_grant {
            form.card method="post" action=(action) {
                (csrf_field(ctx))
                input type="hidden" name="action" value="grant";
                input type="hidden" name="identity" value=(id);
                h3 { "Grant-" (n.noun) }
                label for="grant-user" { "User (SIP address)" }
                input #grant-user name="user" value=(typed.and_then(|f| field(f, "user")).unwrap_or(""));
                button type="submit" { "Grant " (id.trim_start_matches("Tag:")) }
            }
        }
        @if may_remove {
            form.card method="post" action=(action) {
                (csrf_field(ctx))
                input type="hidden" name="action" value="remove";
                input type="hidden" name="identity" value=(id);
                button.danger type="submit" { "Remove-" (n.noun) " " (id) }
            }
        }
    };
    ctx.page(&format!("{} {id}", n.noun), t.slug, body)
        .into_response()
}

/// One property's input, by its type; `o.X` carries the original value so only changes are
/// sent.
fn prop_input(id_prefix: &str, name: &str, ty: PropType, value: &str, original: &str) -> Markup {
    let id = format!("{id_prefix}-{name}");
    let pname = format!("p.{name}");
    let oname = format!("o.{name}");
    html! {
        input type="hidden" name=(oname) value=(original);
        @match ty {
            PropType::Bool => {
                input type="hidden" name=(format!("b.{name}")) value="1";
                label.check for=(id) {
                    input #(id) type="checkbox" name=(pname) value="on" checked[value == "True"];
                    " " (name)
                }
            }
            PropType::OptBool => {
                label for=(id) { (name) }
                select #(id) name=(pname) {
                    option value="" selected[value.is_empty()] { "(not set)" }
                    option value="True" selected[value == "True"] { "True" }
                    option value="False" selected[value == "False"] { "False" }
                }
            }
            PropType::Enum(choices) => {
                label for=(id) { (name) }
                select #(id) name=(pname) {
                    @for c in choices { option value=(c) selected[value.eq_ignore_ascii_case(c)] { (c) } }
                }
            }
            PropType::Int { min, max } => {
                label for=(id) { (name) }
                input #(id) type="number" name=(pname) min=(min) max=(max) value=(value);
            }
            PropType::Str { .. } => {
                label for=(id) { (name) }
                input #(id) name=(pname) value=(value);
            }
            PropType::StrList => {
                label for=(id) { (name) " (one per line)" }
                textarea #(id) name=(pname) rows="3" { (value) }
            }
            PropType::ObjList { made_by, .. } => {
                p {
                    b { (name) } ": " (if value.is_empty() { "(none)" } else { value })
                    span.muted { " — entries are made with " code { (made_by) } "; use Run a command on Home." }
                }
            }
        }
    }
}

/// A form value as a shell value for a property of type `ty` (`None`: the field is the
/// same as before).
fn shell_value(name: &str, ty: PropType, value: &str) -> Result<String, String> {
    Ok(match ty {
        PropType::Bool => if value == "True" { "$true" } else { "$false" }.to_string(),
        PropType::OptBool => match value {
            "" => "$null".to_string(),
            "True" => "$true".to_string(),
            "False" => "$false".to_string(),
            v => return Err(format!("{name}: '{v}' is not True, False or empty")),
        },
        PropType::Enum(choices) => match choices.iter().find(|c| c.eq_ignore_ascii_case(value)) {
            Some(c) => quote_str(c),
            None => {
                return Err(format!(
                    "{name}: '{value}' is not one of {}",
                    choices.join(", ")
                ))
            }
        },
        PropType::Int { .. } => match value.trim().parse::<i64>() {
            Ok(i) => i.to_string(),
            Err(_) => return Err(format!("{name}: '{value}' is not a whole number")),
        },
        PropType::Str { .. } => quote_str(value),
        PropType::StrList => {
            let items: Vec<String> = value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(quote_str)
                .collect();
            format!("@({})", items.join(", "))
        }
        PropType::ObjList { .. } => {
            return Err(format!(
                "{name}: entries are made with a cmdlet, not this form"
            ))
        }
    })
}

/// What was typed for property `p` in a refused form.
fn typed_value(typed: Option<&Fields>, p: &str, ty: PropType) -> Option<String> {
    let f = typed?;
    if let PropType::Bool = ty {
        field(f, &format!("b.{p}"))?;
        return Some(
            if field(f, &format!("p.{p}")).is_some() {
                "True"
            } else {
                "False"
            }
            .to_string(),
        );
    }
    field(f, &format!("p.{p}")).map(str::to_string)
}

/// Checks that every field of a form is ours (`extra`, and `p.`/`o.`/`b.` of a property of
/// the noun), naming the first that is not.
fn check_prop_fields(n: &Noun, f: &Fields, extra: &[&str]) -> Result<(), String> {
    for (k, _) in f {
        let ok = match k.split_once('.') {
            Some(("p" | "o" | "b", p)) => n.prop(p).is_some(),
            _ => extra.contains(&k.as_str()),
        };
        if !ok {
            return Err(format!(
                "The form has an unknown field '{k}' (not a property of {}): nothing was changed.",
                n.noun
            ));
        }
    }
    Ok(())
}

/// ` -Prop value` for each property whose value differs from its `o.` original.
fn changed_args(n: &Noun, f: &Fields) -> Result<String, String> {
    let mut args = String::new();
    for (p, ty) in &n.props {
        if matches!(ty, PropType::ObjList { .. }) {
            continue;
        }
        let new = match ty {
            PropType::Bool => {
                if field(f, &format!("b.{p}")).is_none() {
                    continue;
                }
                if field(f, &format!("p.{p}")).is_some() {
                    "True"
                } else {
                    "False"
                }
                .to_string()
            }
            _ => match field(f, &format!("p.{p}")) {
                Some(v) => v.replace("\r\n", "\n"),
                None => continue,
            },
        };
        let original = field(f, &format!("o.{p}")).map(|o| o.replace("\r\n", "\n"));
        if original.as_deref() == Some(new.as_str()) {
            continue;
        }
        args.push_str(&format!(" -{p} {}", shell_value(p, *ty, &new)?));
    }
    Ok(args)
}

/// The `Set-X` text of a submitted form: the properties whose value changed.
pub(crate) fn set_script(n: &Noun, f: &Fields) -> Result<Option<String>, String> {
    let identity = field(f, "identity").ok_or("The form has no identity.")?;
    check_prop_fields(n, f, &["csrf", "action", "identity"])?;
    let args = changed_args(n, f)?;
    if args.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "Set-{} -Identity {}{args}",
        n.noun,
        quote_str(identity)
    )))
}

/// The `New-X` text of a submitted form: the identity, and the properties set otherwise
/// than their defaults.
pub(crate) fn new_script(n: &Noun, f: &Fields) -> Result<(String, String), String> {
    check_prop_fields(n, f, &["csrf", "action", "scope", "name"])?;
    let id = new_identity(
        n,
        field(f, "scope").unwrap_or(""),
        field(f, "name").unwrap_or(""),
    )?;
    let args = changed_args(n, f)?;
    Ok((
        format!("New-{} -Identity {}{args}", n.noun, quote_str(&id)),
        id,
    ))
}

/// The identity New-X creates from the form's scope and name.
pub(crate) fn new_identity(n: &Noun, scope: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    if !n.new_scopes.iter().any(|s| s == scope) {
        return Err(format!("{} cannot be created at scope '{scope}'", n.noun));
    }
    Ok(match scope {
        "Global" => "Global".to_string(),
        "Named" | "Rule" => name.to_string(),
        "Site" => format!("Site:{name}"),
        "Tag" => format!("Tag:{name}"),
        s => format!("{s}:{name}"),
    })
}

/// `POST /_/cscp/{topic}/{noun}`: action=new|set|remove|grant.
pub(crate) async fn change(
    ctx: Ctx,
    Path((slug, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (t, n) = match topic_noun(&ctx, &slug, &name) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let action = field(&f, "action").unwrap_or("").to_string();
    let cmdlet = match action.as_str() {
        "new" => format!("New-{}", n.noun),
        "set" => format!("Set-{}", n.noun),
        "remove" => format!("Remove-{}", n.noun),
        "grant" => format!("Grant-{}", n.noun),
        _ => {
            return super::super::page::error_page(
                StatusCode::BAD_REQUEST,
                "Bad form",
                "The form has no known action.",
            )
        }
    };
    match action.as_str() {
        "new" => {
            let (r, id) = match new_script(n, &f) {
                Ok((script, id)) => (ctx.run(script).await, id),
                Err(e) => {
                    return with_status(
                        topic_view(&ctx, t, Outcome::Failed(e), Some((n.noun, &f))).await,
                        StatusCode::BAD_REQUEST,
                    )
                }
            };
            match r {
                Ok(o) => {
                    // the new object's form, with the warnings
                    let id = o.objects.first().and_then(Obj::identity).unwrap_or(id);
                    detail_view(
                        &ctx,
                        t,
                        n,
                        &id,
                        Outcome::Done(format!("{cmdlet} {id}: done."), o.warnings),
                        None,
                    )
                    .await
                }
                Err(e) => with_status(
                    topic_view(&ctx, t, Outcome::Failed(e.to_string()), Some((n.noun, &f))).await,
                    status_of(&e),
                ),
            }
        }
        "set" => {
            let id = field(&f, "identity").unwrap_or("").to_string();
            let script = match set_script(n, &f) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    return detail_view(
                        &ctx,
                        t,
                        n,
                        &id,
                        Outcome::Done("Nothing changed.".into(), vec![]),
                        None,
                    )
                    .await
                }
                Err(e) => {
                    return with_status_resp(
                        detail_view(&ctx, t, n, &id, Outcome::Failed(e), Some(&f)).await,
                        StatusCode::BAD_REQUEST,
                    )
                }
            };
            let r = ctx.run(script).await;
            let status = r.as_ref().err().map(status_of);
            let outcome = Outcome::of(&r, &format!("{cmdlet} {id}: done."));
            let typed = if r.is_err() { Some(&f) } else { None };
            let res = detail_view(&ctx, t, n, &id, outcome, typed).await;
            match status {
                Some(s) => with_status_resp(res, s),
                None => res,
            }
        }
        "remove" | "grant" => {
            let allowed: &[&str] = if action == "grant" {
                &["csrf", "action", "identity", "user"]
            } else {
                &["csrf", "action", "identity"]
            };
            let id = field(&f, "identity").unwrap_or("").to_string();
            if let Err(e) = check_fields(&f, allowed) {
                return with_status_resp(
                    detail_view(&ctx, t, n, &id, Outcome::Failed(e), None).await,
                    StatusCode::BAD_REQUEST,
                );
            }
            let script = if action == "grant" {
                let user = field(&f, "user").unwrap_or("").trim();
                let user = if user.starts_with("sip:") {
                    user.to_string()
                } else {
                    format!("sip:{user}")
                };
                format!(
                    "{cmdlet} -Identity {} -PolicyName {}",
                    quote_str(&user),
                    quote_str(id.trim_start_matches("Tag:"))
                )
            } else {
                format!("{cmdlet} -Identity {}", quote_str(&id))
            };
            let r = ctx.run(script).await;
            match r {
                Ok(o) if action == "remove" => topic_view(
                    &ctx,
                    t,
                    Outcome::Done(format!("{cmdlet} {id}: done."), o.warnings),
                    None,
                )
                .await
                .into_response(),
                Ok(o) => {
                    detail_view(
                        &ctx,
                        t,
                        n,
                        &id,
                        Outcome::Done(format!("{cmdlet}: done."), o.warnings),
                        None,
                    )
                    .await
                }
                Err(e) => with_status_resp(
                    detail_view(&ctx, t, n, &id, Outcome::Failed(e.to_string()), Some(&f)).await,
                    status_of(&e),
                ),
            }
        }
        _ => unreachable!("actions are matched above"),
    }
}

fn with_status_resp(mut res: Response, status: StatusCode) -> Response {
    *res.status_mut() = status;
    res
}

fn test_form(ctx: &Ctx, result: Option<Markup>, rule: &str, number: &str) -> Markup {
    html! {
        form.card method="post" action="/_/cscp/voice/test" {
            (csrf_field(ctx))
            h2 { "Test-CsVoiceNormalizationRule" }
            label for="test-rule" { "Normalization rule (identity, e.g. Global/Prefix)" }
            input #test-rule name="rule" value=(rule);
            label for="test-number" { "Dialed number" }
            input #test-number name="number" value=(number);
            button type="submit" { "Test" }
            @if let Some(r) = result { (r) }
        }
    }
}

/// `POST /_/cscp/voice/test`: `Get-CsVoiceNormalizationRule -Identity X |
/// Test-CsVoiceNormalizationRule -DialedNumber N`.
pub(crate) async fn test_rule(ctx: Ctx, req: Request) -> Response {
    let t = topic("voice").expect("the voice topic");
    if let Err(r) = ctx.require(t) {
        return r;
    }
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = check_fields(&f, &["csrf", "rule", "number"]) {
        return with_status(
            ctx.page(t.title, t.slug, html! { p.error role="alert" { (e) } }),
            StatusCode::BAD_REQUEST,
        );
    }
    let rule = field(&f, "rule").unwrap_or("").to_string();
    let number = field(&f, "number").unwrap_or("").to_string();
    let r = ctx
        .run(format!(
            "Get-CsVoiceNormalizationRule -Identity {} | Test-CsVoiceNormalizationRule -DialedNumber {}",
            quote_str(&rule),
            quote_str(&number)
        ))
        .await;
    let (status, result) = match &r {
        Ok(o) => (
            StatusCode::OK,
            html! { pre.output role="status" { (o.text) } @for w in &o.warnings { p.warning { "WARNING: " (w) } } },
        ),
        Err(e) => (
            status_of(e),
            html! { p.error role="alert" { (e.to_string()) } },
        ),
    };
    with_status(
        ctx.page(t.title, t.slug, html! { (test_form(&ctx, Some(result), &rule, &number)) p { a href="/_/cscp/voice" { "All of Voice Routing" } } }),
        status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_sends_only_what_changed_quoted() {
        let n = noun("CsMeetingConfiguration").unwrap();
        let form = f(&[
            ("csrf", "x"),
            ("action", "set"),
            ("identity", "Global"),
            ("o.AdmitAnonymousUsersByDefault", "True"),
            ("b.AdmitAnonymousUsersByDefault", "1"),
            ("o.PstnCallersBypassLobby", "True"),
            ("b.PstnCallersBypassLobby", "1"),
            ("p.PstnCallersBypassLobby", "on"),
            ("o.DesignateAsPresenter", "Company"),
            ("p.DesignateAsPresenter", "everyone"),
        ]);
        assert_eq!(
            set_script(n, &form).unwrap().unwrap(),
            "Set-CsMeetingConfiguration -Identity 'Global' -DesignateAsPresenter 'Everyone' -AdmitAnonymousUsersByDefault $false"
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let n = noun("CsMeetingConfiguration").unwrap();
        let e = set_script(n, &f(&[("identity", "Global"), ("p.Bogus", "1")])).unwrap_err();
        assert!(e.contains("'p.Bogus'"), "{e}");
        let e = set_script(n, &f(&[("identity", "Global"), ("x", "1")])).unwrap_err();
        assert!(e.contains("'x'"), "{e}");
        let e = set_script(
            n,
            &f(&[
                ("identity", "Global"),
                ("p.DesignateAsPresenter", "All; Remove-CsUser x"),
            ]),
        )
        .unwrap_err();
        assert!(e.contains("not one of"), "{e}");
        // strings are data, never commands
        let (p, str_prop) = nouns()
            .iter()
            .find_map(|n| {
                n.props
                    .iter()
                    .find(|(_, t)| matches!(t, PropType::Str { .. }))
                    .map(|(name, _)| (n, *name))
            })
            .unwrap();
        let key = format!("p.{str_prop}");
        let s = set_script(
            p,
            &f(&[("identity", "x"), (key.as_str(), "a'; Remove-CsUser 'b")]),
        )
        .unwrap()
        .unwrap();
        assert!(
            s.ends_with(&format!("-{str_prop} 'a''; Remove-CsUser ''b'")),
            "{s}"
        );
        assert!(confab_admin::parse(&s).unwrap().statements.len() == 1);
    }

    #[test]
    fn new_identities_follow_the_kinds_scopes() {
        let p = noun("CsConferencingPolicy").unwrap();
        assert_eq!(new_identity(p, "Tag", "Small").unwrap(), "Tag:Small");
        let m = noun("CsMeetingConfiguration").unwrap();
        assert_eq!(new_identity(m, "Site", "Redmond").unwrap(), "Site:Redmond");
        assert!(new_identity(m, "Tag", "X").is_err());
        assert_eq!(
            new_identity(m, "Service:UserServer", "pool.example.test").unwrap(),
            "Service:UserServer:pool.example.test"
        );
    }
}
