//! cpvip-lab: a small data centre in network namespaces, for the demo, end-to-end tests and
//! benchmarks.
//!
//! Owns: namespaces, veths and bridges with guaranteed clean-up (drop guards), processes started
//! and stopped by PID, real routers (BIRD 2, FRR) configured per test, the Lease test server (the
//! Kubernetes Lease API with its real semantics), stand-in 6443/9345 listeners and client probes.
//!
//! Does not own: cpvip itself. The lab runs the `cpvip` binary as a process and observes it from
//! outside (routes in the router, TCP connects to the VIP, the Lease holder), as an operator would.

pub mod bench;
pub mod config_text;
pub mod demo;
pub mod lease_server;
pub mod netns;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod router;
pub mod standin;
mod sys;
pub mod topology;
