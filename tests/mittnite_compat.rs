//! Coming from mittnite: its deprecated attribute names, its command-line flags (`gantry -c DIR
//! up`, `up -k`), and its order of phases (probes before boot jobs) — per boot job with `waitFor`,
//! or for a whole directory with `settings { probesBeforeBoot = true }`. Real binary, real
//! processes, real probes (a TCP listener the test opens late, PostgreSQL on 5432).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn check(dir: &Dir) -> Output {
    run(gantry(&["check", "-c", dir.str()]))
}

// ---------------------------------------------------------------------------------------------
// Deprecated names

#[test]
fn max_attempts_is_read_as_max_attempts_with_exactly_one_warning_naming_file_and_line() {
    let dir = Dir::new();
    let file = dir.write(
        "a.hcl",
        "job \"web\" {\n  command = \"sh\"\n  max_attempts = 5\n}\n",
    );
    let out = check(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("up to 5 attempt(s)"), "{}", out.stdout);
    assert_eq!(
        out.stderr.matches("deprecated").count(),
        1,
        "{}",
        out.stderr
    );
    let at = format!("{}:3:3:", file.display());
    assert!(out.stderr.contains(&at), "{at} missing in {}", out.stderr);
    assert!(
        out.stderr.contains("\"max_attempts\"") && out.stderr.contains("\"maxAttempts\""),
        "{}",
        out.stderr
    );
}

#[test]
fn max_attempts_takes_effect_when_the_job_runs() {
    // Two attempts, then the job's code is gantry's: the old name limits restarts as the new does.
    let dir = Dir::new();
    let count = dir.join("count");
    dir.write(
        "a.hcl",
        &format!(
            "job \"flaky\" {{\n  command = \"sh\"\n  args = [\"-c\", \"echo x >> {}; exit 3\"]\n  max_attempts = 2\n  restartDelay = \"10ms\"\n}}\n",
            count.display()
        ),
    );
    let out = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(read(&count).lines().count(), 2);
    assert_eq!(
        out.stderr.matches("deprecated").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn old_and_new_names_together_are_an_error_naming_both() {
    let dir = Dir::new();
    let file = dir.write(
        "a.hcl",
        concat!(
            "job \"web\" {\n",
            "  command = \"sh\"\n",
            "  maxAttempts = 3\n",
            "  max_attempts = 5\n",
            "  listen \"127.0.0.1:1\" {\n",
            "    forward = \"/tmp/x.sock\"\n",
            "    forwardProtocol = \"unix\"\n",
            "    protocol = \"tcp\"\n",
            "  }\n",
            "}\n",
        ),
    );
    let out = check(&dir);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let f = file.display();
    for want in [
        format!(
            "{f}:4:3: job \"web\": both \"max_attempts\" (mittnite's deprecated name) and \"maxAttempts\" (line 3) are set; keep only \"maxAttempts\""
        ),
        format!(
            "{f}:8:5: listen \"127.0.0.1:1\": both \"protocol\" (mittnite's deprecated name) and \"forwardProtocol\" (line 7) are set; keep only \"forwardProtocol\""
        ),
    ] {
        assert!(out.stderr.contains(&want), "{want:?} missing in:\n{}", out.stderr);
    }
    // Reported once each: not also as unknown attributes, and no warning on top.
    assert!(!out.stderr.contains("unknown attribute"), "{}", out.stderr);
    assert!(
        out.stderr.contains("2 configuration errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_deprecated_protocol_is_read_as_forward_protocol_with_one_warning() {
    let dir = Dir::new();
    let file = dir.write(
        "a.hcl",
        "job a {\n command = \"x\"\n listen \"127.0.0.1:1\" {\n  forward = \"/tmp/x.sock\"\n  protocol = \"unix\"\n }\n}\n",
    );
    let out = check(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("-> unix /tmp/x.sock"), "{}", out.stdout);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("deprecated"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains(&format!("{}:5:3:", file.display()))
            && lines[0].contains("\"forwardProtocol\""),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Command line

#[test]
fn config_dir_before_the_subcommand_as_mittnite_writes_it() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job \"hello\" {\n  command = \"echo\"\n  args = [\"hello from -c\"]\n  oneTime = true\n}\n",
    );
    for flag in ["-c", "--config-dir"] {
        let out = run(gantry(&[flag, dir.str(), "up"]));
        assert_eq!(out.code, Some(0), "{flag}: {}", out.stderr);
        assert!(out.stdout.contains("hello from -c"), "{}", out.stdout);
        let out = run(gantry(&[flag, dir.str(), "check"]));
        assert_eq!(out.code, Some(0), "{flag}: {}", out.stderr);
        assert!(out.stdout.contains(dir.str()), "{}", out.stdout);
    }
    // It beats GANTRY_CONFIG_DIR, and the subcommand's own -c beats it.
    let other = Dir::new();
    other.write("b.hcl", "job \"other\" {\n  command = \"true\"\n}\n");
    let mut cmd = gantry(&["-c", dir.str(), "check"]);
    cmd.env("GANTRY_CONFIG_DIR", other.str());
    let out = run(cmd);
    assert!(out.stdout.contains("hello:"), "{}", out.stdout);
    let out = run(gantry(&["-c", other.str(), "check", "-c", dir.str()]));
    assert!(out.stdout.contains("hello:"), "{}", out.stdout);
    assert!(!out.stdout.contains("other:"), "{}", out.stdout);
}

#[test]
fn config_dir_before_renderfiles() {
    let dir = Dir::new();
    let target = dir.join("out.txt");
    dir.write(
        "a.hcl",
        &format!(
            "file \"{}\" {{\n  content = \"rendered by -c\"\n}}\n",
            target.display()
        ),
    );
    let out = run(gantry(&[
        "-c",
        dir.str(),
        "renderfiles",
        "--",
        "cat",
        target.to_str().expect("utf-8"),
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("rendered by -c"), "{}", out.stdout);
}

#[test]
fn config_dir_before_a_subcommand_without_a_config_directory_is_a_usage_error() {
    let dir = Dir::new();
    for args in [
        vec!["-c", dir.str(), "wait", "tcp://127.0.0.1:1"],
        vec!["-c", dir.str(), "version"],
        vec!["-c", dir.str(), "--", "true"],
    ] {
        let out = run(gantry(&args));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("-c/--config-dir before the subcommand"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn up_k_keeps_running_after_every_job_ended_until_sigterm() {
    let dir = Dir::new();
    let marker = dir.join("ran");
    dir.write(
        "a.hcl",
        &format!(
            "job \"once\" {{\n  command = \"touch\"\n  args = [\"{}\"]\n  oneTime = true\n}}\n",
            marker.display()
        ),
    );
    let mut child = spawn(gantry(&["-c", dir.str(), "up", "-k"]));
    wait_until("the job to run", || marker.exists());
    // The only job has ended; without -k gantry would exit now.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "gantry exited although -k was given"
    );
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Boot jobs that wait for probes

/// A boot job that records when it started and succeeds only if `marker` exists by then.
fn gated_boot(name: &str, dir: &Dir, marker: &Path, extra: &str) -> String {
    format!(
        r#"
boot "{name}" {{
  command = "sh"
  args = ["-c", "touch {started}; test -e {m} && echo {name}-saw-the-probe-ready"]
  {extra}
}}
"#,
        started = dir.join(&format!("{name}.started")).display(),
        m = marker.display()
    )
}

fn late_probe(name: &str, port: u16, wait: bool) -> String {
    format!(
        r#"
probe "{name}" {{
  wait = {wait}
  tcp {{
    host = {{ hostname = "127.0.0.1", port = {port} }}
  }}
}}
"#
    )
}

#[test]
fn a_boot_job_with_wait_for_starts_only_once_its_probe_is_ready_and_others_boot_meanwhile() {
    let dir = Dir::new();
    let port = free_port();
    let marker = dir.join("listening");
    let early = dir.join("early.done");
    dir.write(
        "a.hcl",
        &format!(
            "{}{}{}\nboot \"early\" {{\n  command = \"touch\"\n  args = [\"{}\"]\n}}\njob \"app\" {{\n  command = \"echo\"\n  args = [\"app-started\"]\n  oneTime = true\n}}\n",
            late_probe("db", port, false),
            gated_boot("migrate", &dir, &marker, "waitFor = [\"db\"]"),
            gated_boot("seed", &dir, &marker, "waitFor = [\"db\"]"),
            early.display()
        ),
    );
    let child = spawn(gantry_pid1(&["up", "-c", dir.str()]));
    // gantry's order: the boot job without waitFor runs at once, while `db` is not ready.
    wait_until("the ungated boot job", || early.exists());
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !dir.join("migrate.started").exists() && !dir.join("seed.started").exists(),
        "a boot job started before the probe it waits for was ready"
    );
    let out = make_the_probe_ready_and_finish(child, &marker, port);
    assert_printed(
        &out,
        &["migrate-saw-the-probe-ready", "seed-saw-the-probe-ready"],
    );
    assert!(out.stdout.contains("app-started"), "{}", out.stdout);
    // One probe, polled once for both boot jobs (and, wait = false, not again after boot).
    assert_eq!(
        out.stderr.matches("is ready after").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn a_wait_for_probe_that_never_gets_ready_stops_startup_with_75_and_names_the_boot_job() {
    let dir = Dir::new();
    let port = free_port();
    let never = dir.join("never");
    dir.write(
        "a.hcl",
        &format!(
            "{}{}job \"app\" {{\n  command = \"touch\"\n  args = [\"{}\"]\n}}\n",
            late_probe("db", port, true),
            gated_boot("migrate", &dir, &never, "waitFor = [\"db\"]"),
            never.display()
        ),
    );
    let out = run(gantry(&["up", "-c", dir.str(), "--wait-timeout", "1s"]));
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(!dir.join("migrate.started").exists());
    assert!(!never.exists());
    assert!(
        out.stderr.contains("boot job(s) migrate not started"),
        "{}",
        out.stderr
    );
}

#[test]
fn sigterm_while_a_boot_job_waits_for_its_probe_exits_143_without_starting_it() {
    let dir = Dir::new();
    let port = free_port();
    let never = dir.join("never");
    dir.write(
        "a.hcl",
        &format!(
            "{}{}",
            late_probe("db", port, true),
            gated_boot("migrate", &dir, &never, "waitFor = [\"db\"]"),
        ),
    );
    let child = spawn(gantry(&["up", "-c", dir.str()]));
    std::thread::sleep(Duration::from_millis(500));
    kill(child.id(), 15);
    let out = finish(child);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(!dir.join("migrate.started").exists());
}

#[test]
fn a_migration_waits_for_postgresql_and_runs_against_it() {
    // PostgreSQL on 5432 (trust auth, see SERVICES.md); the boot job is a real client.
    let dir = Dir::new();
    let table = format!("gantry_mittnite_{}", std::process::id());
    dir.write(
        "a.hcl",
        &format!(
            r#"
probe "pg" {{
  url = "postgres://postgres@127.0.0.1:5432/postgres"
}}
boot "migrate" {{
  command = "psql"
  args = ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
          "CREATE TEMP TABLE {table} (id int); INSERT INTO {table} VALUES (42); SELECT 'migrated:' || id FROM {table}"]
  waitFor = ["pg"]
}}
job "app" {{
  command = "echo"
  args = ["app-after-migration"]
  oneTime = true
}}
"#
        ),
    );
    let out = run(gantry_pid1(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("migrated:42"), "{}", out.stdout);
    let migrated = out.stdout.find("migrated:42").unwrap_or(usize::MAX);
    let app = out.stdout.find("app-after-migration").unwrap_or(0);
    assert!(migrated < app, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("boot job \"migrate\": probe(s) pg ready"),
        "{}",
        out.stderr
    );
}

#[test]
fn settings_probes_before_boot_gives_mittnites_order_for_the_whole_directory() {
    let dir = Dir::new();
    let port = free_port();
    let marker = dir.join("listening");
    dir.write(
        "00-settings.hcl",
        "settings {\n  probesBeforeBoot = true\n}\n",
    );
    dir.write(
        "a.hcl",
        &format!(
            "{}{}{}",
            late_probe("db", port, true),
            gated_boot("first", &dir, &marker, ""),
            gated_boot("second", &dir, &marker, ""),
        ),
    );
    let out = check(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let probe_at = out.stdout.find("2. probe: wait for 1 probe(s)");
    let boot_at = out.stdout.find("3. boot: 2 job(s)");
    assert!(
        probe_at.is_some() && boot_at.is_some() && probe_at < boot_at,
        "{}",
        out.stdout
    );

    let child = spawn(gantry_pid1(&["up", "-c", dir.str()]));
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !dir.join("first.started").exists() && !dir.join("second.started").exists(),
        "a boot job started before every probe was ready"
    );
    let out = make_the_probe_ready_and_finish(child, &marker, port);
    assert_printed(
        &out,
        &["first-saw-the-probe-ready", "second-saw-the-probe-ready"],
    );
}

#[test]
fn without_the_setting_boot_jobs_run_before_probes() {
    // gantry's default, for contrast with the test above: the boot job runs while the probe is
    // not ready, so it does not see the marker and fails.
    let dir = Dir::new();
    let port = free_port();
    let marker = dir.join("listening");
    dir.write(
        "a.hcl",
        &format!(
            "{}{}",
            late_probe("db", port, true),
            gated_boot("first", &dir, &marker, ""),
        ),
    );
    let out = run(gantry(&["up", "-c", dir.str(), "--wait-timeout", "5s"]));
    assert_eq!(out.code, Some(71), "{}", out.stderr);
    assert!(dir.join("first.started").exists());
}

#[test]
fn wait_for_and_settings_mistakes_are_config_errors_with_file_line_and_column() {
    let dir = Dir::new();
    let a = dir.write(
        "a.hcl",
        concat!(
            "probe \"db\" {\n",
            "  url = \"tcp://127.0.0.1:1\"\n",
            "}\n",
            "boot \"migrate\" {\n",
            "  command = \"true\"\n",
            "  waitFor = [\"db\", \"dbb\", \"db\"]\n",
            "}\n",
            "boot \"lone\" {\n",
            "  command = \"true\"\n",
            "  waitFor = \"db\"\n",
            "}\n",
            "settings {\n",
            "  probesBeforeBoot = \"yes\"\n",
            "  probesFirst = true\n",
            "}\n",
        ),
    );
    let b = dir.write("b.hcl", "settings {\n  probesBeforeBoot = true\n}\n");
    let out = check(&dir);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let (a, b) = (a.display(), b.display());
    for want in [
        format!("{a}:6:20: boot \"migrate\": attribute \"waitFor\": no probe is named \"dbb\" (the probes are db) (did you mean \"db\"?)"),
        format!("{a}:6:27: boot \"migrate\": attribute \"waitFor\": probe \"db\" is listed twice (first at column 14)"),
        format!("{a}:10:13: boot \"lone\": attribute \"waitFor\": expected a list of strings, found a string (write [\"db\"] for a list of one)"),
        format!("{a}:13:22: settings: attribute \"probesBeforeBoot\": expected true or false, found a string"),
        format!("{a}:14:3: settings: unknown attribute \"probesFirst\""),
        format!("{b}:1:1: only one settings block is allowed in the directory (first at {a}:12:1)"),
    ] {
        assert!(out.stderr.contains(&want), "{want:?} missing in:\n{}", out.stderr);
    }
    assert!(
        out.stderr.contains("6 configuration errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_for_names_a_probe_when_there_are_none() {
    let dir = Dir::new();
    let a = dir.write(
        "a.hcl",
        "boot \"m\" {\n  command = \"true\"\n  waitFor = [\"db\"]\n}\n",
    );
    let out = run(gantry(&["up", "-c", dir.str()]));
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    let want = format!(
        "{}:3:14: boot \"m\": attribute \"waitFor\": no probe is named \"db\" (there are no probe blocks)",
        a.display()
    );
    assert!(
        out.stderr.contains(&want),
        "{want:?} missing in:\n{}",
        out.stderr
    );
}

#[test]
fn the_repository_mittnite_examples_load_in_gantrys_order_with_no_warning() {
    // (Their templates name paths relative to mittnite's repository, so `check` would stop there.)
    for fixture in ["tests/fixtures/mittnite", "tests/fixtures/mittnite-lazy"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture);
        let plan = gantry::config::load(&dir).expect("the fixtures load");
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert_eq!(plan.order, gantry::config::Order::BootFirst);
    }
}

/// Makes the late probe ready (the marker the boot jobs check, then the listener the tcp probe
/// waits for), waits for gantry to end, and checks it exited 0.
fn make_the_probe_ready_and_finish(child: std::process::Child, marker: &Path, port: u16) -> Output {
    std::fs::write(marker, "").expect("marker");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind late port");
    let out = finish(child);
    drop(listener);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

/// Checks that every one of `lines` is in gantry's stdout.
fn assert_printed(out: &Output, lines: &[&str]) {
    for line in lines {
        assert!(
            out.stdout.contains(line),
            "{line} missing in {}",
            out.stdout
        );
    }
}
