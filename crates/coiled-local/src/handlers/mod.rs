//! The API's handlers, by area. Each returns an [`Answer`](crate::app::Answer): errors are answers in
//! Coiled's error shape, returned with `?`.

pub mod account;
pub mod admin;
pub mod clusters;
pub mod software;
