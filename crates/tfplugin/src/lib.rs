//! tfplugin: Terraform's plugin protocol 6 for Rust providers, and nothing about any one provider.
//!
//! - [`value`]: cty types and values with their msgpack / JSON codecs;
//! - [`schema`]: the schema model and its protocol form;
//! - [`diag`]: diagnostics with attribute paths;
//! - [`model`]: typed models of a schema's values ([`model!`], [`attr!`]);
//! - [`framework`]: the resource, data source and provider interfaces, and the planning rules;
//! - [`query`]: list resources and actions (Terraform 1.14);
//! - [`proto`]: the generated tfplugin6 and go-plugin messages and services, and their router;
//! - [`server`]: the tfplugin6 gRPC service;
//! - [`serve`]: handshake, transport, AutoMTLS and shutdown;
//! - [`tls`], [`logging`]: the channel's certificates and hclog-style logs.

#![warn(missing_docs)]

pub mod cert;
pub mod diag;
pub mod framework;
pub mod function;
pub mod identity;
pub mod logging;
pub mod model;
pub mod proto;
pub mod query;
pub mod schema;
pub mod serve;
pub mod server;
pub mod tls;
pub mod value;
