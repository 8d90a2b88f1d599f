//! SIP filter scripts: confab's server applications (the role of Lync's MSPL scripts).
//!
//! Each enabled `CsServerApplication` names a [Rhai](https://rhai.rs) script. The scripts are
//! compiled once ([`Filters::load`]) and run, in Priority order, on each request the server
//! receives and each response it relays ([`Filters::run`]). A script sees the message as a
//! `msg` object map and decides with functions: `respond(code, reason)`, `drop()`,
//! `add_header(name, value)`, `remove_header(name)`, `set_next_hop(uri)`. The result is an
//! [`Outcome`]: a [`Verdict`] and the header edits to apply.
//!
//! The sandbox: no file, network or module access (`import` finds nothing, `eval` is
//! disabled), and per message and script a limit on operations, call depth, expression depth,
//! string, array and map sizes, and wall-clock time. This crate does no I/O apart from reading
//! the script files in `load`.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use confab_sip::{HeaderName, Message};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position, Scope, AST};

/// A server application as configured (a `CsServerApplication` document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// `Service:Registrar:<fqdn>/<Name>`.
    pub identity: String,
    /// The application's identity URI, used in logs (as in Lync).
    pub uri: String,
    /// The script file; relative paths are resolved against the script directory.
    pub script_name: String,
    pub enabled: bool,
    pub critical: bool,
    /// Lower runs first; -1 (Lync's "append") runs after every non-negative priority.
    pub priority: i64,
}

/// Per message and script limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 200_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 256 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            timeout: Duration::from_millis(50),
        }
    }
}

/// A script that could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub identity: String,
    pub uri: String,
    pub critical: bool,
    /// The file and the problem (a syntax error names its line and position).
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server application {} ({}): {}",
            self.identity, self.uri, self.message
        )
    }
}

impl std::error::Error for LoadError {}

/// Which way a message is going through the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A request as received, before it is routed.
    In,
    /// A response being relayed towards the requester.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// What the server knows about a message besides its text.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub direction: Direction,
    /// The address the message came from.
    pub source: SocketAddr,
    /// "udp" or "tcp".
    pub transport: &'a str,
    /// The From / To domain is not one this server serves.
    pub from_federated: bool,
    pub to_federated: bool,
}

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Goes on its way (with the header edits of the outcome).
    Pass,
    /// A request is answered with this status; a relayed final response gets this status.
    Respond { status: u16, reason: String },
    /// Discarded without an answer.
    Drop,
    /// A request goes to this next hop (a SIP URI whose host is an IP address).
    Route(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Add(String, String),
    Remove(String),
}

/// The decision of every script on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub edits: Vec<HeaderEdit>,
}

impl Outcome {
    pub fn pass() -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            edits: vec![],
        }
    }

    /// Applies the header edits, in the order the scripts made them.
    pub fn apply_edits(&self, msg: &mut Message) {
        for e in &self.edits {
            match e {
                HeaderEdit::Add(n, v) => msg
                    .headers
                    .push(HeaderName::parse(n.clone().into()), v.clone()),
                HeaderEdit::Remove(n) => {
                    msg.headers.remove_all(&HeaderName::parse(n.clone().into()))
                }
            }
        }
    }
}

/// Headers that hold the transaction and dialog together: a script may not touch them.
const PROTECTED: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "content-length",
    "max-forwards",
    "route",
    "record-route",
];

struct App {
    identity: String,
    uri: String,
    critical: bool,
    priority: i64,
    path: PathBuf,
    modified: Option<SystemTime>,
    ast: AST,
}

/// The compiled scripts of the enabled applications, in the order they run.
pub struct Filters {
    engine: Engine,
    apps: Vec<App>,
    timeout: Duration,
}

/// The state of one script run, reached by the functions the engine calls back.
struct Run {
    deadline: Instant,
    app_uri: String,
    is_request: bool,
    status: u16,
    verdict: Verdict,
    edits: Vec<HeaderEdit>,
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// Marks the end of a script by respond() or drop() (not an error).
const DECIDED: &str = "confab:decided";

fn script_error(text: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(text.into(), Position::NONE))
}

fn with_run<T>(
    f: impl FnOnce(&mut Run) -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
    RUN.with(|r| match r.borrow_mut().as_mut() {
        Some(run) => f(run),
        None => Err(script_error("no message is being filtered".into())),
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn check_header_name(name: &str) -> Result<String, Box<EvalAltResult>> {
    if !is_token(name) {
        return Err(script_error(format!(
            "\"{name}\" is not a valid header name"
        )));
    }
    let canon = HeaderName::parse(name.to_string().into())
        .as_str()
        .to_ascii_lowercase();
    if PROTECTED.contains(&canon.as_str()) {
        return Err(script_error(format!(
            "the {name} header cannot be changed by a script"
        )));
    }
    Ok(canon)
}

fn respond(code: i64, reason: &str) -> Result<(), Box<EvalAltResult>> {
    if reason.len() > 128 || reason.contains(['\r', '\n', '\0']) {
        return Err(script_error(
            "respond(): the reason must be one line of at most 128 characters".into(),
        ));
    }
    with_run(|run| {
        let ok = if run.is_request {
            (200..=699).contains(&code)
        } else {
            run.status >= 300 && (300..=699).contains(&code)
        };
        if !ok {
            return Err(script_error(if run.is_request {
                format!("respond({code}): the status must be 200 to 699")
            } else {
                format!("respond({code}) on a {} response: only a non-2xx final response can be changed, to 300 to 699", run.status)
            }));
        }
        let status = code as u16;
        let reason = if reason.is_empty() {
            confab_sip::message::reason_phrase(status).to_string()
        } else {
            reason.to_string()
        };
        run.verdict = Verdict::Respond { status, reason };
        Err(Box::new(EvalAltResult::ErrorTerminated(
            DECIDED.into(),
            Position::NONE,
        )))
    })
}

fn drop_message() -> Result<(), Box<EvalAltResult>> {
    with_run(|run| {
        if !run.is_request && run.status >= 200 {
            return Err(script_error(format!(
                "drop() on a {} response: only provisional responses can be dropped",
                run.status
            )));
        }
        run.verdict = Verdict::Drop;
        Err(Box::new(EvalAltResult::ErrorTerminated(
            DECIDED.into(),
            Position::NONE,
        )))
    })
}

fn add_header(name: &str, value: &str) -> Result<(), Box<EvalAltResult>> {
    check_header_name(name)?;
    if value.contains(['\r', '\n', '\0']) || value.len() > 4096 {
        return Err(script_error(format!(
            "add_header({name}): the value must be one line of at most 4096 bytes"
        )));
    }
    with_run(|run| {
        if run.edits.len() >= 64 {
            return Err(script_error("too many header edits".into()));
        }
        run.edits
            .push(HeaderEdit::Add(name.to_string(), value.trim().to_string()));
        Ok(())
    })
}

fn remove_header(name: &str) -> Result<(), Box<EvalAltResult>> {
    check_header_name(name)?;
    with_run(|run| {
        if run.edits.len() >= 64 {
            return Err(script_error("too many header edits".into()));
        }
        run.edits.push(HeaderEdit::Remove(name.to_string()));
        Ok(())
    })
}

fn set_next_hop(uri: &str) -> Result<(), Box<EvalAltResult>> {
    let parsed = confab_sip::Uri::parse(uri)
        .map_err(|e| script_error(format!("set_next_hop(\"{uri}\"): {e}")))?;
    if !matches!(
        parsed.scheme,
        confab_sip::Scheme::Sip | confab_sip::Scheme::Sips
    ) || parsed.host_unbracketed().parse::<IpAddr>().is_err()
    {
        return Err(script_error(format!(
            "set_next_hop(\"{uri}\"): the next hop must be a sip: URI with an IP address (no DNS)"
        )));
    }
    with_run(|run| {
        if !run.is_request {
            return Err(script_error(
                "set_next_hop() applies to requests only".into(),
            ));
        }
        run.verdict = Verdict::Route(uri.to_string());
        Ok(())
    })
}

/// `msg.header("Event")`: the first value of a header, "" when absent (case-insensitive).
fn header_of(msg: &mut Map, name: &str) -> ImmutableString {
    let key = HeaderName::parse(name.to_string().into())
        .as_str()
        .to_ascii_lowercase();
    msg.get("headers")
        .and_then(|h| {
            h.read_lock::<Map>().and_then(|m| {
                m.get(key.as_str())
                    .and_then(|v| v.read_lock::<Array>().and_then(|a| a.first().cloned()))
            })
        })
        .and_then(|v| v.into_immutable_string().ok())
        .unwrap_or_default()
}

fn new_engine(limits: &Limits) -> Engine {
    let mut e = Engine::new();
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_levels);
    e.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    e.set_max_string_size(limits.max_string_size);
    e.set_max_array_size(limits.max_array_size);
    e.set_max_map_size(limits.max_map_size);
    e.set_max_variables(1000);
    e.set_max_functions(1000);
    e.set_max_modules(0);
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.disable_symbol("eval");
    e.on_progress(|ops| {
        // reading the clock every operation would cost more than the script
        if ops % 512 != 0 {
            return None;
        }
        let late = RUN.with(|r| {
            r.borrow()
                .as_ref()
                .is_some_and(|run| Instant::now() > run.deadline)
        });
        late.then(|| Dynamic::from("time limit"))
    });
    e.on_print(|text| {
        let app = RUN.with(|r| {
            r.borrow()
                .as_ref()
                .map(|run| run.app_uri.clone())
                .unwrap_or_default()
        });
        tracing::info!(app = %app, "script: {text}");
    });
    e.on_debug(|text, _, pos| {
        let app = RUN.with(|r| {
            r.borrow()
                .as_ref()
                .map(|run| run.app_uri.clone())
                .unwrap_or_default()
        });
        tracing::debug!(app = %app, "script ({pos}): {text}");
    });
    e.register_fn("respond", respond);
    e.register_fn("respond", |code: i64| respond(code, ""));
    e.register_fn("drop", drop_message);
    e.register_fn("add_header", add_header);
    e.register_fn("remove_header", remove_header);
    e.register_fn("set_next_hop", set_next_hop);
    e.register_fn("header", header_of);
    e
}

impl Filters {
    /// No scripts.
    pub fn empty() -> Filters {
        Filters {
            // runs nothing, so the bare engine (no standard library to build) will do
            engine: Engine::new_raw(),
            apps: vec![],
            timeout: Limits::default().timeout,
        }
    }

    /// Reads and compiles the scripts of the enabled applications. Applications whose
    /// script cannot be read or compiled are left out and reported.
    pub fn load(
        apps: &[AppConfig],
        script_dir: &Path,
        limits: &Limits,
    ) -> (Filters, Vec<LoadError>) {
        let engine = new_engine(limits);
        let mut loaded = vec![];
        let mut errors = vec![];
        for a in apps.iter().filter(|a| a.enabled) {
            let fail = |message: String| LoadError {
                identity: a.identity.clone(),
                uri: a.uri.clone(),
                critical: a.critical,
                message,
            };
            if a.script_name.trim().is_empty() {
                errors.push(fail("it has no ScriptName".into()));
                continue;
            }
            let path = script_dir.join(a.script_name.trim());
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(fail(format!("cannot read {}: {e}", path.display())));
                    continue;
                }
            };
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            match engine.compile(&source) {
                Ok(ast) => loaded.push(App {
                    identity: a.identity.clone(),
                    uri: a.uri.clone(),
                    critical: a.critical,
                    priority: a.priority,
                    path,
                    modified,
                    ast,
                }),
                Err(e) => errors.push(fail(format!("{}: {e}", path.display()))),
            }
        }
        loaded.sort_by(|x, y| {
            (x.priority < 0, x.priority, &x.identity).cmp(&(
                y.priority < 0,
                y.priority,
                &y.identity,
            ))
        });
        (
            Filters {
                engine,
                apps: loaded,
                timeout: limits.timeout,
            },
            errors,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The identities of the loaded applications, in the order they run.
    pub fn identities(&self) -> Vec<&str> {
        self.apps.iter().map(|a| a.identity.as_str()).collect()
    }

    /// Whether a loaded script file was changed or removed since it was read.
    pub fn changed_on_disk(&self) -> bool {
        self.apps
            .iter()
            .any(|a| std::fs::metadata(&a.path).and_then(|m| m.modified()).ok() != a.modified)
    }

    /// Runs every script on `msg`. A Respond or Drop ends the chain; header edits add up and
    /// later scripts see them; the last next hop set wins. A script that fails or hits a
    /// limit is logged and its partial decisions are ignored; when its application is
    /// Critical a request is answered 500 instead (a response still passes).
    pub fn run(&self, msg: &Message, ctx: &Context<'_>) -> Outcome {
        if self.apps.is_empty() {
            return Outcome::pass();
        }
        let mut view = message_view(msg, ctx);
        let is_request = msg.is_request();
        let status = msg.status().unwrap_or(0);
        let mut outcome = Outcome::pass();
        for app in &self.apps {
            RUN.with(|r| {
                *r.borrow_mut() = Some(Run {
                    deadline: Instant::now() + self.timeout,
                    app_uri: app.uri.clone(),
                    is_request,
                    status,
                    verdict: Verdict::Pass,
                    edits: vec![],
                })
            });
            let mut scope = Scope::new();
            scope.push("msg", view.clone());
            let result = self.engine.run_ast_with_scope(&mut scope, &app.ast);
            let run = RUN.with(|r| r.borrow_mut().take()).expect("set above");
            let decided = match &result {
                Ok(()) => true,
                Err(e) => {
                    matches!(&**e, EvalAltResult::ErrorTerminated(v, _) if v.clone().into_immutable_string().is_ok_and(|s| s == DECIDED))
                }
            };
            if !decided {
                let e = result.expect_err("not decided");
                tracing::error!(app = %app.uri, identity = %app.identity, script = %app.path.display(), "filter script failed: {e}");
                if app.critical && is_request {
                    return Outcome {
                        verdict: Verdict::Respond {
                            status: 500,
                            reason: format!("Server application {} failed", app.uri),
                        },
                        edits: outcome.edits,
                    };
                }
                continue;
            }
            if !run.edits.is_empty() {
                apply_to_view(&mut view, &run.edits);
                outcome.edits.extend(run.edits);
            }
            match run.verdict {
                Verdict::Pass => {}
                v @ Verdict::Route(_) => outcome.verdict = v,
                v => {
                    tracing::debug!(app = %app.uri, verdict = ?v, "filter script decided");
                    outcome.verdict = v;
                    return outcome;
                }
            }
        }
        outcome
    }
}

fn text(s: &str) -> Dynamic {
    Dynamic::from(ImmutableString::from(s))
}

fn split_uri(uri: &str) -> (String, String) {
    match confab_sip::Uri::parse(uri) {
        Ok(u) => (
            u.user.unwrap_or("").to_string(),
            u.host_unbracketed().to_ascii_lowercase(),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// The `msg` object a script sees.
fn message_view(msg: &Message, ctx: &Context<'_>) -> Dynamic {
    let mut m = Map::new();
    let mut put = |k: &str, v: Dynamic| {
        m.insert(k.into(), v);
    };
    put("direction", text(ctx.direction.as_str()));
    put(
        "kind",
        text(if msg.is_request() {
            "request"
        } else {
            "response"
        }),
    );
    let method = match msg.method() {
        Some(m) => m.as_str().to_string(),
        None => msg
            .cseq()
            .map(|c| c.method.as_str().to_string())
            .unwrap_or_default(),
    };
    put("method", text(&method));
    put("status", Dynamic::from(msg.status().unwrap_or(0) as i64));
    put(
        "reason",
        text(msg.reason().map(|r| r.as_str()).unwrap_or("")),
    );
    put(
        "request_uri",
        text(msg.uri().map(|u| u.as_str()).unwrap_or("")),
    );
    for (name, hdr) in [("from", msg.from_hdr()), ("to", msg.to_hdr())] {
        let uri = hdr.map(|h| h.uri_str.to_string()).unwrap_or_default();
        let (user, domain) = split_uri(&uri);
        put(name, text(&uri));
        put(&format!("{name}_user"), text(&user));
        put(&format!("{name}_domain"), text(&domain));
    }
    put("from_federated", Dynamic::from(ctx.from_federated));
    put("to_federated", Dynamic::from(ctx.to_federated));
    put(
        "call_id",
        text(msg.call_id().map(|c| c.as_str()).unwrap_or("")),
    );
    let mut headers = Map::new();
    for h in msg.headers.iter() {
        let key = h.name.as_str().to_ascii_lowercase();
        let entry = headers
            .entry(key.into())
            .or_insert_with(|| Dynamic::from(Array::new()));
        if let Some(mut a) = entry.write_lock::<Array>() {
            a.push(text(h.value.as_str()));
        }
    }
    put("headers", Dynamic::from(headers));
    put("body", text(&String::from_utf8_lossy(&msg.body)));
    put("source", text(&ctx.source.to_string()));
    put("source_ip", text(&ctx.source.ip().to_string()));
    put("source_port", Dynamic::from(ctx.source.port() as i64));
    put("transport", text(&ctx.transport.to_ascii_lowercase()));
    Dynamic::from(m)
}

/// Lets later scripts see the header edits of earlier ones.
fn apply_to_view(view: &mut Dynamic, edits: &[HeaderEdit]) {
    let Some(mut m) = view.write_lock::<Map>() else {
        return;
    };
    let Some(hdrs) = m.get_mut("headers") else {
        return;
    };
    let Some(mut h) = hdrs.write_lock::<Map>() else {
        return;
    };
    for e in edits {
        match e {
            HeaderEdit::Add(n, v) => {
                let key = HeaderName::parse(n.clone().into())
                    .as_str()
                    .to_ascii_lowercase();
                let entry = h
                    .entry(key.into())
                    .or_insert_with(|| Dynamic::from(Array::new()));
                if let Some(mut a) = entry.write_lock::<Array>() {
                    a.push(text(v));
                }
            }
            HeaderEdit::Remove(n) => {
                let key = HeaderName::parse(n.clone().into())
                    .as_str()
                    .to_ascii_lowercase();
                h.remove(key.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests;
