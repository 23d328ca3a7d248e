//! The config layers and checks: defaults, the documented reference, file and flag layers, and
//! errors that name the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stepstone_dataflows::event::{Params, SessionRule};

use super::*;
use crate::journal::Fsync;
use crate::source::lateness::EventTime;
use crate::source::{Field, RecordLimits};

/// The pipeline of a config file holding `text`, merged over the defaults.
fn pipeline(text: &str) -> Result<Pipeline, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    Pipeline::running(Layers::defaults().file(&path)?.settings()?)
}

/// The settings of the TOML `text` alone (no defaults): what a documented block says.
fn settings_of(text: &str) -> Settings {
    let table: toml::Table = toml::from_str(text).expect("the block is TOML");
    Layers::empty().merge("the block", &table).settings().expect("the block is complete and valid")
}

#[test]
fn session_gaps() {
    assert_eq!(parse_session_gap("30m").unwrap(), SessionRule::Gap(1_800_000));
    assert_eq!(parse_session_gap("1h 30m").unwrap(), SessionRule::Gap(5_400_000));
    assert_eq!(parse_session_gap("None").unwrap(), SessionRule::Never);
    assert!(parse_session_gap("soon").is_err());
}

#[test]
fn the_defaults_are_those_of_the_engine_and_the_sources() {
    let defaults = Layers::defaults().settings().unwrap();
    let p = Pipeline::serving(defaults.clone()).unwrap();
    assert_eq!(p.params, Params::default());
    assert_eq!(p.decode.limits, RecordLimits::default());
    assert_eq!(p.event_time, EventTime::default());
    assert_eq!(p.workers, 1);
    assert_eq!(p.out_dir, PathBuf::from("out"));
    assert_eq!(p.rejected, PathBuf::from("out/rejected.jsonl"));
    assert_eq!(p.events_per_time, usize::MAX, "without a snapshot interval the input is one logical time");
    assert_eq!(p.server.listen, "127.0.0.1:8080");
    assert_eq!(p.server.flight_listen, "127.0.0.1:8815");
    let log = p.log.unwrap();
    assert_eq!((log.dir, log.fsync), (PathBuf::from("out/log"), Fsync::Batch));
    assert_eq!((log.segment_bytes, log.checkpoint_bytes), (64 << 20, 256 << 20));
    assert_eq!(defaults.server.epoch_interval, Duration::from_millis(5));
    assert_eq!(defaults.server.max_body_bytes.as_u64(), 16 << 20);
    assert!(matches!(Pipeline::running(defaults), Err(ConfigError::NoInput)));
}

#[test]
fn the_documented_config_block_is_the_defaults() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md")).unwrap();
    let start = doc.find("```toml\n").expect("docs/config.md has a toml block") + "```toml\n".len();
    let block = &doc[start..start + doc[start..].find("```").expect("the block ends")];
    assert_eq!(settings_of(block), settings_of(DEFAULTS), "docs/config.md's first block is not defaults.toml");
}

#[test]
fn the_optional_keys_shown_commented_out_are_valid() {
    let uncommented: String = DEFAULTS
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(key, _)| !key.contains(' ')) =>
            {
                rest
            }
            _ => line,
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    let settings = settings_of(&uncommented);
    assert_eq!(settings.input.format, Some(crate::source::Format::Jsonl));
    assert_eq!(settings.input.journey_key.as_deref(), Some("intent"));
    assert_eq!(settings.output.snapshot_interval, Some(Duration::from_secs(10)));
    assert_eq!(settings.server.token.as_deref(), Some("change-me"));
    assert_eq!(settings.segments.len(), 1);
    let p = Pipeline::serving(settings).unwrap();
    assert!(p.decode.conversion.is_some());
    assert_eq!(p.deltas, Some(PathBuf::from("out/deltas.jsonl")));
}

#[test]
fn byte_sizes_are_numbers_or_text() {
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\n[limits]\nmax-record-bytes = 4096").unwrap();
    assert_eq!(p.decode.limits.max_bytes, 4096);
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\n[limits]\nmax-record-bytes = \"2 KiB\"").unwrap();
    assert_eq!(p.decode.limits.max_bytes, 2048);
    let err = pipeline("[input]\npaths = [\"a.jsonl\"]\n[limits]\nmax-record-bytes = 0").unwrap_err();
    assert_eq!(err.to_string(), "limits max-record-bytes must be at least 1");
}

#[test]
fn defaults_and_mapping() {
    let p = pipeline(
        r#"
        [input]
        paths = ["events.csv"]
        map = { customer = "case:concept:name", "contact_point" = "concept name" }
        "#,
    )
    .unwrap();
    assert_eq!(p.params, Params::default());
    assert_eq!(p.decode.mapping.column(Field::Customer), Some("case:concept:name"));
    assert_eq!(p.decode.mapping.column(Field::ContactPoint), Some("concept name"));
    assert!(p.rejected.ends_with("out/rejected.jsonl"), "{}", p.rejected.display());
    assert!(p.inputs[0].ends_with("/events.csv"), "relative to the file: {}", p.inputs[0]);
    assert_eq!(p.workers, 1);
}

#[test]
fn a_mapped_session_column_decides_sessions_unless_a_gap_is_given() {
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { session = \"sid\" }").unwrap();
    assert_eq!(p.params.session, SessionRule::ById);
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { session = \"sid\" }\n[journeys]\nsession-gap = \"none\"")
        .unwrap();
    assert_eq!(p.params.session, SessionRule::Never);
}

#[test]
fn a_snapshot_interval_cuts_logical_times_of_epoch_events() {
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\n[output]\nsnapshot-interval = \"1s\"").unwrap();
    assert_eq!(p.events_per_time, 1_000_000);
    let p = pipeline("[input]\npaths = [\"a.jsonl\"]\n[run]\nepoch-events = 10").unwrap();
    assert_eq!(p.events_per_time, 10);
}

#[test]
fn errors_name_what_is_wrong() {
    let err = pipeline("[input]\npaths = [\"a.jsonl\"]\n[[segments]]\nname = \"x\"\nrule = \"events >=\"").unwrap_err();
    assert!(format!("{:#}", anyhow::Error::from(err)).contains("segment \"x\""));
    let err = pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { user = \"u\" }").unwrap_err();
    assert!(format!("{:#}", anyhow::Error::from(err)).contains("unknown field \"user\""));
    let err = pipeline("[input]\npath = \"a\"").unwrap_err().to_string();
    assert!(err.contains("unknown field") && err.contains("path") && err.contains("pipeline.toml"), "{err}");
    let err = pipeline("[journeys]\npath-length = \"long\"").unwrap_err().to_string();
    assert!(err.contains("path-length") && err.contains("journeys"), "{err}");
    let err = pipeline("[journeys]\nsesion-gap = \"1h\"").unwrap_err().to_string();
    assert!(err.contains("sesion-gap"), "{err}");
    assert!(pipeline("").unwrap_err().to_string().contains("no input"));
    let err = pipeline("[input]\npaths = [\"a.jsonl\"]\n[limits]\nmax-segments = 1\n[[segments]]\nname = \"a\"\nrule = \"events >= 1\"\n[[segments]]\nname = \"b\"\nrule = \"events >= 2\"").unwrap_err();
    assert_eq!(err.to_string(), "2 segments are defined, more than max-segments (1) under [limits]");
}

#[test]
fn later_layers_win_and_flag_lists_add_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.toml");
    let file = "[input]\npaths = [\"a.jsonl\"]\npersonal = [\"email\"]\n[journeys]\nsession-gap = \"10m\"\npath-length = 3\n\
                [[segments]]\nname = \"a\"\nrule = \"events >= 1\"";
    std::fs::write(&path, file).unwrap();
    let flags: toml::Table =
        toml::from_str("[journeys]\nsession-gap = \"none\"\n[output]\ndir = \"elsewhere\"").unwrap();
    let added: toml::Table =
        toml::from_str("input = { personal = [\"phone\"] }\n[[segments]]\nname = \"b\"\nrule = \"events >= 2\"")
            .unwrap();
    let layers = Layers::defaults().file(&path).unwrap().merge("the flags", &flags).extend("the flags", &added);
    let settings = layers.settings().unwrap();
    assert_eq!(settings.input.personal, ["email", "phone"]);
    assert_eq!(settings.segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let p = Pipeline::running(settings).unwrap();
    assert_eq!(p.params, Params { session: SessionRule::Never, path_len: 3 });
    assert_eq!(p.out_dir, PathBuf::from("elsewhere"));
}
