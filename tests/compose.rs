//! The example stack in `docker-compose.yml`. No container engine runs here, so this checks what can
//! be checked without one: the file parses, the app uses gantry as its ENTRYPOINT, and the
//! configuration directory it mounts passes `gantry check` with the environment compose gives it.

mod support;

use std::path::Path;

use serde_norway::Value;
use support::*;

#[test]
fn the_compose_example_parses_and_its_config_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml");
    let doc: Value = serde_norway::from_str(&text).expect("valid YAML");
    let services = doc["services"].as_mapping().expect("services");
    let app = &doc["services"]["app"];

    let entrypoint: Vec<&str> = app["entrypoint"]
        .as_sequence()
        .expect("entrypoint")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        entrypoint[0].ends_with("/gantry") && entrypoint[1] == "up",
        "{entrypoint:?}"
    );
    for dep in app["depends_on"].as_sequence().expect("depends_on") {
        let dep = dep.as_str().expect("service name");
        assert!(
            services.contains_key(dep),
            "depends_on names an undefined service {dep}"
        );
    }

    // The config directory the app mounts at /etc/gantry.d.
    let mount = app["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .find(|v| v.ends_with(":/etc/gantry.d:ro"))
        .expect("a volume mounted at /etc/gantry.d");
    let config_dir = root.join(mount.split(':').next().expect("host path"));
    assert!(config_dir.is_dir(), "{}", config_dir.display());

    let mut cmd = gantry(&["check", "-c", config_dir.to_str().expect("utf-8")]);
    cmd.current_dir(&config_dir); // compose's working_dir: template paths are relative to it
    for (k, v) in app["environment"].as_mapping().expect("environment") {
        cmd.env(k.as_str().expect("name"), v.as_str().expect("value"));
    }
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for probe in ["mysql", "redis", "amqp", "mongodb", "smtp"] {
        assert!(
            out.stdout.contains(probe),
            "{probe} missing from the plan:\n{}",
            out.stdout
        );
    }
    // Passwords from the environment never show in the plan.
    for secret in ["app-secret", "cache-secret", "queue-secret"] {
        assert!(
            !out.stdout.contains(secret),
            "{secret} leaked:\n{}",
            out.stdout
        );
    }
}
