//! The job actor and the supervisor without processes: a scripted [`Launcher`] stands in for the
//! reaper and `kill(2)`, and tokio's paused clock makes every delay exact and instant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::job::{self, ActorCtx, JobDef, JobHandle, Kind, Request};
use super::policy::Policy;
use super::process::{Child, Launcher};
use super::*;
use crate::config::{Attempts, CommandSpec, StopSpec};

/// What the scripted processes do.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Runs until a signal it does not ignore (or SIGKILL).
    RunUntilSignalled,
    /// Exits at once with this code.
    ExitWith(i32),
}

#[derive(Debug, Default)]
struct Log {
    /// (pid, when) of every launch.
    launches: Vec<(i32, Instant)>,
    /// (pid, signal, when) of every signal sent.
    signals: Vec<(i32, i32, Instant)>,
    /// The exit senders of processes still running.
    running: Vec<(i32, oneshot::Sender<ExitStatus>)>,
}

#[derive(Debug)]
struct Scripted {
    script: Mutex<Script>,
    /// Signals the processes ignore (SIGKILL cannot be).
    ignores: Vec<i32>,
    log: Mutex<Log>,
}

impl Scripted {
    fn new(script: Script, ignores: &[i32]) -> Arc<Self> {
        Arc::new(Scripted {
            script: Mutex::new(script),
            ignores: ignores.to_vec(),
            log: Mutex::new(Log::default()),
        })
    }

    fn set_script(&self, script: Script) {
        *self.script.lock().expect("script") = script;
    }

    fn launches(&self) -> Vec<(i32, Instant)> {
        self.log.lock().expect("log").launches.clone()
    }

    fn signals(&self) -> Vec<(i32, i32, Instant)> {
        self.log.lock().expect("log").signals.clone()
    }

    fn running(&self) -> usize {
        let mut log = self.log.lock().expect("log");
        log.running.retain(|(_, tx)| !tx.is_closed());
        log.running.len()
    }
}

impl Launcher for Scripted {
    fn launch(
        &self,
        _job: &str,
        _command: &CommandSpec,
        _sockets: &super::process::Sockets,
        _notify_fd: Option<(i32, i32)>,
    ) -> std::io::Result<Child> {
        let mut log = self.log.lock().expect("log");
        let pid = 1000 + log.launches.len() as i32;
        log.launches.push((pid, Instant::now()));
        let (tx, rx) = oneshot::channel();
        match *self.script.lock().expect("script") {
            Script::ExitWith(code) => {
                let _ = tx.send(ExitStatus::Code(code));
            }
            Script::RunUntilSignalled => log.running.push((pid, tx)),
        }
        Ok(Child { pid, exit: rx })
    }

    fn signal(&self, pid: i32, signal: i32, _group: bool) {
        let mut log = self.log.lock().expect("log");
        log.signals.push((pid, signal, Instant::now()));
        if signal == libc::SIGKILL || !self.ignores.contains(&signal) {
            if let Some(i) = log.running.iter().position(|(p, _)| *p == pid) {
                let (_, tx) = log.running.remove(i);
                let _ = tx.send(ExitStatus::Signaled(signal));
            }
        }
    }
}

fn def(name: &str, attempts: Attempts, grace: Duration) -> JobDef {
    JobDef {
        name: name.into(),
        kind: Kind::Job,
        command: CommandSpec::new("scripted", Vec::new()),
        policy: Policy::new(attempts, false),
        stop: StopSpec::new(libc::SIGTERM, grace),
        timeout: None,
        watches: Vec::new(),
        can_fail: false,
        controllable: true,
        sockets: Default::default(),
        readiness: Default::default(),
        checks: Default::default(),
    }
}

fn actor(
    launcher: &Arc<Scripted>,
    def: JobDef,
) -> (JobHandle, mpsc::UnboundedReceiver<(String, JobState)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ctx = ActorCtx {
        launcher: launcher.clone(),
        forward_to_group: true,
        shutdown: None,
    };
    (job::spawn(def, ctx, tx), rx)
}

/// Lets every task run until all of them wait (on the paused clock, without advancing it).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Waits (on the paused clock) until the job's state satisfies `cond`.
async fn until(handle: &JobHandle, cond: impl Fn(&JobState) -> bool) -> JobState {
    let mut rx = handle.subscribe();
    let state = rx
        .wait_for(|s| cond(&s.state))
        .await
        .expect("the actor is alive")
        .state;
    state
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_from_one_second_to_the_cap() {
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, _events) = actor(&launcher, def("crash", Attempts::Forever, secs(10)));
    handle.send(Request::Start);
    while launcher.launches().len() < 9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let times: Vec<Instant> = launcher.launches().iter().map(|l| l.1).collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    assert!(matches!(
        handle.status().state,
        JobState::BackingOff { attempt: 9, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn restart_delays_from_the_job_block_reach_the_actor() {
    let plan = crate::config::load_text(
        std::path::Path::new("t.hcl"),
        "job \"j\" {\n command = \"x\"\n maxAttempts = -1\n restartDelay = \"10ms\"\n maxRestartDelay = \"40ms\"\n}\n",
    )
    .expect("plan");
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, _events) = actor(&launcher, JobDef::job(&plan.jobs[0]));
    handle.send(Request::Start);
    while launcher.launches().len() < 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let times: Vec<Instant> = launcher.launches().iter().map(|l| l.1).collect();
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(gaps, vec![10, 20, 40, 40]);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_ends_in_failed_with_the_last_status() {
    let launcher = Scripted::new(Script::ExitWith(3), &[]);
    let (handle, _events) = actor(&launcher, def("crash", Attempts::Limited(3), secs(10)));
    handle.send(Request::Start);
    let state = until(&handle, |s| !s.is_live() && *s != JobState::NotStarted).await;
    assert_eq!(state, JobState::Failed(ExitStatus::Code(3)));
    assert_eq!(launcher.launches().len(), 3);
    let status = handle.status();
    assert_eq!((status.starts, status.restarts), (3, 2));
    assert_eq!(status.last_exit, Some(ExitStatus::Code(3)));
}

#[tokio::test(start_paused = true)]
async fn a_start_during_backoff_starts_one_process_now() {
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, _events) = actor(&launcher, def("crash", Attempts::Forever, secs(10)));
    handle.send(Request::Start);
    until(&handle, |s| matches!(s, JobState::BackingOff { .. })).await;
    // The next start is due in 1 s; twenty starts at once, from now on processes keep running.
    launcher.set_script(Script::RunUntilSignalled);
    let before = Instant::now();
    let replies = all_at_once(&handle, Request::Start, 20).await;
    assert!(replies.iter().all(|r| r.is_ok()), "{replies:?}");
    settle().await;
    assert_eq!(
        launcher.launches().len(),
        2,
        "one process for twenty starts"
    );
    assert_eq!(
        launcher.launches()[1].1,
        before,
        "started at once, not after the backoff"
    );
    assert_eq!(launcher.running(), 1);
    assert!(matches!(
        handle.status().state,
        JobState::Running { pid: 1001, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stop_right_after_a_start_stops_the_one_process_and_it_stays_stopped() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let (handle, _events) = actor(&launcher, def("svc", Attempts::Forever, secs(10)));
    handle.send(Request::Start);
    handle.send(Request::Stop);
    let state = until(&handle, |s| matches!(s, JobState::Stopped(_))).await;
    assert_eq!(
        state,
        JobState::Stopped(Some(ExitStatus::Signaled(libc::SIGTERM)))
    );
    // A stopped job is not restarted by its policy, however long we wait.
    tokio::time::sleep(secs(3600)).await;
    assert_eq!(launcher.launches().len(), 1);
    assert!(matches!(handle.status().state, JobState::Stopped(_)));
    // ... and starts again on request, as a new process.
    handle.request(Request::Start).await.expect("start");
    assert!(matches!(
        handle.status().state,
        JobState::Running { pid: 1001, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_stop_is_the_same_stop() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let (handle, _events) = actor(&launcher, def("slow", Attempts::Forever, secs(5)));
    handle.request(Request::Start).await.expect("start");
    let begin = Instant::now();
    handle.send(Request::Stop);
    tokio::time::sleep(secs(2)).await;
    handle.request(Request::Stop).await.expect("second stop");
    until(&handle, |s| matches!(s, JobState::Stopped(_))).await;
    let signals: Vec<(i32, Duration)> = launcher
        .signals()
        .iter()
        .map(|&(_, sig, at)| (sig, at - begin))
        .collect();
    // One SIGTERM, and SIGKILL when the first stop's grace ran out (not the second's).
    assert_eq!(
        signals,
        vec![(libc::SIGTERM, secs(0)), (libc::SIGKILL, secs(5))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_signal_the_process_ignores_escalates_to_sigkill_after_the_grace() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let (handle, _events) = actor(&launcher, def("stubborn", Attempts::Forever, secs(7)));
    handle.request(Request::Start).await.expect("start");
    let begin = Instant::now();
    handle.send(Request::Stop);
    let state = until(&handle, |s| matches!(s, JobState::Stopped(_))).await;
    assert_eq!(
        state,
        JobState::Stopped(Some(ExitStatus::Signaled(libc::SIGKILL)))
    );
    let kill = launcher.signals()[1];
    assert_eq!((kill.1, kill.2 - begin), (libc::SIGKILL, secs(7)));
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_restarts_is_one_restart() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let (handle, _events) = actor(&launcher, def("svc", Attempts::Forever, secs(2)));
    handle.request(Request::Start).await.expect("start");
    let restart = Request::Restart {
        signal: None,
        only_if_running: false,
    };
    let replies = all_at_once(&handle, restart, 50).await;
    assert!(replies.iter().all(|r| r.is_ok()), "{replies:?}");
    until(&handle, |s| {
        matches!(s, JobState::Running { pid: 1001, .. })
    })
    .await;
    tokio::time::sleep(secs(60)).await;
    assert_eq!(
        launcher.launches().len(),
        2,
        "the first process and one restart"
    );
    assert_eq!(launcher.running(), 1);
    // A restart is not a failure: no backoff before the new process.
    let l = launcher.launches();
    assert_eq!(
        l[1].1 - l[0].1,
        secs(2),
        "started as soon as the old one was killed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_cancels_a_restart_in_progress() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let (handle, _events) = actor(&launcher, def("svc", Attempts::Forever, secs(2)));
    handle.request(Request::Start).await.expect("start");
    handle.send(Request::Restart {
        signal: None,
        only_if_running: false,
    });
    handle.request(Request::Stop).await.expect("stop");
    until(&handle, |s| matches!(s, JobState::Stopped(_))).await;
    tokio::time::sleep(secs(60)).await;
    assert_eq!(launcher.launches().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_watch_restart_leaves_a_stopped_job_alone() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let (handle, _events) = actor(&launcher, def("svc", Attempts::Forever, secs(2)));
    let watch_restart = Request::Restart {
        signal: Some(libc::SIGHUP),
        only_if_running: true,
    };
    assert_eq!(
        handle.request(watch_restart).await,
        Ok(JobState::NotStarted)
    );
    assert_eq!(
        handle
            .request(Request::Signal {
                signal: libc::SIGHUP,
                main_only: false
            })
            .await,
        Err(ControlError::NotRunning("svc".into()))
    );
    assert!(launcher.launches().is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_transition_is_published_in_order() {
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, mut events) = actor(&launcher, def("crash", Attempts::Limited(2), secs(1)));
    handle.send(Request::Start);
    until(&handle, |s| matches!(s, JobState::Failed(_))).await;
    let mut names = Vec::new();
    while let Ok((_, state)) = events.try_recv() {
        names.push(state.name());
    }
    assert_eq!(
        names,
        vec![
            "starting",
            "running",
            "backing-off",
            "starting",
            "running",
            "failed"
        ]
    );
}

/// A supervisor over the scripted launcher, with the sender of its stop requests.
fn supervisor(launcher: &Arc<Scripted>, defs: Vec<JobDef>) -> Supervisor {
    let (tx, rx) = mpsc::unbounded_channel();
    Supervisor::new(
        defs,
        launcher.clone(),
        true,
        crate::reaper::Reaper::new(),
        (tx, rx),
    )
}

#[tokio::test(start_paused = true)]
async fn the_handle_refuses_unknown_jobs_and_control_during_shutdown() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut sup = supervisor(&launcher, vec![def("a", Attempts::Forever, secs(1))]);
    let handle = sup.handle();
    assert_eq!(
        handle.start("nope").await,
        Err(ControlError::UnknownJob("nope".into()))
    );
    assert!(handle.status("nope").is_err());
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    assert_eq!(handle.list().len(), 1);
    assert!(matches!(
        handle.status("a").expect("a").status.state,
        JobState::Running { .. }
    ));
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(report.cause, Cause::Signal(libc::SIGTERM));
    assert_eq!(report.exit_code(), 128 + libc::SIGTERM);
    assert_eq!(handle.start("a").await, Err(ControlError::ShuttingDown));
}

#[tokio::test(start_paused = true)]
async fn a_job_stopped_on_request_keeps_the_phase_running_until_it_is_started_again() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut b = def("b", Attempts::Limited(1), secs(1));
    b.can_fail = true;
    let mut sup = supervisor(&launcher, vec![def("a", Attempts::Forever, secs(1)), b]);
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    handle.stop("a").await.expect("stop a");
    settle().await;
    // b ends by itself; a was stopped on request: gantry stays up so that a can be started again.
    launcher.signal(1001, libc::SIGTERM, true);
    tokio::time::sleep(secs(3600)).await;
    assert!(!phase.is_finished());
    assert!(matches!(
        handle.status("a").expect("a").status.state,
        JobState::Stopped(_)
    ));
    // Started again: a new process.
    handle.start("a").await.expect("start a");
    assert!(matches!(
        handle.status("a").expect("a").status.state,
        JobState::Running { pid: 1002, .. }
    ));
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(report.cause, Cause::Signal(libc::SIGTERM));
}

#[tokio::test(start_paused = true)]
async fn when_every_job_ends_by_itself_the_phase_ends_with_the_failed_jobs_code() {
    let launcher = Scripted::new(Script::ExitWith(4), &[]);
    let mut sup = supervisor(&launcher, vec![def("a", Attempts::Limited(2), secs(1))]);
    let report = sup.run_phase(Kind::Job, RunOptions::default()).await;
    assert_eq!(report.cause, Cause::JobFailed("a".into()));
    assert_eq!(report.exit_code(), 4);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Sends `request` `n` times from `n` tasks at once and collects the answers.
async fn all_at_once(handle: &JobHandle, request: Request, n: usize) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let handle = handle.clone();
        set.spawn(async move { handle.request(request).await });
    }
    set.join_all().await
}

// Lazy (on-demand) jobs: started by their listeners, idle between runs.

#[tokio::test(start_paused = true)]
async fn a_lazy_job_is_idle_and_the_run_phase_neither_starts_it_nor_ends_over_it() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let lazy = def("lazy", Attempts::Limited(3), secs(1)).on_demand();
    let mut sup = supervisor(&launcher, vec![lazy]);
    let handle = sup.handle();
    assert_eq!(
        handle.status("lazy").expect("lazy").status.state,
        JobState::Idle
    );
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    tokio::time::sleep(secs(3600)).await;
    assert!(
        launcher.launches().is_empty(),
        "the run phase started a lazy job"
    );
    assert!(
        !phase.is_finished(),
        "an idle lazy job keeps gantry serving"
    );
    // The shutdown is not delayed by it either.
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(report.cause, Cause::Signal(libc::SIGTERM));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_lazy_job_is_idle_again_and_the_next_start_is_a_new_process() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let (handle, _events) = actor(
        &launcher,
        def("lazy", Attempts::Limited(3), secs(1)).on_demand(),
    );
    handle.request(Request::Start).await.expect("start");
    handle.request(Request::Stop).await.expect("stop");
    until(&handle, |s| *s == JobState::Idle).await;
    handle.request(Request::Start).await.expect("start again");
    assert!(matches!(
        handle.status().state,
        JobState::Running { pid: 1001, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_crashed_lazy_job_waits_for_a_start_and_then_for_its_backoff() {
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, _events) = actor(
        &launcher,
        def("lazy", Attempts::Limited(5), secs(1)).on_demand(),
    );
    handle.send(Request::Start);
    // It crashed: backing off for 1 s, then idle, not started again by itself.
    until(&handle, |s| matches!(s, JobState::BackingOff { .. })).await;
    until(&handle, |s| *s == JobState::Idle).await;
    tokio::time::sleep(secs(3600)).await;
    assert_eq!(launcher.launches().len(), 1);
    // A start (a connection) starts it again at once: the backoff is over.
    handle.send(Request::Start);
    until(&handle, |s| {
        matches!(s, JobState::BackingOff { attempt: 2, .. })
    })
    .await;
    let second = launcher.launches()[1].1;
    // A start during the backoff (2 s now) is served when the backoff ends, not before.
    launcher.set_script(Script::RunUntilSignalled);
    handle.request(Request::Start).await.expect("start");
    assert_eq!(launcher.launches().len(), 2);
    until(&handle, |s| matches!(s, JobState::Running { .. })).await;
    assert_eq!(launcher.launches()[2].1 - second, secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_lazy_job_that_keeps_failing_fails_for_good_after_max_attempts() {
    let launcher = Scripted::new(Script::ExitWith(1), &[]);
    let (handle, _events) = actor(
        &launcher,
        def("lazy", Attempts::Limited(3), secs(1)).on_demand(),
    );
    for _ in 0..3 {
        handle.send(Request::Start);
        until(&handle, |s| !matches!(s, JobState::Idle)).await;
        until(&handle, |s| {
            matches!(s, JobState::Idle | JobState::Failed(_))
        })
        .await;
    }
    assert_eq!(handle.status().state, JobState::Failed(ExitStatus::Code(1)));
    assert_eq!(launcher.launches().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_stops_the_process_and_counts_even_after_a_clean_exit() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let (handle, _events) = actor(
        &launcher,
        def("lazy", Attempts::Limited(1), secs(3)).on_demand(),
    );
    handle.request(Request::Start).await.expect("start");
    let begin = Instant::now();
    handle
        .request(Request::FailStart)
        .await
        .expect("fail start");
    until(&handle, |s| matches!(s, JobState::Failed(_))).await;
    let signals: Vec<(i32, Duration)> = launcher
        .signals()
        .iter()
        .map(|&(_, sig, at)| (sig, at - begin))
        .collect();
    // The job's own stop: its signal, its grace, then SIGKILL.
    assert_eq!(
        signals,
        vec![(libc::SIGTERM, secs(0)), (libc::SIGKILL, secs(3))]
    );
    // FailStart on a job without a process changes nothing.
    assert_eq!(
        handle.request(Request::FailStart).await,
        Ok(JobState::Failed(ExitStatus::Signaled(libc::SIGKILL)))
    );
}

#[tokio::test(start_paused = true)]
async fn a_lazy_jobs_status_shows_its_cool_down_with_the_time_left() {
    use crate::config::lazy::LazySpec;
    use crate::lazy::gate::Gate;
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let sup = supervisor(
        &launcher,
        vec![def("lazy", Attempts::Limited(3), secs(1)).on_demand()],
    );
    let handle = sup.handle();
    let lazy = LazySpec {
        spin_up_timeout: secs(5),
        cool_down_timeout: secs(60),
    };
    let gate = Gate::spawn("lazy", lazy, handle.clone()).expect("gate");
    let status = || handle.status("lazy").expect("lazy").status;

    // A connection: running, no cool-down while it is open.
    let ticket = gate.enter().await.expect("admitted");
    settle().await;
    assert!(matches!(status().state, JobState::Running { .. }));
    assert_eq!(status().cool_down_until, None);

    // The last connection closed: cooling down, with the time left.
    drop(ticket);
    settle().await;
    let until = status().cool_down_until.expect("cooling down");
    assert_eq!(until - Instant::now(), secs(60));
    tokio::time::sleep(secs(15)).await;
    settle().await;
    let shown = status().to_string();
    assert!(
        shown.starts_with("running (pid 1000), cooling down (45s left)"),
        "{shown}"
    );

    // A new connection cancels it.
    let ticket = gate.enter().await.expect("admitted");
    settle().await;
    assert_eq!(status().cool_down_until, None, "{}", status());
    drop(ticket);

    // When it fires, the job is stopped and idle, with no cool-down left to show.
    tokio::time::sleep(secs(61)).await;
    settle().await;
    assert_eq!(status().state, JobState::Idle);
    assert_eq!(status().cool_down_until, None);
    assert_eq!(status().to_string(), "idle");
}

#[tokio::test(start_paused = true)]
async fn a_lazy_job_stopped_by_the_shutdown_counts_in_the_exit_code_like_any_job() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut sup = supervisor(
        &launcher,
        vec![
            def("lazy", Attempts::Limited(3), secs(1)).on_demand(),
            def("idle", Attempts::Limited(3), secs(1)).on_demand(),
        ],
    );
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    handle.start("lazy").await.expect("start");
    settle().await;
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(
        handle.status("lazy").expect("lazy").status.state,
        JobState::Idle
    );
    // It died of the SIGTERM the shutdown sent, as a job would: 143, as with tini. The idle one,
    // which had no process, changes nothing.
    assert_eq!(
        report.stopped_nonzero,
        Some(ExitStatus::Signaled(libc::SIGTERM))
    );
    assert_eq!(report.exit_code(), 143);
}

#[tokio::test(start_paused = true)]
async fn a_lazy_job_idle_at_the_shutdown_leaves_the_exit_code_at_zero() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut sup = supervisor(
        &launcher,
        vec![def("lazy", Attempts::Limited(3), secs(1)).on_demand()],
    );
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    // It ran and was stopped by its cool-down (SIGTERM, status 143) before the shutdown.
    handle.start("lazy").await.expect("start");
    handle.stop("lazy").await.expect("stop");
    settle().await;
    assert_eq!(
        handle.status("lazy").expect("lazy").status.last_exit,
        Some(ExitStatus::Signaled(libc::SIGTERM))
    );
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(report.stopped_nonzero, None);
    assert_eq!(report.exit_code(), 0);
}

// ---- readiness, dependencies, liveness -------------------------------------------------------

use crate::config::readiness::{AliveAction, AliveSpec, Notify};
use crate::readiness::Event;

/// `name`, waiting for `after` (and requiring `requires`).
fn dependent(name: &str, after: &[&str], requires: &[&str]) -> JobDef {
    let mut d = def(name, Attempts::Forever, secs(1));
    d.readiness.after = after.iter().map(|s| s.to_string()).collect();
    d.readiness.requires = requires.iter().map(|s| s.to_string()).collect();
    d
}

/// A job that is ready only when it says so (s6's protocol; the scripted process never writes, so
/// the test reports for it).
fn says_when_ready(mut d: JobDef) -> JobDef {
    d.readiness.notify = Some(Notify::Fd(5));
    d
}

fn launched(launcher: &Scripted) -> usize {
    launcher.launches().len()
}

#[tokio::test(start_paused = true)]
async fn a_job_starts_only_once_the_job_it_comes_after_is_ready() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut sup = supervisor(
        &launcher,
        vec![
            dependent("worker", &["api"], &[]),
            says_when_ready(def("api", Attempts::Forever, secs(1))),
        ],
    );
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    tokio::time::sleep(secs(60)).await;
    let api = handle.status("api").expect("api").status;
    assert!(!api.ready);
    assert_eq!(launched(&launcher), 1, "only api runs");
    let api_pid = api.state.pid().expect("api runs");
    // A report about another process is not about this run.
    let jobs = handle.clone();
    jobs.request(
        "api",
        Request::Readiness {
            pid: api_pid + 77,
            event: Event::Ready,
        },
    )
    .await
    .expect("answered");
    settle().await;
    assert_eq!(launched(&launcher), 1);
    jobs.request(
        "api",
        Request::Readiness {
            pid: api_pid,
            event: Event::Ready,
        },
    )
    .await
    .expect("answered");
    settle().await;
    assert!(handle.status("api").expect("api").status.ready);
    assert_eq!(launched(&launcher), 2, "worker started once api was ready");
    // RELOADING=1 makes api not ready; worker keeps running.
    jobs.request(
        "api",
        Request::Readiness {
            pid: api_pid,
            event: Event::Reloading,
        },
    )
    .await
    .expect("answered");
    settle().await;
    assert!(!handle.status("api").expect("api").status.ready);
    assert!(handle.status("worker").expect("w").status.ready);
    handle.shutdown(libc::SIGTERM);
    phase.await.expect("phase");
}

#[tokio::test(start_paused = true)]
async fn a_failed_one_time_dependency_stops_the_chain_with_its_code() {
    let launcher = Scripted::new(Script::ExitWith(3), &[]);
    let mut migrate = def("migrate", Attempts::Limited(1), secs(1));
    migrate.policy.one_time = true;
    let mut sup = supervisor(
        &launcher,
        vec![
            migrate,
            dependent("api", &["migrate"], &[]),
            dependent("worker", &["api"], &[]),
        ],
    );
    let report = sup.run_phase(Kind::Job, RunOptions::default()).await;
    assert_eq!(report.cause, Cause::JobFailed("migrate".into()));
    assert_eq!(report.exit_code(), 3);
    assert_eq!(launched(&launcher), 1, "neither api nor worker started");
}

#[tokio::test(start_paused = true)]
async fn a_completed_one_time_job_releases_its_dependents() {
    let launcher = Scripted::new(Script::ExitWith(0), &[]);
    let mut migrate = def("migrate", Attempts::Limited(1), secs(1));
    migrate.policy.one_time = true;
    let mut api = dependent("api", &["migrate"], &[]);
    api.policy.one_time = true;
    let mut sup = supervisor(&launcher, vec![api, migrate]);
    let report = sup.run_phase(Kind::Job, RunOptions::default()).await;
    assert_eq!(report.cause, Cause::AllEnded);
    let launches = launcher.launches();
    // migrate (pid 1000) first, api (1001) once it had completed.
    assert_eq!(
        launches.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        vec![1000, 1001]
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_required_job_fails_for_good_is_stopped_and_never_restarted() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut db = def("db", Attempts::Limited(1), secs(1));
    db.can_fail = true;
    let mut sup = supervisor(
        &launcher,
        vec![
            db,
            dependent("api", &[], &["db"]),
            dependent("cron", &["db"], &[]),
        ],
    );
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    assert_eq!(launched(&launcher), 3);
    // db dies and may not be restarted (one attempt): api (requires) is stopped, cron (after) runs on.
    launcher.signal(1000, libc::SIGKILL, true);
    settle().await;
    assert!(matches!(
        handle.status("db").expect("db").status.state,
        JobState::Failed(_)
    ));
    assert!(matches!(
        handle.status("api").expect("api").status.state,
        JobState::Stopped(_)
    ));
    assert!(matches!(
        handle.status("cron").expect("cron").status.state,
        JobState::Running { .. }
    ));
    handle.shutdown(libc::SIGTERM);
    let report = phase.await.expect("phase");
    assert_eq!(report.cause, Cause::Signal(libc::SIGTERM));
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_stops_dependents_before_what_they_depend_on() {
    // Each process takes 2 s to stop, so the order shows in time as well.
    let launcher = Scripted::new(Script::RunUntilSignalled, &[libc::SIGTERM]);
    let mut sup = supervisor(
        &launcher,
        vec![
            def("db", Attempts::Forever, secs(2)),
            dependent("api", &["db"], &[]),
            dependent("worker", &["api"], &[]),
            def("other", Attempts::Forever, secs(2)),
        ],
    );
    let handle = sup.handle();
    let phase = tokio::spawn(async move { sup.run_phase(Kind::Job, RunOptions::default()).await });
    settle().await;
    let pid = |n: &str| {
        handle
            .status(n)
            .expect("job")
            .status
            .state
            .pid()
            .expect("runs")
    };
    let (db, api, worker, other) = (pid("db"), pid("api"), pid("worker"), pid("other"));
    let t0 = Instant::now();
    handle.shutdown(libc::SIGTERM);
    phase.await.expect("phase");
    let terms: Vec<(i32, Duration)> = launcher
        .signals()
        .into_iter()
        .filter(|(_, s, _)| *s == libc::SIGTERM)
        .map(|(p, _, at)| (p, at - t0))
        .collect();
    let when = |p: i32| terms.iter().find(|(q, _)| *q == p).map(|(_, at)| *at);
    // Stop stages are 1 s for the dependents (the `dependent` default) and 2 s for db and other,
    // each ending in SIGKILL: worker at once, api once worker is gone, db once api is gone.
    assert_eq!(when(worker), Some(Duration::ZERO));
    assert_eq!(when(other), Some(Duration::ZERO));
    assert_eq!(when(api), Some(secs(1)));
    assert_eq!(when(db), Some(secs(2)));
}

#[tokio::test(start_paused = true)]
async fn a_missed_watchdog_restarts_the_job_and_counts_as_a_failure() {
    let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
    let mut d = def("svc", Attempts::Forever, secs(1));
    d.readiness.notify = Some(Notify::Systemd);
    d.readiness.watchdog = Some(secs(5));
    let (handle, _events) = actor(&launcher, d);
    handle.request(Request::Start).await.expect("start");
    let pid = handle.status().state.pid().expect("runs");
    // Pings at 4 s and 8 s keep it alive until 13 s.
    for _ in 0..2 {
        tokio::time::sleep(secs(4)).await;
        handle
            .request(Request::Readiness {
                pid,
                event: Event::Watchdog,
            })
            .await
            .expect("answered");
    }
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_eq!(launched(&launcher), 1);
    let state = until(&handle, |s| matches!(s, JobState::BackingOff { .. })).await;
    assert!(
        matches!(state, JobState::BackingOff { attempt: 1, .. }),
        "{state:?}"
    );
    let signals = launcher.signals();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].2 - launcher.launches()[0].1, secs(13));
    until(&handle, |s| {
        matches!(s, JobState::Running { pid: 1001, .. })
    })
    .await;
}

/// A probe that always passes: the liveness reports come from the test.
struct Passes;

impl gantry_probes::Probe for Passes {
    fn describe(&self) -> String {
        "always".into()
    }
    fn check(&self) -> gantry_probes::ProbeFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_liveness_check_restarts_ignores_or_shuts_down_as_configured() {
    for (action, restarts, shutdown) in [
        (AliveAction::Restart, true, false),
        (AliveAction::Ignore, false, false),
        (AliveAction::Shutdown, false, true),
    ] {
        let launcher = Scripted::new(Script::RunUntilSignalled, &[]);
        let mut d = def("svc", Attempts::Limited(1), secs(1));
        let spec = AliveSpec {
            target: gantry_probes::Target::new(gantry_probes::Backend::Filesystem("/".into())),
            period: secs(3600),
            threshold: 3,
            action,
        };
        d.checks.alive = Some((Arc::new(Passes), spec));
        let (tx, mut stops) = mpsc::unbounded_channel();
        let (ev, _events) = mpsc::unbounded_channel();
        let ctx = ActorCtx {
            launcher: launcher.clone(),
            forward_to_group: true,
            shutdown: Some(tx),
        };
        let handle = job::spawn(d, ctx, ev);
        handle.request(Request::Start).await.expect("start");
        let pid = handle.status().state.pid().expect("runs");
        handle
            .request(Request::Readiness {
                pid,
                event: Event::NotAlive,
            })
            .await
            .expect("answered");
        settle().await;
        let state = handle.status().state;
        // One attempt allowed: the liveness restart counts, so the job has failed for good.
        assert_eq!(
            matches!(state, JobState::Failed(_)),
            restarts,
            "{action:?}: {state:?}"
        );
        assert_eq!(
            stops.try_recv().ok(),
            shutdown.then_some(libc::SIGTERM),
            "{action:?}"
        );
    }
}
