//! Fuzz target: see `terraform_provider_coiled::fuzzing::json_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| terraform_provider_coiled::fuzzing::json_decode(data));
