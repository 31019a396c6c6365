//! A watch driving a real job actor: validate, pre- and post-commands run through gantry's single reaper
//! (a `waitpid(-1)` loop runs the whole time, as under `gantry up`), and the reload signal reaches the
//! job's process through a `Request` to its actor. Alone in its test binary because it reaps every child of
//! the process.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gantry::config::{Attempts, CommandSpec as JobCommand, StopSpec};
use gantry::output::Copiers;
use gantry::supervisor::job::{self, ActorCtx, JobDef, Kind, Request};
use gantry::supervisor::policy::Policy;
use gantry::supervisor::process::ProcessLauncher;
use gantry::supervisor::reload::spawn_watch;
use gantry::supervisor::JobState;
use gantry::watch::{HelperCommand, WatchSpec};

const HANG_GUARD: Duration = Duration::from_secs(15);
const SETTLE: Duration = Duration::from_millis(1200);

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn count(path: &Path, what: &str) -> usize {
    lines(path).iter().filter(|l| *l == what).count()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sh(script: String) -> HelperCommand {
    HelperCommand {
        command: "sh".into(),
        args: vec!["-c".into(), script],
    }
}

#[test]
fn a_watch_reloads_a_supervised_job_through_the_reaper() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("app.conf");
    let log = dir.path().join("log");
    let ready = dir.path().join("ready");
    fs::write(&conf, "ok v1\n").unwrap();

    support::with_polling_reaper(|reaper| async move {
        let ctx = ActorCtx {
            launcher: Arc::new(ProcessLauncher {
                reaper: Arc::clone(&reaper),
                copiers: Copiers::default(),
                foreground: false,
            }),
            forward_to_group: true,
            shutdown: None,
        };
        let script = format!(
            "trap 'echo hup >> {log}' HUP; echo > {ready}; while :; do sleep 1 & wait $!; done",
            log = log.display(),
            ready = ready.display()
        );
        let def = JobDef {
            name: "app".into(),
            kind: Kind::Job,
            command: JobCommand::new("bash", vec!["-c".into(), script]),
            policy: Policy::new(Attempts::Limited(1), false),
            stop: StopSpec::new(libc::SIGTERM, Duration::from_secs(5)),
            timeout: None,
            watches: Vec::new(),
            can_fail: false,
            controllable: false,
            sockets: Default::default(),
            readiness: Default::default(),
            checks: Default::default(),
        };
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = job::spawn(def, ctx, ev_tx);
        handle.send(Request::Start);
        wait_for("the job to start", || ready.exists()).await;

        let mut spec = WatchSpec::new(conf.display().to_string(), libc::SIGHUP);
        spec.debounce = Duration::from_millis(100);
        spec.validate = Some(sh(format!("grep -q '^ok' {}", conf.display())));
        spec.pre_command = Some(sh(format!("echo pre >> {}", log.display())));
        spec.post_command = Some(sh(format!("echo post >> {}", log.display())));
        let watch = spawn_watch(spec, handle.clone(), Arc::clone(&reaper)).unwrap();

        fs::write(&conf, "ok v2\n").unwrap();
        wait_for("the reload", || {
            count(&log, "hup") == 1 && count(&log, "post") == 1
        })
        .await;
        let l = lines(&log);
        assert_eq!(l[0], "pre", "{l:?}");

        // A config the validator rejects: nothing runs, nothing is sent.
        fs::write(&conf, "broken\n").unwrap();
        tokio::time::sleep(SETTLE).await;
        assert_eq!(lines(&log).len(), 3, "{:?}", lines(&log));

        fs::write(&conf, "ok v3\n").unwrap();
        wait_for("the second reload", || {
            count(&log, "hup") == 2 && count(&log, "post") == 2
        })
        .await;
        tokio::time::sleep(SETTLE).await;
        assert_eq!((count(&log, "pre"), count(&log, "hup")), (2, 2));

        watch.abort();
        handle.send(Request::Stop);
        let ended = tokio::time::timeout(HANG_GUARD, async {
            loop {
                let (_, state) = ev_rx.recv().await.unwrap();
                if !state.is_live() {
                    return state;
                }
            }
        })
        .await
        .unwrap();
        assert!(matches!(ended, JobState::Stopped(Some(_))), "{ended:?}");
    });
}
