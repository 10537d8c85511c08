//! The routes, one module a concern. Each handler is registered with its
//! OpenAPI description, so the document lists exactly what is served.

pub mod admin;
pub mod fleet;
pub mod health;
pub mod plugins;
pub mod runs;
pub mod secrets;
pub mod sign_in;
pub mod workflows;
