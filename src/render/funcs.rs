//! The sprig-like template library: filters and functions gantry adds to tera.
//!
//! Owns every filter and function gantry registers on top of tera's builtins, and nothing else (no
//! file access, no knowledge of `file` blocks). Where tera already has a function with the meaning a
//! sprig user expects (`upper`, `lower`, `title`, `trim`, `replace`, `split`, `join`, `first`, `last`,
//! `default`, `int`, `date`, `now`, `unique`), tera's is used as it is; `docs/templates.md` has the full
//! table from sprig's names to these.
//!
//! Names follow sprig (`trimPrefix`, `b64enc`, `randAlphaNum`) so a ported template reads like the
//! original. Tera passes arguments by name only, so every argument has one (`trimPrefix(prefix="v")`).
//!
//! One builtin is replaced: `indent`. Gantry's `indent` accepts everything tera's does (`prefix`,
//! `first`, `blank`, same defaults) and adds `width=N`, which means what sprig's `indent N` means
//! (every line, the first included, gets N spaces). The superset keeps tera templates working and lets
//! sprig ones port with one edit.
//!
//! Every error names the filter or function and says what it got and what it wanted.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use base64::Engine as _;
use rand::Rng as _;
use serde_json::{Map, Number, Value};
use sha1::Digest as _;

type Args = HashMap<String, Value>;
type Res = tera::Result<Value>;

/// Registers the whole library on `tera`. `env` backs the `env()` function: the same snapshot the
/// template sees as `Env`, so a render never mixes two views of the environment.
pub fn register(tera: &mut tera::Tera, env: &BTreeMap<String, String>) {
    tera.register_filter("trimPrefix", trim_prefix);
    tera.register_filter("trimSuffix", trim_suffix);
    tera.register_filter("quote", quote);
    tera.register_filter("squote", squote);
    tera.register_filter("indent", indent);
    tera.register_filter("nindent", nindent);
    tera.register_filter("contains", contains);
    tera.register_filter("hasPrefix", has_prefix);
    tera.register_filter("hasSuffix", has_suffix);

    tera.register_filter("required", required);
    tera.register_filter("empty", empty);
    tera.register_filter("ternary", ternary_filter);
    tera.register_function("ternary", ternary_fn);
    tera.register_function("coalesce", coalesce);

    tera.register_filter("b64enc", b64enc);
    tera.register_filter("b64dec", b64dec);
    tera.register_filter("sha256sum", sha256sum);
    tera.register_filter("sha1sum", sha1sum);
    tera.register_filter("toJson", to_json);
    tera.register_filter("fromJson", from_json);
    tera.register_filter("toYaml", to_yaml);

    tera.register_function("randAlphaNum", rand_alpha_num);
    tera.register_function("randAlpha", rand_alpha);
    tera.register_function("randNumeric", rand_numeric);
    tera.register_function("uuidv4", uuidv4);

    tera.register_filter("atoi", atoi);
    tera.register_filter("add", add);
    tera.register_function("max", max);
    tera.register_function("min", min);

    tera.register_function("list", list);
    tera.register_function("dict", dict);
    tera.register_filter("keys", keys);
    tera.register_filter("hasKey", has_key);
    tera.register_filter("sortAlpha", sort_alpha);

    let env = env.clone();
    tera.register_function("env", move |args: &Args| env_lookup(&env, args));
}

/// Every filter and function a template can call: tera's builtins and this module's.
const KNOWN: &[&str] = &[
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

fn fail(name: &str, msg: impl Display) -> tera::Error {
    tera::Error::msg(format!("`{name}`: {msg}"))
}

/// What a value is, in the words a template author uses.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Strings as they are; numbers and booleans as they print. Lists, maps and null are refused: turning
/// them into text silently is how `map[...]` ends up in a config file.
fn text(name: &str, what: &str, v: &Value) -> tera::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(fail(
            name,
            format!("{what} must be a string, got {} `{other}`", kind(other)),
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
                    "argument `{key}` must be a whole number >= 0, got {} `{v}`",
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
            format!(
                "argument `{key}` must be true or false, got {} `{v}`",
                kind(v)
            ),
        )),
    }
}

fn list_arg<'a>(name: &str, args: &'a Args, key: &str) -> tera::Result<&'a Vec<Value>> {
    match arg(name, args, key, "a list such as [1, 2]")? {
        Value::Array(items) => Ok(items),
        v => Err(fail(
            name,
            format!("argument `{key}` must be a list, got {} `{v}`", kind(v)),
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

fn indent_lines(s: &str, prefix: &str, first: bool, blank: bool) -> String {
    let mut out = String::with_capacity(s.len() + prefix.len() * (s.lines().count() + 1));
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
    Ok(Value::String(indent_lines(&s, &prefix, first, blank)))
}

/// Sprig's `nindent N`: a newline, then every line indented by N spaces.
fn nindent(v: &Value, args: &Args) -> Res {
    let s = text("nindent", "the value", v)?;
    let width = usize_arg("nindent", args, "width")?;
    Ok(Value::String(format!(
        "\n{}",
        indent_lines(&s, &" ".repeat(width), true, true)
    )))
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
            format!(
                "the condition must be true or false, got {} `{cond}`",
                kind(cond)
            ),
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
        .map_err(|e| fail("b64dec", format!("not valid base64: {e}")))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| fail("b64dec", "the decoded bytes are not UTF-8 text"))
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

// ---- randomness ----------------------------------------------------------------------------------

const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";

fn random_from(name: &str, args: &Args, alphabet: &[&[u8]]) -> Res {
    let len = usize_arg(name, args, "length")?;
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
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| fail("atoi", format!("{s:?} is not a whole number"))),
        other => Err(fail(
            "atoi",
            format!("expects a string of digits, got {} `{other}`", kind(other)),
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
            return Err(fail(name, format!("{what} {s:?} is not a number")));
        }
        other => {
            return Err(fail(
                name,
                format!("{what} must be a number, got {} `{other}`", kind(other)),
            ))
        }
    };
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Ok(Num::Int(i)),
        (None, Some(f)) => Ok(Num::Float(f)),
        _ => Err(fail(name, format!("{what} {n} is out of range"))),
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

// ---- lists and maps ------------------------------------------------------------------------------

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
            format!("the value must be a map, got {} `{other}`", kind(other)),
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
            format!("the value must be a list, got {} `{v}`", kind(v)),
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
    fn sprig_emptiness() {
        use serde_json::Value;
        assert!(super::is_empty(&Value::Null));
        assert!(super::is_empty(&json!(0.0)));
        assert!(!super::is_empty(&json!(0.1)));
        assert!(!super::is_empty(&json!(" ")));
    }
}
