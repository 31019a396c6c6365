//! Watch commands (validate, pre, post) run through the reaper and finish when the command does, even
//! when it leaves a background process holding its output open. Alone in its test binary because it
//! reaps every child of the process.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use gantry::reaper::Reaper;
use gantry::watch::job::run_with_reaper;
use gantry::watch::CommandSpec;

#[test]
fn a_command_that_leaves_a_process_holding_its_output_still_finishes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reaper = Reaper::new();
        // The reaper's SIGCHLD loop, without the signalfd (a test thread cannot own SIGCHLD).
        let r = Arc::clone(&reaper);
        tokio::spawn(async move {
            loop {
                r.reap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let command = CommandSpec {
            command: "sh".into(),
            args: vec!["-c".into(), "echo validated; sleep 300 & exit 3".into()],
        };
        // Hang guard only: without the bounded drain this would wait for the sleep.
        let out = tokio::time::timeout(Duration::from_secs(30), run_with_reaper(&reaper, &command))
            .await
            .expect("the command's result, not a hang")
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "validated\n");
    });
    // The background sleep is in the command's own process group; leave nothing behind.
    let _ = std::process::Command::new("pkill")
        .args(["-f", "^sleep 300$"])
        .status();
}
