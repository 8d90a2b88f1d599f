//! The web site's listeners: HTTPS (rustls, HTTP/1.1 and HTTP/2) for the internal and
//! external faces, and plain HTTP that answers autodiscover and sends everything else to
//! HTTPS (Lync's 80 and 8080).
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections per listener (more wait in the
//! kernel's backlog), a TLS handshake must finish in [`HANDSHAKE`], request headers must
//! arrive within [`HEADER_READ`] (slow-loris), and bodies are limited by axum (2 MB).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::{Face, Site};
use crate::SiteApi;

/// Connections served at once per listener.
pub const MAX_CONNECTIONS: usize = 1024;

/// The TLS configuration [`serve_https`] takes.
pub type TlsConfig = rustls::ServerConfig;
/// Longest TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Longest wait for a request's headers.
pub const HEADER_READ: Duration = Duration::from_secs(15);

/// A rustls configuration for the web site: our certificate chain and key, HTTP/2 and
/// HTTP/1.1 by ALPN, no client certificates.
pub fn tls_config(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `face` over HTTPS on `listener` until the task is dropped.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: SiteApi,
    face: Face,
) -> std::io::Result<()> {
    let app = super::app(api, face);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, face = face.as_str(), "web site listening (https)");
    }
    serve_connections(listener, app, Some(acceptor)).await
}

/// Accepts connections on `listener` (at most [`MAX_CONNECTIONS`] at once) and serves `app`
/// on each, over TLS when `tls` is given (handshake within [`HANDSHAKE`]), with the header
/// read timeout ([`HEADER_READ`]) of HTTP/1 and at most 64 streams per HTTP/2 connection.
async fn serve_connections(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // e.g. too many open files: back off a little, never spin
                tracing::warn!(error = %e, "web accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(64);
            match tls {
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

/// Serves plain HTTP on `listener`: autodiscover as on HTTPS, every other request
/// redirected (308) to the same host and path over https (port 443, the reverse proxy's).
pub async fn serve_http(listener: TcpListener, api: SiteApi, face: Face) -> std::io::Result<()> {
    let site = Site::new(api, face);
    let app = super::autodiscover::routes()
        .fallback(to_https)
        .with_state(site.clone());
    let app = Router::new()
        .fallback_service(app)
        .layer(axum::middleware::from_fn_with_state(site, super::rewrite))
        .layer(axum::middleware::from_fn(super::plain_http_headers));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, face = face.as_str(), "web site listening (http: autodiscover and redirects)");
    }
    // bounded and timed as the HTTPS listeners: these are the ones published on port 80
    serve_connections(listener, app, None).await
}

async fn to_https(State(_site): State<Site>, req: Request) -> Response {
    let Some(host) = super::request_host(&req) else {
        return (StatusCode::BAD_REQUEST, "a Host header is needed").into_response();
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let uri = req
        .extensions()
        .get::<super::Rewritten>()
        .map(|r| &r.0)
        .unwrap_or(req.uri());
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match format!("https://{host}{pq}").parse::<Uri>() {
        Ok(u) => Redirect::permanent(&u.to_string()).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad request").into_response(),
    }
}
