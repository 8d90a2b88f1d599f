//! `confab`: run the server and manage its users.

use anyhow::{bail, Context};

// mimalloc: the SIP hot path allocates small, short-lived buffers on several threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Args, Parser, Subcommand};
use confab_server::config::{parse_listen, Config};
use confab_store::{NewUser, Store};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

mod live;
mod meeting;
mod shell;
mod status;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "confab: a unified-communications SIP server (registrar, proxy, presence, IM)",
    long_about = "confab is a SIP server any standard client (baresip, linphone, Zoiper, sipp) can use.\n\n\
Quick start:\n  confab user add alice --password secret     # creates ./confab-data/confab.db\n  \
confab serve                                # 127.0.0.1:5060 UDP+TCP, domain example.test\n\n\
Then register a client as sip:alice@example.test with password 'secret' via 127.0.0.1:5060."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file (see docs/configuration.md); command-line options override it
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory holding the SQLite store (default ./confab-data)
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Central store: a PostgreSQL URL (postgres://user:password@host/db) shared by several
    /// servers, or a data directory; default: SQLite in the data directory
    #[arg(long, global = true)]
    store: Option<String>,
    /// Create a new store if there is none (only `serve` does so without it)
    #[arg(long, global = true)]
    init: bool,
}

/// Whether this command may create a store that is not there yet: `serve`, or `--init`.
static MAY_CREATE_STORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Subcommand)]
enum Command {
    /// Run the SIP server
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, UDP and TCP (repeatable): 127.0.0.1:5060, [::1]:5060,
        /// or one transport only: udp:ADDR:PORT, tcp:ADDR:PORT, tls:ADDR:PORT,
        /// ws:ADDR:PORT, wss:ADDR:PORT (TLS and WSS use [tls] cert/key, or a generated
        /// self-signed certificate whose fingerprint is printed)
        #[arg(long, short = 'l')]
        listen: Vec<String>,
        /// SIP domain to serve (repeatable); the first is the default for new users
        #[arg(long, short = 'd')]
        domain: Vec<String>,
        /// Number of worker threads (default: one per core); bound it for fair benchmarks
        #[arg(long, short = 'w')]
        workers: Option<usize>,
        /// Log every SIP message (also toggled at run time with `kill -USR1 <pid>`)
        #[arg(long)]
        sip_trace: bool,
        /// Serve the administration REST API on ADDR:PORT (plain HTTP: use loopback)
        #[arg(long)]
        http: Option<String>,
        /// Serve the web site's internal face (meeting and dial-in pages, the Control Panel)
        /// over HTTPS on ADDR:PORT (the `[web] internal` key)
        #[arg(long)]
        web: Option<String>,
    },
    /// Write a consistent copy of the whole store (users, contacts, messages, configuration,
    /// administrators, audit log) to FILE; safe while the server runs
    Backup {
        #[command(flatten)]
        common: Common,
        file: PathBuf,
        /// Put the TLS private key into the backup, sealed with the passphrase in this file
        /// (at least 12 characters; without it the backup holds the certificate only)
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Make FILE (from `confab backup`, of either backend) the store of an empty data
    /// directory, or load it into an empty PostgreSQL store (--store postgres://…)
    Restore {
        #[command(flatten)]
        common: Common,
        file: PathBuf,
        /// The passphrase the backup's TLS key was sealed with (a file holding it)
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Manage users: add, list, show, remove, passwd, enable, disable, seed
    #[command(subcommand)]
    User(UserCmd),
    /// Manage a user's contact list and privacy relationships (Lync 2013 access levels:
    /// FriendsAndFamily, Workgroup, Colleagues, External, Blocked)
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Meetings: create, list, show, remove (in the store, with the rules of
    /// CsMeetingConfiguration and the organizer's CsConferencingPolicy), and live control
    /// through a server's REST API: roster, admit, deny, mute, unmute, eject
    #[command(subcommand)]
    Meeting(meeting::MeetingCmd),
    /// The administration shell: Lync Management Shell cmdlets (Get-CsUser,
    /// Set-CsMeetingConfiguration -PstnCallersBypassLobby $false, New-CsAdminRole, …).
    /// Sign in with --admin NAME (or CONFAB_ADMIN) and the password from CONFAB_ADMIN_PASSWORD
    /// or a prompt; every command is checked against your roles and changes are audited.
    Shell {
        #[command(flatten)]
        common: Common,
        /// Administrator to sign in as
        #[arg(long)]
        admin: Option<String>,
        /// Administer a remote confab through its REST API, e.g. http://127.0.0.1:8080
        #[arg(long)]
        server: Option<String>,
        /// Run these commands and exit
        #[arg(short = 'c', long = "command")]
        command: Option<String>,
        /// Run this script file and exit
        file: Option<PathBuf>,
    },
    /// Administrator accounts: the first one can be added freely; after that, only an
    /// administrator whose roles allow New-CsAdminRole (CsAdministrator) may manage them
    #[command(subcommand)]
    Admin(AdminCmd),
    /// The store in use and each front end of the pool (from their heartbeats in the
    /// store): address, state (Active, Unavailable, Stopped, Isolated), last heartbeat,
    /// registrations, subscriptions, connections, calls, transactions, meetings; totals
    Status {
        #[command(flatten)]
        common: Common,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print every port the configuration opens, one per line, for a firewall script:
    /// `PROTO ADDRESS PORT[-LAST] PURPOSE` (e.g. `udp 0.0.0.0 20000-20999 media`)
    Ports {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Add an administrator: `confab admin add alice --role CsAdministrator`
    Add {
        #[command(flatten)]
        common: Common,
        name: String,
        /// Role (built-in such as CsAdministrator, CsUserAdministrator, CsHelpDesk, or custom); repeatable
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The new administrator's password (otherwise --password-stdin, or generated and printed)
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        /// Administrator doing this (not needed for the first one)
        #[arg(long = "as")]
        as_admin: Option<String>,
    },
    /// List administrators and their roles
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Remove an administrator
    Remove {
        #[command(flatten)]
        common: Common,
        name: String,
        #[arg(long = "as")]
        as_admin: Option<String>,
    },
    /// Change an administrator's roles
    SetRoles {
        #[command(flatten)]
        common: Common,
        name: String,
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long = "as")]
        as_admin: Option<String>,
    },
    /// Show the audit log (who changed what, when, from where)
    Audit {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 50)]
        last: usize,
        #[arg(long = "as")]
        as_admin: Option<String>,
    },
}

#[derive(Subcommand)]
enum ContactCmd {
    /// Add CONTACT to USER's list, optionally at LEVEL (default: Colleagues for the same
    /// organisation, External otherwise): `confab contact add alice bob@example.test Workgroup`
    Add {
        #[command(flatten)]
        common: Common,
        user: String,
        contact: String,
        level: Option<String>,
    },
    /// List USER's contacts with their levels
    List {
        #[command(flatten)]
        common: Common,
        user: String,
    },
    /// Change the level of CONTACT in USER's list ("auto" restores the default)
    SetLevel {
        #[command(flatten)]
        common: Common,
        user: String,
        contact: String,
        level: String,
    },
    /// Remove CONTACT from USER's list
    Remove {
        #[command(flatten)]
        common: Common,
        user: String,
        contact: String,
    },
}

const LEVELS: &str = "FriendsAndFamily, Workgroup, Colleagues, External, Blocked (or auto)";

fn parse_level(s: &str) -> anyhow::Result<Option<confab_store::PrivacyLevel>> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    confab_store::PrivacyLevel::parse(s)
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("unknown privacy level '{s}'; expected one of {LEVELS}"))
}

fn contact_command(cmd: ContactCmd) -> anyhow::Result<()> {
    let show = |e: &confab_store::ContactEntry| {
        println!(
            "{:<40} {:<17} {}",
            e.contact,
            e.level.as_str(),
            if e.explicit_level { "" } else { "(auto)" }
        );
    };
    match cmd {
        ContactCmd::Add {
            common,
            user,
            contact,
            level,
        } => {
            let cfg = load_config(&common)?;
            let (u, d) = split_address(&user, &cfg);
            let level = match level {
                Some(l) => parse_level(&l)?,
                None => None,
            };
            let e = open_store(&cfg)?.add_contact(&u, &d, &contact, level)?;
            print!("added to {u}@{d}: ");
            show(&e);
        }
        ContactCmd::List { common, user } => {
            let cfg = load_config(&common)?;
            let (u, d) = split_address(&user, &cfg);
            let list = open_store(&cfg)?.list_contacts(&u, &d)?;
            for e in &list {
                show(e);
            }
            eprintln!("{} contact(s)", list.len());
        }
        ContactCmd::SetLevel {
            common,
            user,
            contact,
            level,
        } => {
            let cfg = load_config(&common)?;
            let (u, d) = split_address(&user, &cfg);
            let level = parse_level(&level)?;
            open_store(&cfg)?.set_contact_level(&u, &d, &contact, level)?;
            println!(
                "{contact} is now {} for {u}@{d}",
                level.map(|l| l.as_str()).unwrap_or("auto-assigned")
            );
        }
        ContactCmd::Remove {
            common,
            user,
            contact,
        } => {
            let cfg = load_config(&common)?;
            let (u, d) = split_address(&user, &cfg);
            open_store(&cfg)?.remove_contact(&u, &d, &contact)?;
            println!("removed {contact} from {u}@{d}'s contacts");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user: `confab user add alice --password secret` (domain from the config) or alice@example.test
    Add {
        #[command(flatten)]
        common: Common,
        /// user or user@domain
        address: String,
        /// Password (otherwise read from stdin with --password-stdin, or generated and printed)
        #[arg(long, short = 'p')]
        password: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        /// Display name
        #[arg(long, short = 'n', default_value = "")]
        name: String,
        /// Organisational unit, an LDAP distinguished name such as
        /// "OU=Sales,DC=example,DC=test": admin roles with UserScopes "OU:<dn>" manage the
        /// users in that OU and below it
        #[arg(long)]
        ou: Option<String>,
    },
    /// Change a user: `confab user set alice --line-uri "tel:+14255550100;ext=100"` (Lync's
    /// Set-CsUser -LineURI: the number or extension a dial-in leader keys), or
    /// --no-line-uri to take it away
    Set {
        #[command(flatten)]
        common: Common,
        address: String,
        /// tel:+<digits> with an optional ;ext=<digits> (unique among users)
        #[arg(
            long,
            required_unless_present = "no_line_uri",
            conflicts_with = "no_line_uri"
        )]
        line_uri: Option<String>,
        /// Remove the user's LineURI
        #[arg(long)]
        no_line_uri: bool,
    },
    /// Move a user into an organisational unit (`confab user set-ou alice
    /// "OU=Sales,DC=example,DC=test"`), or out of any with --none
    SetOu {
        #[command(flatten)]
        common: Common,
        address: String,
        /// The organisational unit (an LDAP distinguished name)
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        ou: Option<String>,
        /// Put the user in no OU (then only roles with a Global user scope manage them)
        #[arg(long)]
        none: bool,
    },
    /// List users
    List {
        #[command(flatten)]
        common: Common,
        /// Only users of this domain
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one user, with their registered endpoints (contact, transport, source address,
    /// user agent, expiry, front end)
    Show {
        #[command(flatten)]
        common: Common,
        address: String,
        /// JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove a user
    Remove {
        #[command(flatten)]
        common: Common,
        address: String,
    },
    /// Change a user's password
    Passwd {
        #[command(flatten)]
        common: Common,
        address: String,
        #[arg(long, short = 'p')]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Allow a user to sign in again
    Enable {
        #[command(flatten)]
        common: Common,
        address: String,
    },
    /// Stop a user from signing in (registrations are refused; the account is kept)
    Disable {
        #[command(flatten)]
        common: Common,
        address: String,
    },
    /// Create PREFIX0000..PREFIX{count-1} with password PASSWORD_PREFIX<user>, in one transaction
    /// (e.g. the benchmark users: --domain example.test --count 10000 --password-prefix pw-)
    Seed {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, default_value_t = 10000)]
        count: u32,
        #[arg(long, default_value = "user")]
        prefix: String,
        #[arg(long, default_value = "pw-")]
        password_prefix: String,
    },
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    if common.init {
        MAY_CREATE_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let mut cfg = match &common.config {
        Some(p) => Config::load(p).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    if let Some(d) = &common.data {
        cfg.data_dir = d.clone();
    }
    if let Some(s) = &common.store {
        if confab_store::is_postgres_url(s) {
            cfg.store = Some(s.clone());
        } else {
            cfg.data_dir = PathBuf::from(s);
            cfg.store = None;
        }
    }
    Ok(cfg)
}

/// The PostgreSQL URL of the store, if it is on PostgreSQL.
fn postgres_store(cfg: &Config) -> Option<&str> {
    cfg.store
        .as_deref()
        .filter(|s| confab_store::is_postgres_url(s))
}

/// Where the store is, for messages (passwords redacted).
fn store_name(cfg: &Config) -> String {
    match postgres_store(cfg) {
        Some(url) => confab_store::redact_url(url),
        None => cfg.data_dir.display().to_string(),
    }
}

fn open_store_quiet(cfg: &Config) -> anyhow::Result<Store> {
    match (&cfg.store, postgres_store(cfg)) {
        (_, Some(url)) => {
            let may_create = MAY_CREATE_STORE.load(std::sync::atomic::Ordering::Relaxed);
            if !may_create
                && !Store::postgres_store_exists(url)
                    .with_context(|| format!("opening the store at {}", store_name(cfg)))?
            {
                bail!(
                    "there is no confab store at {}: check the URL (and its search_path), or pass --init to create a new store there",
                    store_name(cfg)
                );
            }
            Store::open_url(url)
                .with_context(|| format!("opening the store at {}", store_name(cfg)))
        }
        (Some(other), None) => bail!(
            "store = {other:?} is not a postgres:// URL; leave it unset for SQLite in data_dir"
        ),
        (None, None) => {
            let db = cfg.data_dir.join(confab_store::DB_FILE_NAME);
            if !db.exists() && !MAY_CREATE_STORE.load(std::sync::atomic::Ordering::Relaxed) {
                bail!(
                    "there is no store at {}: give the server's --config or --data (or --store), or pass --init to create a new store there",
                    db.display()
                );
            }
            Store::open(&cfg.data_dir)
                .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))
        }
    }
}

/// Opens the store and says which one on stderr (so a command run in the wrong directory
/// never silently works on another store).
fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = open_store_quiet(cfg)?;
    eprintln!(
        "confab: store {}",
        match postgres_store(cfg) {
            Some(_) => store_name(cfg),
            None => cfg
                .data_dir
                .join(confab_store::DB_FILE_NAME)
                .display()
                .to_string(),
        }
    );
    Ok(store)
}

/// Where export cmdlets (Export-CsUserData, …) write and import cmdlets read: the data
/// directory's `export` folder, and nowhere else.
fn export_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("export")
}

fn split_address(addr: &str, cfg: &Config) -> (String, String) {
    match addr.split_once('@') {
        Some((u, d)) => (u.to_string(), d.to_ascii_lowercase()),
        None => (addr.to_string(), cfg.domains[0].clone()),
    }
}

fn read_password(password: Option<String>, stdin: bool) -> anyhow::Result<(String, bool)> {
    if let Some(p) = password {
        return Ok((p, false));
    }
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            bail!("no password on standard input");
        }
        return Ok((p, false));
    }
    use rand::Rng;
    const ALPHA: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    Ok((
        (0..16)
            .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
            .collect(),
        true,
    ))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // colour codes only on a terminal, never in a file or the journal
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("confab: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Backup {
            common,
            file,
            passphrase_file,
        } => {
            let cfg = load_config(&common)?;
            // a restore makes a store (into an empty one): creating it is the point
            MAY_CREATE_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
            let passphrase = passphrase_file
                .as_deref()
                .map(read_passphrase)
                .transpose()?;
            open_store(&cfg)?.backup_to(&file)?;
            println!("backed up {} to {}", store_name(&cfg), file.display());
            if let Err(e) = backup_tls(&cfg, &file, passphrase.as_deref()) {
                let _ = std::fs::remove_file(&file);
                return Err(e);
            }
            Ok(())
        }
        Command::Restore {
            common,
            file,
            passphrase_file,
        } => {
            let cfg = load_config(&common)?;
            // a restore makes a store (into an empty one): creating it is the point
            MAY_CREATE_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
            let passphrase = passphrase_file
                .as_deref()
                .map(read_passphrase)
                .transpose()?;
            // the TLS identity is checked (and unsealed) before anything is restored
            let tls = restorable_tls(&cfg, &file, passphrase.as_deref())?;
            if postgres_store(&cfg).is_some() {
                open_store(&cfg)?.restore_from(&file)?;
            } else {
                Store::restore_into(&file, &cfg.data_dir)?;
            }
            println!("restored {} into {}", file.display(), store_name(&cfg));
            if let Some(tls) = tls {
                tls.write()?;
            }
            Ok(())
        }
        Command::Serve {
            common,
            listen,
            domain,
            workers,
            sip_trace,
            http,
            web,
        } => {
            let mut cfg = load_config(&common)?;
            if !listen.is_empty() {
                for l in &listen {
                    parse_listen(l).map_err(|e| anyhow::anyhow!("--listen: {e}"))?;
                }
                cfg.listen = listen;
            }
            if !domain.is_empty() {
                cfg.domains = domain;
            }
            if workers.is_some() {
                cfg.workers = workers;
            }
            cfg.log.sip_trace |= sip_trace;
            if http.is_some() {
                cfg.http.listen = http;
            }
            if web.is_some() {
                cfg.web.internal = web;
            }
            cfg.validate().map_err(anyhow::Error::msg)?;
            MAY_CREATE_STORE.store(true, std::sync::atomic::Ordering::Relaxed);
            init_logging(&cfg.log.level);
            let store = Arc::new(open_store_quiet(&cfg)?);
            if store.list_users(None)?.is_empty() {
                tracing::warn!("the store has no users yet: add one with `confab user add alice --password secret`");
            }
            if store.admin_count()? == 0 {
                tracing::warn!("there is no administrator yet: add one with `confab admin add NAME --role CsAdministrator`");
            }
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            rt.enable_all();
            if let Some(w) = cfg.workers {
                rt.worker_threads(w);
            }
            rt.build()?.block_on(async move {
                let http = match &cfg.http.listen {
                    Some(addr) => Some(
                        tokio::net::TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("binding the REST API on {addr}"))?,
                    ),
                    None => None,
                };
                let (pool, domains) = (cfg.domains[0].clone(), cfg.domains.join(", "));
                let export_dir = export_dir(&cfg);
                let web = bind_web(&cfg).await?;
                let summary = startup_summary(&cfg, http.as_ref(), web.as_ref());
                let running = confab_server::server::start(cfg, store.clone()).await?;
                // whatever the log level: what this server listens on and which store it uses
                for line in summary {
                    eprintln!("confab: {line}");
                }
                let t = running.transports.clone();
                let metrics: confab_web::MetricsSource = Arc::new(move || t.render_metrics());
                let live: Arc<dyn confab_web::meetings::LiveMeetings> = Arc::new(live::Live {
                    core: running.core.clone(),
                    transports: running.transports.clone(),
                });
                let options = confab_web::ApiOptions {
                    export_dir: Some(export_dir),
                    live_meetings: Some(live),
                    ..Default::default()
                };
                if let Some(web) = web {
                    let api = confab_web::SiteApi::new(
                        store.clone(),
                        pool.clone(),
                        Some(metrics.clone()),
                        options.clone(),
                        web.settings,
                    );
                    use confab_web::site::{listen, Face};
                    for (face, l) in [
                        (Face::Internal, web.internal),
                        (Face::External, web.external),
                    ] {
                        if let Some(l) = l {
                            tokio::spawn(listen::serve_https(
                                l,
                                web.tls.clone(),
                                api.clone(),
                                face,
                            ));
                        }
                    }
                    for (face, l) in [
                        (Face::Internal, web.internal_http),
                        (Face::External, web.external_http),
                    ] {
                        if let Some(l) = l {
                            tokio::spawn(listen::serve_http(l, api.clone(), face));
                        }
                    }
                }
                if let Some(l) = http {
                    tracing::info!("REST API on http://{}", l.local_addr()?);
                    tokio::spawn(confab_web::serve_with(
                        l,
                        store,
                        pool,
                        Some(metrics),
                        options,
                    ));
                }
                confab_server::server::serve_until_signal(running, &domains).await
            })
        }
        Command::User(cmd) => user_command(cmd),
        Command::Contact(cmd) => contact_command(cmd),
        Command::Meeting(cmd) => meeting::command(cmd),
        Command::Shell {
            common,
            admin,
            server,
            command,
            file,
        } => {
            let cfg = load_config(&common)?;
            let store = if server.is_none() {
                Some(open_store(&cfg)?)
            } else {
                None
            };
            shell::run(
                store.as_ref(),
                shell::ShellArgs {
                    admin,
                    server,
                    command,
                    file,
                    pool: cfg.domains[0].clone(),
                    export_dir: export_dir(&cfg),
                },
            )
        }
        Command::Admin(cmd) => admin_command(cmd),
        Command::Status { common, json } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let (name, backend) = match postgres_store(&cfg) {
                Some(_) => (store_name(&cfg), "PostgreSQL"),
                None => (
                    cfg.data_dir
                        .join(confab_store::DB_FILE_NAME)
                        .display()
                        .to_string(),
                    "SQLite",
                ),
            };
            status::status(&store, &name, backend, json)
        }
        Command::Ports { common } => {
            let cfg = load_config(&common)?;
            cfg.validate().map_err(anyhow::Error::msg)?;
            for line in ports(&cfg) {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// The TLS certificate and key files in use: `[tls] cert`/`key`, else the generated pair
/// in `<data_dir>/tls/`.
fn tls_paths(cfg: &Config) -> (PathBuf, PathBuf) {
    match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => (
            cfg.data_dir.join("tls/cert.pem"),
            cfg.data_dir.join("tls/key.pem"),
        ),
    }
}

fn read_passphrase(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the passphrase from {}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

const BACKUP_CERT: &str = "tls/cert.pem";
const BACKUP_KEY: &str = "tls/key.pem.sealed";

/// Puts the server's TLS identity into a backup: the certificate as it is, the key sealed
/// with the passphrase (or left out, saying so).
fn backup_tls(
    cfg: &Config,
    file: &std::path::Path,
    passphrase: Option<&str>,
) -> anyhow::Result<()> {
    use confab_store::backup_files;
    let (cert, key) = tls_paths(cfg);
    if !cert.exists() {
        println!(
            "no TLS certificate at {} (none in the backup)",
            cert.display()
        );
        return Ok(());
    }
    let c = std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
    backup_files::put(file, BACKUP_CERT, &c)?;
    match passphrase {
        Some(p) => {
            let k = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
            backup_files::put(file, BACKUP_KEY, &backup_files::seal(&k, p)?)?;
            println!("the TLS certificate and its key (sealed with the passphrase) are in the backup");
        }
        None => eprintln!(
            "warning: the TLS private key is not in the backup (give --passphrase-file FILE to include it sealed); a restore brings back the certificate only"
        ),
    }
    Ok(())
}

/// A TLS identity to write back after a restore.
struct RestoredTls {
    cert: (PathBuf, Vec<u8>),
    key: Option<(PathBuf, Vec<u8>)>,
}

impl RestoredTls {
    fn write(self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let (path, body) = &self.cert;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if !path.exists() {
            std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("TLS certificate restored: {}", path.display());
        if let Some((path, body)) = &self.key {
            if !path.exists() {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| format!("writing {}", path.display()))?;
                f.write_all(body)?;
            }
            println!("TLS key restored: {}", path.display());
        }
        Ok(())
    }
}

/// What a backup's TLS identity would restore, checked before the store is touched: a sealed
/// key needs the passphrase; files already there must be the same.
fn restorable_tls(
    cfg: &Config,
    file: &std::path::Path,
    passphrase: Option<&str>,
) -> anyhow::Result<Option<RestoredTls>> {
    use confab_store::backup_files;
    let Some(cert) = backup_files::get(file, BACKUP_CERT)? else {
        return Ok(None);
    };
    let (cert_path, key_path) = tls_paths(cfg);
    let key = match (backup_files::get(file, BACKUP_KEY)?, passphrase) {
        (Some(sealed), Some(p)) => Some((key_path, backup_files::unseal(&sealed, p)?)),
        (Some(_), None) => bail!(
            "{} holds the TLS key sealed with a passphrase: give --passphrase-file FILE",
            file.display()
        ),
        (None, _) => {
            eprintln!("warning: the backup holds the TLS certificate but not its key: put the key at {} before serving", key_path.display());
            None
        }
    };
    for (path, body) in
        std::iter::once((&cert_path, &cert)).chain(key.as_ref().map(|(p, b)| (p, b)))
    {
        if path.exists() && std::fs::read(path)? != *body {
            bail!(
                "{} exists and differs from the backup's: move it away to restore the backup's TLS identity",
                path.display()
            );
        }
    }
    Ok(Some(RestoredTls {
        cert: (cert_path, cert),
        key,
    }))
}

/// Every port `serve` would open with `cfg`: `PROTO ADDRESS PORT[-LAST] PURPOSE`.
fn ports(cfg: &Config) -> Vec<String> {
    use confab_server::config::Transport;
    let mut out = vec![];
    for l in cfg.listeners() {
        let (proto, what) = match l.transport {
            Transport::Udp => ("udp", "sip"),
            Transport::Tcp => ("tcp", "sip"),
            Transport::Tls => ("tcp", "sip-tls"),
            Transport::Ws => ("tcp", "sip-ws"),
            Transport::Wss => ("tcp", "sip-wss"),
        };
        out.push(format!("{proto} {} {} {what}", l.addr.ip(), l.addr.port()));
    }
    for (key, addr) in cfg.web.listeners() {
        let what = match key {
            "internal" => "web-internal-https",
            "external" => "web-external-https",
            "internal_http" => "web-internal-http",
            _ => "web-external-http",
        };
        out.push(format!("tcp {} {} {what}", addr.ip(), addr.port()));
    }
    if let Some(a) = cfg
        .http
        .listen
        .as_deref()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    {
        out.push(format!("tcp {} {} rest-api", a.ip(), a.port()));
    }
    let m = &cfg.meetings;
    if m.enabled {
        let ip = m
            .media_address
            .or_else(|| cfg.listeners().first().map(|l| l.addr.ip()))
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "0.0.0.0".into());
        out.push(format!(
            "udp {ip} {}-{} media",
            m.media_port_min, m.media_port_max
        ));
    }
    out
}

/// What `serve` says at start whatever the log level: the store, the SIP listeners, the web
/// site's and the REST API's addresses.
fn startup_summary(
    cfg: &Config,
    http: Option<&tokio::net::TcpListener>,
    web: Option<&WebListeners>,
) -> Vec<String> {
    let mut lines = vec![format!(
        "serving {} with the store {}",
        cfg.domains.join(", "),
        match postgres_store(cfg) {
            Some(_) => format!("at {}", store_name(cfg)),
            None => format!(
                "in {}",
                cfg.data_dir.join(confab_store::DB_FILE_NAME).display()
            ),
        }
    )];
    for l in cfg.listeners() {
        lines.push(format!(
            "listening on sip {} {}",
            l.transport.as_str(),
            l.addr
        ));
    }
    let addr = |l: &Option<tokio::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(w) = web {
        for (what, l) in [
            ("web (internal) https", &w.internal),
            ("web (external) https", &w.external),
            ("web (internal) http", &w.internal_http),
            ("web (external) http", &w.external_http),
        ] {
            if let Some(a) = addr(l) {
                lines.push(format!("listening on {what} {a}"));
            }
        }
    }
    if let Some(a) = http.and_then(|l| l.local_addr().ok()) {
        lines.push(format!("listening on REST API http {a}"));
    }
    lines
}

/// The web site's listeners, bound before the SIP server starts (a taken port is an error
/// at once), with what the site needs to know.
struct WebListeners {
    internal: Option<tokio::net::TcpListener>,
    external: Option<tokio::net::TcpListener>,
    internal_http: Option<tokio::net::TcpListener>,
    external_http: Option<tokio::net::TcpListener>,
    tls: Arc<confab_web::site::listen::TlsConfig>,
    settings: confab_web::site::SiteSettings,
}

async fn bind_web(cfg: &Config) -> anyhow::Result<Option<WebListeners>> {
    let w = &cfg.web;
    if w.internal.is_none()
        && w.external.is_none()
        && w.internal_http.is_none()
        && w.external_http.is_none()
    {
        return Ok(None);
    }
    async fn bind(
        key: &str,
        addr: &Option<String>,
    ) -> anyhow::Result<Option<tokio::net::TcpListener>> {
        match addr {
            None => Ok(None),
            Some(a) => Ok(Some(tokio::net::TcpListener::bind(a).await.with_context(
                || format!("binding the web site (web.{key}) on {a}"),
            )?)),
        }
    }
    let identity = confab_server::tls::load_or_create(cfg)?;
    let tls =
        confab_web::site::listen::tls_config(identity.chain.clone(), identity.key.clone_key())
            .context("the web site's TLS certificate")?;
    let sip = cfg.listeners();
    let pick = |t: confab_server::config::Transport| sip.iter().find(|l| l.transport == t);
    let (port, transport) = match pick(confab_server::config::Transport::Tls) {
        Some(l) => (l.addr.port(), "TLS"),
        None => (
            pick(confab_server::config::Transport::Tcp)
                .map(|l| l.addr.port())
                .unwrap_or(5060),
            "TCP",
        ),
    };
    let external = w.external_sip.as_deref().and_then(|e| {
        let (h, p) = e.rsplit_once(':')?;
        Some((h.to_string(), p.parse().ok()?))
    });
    Ok(Some(WebListeners {
        internal: bind("internal", &w.internal).await?,
        external: bind("external", &w.external).await?,
        internal_http: bind("internal_http", &w.internal_http).await?,
        external_http: bind("external_http", &w.external_http).await?,
        tls,
        settings: confab_web::site::SiteSettings {
            domains: cfg.domains.clone(),
            site: cfg.site.clone(),
            trusted_proxies: w.trusted_proxy_addrs(),
            sip: confab_web::site::SipAccess {
                internal_fqdn: cfg.domains[0].clone(),
                internal_port: port,
                internal_transport: transport.into(),
                external,
            },
        },
    }))
}

fn user_command(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            common,
            address,
            password,
            password_stdin,
            name,
            ou,
        } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            if let Some(ou) = &ou {
                // a bad OU is reported before a password is read or generated
                confab_store::normalize_ou(ou)?;
            }
            let (pw, generated) = read_password(password, password_stdin)?;
            let store = open_store(&cfg)?;
            let u = store.add_user_in_ou(
                &NewUser {
                    username: &user,
                    domain: &domain,
                    display_name: &name,
                    password: &pw,
                },
                ou.as_deref(),
            )?;
            match &u.ou {
                Some(ou) => println!("added {} in {ou}", u.address()),
                None => println!("added {}", u.address()),
            }
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::List { common, domain } => {
            let cfg = load_config(&common)?;
            let store = open_store(&cfg)?;
            let users = store.list_users(domain.as_deref())?;
            for u in &users {
                let state = if u.enabled { "enabled" } else { "disabled" };
                match &u.ou {
                    Some(ou) => {
                        println!("{:<40} {:<9} {} [{ou}]", u.address(), state, u.display_name)
                    }
                    None => println!("{:<40} {:<9} {}", u.address(), state, u.display_name),
                }
            }
            eprintln!("{} user(s)", users.len());
        }
        UserCmd::Show {
            common,
            address,
            json,
        } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            let store = open_store(&cfg)?;
            let Some(u) = store.get_user(&user, &domain)? else {
                bail!("no such user: {user}@{domain}")
            };
            let regs = store.registrations(Some(&u.address()), status::now_ms())?;
            let sessions = store.live_sessions(&u.address(), status::now_ms())?;
            if json {
                let v = serde_json::json!({
                    "sip_address": format!("sip:{}", u.address()),
                    "display_name": u.display_name,
                    "enabled": u.enabled,
                    "ou": u.ou,
                    "line_uri": u.line_uri,
                    "created": u.created_at,
                    "endpoints": status::endpoints_json(&regs),
                    "sessions": status::sessions_json(&sessions),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("SipAddress  : sip:{}", u.address());
            println!("DisplayName : {}", u.display_name);
            println!("Enabled     : {}", u.enabled);
            println!("OU          : {}", u.ou.as_deref().unwrap_or(""));
            println!("LineURI     : {}", u.line_uri.as_deref().unwrap_or(""));
            println!("Created     : {} (unix time)", u.created_at);
            println!("HA1 (MD5)   : {}", u.ha1_md5);
            status::print_endpoints(&regs);
            status::print_sessions(&sessions);
        }
        UserCmd::Remove { common, address } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            open_store(&cfg)?.remove_user(&user, &domain)?;
            println!("removed {user}@{domain}");
        }
        UserCmd::Passwd {
            common,
            address,
            password,
            password_stdin,
        } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            let (pw, generated) = read_password(password, password_stdin)?;
            open_store(&cfg)?.set_password(&user, &domain, &pw)?;
            println!("password changed for {user}@{domain}");
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::Set {
            common,
            address,
            line_uri,
            no_line_uri,
        } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            let line_uri = if no_line_uri { None } else { line_uri };
            let store = open_store(&cfg)?;
            store.set_line_uri(&user, &domain, line_uri.as_deref())?;
            match store.get_user(&user, &domain)?.and_then(|u| u.line_uri) {
                Some(l) => println!("{user}@{domain} has LineURI {l}"),
                None => println!("{user}@{domain} has no LineURI"),
            }
        }
        UserCmd::SetOu {
            common,
            address,
            ou,
            none,
        } => {
            let cfg = load_config(&common)?;
            let (user, domain) = split_address(&address, &cfg);
            let ou = if none { None } else { ou };
            let store = open_store(&cfg)?;
            store.set_user_ou(&user, &domain, ou.as_deref())?;
            match store.get_user(&user, &domain)?.and_then(|u| u.ou) {
                Some(ou) => println!("{user}@{domain} is now in {ou}"),
                None => println!("{user}@{domain} is now in no OU"),
            }
        }
        UserCmd::Enable { common, address } => set_enabled(&common, &address, true)?,
        UserCmd::Disable { common, address } => set_enabled(&common, &address, false)?,
        UserCmd::Seed {
            common,
            domain,
            count,
            prefix,
            password_prefix,
        } => {
            let cfg = load_config(&common)?;
            let domain = domain.unwrap_or_else(|| cfg.domains[0].clone());
            let t = std::time::Instant::now();
            let n = open_store(&cfg)?.seed_users(&domain, &prefix, count, &password_prefix)?;
            println!(
                "seeded {n} users {prefix}0000.. in {domain} ({:.2} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn set_enabled(common: &Common, address: &str, enabled: bool) -> anyhow::Result<()> {
    let cfg = load_config(common)?;
    let (user, domain) = split_address(address, &cfg);
    open_store(&cfg)?.set_enabled(&user, &domain, enabled)?;
    println!(
        "{} {user}@{domain}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// Signs in an administrator for admin account management: only CsAdministrator (or a
/// role cloned from it with Global scopes), who may define roles, may manage accounts.
fn authorize_admin(
    store: &Store,
    as_admin: Option<String>,
    origin: &str,
) -> anyhow::Result<String> {
    let (name, password) = shell::credentials(as_admin)?;
    let admin = shell::sign_in(store, &name, &password, origin)?;
    let p = confab_admin::principal_for(store, &admin)?;
    if !p.roles.iter().any(|r| r.permits("New-CsAdminRole")) {
        let _ = store.append_audit(
            &admin.name,
            origin,
            "admin (manage administrators)",
            false,
            "refused: needs CsAdministrator",
        );
        bail!("'{name}' may not manage administrators: that needs CsAdministrator (or a role cloned from it with Global scopes)");
    }
    Ok(name)
}

fn check_roles(store: &Store, roles: &[String]) -> anyhow::Result<()> {
    for r in roles {
        if confab_admin::roles::Role::builtin(r).is_none() && store.get_role(r)?.is_none() {
            bail!(
                "unknown role '{r}'; built-in roles: {}",
                confab_admin::roles::BUILTIN_ROLES.join(", ")
            );
        }
    }
    Ok(())
}

/// Writes the outcome of an admin-account change to the audit log, then returns it.
fn audited<T>(
    store: &Store,
    by: &str,
    origin: &str,
    command: &str,
    r: Result<T, confab_store::StoreError>,
) -> anyhow::Result<T> {
    let result = r
        .as_ref()
        .map(|_| "ok".to_string())
        .unwrap_or_else(|e| e.to_string());
    store.append_audit(by, origin, command, r.is_ok(), &result)?;
    Ok(r?)
}

fn admin_command(cmd: AdminCmd) -> anyhow::Result<()> {
    let origin = format!(
        "confab admin ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    );
    match cmd {
        AdminCmd::Add {
            common,
            name,
            roles,
            password,
            password_stdin,
            as_admin,
        } => {
            let store = open_store(&load_config(&common)?)?;
            let by = if store.admin_count()? == 0 {
                "bootstrap".to_string()
            } else {
                authorize_admin(&store, as_admin, &origin)?
            };
            check_roles(&store, &roles)?;
            let (pw, generated) = read_password(password, password_stdin)?;
            let a = audited(
                &store,
                &by,
                &origin,
                &format!("admin add {name} --role {}", roles.join(",")),
                store.add_admin(&name, &pw, &roles),
            )?;
            println!(
                "added administrator {} with roles {}",
                a.name,
                a.roles.join(", ")
            );
            if generated {
                println!("password: {pw}");
            }
        }
        AdminCmd::List { common } => {
            let store = open_store(&load_config(&common)?)?;
            for a in store.list_admins()? {
                println!("{:<24} {}", a.name, a.roles.join(", "));
            }
        }
        AdminCmd::Remove {
            common,
            name,
            as_admin,
        } => {
            let store = open_store(&load_config(&common)?)?;
            let by = authorize_admin(&store, as_admin, &origin)?;
            audited(
                &store,
                &by,
                &origin,
                &format!("admin remove {name}"),
                store.remove_admin(&name),
            )?;
            println!("removed administrator {name}");
        }
        AdminCmd::SetRoles {
            common,
            name,
            roles,
            as_admin,
        } => {
            let store = open_store(&load_config(&common)?)?;
            let by = authorize_admin(&store, as_admin, &origin)?;
            check_roles(&store, &roles)?;
            audited(
                &store,
                &by,
                &origin,
                &format!("admin set-roles {name} --role {}", roles.join(",")),
                store.set_admin_roles(&name, &roles),
            )?;
            println!("{name} now has roles {}", roles.join(", "));
        }
        AdminCmd::Audit {
            common,
            last,
            as_admin,
        } => {
            let store = open_store(&load_config(&common)?)?;
            let (name, password) = shell::credentials(as_admin)?;
            let admin = shell::sign_in(&store, &name, &password, &origin)?;
            let p = confab_admin::principal_for(&store, &admin)?;
            if !p.roles.iter().any(|r| r.permits("Get-CsAuditLog")) {
                let _ = store.append_audit(
                    &admin.name,
                    &origin,
                    "admin audit",
                    false,
                    "refused: needs a role allowing Get-CsAuditLog",
                );
                bail!("'{name}' may not read the audit log: that needs a role allowing Get-CsAuditLog (CsAdministrator)");
            }
            for e in store.query_audit(&confab_store::AuditFilter {
                limit: last,
                ..Default::default()
            })? {
                println!(
                    "{} {:<12} {:<28} {} {} — {}",
                    confab_admin::format_time(e.at_ms),
                    e.admin,
                    e.origin,
                    if e.success { "ok  " } else { "FAIL" },
                    e.command,
                    e.result
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
