//! Security: administrator roles (`Get-/New-/Set-/Remove-CsAdminRole`), the signed-in
//! administrator's own roles, and the security-related settings (CsPinPolicy,
//! CsWebServiceConfiguration: the generic pages of [`super::config`]).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use confab_admin::object::{display, Obj};
use maud::{html, Markup};

use super::{
    check_fields, csrf_field, field, read_form, status_of, topic, with_status, Ctx, Fields, Outcome,
};
use crate::script::quote_str;

pub(crate) async fn page(ctx: Ctx) -> Response {
    view(&ctx, Outcome::None, None, StatusCode::OK).await
}

async fn view(ctx: &Ctx, outcome: Outcome, typed: Option<&Fields>, status: StatusCode) -> Response {
    let t = topic("security").expect("the security topic");
    if let Err(r) = ctx.require(t) {
        return r;
    }
    let roles = if ctx.may("Get-CsAdminRole") {
        Some(ctx.run("Get-CsAdminRole".into()).await)
    } else {
        None
    };
    let mut sections: Vec<Markup> = vec![];
    for n in t.nouns.iter().filter_map(|n| super::config::noun(n)) {
        if ctx.may(&format!("Get-{}", n.noun)) {
            let objs = ctx.run(format!("Get-{}", n.noun)).await.map(|o| o.objects);
            sections.push(super::config::noun_section(ctx, t, n, objs, None));
        }
    }
    let typed_v = |k: &str| typed.and_then(|f| field(f, k)).unwrap_or("").to_string();
    let body = html! {
        (outcome.markup())
        section aria-labelledby="mine" {
            h2 #mine { "Your roles" }
            p { (ctx.admin.admin.name) ": " (ctx.role_names()) }
        }
        @if let Some(r) = &roles {
            section aria-labelledby="roles" {
                h2 #roles { "Administrator roles (Get-CsAdminRole)" }
                @match r {
                    Err(e) => p.error role="alert" { (e.to_string()) },
                    Ok(o) => table {
                        thead { tr { th scope="col" { "Identity" } th scope="col" { "Standard" } th scope="col" { "Config scopes" } th scope="col" { "User scopes" } th scope="col" { "Cmdlets" } th scope="col" { "" } } }
                        tbody { @for role in &o.objects { (role_row(ctx, role)) } }
                    },
                }
            }
        }
        @if ctx.may("New-CsAdminRole") {
            form.card method="post" action="/_/cscp/security/roles" {
                (csrf_field(ctx))
                input type="hidden" name="action" value="new";
                h2 { "New-CsAdminRole" }
                label for="r-id" { "Identity" }
                input #r-id name="identity" value=(typed_v("identity")) required;
                label for="r-template" { "Template" }
                select #r-template name="template" {
                    @for b in confab_admin::roles::BUILTIN_ROLES { option value=(b) selected[typed_v("template") == *b] { (b) } }
                }
                label for="r-config" { "Config scopes (one per line: Global or Site:<name>; empty: Global)" }
                textarea #r-config name="config_scopes" rows="2" { (typed_v("config_scopes")) }
                label for="r-user" { "User scopes (one per line: Global or OU:<dn>; empty: Global)" }
                textarea #r-user name="user_scopes" rows="2" { (typed_v("user_scopes")) }
                label for="r-cmdlets" { "Cmdlets (one per line; empty: the template's)" }
                textarea #r-cmdlets name="cmdlets" rows="3" { (typed_v("cmdlets")) }
                button type="submit" { "New role" }
            }
        }
        @for s in sections { (s) }
    };
    with_status(ctx.page("Security", "security", body), status)
}

fn role_row(ctx: &Ctx, role: &Obj) -> Markup {
    let id = role.identity().unwrap_or_default();
    let standard = role
        .get("IsStandardRole")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let cmdlets = role
        .get("Cmdlets")
        .and_then(|v| v.as_array())
        .map(|a| a.len())
        .unwrap_or(0);
    html! {
        tr {
            td { (id) }
            td { (display(role.get("IsStandardRole").unwrap_or(&serde_json::Value::Null))) }
            td { (role.get("ConfigScopes").map(display).unwrap_or_default()) }
            td { (role.get("UserScopes").map(display).unwrap_or_default()) }
            td { (cmdlets) " cmdlets" }
            td {
                @if !standard && ctx.may("Set-CsAdminRole") {
                    details {
                        summary { "Set-CsAdminRole" }
                        form method="post" action="/_/cscp/security/roles" {
                            (csrf_field(ctx))
                            input type="hidden" name="action" value="set";
                            input type="hidden" name="identity" value=(id);
                            @for (p, label) in [("Cmdlets", "cmdlets"), ("ConfigScopes", "config_scopes"), ("UserScopes", "user_scopes")] {
                                @let fid = format!("set-{id}-{label}");
                                label for=(fid) { (p) " (one per line; replaces the list)" }
                                textarea #(fid) name=(label) rows="4" { (lines(role.get(p))) }
                            }
                            button type="submit" { "Commit" }
                        }
                    }
                }
                @if !standard && ctx.may("Remove-CsAdminRole") {
                    form.inline method="post" action="/_/cscp/security/roles" {
                        (csrf_field(ctx))
                        input type="hidden" name="action" value="remove";
                        input type="hidden" name="identity" value=(id);
                        button.danger type="submit" { "Remove" }
                    }
                }
            }
        }
    }
}

fn lines(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn list(v: &str) -> Option<String> {
    let items: Vec<String> = v
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(quote_str)
        .collect();
    (!items.is_empty()).then(|| format!("@({})", items.join(", ")))
}

/// `POST /_/cscp/security/roles`: New-CsAdminRole or Remove-CsAdminRole.
pub(crate) async fn change(ctx: Ctx, req: Request) -> Response {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = field(&f, "identity").unwrap_or("").trim().to_string();
    let script = match field(&f, "action") {
        Some("new") => check_fields(
            &f,
            &[
                "csrf",
                "action",
                "identity",
                "template",
                "config_scopes",
                "user_scopes",
                "cmdlets",
            ],
        )
        .map(|()| {
            let mut s = format!(
                "New-CsAdminRole -Identity {} -Template {}",
                quote_str(&id),
                quote_str(field(&f, "template").unwrap_or(""))
            );
            for (p, k) in [
                ("ConfigScopes", "config_scopes"),
                ("UserScopes", "user_scopes"),
                ("Cmdlets", "cmdlets"),
            ] {
                if let Some(l) = list(field(&f, k).unwrap_or("")) {
                    s.push_str(&format!(" -{p} {l}"));
                }
            }
            s
        }),
        Some("set") => check_fields(
            &f,
            &[
                "csrf",
                "action",
                "identity",
                "config_scopes",
                "user_scopes",
                "cmdlets",
            ],
        )
        .map(|()| {
            let mut s = format!("Set-CsAdminRole -Identity {}", quote_str(&id));
            for (p, k) in [
                ("ConfigScopes", "config_scopes"),
                ("UserScopes", "user_scopes"),
                ("Cmdlets", "cmdlets"),
            ] {
                if let Some(v) = field(&f, k) {
                    s.push_str(&format!(
                        " -{p} @{{Replace={}}}",
                        list(v).unwrap_or_else(|| "@()".into())
                    ));
                }
            }
            s
        }),
        Some("remove") => check_fields(&f, &["csrf", "action", "identity"])
            .map(|()| format!("Remove-CsAdminRole -Identity {}", quote_str(&id))),
        _ => Err("The form has no known action.".to_string()),
    };
    let script = match script {
        Ok(s) => s,
        Err(e) => return view(&ctx, Outcome::Failed(e), Some(&f), StatusCode::BAD_REQUEST).await,
    };
    let cmdlet = script.split(' ').next().unwrap_or("").to_string();
    match ctx.run(script).await {
        Ok(o) => {
            view(
                &ctx,
                Outcome::Done(format!("{cmdlet} {id}: done."), o.warnings),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            view(
                &ctx,
                Outcome::Failed(e.to_string()),
                Some(&f),
                status_of(&e),
            )
            .await
        }
    }
}
