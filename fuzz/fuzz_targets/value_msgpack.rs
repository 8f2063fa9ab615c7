//! Fuzz target: see `coiled_fuzz_harness::msgpack_round_trip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coiled_fuzz_harness::msgpack_round_trip(data));
