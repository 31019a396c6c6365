//! What gantry ships besides the binary's modes: the Dockerfiles, the Kubernetes examples, shell
//! completions, the man page and `gantry version`.
//!
//! No container engine runs here, so the Dockerfiles and the Kubernetes manifests are checked by
//! parsing them (dockerfile-parser, serde_norway) and running what can be run without one: every
//! configuration directory they mount goes through `gantry check`, every URL `gantry wait` is given
//! through gantry's URL parser.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dockerfile_parser::{Dockerfile, Instruction, ShellOrExecExpr};
use serde::Deserialize;
use serde_norway::Value;
use support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_root(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dockerfile(path: &str) -> Dockerfile {
    Dockerfile::parse(&read_root(path)).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

/// A RUN, ENTRYPOINT or CMD as one line of text (exec form joined with spaces).
fn expr_text(expr: &ShellOrExecExpr) -> String {
    match expr {
        ShellOrExecExpr::Shell(s) => s.to_string(),
        ShellOrExecExpr::Exec(a) => a.as_str_vec().join(" "),
    }
}

fn exec_form(expr: &ShellOrExecExpr) -> Vec<String> {
    expr.as_exec()
        .expect("exec form (a JSON array), so that no shell is needed")
        .as_str_vec()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The flag `--NAME=VALUE` of a COPY, if given.
fn copy_flag<'a>(copy: &'a dockerfile_parser::CopyInstruction, name: &str) -> Option<&'a str> {
    copy.flags
        .iter()
        .find(|f| f.name.content == name)
        .map(|f| f.value.content.as_str())
}

const SCRIPT: &str = "scripts/build-static.sh";

#[test]
fn the_image_builds_with_the_ci_script_and_holds_only_the_static_binary() {
    let file = dockerfile("Dockerfile");
    let stages = file.stages();
    let stages: Vec<_> = stages.iter().collect();
    assert!(stages.len() >= 2, "a multi-stage build");

    // The build stage runs the same script as CI, and the final stage copies what it wrote.
    let build_runs: Vec<String> = stages[..stages.len() - 1]
        .iter()
        .flat_map(|s| s.instructions.iter())
        .filter_map(|i| i.as_run())
        .map(|r| expr_text(&r.expr))
        .collect();
    let run = build_runs
        .iter()
        .find(|r| r.contains(SCRIPT))
        .unwrap_or_else(|| panic!("no RUN calls {SCRIPT}: {build_runs:?}"));
    let out = run
        .split_whitespace()
        .skip_while(|w| *w != "--out")
        .nth(1)
        .unwrap_or_else(|| panic!("{SCRIPT} is run without --out: {run}"));
    assert!(
        read_root(".ci/run")
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains(SCRIPT)),
        ".ci/run does not build the static binary with {SCRIPT}"
    );
    assert!(root().join(SCRIPT).is_file());

    let last = stages.last().expect("final stage");
    let from = last.instructions[0].as_from().expect("FROM");
    assert_eq!(
        from.image.content, "scratch",
        "the final stage is FROM scratch"
    );
    let copies: Vec<_> = last
        .instructions
        .iter()
        .filter_map(|i| i.as_copy())
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "the final stage copies one thing: {copies:?}"
    );
    let copy = copies[0];
    let sources: Vec<&str> = copy.sources.iter().map(|s| s.content.as_str()).collect();
    assert_eq!(sources, [out], "it copies the binary the script wrote");
    assert_eq!(copy.destination.content, "/gantry");
    let from_stage = copy_flag(copy, "from").expect("COPY --from=<build stage>");
    assert!(
        stages[..stages.len() - 1]
            .iter()
            .any(|s| s.name.as_deref() == Some(from_stage)),
        "COPY --from={from_stage} names no earlier stage"
    );
    // Nothing else goes into the image: only metadata besides that one COPY.
    for i in &last.instructions[1..] {
        assert!(
            matches!(
                i,
                Instruction::Copy(_)
                    | Instruction::Entrypoint(_)
                    | Instruction::Cmd(_)
                    | Instruction::Label(_)
                    | Instruction::Arg(_)
            ),
            "the final stage may hold only /gantry: {i:?}"
        );
    }
    let entrypoint = last
        .instructions
        .iter()
        .find_map(|i| i.as_entrypoint())
        .map(|e| exec_form(&e.expr));
    assert_eq!(entrypoint, Some(vec!["/gantry".to_string()]));
}

#[test]
fn the_build_context_leaves_out_the_target_directory() {
    let ignore = read_root(".dockerignore");
    assert!(
        ignore
            .lines()
            .any(|l| l.trim().trim_end_matches('/') == "target"),
        "{ignore}"
    );
}

#[test]
fn the_app_example_uses_gantry_as_its_entrypoint_on_a_config_that_passes_check() {
    let file = dockerfile("examples/Dockerfile.app");
    let stages = file.stages();
    let last = stages.iter().last().expect("final stage");
    let copies: Vec<_> = last
        .instructions
        .iter()
        .filter_map(|i| i.as_copy())
        .collect();
    let binary = copies
        .iter()
        .find(|c| c.sources.iter().any(|s| s.content == "/gantry"))
        .expect("COPY --from=<gantry image> /gantry ...");
    assert!(copy_flag(binary, "from").is_some());
    let installed = binary.destination.content.clone();

    let entrypoint = last
        .instructions
        .iter()
        .find_map(|i| i.as_entrypoint())
        .map(|e| exec_form(&e.expr))
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint[0], installed);
    assert_eq!(entrypoint[1], "up");
    let dir = &entrypoint[entrypoint.iter().position(|a| a == "-c").expect("-c DIR") + 1];
    // The config directory comes from the repository.
    let source = copies
        .iter()
        .find(|c| c.destination.content == *dir)
        .and_then(|c| c.sources.first())
        .map(|s| s.content.clone())
        .unwrap_or_else(|| panic!("nothing is copied to {dir}"));
    let out = run(gantry(&[
        "check",
        "-c",
        root().join(&source).to_str().expect("utf-8"),
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn the_build_script_is_valid_shell() {
    let out = run({
        let mut c = std::process::Command::new("bash");
        c.args(["-n", root().join(SCRIPT).to_str().expect("utf-8")]);
        c
    });
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

// ---- Kubernetes ----------------------------------------------------------------------------------

/// Every document of a multi-document YAML file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The pod spec of a Pod or of a workload's pod template.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Pod" => Some(&doc["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        _ => None,
    }
}

struct Container<'a> {
    spec: &'a Value,
    pod: &'a Value,
    command: Vec<String>,
}

impl Container<'_> {
    fn name(&self) -> &str {
        self.spec["name"].as_str().unwrap_or("?")
    }

    /// gantry's arguments, if this container runs gantry.
    fn gantry_args(&self) -> Option<&[String]> {
        let first = self.command.first()?;
        (Path::new(first).file_name()? == "gantry").then(|| &self.command[1..])
    }

    /// The value after `flag` in gantry's arguments.
    fn flag(&self, flag: &str) -> Option<&str> {
        let args = self.gantry_args()?;
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1).map(String::as_str)
    }

    /// The container's environment; a value from a Secret becomes a placeholder.
    fn env(&self) -> BTreeMap<String, String> {
        self.spec["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e["name"].as_str()?.to_string();
                let value = e["value"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("placeholder-{}", name.to_lowercase()));
                Some((name, value))
            })
            .collect()
    }

    /// Kubernetes' `$(VAR)` expansion of a command argument.
    fn expand(&self, arg: &str) -> String {
        let mut out = arg.to_string();
        for (k, v) in self.env() {
            out = out.replace(&format!("$({k})"), &v);
        }
        out
    }

    /// The name of the ConfigMap mounted at `path` in this container.
    fn config_map_at(&self, path: &str) -> Option<String> {
        let mount = self.spec["volumeMounts"]
            .as_sequence()?
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(path))?;
        let volume = mount["name"].as_str()?;
        self.pod["volumes"]
            .as_sequence()?
            .iter()
            .find(|v| v["name"].as_str() == Some(volume))?["configMap"]["name"]
            .as_str()
            .map(str::to_string)
    }
}

struct Manifest {
    path: PathBuf,
    docs: Vec<Value>,
}

impl Manifest {
    fn load(name: &str) -> Manifest {
        let path = root().join("examples/kubernetes").join(name);
        Manifest {
            docs: yaml_documents(&path),
            path,
        }
    }

    fn containers(&self) -> Vec<Container<'_>> {
        let mut all = Vec::new();
        for pod in self.docs.iter().filter_map(pod_spec) {
            for key in ["initContainers", "containers"] {
                for spec in pod[key].as_sequence().into_iter().flatten() {
                    let mut command = strings(&spec["command"]);
                    command.extend(strings(&spec["args"]));
                    all.push(Container { spec, pod, command });
                }
            }
        }
        all
    }

    fn gantry(&self, mode: &str) -> Container<'_> {
        self.containers()
            .into_iter()
            .find(|c| c.gantry_args().and_then(|a| a.first()).map(String::as_str) == Some(mode))
            .unwrap_or_else(|| panic!("{}: no container runs gantry {mode}", self.path.display()))
    }

    fn config_map(&self, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("ConfigMap")
                    && d["metadata"]["name"].as_str() == Some(name)
            })
            .unwrap_or_else(|| panic!("{}: no ConfigMap {name}", self.path.display()))
    }

    /// Writes the ConfigMap mounted at the container's `-c DIR` into a directory, as Kubernetes
    /// mounts it, and runs `gantry check` on it with the container's environment and working
    /// directory (the mounted directory when the container sets it to that).
    fn check_config_dir(&self, container: &Container<'_>) -> Output {
        let dir = container.flag("-c").expect("gantry -c DIR");
        let map = container
            .config_map_at(dir)
            .unwrap_or_else(|| panic!("{}: no ConfigMap is mounted at {dir}", container.name()));
        let files = Dir::new();
        let data = self.config_map(&map)["data"].as_mapping().expect("data");
        assert!(
            data.keys()
                .any(|k| k.as_str().is_some_and(|k| k.ends_with(".hcl"))),
            "ConfigMap {map} holds no *.hcl file"
        );
        for (k, v) in data {
            files.write(k.as_str().expect("key"), v.as_str().expect("text"));
        }
        let mut cmd = gantry(&["check", "-c", files.path().to_str().expect("utf-8")]);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.envs(container.env());
        if container.spec["workingDir"].as_str() == Some(dir) {
            cmd.current_dir(files.path());
        }
        run(cmd)
    }
}

#[test]
fn the_init_container_example_waits_with_urls_gantry_accepts_and_renders_a_valid_config() {
    let m = Manifest::load("wait-init.yaml");
    let wait = m.gantry("wait");
    assert!(
        wait.pod["initContainers"]
            .as_sequence()
            .expect("initContainers")
            .iter()
            .any(|c| std::ptr::eq(c, wait.spec)),
        "gantry wait runs as an init container"
    );
    let urls: Vec<String> = wait.gantry_args().expect("gantry")[1..]
        .iter()
        .filter(|a| a.contains("://"))
        .map(|a| wait.expand(a))
        .collect();
    assert!(urls.len() >= 2, "{urls:?}");
    // The hosts do not exist here: a usable URL makes `wait` give up at the deadline (75), a URL
    // gantry cannot use is a usage error (2) at once.
    let mut args = vec!["wait", "--timeout", "200ms", "--attempt-timeout", "100ms"];
    args.extend(urls.iter().map(String::as_str));
    let out = run(gantry(&args));
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        !out.stderr.contains("placeholder-db_password"),
        "{}",
        out.stderr
    );

    let render = m.gantry("renderfiles");
    let out = m.check_config_dir(&render);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // What it renders lands in a volume the app container mounts.
    let rendered = render.spec["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|v| v["readOnly"].as_bool() != Some(true))
        .and_then(|v| v["name"].as_str())
        .expect("a writable volume");
    let app = m
        .containers()
        .into_iter()
        .find(|c| c.gantry_args().is_none())
        .expect("the app container");
    assert!(app.spec["volumeMounts"]
        .as_sequence()
        .expect("app mounts")
        .iter()
        .any(|v| v["name"].as_str() == Some(rendered)));
}

#[test]
fn the_sidecar_example_shares_the_pid_namespace_and_watches_the_apps_config() {
    let m = Manifest::load("sidecar.yaml");
    let sidecar = m.gantry("sidecar");
    assert_eq!(sidecar.pod["shareProcessNamespace"].as_bool(), Some(true));
    let watched = sidecar.flag("--config-dir").expect("--config-dir");
    let map = sidecar
        .config_map_at(watched)
        .expect("a ConfigMap at --config-dir");
    let name = sidecar.flag("--process-name").expect("--process-name");
    let app = m
        .containers()
        .into_iter()
        .find(|c| c.gantry_args().is_none())
        .expect("the app container");
    assert_eq!(
        Path::new(&app.command[0])
            .file_name()
            .and_then(|n| n.to_str()),
        Some(name),
        "the sidecar signals the app's process by name"
    );
    assert!(
        app.spec["volumeMounts"]
            .as_sequence()
            .expect("app mounts")
            .iter()
            .any(
                |v| app.config_map_at(v["mountPath"].as_str().unwrap_or_default())
                    == Some(map.clone())
            ),
        "the app reads the ConfigMap the sidecar watches"
    );
    m.config_map(&map);
    // gantry accepts the sidecar's command line (a wrong flag or signal is a usage error, 2): run
    // it against an empty directory and a process name nothing has, under the kill guard.
    let dir = Dir::new();
    let mut args: Vec<String> = sidecar.gantry_args().expect("gantry").to_vec();
    let at = args.iter().position(|a| a == "--config-dir").expect("flag") + 1;
    args[at] = dir.path().to_str().expect("utf-8").to_string();
    let mut child = spawn(gantry(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    // Once it has looked for the process, it handles SIGTERM (exit 0). (If gantry exited instead,
    // its stderr ends and the loop with it.)
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("not running yet") || line.contains(" found") {
            break;
        }
    }
    assert!(
        seen.contains("not running yet") || seen.contains(" found"),
        "{seen}"
    );
    kill(child.id(), 15);
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    let out = finish(child);
    let _ = drain.join();
    assert_eq!(out.code, Some(0), "{seen}");
}

#[test]
fn the_up_example_probes_gantrys_health_endpoints_and_its_config_passes_check() {
    let m = Manifest::load("up-probes.yaml");
    let up = m.gantry("up");
    let port: u64 = up.flag("-p").expect("-p PORT").parse().expect("a port");
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &up.spec[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(
            get["port"].as_u64(),
            Some(port),
            "{probe} on gantry's -p port"
        );
    }
    let out = m.check_config_dir(&up);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("postgres"), "{}", out.stdout);
}

#[test]
fn every_kubernetes_example_is_checked_here() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples/kubernetes"))
        .expect("examples/kubernetes")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(names, ["sidecar.yaml", "up-probes.yaml", "wait-init.yaml"]);
}

// ---- completions, man page, version ---------------------------------------------------------------

const SUBCOMMANDS: &[&str] = &[
    "up",
    "check",
    "renderfiles",
    "wait",
    "version",
    "sidecar",
    "ctl",
    "completions",
    "man",
];

fn stdout_of(args: &[&str]) -> String {
    let out = run(gantry(args));
    assert_eq!(out.code, Some(0), "gantry {args:?}: {}", out.stderr);
    assert!(
        !out.stdout.trim().is_empty(),
        "gantry {args:?} printed nothing"
    );
    out.stdout
}

#[test]
fn completions_generate_for_each_shell_and_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        // `ctl`'s own commands (parsed apart from the rest) are completed too.
        assert!(
            script.contains("restart") && script.contains("probes"),
            "{shell}: ctl's commands"
        );
        assert!(script.contains("log-format"), "{shell}: global options");
    }
    // bash can check the syntax of what it would source.
    let file = Dir::new();
    file.write("gantry.bash", &stdout_of(&["completions", "bash"]));
    let mut bash = std::process::Command::new("bash");
    bash.args([
        "-n",
        file.path().join("gantry.bash").to_str().expect("utf-8"),
    ]);
    let out = run(bash);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let out = run(gantry(&["completions", "tcsh"]));
    assert_eq!(out.code, Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_man_page_generates_and_names_every_subcommand() {
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH gantry 1"),
        "{page}"
    );
    assert!(page.contains(".TH gantry 1"));
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "{sub} missing from the man page");
    }
    // Each subcommand has its page, which the main page refers to.
    assert!(
        page.contains("gantry\\-up(1)"),
        "the page refers to gantry-up(1)"
    );
    let up = stdout_of(&["man", "up"]);
    assert!(up.contains(".TH gantry-up 1"), "{up}");
    assert!(up.contains("config\\-dir"), "{up}");
    let out = run(gantry(&["man", "no-such-command"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    // groff renders it without a warning, where groff is installed.
    if std::process::Command::new("groff")
        .arg("-v")
        .output()
        .is_ok()
    {
        let file = Dir::new();
        file.write("gantry.1", &page);
        let mut groff = std::process::Command::new("groff");
        groff.args(["-man", "-Tutf8", "-ww", "-z"]);
        groff.arg(file.path().join("gantry.1"));
        let out = run(groff);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.stderr.is_empty(), "groff: {}", out.stderr);
    }
}

#[test]
fn version_prints_the_commit_and_the_probe_drivers() {
    let text = stdout_of(&["version"]);
    assert!(
        text.starts_with(&format!("gantry {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line: {text}"));
    // Built from a git checkout, it is HEAD's commit (or an ancestor, for a binary built earlier).
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let (Some(_), None) = (&head, std::env::var_os("GANTRY_TEST_BIN")) {
        assert!(
            commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        );
        let known = std::process::Command::new("git")
            .args([
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "merge-base",
                "--is-ancestor",
                commit,
                "HEAD",
            ])
            .status()
            .expect("git");
        assert!(
            known.success(),
            "{commit} is not HEAD or one of its ancestors"
        );
    }
    let drivers = text
        .lines()
        .find_map(|l| l.strip_prefix("probe drivers: "))
        .unwrap_or_else(|| panic!("no probe drivers line: {text}"));
    // This test build has the default features: every driver.
    if std::env::var_os("GANTRY_TEST_BIN").is_none() {
        assert_eq!(drivers, "http mysql postgres redis amqp mongodb smtp");
    }
}

// ---- slim builds ---------------------------------------------------------------------------------

/// A URL per probe driver that a cargo feature can leave out, with a password where there can be one.
const DRIVER_URLS: &[(&str, &str)] = &[
    ("http", "http://127.0.0.1:1/health"),
    ("mysql", "mysql://app:s3cret-pw@127.0.0.1/app"),
    ("postgres", "postgres://app:s3cret-pw@127.0.0.1/app"),
    ("redis", "redis://:s3cret-pw@127.0.0.1/0"),
    ("amqp", "amqp://app:s3cret-pw@127.0.0.1/%2f"),
    ("mongodb", "mongodb://app:s3cret-pw@127.0.0.1/app"),
    ("smtp", "smtp://127.0.0.1"),
];

/// Runs against a build that leaves drivers out (`GANTRY_TEST_BIN=<slim build> cargo test --test
/// packaging`); the default build has every driver, and the test checks that `version` says so.
#[test]
fn a_probe_kind_left_out_of_the_build_is_refused_where_it_is_written() {
    let version = stdout_of(&["version"]);
    let left_out: Vec<&str> = version
        .lines()
        .find_map(|l| l.strip_prefix("left out: "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    if std::env::var_os("GANTRY_TEST_BIN").is_none() {
        assert!(
            left_out.is_empty(),
            "the default build has every driver: {version}"
        );
    }
    for (kind, url) in DRIVER_URLS.iter().filter(|(k, _)| left_out.contains(k)) {
        let feature = format!("cargo feature \"{kind}\"");
        let out = run(gantry(&["wait", "--timeout", "1s", url]));
        assert_eq!(out.code, Some(2), "wait {url}: {}", out.stderr);
        assert!(out.stderr.contains(&feature), "{}", out.stderr);
        assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);

        let dir = Dir::new();
        dir.write(
            "probes.hcl",
            &format!("probe \"dep\" {{\n  wait = true\n  url = \"{url}\"\n}}\n"),
        );
        let out = run(gantry(&["check", "-c", dir.str()]));
        assert_eq!(out.code, Some(78), "check {url}: {}", out.stderr);
        assert!(out.stderr.contains("probes.hcl:1"), "{}", out.stderr);
        assert!(out.stderr.contains(&feature), "{}", out.stderr);
        assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);
    }
}

/// Against the static build (`.ci/run` sets `GANTRY_TEST_BIN` to it): no dynamic dependency at all.
#[test]
fn the_static_build_is_not_a_dynamic_executable() {
    let Some(bin) = std::env::var_os("GANTRY_TEST_BIN") else {
        return;
    };
    let version = stdout_of(&["version"]);
    if !version.contains("libc: musl") {
        return;
    }
    let out = run({
        let mut c = std::process::Command::new("ldd");
        c.arg(&bin);
        c
    });
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("not a dynamic executable"), "ldd: {said}");
}
