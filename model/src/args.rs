//! Program arguments: one typed declaration per program ([`ProgramSpec`]).
//! A program parses its arguments with it when it starts, through its `plan`
//! function, which does no I/O: so a caller can check a program's arguments,
//! with exactly the program's own parser, before anything runs. The same
//! declarations describe the programs' arguments to users.
//!
//! The syntax is the model's strict one: `--name=value` options (each at most
//! once, a value always required), positional arguments (anything not
//! starting with `--`), and, for a program that runs another (`cron`), a
//! command after a lone `--`. An unknown option, a missing required argument,
//! a stray positional or a value outside its kind is an [`ArgError`]: one line
//! that names the argument and what was expected.

use std::fmt;

use crate::mlist::check_new_list_name;

/// What an argument's value may be.
#[derive(Clone, Copy, Debug)]
pub enum ArgKind {
    /// An unsigned integer in `min..=max`, counted in `unit`.
    UInt { min: u64, max: u64, unit: &'static str },
    /// A finite number in `min..=max`, counted in `unit`.
    Float { min: f64, max: f64, unit: &'static str },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A list name, as `bin/newlist` accepts it (docs/semantics/list-names.md).
    ListName,
    /// A path relative to the Mailman prefix that stays under it: not
    /// absolute, no `..` component, no control characters.
    Path,
    /// Comma-separated [`ArgKind::Path`]s (empty items are skipped).
    Paths,
    /// A host name: letters, digits, `-` and `.`, not starting with `-`.
    Host,
    /// An email address `local@domain`, without spaces or control characters.
    Address,
    /// Comma-separated [`ArgKind::Address`]es (empty items are skipped).
    Addresses,
    /// A short word of letters, digits, `-`, `_` and `.`.
    Token,
    /// A JSON object; the program checks its meaning when it plans.
    Json,
    /// Any text at all (a message on stdin).
    Text,
    /// A value with its own syntax, `what`, checked by `check`.
    Custom { what: &'static str, metavar: &'static str, check: fn(&str) -> Result<(), String> },
}

/// What an argument that is not given stands for.
#[derive(Clone, Copy, Debug)]
pub enum ArgDefault {
    /// It must be given.
    Required,
    /// Absent means "none" (the help says what that does).
    Absent,
    /// This value, parsed as if given.
    Value(&'static str),
}

/// One argument of one program.
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    /// `count` for `--count=`; a positional's upper-case name (`LISTNAME`).
    pub name: &'static str,
    pub kind: ArgKind,
    pub default: ArgDefault,
    /// One line.
    pub help: &'static str,
}

/// A program and its arguments.
#[derive(Clone, Copy, Debug)]
pub struct ProgramSpec {
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    pub options: &'static [ArgSpec],
    /// In order; each is required unless its default says otherwise.
    pub positional: &'static [ArgSpec],
    /// Takes `-- PROGRAM [ARGS...]` after its options (`cron`).
    pub command: bool,
}

/// A refused argument: `{arg}: {expected}`, one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    /// The argument as given (control characters escaped, long values cut).
    pub arg: String,
    pub expected: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.expected)
    }
}

impl std::error::Error for ArgError {}

/// The longest value an error message repeats.
const SHOWN_MAX: usize = 60;

/// `text` fit for a one-line message: control characters escaped, cut after
/// [`SHOWN_MAX`] characters.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl ArgError {
    /// Control characters in either part (a parser's message may repeat the
    /// input) are escaped, so the error stays one line.
    pub fn new(arg: impl Into<String>, expected: impl Into<String>) -> ArgError {
        let escape = |s: String| {
            if s.chars().any(char::is_control) {
                s.chars()
                    .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
                    .collect()
            } else {
                s
            }
        };
        ArgError { arg: escape(arg.into()), expected: escape(expected.into()) }
    }

    /// An error about option `--name=value`.
    pub fn option(name: &str, value: &str, expected: impl Into<String>) -> ArgError {
        ArgError::new(format!("--{name}={}", shown(value)), expected)
    }
}

fn is_word(s: &str, extra: &[char]) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn check_path(p: &str) -> Result<(), String> {
    let bad = || "expected a relative path under the Mailman prefix (not absolute, no '..' component)".to_string();
    if p.is_empty() || p.starts_with('/') || p.chars().any(char::is_control) || p.split('/').any(|c| c == "..") {
        return Err(bad());
    }
    Ok(())
}

fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= 254
        && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
        && matches!(a.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err("expected an email address local@domain (no spaces, control characters, <, >, ',' or '\"')".into())
    }
}

/// The items of a comma-separated list, trimmed, empty ones skipped.
pub fn comma_items(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl ArgKind {
    /// Checks one value of this kind; `Err` is the "expected …" text.
    pub fn check(&self, v: &str) -> Result<(), String> {
        match *self {
            ArgKind::UInt { min, max, unit } => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err(format!("expected {min}..={max} {unit}").trim_end().to_string()),
            },
            ArgKind::Float { min, max, unit } => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= min && x <= max => Ok(()),
                _ => Err(format!("expected {min}..={max} {unit}").trim_end().to_string()),
            },
            ArgKind::Choice(words) => {
                if words.contains(&v) {
                    Ok(())
                } else {
                    Err(format!("expected one of: {}", words.join(", ")))
                }
            }
            ArgKind::ListName => check_new_list_name(v).map_err(str::to_string),
            ArgKind::Path => check_path(v),
            ArgKind::Paths => comma_items(v).try_for_each(check_path),
            ArgKind::Host => {
                if is_word(v, &['-', '.']) && !v.starts_with('-') && v.len() <= 253 {
                    Ok(())
                } else {
                    Err("expected a host name of letters, digits, '-' and '.'".into())
                }
            }
            ArgKind::Address => check_address(v),
            ArgKind::Addresses => comma_items(v).try_for_each(check_address),
            ArgKind::Token => {
                if is_word(v, &['-', '_', '.']) && v.len() <= 64 {
                    Ok(())
                } else {
                    Err("expected 1 to 64 letters, digits, '-', '_' or '.'".into())
                }
            }
            ArgKind::Json => match serde_json::from_str::<serde_json::Value>(v) {
                Ok(serde_json::Value::Object(_)) => Ok(()),
                Ok(_) => Err("expected a JSON object".into()),
                Err(e) => Err(format!("expected a JSON object: {e}")),
            },
            ArgKind::Text => Ok(()),
            ArgKind::Custom { check, .. } => check(v),
        }
    }

    /// The placeholder in a usage line: `--count=N`.
    pub fn metavar(&self) -> String {
        match *self {
            ArgKind::UInt { .. } => "N".into(),
            ArgKind::Float { .. } => "X".into(),
            ArgKind::Choice(words) => words.join("|"),
            ArgKind::ListName => "LIST".into(),
            ArgKind::Path => "PATH".into(),
            ArgKind::Paths => "P1,P2".into(),
            ArgKind::Host => "HOST".into(),
            ArgKind::Address => "ADDR".into(),
            ArgKind::Addresses => "A1,A2".into(),
            ArgKind::Token => "WORD".into(),
            ArgKind::Json => "JSON".into(),
            ArgKind::Text => "TEXT".into(),
            ArgKind::Custom { metavar, .. } => metavar.into(),
        }
    }

    /// The type and range, for `mmsim list`.
    pub fn describe(&self) -> String {
        match *self {
            ArgKind::UInt { min, max, unit } => format!("integer {min}..={max} {unit}").trim_end().to_string(),
            ArgKind::Float { min, max, unit } => format!("number {min}..={max} {unit}").trim_end().to_string(),
            ArgKind::Choice(words) => format!("one of {}", words.join(", ")),
            ArgKind::ListName => "list name: a-z 0-9 - _ . (docs/semantics/list-names.md)".into(),
            ArgKind::Path => "relative path, no '..'".into(),
            ArgKind::Paths => "relative paths, comma-separated".into(),
            ArgKind::Host => "host name".into(),
            ArgKind::Address => "email address".into(),
            ArgKind::Addresses => "email addresses, comma-separated".into(),
            ArgKind::Token => "word: A-Z a-z 0-9 - _ .".into(),
            ArgKind::Json => "JSON object".into(),
            ArgKind::Text => "any text".into(),
            ArgKind::Custom { what, .. } => what.into(),
        }
    }
}

impl ArgSpec {
    /// `--count=N` (or the positional's name).
    pub fn usage(&self, positional: bool) -> String {
        if positional {
            self.name.to_string()
        } else {
            format!("--{}={}", self.name, self.kind.metavar())
        }
    }

    /// The default, for `mmsim list`.
    pub fn default_text(&self) -> String {
        match self.default {
            ArgDefault::Required => "required".into(),
            ArgDefault::Absent => "none".into(),
            ArgDefault::Value(v) => format!("default {v}"),
        }
    }
}

/// Validated arguments; the getters read the given value or the default.
#[derive(Clone, Debug)]
pub struct Parsed {
    spec: &'static ProgramSpec,
    options: Vec<Option<String>>,
    positional: Vec<String>,
    command: Vec<String>,
}

impl ProgramSpec {
    /// The usage line: `sender --to=ADDR [--count=N] …`.
    pub fn usage(&self) -> String {
        let mut parts = vec![self.name.to_string()];
        for a in self.options {
            match a.default {
                ArgDefault::Required => parts.push(a.usage(false)),
                _ => parts.push(format!("[{}]", a.usage(false))),
            }
        }
        for a in self.positional {
            match a.default {
                ArgDefault::Required => parts.push(a.usage(true)),
                _ => parts.push(format!("[{}]", a.usage(true))),
            }
        }
        if self.command {
            parts.push("-- PROGRAM [ARGS...]".into());
        }
        parts.join(" ")
    }

    fn option_names(&self) -> String {
        if self.options.is_empty() {
            return "none".into();
        }
        self.options.iter().map(|a| format!("--{}", a.name)).collect::<Vec<_>>().join(", ")
    }

    /// Parses and checks `args` against this declaration.
    pub fn parse(&'static self, args: &[String]) -> Result<Parsed, ArgError> {
        let mut options: Vec<Option<String>> = vec![None; self.options.len()];
        let mut positional = Vec::new();
        let mut command = Vec::new();
        let mut rest = args.iter();
        while let Some(a) = rest.next() {
            if self.command && a == "--" {
                command = rest.by_ref().cloned().collect();
                if command.is_empty() {
                    return Err(ArgError::new("--", "expected a program after --"));
                }
                break;
            }
            let Some(opt) = a.strip_prefix("--") else {
                positional.push(a.clone());
                continue;
            };
            let (name, value) = match opt.split_once('=') {
                Some(nv) => nv,
                None => (opt, ""),
            };
            let Some(i) = self.options.iter().position(|s| s.name == name) else {
                return Err(ArgError::new(
                    shown(a),
                    format!("unknown option; {} takes {}", self.name, self.option_names()),
                ));
            };
            if !opt.contains('=') {
                return Err(ArgError::new(shown(a), format!("expected --{name}={}", self.options[i].kind.metavar())));
            }
            if options[i].is_some() {
                return Err(ArgError::option(name, value, "given twice"));
            }
            self.options[i].kind.check(value).map_err(|e| ArgError::option(name, value, e))?;
            options[i] = Some(value.to_string());
        }
        for (spec, value) in self.options.iter().zip(&options) {
            if value.is_none() && matches!(spec.default, ArgDefault::Required) {
                return Err(ArgError::new(
                    format!("--{}", spec.name),
                    format!("required ({}{})", spec.usage(false), if self.command { " before --" } else { "" }),
                ));
            }
        }
        if positional.len() > self.positional.len() {
            let extra = &positional[self.positional.len()];
            let takes = match self.positional {
                [] => "no positional arguments".to_string(),
                p => p.iter().map(|a| a.name).collect::<Vec<_>>().join(" "),
            };
            return Err(ArgError::new(
                format!("{:?}", shown(extra)),
                format!("unexpected argument; {} takes {takes}", self.name),
            ));
        }
        for (i, spec) in self.positional.iter().enumerate() {
            match positional.get(i) {
                Some(v) => spec.kind.check(v).map_err(|e| ArgError::new(format!("{} {:?}", spec.name, shown(v)), e))?,
                None if matches!(spec.default, ArgDefault::Required) => {
                    return Err(ArgError::new(spec.name, format!("required ({})", self.usage())));
                }
                None => {}
            }
        }
        if self.command && command.is_empty() {
            return Err(ArgError::new("--", "expected -- PROGRAM [ARGS...] after the options"));
        }
        Ok(Parsed { spec: self, options, positional, command })
    }
}

impl Parsed {
    fn index(&self, name: &str) -> usize {
        self.spec
            .options
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("{}: --{name} is not declared", self.spec.name))
    }

    /// The value as given, `None` when absent.
    pub fn given(&self, name: &str) -> Option<&str> {
        self.options[self.index(name)].as_deref()
    }

    /// The value as given, else the declared default.
    pub fn value(&self, name: &str) -> Option<&str> {
        let i = self.index(name);
        match (&self.options[i], self.spec.options[i].default) {
            (Some(v), _) => Some(v),
            (None, ArgDefault::Value(d)) => Some(d),
            (None, _) => None,
        }
    }

    /// A required or defaulted text value.
    pub fn text(&self, name: &str) -> String {
        self.value(name).unwrap_or_else(|| panic!("{}: --{name} has no default", self.spec.name)).to_string()
    }

    /// A checked [`ArgKind::UInt`], converted to the program's type (the range fits it).
    pub fn uint<T: TryFrom<u64>>(&self, name: &str) -> T {
        let v: u64 = self.text(name).parse().expect("checked when parsed");
        T::try_from(v).unwrap_or_else(|_| panic!("{}: --{name}'s range does not fit its type", self.spec.name))
    }

    /// An optional [`ArgKind::UInt`].
    pub fn uint_opt<T: TryFrom<u64>>(&self, name: &str) -> Option<T> {
        self.value(name).is_some().then(|| self.uint(name))
    }

    /// A checked [`ArgKind::Float`].
    pub fn float(&self, name: &str) -> f64 {
        self.text(name).parse().expect("checked when parsed")
    }

    /// Positional argument `i`, if given.
    pub fn positional(&self, i: usize) -> Option<&str> {
        self.positional.get(i).map(String::as_str)
    }

    /// The command after `--` (programs that declare one).
    pub fn command(&self) -> &[String] {
        &self.command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ProgramSpec = ProgramSpec {
        name: "demo",
        summary: "a demo",
        options: &[
            ArgSpec {
                name: "count",
                kind: ArgKind::UInt { min: 1, max: 10, unit: "things" },
                default: ArgDefault::Value("3"),
                help: "how many",
            },
            ArgSpec { name: "to", kind: ArgKind::Address, default: ArgDefault::Required, help: "who" },
        ],
        positional: &[ArgSpec { name: "LISTNAME", kind: ArgKind::ListName, default: ArgDefault::Required, help: "" }],
        command: false,
    };

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_defaults_and_refusals() {
        let p = SPEC.parse(&args(&["--to=a@b", "test"])).unwrap();
        assert_eq!(p.uint::<u32>("count"), 3);
        assert_eq!(p.given("count"), None);
        assert_eq!(p.positional(0), Some("test"));
        let e = |a: &[&str]| SPEC.parse(&args(a)).unwrap_err().to_string();
        assert_eq!(e(&["--to=a@b", "--count=11", "x"]), "--count=11: expected 1..=10 things");
        assert!(e(&["--to=a@b", "--nope=1", "x"]).starts_with("--nope=1: unknown option"));
        assert!(e(&["--to=a@b", "--to=c@d", "x"]).contains("given twice"));
        assert!(e(&["x"]).starts_with("--to: required"));
        assert!(e(&["--to=a@b"]).starts_with("LISTNAME: required"));
        assert!(e(&["--to=a@b", "x", "y"]).contains("unexpected argument"));
        assert!(e(&["--to=a@b", "../../etc"]).starts_with("LISTNAME \"../../etc\""));
        assert!(e(&["--to=a@b", "--count", "x"]).contains("expected --count=N"));
        assert!(!e(&["--to=a\nb", "x"]).contains('\n'));
        assert!(!ArgError::new("x", "unknown field `a\nb`").to_string().contains('\n'));
    }
}
