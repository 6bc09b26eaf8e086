//! Arbitrary bytes as a sweep file: parsing and validation must return Ok or ConfigErrors — never
//! panic, hang, or produce an error without a message. Errors that carry a position must point inside
//! the text, and come in file order.
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
        Err(all) => {
            for e in all.iter() {
                assert!(!e.message.is_empty());
                if let Some((line, col)) = e.at {
                    assert!(line >= 1 && col >= 1 && line <= text.lines().count().max(1) + 1, "{e}");
                }
            }
            let places: Vec<_> = all.iter().map(|e| e.at.unwrap_or((0, 0))).collect();
            assert!(places.windows(2).all(|w| w[0] <= w[1]), "{all}");
        }
    }
});
