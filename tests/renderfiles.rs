//! `gantry renderfiles` and the render phase of `gantry up`, through the real binary: files rendered
//! from `file` blocks, CMD exec'd in gantry's place, render errors that stop everything and say where
//! (without saying what a secret holds), who else can read a file while and after it is written, and
//! the limits that make a runaway template an error rather than the end of gantry.

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

// ---- who can see a rendered secret ------------------------------------------------------------

/// The unprivileged user the watchers run as.
const NOBODY: u32 = 65534;

/// Whether the tests that need a second user can run: root, `setpriv` and a python3 that `nobody`
/// may execute. Without them those tests say so and pass (they guard what root does).
fn nobody_python() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as a second user");
        return None;
    }
    let found = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| {
            as_nobody(p)
                .args(["-c", "pass"])
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        eprintln!("skipped: no setpriv, or no python3 that nobody can run");
    }
    found
}

/// `program` run as nobody:nogroup with no supplementary groups.
fn as_nobody(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        program,
    ]);
    cmd
}

/// Makes `path` and its ancestors inside the test directory traversable by other users.
fn open_up(dir: &Dir, path: &Path, mode: u32) {
    let mut p = path.to_path_buf();
    loop {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if p == dir.path() {
            break;
        }
        p = p.parent().expect("inside the test dir").to_path_buf();
    }
}

/// Watches a directory as nobody: every file that appears (temporary files included) is stat'ed the
/// moment inotify reports it, opened if the kernel allows, and every descriptor it got is read again
/// and again, since permissions are checked at open, not at read. On EOF of stdin it prints one line:
/// `created=N widest=OCTAL canary=BOOL leaks=N first=NAME`.
const WATCHER: &str = r#"
import ctypes, os, select, struct, sys
d, secret, canary = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
if fd < 0 or libc.inotify_add_watch(fd, d.encode(), IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0:
    print("inotify failed", ctypes.get_errno(), flush=True); sys.exit(1)
held, leaks = {}, set()
created, widest, saw_canary = 0, 0, False
def look(name, new):
    global created, widest
    path = os.path.join(d, name)
    if new and name.startswith("."):
        try:
            widest |= os.lstat(path).st_mode & 0o7777
            created += 1
        except OSError:
            pass
    if name not in held:
        try:
            held[name] = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            pass
print("ready", flush=True)
done = False
while not done:
    r, _, _ = select.select([fd, sys.stdin], [], [], 0.005)
    if fd in r:
        buf = os.read(fd, 1 << 16)
        i = 0
        while i < len(buf):
            _, mask, _, n = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
            i += 16 + n
            look(name, bool(mask & IN_CREATE))
    for name in os.listdir(d):
        look(name, False)
    for name, f in list(held.items()):
        try:
            data = os.pread(f, 1 << 16, 0)
        except OSError:
            continue
        if secret in data:
            leaks.add(name)
        if canary in data:
            saw_canary = True
    if len(held) > 512:
        for f in held.values():
            os.close(f)
        held.clear()
    if sys.stdin in r and not sys.stdin.readline():
        done = True
first = min(leaks) if leaks else "-"
print(f"created={created} widest={widest:o} canary={saw_canary} leaks={len(leaks)} first={first}", flush=True)
"#;

#[test]
fn a_0600_secret_is_never_readable_by_another_user_while_it_is_written() {
    let Some(python) = nobody_python() else {
        return;
    };
    let dir = Dir::new();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    // The watcher must be able to list and open what is in `out/`, or the test proves nothing (the
    // canary below checks it); the config dir, which holds the template, stays private.
    open_up(&dir, &out_dir, 0o755);
    let script = dir.write("watch.py", WATCHER);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let marker = "s3cr3t-marker-7f1d";
    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"KEY={marker}-{{{{ randAlphaNum(length=24) }}}}\\n\"\n mode = \"0600\"\n}}\n",
            out_dir.join("secret.env").display()
        ),
    );

    let mut watcher = as_nobody(python);
    watcher
        .arg(&script)
        .arg(&out_dir)
        .arg(marker)
        .arg("canary-3b9e")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut watcher = watcher.spawn().expect("watcher");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        watcher.stdout.take().expect("stdout"),
    ));
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "ready", "watcher did not start");

    let canary = out_dir.join("canary.txt");
    std::fs::write(&canary, "canary-3b9e").expect("canary");
    std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let renders = 200;
    for i in 0..renders {
        let out = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
        assert_eq!(out.code, Some(0), "render {i}: {}", out.stderr);
    }
    drop(watcher.stdin.take()); // EOF: report
    let report = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = watcher.kill();
    let _ = watcher.wait();

    let field = |key: &str| -> String {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in watcher report {report:?}"))
            .to_string()
    };
    assert_eq!(
        field("canary"),
        "True",
        "the watcher could not read a public file: {report}"
    );
    let created: usize = field("created").parse().expect("created");
    // Each render writes a new temporary file; a loaded machine may let some come and go before the
    // watcher looks, but it must have seen enough of them for "never wider" to mean something.
    assert!(
        created >= renders / 10,
        "the watcher saw only {created} of {renders} temporary files: {report}"
    );
    assert_eq!(field("leaks"), "0", "nobody read the secret: {report}");
    let widest = u32::from_str_radix(&field("widest"), 8).expect("octal");
    assert_eq!(
        widest & !0o600,
        0,
        "a temporary file was created wider than 0600: {widest:o}"
    );
    let final_mode = std::fs::metadata(out_dir.join("secret.env"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(final_mode & 0o7777, 0o600);
}

/// What nobody plants in a sticky, world-writable directory (like /tmp) before gantry renders.
enum Plant {
    /// `secret.env -> planted`, a 0666 file of nobody's.
    Symlink,
    /// `secret.env` itself, a 0666 file of nobody's.
    File,
}

/// Renders `secret.env` into a sticky shared directory where nobody planted something first, with
/// gantry's umask at 077 and `extra` attributes in the block; returns the target's metadata and the
/// planted file's path.
fn render_over_a_plant(plant: Plant, extra: &str) -> (Dir, std::fs::Metadata, std::path::PathBuf) {
    use std::os::unix::fs::MetadataExt;
    let dir = Dir::new();
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    open_up(&dir, dir.path(), 0o755);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let planted = shared.join("planted");
    let target = shared.join("secret.env");
    let plant_cmd = match plant {
        Plant::Symlink => format!(
            "umask 0; echo planted > {p}; ln -s {p} {t}",
            p = planted.display(),
            t = target.display()
        ),
        Plant::File => format!("umask 0; echo planted > {}", target.display()),
    };
    let status = as_nobody("/bin/sh")
        .args(["-c", &plant_cmd])
        .status()
        .expect("plant");
    assert!(status.success(), "planting failed");
    assert_eq!(
        std::fs::symlink_metadata(&target).expect("planted").uid(),
        NOBODY
    );

    config(
        &dir,
        &format!(
            "file \"{}\" {{\n content = \"KEY=s3cr3t\\n\"\n{extra}}}\n",
            target.display()
        ),
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args([
        "-c",
        "umask 077; exec \"$0\" renderfiles -c \"$1\"",
        GANTRY.as_str(),
        &cfg(&dir),
    ]);
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let meta = std::fs::symlink_metadata(&target).expect("target");
    (dir, meta, planted)
}

#[test]
fn a_symlink_planted_in_a_shared_directory_passes_on_neither_owner_nor_mode() {
    use std::os::unix::fs::MetadataExt;
    if nobody_python().is_none() {
        return;
    }
    let (_dir, meta, planted) = render_over_a_plant(Plant::Symlink, "");
    assert!(meta.file_type().is_file(), "the link is still there");
    assert_eq!(meta.uid(), 0, "the secret belongs to the planter");
    assert_eq!(
        meta.mode() & 0o7777,
        0o600,
        "the mode was copied from the planted file"
    );
    // Nothing was written through the link, and the planted file is still nobody's own.
    assert_eq!(read(&planted), "planted\n");
    let planted_meta = std::fs::metadata(&planted).expect("planted");
    assert_eq!(
        (planted_meta.uid(), planted_meta.mode() & 0o777),
        (NOBODY, 0o666)
    );
}

#[test]
fn a_file_planted_in_a_shared_directory_passes_on_neither_owner_nor_mode() {
    use std::os::unix::fs::MetadataExt;
    if nobody_python().is_none() {
        return;
    }
    let (_dir, meta, _) = render_over_a_plant(Plant::File, "");
    assert!(meta.file_type().is_file());
    assert_eq!(meta.uid(), 0, "the secret belongs to the planter");
    assert_eq!(meta.mode() & 0o7777, 0o600);
}

#[test]
fn a_planted_symlink_is_replaced_by_a_file_owned_as_configured() {
    use std::os::unix::fs::MetadataExt;
    if nobody_python().is_none() {
        return;
    }
    let (_dir, meta, _) = render_over_a_plant(
        Plant::Symlink,
        " user = \"0\"\n group = \"0\"\n mode = \"0640\"\n",
    );
    assert!(meta.file_type().is_file());
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(meta.mode() & 0o7777, 0o640);
}

// ---- template errors and limits -----------------------------------------------------------------

/// A config with one `file` block per template in `templates` (written as t0.tera, t1.tera, ...).
fn config_with_templates(dir: &Dir, templates: &[&str]) -> Vec<std::path::PathBuf> {
    let mut hcl = String::new();
    let mut paths = Vec::new();
    for (i, text) in templates.iter().enumerate() {
        let tpl = dir.write(&format!("t{i}.tera"), text);
        hcl.push_str(&format!(
            "file \"{}\" {{\n from = \"{}\"\n}}\n",
            dir.join(&format!("out/{i}.conf")).display(),
            tpl.display()
        ));
        paths.push(tpl);
    }
    config(dir, &hcl);
    paths
}

#[test]
fn template_errors_name_the_variable_but_never_its_value() {
    let dir = Dir::new();
    let secret = "pg-Pa55w0rd-9f8e7d6c";
    let templates = [
        "ok\n{{ Env.DB_PASSWORD | atoi }}\n",
        "{{ Env.DB_PASSWORD | b64dec }}",
        "{{ Env.DB_PASSWORD | date(format='%Y') }}",
        "{{ Params[Env.DB_PASSWORD] }}",
        "{{ Env.DB_PASSWORD | round }}",
        "{{ Env.DB_PASSWORD | add(value=1) }}",
        "{{ env(name='DB_PASSWORD') | fromJson }}",
    ];
    let paths = config_with_templates(&dir, &templates);
    let mut cmd = gantry(&["renderfiles", "-c", &cfg(&dir), "--", "true"]);
    cmd.env("DB_PASSWORD", secret);
    let out = run(cmd);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
    assert!(!out.stderr.contains("Pa55w0rd"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{}:2:1: ", paths[0].display())),
        "{}",
        out.stderr
    );
    for path in &paths[1..] {
        assert!(
            out.stderr.contains(&format!("{}:1:1: ", path.display())),
            "{}: {}",
            path.display(),
            out.stderr
        );
    }
    for path in &paths {
        let line = error_about(&out.stderr, path);
        assert!(
            line.contains("Env.DB_PASSWORD"),
            "the error does not name the variable: {line}"
        );
    }
}

/// The error line a run printed about `tpl`.
fn error_about(stderr: &str, tpl: &Path) -> String {
    let needle = format!("{}:", tpl.display());
    stderr
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no error about {needle} in {stderr}"))
        .trim()
        .to_string()
}

#[test]
fn templates_that_never_end_are_errors_in_check_renderfiles_and_up_alike() {
    let dir = Dir::new();
    // Each of these used to overflow the stack (SIGABRT), and `check` called them valid.
    let deep_ifs = "{% if true %}\n".repeat(20_000) + &"{% endif %}\n".repeat(20_000);
    let cases = [
        (
            "includes itself",
            "a\n{% include \"SELF\" %}\n".to_string(),
            "2:1",
        ),
        (
            "always calls itself",
            "{% macro f(n) %}\n  {{ self::f(n=n) }}\n{% endmacro %}\n{{ self::f(n=1) }}\n"
                .to_string(),
            "2:6",
        ),
        ("65th block", deep_ifs, "65:1"),
        (
            "imports itself",
            "{% import \"SELF\" as m %}\n".to_string(),
            "1:1",
        ),
    ];
    for (what, text, at) in cases {
        let tpl = dir.join(&format!("{}.tera", at.replace(':', "_")));
        std::fs::write(&tpl, text.replace("SELF", &tpl.display().to_string())).expect("write");
        config(
            &dir,
            &format!(
                "file \"{}\" {{\n from = \"{}\"\n}}\n",
                dir.join("out.conf").display(),
                tpl.display()
            ),
        );
        let mut lines = Vec::new();
        for mode in ["check", "renderfiles", "up"] {
            let out = run(gantry(&[mode, "-c", &cfg(&dir)]));
            assert_eq!(out.signal, None, "{what}: gantry {mode} died of a signal");
            assert_eq!(out.code, Some(65), "{what}: gantry {mode}: {}", out.stderr);
            let line = error_about(&out.stderr, &tpl);
            assert!(
                line.contains(&format!("{}:{at}: ", tpl.display())) && line.contains(what),
                "{what}: gantry {mode}: {line}"
            );
            lines.push(line);
        }
        assert!(
            lines.iter().all(|l| *l == lines[0]),
            "{what}: check, renderfiles and up disagree: {lines:#?}"
        );
        assert!(!dir.join("out.conf").exists());
    }
}

#[test]
fn recursion_that_depends_on_the_data_is_a_render_error_not_an_abort() {
    let dir = Dir::new();
    let paths = config_with_templates(
        &dir,
        &["{% macro down(n) %}{% if n > 0 %}{{ self::down(n=n-1) }}{% endif %}{% endmacro %}\n{{ self::down(n=Env.DEPTH | int) }}\n"],
    );
    let mut cmd = gantry(&["renderfiles", "-c", &cfg(&dir)]);
    cmd.env("DEPTH", "100000");
    let out = run(cmd);
    assert_eq!(out.signal, None, "died of a signal: {}", out.stderr);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let line = error_about(&out.stderr, &paths[0]);
    assert!(
        line.contains(":1:") && line.contains("macro `down`") && line.contains("64"),
        "{line}"
    );
    // Within the limit it renders; `check` cannot know the depth, which comes from the environment.
    let mut cmd = gantry(&["renderfiles", "-c", &cfg(&dir)]);
    cmd.env("DEPTH", "50");
    assert_eq!(run(cmd).code, Some(0));
    assert_eq!(run(gantry(&["check", "-c", &cfg(&dir)])).code, Some(0));
}

#[test]
fn absurd_lengths_are_render_errors_naming_the_function_and_the_limit() {
    let dir = Dir::new();
    let templates = [
        "{{ randAlphaNum(length=100000000000) }}",
        "x:\n{{ Params | toYaml | indent(width=100000000000) }}",
        "{{ 'a' | nindent(width=9000000000000000000) }}",
        "{% for i in range(end=1000000000000) %}{% endfor %}",
        "{{ range(end=3, step_by=0) | length }}",
    ];
    let paths = config_with_templates(&dir, &templates);
    let out = run(gantry(&["renderfiles", "-c", &cfg(&dir)]));
    assert_eq!(out.signal, None, "died of a signal: {}", out.stderr);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    for (path, (name, limit)) in paths.iter().zip([
        ("randAlphaNum", "1048576"),
        ("indent", "1048576"),
        ("nindent", "1048576"),
        ("range", "100000"),
        ("range", "step_by"),
    ]) {
        let line = error_about(&out.stderr, path);
        assert!(
            line.contains(&format!("`{name}`")) && line.contains(limit),
            "{line}"
        );
    }
}
