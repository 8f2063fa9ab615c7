//! terraform-provider-coiled: Coiled's Dask clusters and their firewalls as Terraform resources.
//!
//! Layers, each ignorant of the ones above it:
//! - `tfplugin` (crates/tfplugin): Terraform's plugin protocol (never says "Coiled");
//! - `coiled_firewall` (crates/coiled-firewall): ingress rules as pure functions;
//! - [`api`]: the Coiled control-plane client (HTTP and WebSocket, no Terraform);
//! - [`provider`]: the Coiled provider, its resources and data sources.
//!
//! The local control plane (`coiled-local`) and the documentation generator (`docgen`) are packages of
//! their own in `crates/`.

pub mod api;
pub mod provider;

/// The provider's many small, short-lived values (decoded states, models, requests) are allocated and
/// freed on every call: mimalloc does that in about two thirds of the time the system allocator takes
/// (docs/benchmarks.md). Set here, it serves the plugin binary and the benchmarks of its handlers alike.
#[cfg(not(windows))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
