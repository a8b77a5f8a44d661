//! Tournée's network layer: rustls configurations for mutual TLS, the quinn transport and its
//! limits, and the enrolment bundle that carries a device's identity.
//!
//! It drives the sans-IO sessions of `tournee-proto`; it holds no domain rules and no storage.

pub mod bundle;
pub mod tls;
pub mod transport;
