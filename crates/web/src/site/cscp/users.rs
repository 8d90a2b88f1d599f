//! Users: `Get-CsUser` (search with -Filter), `New-CsUser`, `Set-CsUser` (enabled, display
//! name, LineURI, enterprise voice, hosted voicemail), `Grant-Cs…Policy`, `Remove-CsUser`.

use axum::extract::{Query, Request};
use axum::http::StatusCode;
use axum::response::Response;
use confab_admin::object::{display, Obj};
use maud::html;
use serde::Deserialize;

use super::{
    check_fields, csrf_field, field, read_form, status_of, topic, with_status, Ctx, Fields, Outcome,
};
use crate::script::quote_str;

/// The policy kinds a user may be granted: (noun, the CsUser property naming it).
fn policy_nouns() -> Vec<(&'static str, &'static str)> {
    confab_admin::schema::kinds()
        .into_iter()
        .filter(|k| k.is_policy)
        .map(|k| (k.noun, k.short_name()))
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
}

pub(crate) async fn list(ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    list_view(&ctx, &q.q, Outcome::None, None, StatusCode::OK).await
}

async fn list_view(
    ctx: &Ctx,
    q: &str,
    outcome: Outcome,
    typed: Option<&Fields>,
    status: StatusCode,
) -> Response {
    let t = topic("users").expect("the users topic");
    if let Err(r) = ctx.require(t) {
        return r;
    }
    let script = if q.trim().is_empty() {
        "Get-CsUser".to_string()
    } else {
        format!(
            "Get-CsUser -Filter {}",
            quote_str(&format!("*{}*", q.trim()))
        )
    };
    let listed = ctx.run(script).await;
    let typed_v = |k: &str| typed.and_then(|f| field(f, k)).unwrap_or("").to_string();
    let body = html! {
        (outcome.markup())
        form.card method="get" action="/_/cscp/users" role="search" {
            label for="user-q" { "Find users (part of the SIP address)" }
            input #user-q name="q" value=(q);
            button type="submit" { "Find" }
        }
        @match &listed {
            Err(e) => p.error role="alert" { (e.to_string()) },
            Ok(o) if o.objects.is_empty() => p.muted { "No users." },
            Ok(o) => table {
                thead { tr { th scope="col" { "SIP address" } th scope="col" { "Display name" } th scope="col" { "Enabled" } th scope="col" { "LineURI" } th scope="col" { "Enterprise Voice" } } }
                tbody {
                    @for u in &o.objects {
                        @let id = u.identity().unwrap_or_default();
                        tr {
                            td { a href=(user_href(&id)) { (id) } }
                            td { (show(u, "DisplayName")) }
                            td { (show(u, "Enabled")) }
                            td { (show(u, "LineURI")) }
                            td { (show(u, "EnterpriseVoiceEnabled")) }
                        }
                    }
                }
            },
        }
        @if ctx.may("New-CsUser") {
            form.card method="post" action="/_/cscp/users" {
                (csrf_field(ctx))
                h2 { "New user (New-CsUser)" }
                label for="new-sip" { "SIP address" }
                input #new-sip name="sip" value=(typed_v("sip")) placeholder="sip:alice@example.test" required;
                label for="new-name" { "Display name" }
                input #new-name name="display" value=(typed_v("display"));
                label for="new-pw" { "Password" }
                input #new-pw name="password" type="password" autocomplete="new-password" required;
                label for="new-ou" { "Organizational unit (optional, OU=…,DC=…)" }
                input #new-ou name="ou" value=(typed_v("ou"));
                button type="submit" { "Enable user" }
            }
        }
    };
    with_status(ctx.page("Users", "users", body), status)
}

fn show(o: &Obj, p: &str) -> String {
    o.get(p).map(display).unwrap_or_default()
}

fn user_href(id: &str) -> String {
    format!(
        "/_/cscp/users/user?{}",
        serde_urlencoded::to_string([("id", id)]).unwrap_or_default()
    )
}

fn sip(addr: &str) -> String {
    let a = addr.trim();
    if a.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:")) {
        a.to_string()
    } else {
        format!("sip:{a}")
    }
}

/// `POST /_/cscp/users`: New-CsUser.
pub(crate) async fn create(ctx: Ctx, req: Request) -> Response {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = check_fields(&f, &["csrf", "sip", "display", "password", "ou"]) {
        return list_view(&ctx, "", Outcome::Failed(e), None, StatusCode::BAD_REQUEST).await;
    }
    let address = sip(field(&f, "sip").unwrap_or(""));
    let mut script = format!(
        "New-CsUser -Identity {} -Password {}",
        quote_str(&address),
        quote_str(field(&f, "password").unwrap_or(""))
    );
    if let Some(d) = field(&f, "display").filter(|d| !d.trim().is_empty()) {
        script.push_str(&format!(" -DisplayName {}", quote_str(d.trim())));
    }
    if let Some(ou) = field(&f, "ou").filter(|d| !d.trim().is_empty()) {
        script.push_str(&format!(" -OU {}", quote_str(ou.trim())));
    }
    match ctx.run(script).await {
        Ok(o) => {
            let id = o.objects.first().and_then(Obj::identity).unwrap_or(address);
            detail_view(
                &ctx,
                &id,
                Outcome::Done(format!("New-CsUser {id}: done."), o.warnings),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            list_view(
                &ctx,
                "",
                Outcome::Failed(e.to_string()),
                Some(&f),
                status_of(&e),
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct IdQuery {
    #[serde(default)]
    id: String,
}

pub(crate) async fn detail(ctx: Ctx, Query(q): Query<IdQuery>) -> Response {
    detail_view(&ctx, &q.id, Outcome::None, None, StatusCode::OK).await
}

/// The user's properties Set-CsUser changes: (name, is a boolean).
const USER_PROPS: &[(&str, bool)] = &[
    ("Enabled", true),
    ("DisplayName", false),
    ("LineURI", false),
    ("EnterpriseVoiceEnabled", true),
    ("HostedVoiceMail", true),
];

async fn detail_view(
    ctx: &Ctx,
    id: &str,
    outcome: Outcome,
    typed: Option<&Fields>,
    status: StatusCode,
) -> Response {
    let t = topic("users").expect("the users topic");
    if let Err(r) = ctx.require(t) {
        return r;
    }
    let got = ctx
        .run(format!("Get-CsUser -Identity {}", quote_str(id)))
        .await;
    let user = match got {
        Ok(o) => o.objects.into_iter().next(),
        Err(e) => {
            return with_status(
                ctx.page(
                    "User",
                    "users",
                    html! { (outcome.markup()) p.error role="alert" { (e.to_string()) } },
                ),
                status_of(&e),
            )
        }
    };
    let Some(user) = user else {
        return with_status(
            ctx.page(
                "User",
                "users",
                html! { (outcome.markup()) p.error role="alert" { "No such user." } },
            ),
            StatusCode::NOT_FOUND,
        );
    };
    let value = |p: &str| -> String {
        if let Some(f) = typed {
            if USER_PROPS.iter().any(|(n, b)| *n == p && *b) {
                return if field(f, &format!("p.{p}")).is_some() {
                    "True".into()
                } else {
                    "False".into()
                };
            }
            if let Some(v) = field(f, &format!("p.{p}")) {
                return v.to_string();
            }
        }
        show(&user, p)
    };
    let grants: Vec<(&str, &str, Vec<String>)> = {
        let mut v = vec![];
        for (noun, short) in policy_nouns() {
            if !ctx.may(&format!("Grant-{noun}")) {
                continue;
            }
            // the policies one may grant: the Tag: ones
            let names: Vec<String> = match ctx.run(format!("Get-{noun}")).await {
                Ok(o) => o
                    .objects
                    .iter()
                    .filter_map(Obj::identity)
                    .filter_map(|i| i.strip_prefix("Tag:").map(str::to_string))
                    .collect(),
                Err(_) => vec![],
            };
            v.push((noun, short, names));
        }
        v
    };
    let may_set = ctx.may("Set-CsUser");
    let body = html! {
        p { a href="/_/cscp/users" { "← Users" } }
        (outcome.markup())
        h2 { (id) }
        @if may_set {
            form.card method="post" action="/_/cscp/users/user" {
                (csrf_field(ctx))
                input type="hidden" name="action" value="set";
                input type="hidden" name="identity" value=(id);
                @for (p, is_bool) in USER_PROPS {
                    input type="hidden" name=(format!("o.{p}")) value=(show(&user, p));
                    @if *is_bool {
                        label for=(format!("u-{p}")) {
                            input #(format!("u-{p}")) type="checkbox" name=(format!("p.{p}")) value="on" checked[value(p) == "True"];
                            " " (p)
                        }
                    } @else {
                        label for=(format!("u-{p}")) { (p) }
                        input #(format!("u-{p}")) name=(format!("p.{p}")) value=(value(p));
                    }
                }
                button type="submit" { "Commit" }
            }
        } @else {
            table { tbody { @for (p, _) in USER_PROPS { tr { th scope="row" { (p) } td { (show(&user, p)) } } } } }
        }
        @if !grants.is_empty() {
            h2 { "Policies" }
            @for (noun, short, names) in &grants {
                @let current = user.get(short).map(display).unwrap_or_default();
                form.card method="post" action="/_/cscp/users/user" {
                    (csrf_field(ctx))
                    input type="hidden" name="action" value="grant";
                    input type="hidden" name="identity" value=(id);
                    input type="hidden" name="noun" value=(noun);
                    label for=(format!("g-{noun}")) { (short) " (Grant-" (noun) ")" }
                    select #(format!("g-{noun}")) name="policy" {
                        option value="" selected[current.is_empty()] { "(Automatic: site or global)" }
                        @for n in names { option value=(n) selected[current == *n || current == format!("Tag:{n}")] { (n) } }
                    }
                    button type="submit" { "Grant" }
                }
            }
        } @else {
            table { tbody { @for (_, short) in policy_nouns() { tr { th scope="row" { (short) } td { (show(&user, short)) } } } } }
        }
        @if ctx.may("Remove-CsUser") {
            form.card method="post" action="/_/cscp/users/user" {
                (csrf_field(ctx))
                input type="hidden" name="action" value="remove";
                input type="hidden" name="identity" value=(id);
                button.danger type="submit" { "Remove-CsUser " (id) }
            }
        }
    };
    with_status(ctx.page("User", "users", body), status)
}

/// The Set-CsUser text of a form: the properties that changed.
fn set_user_script(f: &Fields) -> Result<Option<String>, String> {
    let id = field(f, "identity").ok_or("The form has no identity.")?;
    for (k, _) in f {
        let ok = match k.split_once('.') {
            Some(("p" | "o", p)) => USER_PROPS.iter().any(|(n, _)| *n == p),
            _ => matches!(k.as_str(), "csrf" | "action" | "identity"),
        };
        if !ok {
            return Err(format!("The form has an unknown field '{k}' (not a Set-CsUser parameter): nothing was changed."));
        }
    }
    let mut args = String::new();
    for (p, is_bool) in USER_PROPS {
        let new = if *is_bool {
            if field(f, &format!("p.{p}")).is_some() {
                "True"
            } else {
                "False"
            }
            .to_string()
        } else {
            match field(f, &format!("p.{p}")) {
                Some(v) => v.trim().to_string(),
                None => continue,
            }
        };
        if field(f, &format!("o.{p}")) == Some(new.as_str()) {
            continue;
        }
        let v = if *is_bool {
            if new == "True" {
                "$true".to_string()
            } else {
                "$false".to_string()
            }
        } else if new.is_empty() && *p == "LineURI" {
            "$null".to_string()
        } else {
            quote_str(&new)
        };
        args.push_str(&format!(" -{p} {v}"));
    }
    Ok((!args.is_empty()).then(|| format!("Set-CsUser -Identity {}{args}", quote_str(id))))
}

/// `POST /_/cscp/users/user`: action=set|grant|remove.
pub(crate) async fn change(ctx: Ctx, req: Request) -> Response {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = field(&f, "identity").unwrap_or("").to_string();
    let script: Result<Option<String>, String> = match field(&f, "action") {
        Some("set") => set_user_script(&f),
        Some("grant") => check_fields(&f, &["csrf", "action", "identity", "noun", "policy"])
            .and_then(|()| {
                let noun = field(&f, "noun").unwrap_or("");
                if !policy_nouns().iter().any(|(n, _)| *n == noun) {
                    return Err(format!("'{noun}' is not a policy one may grant"));
                }
                let policy = match field(&f, "policy").unwrap_or("") {
                    "" => "$null".to_string(),
                    p => quote_str(p),
                };
                Ok(Some(format!(
                    "Grant-{noun} -Identity {} -PolicyName {policy}",
                    quote_str(&id)
                )))
            }),
        Some("remove") => check_fields(&f, &["csrf", "action", "identity"])
            .map(|()| Some(format!("Remove-CsUser -Identity {}", quote_str(&id)))),
        _ => Err("The form has no known action.".to_string()),
    };
    let script = match script {
        Ok(Some(s)) => s,
        Ok(None) => {
            return detail_view(
                &ctx,
                &id,
                Outcome::Done("Nothing changed.".into(), vec![]),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            return detail_view(
                &ctx,
                &id,
                Outcome::Failed(e),
                Some(&f),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    };
    let cmdlet = script.split(' ').next().unwrap_or("").to_string();
    let r = ctx.run(script).await;
    match r {
        Ok(o) if cmdlet == "Remove-CsUser" => {
            list_view(
                &ctx,
                "",
                Outcome::Done(format!("Remove-CsUser {id}: done."), o.warnings),
                None,
                StatusCode::OK,
            )
            .await
        }
        Ok(o) => {
            detail_view(
                &ctx,
                &id,
                Outcome::Done(format!("{cmdlet} {id}: done."), o.warnings),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            detail_view(
                &ctx,
                &id,
                Outcome::Failed(e.to_string()),
                Some(&f),
                status_of(&e),
            )
            .await
        }
    }
}
