//! `gantry renderfiles` and the render phase of `gantry up`, through the real binary: files rendered
//! from `file` blocks, CMD exec'd in gantry's place, render errors that stop everything and say where.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

/// A config dir `cfg/` inside `dir` with one `files.hcl`.
fn config(dir: &Dir, hcl: &str) {
    dir.write("cfg/files.hcl", hcl);
}

fn cfg(dir: &Dir) -> String {
    dir.join("cfg").display().to_string()
}

#[test]
fn renders_then_execs_the_command_with_its_exit_code() {
    let dir = Dir::new();
    let target = dir.join("out/app.conf");
    dir.write("t.tera", "port={{ Params.port }} user={{ Env.APP_USER }}\n");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n from = \"{}\"\n params = {{ port = 8080 }}\n}}\n",
            target.display(),
            dir.join("t.tera").display()
        ),
    );
    let mut cmd = gantry(&["renderfiles", "-c", &cfg(&dir), "--", "sh", "-c"]);
    cmd.arg(format!("cat {}; exit 7", target.display()));
    cmd.env("APP_USER", "alice");
    let out = run(cmd);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert_eq!(out.stdout, "port=8080 user=alice\n");
}

#[test]
fn command_without_double_dash_works_as_in_mittnite() {
    let dir = Dir::new();
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "echo",
        "-n",
        "hi",
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "hi");
}

#[test]
fn the_command_takes_gantrys_pid() {
    let dir = Dir::new();
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    let child = spawn(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "sh",
        "-c",
        "echo $$",
    ]));
    let pid = child.id();
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), pid.to_string());
}

#[test]
fn as_pid_1_the_command_becomes_pid_1() {
    let dir = Dir::new();
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    let out = run(gantry_pid1(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "sh",
        "-c",
        "echo $$",
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "1");
}

#[test]
fn signals_reach_the_command_directly() {
    let dir = Dir::new();
    let ready = dir.join("ready");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    // The shell traps TERM itself: the exit code is the trap's, not a supervisor's.
    let script = format!(
        "trap 'echo got-term; exit 42' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let child = spawn(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let pid = child.id();
    wait_until("the command to start", || ready.exists());
    kill(pid, libc::SIGTERM);
    let out = finish(child);
    assert_eq!(out.code, Some(42), "{}", out.stderr);
    assert!(out.stdout.contains("got-term"), "{}", out.stdout);
}

#[test]
fn death_by_signal_is_the_commands_own() {
    let dir = Dir::new();
    let ready = dir.join("ready");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    // With gantry replaced by the command, the process the test started dies of the signal itself
    // (a supervising parent would have exited with 128+N instead).
    let script = format!("touch {}; exec sleep 30", ready.display());
    let child = spawn(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let pid = child.id();
    wait_until("the command to start", || ready.exists());
    kill(pid, libc::SIGUSR1);
    let out = finish(child);
    assert_eq!(out.code, None);
    assert_eq!(out.signal, Some(libc::SIGUSR1));
}

#[test]
fn a_render_error_means_the_command_never_runs_and_names_the_template_line() {
    let dir = Dir::new();
    let marker = dir.join("ran");
    let good = dir.join("good.conf");
    let tpl = dir.write(
        "bad.tera",
        "first line\nsecond {{ Params.port }}\nthird {{ Params.missing }}\n",
    );
    config(
        &dir,
        &format!(
            "file \"{good}\" {{\n content = \"fine\"\n}}\n\nfile \"{bad}\" {{\n from = \"{tpl}\"\n params = {{ port = 1 }}\n}}\n",
            good = good.display(),
            bad = dir.join("bad.conf").display(),
            tpl = tpl.display()
        ),
    );
    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "touch",
        marker.to_str().expect("utf-8"),
    ]));
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(!marker.exists(), "the command ran");
    assert!(!good.exists(), "a file was written although another failed");
    assert!(
        out.stderr.contains(&format!(
            "{}:3:7: undefined variable `Params.missing`",
            tpl.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("files.hcl:5"), "{}", out.stderr);
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let dir = Dir::new();
    let tpl = dir.write("t.tera", "ok\n  {% if %}\n");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n from = \"{}\"\n}}\n",
            dir.join("x").display(),
            tpl.display()
        ),
    );
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{}:2:", tpl.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("syntax error"), "{}", out.stderr);
}

#[test]
fn a_missing_template_names_the_block_and_its_config_file() {
    let dir = Dir::new();
    config(
        &dir,
        "\n\nfile \"/etc/never-written.conf\" {\n from = \"no/such/template.tera\"\n}\n",
    );
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "file \"/etc/never-written.conf\" ({}:3): cannot read template no/such/template.tera",
            dir.join("cfg/files.hcl").display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_file_block_is_a_config_error_with_position() {
    let dir = Dir::new();
    config(&dir, "file \"/x\" {\n from = \"t\"\n mode = 644\n}\n");
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir), "true"]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("files.hcl:3:9: file \"/x\": attribute \"mode\""),
        "{}",
        out.stderr
    );
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let dir = Dir::new();
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"x\"\n}}\n",
            dir.join("f").display()
        ),
    );
    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        "no-such-command-gantry",
    ]));
    assert_eq!(out.code, Some(127), "{}", out.stderr);
    assert!(
        out.stderr.contains("no-such-command-gantry"),
        "{}",
        out.stderr
    );

    let script = dir.write("not-executable.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--",
        script.to_str().expect("utf-8"),
    ]));
    assert_eq!(out.code, Some(126), "{}", out.stderr);
}

#[test]
fn relative_paths_resolve_against_the_working_directory() {
    let dir = Dir::new();
    dir.write("templates/t.tera", "rel={{ Params.x }}");
    config(
        &dir,
        "file \"out/sub/rel.conf\" {\n from = \"templates/t.tera\"\n params = { x = 1 }\n mode = \"0600\"\n}\nfile \"bare.conf\" {\n content = \"bare\"\n}\n",
    );
    let mut cmd = gantry(&["renderfiles", "-c", "cfg"]);
    cmd.current_dir(dir.path());
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let written = dir.join("out/sub/rel.conf");
    assert_eq!(read(&written), "rel=1");
    let mode = std::fs::metadata(&written)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(read(&dir.join("bare.conf")), "bare");
}

#[test]
fn overwrite_false_keeps_a_generated_secret_across_runs() {
    let dir = Dir::new();
    let secret = dir.join("secret.env");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"S={{{{ randAlphaNum(length=20) }}}}\"\n overwrite = false\n}}\n",
            secret.display()
        ),
    );
    let first = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let value = read(&secret);
    assert_eq!(value.len(), 22, "{value}");
    let second = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(read(&secret), value);
}

#[test]
fn dry_run_and_diff_print_and_neither_write_nor_run() {
    let dir = Dir::new();
    let target = dir.join("app.conf");
    let marker = dir.join("ran");
    std::fs::write(&target, "a=1\nb=2\n").expect("seed");
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"a=1\\nb={{{{ Params.b }}}}\\n\"\n params = {{ b = 3 }}\n}}\n",
            target.display()
        ),
    );
    let m = marker.to_str().expect("utf-8");
    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--dry-run",
        "touch",
        m,
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("==> {} <==\na=1\nb=3\n", target.display())
    );

    let out = run(gantry(&[
        "renderfiles",
        "-c",
        &cfg(&dir),
        "--diff",
        "touch",
        m,
    ]));
    // Like `diff`: 1 when a file would change.
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.contains("-b=2\n+b=3\n"), "{}", out.stdout);

    assert_eq!(read(&target), "a=1\nb=2\n");
    assert!(!marker.exists());

    // Once rendered, the same diff finds nothing to change and exits 0.
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir), "--diff"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("unchanged"), "{}", out.stdout);
}

#[test]
fn up_renders_files_before_any_boot_job() {
    let dir = Dir::new();
    let target = dir.join("rendered.conf");
    dir.write(
        "a.hcl",
        &format!(
            r#"
file "{t}" {{
  content = "hello {{{{ Params.who }}}}"
  params = {{ who = "boot" }}
}}
boot "reader" {{
  command = "cat"
  args = ["{t}"]
}}
"#,
            t = target.display()
        ),
    );
    let out = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "hello boot");
}

#[test]
fn up_stops_with_65_before_boot_when_a_file_fails_to_render() {
    let dir = Dir::new();
    let marker = dir.join("booted");
    dir.write(
        "a.hcl",
        &format!(
            r#"
file "{t}" {{
  content = "{{{{ Env.GANTRY_TEST_UNSET_VARIABLE }}}}"
}}
boot "b" {{
  command = "touch"
  args = ["{m}"]
}}
"#,
            t = dir.join("never").display(),
            m = marker.display()
        ),
    );
    let mut cmd = gantry(&["up", "-c", dir.str()]);
    cmd.env_remove("GANTRY_TEST_UNSET_VARIABLE");
    let out = run(cmd);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(!marker.exists(), "a boot job ran after a render failure");
    assert!(
        out.stderr.contains("GANTRY_TEST_UNSET_VARIABLE"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_lists_the_files_it_would_render() {
    let dir = Dir::new();
    dir.write(
        "cfg/a.hcl",
        "file \"/etc/app.conf\" {\n from = \"app.tera\"\n mode = \"0640\"\n}\n",
    );
    dir.write("app.tera", "x={{ Env.X }}");
    // Relative `from`: resolved against the working directory, at check time as at run time.
    let mut cmd = gantry(&["check", "-c", "cfg"]);
    cmd.current_dir(dir.path());
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("- /etc/app.conf from app.tera (mode 0640)"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_reports_missing_and_broken_templates_without_rendering() {
    let dir = Dir::new();
    let tpl = dir.write("t.tera", "fine {{ Env.ONLY_AT_RUNTIME }}\n");
    let broken = dir.write("broken.tera", "a\n{% for %}\n");
    dir.write(
        "cfg/a.hcl",
        &format!(
            "file \"/x\" {{\n from = \"{}\"\n}}\nfile \"/y\" {{\n from = \"{}\"\n}}\nfile \"/z\" {{\n from = \"{}\"\n}}\n",
            tpl.display(),
            broken.display(),
            dir.join("missing.tera").display()
        ),
    );
    let out = run(gantry(&["check", "-c", &cfg(&dir)]));
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(
        out.stderr.contains("2 templates cannot be used"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{}:2:", broken.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("missing.tera"), "{}", out.stderr);
    assert!(!out.stderr.contains("ONLY_AT_RUNTIME"), "{}", out.stderr);
}

/// The example config dir the README points at renders what its templates promise.
#[test]
fn the_examples_render_from_the_repository_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = gantry(&["renderfiles", "-c", "examples/templates", "--dry-run"]);
    cmd.current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "alice")
        .env("NGINX_PORT", "9090")
        .env("DATABASE_URL", "postgres://db/app");
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for want in [
        "==> /tmp/gantry-example/nginx.conf <==",
        "        server 127.0.0.1:8081;\n        server 127.0.0.1:8082;\n",
        "        listen 9090;\n",
        "        location /api {\n            proxy_pass http://app/v1;\n",
        "==> /tmp/gantry-example/app.yaml <== (mode 0640)",
        "  url: \"postgres://db/app\"\n  pool: 10\n",
        "features:\n  checkout: false\n  search: true\n",
        "limits:\n  requests_per_second: 50\n  burst: 100\n",
        "==> /tmp/gantry-example/test.txt <==\nsome.param = bar\nsome.env = ALICE\nsecret = ",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in\n{}",
            out.stdout
        );
    }
    // Without DATABASE_URL the app config refuses to render, with the template's own message.
    let mut cmd = gantry(&["renderfiles", "-c", "examples/templates", "--dry-run"]);
    cmd.current_dir(root).env_clear().env("USER", "alice");
    let out = run(cmd);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(
        out.stderr.contains("templates/app.yaml.tera:8:")
            && out.stderr.contains("DATABASE_URL must be set"),
        "{}",
        out.stderr
    );
}
