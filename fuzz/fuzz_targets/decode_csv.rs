//! Any bytes as a CSV input (header first), read to the end: a header without the required
//! columns is an error, every row decodes or is rejected with a reason; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstone::source::{self, DecodeOptions, Format, RecordLimits};

fuzz_target!(|data: &[u8]| {
    let options =
        DecodeOptions { limits: RecordLimits { max_bytes: 4096, max_fields: 16 }, ..DecodeOptions::default() };
    let Ok(mut source) =
        source::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), Format::Csv, &options, "fuzz")
    else {
        return;
    };
    while let Some(item) = source.next_with(|record| Ok(record.to_record())) {
        if let Err(rejection) = item {
            assert!(!rejection.reason.is_empty());
        }
    }
});
