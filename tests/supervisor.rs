//! The supervisor's handle over real processes: stop and start a job while another keeps running,
//! and twenty concurrent starts of a job that backs off. Alone in its test binary because it reaps
//! every child of the process (`support::with_polling_reaper`).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gantry::config::{Attempts, CommandSpec, JobSpec, StopSpec};
use gantry::output::Copiers;
use gantry::supervisor::process::ProcessLauncher;
use gantry::supervisor::{JobDef, JobState, Kind, RunOptions, Supervisor};

fn job(name: &str, script: String, attempts: Attempts) -> JobDef {
    JobDef::job(&JobSpec {
        name: name.into(),
        command: CommandSpec::new("sh", vec!["-c".into(), script]),
        can_fail: false,
        max_attempts: attempts,
        restart_delay: gantry::config::model::DEFAULT_RESTART_DELAY,
        one_time: false,
        controllable: true,
        stop: StopSpec::new(libc::SIGTERM, Duration::from_secs(5)),
        watches: Vec::new(),
        readiness: Default::default(),
        origin: None,
    })
}

fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; the reaper removes it, so "alive" means not yet reaped.
    let stat = support::read(Path::new(&format!("/proc/{pid}/stat")));
    !stat.is_empty() && !stat.contains(") Z ")
}

async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < support::GUARD,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn stop_and_start_through_the_handle_and_one_process_for_twenty_starts() {
    let dir = support::Dir::new();
    let starts = dir.join("crash-starts");
    support::with_polling_reaper(|reaper| async move {
        let launcher = Arc::new(ProcessLauncher {
            reaper: Arc::clone(&reaper),
            copiers: Copiers::default(),
            foreground: false,
        });
        let crash = format!("echo $$ >> {}; sleep 0.2; exit 1", starts.display());
        let defs = vec![
            job("a", "exec sleep 600".into(), Attempts::Forever),
            job("b", "exec sleep 600".into(), Attempts::Forever),
            job("crash", crash, Attempts::Forever),
        ];
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sup = Supervisor::new(defs, launcher, true, Arc::clone(&reaper), (tx, rx));
        let handle = sup.handle();
        let phase =
            tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
        let pid = |name: &str| handle.status(name).ok()?.status.state.pid();
        let (a1, b) = (until("a", || pid("a")).await, until("b", || pid("b")).await);

        // Stopping a leaves gantry's phase and b running.
        handle.stop("a").await.expect("stop a");
        until("a to stop", || {
            matches!(handle.status("a").ok()?.status.state, JobState::Stopped(_)).then_some(())
        })
        .await;
        assert!(!alive(a1), "a's process {a1} is gone");
        assert!(alive(b), "b's process {b} still runs");
        assert!(!phase.is_finished());

        // Starting it again gives a new process.
        handle.start("a").await.expect("start a");
        let a2 = until("a again", || pid("a")).await;
        assert_ne!(a1, a2);
        assert!(alive(a2));

        // Twenty starts at once while the crashing job backs off: one new process.
        until("crash to back off", || {
            matches!(
                handle.status("crash").ok()?.status.state,
                JobState::BackingOff { attempt: 1, .. }
            )
            .then_some(())
        })
        .await;
        let before = support::read(&starts).lines().count();
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let h = handle.clone();
            requests.spawn(async move { h.start("crash").await });
        }
        while let Some(reply) = requests.join_next().await {
            assert!(reply.expect("task").is_ok());
        }
        // The new process runs 0.2 s, then the job backs off for 2 s: look in between.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = support::read(&starts).lines().count();
        assert_eq!(after, before + 1, "processes started by twenty starts");

        handle.shutdown(libc::SIGTERM);
        let report = tokio::time::timeout(support::GUARD, phase)
            .await
            .expect("the phase ends")
            .expect("phase task");
        assert_eq!(report.exit_code(), 128 + libc::SIGTERM);
        assert!(!alive(a2) && !alive(b));
    });
}
