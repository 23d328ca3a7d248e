//! Any text as a pipeline config file: it parses and checks into a pipeline, or fails with an
//! error; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstone::config::{Layers, Pipeline};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(table) = toml::from_str::<toml::Table>(text) else { return };
    let Ok(settings) = Layers::defaults().merge("the fuzz input", &table).settings() else { return };
    let _ = Pipeline::serving(settings);
});
