//! `filesystem = "PATH"` / `file:///PATH`: ready when the path exists and can be read — a file can be
//! opened, a directory can be listed.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Probe, ProbeError, ProbeFuture};

pub struct FilesystemProbe {
    path: PathBuf,
    timeout: Duration,
}

impl FilesystemProbe {
    pub fn new(path: PathBuf, timeout: Duration) -> FilesystemProbe {
        FilesystemProbe { path, timeout }
    }

    async fn readable(&self) -> std::io::Result<()> {
        let meta = tokio::fs::metadata(&self.path).await?;
        if meta.is_dir() {
            let mut entries = tokio::fs::read_dir(&self.path).await?;
            entries.next_entry().await?;
        } else {
            tokio::fs::File::open(&self.path).await?;
        }
        Ok(())
    }
}

impl Probe for FilesystemProbe {
    fn describe(&self) -> String {
        format!("filesystem {}", self.path.display())
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            self.readable()
                .await
                .map_err(|e| ProbeError::NotReady(e.to_string()))
        })
    }
}
