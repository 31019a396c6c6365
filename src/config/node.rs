//! A position-carrying tree of one HCL file, and a reader that turns it into typed values.
//!
//! This module owns the step from `hcl-edit`'s syntax tree to something the rest of `config` can walk
//! without caring about HCL's many spellings: every block, attribute and value keeps the file, line and
//! column it came from, so every later error can point at it. It also owns the rules every block shares:
//! keys match case-insensitively (as mittnite's do), an unknown key is an error with a "did you mean",
//! and an object may be written either as an attribute (`host = { ... }`) or as a block (`host { ... }`),
//! since mittnite's HCL1 accepts both. What a block *means* lives in the modules that read it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{BlockLabel, Structure};
use hcl_edit::Span;

use super::duration::{duration_from_secs, parse_duration};
use super::error::{ConfigError, Errors};

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value as written in HCL, literal only: gantry's config has no expressions or interpolation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Spanned>),
    Object(Vec<(String, Spanned)>),
}

impl Value {
    /// What kind of value this is, in the words an error message uses.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }

    /// The value as JSON, the shape templates and probes consume.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    serde_json::Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => items.iter().map(|v| v.value.to_json()).collect(),
            Value::Object(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub value: Value,
    pub pos: Pos,
}

/// One `key = value` line.
#[derive(Debug, Clone)]
pub struct Attr {
    pub key: String,
    pub value: Spanned,
    pub pos: Pos,
}

/// One block: `kind "label" { ... }`.
#[derive(Debug, Clone)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub attrs: Vec<Attr>,
    pub blocks: Vec<Block>,
    pub pos: Pos,
}

impl Block {
    /// `job "web"` — how a block is named in error messages.
    pub fn title(&self) -> String {
        match self.labels.first() {
            Some(label) => format!("{} {:?}", self.kind, label),
            None => self.kind.clone(),
        }
    }
}

/// Maps byte offsets to 1-based line and column (in characters).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn pos(&self, file: &Arc<PathBuf>, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Pos {
            file: Arc::clone(file),
            line,
            col,
        }
    }
}

/// Parses one HCL file into its top-level body. Syntax errors and unsupported expressions go to
/// `errors`; what could be read is returned either way.
pub fn parse_file(path: &Path, text: &str, errors: &mut Errors) -> Block {
    let file = Arc::new(path.to_path_buf());
    let index = LineIndex::new(text);
    let top = Pos {
        file: Arc::clone(&file),
        line: 1,
        col: 1,
    };
    let mut root = Block {
        kind: String::new(),
        labels: Vec::new(),
        attrs: Vec::new(),
        blocks: Vec::new(),
        pos: top,
    };
    match hcl_edit::parser::parse_body(text) {
        Ok(body) => {
            let conv = Converter {
                file: &file,
                index: &index,
            };
            conv.body(&body, &mut root, errors);
        }
        Err(err) => {
            let loc = err.location();
            errors.push(ConfigError::at(
                Pos {
                    file,
                    line: loc.line(),
                    col: loc.column(),
                },
                format!("HCL syntax error: {}", err.message()),
            ));
        }
    }
    root
}

struct Converter<'a> {
    file: &'a Arc<PathBuf>,
    index: &'a LineIndex<'a>,
}

impl Converter<'_> {
    fn pos(&self, span: Option<std::ops::Range<usize>>) -> Pos {
        self.index.pos(self.file, span.map_or(0, |r| r.start))
    }

    fn body(&self, body: &hcl_edit::structure::Body, into: &mut Block, errors: &mut Errors) {
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let pos = self.pos(attr.key.span());
                    if let Some(value) = self.expr(&attr.value, errors) {
                        into.attrs.push(Attr {
                            key: attr.key.value().to_string(),
                            value,
                            pos,
                        });
                    }
                }
                Structure::Block(block) => {
                    let mut child = Block {
                        kind: block.ident.value().to_string(),
                        labels: block
                            .labels
                            .iter()
                            .map(|l| match l {
                                BlockLabel::Ident(i) => i.value().to_string(),
                                BlockLabel::String(s) => s.value().to_string(),
                            })
                            .collect(),
                        attrs: Vec::new(),
                        blocks: Vec::new(),
                        pos: self.pos(block.ident.span()),
                    };
                    self.body(&block.body, &mut child, errors);
                    into.blocks.push(child);
                }
            }
        }
    }

    fn expr(&self, expr: &Expression, errors: &mut Errors) -> Option<Spanned> {
        let pos = self.pos(expr.span());
        let value = match expr {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => match n.value().as_f64() {
                Some(f) => Value::Number(f),
                None => {
                    errors.push(ConfigError::at(pos, "number out of range"));
                    return None;
                }
            },
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Array(items) => Value::Array(
                items
                    .iter()
                    .filter_map(|item| self.expr(item, errors))
                    .collect(),
            ),
            Expression::Object(obj) => {
                let mut entries = Vec::new();
                for (key, value) in obj.iter() {
                    let key = match key {
                        ObjectKey::Ident(i) => i.value().to_string(),
                        ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                        ObjectKey::Expression(other) => {
                            errors.push(ConfigError::at(
                                self.pos(other.span()),
                                "object keys must be names or plain strings",
                            ));
                            continue;
                        }
                    };
                    if let Some(v) = self.expr(value.expr(), errors) {
                        entries.push((key, v));
                    }
                }
                Value::Object(entries)
            }
            Expression::Parenthesis(inner) => return self.expr(inner.inner(), errors),
            Expression::UnaryOp(op)
                if matches!(op.operator.value(), hcl_edit::expr::UnaryOperator::Neg) =>
            {
                match self.expr(&op.expr, errors)?.value {
                    Value::Number(n) => Value::Number(-n),
                    other => {
                        errors.push(ConfigError::at(
                            pos,
                            format!("cannot negate {}", other.kind()),
                        ));
                        return None;
                    }
                }
            }
            Expression::Variable(v) if v.value().as_str() == "true" => Value::Bool(true),
            Expression::Variable(v) if v.value().as_str() == "false" => Value::Bool(false),
            Expression::Variable(v) => {
                // HCL1 (mittnite) allows bare words in a few places; treat them as strings.
                Value::String(v.value().to_string())
            }
            // A heredoc without interpolation is plain text: the natural way to write a multi-line
            // `content` template (tera's `{{ }}` and `{% %}` are not HCL interpolation).
            Expression::HeredocTemplate(h)
                if h.template.iter().all(|e| e.as_literal().is_some()) =>
            {
                Value::String(
                    h.template
                        .iter()
                        .filter_map(|e| e.as_literal().map(|l| l.as_str()))
                        .collect(),
                )
            }
            Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
                errors.push(ConfigError::at(
                    pos,
                    "string interpolation (${...} or %{...}) is not supported in gantry's config; \
                     use \"ENV:NAME\" values or a template file",
                ));
                return None;
            }
            _ => {
                errors.push(ConfigError::at(
                    pos,
                    "expressions are not supported in gantry's config; write a literal value",
                ));
                return None;
            }
        };
        Some(Spanned { value, pos })
    }
}

/// Reads the attributes and nested blocks of one block, tracking which keys were used so that
/// `finish` can report the rest as unknown. Key lookups are case-insensitive.
pub struct Reader<'a> {
    block: &'a Block,
    errors: &'a mut Errors,
    known_attrs: Vec<&'static str>,
    known_blocks: Vec<&'static str>,
    used_attrs: Vec<bool>,
    used_blocks: Vec<bool>,
}

impl<'a> Reader<'a> {
    pub fn new(block: &'a Block, errors: &'a mut Errors) -> Self {
        // Duplicate attributes are an error HCL2 would raise; name both places.
        for (i, a) in block.attrs.iter().enumerate() {
            if let Some(first) = block.attrs[..i]
                .iter()
                .find(|b| b.key.eq_ignore_ascii_case(&a.key))
            {
                errors.push(ConfigError::at(
                    a.pos.clone(),
                    format!(
                        "{}: attribute {:?} is set twice (first at line {})",
                        block.title(),
                        a.key,
                        first.pos.line
                    ),
                ));
            }
        }
        Reader {
            block,
            errors,
            known_attrs: Vec::new(),
            known_blocks: Vec::new(),
            used_attrs: vec![false; block.attrs.len()],
            used_blocks: vec![false; block.blocks.len()],
        }
    }

    pub fn block(&self) -> &'a Block {
        self.block
    }

    pub fn errors(&mut self) -> &mut Errors {
        self.errors
    }

    /// Records an error about `attr` (or the block itself) of this block.
    pub fn error(&mut self, pos: Pos, attr: &str, message: impl fmt::Display) {
        let title = self.block.title();
        self.errors.push(ConfigError::at(
            pos,
            format!("{title}: attribute {attr:?}: {message}"),
        ));
    }

    /// Which of two names to read for an attribute that mittnite also reads under an older,
    /// deprecated name (`max_attempts` for `maxAttempts`): `old` alone is read, with one warning
    /// naming `new`; both at once is an error naming both (and `new` is read); otherwise `new`.
    pub fn renamed(&mut self, new: &'static str, old: &'static str) -> &'static str {
        let find = |key: &str| {
            self.block
                .attrs
                .iter()
                .position(|a| a.key.eq_ignore_ascii_case(key))
        };
        match (find(new), find(old)) {
            (_, None) => new,
            (None, Some(i)) => {
                let a = &self.block.attrs[i];
                self.errors.warn(ConfigError::at(
                    a.pos.clone(),
                    format!(
                        "{}: attribute {:?} is deprecated (mittnite's old name); read as {new:?}, \
                         which is the name to use",
                        self.block.title(),
                        a.key
                    ),
                ));
                old
            }
            (Some(j), Some(i)) => {
                // Reported here, so not again as unknown.
                self.used_attrs[i] = true;
                let (a, b) = (&self.block.attrs[i], &self.block.attrs[j]);
                self.errors.push(ConfigError::at(
                    a.pos.clone(),
                    format!(
                        "{}: both {:?} (mittnite's deprecated name) and {:?} (line {}) are set; \
                         keep only {new:?}",
                        self.block.title(),
                        a.key,
                        b.key,
                        b.pos.line
                    ),
                ));
                new
            }
        }
    }

    /// The raw attribute value for `key`, marking it used.
    pub fn value(&mut self, key: &'static str) -> Option<&'a Spanned> {
        self.known_attrs.push(key);
        let block = self.block;
        let i = block
            .attrs
            .iter()
            .position(|a| a.key.eq_ignore_ascii_case(key))?;
        self.used_attrs[i] = true;
        Some(&block.attrs[i].value)
    }

    /// A string, or a number or bool written for one (`port = 3306`, `user = 1000`), as HCL1 reads
    /// them: for values that are text to gantry but numbers to the people who write them. Where only
    /// text makes sense (a command, a path), use [`Reader::text`].
    pub fn string(&mut self, key: &'static str) -> Option<String> {
        let v = self.value(key)?;
        match &v.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(Value::Number(*n).to_json().to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                let msg = format!("expected a string, found {}", other.kind());
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    /// A string and nothing else — not a number, a bool or a list — without NUL bytes (which no
    /// command, argument, path or environment entry can hold).
    pub fn text(&mut self, key: &'static str) -> Option<String> {
        let v = self.value(key)?;
        match &v.value {
            Value::String(s) => self.checked_text(s, &v.pos, key),
            other => {
                let msg = format!(
                    "expected a string, found {}{}",
                    describe_kind(other),
                    quote_hint(other)
                );
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    fn checked_text(&mut self, s: &str, pos: &Pos, key: &str) -> Option<String> {
        if s.contains('\0') {
            self.error(
                pos.clone(),
                key,
                "must not contain a NUL byte (\\0 or \\u0000)",
            );
            return None;
        }
        Some(s.to_string())
    }

    /// `true` or `false`, unquoted.
    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let v = self.value(key)?;
        match &v.value {
            Value::Bool(b) => Some(*b),
            other => {
                let hint = match other {
                    Value::String(s)
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        format!(" (write {} without quotes)", s.to_ascii_lowercase())
                    }
                    _ => String::new(),
                };
                let msg = format!(
                    "expected true or false, found {}{hint}",
                    describe_kind(other)
                );
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    /// A whole number, unquoted.
    pub fn int(&mut self, key: &'static str) -> Option<i64> {
        let v = self.value(key)?;
        match &v.value {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(*n as i64),
            other => {
                let hint = match other {
                    Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                        format!(" (write {} without quotes)", s.trim())
                    }
                    _ => String::new(),
                };
                let msg = format!("expected a whole number, found {}{hint}", describe(other));
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    /// A list of strings, `["a", "b"]`: a lone string, a number or a bool (in the list or instead of
    /// it) is a type error, and so is a NUL byte in an element. `None` if any element is wrong.
    pub fn string_list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let v = self.value(key)?;
        match &v.value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match &item.value {
                        Value::String(s) => match self.checked_text(s, &item.pos, key) {
                            Some(s) => out.push(s),
                            None => ok = false,
                        },
                        other => {
                            let msg = format!(
                                "expected a list of strings, but an element is {}{}",
                                describe_kind(other),
                                quote_hint(other)
                            );
                            self.error(item.pos.clone(), key, msg);
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            other => {
                let hint = match other {
                    Value::String(s) => format!(" (write [{s:?}] for a list of one)"),
                    _ => String::new(),
                };
                let msg = format!(
                    "expected a list of strings, found {}{hint}",
                    describe_kind(other)
                );
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    /// A duration such as `"30s"`, `"1m30s"`, `"250ms"`; a bare number means seconds.
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let v = self.value(key)?;
        let parsed = match &v.value {
            Value::String(s) => parse_duration(s),
            Value::Number(n) => duration_from_secs(*n),
            other => Err(format!("expected a duration, found {}", other.kind())),
        };
        match parsed {
            Ok(d) => Some(d),
            Err(msg) => {
                self.error(v.pos.clone(), key, msg);
                None
            }
        }
    }

    /// A signal as a number (mittnite) or a name (`"HUP"`, `"SIGHUP"`).
    pub fn signal(&mut self, key: &'static str) -> Option<i32> {
        let v = self.value(key)?;
        let text = match &v.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                let msg = format!("expected a signal name or number, found {}", other.kind());
                self.error(v.pos.clone(), key, msg);
                return None;
            }
        };
        match crate::signals::parse(&text) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(v.pos.clone(), key, e);
                None
            }
        }
    }

    /// An object written as an attribute (`params = { ... }`) or as a block (`params { ... }`).
    pub fn object(&mut self, key: &'static str) -> Option<Spanned> {
        if let Some(v) = self.value(key) {
            return match &v.value {
                Value::Object(_) => Some(v.clone()),
                other => {
                    let msg = format!("expected an object {{ ... }}, found {}", other.kind());
                    self.error(v.pos.clone(), key, msg);
                    None
                }
            };
        }
        let blocks = self.blocks(key);
        let b = blocks.first()?;
        Some(Spanned {
            value: block_to_object(b),
            pos: b.pos.clone(),
        })
    }

    /// Every nested block named `kind`, marking them used. Objects written as attributes
    /// (`preCommand = { command = "x" }`) are accepted too, as HCL1 allows.
    pub fn blocks(&mut self, kind: &'static str) -> Vec<Block> {
        self.known_blocks.push(kind);
        let mut out = Vec::new();
        for (i, b) in self.block.blocks.iter().enumerate() {
            if b.kind.eq_ignore_ascii_case(kind) {
                self.used_blocks[i] = true;
                out.push(b.clone());
            }
        }
        if out.is_empty() {
            self.known_attrs.push(kind);
            for (i, a) in self.block.attrs.iter().enumerate() {
                if a.key.eq_ignore_ascii_case(kind) {
                    if let Value::Object(entries) = &a.value.value {
                        self.used_attrs[i] = true;
                        out.push(object_to_block(kind, entries, &a.pos));
                    }
                }
            }
        }
        out
    }

    /// At most one nested block named `kind`; a second one is an error.
    pub fn single_block(&mut self, kind: &'static str) -> Option<Block> {
        let mut blocks = self.blocks(kind).into_iter();
        let first = blocks.next()?;
        for extra in blocks {
            let title = self.block.title();
            self.errors.push(ConfigError::at(
                extra.pos.clone(),
                format!(
                    "{title}: only one {kind:?} block is allowed (first at line {})",
                    first.pos.line
                ),
            ));
        }
        Some(first)
    }

    /// Reports every attribute and block that no accessor asked for, with a suggestion.
    pub fn finish(self) {
        let title = self.block.title();
        for (a, used) in self.block.attrs.iter().zip(&self.used_attrs) {
            if !used {
                let hint = suggest(&a.key, &self.known_attrs);
                self.errors.push(
                    ConfigError::at(
                        a.pos.clone(),
                        format!("{title}: unknown attribute {:?}", a.key),
                    )
                    .with_hint(hint),
                );
            }
        }
        for (b, used) in self.block.blocks.iter().zip(&self.used_blocks) {
            if !used {
                let hint = suggest(&b.kind, &self.known_blocks);
                let what = if title.is_empty() {
                    format!("unknown block {:?}", b.kind)
                } else {
                    format!("{title}: unknown block {:?}", b.kind)
                };
                self.errors
                    .push(ConfigError::at(b.pos.clone(), what).with_hint(hint));
            }
        }
    }
}

/// "a number (5)", "a string", "a list": what was found, for a type error.
fn describe_kind(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("a number ({n})"),
        Value::Bool(b) => format!("a bool ({b})"),
        other => other.kind().to_string(),
    }
}

/// For a number or bool where text is wanted: how to write it as text, if that is what was meant.
fn quote_hint(v: &Value) -> String {
    match v {
        Value::Number(n) => format!(" (write \"{n}\" if you mean the text)"),
        Value::Bool(b) => format!(" (write \"{b}\" if you mean the text)"),
        _ => String::new(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => other.kind().to_string(),
    }
}

fn block_to_object(b: &Block) -> Value {
    let mut entries: Vec<(String, Spanned)> = b
        .attrs
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    for child in &b.blocks {
        entries.push((
            child.kind.clone(),
            Spanned {
                value: block_to_object(child),
                pos: child.pos.clone(),
            },
        ));
    }
    Value::Object(entries)
}

fn object_to_block(kind: &str, entries: &[(String, Spanned)], pos: &Pos) -> Block {
    let mut block = Block {
        kind: kind.to_string(),
        labels: Vec::new(),
        attrs: Vec::new(),
        blocks: Vec::new(),
        pos: pos.clone(),
    };
    for (k, v) in entries {
        block.attrs.push(Attr {
            key: k.clone(),
            value: v.clone(),
            pos: v.pos.clone(),
        });
    }
    block
}

/// "did you mean" for a misspelt key: the closest known name, if it is close.
pub fn suggest(given: &str, known: &[&str]) -> Option<String> {
    let lower = given.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean {k:?}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let mut errors = Errors::default();
        let text = "job \"a\" {\n  command = \"x\"\n}\n";
        let root = parse_file(Path::new("t.hcl"), text, &mut errors);
        assert!(errors.is_empty());
        let job = &root.blocks[0];
        assert_eq!((job.pos.line, job.pos.col), (1, 1));
        assert_eq!((job.attrs[0].pos.line, job.attrs[0].pos.col), (2, 3));
        assert_eq!(job.labels, vec!["a".to_string()]);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("comand", &["command", "args"]),
            Some("did you mean \"command\"?".into())
        );
        assert_eq!(suggest("zzz", &["command", "args"]), None);
    }
}
