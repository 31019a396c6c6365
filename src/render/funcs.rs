//! The sprig-like template library: filters and functions gantry adds to tera.
//!
//! Owns every filter and function gantry registers on top of tera's builtins, and nothing else (no
//! file access, no knowledge of `file` blocks). Where tera already has a function with the meaning a
//! sprig user expects (`upper`, `lower`, `title`, `trim`, `split`, `first`, `last`, `default`, `int`,
//! `date`, `now`, `unique`), tera's is used as it is; `docs/templates.md` has the full table from
//! sprig's names to these.
//!
//! Names follow sprig (`trimPrefix`, `b64enc`, `randAlphaNum`) so a ported template reads like the
//! original. Tera passes arguments by name only, so every argument has one (`trimPrefix(prefix="v")`).
//!
//! Some builtins are replaced. `indent` accepts everything tera's does (`prefix`, `first`, `blank`,
//! same defaults) and adds `width=N`, which means what sprig's `indent N` means (every line, the
//! first included, gets N spaces). `range`, `replace`, `join` and `get_random` behave as tera's, but
//! refuse what made tera's abort or panic (`range(end=1e12)`, `step_by=0`, a `replace` or `join` that
//! multiplies a long text, `get_random` with an empty range).
//!
//! # Limits
//!
//! No call produces a string longer than [`MAX_VALUE`] bytes or a list longer than [`MAX_ITEMS`]
//! items: sizes are computed before anything is allocated (an allocation that fails aborts the
//! process), and every result is checked again on the way out. The error names the function and the
//! limit.
//!
//! # Errors
//!
//! Every error names the filter or function and says what kind of value it got and what it wanted,
//! but never the value itself: values come from the environment, and that is where secrets live.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use base64::Engine as _;
use rand::Rng as _;
use serde_json::{Map, Number, Value};
use sha1::Digest as _;

pub(super) type Args = HashMap<String, Value>;
pub(super) type Res = tera::Result<Value>;

/// The longest string one filter or function may return, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// The longest list one filter or function may return (`range`).
pub const MAX_ITEMS: usize = 100_000;

pub(super) type FilterFn = fn(&Value, &Args) -> Res;
pub(super) type FunctionFn = fn(&Args) -> Res;

/// gantry's filters, by name.
const FILTERS: &[(&str, FilterFn)] = &[
    ("trimPrefix", trim_prefix),
    ("trimSuffix", trim_suffix),
    ("quote", quote),
    ("squote", squote),
    ("indent", indent),
    ("nindent", nindent),
    ("contains", contains),
    ("hasPrefix", has_prefix),
    ("hasSuffix", has_suffix),
    ("replace", replace),
    ("join", join),
    ("required", required),
    ("empty", empty),
    ("ternary", ternary_filter),
    ("b64enc", b64enc),
    ("b64dec", b64dec),
    ("sha256sum", sha256sum),
    ("sha1sum", sha1sum),
    ("toJson", to_json),
    ("fromJson", from_json),
    ("toYaml", to_yaml),
    ("atoi", atoi),
    ("add", add),
    ("keys", keys),
    ("hasKey", has_key),
    ("sortAlpha", sort_alpha),
];

/// gantry's functions, by name (`env` is registered on its own: it needs the environment).
const FUNCTIONS: &[(&str, FunctionFn)] = &[
    ("ternary", ternary_fn),
    ("coalesce", coalesce),
    ("randAlphaNum", rand_alpha_num),
    ("randAlpha", rand_alpha),
    ("randNumeric", rand_numeric),
    ("uuidv4", uuidv4),
    ("max", max),
    ("min", min),
    ("list", list),
    ("dict", dict),
    ("range", range),
    ("get_random", get_random),
];

/// Registers the whole library on `tera`. `env` backs the `env()` function: the same snapshot the
/// template sees as `Env`, so a render never mixes two views of the environment.
pub fn register(tera: &mut tera::Tera, env: &BTreeMap<String, String>) {
    for &(name, f) in FILTERS {
        tera.register_filter(name, move |v: &Value, args: &Args| {
            bounded(name, f(v, args))
        });
    }
    for &(name, f) in FUNCTIONS {
        tera.register_function(name, move |args: &Args| bounded(name, f(args)));
    }
    tera.register_filter("date", date);
    let env = env.clone();
    tera.register_function("env", move |args: &Args| {
        bounded("env", env_lookup(&env, args))
    });
}

/// gantry's filter `name` (the same implementation every engine calls).
pub(super) fn filter(name: &str) -> Option<FilterFn> {
    FILTERS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// gantry's function `name` (the same implementation every engine calls).
pub(super) fn function(name: &str) -> Option<FunctionFn> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Whether `name` is a filter or function of this module (whose messages never hold values).
pub fn is_library_name(name: &str) -> bool {
    name == "env"
        || FILTERS.iter().any(|(n, _)| *n == name)
        || FUNCTIONS.iter().any(|(n, _)| *n == name)
}

/// The result of `name`, refused if it is larger than the limits (see the module docs).
pub(super) fn bounded(name: &str, result: Res) -> Res {
    match &result {
        Ok(Value::String(s)) if s.len() > MAX_VALUE => Err(too_long(name, s.len())),
        Ok(Value::Array(items)) if items.len() > MAX_ITEMS => Err(too_many(name, items.len())),
        _ => result,
    }
}

fn too_long(name: &str, bytes: usize) -> tera::Error {
    fail(
        name,
        format!(
            "the result would be {bytes} bytes long; gantry allows {MAX_VALUE} (1 MiB) from one call"
        ),
    )
}

fn too_many(name: &str, items: usize) -> tera::Error {
    fail(
        name,
        format!("the result would have {items} items; gantry allows {MAX_ITEMS} from one call"),
    )
}

/// Refuses a result of `bytes` bytes before it is built.
fn check_len(name: &str, bytes: Option<usize>) -> tera::Result<()> {
    match bytes {
        Some(n) if n <= MAX_VALUE => Ok(()),
        Some(n) => Err(too_long(name, n)),
        None => Err(too_long(name, usize::MAX)),
    }
}

/// Every filter and function a template can call: tera's builtins and this module's.
pub(super) const KNOWN: &[&str] = &[
    // tera
    "upper",
    "lower",
    "trim",
    "trim_start",
    "trim_end",
    "trim_start_matches",
    "trim_end_matches",
    "truncate",
    "wordcount",
    "replace",
    "capitalize",
    "title",
    "linebreaksbr",
    "striptags",
    "spaceless",
    "urlencode",
    "urlencode_strict",
    "escape",
    "escape_xml",
    "slugify",
    "addslashes",
    "split",
    "int",
    "float",
    "first",
    "last",
    "nth",
    "join",
    "sort",
    "unique",
    "slice",
    "group_by",
    "filter",
    "map",
    "concat",
    "abs",
    "pluralize",
    "round",
    "filesizeformat",
    "length",
    "reverse",
    "date",
    "json_encode",
    "as_str",
    "get",
    "safe",
    "default",
    "range",
    "now",
    "throw",
    "get_random",
    "get_env",
    // gantry
    "trimPrefix",
    "trimSuffix",
    "quote",
    "squote",
    "indent",
    "nindent",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "required",
    "empty",
    "ternary",
    "coalesce",
    "b64enc",
    "b64dec",
    "sha256sum",
    "sha1sum",
    "toJson",
    "fromJson",
    "toYaml",
    "randAlphaNum",
    "randAlpha",
    "randNumeric",
    "uuidv4",
    "atoi",
    "add",
    "max",
    "min",
    "list",
    "dict",
    "keys",
    "hasKey",
    "sortAlpha",
    "env",
];

/// sprig and Go template names that have a different spelling here.
const PORTED: &[(&str, &str)] = &[
    ("splitList", "split(pat=\",\")"),
    ("uniq", "unique"),
    ("toPrettyJson", "json_encode(pretty=true)"),
    ("toString", "as_str"),
    ("len", "length"),
    ("printf", "the ~ operator, as in host ~ \":\" ~ port"),
    ("index", "a subscript, as in Params.map[\"key\"]"),
    ("trunc", "truncate(length=N, end=\"\")"),
    (
        "trimAll",
        "trim_start_matches(pat=...) and trim_end_matches(pat=...)",
    ),
    ("until", "range(end=N)"),
    ("seq", "range(start=A, end=B)"),
    ("sub", "the - operator"),
    ("mul", "the * operator"),
    ("div", "the / operator"),
    ("mod", "the % operator"),
    ("lookup", "Env.NAME or env(name=\"NAME\")"),
];

/// A hint for a filter or function that does not exist: its gantry spelling if it is a sprig name,
/// else the closest known name.
pub fn unknown_name_hint(name: &str) -> Option<String> {
    if let Some((_, instead)) = PORTED.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(format!("in gantry, use {instead}; see docs/templates.md"));
    }
    crate::config::node::suggest(name, KNOWN)
}

pub(super) fn fail(name: &str, msg: impl Display) -> tera::Error {
    tera::Error::msg(format!("`{name}`: {msg}"))
}

/// What a value is, in the words a template author uses (never what it holds).
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a whole number",
        Value::Number(n) if n.is_i64() => "a negative number",
        Value::Number(_) => "a number with a fraction",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Strings as they are; numbers and booleans as they print. Lists, maps and null are refused: turning
/// them into text silently is how `map[...]` ends up in a config file.
pub(super) fn text(name: &str, what: &str, v: &Value) -> tera::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(fail(
            name,
            format!("{what} must be a string, got {}", kind(other)),
        )),
    }
}

fn arg<'a>(name: &str, args: &'a Args, key: &str, hint: &str) -> tera::Result<&'a Value> {
    args.get(key)
        .ok_or_else(|| fail(name, format!("missing argument `{key}` ({hint})")))
}

fn str_arg(name: &str, args: &Args, key: &str) -> tera::Result<String> {
    let v = arg(name, args, key, "a string")?;
    text(name, &format!("argument `{key}`"), v)
}

fn usize_arg(name: &str, args: &Args, key: &str) -> tera::Result<usize> {
    let v = arg(name, args, key, "a whole number")?;
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            fail(
                name,
                format!(
                    "argument `{key}` must be a whole number >= 0, got {}",
                    kind(v)
                ),
            )
        })
}

fn bool_arg(name: &str, args: &Args, key: &str, default: bool) -> tera::Result<bool> {
    match args.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(fail(
            name,
            format!("argument `{key}` must be true or false, got {}", kind(v)),
        )),
    }
}

fn list_arg<'a>(name: &str, args: &'a Args, key: &str) -> tera::Result<&'a Vec<Value>> {
    match arg(name, args, key, "a list such as [1, 2]")? {
        Value::Array(items) => Ok(items),
        v => Err(fail(
            name,
            format!("argument `{key}` must be a list, got {}", kind(v)),
        )),
    }
}

/// Sprig's notion of empty: null, false, 0, "", [] and {}.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

// ---- strings -------------------------------------------------------------------------------------

fn trim_prefix(v: &Value, args: &Args) -> Res {
    let s = text("trimPrefix", "the value", v)?;
    let prefix = str_arg("trimPrefix", args, "prefix")?;
    Ok(Value::String(
        s.strip_prefix(prefix.as_str()).unwrap_or(&s).to_string(),
    ))
}

fn trim_suffix(v: &Value, args: &Args) -> Res {
    let s = text("trimSuffix", "the value", v)?;
    let suffix = str_arg("trimSuffix", args, "suffix")?;
    Ok(Value::String(
        s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string(),
    ))
}

/// Double quotes with backslash escapes, like Go's `%q` for ordinary text.
fn quote(v: &Value, _: &Args) -> Res {
    let s = text("quote", "the value", v)?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(Value::String(out))
}

/// Single quotes, no escaping (as sprig).
fn squote(v: &Value, _: &Args) -> Res {
    let s = text("squote", "the value", v)?;
    Ok(Value::String(format!("'{s}'")))
}

/// The size `indent_lines` would produce at most, if it fits in memory at all.
fn indented_len(s: &str, prefix_len: usize) -> Option<usize> {
    let lines = s.bytes().filter(|b| *b == b'\n').count() + 1;
    prefix_len.checked_mul(lines)?.checked_add(s.len())
}

fn indent_lines(s: &str, prefix: &str, first: bool, blank: bool) -> String {
    let mut out = String::with_capacity(indented_len(s, prefix.len()).unwrap_or(s.len()));
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let wanted = if i == 0 {
            first
        } else {
            blank || !line.trim().is_empty()
        };
        if wanted {
            out.push_str(prefix);
        }
        out.push_str(line);
    }
    out
}

/// tera's `indent` (prefix/first/blank) plus sprig's `indent N` as `width=N`.
fn indent(v: &Value, args: &Args) -> Res {
    let s = text("indent", "the value", v)?;
    if args.contains_key("width") {
        let width = usize_arg("indent", args, "width")?;
        check_len("indent", indented_len(&s, width))?;
        return Ok(Value::String(indent_lines(
            &s,
            &" ".repeat(width),
            true,
            true,
        )));
    }
    let prefix = match args.get("prefix") {
        Some(p) => text("indent", "argument `prefix`", p)?,
        None => "    ".to_string(),
    };
    let first = bool_arg("indent", args, "first", false)?;
    let blank = bool_arg("indent", args, "blank", false)?;
    check_len("indent", indented_len(&s, prefix.len()))?;
    Ok(Value::String(indent_lines(&s, &prefix, first, blank)))
}

/// Sprig's `nindent N`: a newline, then every line indented by N spaces.
fn nindent(v: &Value, args: &Args) -> Res {
    let s = text("nindent", "the value", v)?;
    let width = usize_arg("nindent", args, "width")?;
    check_len(
        "nindent",
        indented_len(&s, width).and_then(|n| n.checked_add(1)),
    )?;
    Ok(Value::String(format!(
        "\n{}",
        indent_lines(&s, &" ".repeat(width), true, true)
    )))
}

/// tera's `replace(from=, to=)`, refused when the result would be too long.
fn replace(v: &Value, args: &Args) -> Res {
    let s = text("replace", "the value", v)?;
    let from = str_arg("replace", args, "from")?;
    let to = str_arg("replace", args, "to")?;
    // An empty `from` matches before every character and at the end, as str::replace does.
    let count = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from.as_str()).count()
    };
    let len = count
        .checked_mul(to.len())
        .and_then(|added| (s.len() - count * from.len()).checked_add(added));
    check_len("replace", len)?;
    Ok(Value::String(s.replace(from.as_str(), &to)))
}

/// How tera prints a value in a template: strings as they are, null as nothing, lists as `[a, b]`.
pub(super) fn rendered(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(rendered).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(_) => "[object]".to_string(),
    }
}

/// tera's `join(sep=)` (`\n` and `\t` in `sep` mean a newline and a tab, as in tera), refused when
/// the result would be too long.
fn join(v: &Value, args: &Args) -> Res {
    let Value::Array(items) = v else {
        return Err(fail(
            "join",
            format!("the value must be a list, got {}", kind(v)),
        ));
    };
    let sep = match args.get("sep") {
        Some(sep) => text("join", "argument `sep`", sep)?
            .replace("\\n", "\n")
            .replace("\\t", "\t"),
        None => String::new(),
    };
    let parts: Vec<String> = items.iter().map(rendered).collect();
    let len = parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))
        .and_then(|n| n.checked_add(sep.len().checked_mul(parts.len().saturating_sub(1))?));
    check_len("join", len)?;
    Ok(Value::String(parts.join(&sep)))
}

fn contains(v: &Value, args: &Args) -> Res {
    let s = text("contains", "the value", v)?;
    let needle = str_arg("contains", args, "substr")?;
    Ok(Value::Bool(s.contains(needle.as_str())))
}

fn has_prefix(v: &Value, args: &Args) -> Res {
    let s = text("hasPrefix", "the value", v)?;
    let prefix = str_arg("hasPrefix", args, "prefix")?;
    Ok(Value::Bool(s.starts_with(prefix.as_str())))
}

fn has_suffix(v: &Value, args: &Args) -> Res {
    let s = text("hasSuffix", "the value", v)?;
    let suffix = str_arg("hasSuffix", args, "suffix")?;
    Ok(Value::Bool(s.ends_with(suffix.as_str())))
}

// ---- defaults and checks -------------------------------------------------------------------------

/// Fails the render with the author's message when the value is empty (null or ""). An undefined
/// variable already fails before a filter runs; `| default(value="") | required(msg=...)` turns that
/// into this message.
fn required(v: &Value, args: &Args) -> Res {
    let empty = matches!(v, Value::Null) || matches!(v, Value::String(s) if s.is_empty());
    if !empty {
        return Ok(v.clone());
    }
    let msg = match args.get("msg") {
        Some(m) => text("required", "argument `msg`", m)?,
        None => "a required value is empty".to_string(),
    };
    Err(tera::Error::msg(msg))
}

fn empty(v: &Value, _: &Args) -> Res {
    Ok(Value::Bool(is_empty(v)))
}

fn choose(name: &str, cond: &Value, args: &Args) -> Res {
    let Value::Bool(cond) = cond else {
        return Err(fail(
            name,
            format!("the condition must be true or false, got {}", kind(cond)),
        ));
    };
    let yes = arg(name, args, "yes", "the value when true")?;
    let no = arg(name, args, "no", "the value when false")?;
    Ok(if *cond { yes.clone() } else { no.clone() })
}

/// `cond | ternary(yes=A, no=B)`.
fn ternary_filter(v: &Value, args: &Args) -> Res {
    choose("ternary", v, args)
}

/// `ternary(cond=C, yes=A, no=B)`, for conditions that are comparisons.
fn ternary_fn(args: &Args) -> Res {
    let cond = arg("ternary", args, "cond", "true or false")?;
    choose("ternary", cond, args)
}

/// The first value of `values` that is not empty, or null if all are.
fn coalesce(args: &Args) -> Res {
    let values = list_arg("coalesce", args, "values")?;
    Ok(values
        .iter()
        .find(|v| !is_empty(v))
        .cloned()
        .unwrap_or(Value::Null))
}

// ---- encodings and hashes ------------------------------------------------------------------------

fn b64enc(v: &Value, _: &Args) -> Res {
    let s = text("b64enc", "the value", v)?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(s),
    ))
}

fn b64dec(v: &Value, _: &Args) -> Res {
    let s = text("b64dec", "the value", v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| fail("b64dec", base64_problem(&e)))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| fail("b64dec", "the decoded bytes are not UTF-8 text"))
}

/// What is wrong with some base64, without quoting the offending byte (it is part of the value).
fn base64_problem(e: &base64::DecodeError) -> String {
    use base64::DecodeError::*;
    match e {
        InvalidByte(at, _) | InvalidLastSymbol(at, _) => {
            format!("not valid base64 (a character that does not belong at offset {at})")
        }
        InvalidLength(len) => format!("not valid base64 ({len} characters is not a valid length)"),
        InvalidPadding => "not valid base64 (wrong padding)".to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256sum(v: &Value, _: &Args) -> Res {
    let s = text("sha256sum", "the value", v)?;
    Ok(Value::String(hex(&sha2::Sha256::digest(s.as_bytes()))))
}

fn sha1sum(v: &Value, _: &Args) -> Res {
    let s = text("sha1sum", "the value", v)?;
    Ok(Value::String(hex(&sha1::Sha1::digest(s.as_bytes()))))
}

fn to_json(v: &Value, _: &Args) -> Res {
    serde_json::to_string(v)
        .map(Value::String)
        .map_err(|e| fail("toJson", e))
}

fn from_json(v: &Value, _: &Args) -> Res {
    let Value::String(s) = v else {
        return Err(fail(
            "fromJson",
            format!("the value must be a string of JSON, got {}", kind(v)),
        ));
    };
    serde_json::from_str(s).map_err(|e| fail("fromJson", format!("not valid JSON: {e}")))
}

/// YAML without the trailing newline, as sprig's `toYaml`, so `| toYaml | nindent(width=2)` nests.
fn to_yaml(v: &Value, _: &Args) -> Res {
    let out = serde_norway::to_string(v).map_err(|e| fail("toYaml", e))?;
    Ok(Value::String(out.trim_end_matches('\n').to_string()))
}

// ---- time ----------------------------------------------------------------------------------------

/// tera's `date`, after refusing a timestamp outside the range chrono can represent (tera's own
/// panicked on one). Everything else is tera's builtin, unchanged.
fn date(v: &Value, args: &Args) -> Res {
    if let Some(secs) = v.as_i64() {
        if chrono::DateTime::from_timestamp(secs, 0).is_none() {
            return Err(fail(
                "date",
                "the timestamp is outside the dates gantry can show (about 262000 years either side of 1970)",
            ));
        }
    }
    tera_builtin_filter("date", v, args)
}

/// Applies tera's own filter `name` (which a registered filter of the same name hides) to `v`.
pub(super) fn tera_builtin_filter(name: &str, v: &Value, args: &Args) -> Res {
    let mut context = tera::Context::new();
    context.insert("value", v);
    let mut names: Vec<&String> = args
        .keys()
        .filter(|k| {
            k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect();
    names.sort();
    let mut call = Vec::new();
    for k in names {
        context.insert(format!("arg_{k}"), &args[k]);
        call.push(format!("{k}=arg_{k}"));
    }
    let source = format!("{{{{ value | {name}({}) }}}}", call.join(", "));
    tera::Tera::one_off(&source, &context, false)
        .map(Value::String)
        .map_err(|e| {
            // The innermost message is the filter's own; the rest is about the one-off template.
            let mut inner = e.to_string();
            let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(err) = cur {
                inner = err.to_string();
                cur = err.source();
            }
            tera::Error::msg(inner)
        })
}

// ---- randomness ----------------------------------------------------------------------------------

const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";

fn random_from(name: &str, args: &Args, alphabet: &[&[u8]]) -> Res {
    let len = usize_arg(name, args, "length")?;
    check_len(name, Some(len))?;
    let chars: Vec<u8> = alphabet.concat();
    // thread_rng is a CSPRNG seeded from the OS: fine for the passwords these usually become.
    let mut rng = rand::thread_rng();
    let s: String = (0..len)
        .map(|_| char::from(chars[rng.gen_range(0..chars.len())]))
        .collect();
    Ok(Value::String(s))
}

fn rand_alpha_num(args: &Args) -> Res {
    random_from("randAlphaNum", args, &[ALPHA, DIGITS])
}

fn rand_alpha(args: &Args) -> Res {
    random_from("randAlpha", args, &[ALPHA])
}

fn rand_numeric(args: &Args) -> Res {
    random_from("randNumeric", args, &[DIGITS])
}

/// A random (version 4, RFC 4122 variant) UUID.
fn uuidv4(_: &Args) -> Res {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    Ok(Value::String(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

// ---- numbers -------------------------------------------------------------------------------------

/// Strict string-to-integer: unlike tera's lenient `int` (which falls back to 0), a value that is not
/// an integer is an error, because a port of 0 in a config file is worse than a failed render.
fn atoi(v: &Value, _: &Args) -> Res {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
        Value::String(s) => s.trim().parse::<i64>().map(Value::from).map_err(|_| {
            fail(
                "atoi",
                format!(
                    "the value (a string of {} characters) is not a whole number",
                    s.chars().count()
                ),
            )
        }),
        other => Err(fail(
            "atoi",
            format!("expects a string of digits, got {}", kind(other)),
        )),
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

fn num(name: &str, what: &str, v: &Value) -> tera::Result<Num> {
    let n = match v {
        Value::Number(n) => n,
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Num::Int(i));
            }
            if let Ok(f) = t.parse::<f64>() {
                return Ok(Num::Float(f));
            }
            return Err(fail(
                name,
                format!("{what} is a string that is not a number"),
            ));
        }
        other => {
            return Err(fail(
                name,
                format!("{what} must be a number, got {}", kind(other)),
            ))
        }
    };
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Ok(Num::Int(i)),
        (None, Some(f)) => Ok(Num::Float(f)),
        _ => Err(fail(name, format!("{what} is out of range"))),
    }
}

fn float_value(name: &str, f: f64) -> Res {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| fail(name, "the result is not a finite number"))
}

/// `x | add(value=N)`: numbers or numeric strings; integer when both are integers.
fn add(v: &Value, args: &Args) -> Res {
    let a = num("add", "the value", v)?;
    let b = num(
        "add",
        "argument `value`",
        arg("add", args, "value", "a number")?,
    )?;
    match (a, b) {
        (Num::Int(a), Num::Int(b)) => a
            .checked_add(b)
            .map(Value::from)
            .ok_or_else(|| fail("add", "the sum overflows a 64-bit integer")),
        (a, b) => float_value("add", as_f64(&a) + as_f64(&b)),
    }
}

fn as_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
    }
}

fn extreme(name: &str, args: &Args, pick_greater: bool) -> Res {
    let values = list_arg(name, args, "values")?;
    let mut best: Option<Num> = None;
    for (i, v) in values.iter().enumerate() {
        let n = num(name, &format!("item {i} of `values`"), v)?;
        best = Some(match best {
            None => n,
            Some(b) => {
                let greater = as_f64(&n) > as_f64(&b);
                if greater == pick_greater && as_f64(&n) != as_f64(&b) {
                    n
                } else {
                    b
                }
            }
        });
    }
    match best {
        None => Err(fail(name, "`values` is empty")),
        Some(Num::Int(i)) => Ok(Value::from(i)),
        Some(Num::Float(f)) => float_value(name, f),
    }
}

fn max(args: &Args) -> Res {
    extreme("max", args, true)
}

fn min(args: &Args) -> Res {
    extreme("min", args, false)
}

fn int_arg(name: &str, args: &Args, key: &str) -> tera::Result<Option<i64>> {
    match args.get(key) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            fail(
                name,
                format!("argument `{key}` must be a whole number, got {}", kind(v)),
            )
        }),
    }
}

/// tera's `get_random(start=, end=)`: a random integer from `start` (default 0) up to, not
/// including, `end`. An empty range is an error (tera panicked).
fn get_random(args: &Args) -> Res {
    let start = int_arg("get_random", args, "start")?.unwrap_or(0);
    let end = int_arg("get_random", args, "end")?
        .ok_or_else(|| fail("get_random", "missing argument `end` (a whole number)"))?;
    if start >= end {
        return Err(fail(
            "get_random",
            "`end` must be greater than `start` (the range includes start, not end)",
        ));
    }
    Ok(Value::from(rand::thread_rng().gen_range(start..end)))
}

// ---- lists and maps ------------------------------------------------------------------------------

/// tera's `range(end=, start=0, step_by=1)`, refused when the list would be too long (tera tried to
/// allocate it) or `step_by` is 0 (tera looped until memory ran out).
fn range(args: &Args) -> Res {
    let start = match args.get("start") {
        Some(_) => usize_arg("range", args, "start")?,
        None => 0,
    };
    let end = usize_arg("range", args, "end")?;
    let step = match args.get("step_by") {
        Some(_) => usize_arg("range", args, "step_by")?,
        None => 1,
    };
    if step == 0 {
        return Err(fail("range", "`step_by` must be at least 1"));
    }
    if start > end {
        return Err(fail("range", "`start` must not be greater than `end`"));
    }
    let items = (end - start).div_ceil(step);
    if items > MAX_ITEMS {
        return Err(too_many("range", items));
    }
    Ok(Value::Array(
        (start..end).step_by(step).map(Value::from).collect(),
    ))
}

/// `list(values=[...])`: tera's array literal `[a, b]` does the same; this exists so a ported
/// `list a b` has a direct counterpart.
fn list(args: &Args) -> Res {
    Ok(Value::Array(list_arg("list", args, "values")?.clone()))
}

/// `dict(name="web", port=80)`: a map from the named arguments, keys sorted (tera hands arguments
/// over unordered, so sorted is the only order that is the same on every run).
fn dict(args: &Args) -> Res {
    let sorted: BTreeMap<&String, &Value> = args.iter().collect();
    let mut map = Map::new();
    for (k, v) in sorted {
        map.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(map))
}

fn object<'a>(name: &str, v: &'a Value) -> tera::Result<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(fail(
            name,
            format!("the value must be a map, got {}", kind(other)),
        )),
    }
}

/// The keys of a map, in the map's own order (for `Params`, the order written in the config).
fn keys(v: &Value, _: &Args) -> Res {
    let m = object("keys", v)?;
    Ok(Value::Array(
        m.keys().map(|k| Value::String(k.clone())).collect(),
    ))
}

fn has_key(v: &Value, args: &Args) -> Res {
    let m = object("hasKey", v)?;
    let key = str_arg("hasKey", args, "key")?;
    Ok(Value::Bool(m.contains_key(&key)))
}

/// Sorts a list by each item's text, whatever its type (tera's `sort` needs one type throughout).
fn sort_alpha(v: &Value, _: &Args) -> Res {
    let Value::Array(items) = v else {
        return Err(fail(
            "sortAlpha",
            format!("the value must be a list, got {}", kind(v)),
        ));
    };
    let mut keyed: Vec<(String, Value)> = items
        .iter()
        .map(|item| {
            let key = match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (key, item.clone())
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(keyed.into_iter().map(|(_, v)| v).collect()))
}

// ---- environment ---------------------------------------------------------------------------------

/// `env(name="X", default="y")`: the variable, else the default, else an error naming the variable.
fn env_lookup(env: &BTreeMap<String, String>, args: &Args) -> Res {
    let name = str_arg("env", args, "name")?;
    match env.get(&name) {
        Some(v) => Ok(Value::String(v.clone())),
        None => match args.get("default") {
            Some(d) => Ok(d.clone()),
            None => Err(fail(
                "env",
                format!(
                    "environment variable {name} is not set (add default=\"...\" to make it optional)"
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::template::render;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("USER".to_string(), "alice".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    }

    fn params() -> serde_json::Value {
        json!({
            "name": "web",
            "port": 8080,
            "ports": "8080",
            "flag": true,
            "blank": "",
            "zero": 0,
            "list": ["b", "a", "c", "a"],
            "mixed": [3, "10", 2],
            "nums": [3, 1.5, 7, -2],
            "map": {"z": 1, "a": 2},
            "lines": "one\ntwo\n\nfour",
            "json": "{\"a\": [1, 2], \"b\": null}",
            "nested": [1, [2, [3.5, null]]],
        })
    }

    /// Renders `src` and returns the output, or the error's text.
    fn r(src: &str) -> Result<String, String> {
        render("t", src, &env(), &params()).map_err(|e| e.to_string())
    }

    fn ok(src: &str) -> String {
        match r(src) {
            Ok(s) => s,
            Err(e) => panic!("{src}: {e}"),
        }
    }

    /// The error text of a template that must fail; it must name `name`.
    fn fails(src: &str, name: &str) -> String {
        match r(src) {
            Ok(out) => panic!("{src}: expected an error, rendered {out:?}"),
            Err(e) => {
                assert!(e.contains(name), "{src}: error does not name `{name}`: {e}");
                e
            }
        }
    }

    #[test]
    fn tera_builtins_cover_the_basic_string_functions() {
        assert_eq!(ok("{{ 'aBc' | upper }}"), "ABC");
        assert_eq!(ok("{{ 'aBc' | lower }}"), "abc");
        assert_eq!(ok("{{ 'hello world' | title }}"), "Hello World");
        assert_eq!(ok("{{ '  x  ' | trim }}"), "x");
        assert_eq!(ok("{{ 'a-b-c' | replace(from='-', to='+') }}"), "a+b+c");
        assert_eq!(ok("{{ 'a,b' | split(pat=',') | join(sep='|') }}"), "a|b");
        assert_eq!(
            ok("{{ Params.list | first }}/{{ Params.list | last }}"),
            "b/a"
        );
        assert_eq!(ok("{{ Params.list | unique | join(sep='') }}"), "bac");
    }

    #[test]
    fn trim_prefix_and_suffix_remove_one_occurrence() {
        assert_eq!(ok("{{ 'vv1.2' | trimPrefix(prefix='v') }}"), "v1.2");
        assert_eq!(
            ok("{{ 'x.conf.conf' | trimSuffix(suffix='.conf') }}"),
            "x.conf"
        );
        assert_eq!(ok("{{ 'abc' | trimPrefix(prefix='z') }}"), "abc");
        fails("{{ 'abc' | trimPrefix }}", "trimPrefix");
        fails("{{ 'abc' | trimSuffix(prefix='c') }}", "trimSuffix");
        fails("{{ Params.list | trimPrefix(prefix='a') }}", "trimPrefix");
    }

    #[test]
    fn quote_escapes_and_squote_does_not() {
        assert_eq!(ok(r#"{{ 'say "hi"\' | quote }}"#), r#""say \"hi\"\\""#);
        assert_eq!(ok("{{ Params.port | quote }}"), "\"8080\"");
        assert_eq!(ok("{{ Params.lines | quote }}"), "\"one\\ntwo\\n\\nfour\"");
        assert_eq!(ok("{{ Params.name | squote }}"), "'web'");
        let e = fails("{{ Params.map | quote }}", "quote");
        assert!(e.contains("a map"), "{e}");
        fails("{{ Params.list | squote }}", "squote");
    }

    #[test]
    fn indent_keeps_teras_meaning_and_adds_sprigs_width() {
        // tera: 4 spaces, not the first line, not blank lines.
        assert_eq!(
            ok("{{ Params.lines | indent }}"),
            "one\n    two\n\n    four"
        );
        assert_eq!(
            ok("{{ Params.lines | indent(prefix='> ', first=true, blank=true) }}"),
            "> one\n> two\n> \n> four"
        );
        // sprig: every line, the first included.
        assert_eq!(ok("{{ 'a\nb' | indent(width=2) }}"), "  a\n  b");
        assert_eq!(ok("x:{{ 'a\nb' | nindent(width=2) }}"), "x:\n  a\n  b");
        fails("{{ 'a' | indent(width='two') }}", "indent");
        fails("{{ 'a' | indent(first='yes') }}", "indent");
        fails("{{ 'a' | nindent }}", "nindent");
        fails("{{ Params.map | nindent(width=2) }}", "nindent");
    }

    #[test]
    fn contains_has_prefix_has_suffix() {
        assert_eq!(ok("{{ 'foobar' | contains(substr='oba') }}"), "true");
        assert_eq!(ok("{{ 'foobar' | contains(substr='x') }}"), "false");
        assert_eq!(ok("{{ 'foobar' | hasPrefix(prefix='foo') }}"), "true");
        assert_eq!(ok("{{ 'foobar' | hasPrefix(prefix='bar') }}"), "false");
        assert_eq!(ok("{{ 'foobar' | hasSuffix(suffix='bar') }}"), "true");
        assert_eq!(ok("{{ 'foobar' | hasSuffix(suffix='foo') }}"), "false");
        assert_eq!(
            ok("{% if Params.name | hasPrefix(prefix='w') %}yes{% endif %}"),
            "yes"
        );
        fails("{{ 'a' | contains }}", "contains");
        fails("{{ 'a' | hasPrefix(suffix='a') }}", "hasPrefix");
        fails("{{ Params.map | hasSuffix(suffix='a') }}", "hasSuffix");
    }

    #[test]
    fn default_is_teras_and_covers_undefined_values() {
        assert_eq!(ok("{{ Params.nope | default(value='bac') }}"), "bac");
        assert_eq!(ok("{{ Params.name | default(value='bac') }}"), "web");
        assert_eq!(ok("{{ Env.NOPE | default(value='x') | upper }}"), "X");
    }

    #[test]
    fn required_fails_with_the_authors_message() {
        assert_eq!(ok("{{ Params.name | required(msg='name!') }}"), "web");
        assert_eq!(
            ok("{{ Params.zero | required(msg='zero is a value') }}"),
            "0"
        );
        let e = fails(
            "{{ Params.blank | required(msg='blank must be set') }}",
            "blank must be set",
        );
        assert!(e.starts_with("t:1:1"), "{e}");
        fails(
            "{{ Env.NOPE | default(value='') | required(msg='set NOPE') }}",
            "set NOPE",
        );
        fails("{{ Env.EMPTY | required }}", "required value is empty");
        fails("{{ Env.EMPTY | required(msg=Params.list) }}", "required");
    }

    #[test]
    fn empty_follows_sprig() {
        for (expr, want) in [
            ("Params.blank", "true"),
            ("Params.zero", "true"),
            ("false", "true"),
            ("[]", "true"),
            ("Params.name", "false"),
            ("Params.port", "false"),
            ("Params.list", "false"),
            ("Params.map", "false"),
            ("true", "false"),
        ] {
            assert_eq!(ok(&format!("{{{{ {expr} | empty }}}}")), want, "{expr}");
        }
    }

    #[test]
    fn coalesce_picks_the_first_non_empty_value() {
        assert_eq!(
            ok("{{ coalesce(values=[Params.blank, Params.zero, Params.name, 'x']) }}"),
            "web"
        );
        assert_eq!(
            ok("{{ coalesce(values=[Env.NOPE | default(value=''), 'fallback']) }}"),
            "fallback"
        );
        assert_eq!(ok("{{ coalesce(values=['', 0]) | json_encode }}"), "null");
        fails("{{ coalesce() }}", "coalesce");
        fails("{{ coalesce(values='a') }}", "coalesce");
    }

    #[test]
    fn ternary_as_filter_and_function() {
        assert_eq!(ok("{{ Params.flag | ternary(yes='on', no='off') }}"), "on");
        assert_eq!(ok("{{ false | ternary(yes='on', no='off') }}"), "off");
        assert_eq!(
            ok("{{ ternary(cond=Params.port > 1024, yes='high', no='low') }}"),
            "high"
        );
        let e = fails("{{ Params.name | ternary(yes=1, no=2) }}", "ternary");
        assert!(e.contains("true or false"), "{e}");
        fails("{{ true | ternary(yes=1) }}", "ternary");
        fails("{{ ternary(yes=1, no=2) }}", "ternary");
    }

    #[test]
    fn base64_round_trip_and_errors() {
        assert_eq!(ok("{{ 'hello' | b64enc }}"), "aGVsbG8=");
        assert_eq!(ok("{{ 'aGVsbG8=' | b64dec }}"), "hello");
        assert_eq!(ok("{{ Params.name | b64enc | b64dec }}"), "web");
        let e = fails("{{ 'not base64!' | b64dec }}", "b64dec");
        assert!(e.contains("not valid base64"), "{e}");
        fails("{{ '/w==' | b64dec }}", "UTF-8");
        fails("{{ Params.map | b64enc }}", "b64enc");
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            ok("{{ 'abc' | sha256sum }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ok("{{ 'abc' | sha1sum }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        fails("{{ Params.list | sha256sum }}", "sha256sum");
        fails("{{ Params.map | sha1sum }}", "sha1sum");
    }

    #[test]
    fn json_in_and_out() {
        assert_eq!(ok("{{ Params.map | toJson }}"), r#"{"z":1,"a":2}"#);
        assert_eq!(ok("{{ Params.name | toJson }}"), r#""web""#);
        assert_eq!(
            ok("{% set j = Params.json | fromJson %}{{ j.a | join(sep=',') }}"),
            "1,2"
        );
        let e = fails("{{ '{nope' | fromJson }}", "fromJson");
        assert!(e.contains("not valid JSON"), "{e}");
        fails("{{ Params.port | fromJson }}", "fromJson");
    }

    #[test]
    fn to_yaml_nests_with_nindent() {
        assert_eq!(ok("{{ Params.map | toYaml }}"), "z: 1\na: 2");
        assert_eq!(
            ok("root:{{ Params.map | toYaml | nindent(width=2) }}"),
            "root:\n  z: 1\n  a: 2"
        );
        assert_eq!(ok("{{ ['x', 1] | toYaml }}"), "- x\n- 1");
    }

    #[test]
    fn random_strings_have_the_length_and_alphabet_asked_for() {
        let an = ok("{{ randAlphaNum(length=64) }}");
        assert_eq!(an.len(), 64);
        assert!(an.chars().all(|c| c.is_ascii_alphanumeric()), "{an}");
        let a = ok("{{ randAlpha(length=40) }}");
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_alphabetic()), "{a}");
        let n = ok("{{ randNumeric(length=30) }}");
        assert_eq!(n.len(), 30);
        assert!(n.chars().all(|c| c.is_ascii_digit()), "{n}");
        assert_eq!(ok("{{ randAlpha(length=0) }}"), "");
        // Two 64-character secrets colliding would mean the generator is not random at all.
        assert_ne!(an, ok("{{ randAlphaNum(length=64) }}"));
        fails("{{ randAlphaNum() }}", "randAlphaNum");
        fails("{{ randAlpha(length=-1) }}", "randAlpha");
        fails("{{ randNumeric(length='8') }}", "randNumeric");
    }

    #[test]
    fn uuidv4_is_a_version_4_uuid() {
        let u = ok("{{ uuidv4() }}");
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{u}"
        );
        assert!(parts[2].starts_with('4'), "{u}");
        assert!(
            matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b')),
            "{u}"
        );
        assert_ne!(u, ok("{{ uuidv4() }}"));
    }

    #[test]
    fn now_and_date_are_teras() {
        let year = ok("{{ now() | date(format='%Y') }}");
        assert_eq!(year.len(), 4);
        assert!(year.chars().all(|c| c.is_ascii_digit()), "{year}");
        assert_eq!(
            ok("{{ '2024-03-05T10:20:30Z' | date(format='%d.%m.%Y %H:%M') }}"),
            "05.03.2024 10:20"
        );
        fails("{{ 'yesterday' | date(format='%Y') }}", "date");
    }

    #[test]
    fn int_is_teras_and_atoi_is_strict() {
        assert_eq!(ok("{% set p = '42' | int %}{{ p + 1 }}"), "43");
        assert_eq!(ok("{% set p = Params.ports | atoi %}{{ p + 1 }}"), "8081");
        assert_eq!(ok("{{ ' 7 ' | atoi }}"), "7");
        assert_eq!(ok("{{ Params.port | atoi }}"), "8080");
        let e = fails("{{ 'eighty' | atoi }}", "atoi");
        assert!(e.contains("not a whole number"), "{e}");
        fails("{{ '1.5' | atoi }}", "atoi");
        fails("{{ Params.list | atoi }}", "atoi");
    }

    #[test]
    fn add_sums_numbers_and_numeric_strings() {
        assert_eq!(ok("{{ Params.port | add(value=1) }}"), "8081");
        assert_eq!(ok("{{ Params.ports | add(value=-80) }}"), "8000");
        assert_eq!(ok("{{ 1 | add(value=0.5) }}"), "1.5");
        fails("{{ 1 | add }}", "add");
        fails("{{ 'x' | add(value=1) }}", "add");
        fails("{{ 1 | add(value=Params.map) }}", "add");
        fails("{{ 9223372036854775807 | add(value=1) }}", "overflow");
    }

    #[test]
    fn max_and_min() {
        assert_eq!(ok("{{ max(values=Params.nums) }}"), "7");
        assert_eq!(ok("{{ min(values=Params.nums) }}"), "-2");
        assert_eq!(ok("{{ max(values=[1, 2.5]) }}"), "2.5");
        assert_eq!(ok("{{ min(values=['10', 9]) }}"), "9");
        let e = fails("{{ max(values=[]) }}", "max");
        assert!(e.contains("empty"), "{e}");
        fails("{{ min(values=[1, 'x']) }}", "min");
        fails("{{ max(values=3) }}", "max");
        fails("{{ min() }}", "min");
    }

    #[test]
    fn list_and_dict() {
        assert_eq!(ok("{{ list(values=[1, 'a']) | toJson }}"), r#"[1,"a"]"#);
        assert_eq!(
            ok("{{ dict(port=80, name=Params.name) | toJson }}"),
            r#"{"name":"web","port":80}"#
        );
        assert_eq!(ok("{{ dict() | toJson }}"), "{}");
        fails("{{ list() }}", "list");
        fails("{{ list(values='a') }}", "list");
    }

    #[test]
    fn keys_and_has_key() {
        assert_eq!(ok("{{ Params.map | keys | join(sep=',') }}"), "z,a");
        assert_eq!(ok("{{ Params.map | hasKey(key='a') }}"), "true");
        assert_eq!(ok("{{ Params.map | hasKey(key='q') }}"), "false");
        assert_eq!(ok("{{ Params | hasKey(key='name') }}"), "true");
        fails("{{ Params.list | keys }}", "keys");
        fails("{{ Params.map | hasKey }}", "hasKey");
        fails("{{ Params.name | hasKey(key='a') }}", "hasKey");
    }

    #[test]
    fn sort_alpha_sorts_by_text() {
        assert_eq!(ok("{{ Params.list | sortAlpha | join(sep='') }}"), "aabc");
        assert_eq!(
            ok("{{ Params.mixed | sortAlpha | toJson }}"),
            r#"["10",2,3]"#
        );
        fails("{{ Params.map | sortAlpha }}", "sortAlpha");
    }

    #[test]
    fn env_function_with_fallback() {
        assert_eq!(ok("{{ env(name='USER') }}"), "alice");
        assert_eq!(ok("{{ env(name='EMPTY', default='x') }}"), "");
        assert_eq!(ok("{{ env(name='NOPE', default='y') }}"), "y");
        let e = fails("{{ env(name='NOPE') }}", "env");
        assert!(e.contains("NOPE is not set"), "{e}");
        fails("{{ env() }}", "env");
        fails("{{ env(name=[1]) }}", "env");
    }

    #[test]
    fn every_known_name_exists() {
        for name in super::KNOWN {
            if matches!(*name, "safe" | "default") {
                continue; // tera handles these in the parser, not as registered filters
            }
            let as_filter = r(&format!("{{{{ 1 | {name} }}}}"));
            let as_function = r(&format!("{{{{ {name}() }}}}"));
            let missing = |res: &Result<String, String>| {
                res.as_ref().err().is_some_and(|e| e.contains("not found"))
            };
            assert!(
                !(missing(&as_filter) && missing(&as_function)),
                "{name}: {as_filter:?} / {as_function:?}"
            );
        }
    }

    #[test]
    fn absurd_lengths_are_errors_naming_the_function_and_the_limit() {
        let limit = super::MAX_VALUE.to_string();
        for (src, name) in [
            ("{{ randAlphaNum(length=100000000000) }}", "randAlphaNum"),
            ("{{ randAlpha(length=1048577) }}", "randAlpha"),
            ("{{ randNumeric(length=9223372036854775807) }}", "randNumeric"),
            ("{{ 'a' | indent(width=100000000000) }}", "indent"),
            ("{{ 'a' | indent(width=9223372036854775807) }}", "indent"),
            ("{{ 'a' | nindent(width=1048576) }}", "nindent"),
            (
                "{% set p = 'x' | indent(width=1000) %}{% set l = range(end=2000) | join(sep='\n') %}{{ l | indent(prefix=p) }}",
                "indent",
            ),
            (
                "{% set a = 'a' | indent(width=1000000) %}{{ a | replace(from=' ', to=a) }}",
                "replace",
            ),
            (
                "{% set a = 'a' | indent(width=1000000) %}{{ a | replace(from='', to='xy') }}",
                "replace",
            ),
            (
                "{% set a = 'a' | indent(width=1000000) %}{{ range(end=5) | join(sep=a) }}",
                "join",
            ),
            (
                "{% set a = 'a' | indent(width=1000000) %}{{ a ~ a | quote }}",
                "quote",
            ),
        ] {
            let e = fails(src, name);
            assert!(e.contains(&limit), "{src}: {e}");
            assert!(e.starts_with("t:"), "{src}: {e}");
        }
        let e = fails("{{ range(end=1000000000000) | length }}", "range");
        assert!(e.contains("100000 from one call"), "{e}");
        // At the limit is fine.
        let at = ok("{{ 'a' | indent(width=1048575) | length }}");
        assert_eq!(at, "1048576");
    }

    #[test]
    fn range_and_get_random_refuse_what_made_tera_loop_or_panic() {
        let e = fails("{{ range(end=5, step_by=0) }}", "range");
        assert!(e.contains("step_by"), "{e}");
        fails("{{ range(start=5, end=1) }}", "range");
        fails("{{ range() }}", "range");
        let e = fails("{{ get_random(start=5, end=5) }}", "get_random");
        assert!(e.contains("greater than"), "{e}");
        fails("{{ get_random(start=1) }}", "get_random");
        let n: i64 = ok("{{ get_random(start=-3, end=-2) }}")
            .parse()
            .expect("a number");
        assert_eq!(n, -3);
    }

    #[test]
    fn replaced_builtins_render_as_teras_own() {
        for src in [
            "{{ range(end=5) | join(sep=',') }}",
            "{{ range(start=2, end=11, step_by=3) | join(sep='-') }}",
            "{{ range(end=0) | length }}",
            "{{ ['a', 1, 2.5, true, Params.nested, Params.map, Params.blank] | join(sep='|') }}",
            "{{ Params.nested | join(sep=';') }}",
            "{{ [1, 2] | join }}",
            "{{ ['a', 'b'] | join(sep='\\n') }}",
            "{{ 'a-b-c' | replace(from='-', to='+') }}",
            "{{ 'abc' | replace(from='', to='.') }}",
            "{{ 'ääx' | replace(from='ä', to='ae') }}",
            "{{ 'aaa' | replace(from='aa', to='b') }}",
        ] {
            let mut plain = tera::Tera::default();
            plain.add_raw_template("t", src).expect("parses");
            let mut context = tera::Context::new();
            context.insert("Params", &params());
            let want = plain.render("t", &context).expect("tera renders it");
            assert_eq!(ok(src), want, "{src}");
        }
    }

    #[test]
    fn date_refuses_timestamps_it_cannot_show_and_is_teras_otherwise() {
        for src in [
            "{{ 9223372036854775807 | date }}",
            "{{ -9223372036854775807 | date(format='%Y') }}",
        ] {
            let e = fails(src, "date");
            assert!(e.contains("outside the dates"), "{src}: {e}");
        }
        assert_eq!(
            ok("{{ 0 | date(format='%Y-%m-%d %H:%M') }}"),
            "1970-01-01 00:00"
        );
        assert_eq!(
            ok("{{ 86400 | date(format='%d.%m.%Y', timezone='Europe/Berlin') }}"),
            "02.01.1970"
        );
        fails("{{ 0 | date(timezone='Nowhere/Never') }}", "timezone");
    }

    #[test]
    fn sprig_emptiness() {
        use serde_json::Value;
        assert!(super::is_empty(&Value::Null));
        assert!(super::is_empty(&json!(0.0)));
        assert!(!super::is_empty(&json!(0.1)));
        assert!(!super::is_empty(&json!(" ")));
    }
}
