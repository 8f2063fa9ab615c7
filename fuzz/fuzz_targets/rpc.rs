//! Fuzz target: see `terraform_provider_coiled::fuzzing::rpc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| terraform_provider_coiled::fuzzing::rpc(data));
