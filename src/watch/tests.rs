//! Change detection against real files, in both modes. "One" means: a change arrives (within a generous
//! hang guard), then nothing more during a settle period of several debounce windows. "None" means nothing
//! during the settle period. No assertion is made about how fast anything arrives.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Generous, so that a test's own burst of writes fits in one window even on a loaded machine.
const DEBOUNCE: Duration = Duration::from_millis(200);
const HANG_GUARD: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Via {
    Inotify,
    Poll,
}

const BOTH: [Via; 2] = [Via::Inotify, Via::Poll];

struct Harness {
    watcher: Watcher,
    rt: tokio::runtime::Runtime,
    settle: Duration,
}

impl Harness {
    fn new<P: AsRef<Path>>(paths: &[P], via: Via) -> Harness {
        let paths: Vec<String> = paths
            .iter()
            .map(|p| p.as_ref().display().to_string())
            .collect();
        let options = WatchOptions {
            debounce: DEBOUNCE,
            poll: match via {
                Via::Inotify => None,
                Via::Poll => Some(Duration::from_millis(200)),
            },
            ..WatchOptions::default()
        };
        let watcher = Watcher::start(&paths, options).unwrap();
        if let Via::Inotify = via {
            assert_eq!(
                watcher.mode(),
                Mode::Inotify,
                "tests expect inotify to work here"
            );
        }
        let settle = match via {
            Via::Inotify => DEBOUNCE * 5,
            Via::Poll => Duration::from_millis(1500),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Harness {
            watcher,
            rt,
            settle,
        }
    }

    fn within(&self, limit: Duration) -> Option<Change> {
        self.rt
            .block_on(async { tokio::time::timeout(limit, self.watcher.changed()).await })
            .ok()
            .flatten()
    }

    #[track_caller]
    fn expect_one(&self, what: &str) -> Change {
        let change = self
            .within(HANG_GUARD)
            .unwrap_or_else(|| panic!("{what}: no change reported"));
        if let Some(extra) = self.within(self.settle) {
            panic!("{what}: a second change was reported: {extra} (first: {change})");
        }
        change
    }

    #[track_caller]
    fn expect_none(&self, what: &str) {
        if let Some(change) = self.within(self.settle) {
            panic!("{what}: unexpected change: {change}");
        }
    }
}

fn editor_save(path: &Path, content: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp~",
        path.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn setup(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.conf");
    fs::write(&file, content).unwrap();
    (dir, file)
}

#[test]
fn editor_style_save_is_one_change() {
    for via in BOTH {
        let (_dir, file) = setup("listen 80;\n");
        let h = Harness::new(&[&file], via);
        editor_save(&file, "listen 8080;\n");
        let change = h.expect_one(&format!("{via:?}"));
        assert_eq!(change.paths, vec![file.clone()]);
        // The watch survived the rename: the new inode is watched too.
        editor_save(&file, "listen 9090;\n");
        h.expect_one(&format!("{via:?} second save"));
    }
}

#[test]
fn in_place_write_is_one_change() {
    for via in BOTH {
        let (_dir, file) = setup("a = 1\n");
        let h = Harness::new(&[&file], via);
        fs::write(&file, "a = 2\nb = 3\n").unwrap();
        h.expect_one(&format!("{via:?}"));
    }
}

#[test]
fn same_size_rewrite_with_the_same_mtime_is_one_change() {
    for via in BOTH {
        let (_dir, file) = setup("secret=aaaa\n");
        let h = Harness::new(&[&file], via);
        let before = fs::metadata(&file).unwrap();
        let mtime = filetime::FileTime::from_last_modification_time(&before);
        fs::write(&file, "secret=bbbb\n").unwrap();
        filetime::set_file_mtime(&file, mtime).unwrap();
        let after = fs::metadata(&file).unwrap();
        assert_eq!(before.len(), after.len());
        assert_eq!(
            filetime::FileTime::from_last_modification_time(&after),
            mtime
        );
        h.expect_one(&format!("{via:?}"));
    }
}

#[test]
fn touch_is_no_change() {
    for via in BOTH {
        let (_dir, file) = setup("unchanged\n");
        let h = Harness::new(&[&file], via);
        filetime::set_file_mtime(&file, filetime::FileTime::now()).unwrap();
        // chmod is not a content change either.
        let mut perms = fs::metadata(&file).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
        fs::set_permissions(&file, perms).unwrap();
        h.expect_none(&format!("{via:?}"));
        // And the watch is still alive.
        fs::write(&file, "changed\n").unwrap();
        h.expect_one(&format!("{via:?} after touch"));
    }
}

#[test]
fn no_change_at_start_with_several_paths() {
    for via in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for name in ["a.conf", "b.conf", "c.pem"] {
            fs::write(dir.path().join(name), name).unwrap();
            paths.push(dir.path().join(name));
        }
        paths.push(dir.path().join("*.conf"));
        paths.push(dir.path().to_path_buf());
        let h = Harness::new(&paths, via);
        h.expect_none(&format!("{via:?} at start"));
    }
}

/// Lays out a projected volume the way kubelet's atomic writer does, version 1.
fn k8s_volume(dir: &Path, files: &[(&str, &str)]) {
    let ts = dir.join("..2024_01_01_00_00_00.000000001");
    fs::create_dir(&ts).unwrap();
    for (name, content) in files {
        fs::write(ts.join(name), content).unwrap();
        symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    symlink(ts.file_name().unwrap(), dir.join("..data")).unwrap();
}

/// Replays kubelet's update, step by step, pausing longer than the debounce between steps so that every
/// step is scanned on its own: the count must come from content, not from luck with timing.
fn k8s_update(dir: &Path, files: &[(&str, &str)], pause: Duration) {
    let old = fs::read_link(dir.join("..data")).unwrap();
    let new = dir.join("..2024_01_01_00_01_00.000000002");
    fs::create_dir(&new).unwrap();
    std::thread::sleep(pause);
    for (name, content) in files {
        fs::write(new.join(name), content).unwrap();
    }
    std::thread::sleep(pause);
    symlink(new.file_name().unwrap(), dir.join("..data_tmp")).unwrap();
    std::thread::sleep(pause);
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::thread::sleep(pause);
    fs::remove_dir_all(dir.join(old)).unwrap();
}

#[test]
fn kubernetes_atomic_writer_is_exactly_one_change() {
    for via in BOTH {
        for watch_kind in ["file", "dir", "glob"] {
            let dir = tempfile::tempdir().unwrap();
            k8s_volume(dir.path(), &[("app.conf", "v1"), ("tls.pem", "cert1")]);
            let target = match watch_kind {
                "file" => dir.path().join("app.conf"),
                "dir" => dir.path().to_path_buf(),
                _ => dir.path().join("*.conf"),
            };
            let h = Harness::new(&[target], via);
            let what = format!("{via:?} watching the {watch_kind}");
            let pause = DEBOUNCE * 2;
            k8s_update(
                dir.path(),
                &[("app.conf", "v2"), ("tls.pem", "cert1")],
                pause,
            );
            let change = h.expect_one(&what);
            assert_eq!(change.paths, vec![dir.path().join("app.conf")], "{what}");
        }
    }
}

#[test]
fn kubernetes_update_of_another_key_is_no_change_for_this_file() {
    let dir = tempfile::tempdir().unwrap();
    k8s_volume(dir.path(), &[("app.conf", "v1"), ("tls.pem", "cert1")]);
    let h = Harness::new(&[dir.path().join("app.conf")], Via::Inotify);
    k8s_update(
        dir.path(),
        &[("app.conf", "v1"), ("tls.pem", "cert2")],
        Duration::ZERO,
    );
    h.expect_none("only tls.pem changed");
}

#[test]
fn delete_then_recreate_is_one_change_each_and_the_watch_survives() {
    for via in BOTH {
        let (_dir, file) = setup("v1");
        let h = Harness::new(&[&file], via);
        fs::remove_file(&file).unwrap();
        h.expect_one(&format!("{via:?} delete"));
        fs::write(&file, "v2").unwrap();
        h.expect_one(&format!("{via:?} re-create"));
        fs::write(&file, "v3").unwrap();
        h.expect_one(&format!("{via:?} write after re-create"));
    }
}

#[test]
fn deleted_and_recreated_directory_is_watched_again() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("conf.d");
    fs::create_dir(&sub).unwrap();
    let file = sub.join("app.conf");
    fs::write(&file, "v1").unwrap();
    let h = Harness::new(&[&file], Via::Inotify);
    fs::remove_dir_all(&sub).unwrap();
    h.expect_one("directory removed");
    fs::create_dir(&sub).unwrap();
    h.expect_none("empty directory re-created");
    fs::write(&file, "v2").unwrap();
    h.expect_one("file re-created in the new directory");
    fs::write(&file, "v3").unwrap();
    h.expect_one("write in the new directory");
}

#[test]
fn a_file_that_does_not_exist_yet_is_a_change_when_it_appears() {
    for via in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not/yet/app.conf");
        let h = Harness::new(&[&file], via);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        h.expect_none(&format!("{via:?} directories only"));
        fs::write(&file, "hello").unwrap();
        let change = h.expect_one(&format!("{via:?} file created"));
        assert_eq!(change.paths, vec![file]);
    }
}

#[test]
fn a_new_file_matching_the_glob_is_one_change() {
    for via in BOTH {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.conf"), "a").unwrap();
        let h = Harness::new(&[dir.path().join("*.conf")], via);
        fs::write(dir.path().join("notes.txt"), "not matched").unwrap();
        fs::write(
            dir.path().join(".hidden.conf"),
            "dot files are not matched by *",
        )
        .unwrap();
        h.expect_none(&format!("{via:?} non-matching files"));
        fs::write(dir.path().join("b.conf"), "b").unwrap();
        let change = h.expect_one(&format!("{via:?} new match"));
        assert_eq!(change.paths, vec![dir.path().join("b.conf")]);
    }
}

#[test]
fn glob_across_directory_levels_sees_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("site-a")).unwrap();
    fs::write(dir.path().join("site-a/app.conf"), "a").unwrap();
    let h = Harness::new(&[dir.path().join("*/app.conf")], Via::Inotify);
    fs::create_dir(dir.path().join("site-b")).unwrap();
    h.expect_none("empty directory");
    fs::write(dir.path().join("site-b/app.conf"), "b").unwrap();
    h.expect_one("file in a new directory");
}

#[test]
fn a_burst_of_100_writes_is_one_change() {
    for via in BOTH {
        let (_dir, file) = setup("0");
        let h = Harness::new(&[&file], via);
        for i in 1..=100 {
            fs::write(&file, format!("{i}")).unwrap();
        }
        let change = h.expect_one(&format!("{via:?}"));
        assert_eq!(change.paths, vec![file.clone()]);
        assert_eq!(fs::read_to_string(&file).unwrap(), "100");
    }
}

#[test]
fn writing_back_the_same_content_is_no_change() {
    for via in BOTH {
        let (_dir, file) = setup("same");
        let h = Harness::new(&[&file], via);
        fs::write(&file, "same").unwrap();
        editor_save(&file, "same");
        h.expect_none(&format!("{via:?}"));
    }
}

#[test]
fn symlinks_are_followed_to_their_target() {
    for via in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("certs");
        fs::create_dir(&real_dir).unwrap();
        fs::write(real_dir.join("tls.pem"), "cert1").unwrap();
        let conf = dir.path().join("etc");
        fs::create_dir(&conf).unwrap();
        let link = conf.join("tls.pem");
        symlink(real_dir.join("tls.pem"), &link).unwrap();
        let h = Harness::new(&[&link], via);
        // Written in place in a directory the user never named.
        fs::write(real_dir.join("tls.pem"), "cert2").unwrap();
        h.expect_one(&format!("{via:?} target written"));
        // Re-pointing the link at other content is a change too.
        fs::write(real_dir.join("tls-new.pem"), "cert3").unwrap();
        h.expect_none(&format!("{via:?} unrelated file next to the target"));
        fs::remove_file(&link).unwrap();
        symlink(real_dir.join("tls-new.pem"), &link).unwrap();
        h.expect_one(&format!("{via:?} link re-pointed"));
    }
}

#[test]
fn a_watched_directory_reports_new_changed_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/a.ini"), "a").unwrap();
    let h = Harness::new(&[dir.path().to_path_buf()], Via::Inotify);
    fs::write(dir.path().join("b.ini"), "b").unwrap();
    h.expect_one("new file");
    fs::write(dir.path().join("sub/a.ini"), "a2").unwrap();
    h.expect_one("file in a subdirectory");
    fs::create_dir(dir.path().join("sub/deeper")).unwrap();
    h.expect_none("empty subdirectory");
    fs::write(dir.path().join("sub/deeper/c.ini"), "c").unwrap();
    h.expect_one("file in a new subdirectory");
    fs::remove_file(dir.path().join("b.ini")).unwrap();
    h.expect_one("removed file");
}

#[test]
fn changes_while_the_consumer_is_busy_are_merged_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("b.conf");
    fs::write(&a, "1").unwrap();
    fs::write(&b, "1").unwrap();
    let h = Harness::new(&[&a, &b], Via::Inotify);
    fs::write(&a, "2").unwrap();
    std::thread::sleep(DEBOUNCE * 4);
    fs::write(&b, "2").unwrap();
    std::thread::sleep(DEBOUNCE * 4);
    let change = h.expect_one("two changes while nobody listened");
    assert_eq!(change.paths, vec![a, b]);
}

#[test]
fn invalid_patterns_are_refused() {
    assert!(matches!(
        Watcher::start(&["/etc/[oops"], WatchOptions::default()),
        Err(WatchError::Glob { .. })
    ));
    assert!(matches!(
        Watcher::start::<&str>(&[], WatchOptions::default()),
        Err(WatchError::EmptyPattern)
    ));
}

#[test]
fn a_network_filesystem_falls_back_to_polling_and_still_sees_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.conf");
    fs::write(&file, "v1").unwrap();
    *engine::PRETEND_REMOTE.lock().unwrap() = Some(dir.path().to_path_buf());
    let options = WatchOptions {
        debounce: DEBOUNCE,
        poll: None,
        fallback_poll: Duration::from_millis(200),
    };
    let watcher = Watcher::start(&[file.display().to_string()], options).unwrap();
    assert_eq!(watcher.mode(), Mode::Poll(Duration::from_millis(200)));
    let h = Harness {
        watcher,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap(),
        settle: Duration::from_millis(1500),
    };
    h.expect_none("at start");
    editor_save(&file, "v2");
    h.expect_one("after the fall-back");
    filetime::set_file_mtime(&file, filetime::FileTime::now()).unwrap();
    h.expect_none("touch while polling");
}
