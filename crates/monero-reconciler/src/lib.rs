//! The reconciler of monero-operator: pure builders from custom resources to
//! Kubernetes objects ([`build`]), and the controllers that apply them and
//! report status ([`controller`]).

pub mod args;
pub mod build;
pub mod controller;
pub mod error;
pub mod render;
pub mod rollout;
pub mod stall;

pub use error::{Error, InvalidSpec};
