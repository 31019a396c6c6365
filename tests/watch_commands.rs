//! Watch commands (validate, pre, post) run through the reaper and finish when the command does, even
//! when it leaves a background process holding its output open. Alone in its test binary because it
//! reaps every child of the process.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use gantry::watch::job::run_with_reaper;
use gantry::watch::HelperCommand;

#[test]
fn a_command_that_leaves_a_process_holding_its_output_still_finishes() {
    support::with_polling_reaper(|reaper| async move {
        let command = HelperCommand {
            command: "sh".into(),
            args: vec!["-c".into(), "echo validated; sleep 300 & exit 3".into()],
        };
        // Hang guard only: without the bounded drain this would wait for the sleep.
        let out = tokio::time::timeout(Duration::from_secs(30), run_with_reaper(&reaper, &command))
            .await
            .expect("the command's result, not a hang")
            .unwrap();
        assert_eq!(out.status, gantry::exit::ExitStatus::Code(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "validated\n");
    });
    // The background sleep is in the command's own process group; leave nothing behind.
    let _ = std::process::Command::new("pkill")
        .args(["-f", "^sleep 300$"])
        .status();
}
