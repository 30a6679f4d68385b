//! Any bytes into the GGUF parser: it must answer (a header, "need more", or a
//! reason it is invalid) without panicking, hanging or allocating wildly.
//! Run: `cargo fuzz run gguf_parse` (nightly, or RUSTC_BOOTSTRAP=1 on stable).

#![no_main]

use switchyard_engine::gguf::parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _complete_file = parse(data, Some(data.len() as u64));
    let _prefix_of_a_longer_file = parse(data, None);
    let _longer_than_it_is = parse(data, Some(data.len() as u64 * 2 + 1));
});
