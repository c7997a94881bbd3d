//! Arbitrary bytes through the whole parser stack (parse, typed
//! instructions, dump, print, re-parse, word lexing): nothing may panic.
//!
//!     cargo +nightly fuzz run parse -- -max_total_time=60
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kiln_parser::fuzz_one(data);
});
