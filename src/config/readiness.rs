//! A job's readiness, liveness and dependencies as written in its `job` block, and the checks that
//! span jobs (unknown names, self-references, cycles) with the start order they allow.
//!
//! ```hcl
//! job "api" {
//!   command  = "/usr/bin/api"
//!   after    = ["migrate"]          # start once migrate is ready (a oneTime job: completed)
//!   requires = ["migrate"]          # and stop when it fails for good
//!   ready { url = "http://127.0.0.1:8080/health" }   # or notify = "systemd" / "fd:3"
//!   watchdog = "30s"                # with notify = "systemd": WATCHDOG=1 at least this often
//!   alive {
//!     http { url = "http://127.0.0.1:8080/health" }
//!     period = "10s"
//!     threshold = 3                 # failures in a row
//!     action = "restart"            # or "shutdown", "ignore"
//!   }
//! }
//! ```
//!
//! Everything is resolved here, at load time: probes to `gantry_probes::Target`s (the same reader as
//! `probe` blocks, [`super::probe::read_target`]), durations to `Duration`s, names checked against
//! the plan. What the values do at run time is the supervisor's and `readiness`'s business.

use std::collections::HashMap;
use std::time::Duration;

use gantry_probes::Target;

use super::error::{ConfigError, Errors};
use super::model::Plan;
use super::node::{Pos, Reader};

/// Default time between two liveness checks.
pub const DEFAULT_ALIVE_PERIOD: Duration = Duration::from_secs(10);
/// Default number of liveness failures in a row that trigger the action.
pub const DEFAULT_ALIVE_THRESHOLD: u32 = 3;

/// How a job tells gantry it is ready, other than a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// systemd's `sd_notify`: a datagram to `$NOTIFY_SOCKET` with `READY=1`.
    Systemd,
    /// s6's notification-fd: a line written to this descriptor.
    Fd(i32),
}

/// What a liveness check does once its threshold is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AliveAction {
    /// Restart the job (counts toward its restart policy).
    #[default]
    Restart,
    /// Shut gantry down.
    Shutdown,
    /// Only report.
    Ignore,
}

impl AliveAction {
    pub fn name(self) -> &'static str {
        match self {
            AliveAction::Restart => "restart",
            AliveAction::Shutdown => "shutdown",
            AliveAction::Ignore => "ignore",
        }
    }
}

/// A job's `alive { ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct AliveSpec {
    pub target: Target,
    pub period: Duration,
    pub threshold: u32,
    pub action: AliveAction,
}

/// A job's readiness, liveness and dependencies. `Default` is a job with none of them: ready as soon
/// as it has started, started with everything else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readiness {
    /// `ready { ... }`: polled from the moment the process starts.
    pub ready: Option<Target>,
    pub notify: Option<Notify>,
    /// With `notify = "systemd"`: the longest gap allowed between two `WATCHDOG=1`.
    pub watchdog: Option<Duration>,
    /// Jobs that must be ready before this one starts.
    pub after: Vec<String>,
    /// Like `after`, and this job is stopped when one of them fails for good.
    pub requires: Vec<String>,
    pub alive: Option<AliveSpec>,
    /// Where `after` and `requires` were written, for messages.
    pub after_pos: Option<Pos>,
    pub requires_pos: Option<Pos>,
}

impl Readiness {
    /// Every job this one waits for (`after` then `requires`, each name once).
    pub fn deps(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for name in self.after.iter().chain(&self.requires) {
            if !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
        out
    }

    /// How the job becomes ready, for `gantry check`.
    pub fn describe(&self) -> Option<String> {
        let how = match (&self.ready, self.notify) {
            (Some(t), _) => format!("ready when {} answers", target_text(t)),
            (None, Some(Notify::Systemd)) => "ready on sd_notify READY=1".to_string(),
            (None, Some(Notify::Fd(n))) => format!("ready when it writes a line to fd {n}"),
            (None, None) => return None,
        };
        Some(match self.watchdog {
            Some(w) => format!("{how}; watchdog {w:?}"),
            None => how,
        })
    }
}

fn target_text(t: &Target) -> String {
    t.clone()
        .into_probe()
        .map_or_else(|e| e.to_string(), |p| p.describe())
}

/// `alive` for `gantry check`.
pub fn describe_alive(a: &AliveSpec) -> String {
    format!(
        "alive: {} every {:?}, {} failure(s) in a row → {}",
        target_text(&a.target),
        a.period,
        a.threshold,
        a.action.name()
    )
}

/// Reads the readiness attributes of a `job` block (`name` is its label, when it has one).
pub fn read_job(r: &mut Reader<'_>, name: Option<&str>) -> Readiness {
    let job = name.unwrap_or("job");
    let mut out = Readiness::default();
    if let Some(b) = r.single_block("ready") {
        let mut br = Reader::new(&b, r.errors());
        out.ready = super::probe::read_target(&mut br, job, "ready check of job");
        br.finish();
    }
    let notify_pos = r.value("notify").map(|v| v.pos.clone());
    if let (Some(text), Some(pos)) = (r.string("notify"), notify_pos.clone()) {
        match parse_notify(&text) {
            Ok(n) => out.notify = Some(n),
            Err(e) => r.error(pos, "notify", e),
        }
    }
    if let (Some(_), Some(_), Some(pos)) = (&out.ready, out.notify, notify_pos) {
        r.error(
            pos,
            "notify",
            "a job has one way to become ready: a ready { ... } block or notify, not both",
        );
    }
    out.watchdog = r.duration("watchdog");
    if let Some(w) = out.watchdog {
        let pos = r.value("watchdog").map(|v| v.pos.clone());
        if let Some(pos) = pos {
            if out.notify != Some(Notify::Systemd) {
                r.error(
                    pos,
                    "watchdog",
                    "needs notify = \"systemd\" (the job sends WATCHDOG=1 to $NOTIFY_SOCKET)",
                );
            } else if w.is_zero() {
                r.error(pos, "watchdog", "must be longer than 0s");
            }
        }
    }
    out.after_pos = r.value("after").map(|v| v.pos.clone());
    out.after = r.string_list("after").unwrap_or_default();
    out.requires_pos = r.value("requires").map(|v| v.pos.clone());
    out.requires = r.string_list("requires").unwrap_or_default();
    if let Some(b) = r.single_block("alive") {
        let mut br = Reader::new(&b, r.errors());
        let target = super::probe::read_target(&mut br, job, "liveness check of job");
        let period = br.duration("period").unwrap_or(DEFAULT_ALIVE_PERIOD);
        if period.is_zero() {
            let pos = br.value("period").map_or(b.pos.clone(), |v| v.pos.clone());
            br.error(pos, "period", "must be longer than 0s");
        }
        let threshold = match br.int("threshold") {
            None => DEFAULT_ALIVE_THRESHOLD,
            Some(n) if n >= 1 && n <= u32::MAX as i64 => n as u32,
            Some(n) => {
                let pos = br
                    .value("threshold")
                    .map_or(b.pos.clone(), |v| v.pos.clone());
                br.error(
                    pos,
                    "threshold",
                    format!("{n}: use a number of failures ≥ 1"),
                );
                DEFAULT_ALIVE_THRESHOLD
            }
        };
        let action_pos = br.value("action").map(|v| v.pos.clone());
        let action = match (br.string("action"), action_pos) {
            (None, _) => AliveAction::Restart,
            (Some(a), pos) => match a.to_ascii_lowercase().as_str() {
                "restart" => AliveAction::Restart,
                "shutdown" => AliveAction::Shutdown,
                "ignore" => AliveAction::Ignore,
                _ => {
                    if let Some(pos) = pos {
                        br.error(
                            pos,
                            "action",
                            format!("{a:?}: use \"restart\", \"shutdown\" or \"ignore\""),
                        );
                    }
                    AliveAction::Restart
                }
            },
        };
        br.finish();
        out.alive = target.map(|target| AliveSpec {
            target,
            period,
            threshold,
            action,
        });
    }
    out
}

/// `"systemd"` or `"fd:N"` (N ≥ 3: 0–2 are the job's standard streams).
pub fn parse_notify(text: &str) -> Result<Notify, String> {
    if text.eq_ignore_ascii_case("systemd") {
        return Ok(Notify::Systemd);
    }
    if let Some(n) = text.strip_prefix("fd:") {
        return match n.trim().parse::<i32>() {
            Ok(n) if (3..=1023).contains(&n) => Ok(Notify::Fd(n)),
            Ok(n) => Err(format!(
                "fd {n} cannot be used: give a descriptor from 3 to 1023 (0-2 are stdin, stdout, stderr)"
            )),
            Err(_) => Err(format!("{text:?}: expected \"fd:N\" with a number N")),
        };
    }
    Err(format!("{text:?}: use \"systemd\" or \"fd:N\""))
}

/// Checks every job's `after` and `requires` against the plan: unknown names, boot jobs, a job that
/// names itself, and cycles (spelled out, `a → b → c → a`). Each error names the file and line of
/// the attribute.
pub fn check_plan(plan: &Plan, errors: &mut Errors) {
    let index: HashMap<&str, usize> = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    let names: Vec<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
    for job in &plan.jobs {
        let r = &job.readiness;
        for (attr, list, pos) in [
            ("after", &r.after, &r.after_pos),
            ("requires", &r.requires, &r.requires_pos),
        ] {
            let Some(pos) = pos.clone().or_else(|| job.origin.clone()) else {
                continue;
            };
            for dep in list {
                let message = if dep == &job.name {
                    format!(
                        "job {:?}: attribute {attr:?}: a job cannot wait for itself",
                        job.name
                    )
                } else if index.contains_key(dep.as_str()) {
                    continue;
                } else if plan.boot.iter().any(|b| &b.name == dep) {
                    format!(
                        "job {:?}: attribute {attr:?}: {dep:?} is a boot job; boot jobs always \
                         finish before any job starts",
                        job.name
                    )
                } else {
                    errors.push(
                        ConfigError::at(
                            pos.clone(),
                            format!(
                                "job {:?}: attribute {attr:?}: no job named {dep:?}",
                                job.name
                            ),
                        )
                        .with_hint(super::node::suggest(dep, &names)),
                    );
                    continue;
                };
                errors.push(ConfigError::at(pos.clone(), message));
            }
        }
    }
    for cycle in cycles(plan) {
        let first = &plan.jobs[cycle[0]];
        let spelled: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&cycle[0]))
            .map(|&i| plan.jobs[i].name.as_str())
            .collect();
        let r = &first.readiness;
        let pos = r
            .after_pos
            .clone()
            .or_else(|| r.requires_pos.clone())
            .or_else(|| first.origin.clone());
        let message = format!(
            "job {:?}: dependency cycle: {} (after/requires must not loop)",
            first.name,
            spelled.join(" → ")
        );
        errors.push(match pos {
            Some(pos) => ConfigError::at(pos, message),
            None => ConfigError::general(message),
        });
    }
}

/// The index of every job `job` waits for (known names only, itself excluded).
fn edges(plan: &Plan, job: usize) -> Vec<usize> {
    let me = &plan.jobs[job];
    me.readiness
        .deps()
        .into_iter()
        .filter(|d| *d != me.name)
        .filter_map(|d| plan.jobs.iter().position(|j| j.name == d))
        .collect()
}

/// Every dependency cycle, once each, as job indices in the order they wait for each other.
fn cycles(plan: &Plan) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let n = plan.jobs.len();
    let graph: Vec<Vec<usize>> = (0..n).map(|i| edges(plan, i)).collect();
    let mut mark = vec![Mark::New; n];
    let mut found = Vec::new();
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = graph[node].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnStack;
                        stack.push((dep, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|&(j, _)| j == dep).unwrap_or(0);
                        found.push(stack[from..].iter().map(|&(j, _)| j).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    found
}

/// The start order as layers: the first holds the jobs that wait for none, each next one the jobs
/// whose dependencies are all in earlier layers. Jobs caught in a cycle are left out (the plan is
/// invalid then anyway).
pub fn layers(plan: &Plan) -> Vec<Vec<String>> {
    let n = plan.jobs.len();
    let graph: Vec<Vec<usize>> = (0..n).map(|i| edges(plan, i)).collect();
    let mut layer_of: Vec<Option<usize>> = vec![None; n];
    let mut out: Vec<Vec<String>> = Vec::new();
    loop {
        let layer = out.len();
        let next: Vec<usize> = (0..n)
            .filter(|&i| layer_of[i].is_none())
            .filter(|&i| graph[i].iter().all(|&d| layer_of[d].is_some()))
            .collect();
        if next.is_empty() {
            break;
        }
        for &i in &next {
            layer_of[i] = Some(layer);
        }
        out.push(next.iter().map(|&i| plan.jobs[i].name.clone()).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load_text;
    use super::*;
    use std::path::Path;

    fn plan(text: &str) -> Result<Plan, Errors> {
        load_text(Path::new("deps.hcl"), text)
    }

    fn job(name: &str, extra: &str) -> String {
        format!("job \"{name}\" {{\n  command = \"/bin/true\"\n{extra}}}\n")
    }

    #[test]
    fn layers_follow_after_and_requires() {
        let text = [
            job("worker", "  after = [\"api\"]\n"),
            job("api", "  requires = [\"migrate\"]\n"),
            job("migrate", "  oneTime = true\n"),
            job("cache", ""),
            job("nginx", "  after = [\"api\", \"cache\"]\n"),
        ]
        .concat();
        let p = plan(&text).expect("valid");
        assert_eq!(
            layers(&p),
            vec![
                vec!["migrate".to_string(), "cache".to_string()],
                vec!["api".to_string()],
                vec!["worker".to_string(), "nginx".to_string()],
            ]
        );
        assert_eq!(p.jobs[4].readiness.deps(), vec!["api", "cache"]);
    }

    #[test]
    fn a_cycle_of_three_is_spelled_out_at_its_line() {
        let text = [
            job("a", "  after = [\"b\"]\n"),
            job("b", "  after = [\"c\"]\n"),
            job("c", "  requires = [\"a\"]\n"),
        ]
        .concat();
        let errors = plan(&text).expect_err("a cycle");
        let text = errors.to_string();
        assert_eq!(errors.len(), 1, "{text}");
        assert!(
            text.contains("deps.hcl:3:11:") && text.contains("dependency cycle: a → b → c → a"),
            "{text}"
        );
    }

    #[test]
    fn unknown_names_self_references_and_boot_jobs_are_errors() {
        let text = [
            "boot \"setup\" {\n  command = \"/bin/true\"\n}\n".to_string(),
            job(
                "api",
                "  after = [\"migrat\", \"api\"]\n  requires = [\"setup\"]\n",
            ),
            job("migrate", ""),
        ]
        .concat();
        let errors = plan(&text).expect_err("invalid");
        let text = errors.to_string();
        assert!(
            text.contains(
                "deps.hcl:6:11: job \"api\": attribute \"after\": no job named \"migrat\""
            ) && text.contains("did you mean \"migrate\""),
            "{text}"
        );
        assert!(
            text.contains(
                "deps.hcl:6:11: job \"api\": attribute \"after\": a job cannot wait for itself"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "deps.hcl:7:14: job \"api\": attribute \"requires\": \"setup\" is a boot job"
            ),
            "{text}"
        );
        // The self-reference is not also reported as a cycle.
        assert!(!text.contains("cycle"), "{text}");
    }

    #[test]
    fn ready_notify_watchdog_and_alive_are_read_and_resolved() {
        let text = [
            job("api", "  ready { url = \"http://127.0.0.1:8080/health\" }\n"),
            job("db", "  notify = \"systemd\"\n  watchdog = \"30s\"\n"),
            job("s6", "  notify = \"fd:5\"\n"),
            job(
                "web",
                "  alive {\n    http { url = \"http://127.0.0.1:80/\" }\n    period = \"2s\"\n    threshold = 4\n    action = \"shutdown\"\n  }\n",
            ),
        ]
        .concat();
        let p = plan(&text).expect("valid");
        assert!(p.jobs[0].readiness.ready.is_some());
        assert_eq!(p.jobs[1].readiness.notify, Some(Notify::Systemd));
        assert_eq!(p.jobs[1].readiness.watchdog, Some(Duration::from_secs(30)));
        assert_eq!(p.jobs[2].readiness.notify, Some(Notify::Fd(5)));
        let alive = p.jobs[3].readiness.alive.as_ref().expect("alive");
        assert_eq!(
            (alive.period, alive.threshold, alive.action),
            (Duration::from_secs(2), 4, AliveAction::Shutdown)
        );
        assert_eq!(
            p.jobs[0]
                .readiness
                .describe()
                .map(|d| d.starts_with("ready when http")),
            Some(true)
        );
    }

    #[test]
    fn bad_readiness_values_are_reported_with_their_place() {
        let text = [
            job("a", "  ready {\n    url = \"htp:/nowhere\"\n  }\n"),
            job("b", "  notify = \"sd\"\n"),
            job("c", "  notify = \"fd:1\"\n"),
            job("d", "  watchdog = \"5s\"\n"),
            job("e", "  alive {\n    tcp { url = \"tcp://127.0.0.1:1\" }\n    action = \"reboot\"\n    threshold = 0\n  }\n"),
            job("f", "  ready { url = \"tcp://127.0.0.1:1\" }\n  notify = \"systemd\"\n"),
        ]
        .concat();
        let errors = plan(&text).expect_err("invalid");
        let text = errors.to_string();
        for want in [
            "deps.hcl:4:11: ready check of job \"a\": probe URL htp:/nowhere",
            "deps.hcl:9:12: job \"b\": attribute \"notify\": \"sd\": use \"systemd\" or \"fd:N\"",
            "deps.hcl:13:12: job \"c\": attribute \"notify\": fd 1 cannot be used",
            "deps.hcl:17:14: job \"d\": attribute \"watchdog\": needs notify = \"systemd\"",
            "attribute \"action\": \"reboot\"",
            "attribute \"threshold\": 0",
            "job \"f\": attribute \"notify\": a job has one way to become ready",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
