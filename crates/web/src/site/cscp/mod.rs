//! The Control Panel (Lync Server Control Panel's twin), internal face only, under
//! `/_/cscp/…`.
//!
//! Every page is the twin of cmdlets: what it shows comes from `Get-…` and what it changes
//! is cmdlet text built from the form (every value quoted with [`crate::script::quote_str`],
//! every field name checked against the object's schema) and run through the same
//! [`confab_admin::Session`] as the shell ([`crate::run_script`], origin `web <peer>`): the
//! shell's role-based access control, validation messages, warnings and audit log.
//!
//! | topic | path | cmdlets |
//! | --- | --- | --- |
//! | Home | `/_/cscp` | `Get-CsUser` (count), the server's counters (charts), any command |
//! | Users | `/_/cscp/users` | `Get-/New-/Set-/Remove-CsUser`, `Grant-Cs…Policy` |
//! | IM and Presence | `/_/cscp/im` | CsClientPolicy, CsImFilterConfiguration, CsFileTransferFilterConfiguration |
//! | Conferencing | `/_/cscp/conferencing` | CsMeetingConfiguration, CsConferencingConfiguration, CsConferencingPolicy, CsDialInConferencingAccessNumber, CsDialInConferencingConfiguration, CsPinPolicy |
//! | Voice Routing | `/_/cscp/voice` | CsDialPlan, CsVoiceNormalizationRule, CsVoicePolicy, CsVoiceRoute, CsPstnUsage, CsTrunkConfiguration, CsPstnGateway, CsHostedVoicemailPolicy, `Test-CsVoiceNormalizationRule` |
//! | External User Access | `/_/cscp/external` | CsExternalAccessPolicy, CsAccessEdgeConfiguration, CsAllowedDomain, CsBlockedDomain |
//! | Security | `/_/cscp/security` | `Get-/New-/Set-/Remove-CsAdminRole`, CsPinPolicy, CsWebServiceConfiguration |
//! | Monitoring | `/_/cscp/monitoring` | `Get-CsAuditLog` |
//!
//! An administrator sees only the topics and actions their roles allow (a topic needs one of
//! its `Get-` cmdlets; forms appear only for the cmdlets they may run); a page outside their
//! roles answers 403, and so does a change the shell refuses.

mod config;
mod home;
mod monitoring;
mod security;
mod users;

pub(crate) use home::History;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use confab_admin::roles::Role;
use confab_admin::{ExecError, Output};
use maud::{html, Markup};

use super::page::{self, Html};
use super::session::{AdminSession, Viewer};
use super::Site;
use crate::{blocking, store_failure};

/// One topic of the Control Panel.
pub(crate) struct Topic {
    pub slug: &'static str,
    pub title: &'static str,
    /// The configuration nouns it manages (generic pages, see [`config`]).
    pub nouns: &'static [&'static str],
    /// Cmdlets any of which makes the topic visible (besides the nouns' `Get-`).
    pub shown_by: &'static [&'static str],
}

pub(crate) const TOPICS: &[Topic] = &[
    Topic {
        slug: "",
        title: "Home",
        nouns: &[],
        shown_by: &[],
    },
    Topic {
        slug: "users",
        title: "Users",
        nouns: &[],
        shown_by: &["Get-CsUser"],
    },
    Topic {
        slug: "im",
        title: "IM and Presence",
        nouns: &[
            "CsClientPolicy",
            "CsImFilterConfiguration",
            "CsFileTransferFilterConfiguration",
        ],
        shown_by: &[],
    },
    Topic {
        slug: "conferencing",
        title: "Conferencing",
        nouns: &[
            "CsMeetingConfiguration",
            "CsConferencingConfiguration",
            "CsConferencingPolicy",
            "CsDialInConferencingAccessNumber",
            "CsDialInConferencingConfiguration",
            "CsPinPolicy",
        ],
        shown_by: &[],
    },
    Topic {
        slug: "voice",
        title: "Voice Routing",
        nouns: &[
            "CsDialPlan",
            "CsVoiceNormalizationRule",
            "CsVoicePolicy",
            "CsVoiceRoute",
            "CsPstnUsage",
            "CsTrunkConfiguration",
            "CsPstnGateway",
            "CsHostedVoicemailPolicy",
        ],
        shown_by: &["Test-CsVoiceNormalizationRule"],
    },
    Topic {
        slug: "external",
        title: "External User Access",
        nouns: &[
            "CsExternalAccessPolicy",
            "CsAccessEdgeConfiguration",
            "CsAllowedDomain",
            "CsBlockedDomain",
        ],
        shown_by: &[],
    },
    Topic {
        slug: "security",
        title: "Security",
        nouns: &["CsPinPolicy", "CsWebServiceConfiguration"],
        shown_by: &["Get-CsAdminRole"],
    },
    Topic {
        slug: "monitoring",
        title: "Monitoring",
        nouns: &[],
        shown_by: &["Get-CsAuditLog"],
    },
];

pub(crate) fn topic(slug: &str) -> Option<&'static Topic> {
    TOPICS.iter().find(|t| t.slug == slug)
}

/// The Control Panel's routes (internal face only: [`super::app`] merges them there).
pub(crate) fn routes() -> Router<Site> {
    Router::new()
        .route("/_/cscp", get(home::page))
        .route("/_/cscp/", get(home::page))
        .route("/_/cscp/run", post(home::run))
        .route("/_/cscp/users", get(users::list).post(users::create))
        .route("/_/cscp/users/user", get(users::detail).post(users::change))
        .route("/_/cscp/monitoring", get(monitoring::page))
        .route("/_/cscp/security", get(security::page))
        .route("/_/cscp/security/roles", post(security::change))
        .route("/_/cscp/voice/test", post(config::test_rule))
        .route("/_/cscp/:topic", get(config::topic_page))
        .route(
            "/_/cscp/:topic/:noun",
            get(config::detail).post(config::change),
        )
}

/// The signed-in administrator with their roles and where they call from: what every page
/// needs.
pub(crate) struct Ctx {
    pub site: Site,
    pub admin: AdminSession,
    pub roles: Vec<Role>,
    /// `web <peer ip:port>`, the audit log's origin.
    pub origin: String,
}

#[axum::async_trait]
impl FromRequestParts<Site> for Ctx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, site: &Site) -> Result<Self, Response> {
        let admin = AdminSession::from_request_parts(parts, site).await?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let origin = match peer {
            Some(p) => format!("web {p}"),
            None => "web unknown".to_string(),
        };
        let store = site.api.store.clone();
        let a = admin.admin.clone();
        let principal =
            blocking(move || confab_admin::principal_for(&store, &a).map_err(store_failure))
                .await
                .map_err(IntoResponse::into_response)?;
        Ok(Ctx {
            site: site.clone(),
            admin,
            roles: principal.roles,
            origin,
        })
    }
}

impl Ctx {
    /// Whether the administrator's roles let them run `cmdlet` at all (scopes aside: the
    /// shell checks those when it runs).
    pub fn may(&self, cmdlet: &str) -> bool {
        self.roles.iter().any(|r| r.permits(cmdlet))
    }

    /// Whether the topic is visible to this administrator.
    pub fn sees(&self, t: &Topic) -> bool {
        t.slug.is_empty()
            || t.shown_by.iter().any(|c| self.may(c))
            || t.nouns.iter().any(|n| self.may(&format!("Get-{n}")))
    }

    /// The page for `t`, or a 403 naming why.
    // the refusal is a ready response (a 403 page), built once per request
    #[allow(clippy::result_large_err)]
    pub fn require(&self, t: &Topic) -> Result<(), Response> {
        if self.sees(t) {
            Ok(())
        } else {
            Err(self.refused(&format!(
                "Your administrator roles ({}) do not include {}: this page is not yours to see.",
                self.role_names(),
                t.title
            )))
        }
    }

    pub fn role_names(&self) -> String {
        if self.roles.is_empty() {
            "none".to_string()
        } else {
            self.roles
                .iter()
                .map(|r| r.identity.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// A 403 page, with the navigation.
    pub fn refused(&self, why: &str) -> Response {
        let mut res = self
            .page("Refused", "-", html! { p.error role="alert" { (why) } })
            .into_response();
        *res.status_mut() = StatusCode::FORBIDDEN;
        res
    }

    /// Runs cmdlet text as this administrator, through the shell's session.
    pub async fn run(&self, script: String) -> Result<Output, ExecError> {
        match crate::run_script(
            &self.site.api,
            self.admin.admin.clone(),
            self.origin.clone(),
            script,
        )
        .await
        {
            Ok(o) => Ok(o),
            Err((_, Some(e))) => Err(e),
            Err((api, None)) => Err(ExecError::Failed {
                cmdlet: "script".into(),
                message: api.message,
            }),
        }
    }

    pub fn viewer(&self) -> Viewer {
        Viewer {
            user: None,
            admin: Some(self.admin.clone()),
        }
    }

    pub fn csrf(&self) -> &str {
        &self.admin.csrf
    }

    /// A page with the topics this administrator may see; `current` is the topic's slug.
    pub fn page(&self, title: &str, current: &str, body: Markup) -> Html {
        let nav = html! {
            nav aria-label="Control Panel" {
                ul {
                    @for t in TOPICS.iter().filter(|t| self.sees(t)) {
                        @let href = if t.slug.is_empty() { "/_/cscp".to_string() } else { format!("/_/cscp/{}", t.slug) };
                        li {
                            @if t.slug == current {
                                a href=(href) aria-current="page" { (t.title) }
                            } @else {
                                a href=(href) { (t.title) }
                            }
                        }
                    }
                }
            }
        };
        page::page_with_nav(title, &self.viewer(), nav, body)
    }
}

/// The status of a refused change: 403 for RBAC, 400 for the rest.
pub(crate) fn status_of(e: &ExecError) -> StatusCode {
    if e.is_refusal() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The outcome of a change, shown above the form.
pub(crate) enum Outcome {
    None,
    Done(String, Vec<String>),
    Failed(String),
}

impl Outcome {
    pub fn of(r: &Result<Output, ExecError>, what: &str) -> Outcome {
        match r {
            Ok(o) => Outcome::Done(what.to_string(), o.warnings.clone()),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    pub fn markup(&self) -> Markup {
        match self {
            Outcome::None => html! {},
            Outcome::Done(what, warnings) => html! {
                div.card role="status" {
                    p.ok { (what) }
                    @for w in warnings { p.warning { "WARNING: " (w) } }
                }
            },
            Outcome::Failed(e) => html! { div.card { p.error role="alert" { (e) } } },
        }
    }
}

/// A page answered with a status (a refused change keeps its page, with a 4xx).
pub(crate) fn with_status(html: Html, status: StatusCode) -> Response {
    let mut res = html.into_response();
    *res.status_mut() = status;
    res
}

/// The hidden CSRF field of every form.
pub(crate) fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf()); }
}

/// A form's fields, in order (urlencoded; repeated names kept).
pub(crate) type Fields = Vec<(String, String)>;

pub(crate) fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Refuses a form with a field outside `allowed` (exact names) or `prefixes`, naming it.
pub(crate) fn check_fields(f: &Fields, allowed: &[&str]) -> Result<(), String> {
    for (k, _) in f {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "The form has an unknown field '{k}': nothing was changed."
            ));
        }
    }
    Ok(())
}

/// Reads an urlencoded body into [`Fields`] (a malformed body is a 400).
pub(crate) async fn read_form(req: axum::extract::Request) -> Result<Fields, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), 256 * 1024)
        .await
        .map_err(|_| {
            page::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is too large.",
            )
        })?;
    serde_urlencoded::from_bytes::<Fields>(&bytes).map_err(|_| {
        page::error_page(
            StatusCode::BAD_REQUEST,
            "Bad form",
            "The form was malformed.",
        )
    })
}
