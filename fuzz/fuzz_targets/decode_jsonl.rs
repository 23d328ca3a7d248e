//! Any bytes as a JSON Lines input, read to the end, and each line as an HTTP-ingested record:
//! every record decodes or is rejected with a reason; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstone::source::{self, DecodeOptions, Format, JsonRecordDecoder, Mapping, RecordLimits};

fuzz_target!(|data: &[u8]| {
    let options = DecodeOptions {
        mapping: Mapping::parse("device=device_id,previous_id=prev").expect("a valid mapping"),
        journey_key: Some("intent".to_owned()),
        limits: RecordLimits { max_bytes: 4096, max_fields: 16 },
        ..DecodeOptions::default()
    };
    let mut source =
        source::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), Format::Jsonl, &options, "fuzz")
            .expect("JSON Lines needs no header");
    while let Some(item) = source.next_with(|record| Ok(record.to_record())) {
        if let Err(rejection) = item {
            assert!(!rejection.reason.is_empty());
        }
    }
    let records = JsonRecordDecoder::new(&options, "fuzz");
    for (index, line) in String::from_utf8_lossy(data).lines().enumerate() {
        let _ = records.decode(line, index as u64 + 1, |record| Ok(record.to_record()));
    }
});
