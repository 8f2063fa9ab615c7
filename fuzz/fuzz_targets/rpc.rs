//! Fuzz target: see `coiled_fuzz_harness::rpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coiled_fuzz_harness::rpc(data));
