//! terraform-provider-coiled: Coiled's Dask clusters and their firewalls as Terraform resources.
//!
//! Layers, each ignorant of the ones above it:
//! - `tfplugin` (crates/tfplugin): Terraform's plugin protocol (never says "Coiled");
//! - `coiled_firewall` (crates/coiled-firewall): ingress rules as pure functions;
//! - [`api`]: the Coiled control-plane client (HTTP and WebSocket, no Terraform);
//! - [`provider`]: the Coiled provider, its resources and data sources.
//!
//! The local control plane (`coiled-local`) and the documentation generator (`docgen`) are packages
//! of their own in `crates/`.

pub mod api;
pub mod provider;
