//! Lazy jobs and listeners, black-box: the real `gantry up`, real TCP and unix clients, and a real
//! upstream started by the job (`tests/lazy_upstream.py`). Every gantry is killed if a test fails or
//! hangs (`Up`'s drop and the support guard). Timing asserts are lower bounds, or loose upper bounds.
//! Ports come from binding port 0 just before use.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lazy_upstream.py");

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running `gantry up`; killed when dropped.
struct Up {
    child: Option<Child>,
    dir: Dir,
}

impl Up {
    fn start(dir: Dir) -> Up {
        let conf = dir.join("conf");
        Up::start_with(dir, &conf, None)
    }

    /// `gantry up -c conf`, with `path` in front of `PATH`.
    fn start_with(dir: Dir, conf: &Path, path: Option<&Path>) -> Up {
        let log = std::fs::File::create(dir.join("gantry.log")).expect("log");
        let mut cmd = gantry(&["up", "-c", conf.to_str().expect("utf-8")]);
        if let Some(p) = path {
            let old = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{old}", p.display()));
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn gantry");
        let up = Up {
            child: Some(child),
            dir,
        };
        up.wait_log("listening on");
        up
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn log(&self) -> String {
        read(&self.dir.join("gantry.log"))
    }

    fn wait_log(&self, text: &str) {
        wait_until(&format!("{text:?} in gantry's log"), || {
            self.log().contains(text)
        });
    }

    /// The upstream pids started so far.
    fn pids(&self) -> Vec<u32> {
        read(&self.dir.join("pids"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGTERM, then the exit code (under the guard).
    fn stop(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("child");
        kill(child.id(), libc::SIGTERM);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > GUARD {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gantry did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), self.log())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The upstreams are gantry's children and die with it only if gantry stopped them. A pid
        // is killed only while it is still our upstream (pids are reused).
        for pid in self.pids() {
            let cmdline = read(Path::new(&format!("/proc/{pid}/cmdline")));
            if cmdline.contains("lazy_upstream.py") {
                let _ = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A config directory with one job running the test upstream in `mode`.
struct Job<'a> {
    mode: &'a str,
    upstream: String,
    delay: f64,
    lazy: Option<&'a str>,
    listen: String,
    extra_listen: &'a str,
    extra_job: &'a str,
    env: &'a str,
}

impl Job<'_> {
    fn tcp(mode: &str) -> (Job<'_>, u16) {
        let port = free_port();
        (
            Job {
                mode,
                upstream: format!("127.0.0.1:{}", free_port()),
                delay: 0.0,
                lazy: Some("spinUpTimeout = \"10s\"\n    coolDownTimeout = \"15m\""),
                listen: format!("127.0.0.1:{port}"),
                extra_listen: "",
                extra_job: "",
                env: "",
            },
            port,
        )
    }

    fn write(&self) -> Dir {
        let dir = Dir::new();
        let forward_protocol = if self.upstream.starts_with('/') {
            "forwardProtocol = \"unix\""
        } else {
            ""
        };
        let listen_protocol = if self.listen.starts_with('/') {
            "listenProtocol = \"unix\""
        } else {
            ""
        };
        let lazy = self
            .lazy
            .map_or_else(String::new, |l| format!("lazy {{\n    {l}\n  }}"));
        dir.write(
            "conf/job.hcl",
            &format!(
                r#"
job "up" {{
  command = "python3"
  args = ["{script}", "{mode}", "{upstream}", "{delay}", "{out}"]
  env = [{env}]
  {extra_job}
  {lazy}
  listen "{listen}" {{
    forward = "{upstream}"
    {forward_protocol}
    {listen_protocol}
    {extra_listen}
  }}
}}
"#,
                script = UPSTREAM,
                mode = self.mode,
                upstream = self.upstream,
                delay = self.delay,
                out = dir.str(),
                env = self.env,
                extra_job = self.extra_job,
                listen = self.listen,
                extra_listen = self.extra_listen,
            ),
        );
        dir
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(GUARD)).expect("timeout");
    s
}

fn read_line(s: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).expect("read") == 1 {
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn alive(pid: u32) -> bool {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    !stat.is_empty() && !stat.contains(") Z ")
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn the_first_connection_starts_the_lazy_job_and_gets_its_answer() {
    let (mut job, port) = Job::tcp("hello");
    job.delay = 0.3;
    let up = Up::start(job.write());
    // Listening, and nothing started: the job is idle until a client comes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(up.pids().is_empty(), "started before any connection");
    let mut c = connect(port);
    let line = read_line(&mut c);
    assert!(line.starts_with("pid="), "{line:?}");
    c.write_all(b"ping\n").expect("write");
    assert_eq!(read_line(&mut c), "ping");
    assert_eq!(up.pids().len(), 1);
    up.wait_log("cold start answered after");
    // The running lazy job dies of the shutdown's SIGTERM and counts as any job stopped by it
    // would: 143, as with tini (not 0 because it ends idle).
    let (code, log) = up.stop();
    assert_eq!(code, Some(143), "{log}");
}

#[test]
fn fifty_clients_connecting_before_the_job_is_up_are_all_served_by_one_process() {
    let (mut job, port) = Job::tcp("hello");
    job.delay = 1.0;
    let up = Up::start(job.write());
    let clients: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(port);
                read_line(&mut c)
            })
        })
        .collect();
    let answers: Vec<String> = clients
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    let first = &answers[0];
    assert!(first.starts_with("pid="), "{answers:?}");
    assert!(answers.iter().all(|a| a == first), "{answers:?}");
    assert_eq!(up.pids().len(), 1, "one process for fifty clients");
    drop(up);
}

#[test]
fn a_spin_up_timeout_closes_the_held_clients_and_counts_as_a_failed_start() {
    let (mut job, port) = Job::tcp("hello");
    // The upstream never listens within the spin-up timeout.
    job.delay = 600.0;
    job.lazy = Some("spinUpTimeout = \"1s\"");
    job.extra_job = "maxAttempts = 1\n  canFail = true\n  stopTimeout = \"1s\"";
    let up = Up::start(job.write());
    let begin = Instant::now();
    let held: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = connect(port);
                let mut buf = Vec::new();
                // Closed cleanly: end of input, no data, no reset.
                c.read_to_end(&mut buf).map(|_| buf.len())
            })
        })
        .collect();
    for t in held {
        assert_eq!(t.join().expect("client").expect("clean close"), 0);
    }
    assert!(
        begin.elapsed() >= Duration::from_secs(1),
        "closed before the spin-up timeout"
    );
    up.wait_log("did not answer");
    // maxAttempts = 1: that failed start was the last; the listener now refuses, with a log line.
    up.wait_log("after 1 attempt(s)");
    let mut c = connect(port);
    let mut buf = [0u8; 8];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "served by a failed job"
    );
    up.wait_log("its listeners refuse connections");
    assert_eq!(up.pids().len(), 0, "the upstream never listened");
    let (code, log) = up.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn after_the_cool_down_the_job_is_stopped_not_before_and_the_next_connection_starts_it_again() {
    let (mut job, port) = Job::tcp("hello");
    job.lazy = Some("coolDownTimeout = \"1500ms\"");
    let up = Up::start(job.write());
    let mut c = connect(port);
    let first = read_line(&mut c);
    let pid = up.pids()[0];
    // A connection held open keeps the job up well past its cool-down.
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(pid), "stopped while a connection was open");
    drop(c);
    let closed = Instant::now();
    wait_until("the cool-down stop", || !alive(pid));
    let after = closed.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "stopped after {after:?}"
    );
    assert!(
        after < Duration::from_secs(10),
        "stopped only after {after:?}"
    );
    // The next connection starts it again: a new process.
    let mut c = connect(port);
    let second = read_line(&mut c);
    assert!(
        second.starts_with("pid=") && second != first,
        "{first} {second}"
    );
    assert_eq!(up.pids().len(), 2);
    drop(c);
    drop(up);
}

#[test]
fn a_job_that_ignores_its_stop_signal_is_sigkilled_after_the_cool_down() {
    let (mut job, port) = Job::tcp("hello");
    job.lazy = Some("coolDownTimeout = \"300ms\"");
    job.extra_job = "stopTimeout = \"1s\"";
    job.env = "\"UP_IGNORE_TERM=1\"";
    let up = Up::start(job.write());
    let mut c = connect(port);
    read_line(&mut c);
    let pid = up.pids()[0];
    drop(c);
    let closed = Instant::now();
    wait_until("the SIGKILL", || !alive(pid));
    assert!(closed.elapsed() >= Duration::from_millis(1300));
    up.wait_log("sending SIGKILL");
    drop(up);
}

#[test]
fn a_crashed_lazy_process_is_started_again_by_the_next_connection() {
    let (job, port) = Job::tcp("crash");
    let up = Up::start(job.write());
    let mut c = connect(port);
    let first = read_line(&mut c);
    drop(c);
    let pid = up.pids()[0];
    wait_until("the crash", || !alive(pid));
    // Not restarted by itself ...
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(up.pids().len(), 1, "restarted without a connection");
    // ... but by the next connection.
    let mut c = connect(port);
    let second = read_line(&mut c);
    assert!(
        second.starts_with("pid=") && second != first,
        "{first} {second}"
    );
    drop(up);
}

#[test]
fn unix_clients_reach_a_unix_upstream() {
    let dir_for_sockets = Dir::new();
    let listen = dir_for_sockets.join("front.sock");
    let (mut job, _) = Job::tcp("echo-all");
    job.upstream = dir_for_sockets.join("up.sock").display().to_string();
    job.listen = listen.display().to_string();
    let up = Up::start(job.write());
    let mut c = UnixStream::connect(&listen).expect("connect");
    c.write_all(b"hello over unix").expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("read");
    assert!(reply.contains("n=15"), "{reply}");
    let (code, log) = up.stop();
    assert_eq!(code, Some(143), "the running job died of SIGTERM: {log}");
    assert!(!listen.exists(), "the socket file is removed");
}

#[test]
fn a_client_that_half_closes_still_reads_the_whole_reply() {
    let (job, port) = Job::tcp("echo-all");
    let up = Up::start(job.write());
    let mut c = connect(port);
    let payload = vec![7u8; 300_000];
    c.write_all(&payload).expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("read");
    let sha = sha256_hex(&payload);
    assert!(reply.ends_with(&format!("n=300000 sha={sha}")), "{reply}");
    drop(up);
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 MiB each way at once through the proxy, checksummed on both ends (bench/proxy.sh does 1 GiB).
#[test]
fn data_crosses_the_proxy_intact_in_both_directions_at_once() {
    use sha2::Digest;
    const TOTAL: usize = 256 << 20;
    let (mut job, port) = Job::tcp("blast");
    let env = format!("\"BLAST_BYTES={TOTAL}\"");
    job.env = &env;
    let up = Up::start(job.write());
    let c = connect(port);
    let mut reader = c.try_clone().expect("clone");
    let receiving = std::thread::spawn(move || {
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0usize;
        loop {
            let k = reader.read(&mut buf).expect("read");
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k;
        }
        (n, hex(&h.finalize()))
    });
    let mut writer = c;
    let mut h = sha2::Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for (i, chunk) in block.chunks_mut(8).enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&(x ^ i as u64).to_le_bytes());
    }
    for i in 0..(TOTAL >> 20) {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        writer.write_all(&block).expect("write");
        h.update(&block);
    }
    writer.shutdown(Shutdown::Write).expect("half-close");
    let sent = hex(&h.finalize());
    let (n, got) = receiving.join().expect("receiver");
    assert_eq!(n, TOTAL);
    wait_until("the upstream's checksums", || {
        up.dir.join("received.1").exists() && up.dir.join("sent.1").exists()
    });
    assert_eq!(read(&up.dir.join("sent.1")), got, "upstream -> client");
    assert_eq!(
        read(&up.dir.join("received.1")),
        format!("{TOTAL} {sent}"),
        "client -> upstream"
    );
    drop(up);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_upstream_reset_resets_the_client() {
    let (job, port) = Job::tcp("reset");
    let up = Up::start(job.write());
    let mut c = connect(port);
    c.write_all(b"x").expect("write");
    let mut buf = [0u8; 16];
    let err = c.read(&mut buf).expect_err("a reset, not a clean end");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    drop(up);
}

#[test]
fn a_thousand_connections_aborted_mid_transfer_leave_gantrys_fd_count_unchanged() {
    let (job, port) = Job::tcp("endless");
    let up = Up::start(job.write());
    // The first connection starts the job; count from there.
    let mut c = connect(port);
    let mut buf = vec![0u8; 4096];
    c.read_exact(&mut buf).expect("first data");
    drop(c);
    let gantry = up.pid();
    wait_until("the first connection to close", || fd_count(gantry) > 0);
    std::thread::sleep(Duration::from_millis(300));
    let before = fd_count(gantry);
    for i in 0..1000 {
        let mut c = connect(port);
        // Read some of the endless stream, then vanish with data unread: a reset.
        c.read_exact(&mut buf[..1 + i % 4000]).expect("data");
        drop(c);
    }
    let mut now = fd_count(gantry);
    wait_until("gantry's fds to come back", || {
        now = fd_count(gantry);
        now <= before
    });
    assert_eq!(now, before);
    drop(up);
}

#[test]
fn a_listen_block_without_lazy_is_an_always_on_forwarder() {
    let (mut job, port) = Job::tcp("hello");
    job.lazy = None;
    let up = Up::start(job.write());
    // The job starts with the run phase, not on a connection.
    wait_until("the job to start by itself", || up.pids().len() == 1);
    let mut c = connect(port);
    assert!(read_line(&mut c).starts_with("pid="));
    drop(up);
}

#[test]
fn proxy_protocol_v1_tells_the_upstream_the_client_address() {
    let (mut job, port) = Job::tcp("proxyline");
    job.extra_listen = "proxyProtocol = \"v1\"";
    let up = Up::start(job.write());
    let mut c = connect(port);
    let local = c.local_addr().expect("addr");
    let line = read_line(&mut c);
    assert_eq!(
        line,
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {port}\r", local.port())
    );
    drop(up);
}

#[test]
fn mittnites_lazy_examples_load_unchanged() {
    for example in [
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mittnite/lazy.hcl"
        )),
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mittnite-lazy/readme.hcl"
        )),
    ] {
        let out = run(gantry(&["check", "-c", example.to_str().expect("utf-8")]));
        assert_eq!(out.code, Some(0), "{}: {}", example.display(), out.stderr);
        assert!(
            out.stdout
                .contains("listen tcp 0.0.0.0:8080 -> tcp 127.0.0.1:8081"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn the_deprecated_protocol_attribute_is_read_with_one_warning() {
    let dir = Dir::new();
    dir.write(
        "a.hcl",
        "job a {\n command = \"x\"\n listen \"127.0.0.1:1\" {\n  forward = \"/tmp/x.sock\"\n  protocol = \"unix\"\n }\n}\n",
    );
    let out = run(gantry(&["check", "-c", dir.str()]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("deprecated").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("-> unix /tmp/x.sock"), "{}", out.stdout);
}

/// mittnite's own example runs as written: `http-server` (a stand-in on PATH) behind 0.0.0.0:8080.
#[test]
fn mittnites_lazy_example_runs_unchanged() {
    if std::net::TcpListener::bind("0.0.0.0:8080").is_err()
        || std::net::TcpListener::bind("127.0.0.1:8081").is_err()
    {
        eprintln!("skipped: ports 8080/8081 are in use on this machine");
        return;
    }
    let dir = Dir::new();
    let server = dir.write(
        "bin/http-server",
        "#!/usr/bin/env python3\n\
         import sys, http.server\n\
         port, addr = 8080, '0.0.0.0'\n\
         for a in sys.argv[1:]:\n\
         \x20   port = int(a[2:]) if a.startswith('-p') else port\n\
         \x20   addr = a[2:] if a.startswith('-a') else addr\n\
         http.server.HTTPServer((addr, port), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let conf = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mittnite/lazy.hcl"
    ));
    let bin = dir.join("bin");
    let up = Up::start_with(dir, &conf, Some(&bin));
    let mut c = connect(8080);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    let (code, log) = up.stop();
    assert_eq!(code, Some(143), "the running job died of SIGTERM: {log}");
    assert!(log.contains("cold start answered"), "{log}");
}
