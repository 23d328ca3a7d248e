//! The layers a pipeline's [`Settings`] are merged from, each over the ones before: the built-in
//! defaults ([`DEFAULTS`], `defaults.toml`), a config file, the environment
//! (`STEPSTONE__SECTION__KEY`), and the command-line flags. Merging is generic ([`figment`]): a
//! key set in a later layer replaces it, tables merge key by key, and a layer added with
//! [`Layers::extend`] appends to lists instead (segments and personal columns given as flags
//! add to the file's). Every error names the key and the layer it came from.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use stepstone_dataflows::event::SessionRule;

use super::ConfigError;
use super::settings::Settings;
use crate::source::Field;

/// Every setting at its default value: the config reference of `docs/config.md`.
pub const DEFAULTS: &str = include_str!("defaults.toml");

/// The name of the defaults layer in errors.
const DEFAULTS_NAME: &str = "the built-in defaults";

/// The prefix of the environment variables that set a key: `STEPSTONE__SERVER__LISTEN` sets
/// `listen` under `[server]`; an `_` in a key stands for its `-` (`STEPSTONE__JOURNEYS__SESSION_GAP`).
pub const ENV_PREFIX: &str = "STEPSTONE__";

/// The layers merged so far.
pub struct Layers(Figment);

impl Layers {
    /// The built-in defaults alone.
    pub fn defaults() -> Layers {
        let table: toml::Table = toml::from_str(DEFAULTS).expect("the built-in defaults are valid TOML");
        Layers(Figment::from(Layer::of(Metadata::named(DEFAULTS_NAME), &table)))
    }

    /// No layer at all: what a test merges a complete set of sections into.
    #[cfg(test)]
    pub(super) fn empty() -> Layers {
        Layers(Figment::new())
    }

    /// Adds the config file at `path`. Its relative input paths and output directory are
    /// resolved against the file's directory, and without an output directory it writes to
    /// `out` beside the file.
    pub fn file(self, path: &Path) -> Result<Layers, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|source| ConfigError::Syntax { path: path.to_owned(), source })?;
        resolve_paths(&mut table, path.parent().unwrap_or(Path::new("")));
        let layer = Layer::of(Metadata::from("config file", figment::Source::File(path.to_owned())), &table);
        Ok(Layers(self.0.merge(layer)))
    }

    /// Adds the environment variables named [`ENV_PREFIX`]`SECTION__KEY`.
    pub fn env(self) -> Layers {
        let env = Env::prefixed(ENV_PREFIX).map(|key| key.as_str().replace("__", ".").replace('_', "-").into());
        Layers(self.0.merge(env))
    }

    /// Adds `settings` (a value that serializes as sections of keys, such as the flags given;
    /// an absent `Option` sets nothing), named `name` in errors: each key it sets replaces the
    /// layers' before.
    pub fn merge(self, name: &'static str, settings: &impl Serialize) -> Layers {
        Layers(self.0.merge(Layer::of(Metadata::named(name), &table_of(settings))))
    }

    /// Adds `settings` as [`Layers::merge`] does, except that its lists are appended to the
    /// layers' before.
    pub fn extend(self, name: &'static str, settings: &impl Serialize) -> Layers {
        Layers(self.0.admerge(Layer::of(Metadata::named(name), &table_of(settings))))
    }

    /// The merged settings. Two defaults depend on other keys, when no layer but the defaults
    /// sets them: with a `session` column mapped, the session ids decide the sessions instead of
    /// `session-gap`; and without a `snapshot-interval`, the whole input is one logical time
    /// instead of `epoch-events` each.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut settings: Settings = self.0.extract().map_err(|error| ConfigError::Settings(Box::new(error)))?;
        if settings.input.map.contains_key(Field::Session.name()) && self.defaulted("journeys.session-gap") {
            settings.journeys.session_gap = SessionRule::ById;
        }
        if settings.output.snapshot_interval.is_none() && self.defaulted("run.epoch-events") {
            settings.run.epoch_events = usize::MAX;
        }
        Ok(settings)
    }

    /// Whether the value of `key` comes from the built-in defaults.
    fn defaulted(&self, key: &str) -> bool {
        self.0.find_metadata(key).is_some_and(|metadata| metadata.name == DEFAULTS_NAME)
    }
}

/// A layer of TOML data with a name for the errors that point into it.
struct Layer {
    metadata: Metadata,
    data: Dict,
}

impl Layer {
    /// The layer of `table`.
    fn of(metadata: Metadata, table: &toml::Table) -> Layer {
        let data = Serialized::defaults(table)
            .data()
            .ok()
            .and_then(|mut profiles| profiles.remove(&Profile::Default))
            .unwrap_or_default();
        Layer { metadata, data }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// The TOML table `settings` serializes as (absent `Option`s set no key).
fn table_of(settings: &impl Serialize) -> toml::Table {
    toml::Table::try_from(settings).expect("settings layers serialize as tables of sections")
}

/// Resolves the input paths and the output directory of a config file's `table` against the
/// file's directory `base`, the output directory defaulting to `out` there.
fn resolve_paths(table: &mut toml::Table, base: &Path) {
    let resolve = |path: &str| {
        let path = Path::new(path);
        let resolved =
            if path == Path::new("-") || path.is_absolute() { path.to_owned() } else { normalize(&base.join(path)) };
        toml::Value::String(resolved.to_string_lossy().into_owned())
    };
    if let Some(toml::Value::Table(input)) = table.get_mut("input")
        && let Some(toml::Value::Array(paths)) = input.get_mut("paths")
    {
        for path in paths.iter_mut() {
            if let toml::Value::String(text) = path {
                *path = resolve(text);
            }
        }
    }
    let output = table.entry("output").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(output) = output {
        let dir = match output.get("dir") {
            Some(toml::Value::String(dir)) => resolve(dir),
            Some(_) => return,
            None => resolve("out"),
        };
        output.insert("dir".to_owned(), dir);
    }
}

/// `path` with `.` components and `dir/..` pairs removed, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_are_normalized() {
        assert_eq!(normalize(Path::new("data/pipelines/../../out/demo")), PathBuf::from("out/demo"));
        assert_eq!(normalize(Path::new("../a/./b")), PathBuf::from("../a/b"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }
}
