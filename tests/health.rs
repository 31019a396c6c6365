//! `gantry up -p PORT`: mittnite's `/status`, `/healthz`, `/readyz` and `/metrics` through each
//! phase (probe blocking, running, a job crash-looping), the metrics text checked with a Prometheus
//! text-format parser; and `--pidfile`.

mod api_support;

use std::time::{Duration, Instant};

use api_support::{curl_tcp, free_port, wait_for_status as wait_for, Up};

fn get(port: u16, path: &str) -> (u16, String) {
    curl_tcp(&format!("http://127.0.0.1:{port}{path}"), "GET", &[])
}

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("metrics parse")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[test]
fn status_healthz_readyz_and_metrics_through_the_phases() {
    let port = free_port();
    let db_port = free_port();
    let config = format!(
        r#"
probe "db" {{
  wait = true
  url = "tcp://127.0.0.1:{db_port}"
}}
job "web" {{
  command = "/bin/sleep"
  args = ["1000"]
  controllable = true
}}
"#
    );
    let port_s = port.to_string();
    let pidfile = tempfile::tempdir().expect("tempdir");
    let pid_path = pidfile.path().join("run/gantry.pid");
    let up = Up::spawn(
        &config,
        &[
            "-p",
            &port_s,
            "--pidfile",
            pid_path.to_str().expect("utf-8"),
        ],
    );
    // Phase 3: the wait probe blocks. Alive, not ready; /status is mittnite's, 503.
    let body = wait_for(port, "/healthz", 200);
    assert_eq!(body, "ok\n");
    let (code, body) = get(port, "/readyz");
    assert_eq!(code, 503, "{body}");
    let (code, body) = get(port, "/status");
    assert_eq!(code, 503);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["probes"]["db"]["ok"], false);
    assert!(v["probes"]["db"]["message"].as_str().is_some());
    assert_eq!(
        std::fs::read_to_string(&pid_path).expect("pidfile"),
        up.pid().to_string()
    );
    let (code, text) = get(port, "/metrics");
    assert_eq!(code, 200);
    let scrape = parse_metrics(&text);
    assert_eq!(value(&scrape, "gantry_job_up", ("job", "web")), Some(0.0));
    assert_eq!(
        value(&scrape, "gantry_ready", ("phase", "probe")),
        Some(0.0)
    );

    // The dependency comes up: gantry runs its jobs and is ready.
    let listener = std::net::TcpListener::bind(("127.0.0.1", db_port)).expect("bind db");
    wait_for(port, "/readyz", 200);
    let (code, body) = get(port, "/status");
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "{\"probes\":{\"db\":{\"ok\":true,\"message\":\"\"}}}\n"
        )
    );
    let (code, text) = get(port, "/metrics");
    assert_eq!(code, 200);
    let scrape = parse_metrics(&text);
    assert_eq!(value(&scrape, "gantry_job_up", ("job", "web")), Some(1.0));
    assert_eq!(
        value(&scrape, "gantry_job_starts_total", ("job", "web")),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "gantry_job_state", ("state", "running")),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "gantry_probe_up", ("probe", "db")),
        Some(1.0)
    );
    assert!(value(&scrape, "gantry_probe_failures_total", ("probe", "db")).unwrap_or(0.0) >= 1.0);
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "process_resident_memory_bytes"));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "gantry_probe_check_duration_seconds"));
    drop(listener);

    // The dependency goes away again: not ready.
    wait_for(port, "/readyz", 503);
    let mut up = up;
    up.stop();
    assert!(!pid_path.exists(), "the pidfile is removed on exit");
}

#[test]
fn a_crash_looping_job_is_not_ready_and_its_restarts_are_counted() {
    let port = free_port();
    let config = r#"
job "crash" {
  command = "/bin/sh"
  args = ["-c", "sleep 0.2; exit 3"]
  maxAttempts = -1
}
"#;
    let port_s = port.to_string();
    let _up = Up::spawn(config, &["-p", &port_s]);
    wait_for(port, "/healthz", 200);
    let start = Instant::now();
    let scrape = loop {
        let (code, text) = get(port, "/metrics");
        assert_eq!(code, 200);
        let scrape = parse_metrics(&text);
        if value(&scrape, "gantry_job_restarts_total", ("job", "crash")).unwrap_or(0.0) >= 2.0 {
            break scrape;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&scrape, "gantry_job_last_exit_code", ("job", "crash")),
        Some(3.0)
    );
    // Between its short runs the job backs off, and is then not ready.
    let body = wait_for(port, "/readyz", 503);
    assert!(
        body.contains("crash") && body.contains("backing-off"),
        "{body}"
    );
}

#[test]
fn a_live_pidfile_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_path = dir.path().join("gantry.pid");
    // Our own pid is alive.
    std::fs::write(&pid_path, std::process::id().to_string()).expect("write");
    let mut up = Up::spawn(
        "job \"a\" {\n command = \"/bin/true\"\n}\n",
        &["--pidfile", pid_path.to_str().expect("utf-8")],
    );
    assert_eq!(up.wait(), Some(78));
    assert!(
        up.stderr_text().contains("is running"),
        "{}",
        up.stderr_text()
    );
    assert_eq!(
        std::fs::read_to_string(&pid_path).expect("kept"),
        std::process::id().to_string()
    );
}

#[test]
fn reloads_are_counted_per_job_watch_and_outcome() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("app.conf");
    let gate = dir.path().join("valid");
    std::fs::write(&watched, "v1").expect("write");
    std::fs::write(&gate, "").expect("write");
    let config = format!(
        r#"
job "app" {{
  command = "/bin/sh"
  args = ["-c", "trap '' HUP; while :; do sleep 1; done"]
  watch "{w}" {{
    signal = "HUP"
    validate {{
      command = "/bin/test"
      args = ["-e", "{g}"]
    }}
  }}
}}
"#,
        w = watched.display(),
        g = gate.display()
    );
    let port_s = port.to_string();
    let _up = Up::spawn(&config, &["-p", &port_s]);
    wait_for(port, "/readyz", 200);
    let reloads = |reason: &str| -> Option<f64> {
        let (_, text) = get(port, "/metrics");
        let scrape = parse_metrics(&text);
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "gantry_watch_reloads_total"
                    && s.labels.get("job") == Some("app")
                    && s.labels.get("watch") == Some(watched.to_str().unwrap_or(""))
                    && s.labels.get("reason") == Some(reason)
            })
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => {
                    Some(v)
                }
                _ => None,
            })
    };
    // Before any change the watch's series is there, at 0.
    assert_eq!(reloads("signal"), Some(0.0));
    let until = |reason: &str, n: f64| {
        let start = Instant::now();
        while reloads(reason) != Some(n) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{reason} never reached {n}: {:?}",
                get(port, "/metrics").1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::fs::write(&watched, "v2").expect("write");
    until("signal", 1.0);
    // The validator now fails: the change is counted under its reason, nothing is sent.
    std::fs::remove_file(&gate).expect("rm");
    std::fs::write(&watched, "v3").expect("write");
    until("validate_failed", 1.0);
    assert_eq!(reloads("signal"), Some(1.0));
}

#[test]
fn a_lazy_job_spinning_up_for_a_client_leaves_gantry_ready() {
    // A readiness probe that answers 503 while a lazy job spins up would take the container out of
    // service just as traffic arrives; only the always-on job decides.
    let port = free_port();
    let (listen, upstream) = (free_port(), free_port());
    let out = tempfile::tempdir().expect("tempdir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lazy_upstream.py");
    let config = format!(
        r#"
job "web" {{
  command = "/bin/sleep"
  args = ["1000"]
}}
job "lazy" {{
  command = "python3"
  args = ["{script}", "hello", "127.0.0.1:{upstream}", "3", "{out}"]
  ready {{ url = "tcp://127.0.0.1:{upstream}" }}
  lazy {{
    spinUpTimeout = "30s"
  }}
  listen "127.0.0.1:{listen}" {{ forward = "127.0.0.1:{upstream}" }}
}}
"#,
        out = out.path().display()
    );
    let port_s = port.to_string();
    let _up = Up::spawn(&config, &["-p", &port_s]);
    wait_for(port, "/readyz", 200);
    // A client arrives: the lazy job starts, and its upstream listens only after 3 s.
    let client = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", listen)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut line = [0u8; 4];
        s.read_exact(&mut line).expect("the held client is served");
        line
    });
    let start = Instant::now();
    loop {
        let (_, text) = get(port, "/metrics");
        if value(&parse_metrics(&text), "gantry_job_up", ("job", "lazy")) == Some(1.0) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, text) = get(port, "/metrics");
    let spinning = value(&parse_metrics(&text), "gantry_job_ready", ("job", "lazy"));
    let (ready_code, body) = get(port, "/readyz");
    assert_eq!(ready_code, 200, "while the lazy job spins up: {body}");
    // The check ran while the job was up and not ready yet (its upstream waits 3 s to listen).
    assert_eq!((code, spinning), (200, Some(0.0)), "{text}");
    assert_eq!(&client.join().expect("client"), b"pid=");
    assert_eq!(get(port, "/readyz").0, 200);
}
