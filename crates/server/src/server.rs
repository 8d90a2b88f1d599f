//! Starting and running a confab server: binds the listeners, builds the core, spawns the
//! receive loops, the timer tick, registration expiry and the user-cache refresher.

use crate::config::{Config, Listen, Transport};
use crate::core::Core;
use crate::transport::{bind_tcp, bind_udp, Transports};
use crate::users::UserCache;
use anyhow::Context;
use confab_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct Running {
    pub core: Arc<Core>,
    pub transports: Arc<Transports>,
}

impl Running {
    pub fn listeners(&self) -> Vec<Listen> {
        self.transports.listeners()
    }
}

/// Binds and starts everything on the current tokio runtime.
pub async fn start(cfg: Config, store: Arc<Store>) -> anyhow::Result<Running> {
    let users = Arc::new(UserCache::default());
    users
        .refresh(&store)
        .context("loading users from the store")?;
    let mut udp = vec![];
    let mut tcp = vec![];
    let mut listeners = vec![];
    for l in cfg.listeners() {
        match l.transport {
            Transport::Udp => {
                let s = bind_udp(l.addr).with_context(|| format!("binding UDP {}", l.addr))?;
                let a = s.local_addr()?;
                listeners.push(Listen {
                    transport: Transport::Udp,
                    addr: a,
                });
                udp.push((a, Arc::new(s)));
            }
            t => {
                let s = bind_tcp(l.addr)
                    .with_context(|| format!("binding {} {}", t.as_str(), l.addr))?;
                let l = Listen {
                    transport: t,
                    addr: s.local_addr()?,
                };
                listeners.push(l);
                tcp.push((l, s));
            }
        }
    }
    let workers = cfg.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let mut core = Core::new(cfg, users.clone(), Some(store.clone()));
    core.set_listeners(listeners.clone());
    // the pool: this front end's name and address, and the shared location's writer queue
    let pool_writes = if core.cfg.pool.enabled {
        let address = match core.cfg.pool.parsed_address().map_err(anyhow::Error::msg)? {
            Some(l) => Some(l),
            None => listeners
                .iter()
                .find(|l| l.transport == Transport::Tcp && !l.addr.ip().is_unspecified())
                .copied(),
        }
        .map(|l| crate::net::Dest {
            transport: l.transport,
            addr: l.addr,
            conn: None,
        });
        let name = core
            .cfg
            .pool
            .name
            .clone()
            .unwrap_or_else(|| match &address {
                Some(a) => crate::pool::address_text(a),
                None => format!("{}:{}", listeners[0].transport.param(), listeners[0].addr),
            });
        if address.is_none() {
            tracing::warn!("pool: no TCP listener with a specific address and no [pool] address: other front ends cannot forward to this one");
        }
        let (tx, rx) = tokio::sync::mpsc::channel(crate::pool::WRITE_QUEUE);
        core.pool = Some(crate::pool::Pool::new(name, address, tx));
        Some(rx)
    } else {
        None
    };
    core.reload_policies(&store)
        .context("loading policies from the store")?;
    core.scripts
        .load(&store)
        .context("loading server applications")?;
    if let Err(e) = core.load_state() {
        tracing::warn!("could not restore the saved state: {e}");
    }
    if let Some(pool) = &core.pool {
        let (n, p) = crate::pool::sync::join(&core, &store)
            .context("joining the pool (the shared location in the store)")?;
        let others = pool.members.read().values().filter(|m| m.alive).count();
        tracing::info!(front_end = %pool.name, "pool: {n} registrations and {p} publications in the shared location, {others} other front ends up");
    }
    if core.cfg.meetings.enabled {
        let m = &core.cfg.meetings;
        let ip = m.media_address.unwrap_or_else(|| {
            let ip = listeners[0].addr.ip();
            if ip.is_unspecified() {
                tracing::warn!("meetings.media_address is not set and the first listener has no specific address: the MCU uses 127.0.0.1");
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                ip
            }
        });
        let engine = confab_media::Engine::start(confab_media::EngineConfig {
            bind_ip: ip,
            port_min: m.media_port_min,
            port_max: m.media_port_max,
            threads: m.mixer_threads,
            rtp_timeout: Duration::from_secs(m.rtp_timeout_secs),
            max_legs: m.max_participants,
            // the codecs in the MCU's order of preference (Opus, PCMU, PCMA)
            ..Default::default()
        })
        .context("starting the audio MCU")?;
        tracing::info!(
            "audio MCU on {ip}, RTP ports {}-{}, {} mixer threads",
            m.media_port_min,
            m.media_port_max,
            m.mixer_threads
        );
        core.set_media(engine);
    }
    let core = Arc::new(core);
    let tls = if listeners.iter().any(|l| l.transport.is_secure()) {
        let id = crate::tls::load_or_create(&core.cfg).context("TLS certificate")?;
        let how = if id.generated {
            "generated, self-signed"
        } else {
            "loaded"
        };
        // stdout too: a new user needs the thumbprint to make peers trust this server
        let line = format!(
            "TLS certificate {} ({how}): SHA-1 thumbprint {} SHA-256 {}",
            id.cert_path.display(),
            id.thumbprint(),
            id.sha256()
        );
        println!("{line}");
        tracing::info!("{line}");
        let c = core.clone();
        let trusted: crate::tls::TrustedThumbprints =
            Arc::new(move |t: &str| c.policies.get().trusts_thumbprint(t));
        Some(crate::tls::TlsContext::new(&id, &core.cfg.tls, trusted)?)
    } else {
        None
    };
    let transports = Transports::new(
        core.clone(),
        udp.clone(),
        tcp.iter().map(|(l, _)| *l).collect(),
        tls,
    );
    for (addr, sock) in udp {
        for _ in 0..workers.max(1) {
            tokio::spawn(transports.clone().udp_loop(addr, sock.clone()));
        }
    }
    for (l, listener) in tcp {
        tokio::spawn(transports.clone().accept_loop(l, listener));
    }
    if let Some(rx) = pool_writes {
        let poll = Duration::from_millis(core.cfg.pool.poll_ms);
        tokio::spawn(crate::pool::sync::run(
            core.clone(),
            transports.clone(),
            store.clone(),
            rx,
            poll,
        ));
    }
    // Store work (offline messages, audit entries, reloads): a few workers, each running
    // one effect at a time on a blocking thread and sending what its completion causes
    // the way the timer tick does (effects.rs).
    for _ in 0..crate::effects::STORE_WORKERS {
        let (core, t) = (core.clone(), transports.clone());
        tokio::spawn(async move {
            let mut out = vec![];
            loop {
                let effect = core.effects.next().await;
                let c = core.clone();
                out = tokio::task::spawn_blocking(move || {
                    let done = c.run_effect(effect);
                    c.complete_at(done, std::time::Instant::now(), &mut out);
                    out
                })
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("internal error while running store work");
                    vec![]
                });
                t.dispatch(&mut out).await;
            }
        });
    }
    {
        let t = transports.clone();
        let core = core.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(crate::timer_wheel::TICK);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut out = vec![];
            loop {
                iv.tick().await;
                // a bug must not stop every timer of the server
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.tick(&mut out)))
                    .is_err()
                {
                    out.clear();
                    tracing::error!("internal error while running timers");
                }
                t.dispatch(&mut out).await;
            }
        });
    }
    {
        let core = core.clone();
        let t = transports.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            let mut out = vec![];
            loop {
                iv.tick().await;
                let c = core.clone();
                // the sweep walks every binding and subscription: keep it off the I/O threads
                // (its store reads are effects, run by the store workers)
                out = tokio::task::spawn_blocking(move || {
                    c.sweep(&mut out);
                    out
                })
                .await
                .unwrap_or_default();
                t.dispatch(&mut out).await;
                n += 1;
                if n.is_multiple_of(2) {
                    let (users, store) = (users.clone(), store.clone());
                    match tokio::task::spawn_blocking(move || users.refresh(&store)).await {
                        Ok(Ok(true)) => tracing::info!("user list reloaded from the store"),
                        Ok(Err(e)) => tracing::warn!("reloading users: {e}"),
                        _ => {}
                    }
                }
            }
        });
    }
    if let Some(prompts) = core.focus.prompts().cloned() {
        // the attendant's prompts made (espeak-ng) or loaded from the cache ahead of the
        // first caller; speech is otherwise made by the store workers when first needed
        let mut langs: Vec<String> = core
            .policies
            .get()
            .access_numbers()
            .iter()
            .map(|(_, n)| n.primary_language.clone())
            .collect();
        langs.push(crate::focus::DEFAULT_LANG.to_string());
        langs.sort();
        langs.dedup();
        std::thread::Builder::new()
            .name("prompts".into())
            .spawn(move || {
                let langs: Vec<&str> = langs.iter().map(String::as_str).collect();
                prompts.prepare(&langs);
            })
            .context("starting the prompts thread")?;
    }
    if let Some(engine) = core.focus.media().cloned() {
        // what the MCU reports (a silent participant, DTMF), fed to the focus
        let (core, t) = (core.clone(), transports.clone());
        tokio::spawn(async move {
            let mut out = vec![];
            loop {
                let e = engine.clone();
                let Ok(ev) =
                    tokio::task::spawn_blocking(move || e.wait_event(Duration::from_secs(1))).await
                else {
                    break;
                };
                if let Some(ev) = ev {
                    core.on_media_event(ev, std::time::Instant::now(), &mut out);
                    t.dispatch(&mut out).await;
                }
            }
        });
    }
    for l in &listeners {
        tracing::info!("listening on {} {}", l.transport.as_str(), l.addr);
    }
    Ok(Running { core, transports })
}

/// Runs until SIGINT or SIGTERM. SIGUSR1 toggles the SIP message trace.
pub async fn run(cfg: Config, store: Arc<Store>) -> anyhow::Result<()> {
    let domains = cfg.domains.join(", ");
    let running = start(cfg, store).await?;
    serve_until_signal(running, &domains).await
}

/// Serves a started server until SIGINT or SIGTERM, then saves its state.
pub async fn serve_until_signal(running: Running, domains: &str) -> anyhow::Result<()> {
    tracing::info!(
        "confab serving {domains} ({} users)",
        running.core.users.len()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = usr1.recv() => {
                let on = running.core.toggle_trace();
                tracing::info!("SIP trace {}", if on { "on" } else { "off" });
            }
        }
    }
    tracing::info!("shutting down");
    // meetings end with the server: every participant gets a BYE
    let mut out = vec![];
    running
        .core
        .focus_end_all(std::time::Instant::now(), &mut out);
    running.transports.dispatch(&mut out).await;
    // keep registrations and presence across a restart
    let core = running.core.clone();
    tokio::task::spawn_blocking(move || core.save_state()).await??;
    // the pool's others stop sending here at once (not after the heartbeat times out)
    let core = running.core.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || crate::pool::sync::leave(&core)).await? {
        tracing::warn!("pool: recording the stop: {e}");
    }
    Ok(())
}
