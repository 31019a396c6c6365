//! gantry's sprig-like library, called the way Go templates call sprig.
//!
//! Owns the table from sprig's names and argument order (`trimPrefix "v" .x`, `indent 4 .x`, the
//! piped value last) to the implementations in `funcs` (named arguments, `serde_json` values), and
//! the conversion between gotmpl's values and `serde_json`'s. There is one implementation of each
//! function, in `funcs`; this module only adapts its arguments. It does not parse or run templates
//! (`gotemplate` does).
//!
//! The list is the part of sprig v3's `TxtFuncMap` gantry has an implementation of (without `env`,
//! which mittnite removes too: `.Env` is the environment), plus `toYaml`. Go's own builtins (`and`,
//! `or`, `not`, `len`, `index`, `printf`, `eq`, ...) come with the engine; `index` is replaced so
//! that mittnite's `(index .Params.db 0).host` still works (see `docs/templates.md`, "nested params").

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{FuncMap, TemplateError as GoError, Value as GoValue};
use serde_json::{Map, Number, Value};

use super::funcs::{self, Args};

/// The function that reads a field without failing when it is missing (see `gotemplate`).
pub(super) const OPTIONAL_FN: &str = "__gantry_optional";

/// How a sprig call's positional arguments become the named arguments of gantry's implementation.
#[derive(Clone, Copy)]
enum Call {
    /// `name P1 P2 VALUE`: the last argument (the piped one) is the value, the others are `params`.
    Filter(&'static str, &'static [&'static str]),
    /// `name VALUE P1`: the value first (`hasKey $map "k"`).
    FilterValueFirst(&'static str, &'static [&'static str]),
    /// One of tera's builtin filters that returns text: `name P1 VALUE`.
    TeraFilter(&'static str, &'static [&'static str]),
    /// `name P1 P2`: a function with positional arguments.
    Function(&'static str, &'static [&'static str]),
    /// `name A B C`: every argument, as the list `values`.
    Values(&'static str),
    /// `quote A B`: each argument through the filter, joined by spaces.
    EachJoined(&'static str),
    /// sprig's `default DEFAULT VALUE`.
    Default,
    /// sprig's `add A B C`: `funcs`' `add`, folded.
    Add,
    /// sprig's `dict K1 V1 K2 V2`.
    Dict,
    /// sprig's `toString`.
    ToString,
    /// sprig's `splitList SEP S` (what tera's `split` does, as a list rather than tera's text).
    SplitList,
    /// Go's `index`, with mittnite's list-of-maps quirk.
    Index,
}

/// Every function gantry adds to Go templates, by the name templates call it.
const GO_FUNCS: &[(&str, Call)] = &[
    // strings
    ("upper", Call::TeraFilter("upper", &[])),
    ("lower", Call::TeraFilter("lower", &[])),
    ("title", Call::TeraFilter("title", &[])),
    ("trim", Call::TeraFilter("trim", &[])),
    ("splitList", Call::SplitList),
    ("trimPrefix", Call::Filter("trimPrefix", &["prefix"])),
    ("trimSuffix", Call::Filter("trimSuffix", &["suffix"])),
    ("quote", Call::EachJoined("quote")),
    ("squote", Call::EachJoined("squote")),
    ("indent", Call::Filter("indent", &["width"])),
    ("nindent", Call::Filter("nindent", &["width"])),
    ("replace", Call::Filter("replace", &["from", "to"])),
    ("contains", Call::Filter("contains", &["substr"])),
    ("hasPrefix", Call::Filter("hasPrefix", &["prefix"])),
    ("hasSuffix", Call::Filter("hasSuffix", &["suffix"])),
    ("join", Call::Filter("join", &["sep"])),
    ("toString", Call::ToString),
    // defaults and checks
    ("default", Call::Default),
    ("required", Call::Filter("required", &["msg"])),
    ("empty", Call::Filter("empty", &[])),
    ("coalesce", Call::Values("coalesce")),
    ("ternary", Call::Filter("ternary", &["yes", "no"])),
    // encodings and hashes
    ("b64enc", Call::Filter("b64enc", &[])),
    ("b64dec", Call::Filter("b64dec", &[])),
    ("sha256sum", Call::Filter("sha256sum", &[])),
    ("sha1sum", Call::Filter("sha1sum", &[])),
    ("toJson", Call::Filter("toJson", &[])),
    ("fromJson", Call::Filter("fromJson", &[])),
    ("toYaml", Call::Filter("toYaml", &[])),
    // randomness
    ("randAlphaNum", Call::Function("randAlphaNum", &["length"])),
    ("randAlpha", Call::Function("randAlpha", &["length"])),
    ("randNumeric", Call::Function("randNumeric", &["length"])),
    ("uuidv4", Call::Function("uuidv4", &[])),
    // numbers
    ("atoi", Call::Filter("atoi", &[])),
    ("add", Call::Add),
    ("max", Call::Values("max")),
    ("min", Call::Values("min")),
    // lists and maps
    ("list", Call::Values("list")),
    ("dict", Call::Dict),
    ("keys", Call::Filter("keys", &[])),
    ("hasKey", Call::FilterValueFirst("hasKey", &["key"])),
    ("sortAlpha", Call::Filter("sortAlpha", &[])),
    ("index", Call::Index),
];

/// The functions of Go's `text/template` itself.
const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Every function name a Go template may call.
pub(super) fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = GO_BUILTINS.to_vec();
    all.extend(GO_FUNCS.iter().map(|(n, _)| *n));
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether `name` is gantry's (its messages never hold values).
pub(super) fn is_library_name(name: &str) -> bool {
    GO_FUNCS.iter().any(|(n, _)| *n == name)
}

/// The library, ready for `gotmpl::Template::funcs`.
pub(super) fn func_map() -> FuncMap {
    let mut map = FuncMap::new();
    for &(name, call) in GO_FUNCS {
        map.insert(
            name.to_string(),
            Arc::new(move |args: &[GoValue]| invoke(name, call, args)),
        );
    }
    map.insert(
        OPTIONAL_FN.to_string(),
        Arc::new(|args: &[GoValue]| optional(args)),
    );
    map
}

fn invoke(name: &str, call: Call, args: &[GoValue]) -> gotmpl::Result<GoValue> {
    let args: Vec<Value> = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            to_json(a).map_err(|kind| go_error(name, format!("argument {} is {kind}", i + 1)))
        })
        .collect::<Result<_, _>>()?;
    let result = funcs::bounded(name, apply(name, call, &args));
    match result {
        Ok(v) => Ok(to_go(&v)),
        Err(e) => Err(GoError::Exec(message_of(&e))),
    }
}

fn go_error(name: &str, msg: String) -> GoError {
    GoError::Exec(format!("`{name}`: {msg}"))
}

/// The innermost message of a tera error (the library's own words).
fn message_of(e: &tera::Error) -> String {
    let mut inner = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(err) = cur {
        inner = err.to_string();
        cur = err.source();
    }
    inner
}

fn count(name: &str, args: &[Value], wanted: usize) -> tera::Result<()> {
    if args.len() == wanted {
        Ok(())
    } else {
        Err(funcs::fail(
            name,
            format!("takes {wanted} argument(s), got {}", args.len()),
        ))
    }
}

fn named(keys: &[&str], values: &[Value]) -> Args {
    keys.iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn apply(name: &str, call: Call, args: &[Value]) -> funcs::Res {
    match call {
        Call::Filter(f, params) | Call::TeraFilter(f, params) => {
            count(name, args, params.len() + 1)?;
            let (value, rest) = args
                .split_last()
                .ok_or_else(|| funcs::fail(name, "no value"))?;
            let named = named(params, rest);
            match call {
                Call::TeraFilter(..) => funcs::tera_builtin_filter(f, value, &named),
                _ => filter(f)?(value, &named),
            }
        }
        Call::FilterValueFirst(f, params) => {
            count(name, args, params.len() + 1)?;
            let (value, rest) = args
                .split_first()
                .ok_or_else(|| funcs::fail(name, "no value"))?;
            filter(f)?(value, &named(params, rest))
        }
        Call::Function(f, params) => {
            count(name, args, params.len())?;
            function(f)?(&named(params, args))
        }
        Call::Values(f) => {
            let args = Args::from([("values".to_string(), Value::Array(args.to_vec()))]);
            function(f)?(&args)
        }
        Call::EachJoined(f) => {
            let each = filter(f)?;
            let parts = args
                .iter()
                .map(|a| each(a, &Args::new()).map(|v| funcs::rendered(&v)))
                .collect::<tera::Result<Vec<String>>>()?;
            Ok(Value::String(parts.join(" ")))
        }
        Call::Default => match args {
            [fallback] => Ok(fallback.clone()),
            [fallback, given] if funcs::is_empty(given) => Ok(fallback.clone()),
            [_, given] => Ok(given.clone()),
            _ => count(name, args, 2).map(|()| Value::Null),
        },
        Call::Add => {
            let add = filter("add")?;
            let mut sum = Value::from(0);
            for a in args {
                sum = add(&sum, &Args::from([("value".to_string(), a.clone())]))?;
            }
            Ok(sum)
        }
        Call::Dict => {
            if !args.len().is_multiple_of(2) {
                return Err(funcs::fail(
                    name,
                    "takes pairs of a key and a value, got an odd number of arguments",
                ));
            }
            let mut map = Map::new();
            for pair in args.chunks(2) {
                let key = funcs::text(name, "a key", &pair[0])?;
                map.insert(key, pair[1].clone());
            }
            Ok(Value::Object(map))
        }
        Call::ToString => {
            count(name, args, 1)?;
            Ok(Value::String(funcs::rendered(&args[0])))
        }
        Call::Index => index(args),
        Call::SplitList => {
            count(name, args, 2)?;
            let sep = funcs::text(name, "the separator", &args[0])?;
            let s = funcs::text(name, "the value", &args[1])?;
            Ok(Value::Array(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
    }
}

fn filter(name: &str) -> tera::Result<funcs::FilterFn> {
    funcs::filter(name).ok_or_else(|| funcs::fail(name, "is not in gantry's library"))
}

fn function(name: &str) -> tera::Result<funcs::FunctionFn> {
    funcs::function(name).ok_or_else(|| funcs::fail(name, "is not in gantry's library"))
}

/// Go's `index COLLECTION KEY...`, and one addition: `index MAP 0` is the map itself. mittnite reads
/// its config with HCL v1, which turns every nested object into a list holding one map, so mittnite
/// templates write `(index .Params.db 0).host`; gantry's params are plain maps (`.Params.db.host`),
/// and this keeps such templates working unchanged.
fn index(args: &[Value]) -> funcs::Res {
    let Some((first, keys)) = args.split_first() else {
        return Err(funcs::fail("index", "needs a list or map to index"));
    };
    let mut cur = first.clone();
    for key in keys {
        cur = match (&cur, key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
            (Value::Object(_), Value::Number(n)) if n.as_u64() == Some(0) => cur.clone(),
            (Value::Array(items), Value::Number(n)) => {
                let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
                match i.and_then(|i| items.get(i)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(funcs::fail(
                            "index",
                            format!("index out of range (the list has {} items)", items.len()),
                        ))
                    }
                }
            }
            (Value::Null, _) => Value::Null,
            (c, k) => {
                return Err(funcs::fail(
                    "index",
                    format!("cannot index {} with {}", funcs::kind(c), funcs::kind(k)),
                ))
            }
        };
    }
    Ok(cur)
}

/// `__gantry_optional BASE "A" "B"`: `BASE.A.B`, or nil where a map has no such key (instead of the
/// error a missing key is everywhere else).
fn optional(args: &[GoValue]) -> gotmpl::Result<GoValue> {
    let Some((base, path)) = args.split_first() else {
        return Ok(GoValue::Nil);
    };
    let mut cur = base.clone();
    for key in path {
        let GoValue::String(key) = key else {
            return Ok(GoValue::Nil);
        };
        cur = match &cur {
            GoValue::Map(m) => m.get(key.as_ref()).cloned().unwrap_or(GoValue::Nil),
            GoValue::Nil => GoValue::Nil,
            other => {
                return Err(GoError::Exec(format!(
                    "can't evaluate field {key} in type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(cur)
}

/// A gotmpl value as JSON, or what kind of value it is when it has no JSON form.
pub(super) fn to_json(v: &GoValue) -> Result<Value, &'static str> {
    Ok(match v {
        GoValue::Nil => Value::Null,
        GoValue::Bool(b) => Value::Bool(*b),
        GoValue::Int(i) => Value::from(*i),
        GoValue::Uint(u) => Value::from(*u),
        GoValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        GoValue::String(s) => Value::String(s.to_string()),
        GoValue::List(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        GoValue::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.to_string(), to_json(v)?)))
                .collect::<Result<_, &'static str>>()?,
        ),
        _ => return Err("a function"),
    })
}

/// A JSON value as gotmpl's.
pub(super) fn to_go(v: &Value) -> GoValue {
    match v {
        Value::Null => GoValue::Nil,
        Value::Bool(b) => GoValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => GoValue::Int(i),
            (None, Some(u), _) => GoValue::Uint(u),
            (_, _, Some(f)) => GoValue::Float(f),
            _ => GoValue::Nil,
        },
        Value::String(s) => GoValue::String(Arc::from(s.as_str())),
        Value::Array(items) => GoValue::List(items.iter().map(to_go).collect()),
        Value::Object(m) => GoValue::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), to_go(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}
