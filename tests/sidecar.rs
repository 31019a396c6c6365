//! `gantry sidecar` against real processes: bash scripts that count the SIGHUPs they receive, found by the
//! name they were started under. Waits are bounded hang guards; nothing asserts on latency.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HANG_GUARD: Duration = Duration::from_secs(15);
const SETTLE: Duration = Duration::from_millis(1200);

/// Kills and reaps its process when dropped, so a failing test leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bash process named `name` (its argv[0]) that appends a line to `count` for every SIGHUP.
fn counting_target(dir: &Path, name: &str, tag: &str) -> (Proc, PathBuf) {
    let count = dir.join(format!("{tag}.count"));
    let ready = dir.join(format!("{tag}.ready"));
    let script = r#"trap 'echo hup >> "$COUNT"' HUP
echo ready > "$READY"
while :; do sleep 1 & wait $!; done"#;
    let child = Command::new("bash")
        .arg0(name)
        .arg("-c")
        .arg(script)
        .env("COUNT", &count)
        .env("READY", &ready)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_for("the target to install its trap", || ready.exists());
    (proc, count)
}

fn hups(count: &Path) -> usize {
    fs::read_to_string(count)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn sidecar(bin: &Path, config_dir: &Path, name: &str, log: &Path) -> Proc {
    let child = Command::new(bin)
        .arg("sidecar")
        .arg("--debounce")
        .arg("200ms")
        .env("CONFIG_DIR", config_dir)
        .env("PROCESS_NAME", name)
        .env("RELOAD_SIGNAL", "SIGHUP")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_for("the sidecar to start watching", || {
        fs::read_to_string(log)
            .unwrap_or_default()
            .contains("watching")
    });
    proc
}

/// Write-and-rename, with the temporary file outside the watched directory: in a directory watch a
/// temporary file is itself a file, and these tests are about finding processes, not about timing.
fn editor_save(path: &Path, content: &str) {
    let dir = path.parent().unwrap().parent().unwrap();
    let tmp = dir.join("editor.tmp~");
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// A name no other test (or process on this machine) uses, within comm's 15 bytes.
fn unique_name(tag: &str) -> String {
    format!("g{tag}{}", std::process::id())
}

fn gantry() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gantry"))
}

#[test]
fn signals_every_process_with_the_name_once_per_change_and_follows_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("pgbouncer.ini"), "pool_size = 10\n").unwrap();
    let name = unique_name("rl");
    let (a1, count_a1) = counting_target(dir.path(), &name, "a1");
    let (a2, count_a2) = counting_target(dir.path(), &name, "a2");
    let log = dir.path().join("sidecar.log");
    let mut side = sidecar(&gantry(), &conf, &name, &log);

    std::thread::sleep(SETTLE);
    assert_eq!(
        (hups(&count_a1), hups(&count_a2)),
        (0, 0),
        "no signal at start"
    );

    editor_save(&conf.join("pgbouncer.ini"), "pool_size = 20\n");
    wait_for("both targets to be signalled", || {
        hups(&count_a1) >= 1 && hups(&count_a2) >= 1
    });
    std::thread::sleep(SETTLE);
    assert_eq!(
        (hups(&count_a1), hups(&count_a2)),
        (1, 1),
        "exactly one each"
    );

    // The target restarts under a new pid; the sidecar must look it up again.
    let old_pid = a1.pid();
    drop(a1);
    drop(a2);
    let (b, count_b) = counting_target(dir.path(), &name, "b");
    assert_ne!(b.pid(), old_pid);
    fs::write(conf.join("pgbouncer.ini"), "pool_size = 30\n").unwrap();
    wait_for("the restarted target to be signalled", || {
        hups(&count_b) >= 1
    });
    std::thread::sleep(SETTLE);
    assert_eq!(hups(&count_b), 1);
    assert_eq!(hups(&count_a1), 1, "the old process got nothing more");

    // A touch is not a change.
    let f = conf.join("pgbouncer.ini");
    filetime::set_file_mtime(&f, filetime::FileTime::now()).unwrap();
    std::thread::sleep(SETTLE);
    assert_eq!(hups(&count_b), 1);
    assert!(side.alive());
}

#[test]
fn waits_for_a_target_that_is_not_running_yet() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("app.conf"), "v1").unwrap();
    let name = unique_name("late");
    let log = dir.path().join("sidecar.log");
    let mut side = sidecar(&gantry(), &conf, &name, &log);
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("not running yet"));

    fs::write(conf.join("app.conf"), "v2").unwrap();
    std::thread::sleep(SETTLE);
    assert!(side.alive());

    let (_t, count) = counting_target(dir.path(), &name, "t");
    fs::write(conf.join("app.conf"), "v3").unwrap();
    wait_for("the late target to be signalled", || hups(&count) >= 1);
    std::thread::sleep(SETTLE);
    assert_eq!(hups(&count), 1);
}

#[test]
fn never_signals_itself() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("app.conf"), "v1").unwrap();
    // A copy of gantry whose comm is the name being looked for: SIGHUP would kill it.
    let name = unique_name("self");
    let bin = dir.path().join(&name);
    fs::copy(gantry(), &bin).unwrap();
    let log = dir.path().join("sidecar.log");
    let mut side = sidecar(&bin, &conf, &name, &log);

    fs::write(conf.join("app.conf"), "v2").unwrap();
    std::thread::sleep(SETTLE);
    assert!(side.alive(), "the sidecar signalled itself");

    // It is still working: a real process with that name is signalled.
    let (_t, count) = counting_target(dir.path(), &name, "t");
    fs::write(conf.join("app.conf"), "v3").unwrap();
    wait_for("the target to be signalled", || hups(&count) >= 1);
    assert!(side.alive());
}

#[test]
fn kubernetes_configmap_update_is_one_signal() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    fs::create_dir(&vol).unwrap();
    let v1 = vol.join("..2024_01_01_00_00_00.1");
    fs::create_dir(&v1).unwrap();
    fs::write(v1.join("nginx.conf"), "worker_processes 1;").unwrap();
    std::os::unix::fs::symlink("..2024_01_01_00_00_00.1", vol.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/nginx.conf", vol.join("nginx.conf")).unwrap();
    let name = unique_name("k8s");
    let (_t, count) = counting_target(dir.path(), &name, "t");
    let log = dir.path().join("sidecar.log");
    let _side = sidecar(&gantry(), &vol, &name, &log);

    let v2 = vol.join("..2024_01_01_00_01_00.2");
    fs::create_dir(&v2).unwrap();
    fs::write(v2.join("nginx.conf"), "worker_processes 4;").unwrap();
    std::os::unix::fs::symlink("..2024_01_01_00_01_00.2", vol.join("..data_tmp")).unwrap();
    fs::rename(vol.join("..data_tmp"), vol.join("..data")).unwrap();
    fs::remove_dir_all(&v1).unwrap();

    wait_for("the target to be signalled", || hups(&count) >= 1);
    std::thread::sleep(SETTLE);
    assert_eq!(hups(&count), 1);
}

#[test]
fn pidfile_and_name_are_mutually_exclusive_and_one_is_required() {
    let out = Command::new(gantry())
        .args(["sidecar", "--config-dir", "/tmp"])
        .env_remove("PROCESS_NAME")
        .env_remove("PROCESS_PIDFILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(gantry())
        .args([
            "sidecar",
            "--config-dir",
            "/tmp",
            "--process-name",
            "x",
            "--pidfile",
            "/p",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(gantry())
        .args([
            "sidecar",
            "--config-dir",
            "/tmp",
            "--process-name",
            "x",
            "--reload-signal",
            "SIGNOPE",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGNOPE"));
}

/// Like a pod with `shareProcessNamespace: true`: the target and the sidecar are the only processes of
/// a new PID namespace (with its own /proc), and the sidecar finds the target there by name.
#[test]
fn finds_its_target_by_name_inside_a_shared_pid_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("conf");
    fs::create_dir_all(&conf_dir).unwrap();
    fs::write(conf_dir.join("app.ini"), "v1\n").unwrap();
    let count = dir.path().join("hups");
    let driver = format!(
        r#"set -e
COUNT={count}
(exec -a pgbouncer bash -c 'trap "echo hup >> $0" HUP; echo ready >> $0.ready; while :; do sleep 1 & wait $!; done' "$COUNT") &
until [ -e "$COUNT.ready" ]; do sleep 0.05; done
CONFIG_DIR={conf} PROCESS_NAME=pgbouncer {bin} sidecar --debounce 100ms 2>{log} &
sleep 1
echo v2 > {conf}/app.ini
for i in $(seq 1 200); do [ -s "$COUNT" ] && break; sleep 0.05; done
sleep 0.5
wc -l < "$COUNT" 2>/dev/null || echo 0"#,
        count = count.display(),
        conf = conf_dir.display(),
        bin = env!("CARGO_BIN_EXE_gantry"),
        log = dir.path().join("sidecar.log").display(),
    );
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "bash", "-c", &driver])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = fs::read_to_string(dir.path().join("sidecar.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "sidecar log:\n{log}"
    );
}

#[test]
fn sigterm_and_sigint_end_the_sidecar_with_0_and_a_bad_glob_with_1() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        fs::create_dir(&conf).unwrap();
        let log = dir.path().join("log");
        let mut proc = sidecar(&gantry(), &conf, &unique_name("st"), &log);
        let ok = Command::new("kill")
            .args([signal, &proc.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = proc.0.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < HANG_GUARD, "the sidecar ignored {signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            status.code(),
            Some(0),
            "{signal}: {}",
            fs::read_to_string(&log).unwrap()
        );
        assert!(!proc.alive());
    }
    let out = Command::new(gantry())
        .args(["sidecar", "--process-name", "nothing"])
        .env("CONFIG_DIR", "/tmp/[unclosed")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
