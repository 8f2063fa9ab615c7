//! End-to-end tests: the real `terraform` binaries drive the real provider binary (and, for resources,
//! the real `coiled-local` control plane). One test binary, one module per area.

mod answers;
mod backend_options;
mod changes;
mod cluster;
mod cluster_options;
mod common;
mod containment;
mod declared;
mod differential;
mod docs_examples;
mod examples_applied;
mod fidelity;
mod first_hour;
mod fuzz_regressions;
mod gone;
mod layout;
mod local_server;
mod messages;
mod modern;
mod numbers;
mod package;
mod plugin_core;
mod python_client;
mod real_clusters;
mod real_over_time;
mod registry;
mod release;
mod reliability;
mod requests;
mod retire;
mod scaling;
mod soak;
mod software;
mod troubleshooting;
mod wire_ledger;
