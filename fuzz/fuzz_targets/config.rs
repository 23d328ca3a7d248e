//! Any text as a pipeline config file: it parses and checks into a pipeline, or fails with an
//! error; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstone::config::{ConfigFile, Pipeline};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = toml::from_str::<ConfigFile>(text) else { return };
    let _ = Pipeline::serving(config);
});
