//! A cheap look at a tera template's tags, without tera.
//!
//! Owns finding the `{{ }}`, `{% %}` and `{# #}` tags of a template (their byte ranges, skipping string
//! literals and `{% raw %}` bodies) and splitting a tag into tokens. Two modules need this before or
//! beside tera: the locator in `template` (tera's render errors carry no position) and the checks in
//! `guard` (which must run before tera's recursive parser sees a template that would overflow it).
//! Tera remains the parser: nothing here decides whether a template is valid, and everything here
//! is linear in the size of the template and never recurses.

/// What kind of tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagKind {
    /// `{{ ... }}`
    Expr,
    /// `{% ... %}`
    Stmt,
    /// `{# ... #}`
    Comment,
}

/// One tag: `source[start..end]`, delimiters included (an unclosed tag runs to the end).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tag {
    pub start: usize,
    pub end: usize,
    pub kind: TagKind,
}

/// Finds the tags of a template, skipping string literals inside tags and the body of `{% raw %}`
/// blocks (whose `{% raw %}` and `{% endraw %}` tags are returned).
pub(super) fn scan(source: &str) -> Vec<Tag> {
    let bytes = source.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let (kind, close) = match bytes[i + 1] {
            b'{' => (TagKind::Expr, "}}"),
            b'%' => (TagKind::Stmt, "%}"),
            b'#' => (TagKind::Comment, "#}"),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        let mut j = i + 2;
        let mut quote: Option<u8> = None;
        let mut end = bytes.len();
        while j < bytes.len() {
            let b = bytes[j];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if kind != TagKind::Comment && matches!(b, b'"' | b'\'' | b'`') => {
                    quote = Some(b)
                }
                None if bytes[j..].starts_with(close.as_bytes()) => {
                    end = j + 2;
                    break;
                }
                None => {}
            }
            j += 1;
        }
        tags.push(Tag { start, end, kind });
        i = end;
        if kind == TagKind::Stmt && keyword(&source[start..end]) == "raw" {
            // Everything up to `{% endraw %}` is text, not tags.
            let mut k = end;
            loop {
                match source[k..].find("{%") {
                    Some(off) => {
                        let s = k + off;
                        let e = source[s..].find("%}").map_or(source.len(), |x| s + x + 2);
                        if keyword(&source[s..e]) == "endraw" {
                            tags.push(Tag {
                                start: s,
                                end: e,
                                kind: TagKind::Stmt,
                            });
                            i = e;
                            break;
                        }
                        k = s + 2;
                    }
                    None => {
                        i = source.len();
                        break;
                    }
                }
            }
        }
    }
    tags
}

/// The first word of a `{% ... %}` tag.
pub(super) fn keyword(tag: &str) -> &str {
    tag.trim_start_matches("{%")
        .trim_start_matches('-')
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches("%}")
        .trim_end_matches('-')
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// A name: `Params`, `self`, `and`, `upper`.
    Ident,
    /// The inside of a string literal (no escapes in tera).
    Str,
    Number,
    /// An operator or bracket: `(`, `::`, `==`, `|`, `.`.
    Punct,
}

/// One token of a tag; `offset` is its byte offset in the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    pub offset: usize,
}

impl Token<'_> {
    pub fn is(&self, kind: TokenKind, text: &str) -> bool {
        self.kind == kind && self.text == text
    }
}

/// The byte range between a tag's delimiters (and their `-` whitespace markers); `None` for comments
/// and empty tags.
pub(super) fn inner(source: &str, tag: &Tag) -> Option<(usize, usize)> {
    let close = match tag.kind {
        TagKind::Expr => "}}",
        TagKind::Stmt => "%}",
        TagKind::Comment => return None,
    };
    let text = &source[tag.start..tag.end];
    let closed = text.len() >= 4 && text.ends_with(close);
    // Every tag starts with its two-byte opener.
    let mut from = tag.start + 2;
    let mut to = if closed { tag.end - 2 } else { tag.end };
    if from >= to {
        return None;
    }
    if source[from..to].starts_with('-') {
        from += 1;
    }
    if closed && source[from..to].ends_with('-') {
        to -= 1;
    }
    Some((from, to))
}

/// The tokens between a tag's delimiters.
pub(super) fn tokens<'a>(source: &'a str, tag: &Tag) -> Vec<Token<'a>> {
    match inner(source, tag) {
        Some((from, to)) => tokenize(source, from, to),
        None => Vec::new(),
    }
}

fn tokenize(source: &str, from: usize, to: usize) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = from;
    while i < to {
        let b = bytes[i];
        let start = i;
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'"' | b'\'' | b'`' => {
                let close = source[i + 1..to].find(b as char).map_or(to, |k| i + 1 + k);
                out.push(Token {
                    kind: TokenKind::Str,
                    text: &source[i + 1..close],
                    offset: start,
                });
                i = (close + 1).min(to);
                continue;
            }
            b'0'..=b'9' => {
                while i < to
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_'))
                {
                    i += 1;
                }
                TokenKind::Number
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < to && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                TokenKind::Ident
            }
            _ => {
                let two = source.get(i..(i + 2).min(to)).unwrap_or("");
                if matches!(two, "::" | "==" | "!=" | "<=" | ">=") {
                    i += 2;
                } else {
                    // One character, however many bytes it takes.
                    i += source[i..].chars().next().map_or(1, char::len_utf8);
                }
                TokenKind::Punct
            }
        };
        out.push(Token {
            kind,
            text: &source[start..i.min(to)],
            offset: start,
        });
    }
    out
}

/// The variables of the template data a tag reads, as written: `Env.DB_PASSWORD`, `Params.tls.cert`,
/// `Env["X"]`; `env(name="X")` counts as `Env.X`. For error messages that must say what was read
/// without saying what it was.
pub(super) fn reads(tokens: &[Token<'_>]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        let after_dot = i > 0 && tokens[i - 1].is(TokenKind::Punct, ".");
        if t.kind == TokenKind::Ident && matches!(t.text, "Env" | "Params") && !after_dot {
            let mut path = t.text.to_string();
            let mut j = i + 1;
            loop {
                match tokens.get(j..j + 2) {
                    Some([dot, name])
                        if dot.is(TokenKind::Punct, ".")
                            && matches!(name.kind, TokenKind::Ident | TokenKind::Number) =>
                    {
                        path.push('.');
                        path.push_str(name.text);
                        j += 2;
                    }
                    _ => match tokens.get(j..j + 3) {
                        Some([open, key, close])
                            if open.is(TokenKind::Punct, "[")
                                && close.is(TokenKind::Punct, "]")
                                && key.kind == TokenKind::Str =>
                        {
                            path.push_str(&format!("[{:?}]", key.text));
                            j += 3;
                        }
                        _ => break,
                    },
                }
            }
            if !found.contains(&path) {
                found.push(path);
            }
            i = j;
            continue;
        }
        if t.kind == TokenKind::Ident && matches!(t.text, "env" | "get_env") {
            if let Some([open, key, eq, value]) = tokens.get(i + 1..i + 5) {
                if open.is(TokenKind::Punct, "(")
                    && key.is(TokenKind::Ident, "name")
                    && eq.is(TokenKind::Punct, "=")
                    && value.kind == TokenKind::Str
                {
                    let path = format!("Env.{}", value.text);
                    if !found.contains(&path) {
                        found.push(path);
                    }
                }
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<(TokenKind, String)> {
        let tags = scan(src);
        tokens(src, &tags[0])
            .into_iter()
            .map(|t| (t.kind, t.text.to_string()))
            .collect()
    }

    #[test]
    fn tokens_of_a_tag() {
        use TokenKind::*;
        assert_eq!(
            toks("{{- self::f(n=\"a}}\") | x >= 2 -}}"),
            [
                (Ident, "self".into()),
                (Punct, "::".into()),
                (Ident, "f".into()),
                (Punct, "(".into()),
                (Ident, "n".into()),
                (Punct, "=".into()),
                (Str, "a}}".into()),
                (Punct, ")".into()),
                (Punct, "|".into()),
                (Ident, "x".into()),
                (Punct, ">=".into()),
                (Number, "2".into()),
            ]
        );
        assert_eq!(
            toks("{% if é %}"),
            [(Ident, "if".into()), (Punct, "é".into())]
        );
        assert!(toks("{# a b #}").is_empty());
        assert_eq!(toks("{{ 'open"), [(Str, "open".into())]);
    }

    #[test]
    fn reads_names_the_data_a_tag_uses() {
        let src = "{{ Env.A ~ Params.x.y ~ Env[\"B\"] ~ env(name='C') ~ z.Env.D ~ Env.A }}";
        let tags = scan(src);
        assert_eq!(
            reads(&tokens(src, &tags[0])),
            ["Env.A", "Params.x.y", "Env[\"B\"]", "Env.C"]
        );
    }

    #[test]
    fn keyword_ignores_whitespace_control() {
        assert_eq!(keyword("{%- endmacro -%}"), "endmacro");
        assert_eq!(keyword("{%macro-%}"), "macro");
        assert_eq!(keyword("{% if x %}"), "if");
    }

    #[test]
    fn column_counts_characters_not_bytes() {
        assert_eq!(line_col("äö {{", 3 + 2), (1, 4));
        assert_eq!(line_col("ä", 1), (1, 1), "inside a character");
    }
}
