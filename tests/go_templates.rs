//! Go `text/template` templates (mittnite's language) through the real binary: mittnite's README
//! template and this repository's mittnite fixtures run through `renderfiles --dry-run` and `check`
//! unchanged, and a Go template's errors (an undefined key, a syntax error, a failing sprig
//! function) say file, line and column.

mod support;

use std::path::{Path, PathBuf};

use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `gantry ARGS` run in `cwd` (template paths are relative to the working directory, as in mittnite)
/// with only the variables given.
fn gantry_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = gantry(args);
    cmd.current_dir(cwd).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// The content of `target` in `renderfiles --dry-run`'s output.
fn section<'a>(stdout: &'a str, target: &str) -> &'a str {
    let header = format!("==> {target} <==\n");
    let start = stdout
        .find(&header)
        .unwrap_or_else(|| panic!("no {target} in {stdout}"))
        + header.len();
    let rest = &stdout[start..];
    &rest[..rest.find("==> ").unwrap_or(rest.len())]
}

#[test]
fn the_mittnite_fixture_renders_unchanged() {
    let dir = fixture("mittnite");
    let out = gantry_in(
        &dir,
        &["renderfiles", "-c", ".", "--dry-run"],
        &[("USER", "alice"), ("HOME", "/home/alice/")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = section(&out.stdout, "/path/to/file.txt");
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], "some.param = bar", "{first}");
    assert_eq!(lines[1], "some.env = ALICE", "{first}");
    let secret = lines[2].strip_prefix("secret = ").expect("secret line");
    assert_eq!(secret.len(), 16, "{first}");
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");
    let second = section(&out.stdout, "/path/to/second_file.txt");
    assert_eq!(
        second.trim_end(),
        "foo = \"bar\"\nuser = alice\nhome = /home/alice"
    );
}

#[test]
fn the_readme_template_fails_by_name_where_user_is_unset() {
    let out = gantry_in(
        &fixture("mittnite"),
        &["renderfiles", "-c", ".", "--dry-run"],
        &[("HOME", "/root")],
    );
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("examples/test.d/test.txt.tpl:2:15: map has no entry for `.Env.USER`"),
        "{}",
        out.stderr
    );
    // The second template reads USER through `default`, so it is not an error there.
    assert!(
        !out.stderr.contains("second_test.txt.tpl"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_mittnite_fixtures_pass_check() {
    for name in ["mittnite", "mittnite-lazy"] {
        let out = gantry_in(&fixture(name), &["check", "-c", "."], &[]);
        assert_eq!(out.code, Some(0), "{name}: {}\n{}", out.stdout, out.stderr);
    }
    let out = gantry_in(
        &fixture("mittnite-lazy"),
        &["renderfiles", "-c", ".", "--dry-run"],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn the_existing_tera_example_stays_tera() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = gantry_in(
        root,
        &["renderfiles", "-c", "examples/templates", "--dry-run"],
        &[("DATABASE_URL", "postgres://db/app"), ("USER", "alice")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("==> /tmp/gantry-example/nginx.conf <=="),
        "{}",
        out.stdout
    );
}

/// A config dir with one Go template `t.tpl` (first line of the file: `prefix`).
fn one_template(dir: &Dir, template: &str, engine: Option<&str>) -> String {
    dir.write("t.tpl", template);
    let engine = engine.map_or(String::new(), |e| format!("  engine = \"{e}\"\n"));
    dir.write(
        "cfg/files.hcl",
        &format!(
            "file \"{}\" {{\n  from = \"{}\"\n{engine}  params = {{ name = \"web\", port = 8080 }}\n}}\n",
            dir.join("out.txt").display(),
            dir.join("t.tpl").display()
        ),
    );
    dir.join("cfg").display().to_string()
}

#[test]
fn an_undefined_key_is_an_error_at_its_position_naming_it() {
    let dir = Dir::new();
    let cfg = one_template(
        &dir,
        "name = {{ .Params.name }}\nport = {{ .Params.prot }}\n",
        None,
    );
    let out = gantry_in(dir.path(), &["renderfiles", "-c", &cfg, "--dry-run"], &[]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let at = format!(
        "{}:2:11: map has no entry for `.Params.prot`",
        dir.join("t.tpl").display()
    );
    assert!(out.stderr.contains(&at), "{}", out.stderr);
    // `check` parses but does not render (the environment is not the run's): it passes.
    let out = gantry_in(dir.path(), &["check", "-c", &cfg], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_syntax_error_is_reported_by_check_and_renderfiles_at_its_position() {
    let dir = Dir::new();
    let cfg = one_template(
        &dir,
        "name = {{ .Params.name }}\n\nport = {{ .Params.port | }}\n",
        None,
    );
    let at = format!("{}:3:", dir.join("t.tpl").display());
    for args in [
        vec!["check", "-c", &cfg],
        vec!["renderfiles", "-c", &cfg, "--dry-run"],
    ] {
        let out = gantry_in(dir.path(), &args, &[]);
        assert_eq!(out.code, Some(65), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&at), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("syntax error"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_sprig_function_renders_and_its_failure_points_at_the_call() {
    let dir = Dir::new();
    let cfg = one_template(
        &dir,
        "{{ .Params.name | upper | quote }}:{{ .Params.port | toString | trimPrefix \"80\" }}\n{{ .Env.TOKEN | b64dec }}\n",
        None,
    );
    let out = gantry_in(
        dir.path(),
        &["renderfiles", "-c", &cfg, "--dry-run"],
        &[("TOKEN", "aGVsbG8=")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        section(&out.stdout, &dir.join("out.txt").display().to_string()),
        "\"WEB\":80\nhello\n"
    );

    let out = gantry_in(
        dir.path(),
        &["renderfiles", "-c", &cfg, "--dry-run"],
        &[("TOKEN", "not-base64-secret!")],
    );
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let at = format!(
        "{}:2:17: `b64dec`: not valid base64",
        dir.join("t.tpl").display()
    );
    assert!(out.stderr.contains(&at), "{}", out.stderr);
    assert!(!out.stderr.contains("not-base64-secret!"), "{}", out.stderr);
}

#[test]
fn an_unknown_function_fails_check_with_a_suggestion() {
    let dir = Dir::new();
    let cfg = one_template(&dir, "{{ .Params.name | uppr }}\n", None);
    let out = gantry_in(dir.path(), &["check", "-c", &cfg], &[]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let at = format!(
        "{}:1:19: function `uppr` is not defined",
        dir.join("t.tpl").display()
    );
    assert!(out.stderr.contains(&at), "{}", out.stderr);
    assert!(out.stderr.contains("upper"), "{}", out.stderr);
}

#[test]
fn the_engine_attribute_overrides_the_automatic_rule() {
    let dir = Dir::new();
    // Starts with a function call, so the automatic rule says tera; `engine = "go"` says otherwise.
    let cfg = one_template(
        &dir,
        "{{ randNumeric 4 | len }} {{ .Params.name }}\n",
        Some("go"),
    );
    let out = gantry_in(dir.path(), &["renderfiles", "-c", &cfg, "--dry-run"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("4 web\n"), "{}", out.stdout);

    let cfg = one_template(&dir, "{{ Params.name }}\n", Some("go"));
    let out = gantry_in(dir.path(), &["check", "-c", &cfg], &[]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);

    let cfg = one_template(&dir, "{{ Params.name }}\n", Some("jinja"));
    let out = gantry_in(dir.path(), &["check", "-c", &cfg], &[]);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(out.stderr.contains("files.hcl:3:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("attribute \"engine\""),
        "{}",
        out.stderr
    );
}

#[test]
fn rendered_go_files_are_written_atomically_with_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    dir.write("t.tpl", "{{ .Params.name }}\n");
    dir.write(
        "cfg/files.hcl",
        &format!(
            "file \"{}\" {{\n  from = \"{}\"\n  mode = \"0600\"\n  params = {{ name = \"web\" }}\n}}\n",
            dir.join("out/app.conf").display(),
            dir.join("t.tpl").display()
        ),
    );
    let cfg = dir.join("cfg").display().to_string();
    let out = gantry_in(dir.path(), &["renderfiles", "-c", &cfg], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let target = dir.join("out/app.conf");
    assert_eq!(read(&target), "web\n");
    let mode = std::fs::metadata(&target)
        .expect("written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("out"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "app.conf")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
