//! Pipeline configuration: every setting in one place.
//!
//! A setting is a key of a section of [`Settings`] ([`settings`]), with its default in
//! `defaults.toml` ([`DEFAULTS`]). The [`Layers`] merge, each over the ones before, the defaults,
//! a config file, the environment (`STEPSTONE__SECTION__KEY`) and the command-line flags; the
//! merged settings are checked into a [`Pipeline`] ([`pipeline`]) that the sources, the engine and
//! the sinks take. Unknown keys are errors that name the key and where it was set.
//!
//! Paths in a config file are relative to the file's directory; paths given as flags or in the
//! environment are relative to the working directory.

mod layers;
mod pipeline;
mod settings;

use std::path::PathBuf;

use stepstone_dataflows::event::SessionRule;
use stepstone_dataflows::rules::RuleError;

use crate::source::SpecError;
pub use layers::{DEFAULTS, ENV_PREFIX, Layers};
pub use pipeline::Pipeline;
pub use settings::{
    InputSettings, JourneySettings, LimitSettings, LogSettings, OutputSettings, RunSettings, SegmentSettings,
    ServerSettings, Settings,
};

/// Why a pipeline's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("reading config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not TOML.
    #[error("parsing config file {}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: toml::de::Error,
    },
    /// A key is unknown, or its value is not of its type: the error names the key and the layer
    /// (file, environment, flags) that set it.
    #[error(transparent)]
    Settings(Box<figment::Error>),
    /// A value is out of its range.
    #[error("{section} {key} {reason}")]
    Invalid {
        /// The section of the key.
        section: &'static str,
        /// The key.
        key: &'static str,
        /// What is wrong with the value.
        reason: &'static str,
    },
    /// `stepstone run` was given no input.
    #[error("no input: give --input FILE (or `-` for stdin), or `paths` under [input] in the config file")]
    NoInput,
    /// An input path is not UTF-8.
    #[error("input path {} is not UTF-8", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// An entry of the column mapping is wrong.
    #[error("input map: {field} = {column:?}")]
    Map {
        /// The field mapped.
        field: String,
        /// The column it is mapped to.
        column: String,
        /// Why it is wrong.
        #[source]
        source: SpecError,
    },
    /// The conversion rule is wrong.
    #[error("conversion rule")]
    Conversion(#[from] SpecError),
    /// A column marked personal feeds a field the outputs show.
    #[error(
        "column {column:?} is marked personal but feeds the {field}, whose values the snapshots and deltas \
         show; map a pseudonymous column instead, or unmark it"
    )]
    PersonalShown {
        /// The column.
        column: String,
        /// The field it feeds.
        field: &'static str,
    },
    /// More segments than `max-segments`.
    #[error("{defined} segments are defined, more than max-segments ({max}) under [limits]")]
    TooManySegments {
        /// Segments defined.
        defined: usize,
        /// The limit.
        max: usize,
    },
    /// A segment without a name.
    #[error("a segment has an empty name")]
    UnnamedSegment,
    /// Two segments of one name.
    #[error("segment {name:?} is defined twice")]
    SegmentTwice {
        /// The name.
        name: String,
    },
    /// A segment's rule does not parse.
    #[error("segment {segment:?}: rule {rule:?}")]
    Rule {
        /// The segment.
        segment: String,
        /// Its rule.
        rule: String,
        /// Where and why it does not parse.
        #[source]
        source: RuleError,
    },
    /// A session gap that is neither a duration nor `none`.
    #[error("session gap {0:?}: expected a duration such as 30m or 1h, or none")]
    SessionGap(String),
}

impl ConfigError {
    /// The error of `key` under `section` whose value `reason`.
    fn invalid(section: &'static str, key: &'static str, reason: &'static str) -> ConfigError {
        ConfigError::Invalid { section, key, reason }
    }
}

/// Parses a session gap: a duration such as `30m` or `1h 30m`, or `none` for never splitting.
pub fn parse_session_gap(text: &str) -> Result<SessionRule, ConfigError> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(SessionRule::Never);
    }
    let gap = humantime::parse_duration(text.trim()).map_err(|_| ConfigError::SessionGap(text.to_owned()))?;
    let millis = i64::try_from(gap.as_millis()).map_err(|_| ConfigError::SessionGap(text.to_owned()))?;
    Ok(SessionRule::Gap(millis))
}

#[cfg(test)]
mod tests;
