//! s6's notification-fd protocol: the job's process gets the write end of a pipe at fd N and writes
//! a line (anything ending in a newline) to it once it is ready.

use std::os::fd::OwnedFd;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::{Event, Report};

/// Reads the pipe's read end until the first newline (→ [`Event::Ready`]) or the end of the file
/// (every writer closed it without a line: never ready in this run).
pub async fn watch(job: String, read: OwnedFd, report: Report) {
    let mut rx = match pipe::Receiver::from_owned_fd(read) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(job = %job, "cannot read its notification fd: {e}");
            return;
        }
    };
    let mut buf = [0u8; 512];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => {
                tracing::debug!(job = %job, "closed its notification fd without a line");
                return;
            }
            Ok(n) if buf[..n].contains(&b'\n') => {
                report(Event::Ready);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(job = %job, "cannot read its notification fd: {e}");
                return;
            }
        }
    }
}
