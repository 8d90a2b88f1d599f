//! Home: the server's health (users, registrations, connections, live meetings and their
//! participants, SIP transactions) with charts of the last hours, and a "Run a command"
//! box (any cmdlet text, under the administrator's roles, as `POST /api/v1/cmdlets`).
//!
//! The charts come from the server's own counters: a task samples the `/metrics` text
//! source once a minute into a bounded ring ([`History`], 24 hours), and the page draws
//! them as inline SVG on the server (no chart library, no script, no inline style).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::{check_fields, csrf_field, field, read_form, status_of, with_status, Ctx};

/// The counters Home shows: (metric name, label).
pub(crate) const SERIES: &[(&str, &str)] = &[
    ("confab_registrar_bindings", "Registrations"),
    ("confab_connections", "Connections"),
    ("confab_calls", "Active calls"),
    ("confab_meetings", "Live meetings"),
    ("confab_meeting_participants", "Meeting participants"),
    ("confab_mcu_legs", "Conference audio legs"),
    ("confab_sip_transactions", "SIP transactions"),
];

/// How often the counters are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(60);
/// How many samples are kept: 24 hours of minutes.
pub(crate) const KEEP: usize = 24 * 60;

/// One sample: unix seconds and a value per [`SERIES`] (`None`: the counter was absent).
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub at: i64,
    pub values: [Option<f64>; SERIES.len()],
}

/// The last [`KEEP`] samples.
#[derive(Default)]
pub(crate) struct History {
    ring: Mutex<VecDeque<Sample>>,
}

impl History {
    pub(crate) fn push(&self, s: Sample) {
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() >= KEEP {
            r.pop_front();
        }
        r.push_back(s);
    }

    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Starts sampling `metrics` (now, then every [`SAMPLE_EVERY`]) on the current tokio
    /// runtime, until the history is dropped. Without a runtime, nothing is sampled.
    pub(crate) fn start(self: &Arc<Self>, metrics: crate::MetricsCache) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<History> = Arc::downgrade(self);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(h) = weak.upgrade() else { return };
                let m = metrics.clone();
                // rendering visits every location shard: off the async threads
                let text = match tokio::task::spawn_blocking(move || m.text()).await {
                    Ok(t) => t,
                    Err(_) => continue,
                };
                h.push(sample_of(&text, now()));
            }
        });
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The value of an unlabelled metric in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .filter(|v| v.is_finite())
}

pub(crate) fn sample_of(text: &str, at: i64) -> Sample {
    let mut values = [None; SERIES.len()];
    for (i, (name, _)) in SERIES.iter().enumerate() {
        values[i] = metric(text, name);
    }
    Sample { at, values }
}

const W: f64 = 320.0;
const H: f64 = 120.0;
const PAD: f64 = 4.0;

/// A line chart of one series (inline SVG: attributes only).
pub(crate) fn chart(label: &str, points: &[(i64, f64)], now: i64) -> Markup {
    let span = 6 * 3600; // the last six hours
    let from = now - span;
    let pts: Vec<&(i64, f64)> = points.iter().filter(|(t, _)| *t >= from).collect();
    let max = pts.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max);
    let x = |t: i64| PAD + (W - 2.0 * PAD) * ((t - from) as f64 / span as f64);
    let y = |v: f64| H - PAD - (H - 2.0 * PAD) * (v / max);
    let path: String = pts
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    let last = pts.last().map(|(_, v)| *v);
    let desc = format!(
        "{label} over the last 6 hours: {} samples, highest {}, now {}",
        pts.len(),
        max_of(&pts),
        last.map(fmt).unwrap_or_else(|| "unknown".into())
    );
    html! {
        figure.chart-box {
            figcaption { b { (label) } ": " (last.map(fmt).unwrap_or_else(|| "–".into())) }
            svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(desc) {
                title { (desc) }
                line x1=(n(PAD)) y1=(n(H - PAD)) x2=(n(W - PAD)) y2=(n(H - PAD)) stroke="#9aa5b1" stroke-width="1" {}
                text x=(n(PAD + 2.0)) y="14" font-size="11" fill="#59636e" { "max " (fmt(max)) }
                text x=(n(W - PAD - 2.0)) y=(n(H - PAD - 4.0)) font-size="11" fill="#59636e" text-anchor="end" { "now" }
                text x=(n(PAD + 2.0)) y=(n(H - PAD - 4.0)) font-size="11" fill="#59636e" { "−6 h" }
                @if pts.len() == 1 {
                    circle cx=(format!("{:.1}", x(pts[0].0))) cy=(format!("{:.1}", y(pts[0].1))) r="3" fill="#0b5cad" {}
                } @else if pts.len() > 1 {
                    polyline points=(path) fill="none" stroke="#0b5cad" stroke-width="2" {}
                }
            }
        }
    }
}

/// A coordinate for an SVG attribute.
fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn max_of(pts: &[&(i64, f64)]) -> String {
    pts.iter()
        .map(|(_, v)| *v)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map(fmt)
        .unwrap_or_else(|| "–".into())
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

/// `GET /_/cscp`.
pub(crate) async fn page(ctx: Ctx) -> Response {
    home_view(&ctx, None, "", StatusCode::OK).await
}

async fn home_view(ctx: &Ctx, ran: Option<Markup>, typed: &str, status: StatusCode) -> Response {
    let users = if ctx.may("Get-CsUser") {
        ctx.run("Get-CsUser".into())
            .await
            .ok()
            .map(|o| o.objects.len())
    } else {
        None
    };
    let now = now();
    let history = ctx.site.history.samples();
    // the counters now, as the last point
    let current = match &ctx.site.api.metrics {
        Some(m) => {
            let m = m.clone();
            tokio::task::spawn_blocking(move || m.text())
                .await
                .ok()
                .map(|t| sample_of(&t, now))
        }
        None => None,
    };
    let charts: Vec<Markup> = SERIES
        .iter()
        .enumerate()
        .map(|(i, (_, label))| {
            let pts: Vec<(i64, f64)> = history
                .iter()
                .chain(current.iter())
                .filter_map(|s| s.values[i].map(|v| (s.at, v)))
                .collect();
            chart(label, &pts, now)
        })
        .collect();
    let body = html! {
        section aria-labelledby="health" {
            h2 #health { "Health" }
            table {
                tbody {
                    tr { th scope="row" { "Users" } td { (users.map(|u| u.to_string()).unwrap_or_else(|| "–".into())) } }
                    tr { th scope="row" { "Signed in as" } td { (ctx.admin.admin.name) " (" (ctx.role_names()) ")" } }
                    tr { th scope="row" { "Pool" } td { (ctx.site.api.pool.as_ref()) } }
                }
            }
            @if current.is_none() { p.muted { "No SIP server runs in this process: no counters." } }
            div.grid { @for c in charts { (c) } }
            p.muted { "Sampled every minute from the server's counters (/metrics); the last 6 hours." }
        }
        section aria-labelledby="run" {
            h2 #run { "Run a command" }
            form.card method="post" action="/_/cscp/run" {
                (csrf_field(ctx))
                label for="command" { "Cmdlets, as in the shell (your roles apply, the change is audited)" }
                textarea #command name="command" rows="3" { (typed) }
                button type="submit" { "Run" }
            }
            @if let Some(r) = ran { (r) }
        }
    };
    with_status(ctx.page("Home", "", body), status)
}

/// `POST /_/cscp/run`: any command text under the administrator's roles.
pub(crate) async fn run(ctx: Ctx, req: Request) -> Response {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = check_fields(&f, &["csrf", "command"]) {
        return home_view(
            &ctx,
            Some(html! { p.error role="alert" { (e) } }),
            "",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let command = field(&f, "command").unwrap_or("").to_string();
    if command.trim().is_empty() {
        return home_view(
            &ctx,
            Some(html! { p.error role="alert" { "Type a command." } }),
            "",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let r = ctx.run(command.clone()).await;
    let (status, out) = match &r {
        Ok(o) => (
            StatusCode::OK,
            html! {
                div role="status" {
                    @for w in &o.warnings { p.warning { "WARNING: " (w) } }
                    @if o.text.trim().is_empty() { p.ok { "Done." } } @else { pre.output { (o.text) } }
                }
            },
        ),
        Err(e) => (
            status_of(e),
            html! { p.error role="alert" { (e.to_string()) } },
        ),
    };
    home_view(&ctx, Some(out), &command, status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_and_the_ring_is_bounded() {
        let text = "# HELP confab_meetings x\n# TYPE confab_meetings gauge\nconfab_meetings 3\nconfab_meeting_participants 7\nconfab_registrar_bindings NaN\n";
        assert_eq!(metric(text, "confab_meetings"), Some(3.0));
        assert_eq!(metric(text, "confab_meeting"), None);
        assert_eq!(
            metric(text, "confab_registrar_bindings"),
            None,
            "not finite"
        );
        let h = History::default();
        for i in 0..(KEEP as i64 + 10) {
            h.push(sample_of(text, i));
        }
        let s = h.samples();
        assert_eq!(s.len(), KEEP);
        assert_eq!(s[0].at, 10);
    }

    #[test]
    fn charts_are_svg_without_style() {
        let c = chart("Live meetings", &[(0, 1.0), (1800, 3.0), (3600, 2.0)], 3600).into_string();
        assert!(c.contains("<svg") && c.contains("<polyline"), "{c}");
        assert!(!c.contains("style"), "{c}");
        let one = chart("x", &[(100, 1.0)], 100).into_string();
        assert!(one.contains("<circle"));
    }
}
