//! Tournée's network layer: rustls configurations for mutual TLS, the quinn transport and its
//! limits, the enrolment bundle that carries a device's identity, and the async side of the
//! session pump (`pump`: bytes between a quinn stream and `tournee_proto::pump`).
//!
//! It drives the sans-IO sessions of `tournee-proto`; it holds no domain rules and no storage.

pub mod bundle;
pub mod pump;
pub mod tls;
pub mod transport;
