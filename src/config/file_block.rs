//! The `file` block: its plain data ([`FileSpec`]) and its reader. Rendering and writing the file
//! belong to `render`, which reads this data and nothing of HCL.
//!
//! Owns the `file` block's schema: mittnite's `from`, `params` and `overwrite`, and gantry's additions
//! `content`, `engine`, `mode`, `user` and `group`. Every mistake goes to the loader's error list with the file,
//! line and column of the attribute; the block itself is never half-accepted.
//!
//! ```hcl
//! file "/etc/nginx/nginx.conf" {
//!   from      = "templates/nginx.conf.tera"   # or: content = "..."
//!   params    = { port = 8080, upstreams = ["a:80", "b:80"] }
//!   overwrite = true                          # false: keep an existing file
//!   engine    = "tera"                        # gantry: "go" or "tera"; absent: chosen by `render`
//!   mode      = "0644"                        # gantry: permission bits, octal, as a string
//!   user      = "www-data"                    # gantry: name or number, applied as root
//!   group     = "www-data"
//! }
//! ```

use std::path::PathBuf;

use std::fmt;

use super::node::{Block, Reader, Value};
use super::{ConfigError, Errors};

/// Where a `file` block's template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `from = "path"`: a template file, relative to the working directory.
    From(PathBuf),
    /// `content = "..."`: the template inline in the config.
    Content(String),
}

/// Where a `file` block was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The config file that holds the block.
    pub file: PathBuf,
    /// 1-based line of the block's header.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.as_os_str().is_empty() {
            f.write_str("<no config file>")
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// The template language of a `file` block's template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Go's `text/template` with sprig's functions, as mittnite renders.
    Go,
    /// Tera, gantry's native template language.
    Tera,
}

impl Engine {
    /// The name written in `engine = "..."`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Go => "go",
            Engine::Tera => "tera",
        }
    }
}

/// One `file "TARGET" { ... }` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// Where the rendered file goes.
    pub target: PathBuf,
    pub source: Source,
    /// The block's `params`, seen by the template as `Params` (null means an empty map).
    pub params: serde_json::Value,
    /// `false`: leave an existing target alone (and do not render it). Default `true`.
    pub overwrite: bool,
    /// `engine = "go" | "tera"`. `None`: `render` chooses from the template's text (see
    /// `docs/templates.md`).
    pub engine: Option<Engine>,
    /// Permission bits to set (e.g. `0o640`). `None`: an existing file keeps its mode, a new one gets
    /// `0666` less the umask.
    pub mode: Option<u32>,
    /// Owner, as a name or a number; applied only when gantry runs as root.
    pub user: Option<String>,
    /// Group, as a name or a number; applied only when gantry runs as root.
    pub group: Option<String>,
    pub origin: Origin,
}

impl FileSpec {
    /// A spec with mittnite's defaults: no params, `overwrite = true`, mode and owner left alone.
    pub fn new(target: impl Into<PathBuf>, source: Source) -> Self {
        FileSpec {
            target: target.into(),
            source,
            params: serde_json::Value::Null,
            overwrite: true,
            engine: None,
            mode: None,
            user: None,
            group: None,
            origin: Origin::default(),
        }
    }
}

/// Parses a `mode` as written in a config: octal, with or without a leading `0` or `0o` (`"0640"`,
/// `"640"`, `"0o640"`). Only permission bits (and setuid/setgid/sticky) are accepted.
pub fn parse_mode(given: &str) -> Result<u32, String> {
    let s = given.trim();
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!(
            "mode {given:?} is not an octal number such as \"0640\""
        ));
    }
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("mode {given:?} is larger than 07777")),
    }
}

/// Reads one `file` block; `None` (with the reasons in `errors`) if it is not valid.
pub fn file_from_block(block: &Block, errors: &mut Errors) -> Option<FileSpec> {
    let mut r = Reader::new(block, errors);
    let target = match block.labels.as_slice() {
        [t] if !t.trim().is_empty() => Some(PathBuf::from(t)),
        _ => {
            r.errors().push(ConfigError::at(
                block.pos.clone(),
                "file block needs exactly one target path, as in file \"/etc/app.conf\" { from = \"app.conf.tera\" }",
            ));
            None
        }
    };

    let from_pos = r.value("from").map(|v| v.pos.clone());
    let from = r.string("from");
    let content_pos = r.value("content").map(|v| v.pos.clone());
    let content = r.string("content");
    let source = match (from, content) {
        (Some(f), None) if f.trim().is_empty() => {
            if let Some(pos) = from_pos {
                r.error(
                    pos,
                    "from",
                    "must not be empty (the path of a template file)",
                );
            }
            None
        }
        (Some(f), None) => Some(Source::From(PathBuf::from(f))),
        (None, Some(c)) => Some(Source::Content(c)),
        (Some(_), Some(_)) => {
            if let Some(pos) = content_pos {
                r.error(
                    pos,
                    "content",
                    "give either \"from\" (a template file) or \"content\" (the template inline), not both",
                );
            }
            None
        }
        (None, None) => {
            // A wrongly typed `from`/`content` was already reported; only say "missing" if it is.
            if from_pos.is_none() && content_pos.is_none() {
                let title = block.title();
                r.errors().push(ConfigError::at(
                    block.pos.clone(),
                    format!("{title}: attribute \"from\" is required (the template file), or \"content\" with the template inline"),
                ));
            }
            None
        }
    };

    let params = r.object("params").map(|v| v.value.to_json());
    let overwrite = r.bool("overwrite").unwrap_or(true);
    let engine = read_engine(&mut r);
    let mode = read_mode(&mut r);
    let user = r.string("user");
    let group = r.string("group");
    r.finish();
    let mode = mode.ok()?;
    let engine = engine.ok()?;

    Some(FileSpec {
        target: target?,
        source: source?,
        params: params.unwrap_or(serde_json::Value::Null),
        overwrite,
        engine,
        mode,
        user,
        group,
        origin: Origin {
            file: block.pos.file.as_ref().clone(),
            line: block.pos.line,
        },
    })
}

/// `engine = "go"` or `engine = "tera"`.
fn read_engine(r: &mut Reader<'_>) -> Result<Option<Engine>, ()> {
    let Some(pos) = r.value("engine").map(|v| v.pos.clone()) else {
        return Ok(None);
    };
    match r.string("engine").as_deref() {
        Some("go") => Ok(Some(Engine::Go)),
        Some("tera") => Ok(Some(Engine::Tera)),
        Some(other) => {
            let msg = format!(
                "expected \"go\" (Go text/template, as mittnite) or \"tera\", found {other:?}"
            );
            r.error(pos, "engine", msg);
            Err(())
        }
        // Not a string: the reader has reported it.
        None => Err(()),
    }
}

/// `mode = "0640"`. Numbers are refused: HCL reads `0640` as six hundred and forty, and guessing
/// whether the author meant octal is how files end up world-writable.
fn read_mode(r: &mut Reader<'_>) -> Result<Option<u32>, ()> {
    let Some(v) = r.value("mode") else {
        return Ok(None);
    };
    let pos = v.pos.clone();
    match &v.value {
        Value::String(s) => parse_mode(s).map(Some).map_err(|msg| {
            r.error(pos, "mode", msg);
        }),
        Value::Number(n) => {
            r.error(
                pos,
                "mode",
                format!("write the mode as an octal string, e.g. mode = \"0{n}\""),
            );
            Err(())
        }
        other => {
            let msg = format!(
                "expected an octal string such as \"0640\", found {}",
                other.kind()
            );
            r.error(pos, "mode", msg);
            Err(())
        }
    }
}

/// One line for `gantry check`'s plan.
pub fn describe(spec: &FileSpec) -> String {
    let source = match &spec.source {
        Source::From(p) => format!("from {}", p.display()),
        Source::Content(_) => "inline content".to_string(),
    };
    let mut extras = Vec::new();
    if !spec.overwrite {
        extras.push("kept if it exists".to_string());
    }
    if let Some(engine) = spec.engine {
        extras.push(format!("engine {}", engine.name()));
    }
    if let Some(m) = spec.mode {
        extras.push(format!("mode {m:04o}"));
    }
    if let Some(u) = &spec.user {
        extras.push(format!("user {u}"));
    }
    if let Some(g) = &spec.group {
        extras.push(format!("group {g}"));
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!(" ({})", extras.join(", "))
    };
    format!("{} {source}{extras}", spec.target.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse_file;
    use serde_json::json;
    use std::path::Path;

    fn read(text: &str) -> Result<Vec<FileSpec>, String> {
        let mut errors = Errors::default();
        let root = parse_file(Path::new("files.hcl"), text, &mut errors);
        let specs: Vec<FileSpec> = root
            .blocks
            .iter()
            .filter_map(|b| file_from_block(b, &mut errors))
            .collect();
        if errors.is_empty() {
            Ok(specs)
        } else {
            Err(errors.to_string())
        }
    }

    /// The `file` blocks of mittnite's README, unchanged.
    #[test]
    fn mittnite_blocks_read_unchanged() {
        let specs = read(
            r#"
file "/path/to/file.txt" {
  from = "examples/test.d/test.txt.tpl"
  params = {
    foo = "bar"
  }
}

file "/path/to/second_file.txt" {
  from = "examples/test.d/second_test.txt.tpl"
  overwrite = false
  params = {
    foo = "bar"
  }
}

file "/etc/conf.d/test.txt" {
  from = "examples/test.d/test.txt.tpl"

  params = {
    foo = "bar"
  }
}
"#,
        )
        .expect("valid");
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].target, PathBuf::from("/path/to/file.txt"));
        assert_eq!(
            specs[0].source,
            Source::From(PathBuf::from("examples/test.d/test.txt.tpl"))
        );
        assert_eq!(specs[0].params, json!({"foo": "bar"}));
        assert!(specs[0].overwrite);
        assert!(!specs[1].overwrite);
        assert_eq!(specs[1].origin.line, 9);
        assert_eq!(specs[1].origin.file, PathBuf::from("files.hcl"));
    }

    #[test]
    fn gantry_extensions() {
        let specs = read(
            r#"
file "out/app.yaml" {
  content = "name: {{ Params.name }}"
  mode = "0640"
  user = "www-data"
  group = 33
  params {
    name = "web"
    nested = { list = [1, 2], deep = { x = true } }
  }
}
"#,
        )
        .expect("valid");
        let s = &specs[0];
        assert_eq!(s.source, Source::Content("name: {{ Params.name }}".into()));
        assert_eq!(s.mode, Some(0o640));
        assert_eq!(s.user.as_deref(), Some("www-data"));
        assert_eq!(s.group.as_deref(), Some("33"));
        assert_eq!(
            s.params,
            json!({"name": "web", "nested": {"list": [1, 2], "deep": {"x": true}}})
        );
    }

    #[test]
    fn content_may_be_a_heredoc() {
        let specs = read(
            "file \"/x\" {\n  content = <<-EOT\n    a = {{ Params.a }}\n    {% if Params.b %}b{% endif %}\n  EOT\n}\n",
        )
        .expect("valid");
        assert_eq!(
            specs[0].source,
            Source::Content("a = {{ Params.a }}\n{% if Params.b %}b{% endif %}\n".into())
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_position() {
        let err = read(
            r#"file "/a" {
  from = "x"
  content = "y"
}
file "/b" {
  mode = 640
  overwrite = "maybe"
}
file "/c" {
  from = "t"
  mode = "0999"
  frm = "x"
}
file {
  from = "t"
}
file "/d" {
  from = ["t"]
}
"#,
        )
        .expect_err("invalid");
        assert!(
            err.contains("files.hcl:3:13: file \"/a\": attribute \"content\": give either"),
            "{err}"
        );
        assert!(
            err.contains("files.hcl:5:1: file \"/b\": attribute \"from\" is required"),
            "{err}"
        );
        assert!(err.contains("files.hcl:6:10: file \"/b\": attribute \"mode\": write the mode as an octal string, e.g. mode = \"0640\""), "{err}");
        assert!(
            err.contains("files.hcl:7:15: file \"/b\": attribute \"overwrite\""),
            "{err}"
        );
        assert!(err.contains("files.hcl:11:10: file \"/c\": attribute \"mode\": mode \"0999\" is not an octal number"), "{err}");
        assert!(
            err.contains(
                "files.hcl:12:3: file \"/c\": unknown attribute \"frm\" (did you mean \"from\"?)"
            ),
            "{err}"
        );
        assert!(
            err.contains("files.hcl:14:1: file block needs exactly one target path"),
            "{err}"
        );
        assert!(
            err.contains(
                "files.hcl:18:10: file \"/d\": attribute \"from\": expected a string, found a list"
            ),
            "{err}"
        );
        assert!(
            !err.contains("file \"/d\": attribute \"from\" is required"),
            "{err}"
        );
    }

    #[test]
    fn engine_is_go_or_tera_or_absent() {
        let specs = read(
            "file \"/a\" {\n from = \"a\"\n engine = \"go\"\n}\nfile \"/b\" {\n from = \"b\"\n engine = \"tera\"\n}\nfile \"/c\" {\n from = \"c\"\n}\n",
        )
        .expect("valid");
        assert_eq!(specs[0].engine, Some(Engine::Go));
        assert_eq!(specs[1].engine, Some(Engine::Tera));
        assert_eq!(specs[2].engine, None);
        assert_eq!(describe(&specs[0]), "/a from a (engine go)");

        let err = read("file \"/a\" {\n from = \"a\"\n engine = \"jinja\"\n}\nfile \"/b\" {\n from = \"b\"\n engine = [\"go\"]\n}\n")
            .expect_err("invalid");
        assert!(
            err.contains("files.hcl:3:11: file \"/a\": attribute \"engine\": expected \"go\""),
            "{err}"
        );
        assert!(
            err.contains("files.hcl:7:11: file \"/b\": attribute \"engine\": expected a string"),
            "{err}"
        );
    }

    #[test]
    fn describe_names_target_source_and_extras() {
        let specs =
            read("file \"/etc/x\" {\n from = \"t.tera\"\n overwrite = false\n mode = \"600\"\n}\n")
                .expect("valid");
        assert_eq!(
            describe(&specs[0]),
            "/etc/x from t.tera (kept if it exists, mode 0600)"
        );
    }
}
