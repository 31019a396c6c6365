//! Socket activation (`listen { activation = "socket" }`), black-box: the real `gantry up` and a
//! real job (a small Python server, `JOB` below) that accepts on fd 3 itself and tells each client
//! what it saw: its pid, `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES` and the client's address.
//! Every gantry is killed if a test fails or hangs (`Up`'s drop and the support guard).

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The job: `job.py OUTDIR MODE`. Appends its pid to OUTDIR/pids once it has fd 3, then answers
/// each connection with one line; `once` exits after the first connection (and is restarted after its backoff).
const JOB: &str = r#"
import os, socket, sys
out, mode = sys.argv[1], sys.argv[2]
pid = os.getpid()
srv = socket.socket(fileno=3)
with open(os.path.join(out, "pids"), "a") as f:
    f.write(f"{pid}\n")
env = os.environ
while True:
    c, addr = srv.accept()
    c.sendall((f"pid={pid} fds={env.get('LISTEN_FDS')} listen_pid={env.get('LISTEN_PID')} "
               f"names={env.get('LISTEN_FDNAMES')} peer={addr[0]}:{addr[1]}\n").encode())
    c.close()
    if mode == "once":
        sys.exit(0)
"#;

/// A job in mode `fail`: exits 1 at once without accepting (prepended to `JOB`).
const FAIL: &str = r#"
import sys
if sys.argv[2] == "fail":
    sys.exit(1)
"#;

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
    /// One job running `JOB` in `mode`, with `extra` in its block and the listen block on `port`.
    fn start(mode: &str, extra: &str, port: u16) -> Up {
        Up::start_args(mode, extra, port, &[])
    }

    /// The same, with `args` after `gantry up -c DIR`.
    fn start_args(mode: &str, extra: &str, port: u16, args: &[&str]) -> Up {
        let dir = Dir::new();
        let script = dir.write("job.py", &format!("{FAIL}{JOB}"));
        dir.write(
            "conf/job.hcl",
            &format!(
                r#"
job "web" {{
  command = "python3"
  args = ["{script}", "{out}", "{mode}"]
  {extra}
  listen "127.0.0.1:{port}" {{
    activation = "socket"
    name = "http"
  }}
}}
"#,
                script = script.display(),
                out = dir.str(),
            ),
        );
        let log = std::fs::File::create(dir.join("gantry.log")).expect("log");
        let conf = dir.join("conf");
        let mut all = vec!["up", "-c", conf.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        let child = gantry(&all)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn gantry");
        let up = Up {
            child: Some(child),
            dir,
        };
        wait_until("gantry listening", || up.log().contains("listening on"));
        up
    }

    fn log(&self) -> String {
        read(&self.dir.join("gantry.log"))
    }

    fn pids(&self) -> Vec<u32> {
        read(&self.dir.join("pids"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(child.id(), libc::SIGTERM);
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < GUARD {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.pids() {
            if read(Path::new(&format!("/proc/{pid}/cmdline"))).contains("job.py") {
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Connects (a refused connection fails the test) and reads the job's line, with the client's own
/// address.
fn ask(port: u16) -> (String, std::net::SocketAddr) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect: refused?");
    s.set_read_timeout(Some(GUARD)).expect("timeout");
    let me = s.local_addr().expect("local addr");
    let mut line = String::new();
    s.read_to_string(&mut line).expect("read");
    (line.trim().to_string(), me)
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

#[test]
fn a_lazy_job_gets_the_socket_as_fd_3_with_its_own_pid_and_sees_the_real_client() {
    let port = free_port();
    let up = Up::start(
        "serve",
        "lazy {\n    coolDownTimeout = \"500ms\"\n  }",
        port,
    );
    assert!(
        up.pids().is_empty(),
        "a lazy job starts on its first connection"
    );
    let (line, me) = ask(port);
    let pid = field(&line, "pid");
    assert_eq!(field(&line, "fds"), "1", "{line}");
    assert_eq!(
        field(&line, "listen_pid"),
        pid,
        "LISTEN_PID is the job's own pid: {line}"
    );
    assert_eq!(field(&line, "names"), "http", "{line}");
    // Accepted by the job itself: it sees this client's own address and port, not gantry's.
    assert_eq!(field(&line, "peer"), me.to_string(), "{line}");
    assert_eq!(up.pids().len(), 1);

    // After the cool-down the job is stopped; gantry keeps the socket, and the next connection
    // (which gantry does not accept) starts the job again.
    let first: u32 = pid.parse().expect("pid");
    wait_until("the cool-down stop", || {
        let stat = read(Path::new(&format!("/proc/{first}/stat")));
        stat.is_empty() || stat.contains(") Z ")
    });
    let (line, me) = ask(port);
    assert_ne!(field(&line, "pid"), pid, "a new process: {line}");
    assert_eq!(field(&line, "listen_pid"), field(&line, "pid"), "{line}");
    assert_eq!(field(&line, "peer"), me.to_string(), "{line}");
    assert_eq!(up.pids().len(), 2);
}

#[test]
fn a_connection_made_while_the_job_restarts_is_not_refused() {
    let port = free_port();
    // Not lazy: started by the run phase; each process serves one connection and exits, so the
    // next connection arrives while the job is down (backing off before its restart).
    let up = Up::start("once", "", port);
    wait_until("the first process", || up.pids().len() == 1);
    let (first, _) = ask(port);
    let (second, _) = ask(port);
    let (third, _) = ask(port);
    let pids = [first, second, third].map(|l| field(&l, "pid").to_string());
    assert!(
        pids[0] != pids[1] && pids[1] != pids[2],
        "each connection is served by the next process: {pids:?}"
    );
    assert!(up.log().contains("restarting in"), "{}", up.log());
}

/// Issue 12, item 4: a socket-activated lazy job that failed for good accepts nothing; its waiting
/// clients are refused (reset), not left hanging in the backlog, and the job shows as failed.
#[test]
fn a_failed_socket_activated_lazy_job_refuses_its_clients_instead_of_leaving_them_hanging() {
    let port = free_port();
    let up = Up::start_args(
        "fail",
        "maxAttempts = 1\n  lazy {\n    coolDownTimeout = \"1m\"\n  }",
        port,
        &[],
    );
    // The first client starts the job, which fails for good; the client is refused, not held.
    let refused = |what: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => assert!(buf.is_empty(), "{what}: got {buf:?}"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{what}: still hanging after 20 s ({e})"
            ),
        }
    };
    refused("the first client");
    wait_until("the refusal logged", || {
        up.log().contains("has failed") && up.log().contains("refusing connections")
    });
    // gantry's only job failed, so `up` ends (exit 1) once the client is refused; the log says
    // the job failed and that its connections were refused, once.
    assert_eq!(
        up.log().matches("refusing connections").count(),
        1,
        "{}",
        up.log()
    );
    assert!(
        logged(&up.log(), &["failed (exit code 1)", "job=web"]),
        "{}",
        up.log()
    );
    assert_eq!(up.pids().len(), 0, "the failing job never wrote a pid");
}
