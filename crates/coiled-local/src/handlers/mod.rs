//! The API's handlers, by area. Each returns `Result<Response, Failure>`: errors are answers in
//! Coiled's error shape, returned with `?`.

pub mod account;
pub mod admin;
pub mod clusters;
pub mod software;
