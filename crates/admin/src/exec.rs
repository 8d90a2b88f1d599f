//! Running a script: every command is checked first (cmdlet known, parameters known and
//! well-typed, caller allowed by RBAC), so a bad script changes nothing; then the statements
//! run in order, changes are written to the store and to the audit log.

use crate::ast::{Arg, Command, Cond, Expr, Pipeline, Script, Statement};
use crate::cmdlets::{self, Cmdlet};
use crate::object::{format_default, Obj};
use crate::roles::{Role, ALWAYS_ALLOWED};
use confab_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Who runs the commands, with their resolved roles.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
}

/// A shell session: the store, the caller, where they call from, and `$variables`.
pub struct Session<'a> {
    pub store: &'a Store,
    pub principal: Principal,
    /// For the audit log: "local shell", "rest 127.0.0.1:41000", …
    pub origin: String,
    /// FQDN used in Service: scopes (the pool confab runs as).
    pub pool: String,
    pub vars: HashMap<String, Vec<Obj>>,
    /// Warnings of the script being run (e.g. a property confab does not enforce).
    warnings: Vec<String>,
    /// The only folder export and import cmdlets may write and read (`<data_dir>/export`);
    /// `None`: they are refused. See [`Session::with_export_dir`].
    pub export_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecError {
    Parse(String),
    /// Unknown cmdlet, with a near miss if there is one.
    UnknownCmdlet {
        name: String,
        suggestion: Option<String>,
    },
    UnknownParameter {
        cmdlet: String,
        name: String,
        suggestion: Option<String>,
    },
    /// A value of the wrong type or out of range.
    BadValue {
        cmdlet: String,
        param: String,
        message: String,
    },
    Missing {
        cmdlet: String,
        param: String,
    },
    Denied {
        cmdlet: String,
        admin: String,
        allowed_by: Vec<String>,
    },
    /// The caller's roles allow the cmdlet, but not on this object: a configuration scope
    /// (`Site:…`) or a user outside their roles' user scopes (`OU:…`).
    OutOfScope {
        cmdlet: String,
        admin: String,
        /// What was refused, e.g. "Site:Dublin" or "sip:bob@example.test (OU=Sales,DC=x)".
        object: String,
        /// "configuration" or "user".
        scope_kind: &'static str,
        /// The scopes the caller's roles that list the cmdlet have.
        scopes: Vec<String>,
    },
    /// The command ran and failed (object not found, already exists, …).
    Failed {
        cmdlet: String,
        message: String,
    },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Parse(m) => write!(f, "parse error: {m}"),
            ExecError::UnknownCmdlet { name, suggestion } => {
                write!(
                    f,
                    "The term '{name}' is not recognized as the name of a cmdlet"
                )?;
                if let Some(s) = suggestion {
                    write!(f, ". Did you mean '{s}'?")?;
                }
                Ok(())
            }
            ExecError::UnknownParameter {
                cmdlet,
                name,
                suggestion,
            } => {
                write!(
                    f,
                    "{cmdlet}: A parameter cannot be found that matches parameter name '{name}'"
                )?;
                if let Some(s) = suggestion {
                    write!(f, ". Did you mean -{s}?")?;
                }
                Ok(())
            }
            ExecError::BadValue {
                cmdlet,
                param,
                message,
            } => write!(f, "{cmdlet}: Cannot bind parameter '{param}'. {message}"),
            ExecError::Missing { cmdlet, param } => write!(
                f,
                "{cmdlet}: Missing an argument for mandatory parameter '{param}'"
            ),
            ExecError::Denied {
                cmdlet,
                admin,
                allowed_by,
            } => {
                write!(
                    f,
                    "{cmdlet}: access denied: the roles of '{admin}' do not allow this cmdlet"
                )?;
                if !allowed_by.is_empty() {
                    write!(f, "; it is allowed by {}", allowed_by.join(", "))?;
                }
                Ok(())
            }
            ExecError::OutOfScope {
                cmdlet,
                admin,
                object,
                scope_kind,
                scopes,
            } => write!(
                f,
                "{cmdlet}: access denied: {object} is outside the {scope_kind} scopes of the roles of '{admin}' ({}); nothing was changed",
                if scopes.is_empty() {
                    "none".to_string()
                } else {
                    scopes.join(", ")
                }
            ),
            ExecError::Failed { cmdlet, message } => write!(f, "{cmdlet}: {message}"),
        }
    }
}

impl std::error::Error for ExecError {}

impl ExecError {
    /// An RBAC refusal (cmdlet not allowed, or object outside the caller's scopes): these
    /// are written to the audit log even when nothing would have changed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ExecError::Denied { .. } | ExecError::OutOfScope { .. }
        )
    }
}

/// Longest command text kept in an audit entry for a refused script.
const MAX_AUDITED_SCRIPT: usize = 2000;

/// What a script produced.
#[derive(Debug, Default)]
pub struct Output {
    pub objects: Vec<Obj>,
    pub text: String,
    /// What the shell prints as `WARNING: …` (PowerShell's warning stream): the commands
    /// succeeded, but something they set has no effect.
    pub warnings: Vec<String>,
}

/// A checked command, ready to run.
pub struct Bound<'c> {
    pub def: &'static Cmdlet,
    /// Named arguments by canonical parameter name.
    pub named: Vec<(&'static str, Option<&'c Expr>)>,
    pub positional: Vec<&'c Expr>,
}

impl<'c> Bound<'c> {
    pub fn get(&self, name: &str) -> Option<&'c Expr> {
        self.named
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.named.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// -Identity, or the first positional argument (Lync's positional Identity), or
    /// -PrimaryUri (the identity of a dial-in access number, as Lync names it).
    pub fn identity(&self) -> Option<&'c Expr> {
        self.get("Identity")
            .or_else(|| self.positional.first().copied())
            .or_else(|| self.get("PrimaryUri"))
    }
}

impl<'a> Session<'a> {
    pub fn new(store: &'a Store, principal: Principal, origin: &str, pool: &str) -> Session<'a> {
        Session {
            store,
            principal,
            origin: origin.to_string(),
            pool: pool.to_string(),
            vars: HashMap::new(),
            warnings: vec![],
            export_dir: None,
        }
    }

    /// Adds a warning to the output of the script being run.
    pub(crate) fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    /// Lets export and import cmdlets use `dir` (normally `<data_dir>/export`): file names
    /// are taken relative to it, and nothing outside it is written or read.
    pub fn with_export_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Session<'a> {
        self.export_dir = Some(dir.into());
        self
    }

    /// Writes a refused command to the audit log (redacted). A failure to write it does not
    /// change the outcome: the command is refused either way.
    fn audit_refusal(&self, command: &str, e: &ExecError) {
        let mut command = cmdlets::redact(command.trim());
        if command.len() > MAX_AUDITED_SCRIPT {
            let mut end = MAX_AUDITED_SCRIPT;
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            command.truncate(end);
            command.push_str(" …");
        }
        let _ = self.store.append_audit(
            &self.principal.name,
            &self.origin,
            &command,
            false,
            &format!("refused: {e}"),
        );
    }

    /// Parses, checks and runs `src`. Output of the last pipelines is formatted like the
    /// Lync Management Shell.
    pub fn run(&mut self, src: &str) -> Result<Output, ExecError> {
        let script = crate::parse(src).map_err(|e| ExecError::Parse(e.to_string()))?;
        self.warnings.clear();
        if let Err(e) = self.check_script(&script) {
            if e.is_refusal() {
                self.audit_refusal(src, &e);
            }
            return Err(e);
        }
        let mut out = Output::default();
        for st in &script.statements {
            match st {
                Statement::Assign { var, value } => {
                    let v = self.eval_value(value, src)?;
                    self.vars.insert(var.to_ascii_lowercase(), v);
                }
                Statement::Pipeline(p) => {
                    let (objs, text) = self.run_pipeline(p, src)?;
                    out.text.push_str(&text);
                    out.objects.extend(objs);
                }
            }
        }
        out.warnings = std::mem::take(&mut self.warnings);
        Ok(out)
    }

    fn check_script(&self, script: &Script) -> Result<(), ExecError> {
        let mut assigned: Vec<String> = vec![];
        for st in &script.statements {
            match st {
                Statement::Assign { var, value } => {
                    self.check_expr(value, &assigned)?;
                    assigned.push(var.to_ascii_lowercase());
                }
                Statement::Pipeline(p) => self.check_pipeline(p, &assigned)?,
            }
        }
        Ok(())
    }

    fn check_expr(&self, e: &Expr, assigned: &[String]) -> Result<(), ExecError> {
        match e {
            Expr::Sub(p) => self.check_pipeline(p, assigned),
            Expr::Array(items) => items.iter().try_for_each(|i| self.check_expr(i, assigned)),
            Expr::Hash(entries) => entries
                .iter()
                .try_for_each(|(_, v)| self.check_expr(v, assigned)),
            Expr::Prop(inner, _) => self.check_expr(inner, assigned),
            Expr::Block(c) => self.check_cond(c, assigned),
            Expr::Var(v) => {
                let v = v.to_ascii_lowercase();
                if matches!(v.as_str(), "true" | "false" | "null")
                    || assigned.contains(&v)
                    || self.vars.contains_key(&v)
                {
                    Ok(())
                } else {
                    Err(ExecError::Failed {
                        cmdlet: "script".into(),
                        message: format!(
                            "The variable '${v}' cannot be retrieved because it has not been set"
                        ),
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// A script block: its variables must be set, except `$_` (the current object).
    fn check_cond(&self, c: &Cond, assigned: &[String]) -> Result<(), ExecError> {
        match c {
            Cond::Or(a, b) | Cond::And(a, b) => {
                self.check_cond(a, assigned)?;
                self.check_cond(b, assigned)
            }
            Cond::Not(a) => self.check_cond(a, assigned),
            Cond::Value(e) => self.check_block_expr(e, assigned),
            Cond::Cmp { left, right, .. } => {
                self.check_block_expr(left, assigned)?;
                self.check_block_expr(right, assigned)
            }
        }
    }

    fn check_block_expr(&self, e: &Expr, assigned: &[String]) -> Result<(), ExecError> {
        match e {
            Expr::Var(v) if v == "_" || v.eq_ignore_ascii_case("PSItem") => Ok(()),
            Expr::Prop(inner, _) => self.check_block_expr(inner, assigned),
            Expr::Array(items) => items
                .iter()
                .try_for_each(|i| self.check_block_expr(i, assigned)),
            other => self.check_expr(other, assigned),
        }
    }

    fn check_pipeline(&self, p: &Pipeline, assigned: &[String]) -> Result<(), ExecError> {
        for (i, c) in p.commands.iter().enumerate() {
            let b = bind(c)?;
            if i > 0 && !b.def.pipeline_input {
                return Err(ExecError::Failed {
                    cmdlet: b.def.name.to_string(),
                    message: "The input object cannot be bound to any parameters for the command"
                        .into(),
                });
            }
            if i == 0 {
                for m in &b.def.mandatory {
                    let given =
                        b.has(m) || (m.eq_ignore_ascii_case("Identity") && b.identity().is_some());
                    if !given {
                        return Err(ExecError::Missing {
                            cmdlet: b.def.name.to_string(),
                            param: m.to_string(),
                        });
                    }
                }
            }
            for (_, v) in &b.named {
                if let Some(v) = v {
                    self.check_expr(v, assigned)?;
                }
            }
            for v in &b.positional {
                self.check_expr(v, assigned)?;
            }
            (b.def.check)(&b, self)?;
            self.authorize(&b)?;
            cmdlets::precheck_user_scope(&b, self)?;
        }
        Ok(())
    }

    /// Whether one of the caller's roles lets `cmdlet` touch the object at `identity`.
    pub(crate) fn may_touch(&self, cmdlet: &str, identity: &str) -> bool {
        self.principal
            .roles
            .iter()
            .any(|r| r.permits(cmdlet) && r.covers(identity))
    }

    /// Whether one of the caller's roles lets `cmdlet` read or change a user in the
    /// organisational unit `ou`.
    pub(crate) fn may_touch_user(&self, cmdlet: &str, ou: Option<&str>) -> bool {
        self.principal
            .roles
            .iter()
            .any(|r| r.permits(cmdlet) && r.covers_user(ou))
    }

    /// The refusal for an object outside the caller's scopes of `scope_kind`
    /// ("configuration" or "user").
    pub(crate) fn out_of_scope(
        &self,
        cmdlet: &str,
        object: String,
        scope_kind: &'static str,
    ) -> ExecError {
        let mut scopes: Vec<String> = vec![];
        for r in self.principal.roles.iter().filter(|r| r.permits(cmdlet)) {
            let list = if scope_kind == "user" {
                &r.user_scopes
            } else {
                &r.config_scopes
            };
            for sc in list {
                if !scopes.contains(sc) {
                    scopes.push(sc.clone());
                }
            }
        }
        ExecError::OutOfScope {
            cmdlet: cmdlet.to_string(),
            admin: self.principal.name.clone(),
            object,
            scope_kind,
            scopes,
        }
    }

    /// RBAC: one of the caller's roles must list the cmdlet and cover the object's scope.
    fn authorize(&self, b: &Bound) -> Result<(), ExecError> {
        let name = b.def.name;
        if ALWAYS_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            return Ok(());
        }
        // a settings cmdlet without -Identity works on Global (pipeline input is checked per
        // object when it runs)
        let scope = match b.identity() {
            // a user's identity: checked against user scopes (precheck_user_scope)
            Some(_) if cmdlets::targets_user(b.def) => None,
            Some(e) => e.as_str().and_then(|raw| cmdlets::scope_of(b.def, raw)),
            None if b.def.kind.is_some() && b.def.changes => Some("Global".to_string()),
            None => None,
        };
        let permitted = self.principal.roles.iter().any(|r| r.permits(name));
        let ok = self
            .principal
            .roles
            .iter()
            .any(|r| r.permits(name) && scope.as_deref().is_none_or(|s| r.covers(s)));
        if ok {
            return Ok(());
        }
        if permitted {
            if let Some(scope) = scope {
                return Err(self.out_of_scope(name, scope, "configuration"));
            }
        }
        if crate::roles::administrator_only(name) {
            return Err(ExecError::Denied {
                cmdlet: name.to_string(),
                admin: self.principal.name.clone(),
                allowed_by: vec![
                    "CsAdministrator (or a role cloned from it with Global scopes) only".into(),
                ],
            });
        }
        let mut allowed_by: Vec<String> = crate::roles::BUILTIN_ROLES
            .iter()
            .filter_map(|r| Role::builtin(r))
            .filter(|r| r.allows(name))
            .map(|r| r.identity)
            .collect();
        if let Ok(custom) = self.store.list_roles() {
            allowed_by.extend(
                custom
                    .into_iter()
                    .filter(|r| r.cmdlets.iter().any(|c| c.eq_ignore_ascii_case(name)))
                    .map(|r| r.identity),
            );
        }
        Err(ExecError::Denied {
            cmdlet: name.to_string(),
            admin: self.principal.name.clone(),
            allowed_by,
        })
    }

    fn eval_value(&mut self, e: &Expr, src: &str) -> Result<Vec<Obj>, ExecError> {
        Ok(match e {
            Expr::Sub(p) => self.run_pipeline(p, src)?.0,
            Expr::Var(v) => self
                .vars
                .get(&v.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
            other => vec![Obj::Value(self.literal(other)?)],
        })
    }

    /// A value as JSON; variables expand to their objects.
    pub(crate) fn literal(&self, e: &Expr) -> Result<Value, ExecError> {
        Ok(match e {
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Null => Value::Null,
            Expr::Int(i) => Value::from(*i),
            Expr::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Expr::Str(s) | Expr::Bare(s) => Value::String(s.clone()),
            Expr::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.literal(i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Hash(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.literal(v)?)))
                    .collect::<Result<_, ExecError>>()?,
            ),
            Expr::Var(v) => {
                let objs = self
                    .vars
                    .get(&v.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default();
                let mut vals: Vec<Value> = objs.iter().map(Obj::to_json).collect();
                if vals.len() == 1 {
                    vals.remove(0)
                } else {
                    Value::Array(vals)
                }
            }
            Expr::Prop(inner, name) => {
                let v = self.literal(inner)?;
                v.get(name)
                    .cloned()
                    .or_else(|| {
                        v.as_object().and_then(|m| {
                            m.iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.clone())
                        })
                    })
                    .unwrap_or(Value::Null)
            }
            Expr::Sub(_) => {
                return Err(ExecError::Failed {
                    cmdlet: "script".into(),
                    message: "a command in parentheses is not supported here".into(),
                })
            }
            Expr::Block(_) => {
                return Err(ExecError::Failed {
                    cmdlet: "script".into(),
                    message: "a script block is not a value here (Where-Object and calculated properties take one)".into(),
                })
            }
        })
    }

    fn run_pipeline(&mut self, p: &Pipeline, src: &str) -> Result<(Vec<Obj>, String), ExecError> {
        let mut input: Option<Vec<Obj>> = None;
        let mut text = String::new();
        let mut formatted = false;
        for c in &p.commands {
            let b = bind(c)?;
            let command_text = src
                .get(c.span.start..c.span.end)
                .unwrap_or(&c.name)
                .to_string();
            let res = (b.def.run)(&b, self, input.take());
            if let (false, Err(e)) = (b.def.changes, &res) {
                // a refused read (a user outside the caller's scopes) is audited too
                if e.is_refusal() {
                    self.audit_refusal(&command_text, e);
                }
            }
            if b.def.changes {
                let (ok, result) = match &res {
                    Ok(objs) => (true, format!("ok ({} object(s))", objs.len())),
                    Err(e) => (false, e.to_string()),
                };
                let redacted = cmdlets::redact(&command_text);
                if let Err(e) = self.store.append_audit(
                    &self.principal.name,
                    &self.origin,
                    &redacted,
                    ok,
                    &result,
                ) {
                    return Err(ExecError::Failed {
                        cmdlet: b.def.name.into(),
                        message: format!("could not write the audit log: {e}"),
                    });
                }
            }
            let objs = res?;
            if let Some(t) = crate::pipeline::render(&b, self, &objs)? {
                text.push_str(&t);
                formatted = true;
            }
            input = Some(objs);
        }
        let objs = input.unwrap_or_default();
        if !formatted {
            text.push_str(&format_default(&objs));
        }
        Ok((if formatted { vec![] } else { objs }, text))
    }
}

/// Matches a command against the registry: cmdlet name, parameter names (exact or unique
/// prefix, case-insensitive), switches.
pub fn bind(c: &Command) -> Result<Bound<'_>, ExecError> {
    let def = cmdlets::find(&c.name).ok_or_else(|| ExecError::UnknownCmdlet {
        name: c.name.clone(),
        suggestion: crate::suggest(&c.name, cmdlets::names()).map(str::to_string),
    })?;
    let mut named = vec![];
    let mut positional = vec![];
    for a in &c.args {
        match a {
            Arg::Positional(e) => positional.push(e),
            Arg::Named { name, value } => {
                let exact = def
                    .params
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case(name));
                let param = match exact {
                    Some(p) => p,
                    None => {
                        let pre: Vec<_> = def
                            .params
                            .iter()
                            .filter(|p| {
                                p.name.len() > name.len()
                                    && p.name[..name.len()].eq_ignore_ascii_case(name)
                            })
                            .collect();
                        match pre.as_slice() {
                            [one] => *one,
                            _ => {
                                return Err(ExecError::UnknownParameter {
                                    cmdlet: def.name.to_string(),
                                    name: name.clone(),
                                    suggestion: crate::suggest(
                                        name,
                                        def.params.iter().map(|p| p.name),
                                    )
                                    .map(str::to_string),
                                })
                            }
                        }
                    }
                };
                if param.switch {
                    // a switch never takes the following word: it is positional
                    let v = value.as_ref().filter(|v| matches!(v, Expr::Bool(_)));
                    if let Some(other) = value.as_ref().filter(|v| !matches!(v, Expr::Bool(_))) {
                        positional.push(other);
                    }
                    named.push((param.name, v));
                } else {
                    if value.is_none() {
                        return Err(ExecError::Missing {
                            cmdlet: def.name.to_string(),
                            param: param.name.to_string(),
                        });
                    }
                    named.push((param.name, value.as_ref()));
                }
            }
        }
    }
    if positional.len() > def.max_positional {
        let extra = positional[def.max_positional];
        return Err(ExecError::Failed {
            cmdlet: def.name.to_string(),
            message: format!(
                "A positional parameter cannot be found that accepts argument '{extra}'"
            ),
        });
    }
    Ok(Bound {
        def,
        named,
        positional,
    })
}
