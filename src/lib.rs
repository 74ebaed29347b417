//! cpvip: keeps one virtual IP of a Kubernetes control plane reachable from the routers.
//!
//! This crate is the daemon. It owns the command line (`cli`), the validated configuration
//! (`config`), the one decision "does this node serve the VIP?" and its wiring (`daemon`), the
//! inputs to that decision (`health`, `election`), the HTTP surface (`http`), the manifest
//! renderers (`manifest`) and the `cpvip status` client (`status`). It composes the BGP speaker
//! (`cpvip-bgp`) and the host VIP manager (`cpvip-netlink`), which know nothing of Kubernetes.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod election;
pub mod health;
pub mod http;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod status;

#[cfg(test)]
mod test_support;
