//! The pages' frame: one layout (header with who is signed in, navigation, main), error
//! pages, and the static assets (CSS, JavaScript) served by confab itself — no CDN, no
//! inline script or style (the Content-Security-Policy forbids both).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::Viewer;

/// A rendered page.
pub struct Html(pub Markup);

/// The static assets: (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "confab.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/confab.css"),
    ),
    (
        "confab.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/confab.js"),
    ),
];

/// `GET /_/static/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == file) {
        Some((_, ct, body)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => error_page(StatusCode::NOT_FOUND, "Not found", "There is no such file."),
    }
}

/// A whole page: `title`, the signed-in viewer in the header, `body` in `<main>`.
pub fn page(title: &str, viewer: &Viewer, body: Markup) -> Html {
    page_with_nav(title, viewer, html! {}, body)
}

/// [`page`] with a navigation bar (the Control Panel's topics).
pub fn page_with_nav(title: &str, viewer: &Viewer, nav: Markup, body: Markup) -> Html {
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – confab" }
                link rel="stylesheet" href="/_/static/confab.css";
                script src="/_/static/confab.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "confab" }
                    (nav)
                    span.who {
                        @if let Some(u) = &viewer.user { span { "Signed in as " b { (u.user) } } }
                        @if let Some(a) = &viewer.admin { span { "Administrator " b { (a.admin.name) } } }
                        @if viewer.user.is_some() || viewer.admin.is_some() {
                            form.inline method="post" action="/_/signout" {
                                input type="hidden" name="csrf" value=(viewer.csrf());
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    })
}

/// An error page with its status.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut res = page(
        title,
        &Viewer::default(),
        html! { p.error role="alert" { (message) } },
    )
    .into_response();
    *res.status_mut() = status;
    res
}
