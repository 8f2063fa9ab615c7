//! terraform-provider-coiled: Coiled's Dask clusters and their firewalls as Terraform resources, and a
//! local Coiled control plane (`coiled-local`) that speaks the same API.
//!
//! Layers, each ignorant of the ones above it:
//! - [`plugin`]: Terraform's plugin protocol (never says "Coiled");
//! - [`firewall`]: ingress rules as pure functions;
//! - [`api`]: the Coiled control-plane client (HTTP and WebSocket, no Terraform);
//! - [`provider`]: the Coiled provider, its resources and data sources;
//! - [`local`]: the local control plane.

pub mod api;
pub mod docs;
pub mod firewall;
#[doc(hidden)]
pub mod fuzzing;
pub mod local;
pub mod plugin;
pub mod provider;
