//! Tests of the render phase as a whole: specs in, files on disk out.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn env() -> Env {
    Env::from([("USER".to_string(), "alice".to_string())])
}

fn content_spec(target: &Path, template: &str) -> FileSpec {
    FileSpec::new(target, Source::Content(template.to_string()))
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).expect("readable target")
}

/// Names in `dir` that look like gantry's temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("readable dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".gantry-"))
        .collect()
}

fn render_and_write(specs: &[FileSpec]) -> Vec<WriteOutcome> {
    let rendered = match render_all(specs, &env()) {
        Ok(r) => r,
        Err(e) => panic!("render failed: {e}"),
    };
    match write_all(&rendered) {
        Ok(o) => o,
        Err(e) => panic!("write failed: {e}"),
    }
}

#[test]
fn content_renders_to_the_target() {
    let dir = tmp();
    let target = dir.path().join("out.txt");
    let mut spec = content_spec(&target, "user={{ Env.USER }} port={{ Params.port }}\n");
    spec.params = json!({"port": 80});
    assert_eq!(render_and_write(&[spec]), [WriteOutcome::Created]);
    assert_eq!(read(&target), "user=alice port=80\n");
}

#[test]
fn from_reads_the_template_file() {
    let dir = tmp();
    let tpl = dir.path().join("t.tera");
    fs::write(
        &tpl,
        "{% for h in Params.hosts %}{{ h.name }}:{{ h.port }}\n{% endfor %}",
    )
    .expect("write template");
    let target = dir.path().join("hosts");
    let mut spec = FileSpec::new(&target, Source::From(tpl));
    spec.params = json!({"hosts": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]});
    render_and_write(&[spec]);
    assert_eq!(read(&target), "a:1\nb:2\n");
}

#[test]
fn parent_directories_are_created() {
    let dir = tmp();
    let target = dir.path().join("a/b/c/out.conf");
    render_and_write(&[content_spec(&target, "x")]);
    assert_eq!(read(&target), "x");
}

#[test]
fn relative_target_and_from_resolve_against_the_working_directory() {
    // A relative path to a fresh temporary directory, built with `..` from the working directory, so
    // the test needs neither to change the (process-wide) working directory nor to write into it.
    let base = tmp();
    let cwd = std::env::current_dir().expect("cwd");
    let up = "../".repeat(cwd.components().count().saturating_sub(1));
    let rel = PathBuf::from(up).join(base.path().strip_prefix("/").expect("absolute temp dir"));
    assert!(rel.is_relative(), "{}", rel.display());
    fs::write(rel.join("t.tera"), "rel {{ Params.x }}").expect("write template");
    let target = rel.join("sub/out.txt");
    let mut spec = FileSpec::new(&target, Source::From(rel.join("t.tera")));
    spec.params = json!({"x": 1});
    render_and_write(&[spec]);
    assert_eq!(read(&base.path().join("sub/out.txt")), "rel 1");
}

#[test]
fn overwrite_false_leaves_an_existing_target_alone_and_does_not_render() {
    let dir = tmp();
    let target = dir.path().join("secret");
    fs::write(&target, "first boot secret").expect("seed");
    // The template would fail if rendered: proof that it is not.
    let mut spec = content_spec(&target, "{{ Env.ONLY_ON_FIRST_BOOT }}");
    spec.overwrite = false;
    let rendered = render_all(std::slice::from_ref(&spec), &env()).expect("skipped, not rendered");
    assert_eq!(rendered[0].action, FileAction::Keep);
    assert_eq!(write_all(&rendered).expect("write"), [WriteOutcome::Kept]);
    assert_eq!(read(&target), "first boot secret");
}

#[test]
fn overwrite_false_writes_a_missing_target() {
    let dir = tmp();
    let target = dir.path().join("secret");
    let mut spec = content_spec(&target, "{{ randAlphaNum(length=12) }}");
    spec.overwrite = false;
    render_and_write(std::slice::from_ref(&spec));
    let first = read(&target);
    assert_eq!(first.len(), 12);
    render_and_write(&[spec]);
    assert_eq!(
        read(&target),
        first,
        "the secret must survive a second boot"
    );
}

#[test]
fn mode_is_applied_to_new_and_existing_files() {
    let dir = tmp();
    let target = dir.path().join("m");
    let mut spec = content_spec(&target, "one");
    spec.mode = Some(0o640);
    render_and_write(std::slice::from_ref(&spec));
    assert_eq!(mode_of(&target), 0o640);

    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
    spec.source = Source::Content("two".into());
    spec.mode = Some(0o604);
    render_and_write(&[spec]);
    assert_eq!(mode_of(&target), 0o604);
    assert_eq!(read(&target), "two");
}

#[test]
fn existing_file_keeps_its_mode_when_none_is_set() {
    let dir = tmp();
    let target = dir.path().join("k");
    fs::write(&target, "old").expect("seed");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o751)).expect("chmod");
    render_and_write(&[content_spec(&target, "new")]);
    assert_eq!(read(&target), "new");
    assert_eq!(mode_of(&target), 0o751);
}

#[test]
fn mode_change_alone_rewrites_an_unchanged_file() {
    let dir = tmp();
    let target = dir.path().join("same");
    fs::write(&target, "same").expect("seed");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_eq!(
        render_and_write(&[content_spec(&target, "same")]),
        [WriteOutcome::Unchanged]
    );
    let mut spec = content_spec(&target, "same");
    spec.mode = Some(0o600);
    assert_eq!(render_and_write(&[spec]), [WriteOutcome::Replaced]);
    assert_eq!(mode_of(&target), 0o600);
}

#[test]
fn unchanged_content_keeps_the_inode() {
    let dir = tmp();
    let target = dir.path().join("ino");
    render_and_write(&[content_spec(&target, "stable")]);
    let before = fs::metadata(&target).expect("meta").ino();
    render_and_write(&[content_spec(&target, "stable")]);
    assert_eq!(fs::metadata(&target).expect("meta").ino(), before);
    render_and_write(&[content_spec(&target, "changed")]);
    assert_ne!(fs::metadata(&target).expect("meta").ino(), before);
}

#[test]
fn user_and_group_by_number_are_applied_as_root() {
    let dir = tmp();
    let target = dir.path().join("owned");
    let mut spec = content_spec(&target, "x");
    spec.user = Some("1234".into());
    spec.group = Some("2345".into());
    render_and_write(&[spec]);
    let meta = fs::metadata(&target).expect("meta");
    if is_root(dir.path()) {
        assert_eq!((meta.uid(), meta.gid()), (1234, 2345));
        // A later render without user/group keeps the owner the file has.
        render_and_write(&[content_spec(&target, "y")]);
        let meta = fs::metadata(&target).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (1234, 2345));
    } else {
        // Rootless: user and group are skipped (with a warning); the file is the writer's own.
        assert_eq!(meta.uid(), fs::metadata(dir.path()).expect("meta").uid());
    }
}

#[test]
fn user_by_name_is_looked_up() {
    let dir = tmp();
    let target = dir.path().join("root-owned");
    let mut spec = content_spec(&target, "x");
    // `daemon` (1:1) is in every Debian-based image; unlike root, its ids differ from the writer's.
    spec.user = Some("daemon".into());
    spec.group = Some("daemon".into());
    render_and_write(&[spec]);
    let meta = fs::metadata(&target).expect("meta");
    if is_root(dir.path()) {
        assert_eq!((meta.uid(), meta.gid()), (1, 1));
    } else {
        assert_eq!(meta.uid(), fs::metadata(dir.path()).expect("meta").uid());
    }
}

#[test]
fn a_symlink_target_becomes_a_regular_file_even_with_the_same_content() {
    let dir = tmp();
    let real = dir.path().join("real.conf");
    let link = dir.path().join("link.conf");
    fs::write(&real, "same").expect("seed");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    assert_eq!(
        render_and_write(&[content_spec(&link, "same")]),
        [WriteOutcome::Replaced]
    );
    assert!(fs::symlink_metadata(&link).expect("meta").is_file());
    assert_eq!(read(&link), "same");
    assert_eq!(read(&real), "same");
}

#[test]
fn unknown_user_is_an_error_that_names_it_and_writes_nothing() {
    let dir = tmp();
    let target = dir.path().join("nobody-here");
    let mut spec = content_spec(&target, "x");
    spec.user = Some("no-such-user-gantry".into());
    let rendered = render_all(&[spec], &env()).expect("renders");
    let err = write_all(&rendered).expect_err("unknown user");
    assert!(err.to_string().contains("no-such-user-gantry"), "{err}");
    assert!(!target.exists());
    assert!(leftovers(dir.path()).is_empty());
}

fn is_root(dir: &Path) -> bool {
    let probe = dir.join(".probe-owner");
    fs::write(&probe, "").is_ok() && fs::metadata(&probe).map(|m| m.uid() == 0).unwrap_or(false)
}

#[test]
fn failed_render_leaves_old_content_and_mode_and_no_temp_file() {
    let dir = tmp();
    let target = dir.path().join("app.conf");
    fs::write(&target, "previous\n").expect("seed");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).expect("chmod");
    let spec = content_spec(
        &target,
        "line 1\nline 2 {{ Env.USER }}\nline 3 {{ Params.missing }}\n",
    );
    let err = render_all(&[spec], &env()).expect_err("undefined variable");
    let text = err.to_string();
    assert!(text.contains(":3:"), "{text}");
    assert!(text.contains("Params.missing"), "{text}");
    assert_eq!(read(&target), "previous\n");
    assert_eq!(mode_of(&target), 0o640);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn error_in_the_third_file_leaves_the_first_two_untouched() {
    let dir = tmp();
    let paths: Vec<PathBuf> = (1..=3).map(|i| dir.path().join(format!("f{i}"))).collect();
    for p in &paths {
        fs::write(p, "old").expect("seed");
    }
    let specs = [
        content_spec(&paths[0], "new 1"),
        content_spec(&paths[1], "new 2"),
        content_spec(&paths[2], "{{ broken"),
    ];
    let err = render_all(&specs, &env()).expect_err("syntax error");
    assert_eq!(err.0.len(), 1);
    for p in &paths {
        assert_eq!(read(p), "old");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let dir = tmp();
    let specs = [
        content_spec(&dir.path().join("a"), "{{ Params.a }}"),
        content_spec(&dir.path().join("b"), "fine"),
        FileSpec::new(
            dir.path().join("c"),
            Source::From(dir.path().join("missing.tera")),
        ),
    ];
    let err = render_all(&specs, &env()).expect_err("two errors");
    assert_eq!(err.0.len(), 2, "{err}");
}

#[test]
fn missing_from_names_the_block_and_its_config_file() {
    let dir = tmp();
    let mut spec = FileSpec::new("/etc/app.conf", Source::From(dir.path().join("nope.tera")));
    spec.origin = Origin {
        file: PathBuf::from("/etc/gantry.d/app.hcl"),
        line: 7,
    };
    let err = render_all(&[spec], &env()).expect_err("missing template");
    let text = err.to_string();
    assert!(text.contains("file \"/etc/app.conf\""), "{text}");
    assert!(text.contains("/etc/gantry.d/app.hcl:7"), "{text}");
    assert!(text.contains("nope.tera"), "{text}");
}

#[test]
fn template_error_names_the_template_file_and_line() {
    let dir = tmp();
    let tpl = dir.path().join("nginx.conf.tera");
    fs::write(
        &tpl,
        "server {\n  listen {{ Params.port }};\n  root {{ Params.root }};\n}\n",
    )
    .expect("template");
    let mut spec = FileSpec::new(dir.path().join("nginx.conf"), Source::From(tpl.clone()));
    spec.params = json!({"port": 80});
    let err = render_all(&[spec], &env()).expect_err("root is missing");
    let text = err.to_string();
    assert!(text.contains(&format!("{}:3:", tpl.display())), "{text}");
    assert!(text.contains("Params.root"), "{text}");
}

#[test]
fn failed_rename_removes_the_temporary_file() {
    // A directory where the file should go: everything up to the rename succeeds, the rename fails.
    let dir = tmp();
    let target = dir.path().join("is-a-dir");
    fs::create_dir(&target).expect("mkdir");
    let err = write_atomic(&target, b"x", &WriteOptions::default()).expect_err("rename onto a dir");
    assert!(err.to_string().contains("is-a-dir"), "{err}");
    assert!(target.is_dir());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn readers_never_see_a_partial_or_empty_file() {
    let dir = tmp();
    let target = dir.path().join("hot.conf");
    // Big enough that writing it takes many write calls' worth of time, small template so the test
    // measures writing, not parsing.
    let body = "x".repeat(256 * 1024);
    let spec = |i: usize| {
        let mut s = content_spec(
            &target,
            "begin {{ Params.i }}\n{{ Params.body }}\nend {{ Params.i }}\n",
        );
        s.params = json!({"i": i, "body": &body[..(i % 4 + 1) * 64 * 1024]});
        s
    };
    render_and_write(&[spec(0)]);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let target = target.clone();
        std::thread::spawn(move || -> Result<usize, String> {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let text = fs::read_to_string(&target).map_err(|e| format!("read failed: {e}"))?;
                let first = text.lines().next().unwrap_or("");
                let n = first
                    .strip_prefix("begin ")
                    .ok_or(format!("bad start: {first:?}"))?;
                if !text.ends_with(&format!("\nend {n}\n")) {
                    return Err(format!(
                        "partial file for version {n}: {} bytes",
                        text.len()
                    ));
                }
                reads += 1;
            }
            Ok(reads)
        })
    };
    for i in 1..=500 {
        render_and_write(&[spec(i)]);
    }
    stop.store(true, Ordering::Relaxed);
    let result = reader.join().expect("reader thread");
    match result {
        Ok(reads) => assert!(reads > 0),
        Err(e) => panic!("{e}"),
    }
    assert!(read(&target).starts_with("begin 500\n"));
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn mode_strings_parse_as_octal() {
    assert_eq!(parse_mode("0640"), Ok(0o640));
    assert_eq!(parse_mode("640"), Ok(0o640));
    assert_eq!(parse_mode("0o755"), Ok(0o755));
    assert_eq!(parse_mode("4755"), Ok(0o4755));
    assert!(parse_mode("0999").is_err());
    assert!(parse_mode("rw-r--r--").is_err());
    assert!(parse_mode("").is_err());
    assert!(parse_mode("77777").is_err());
}

#[test]
fn dry_run_prints_and_writes_nothing() {
    let dir = tmp();
    let target = dir.path().join("d.conf");
    let mut spec = content_spec(&target, "a={{ Env.USER }}");
    spec.mode = Some(0o600);
    let rendered = render_all(&[spec], &env()).expect("renders");
    let mut out = Vec::new();
    dry_run(&rendered, &mut out).expect("print");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(
        text,
        format!("==> {} <== (mode 0600)\na=alice\n", target.display())
    );
    assert!(!target.exists());
}

#[test]
fn diff_shows_changes_against_disk() {
    let dir = tmp();
    let target = dir.path().join("d.conf");
    let fresh = dir.path().join("fresh.conf");
    fs::write(&target, "a=1\nb=2\n").expect("seed");
    let rendered = render_all(
        &[
            content_spec(&target, "a=1\nb=3\n"),
            content_spec(&fresh, "new\n"),
        ],
        &env(),
    )
    .expect("renders");
    let mut out = Vec::new();
    assert!(
        diff(&rendered, &mut out).expect("print"),
        "changes are reported"
    );
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains("-b=2\n+b=3\n"), "{text}");
    assert!(text.contains(" a=1\n"), "{text}");
    assert!(text.contains("--- /dev/null"), "{text}");
    assert!(text.contains("+new\n"), "{text}");
    assert_eq!(read(&target), "a=1\nb=2\n");
    assert!(!fresh.exists());

    let same = render_all(&[content_spec(&target, "a=1\nb=2\n")], &env()).expect("renders");
    let mut out = Vec::new();
    assert!(
        !diff(&same, &mut out).expect("print"),
        "no change is reported"
    );
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        format!("# {}: unchanged\n", target.display())
    );
}

/// The template snippet from mittnite's README, ported, renders what a mittnite user expects.
mod mittnite_seed {
    use super::*;

    const PORTED: &str = "some.param = {{ Params.foo | default(value=\"bac\") }}\n\
                          some.env = {{ Env.USER | default(value=\"\") | upper }}\n\
                          secret = {{ randAlphaNum(length=16) }}\n";

    fn check(out: &str, param: &str) {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0], format!("some.param = {param}"));
        assert_eq!(lines[1], "some.env = ALICE");
        let secret = lines[2].strip_prefix("secret = ").expect("secret line");
        assert_eq!(secret.len(), 16);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn snippet_with_params_foo_bar() {
        let out = render_template("t", PORTED, &env(), &json!({"foo": "bar"})).expect("renders");
        check(&out, "bar");
    }

    #[test]
    fn snippet_without_foo_falls_back() {
        let out = render_template("t", PORTED, &env(), &serde_json::Value::Null).expect("renders");
        check(&out, "bac");
    }

    /// As Go renders a missing key of `.Env`: empty, not an error (the README's example ran in a
    /// shell without `USER` and exited 65).
    #[test]
    fn snippet_without_user_renders_an_empty_value() {
        let out = render_template("t", PORTED, &Env::new(), &json!({"foo": "bar"}))
            .expect("renders without USER");
        assert_eq!(out.lines().nth(1), Some("some.env = "), "{out}");
    }

    #[test]
    fn shipped_template_is_the_ported_snippet() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/test.txt.tera");
        assert_eq!(read(&path), PORTED);
    }

    /// `file "/path/to/file.txt" { from = ...; params = { foo = "bar" } }` and the second block with
    /// `overwrite = false`, as specs.
    #[test]
    fn both_file_blocks() {
        let dir = tmp();
        let tpl = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/test.txt.tera");
        let first = dir.path().join("path/to/file.txt");
        let second = dir.path().join("path/to/second_file.txt");
        let mut a = FileSpec::new(&first, Source::From(tpl.clone()));
        a.params = json!({"foo": "bar"});
        let mut b = FileSpec::new(&second, Source::From(tpl));
        b.params = json!({"foo": "bar"});
        b.overwrite = false;
        fs::create_dir_all(dir.path().join("path/to")).expect("mkdir");
        fs::write(&second, "kept\n").expect("seed");
        render_and_write(&[a, b]);
        check(&read(&first), "bar");
        assert_eq!(read(&second), "kept\n");
    }
}
