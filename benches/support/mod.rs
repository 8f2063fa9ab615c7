//! The end-to-end benchmark's parts: the CPU split by process, the provider's profile, Terraform's
//! profile, the requests and latency of operations, and the page written from the results.

pub mod cpu;
pub mod operations;
pub mod profile;
pub mod report;
pub mod tfprofile;
