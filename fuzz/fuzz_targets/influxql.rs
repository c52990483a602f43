//! Any text: the InfluxQL parser never panics, and every statement it accepts prints as text
//! that it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(statements) = influxql::parse_query(text) {
        for s in statements {
            let printed = s.to_string();
            assert!(influxql::parse_query(&printed).is_ok(), "{text:?} parsed, but its print {printed:?} does not");
        }
    }
});
