//! Monitoring: the audit log (`Get-CsAuditLog -Admin … -Contains … -Since … -Last …`).

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use confab_admin::object::display;
use maud::html;
use serde::Deserialize;

use super::{status_of, topic, with_status, Ctx};
use crate::script::quote_str;

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    admin: String,
    #[serde(default)]
    contains: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    last: String,
}

/// The Get-CsAuditLog text of a search.
fn audit_script(q: &AuditQuery) -> Result<String, String> {
    let mut s = "Get-CsAuditLog".to_string();
    for (p, v) in [
        ("Admin", &q.admin),
        ("Contains", &q.contains),
        ("Since", &q.since),
    ] {
        if !v.trim().is_empty() {
            s.push_str(&format!(" -{p} {}", quote_str(v.trim())));
        }
    }
    let last = q.last.trim();
    if !last.is_empty() {
        let n: u32 = last
            .parse()
            .map_err(|_| format!("Last: '{last}' is not a number"))?;
        s.push_str(&format!(" -Last {}", n.min(1000)));
    } else {
        s.push_str(" -Last 100");
    }
    Ok(s)
}

pub(crate) async fn page(ctx: Ctx, Query(q): Query<AuditQuery>) -> Response {
    let t = topic("monitoring").expect("the monitoring topic");
    if let Err(r) = ctx.require(t) {
        return r;
    }
    let r = match audit_script(&q) {
        Ok(s) => ctx.run(s).await.map_err(|e| (status_of(&e), e.to_string())),
        Err(e) => Err((StatusCode::BAD_REQUEST, e)),
    };
    let status = r.as_ref().err().map(|(s, _)| *s).unwrap_or(StatusCode::OK);
    const COLS: &[&str] = &["Time", "Admin", "Origin", "Command", "Success", "Result"];
    let body = html! {
        form.card method="get" action="/_/cscp/monitoring" role="search" {
            h2 { "Search the audit log" }
            label for="a-admin" { "Administrator" }
            input #a-admin name="admin" value=(q.admin);
            label for="a-contains" { "Command contains" }
            input #a-contains name="contains" value=(q.contains);
            label for="a-since" { "Since (UTC, YYYY-MM-DD or YYYY-MM-DD hh:mm)" }
            input #a-since name="since" value=(q.since);
            label for="a-last" { "At most" }
            input #a-last name="last" type="number" min="1" max="1000" value=(if q.last.is_empty() { "100" } else { q.last.as_str() });
            button type="submit" { "Search" }
        }
        @match &r {
            Err((_, e)) => p.error role="alert" { (e) },
            Ok(o) if o.objects.is_empty() => p.muted { "No entries." },
            Ok(o) => table {
                caption { "Audit log, newest first" }
                thead { tr { @for c in COLS { th scope="col" { (c) } } } }
                tbody {
                    @for e in &o.objects {
                        tr { @for c in COLS { td { (e.get(c).map(display).unwrap_or_default()) } } }
                    }
                }
            },
        }
    };
    with_status(ctx.page("Monitoring", "monitoring", body), status)
}
