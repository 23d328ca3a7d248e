//! The config layers through the real binary: a setting in the config file is replaced by the
//! environment (`STEPSTONE__SECTION__KEY`, an `_` in the key standing for its `-`), which is
//! replaced by the flag, in every combination of the three, seen in the journeys' paths
//! (`[journeys] path-length`) and in where the snapshot is written (`[output] dir`); the built-in
//! default applies when no layer sets the key; and an unknown key in the environment is an error
//! that names it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{read_table, string_lists};

/// The contact points of the one customer's events, in time order.
const POINTS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// A directory with the events (`events.jsonl`) and a config file (`stepstone.toml`) that reads
/// them, sets `path-length = 2` and writes to `file-out` beside it.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let events: String = POINTS
        .iter()
        .enumerate()
        .map(|(i, point)| format!("{{\"customer\":\"u\",\"time\":{},\"contact_point\":\"{point}\"}}\n", i * 60_000))
        .collect();
    std::fs::write(dir.path().join("events.jsonl"), events).expect("writing the events");
    let config = "[input]\npaths = [\"events.jsonl\"]\n[journeys]\npath-length = 2\n[output]\ndir = \"file-out\"\n";
    std::fs::write(dir.path().join("stepstone.toml"), config).expect("writing the config");
    dir
}

/// Runs `stepstone run -q` in `dir` with `args` and the environment variables `env` (and no
/// other `STEPSTONE*` variable of the test's own environment).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stepstone"));
    command.args(["run", "-q"]).args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STEPSTONE") {
            command.env_remove(key);
        }
    }
    command.env("STEPSTONE_LOG", "warn").envs(env.iter().copied());
    command.output().expect("running stepstone")
}

/// [`run`], which must succeed.
fn run_ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let output = run(dir, args, env);
    assert!(
        output.status.success(),
        "stepstone run {args:?} with {env:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The path of the one journey in the snapshot in `out`.
fn path_in(out: &Path) -> Vec<String> {
    let paths = string_lists(&read_table(out, "journeys"), "path");
    assert_eq!(paths.len(), 1, "one journey in {}", out.display());
    paths.into_iter().next().unwrap()
}

/// The last `n` contact points.
fn last(n: usize) -> Vec<String> {
    POINTS[POINTS.len() - n..].iter().map(|p| p.to_string()).collect()
}

#[test]
fn the_file_is_replaced_by_the_environment_and_both_by_the_flags() {
    let dir = setup();
    let root = dir.path();
    let config = root.join("stepstone.toml");
    let config = config.to_str().unwrap();
    let file_out = root.join("file-out");
    let env_length = ("STEPSTONE__JOURNEYS__PATH_LENGTH", "3");
    // (file, environment, flag): the path length that wins.
    let cases: [(bool, bool, bool, usize); 8] = [
        (false, false, false, 5), // the built-in default
        (true, false, false, 2),
        (false, true, false, 3),
        (true, true, false, 3),
        (false, false, true, 4),
        (true, false, true, 4),
        (false, true, true, 4),
        (true, true, true, 4),
    ];
    for (i, (file, env, flag, length)) in cases.into_iter().enumerate() {
        let out = root.join(format!("out-{i}"));
        let mut args: Vec<&str> = Vec::new();
        if file {
            args.extend(["--config", config]);
        } else {
            args.extend(["--input", "events.jsonl"]);
        }
        if flag {
            args.extend(["--path-length", "4"]);
        }
        args.extend(["--out", out.to_str().unwrap()]);
        let vars: &[(&str, &str)] = if env { &[env_length] } else { &[] };
        run_ok(root, &args, vars);
        assert_eq!(path_in(&out), last(length), "file {file}, environment {env}, flag {flag}");
        assert!(!file_out.exists(), "--out replaces the file's output directory");
    }
}

#[test]
fn the_output_directory_follows_the_same_order() {
    let dir = setup();
    let root = dir.path();
    let config = root.join("stepstone.toml");
    let config = config.to_str().unwrap();
    let env_out = root.join("env-out");
    let flag_out = root.join("flag-out");
    let env = [("STEPSTONE__OUTPUT__DIR", env_out.to_str().unwrap())];
    let outputs = || -> Vec<bool> {
        ["file-out", "env-out", "flag-out"].iter().map(|d| root.join(d).join("journeys.arrow").exists()).collect()
    };
    let clear = || {
        for d in ["file-out", "env-out", "flag-out"] {
            let _ = std::fs::remove_dir_all(root.join(d));
        }
    };

    // The file alone: its directory, relative to the file.
    run_ok(root, &["--config", config], &[]);
    assert_eq!(outputs(), [true, false, false], "the file's output directory");
    assert_eq!(path_in(&root.join("file-out")), last(2));
    clear();
    // The environment over the file.
    run_ok(root, &["--config", config], &env);
    assert_eq!(outputs(), [false, true, false], "the environment's output directory");
    assert_eq!(path_in(&env_out), last(2));
    clear();
    // The flag over both.
    let flagged: [&str; 4] = ["--config", config, "--out", flag_out.to_str().unwrap()];
    run_ok(root, &flagged, &env);
    assert_eq!(outputs(), [false, false, true], "the flag's output directory");
    assert_eq!(path_in(&flag_out), last(2));
    clear();
    // The flag over the file alone.
    run_ok(root, &flagged, &[]);
    assert_eq!(outputs(), [false, false, true], "the flag's output directory, without the environment");
}

#[test]
fn an_unknown_key_in_the_environment_is_an_error_naming_it() {
    let dir = setup();
    let root = dir.path();
    let config: PathBuf = root.join("stepstone.toml");
    let output = run(root, &["--config", config.to_str().unwrap()], &[("STEPSTONE__RUN__WORKRES", "2")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an unknown key must fail the run:\n{stderr}");
    assert!(stderr.contains("workres"), "the error names the unknown key: {stderr}");
    assert!(stderr.contains("STEPSTONE__"), "the error names the layer, the environment: {stderr}");
    assert!(!root.join("file-out").join("journeys.arrow").exists(), "nothing is written: {stderr}");
    // The same key spelled right is taken.
    run_ok(root, &["--config", config.to_str().unwrap()], &[("STEPSTONE__RUN__WORKERS", "2")]);
    assert_eq!(path_in(&root.join("file-out")), last(2));
}
