//! Fuzz target: see `terraform_provider_coiled::fuzzing::ingress`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| terraform_provider_coiled::fuzzing::ingress(data));
