//! Arbitrary bytes as a sweep file: parsing and validation must return Ok or a ConfigError — never
//! panic, hang, or produce an error without a message. Errors that carry a position must point inside
//! the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match kd_sweep::config::parse(text, Path::new("fuzz.toml")) {
        Ok(sweep) => {
            // a valid sweep always expands into a plan with a teacher per seed
            assert!(kd_sweep::config::check_name(&sweep.name).is_ok());
            let plan = kd_sweep::plan::build(&sweep, "fuzz");
            assert_eq!(plan.teachers().count(), sweep.seeds.len());
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            if let Some((line, col)) = e.at {
                assert!(line >= 1 && col >= 1 && line <= text.lines().count().max(1) + 1, "{e}");
            }
        }
    }
});
