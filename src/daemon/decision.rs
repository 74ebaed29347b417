//! The one decision: does this node serve the VIP, and may it contend for the Lease?
//!
//! Pure and total over its inputs so that it can be tested as a table; the lifecycle recomputes
//! it from the latest `watch` values whenever any of them changes.

pub use crate::config::Mode;

/// Where the process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Normal operation.
    Running,
    /// A leader's make-before-break hand-over: the Lease is released (so `leader` is false) but
    /// the node keeps serving, if healthy, until a new holder is seen plus a grace period.
    HandingOver,
    /// Shutting down: serve nothing, contend for nothing.
    ShuttingDown,
}

/// Everything the decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// Leader or anycast.
    pub mode: Mode,
    /// Aggregate health verdict; `None` until the first verdict (never serve before it).
    pub healthy: Option<bool>,
    /// This node holds the Lease (always false without an election).
    pub leader: bool,
    /// Where the process is in its life.
    pub phase: Phase,
}

/// What the node should be doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Bind and announce the VIPs.
    pub serve: bool,
    /// Contend for (or keep) the Lease. An unhealthy leader becomes ineligible, which makes the
    /// election release the Lease instead of waiting for it to expire.
    pub eligible: bool,
}

/// The decision: `serve = healthy && (mode == anycast || leader)`, adjusted by the phase.
pub fn decide(inputs: &Inputs) -> Desired {
    let healthy = inputs.healthy == Some(true);
    match inputs.phase {
        Phase::Running => Desired {
            serve: healthy && (inputs.mode == Mode::Anycast || inputs.leader),
            eligible: healthy,
        },
        Phase::HandingOver => Desired {
            serve: healthy,
            eligible: false,
        },
        Phase::ShuttingDown => Desired {
            serve: false,
            eligible: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::{Anycast, Leader};
    use Phase::{HandingOver, Running, ShuttingDown};

    const N: Option<bool> = None;
    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);

    /// Every combination of (mode, healthy, leader, phase) → (serve, eligible), written out.
    #[rustfmt::skip]
    const TABLE: [(Mode, Option<bool>, bool, Phase, bool, bool); 36] = [
        (Leader,  N, false, Running,      false, false),
        (Leader,  N, true,  Running,      false, false),
        (Leader,  F, false, Running,      false, false),
        (Leader,  F, true,  Running,      false, false),
        (Leader,  T, false, Running,      false, true),
        (Leader,  T, true,  Running,      true,  true),
        (Anycast, N, false, Running,      false, false),
        (Anycast, N, true,  Running,      false, false),
        (Anycast, F, false, Running,      false, false),
        (Anycast, F, true,  Running,      false, false),
        (Anycast, T, false, Running,      true,  true),
        (Anycast, T, true,  Running,      true,  true),
        (Leader,  N, false, HandingOver,  false, false),
        (Leader,  N, true,  HandingOver,  false, false),
        (Leader,  F, false, HandingOver,  false, false),
        (Leader,  F, true,  HandingOver,  false, false),
        (Leader,  T, false, HandingOver,  true,  false),
        (Leader,  T, true,  HandingOver,  true,  false),
        (Anycast, N, false, HandingOver,  false, false),
        (Anycast, N, true,  HandingOver,  false, false),
        (Anycast, F, false, HandingOver,  false, false),
        (Anycast, F, true,  HandingOver,  false, false),
        (Anycast, T, false, HandingOver,  true,  false),
        (Anycast, T, true,  HandingOver,  true,  false),
        (Leader,  N, false, ShuttingDown, false, false),
        (Leader,  N, true,  ShuttingDown, false, false),
        (Leader,  F, false, ShuttingDown, false, false),
        (Leader,  F, true,  ShuttingDown, false, false),
        (Leader,  T, false, ShuttingDown, false, false),
        (Leader,  T, true,  ShuttingDown, false, false),
        (Anycast, N, false, ShuttingDown, false, false),
        (Anycast, N, true,  ShuttingDown, false, false),
        (Anycast, F, false, ShuttingDown, false, false),
        (Anycast, F, true,  ShuttingDown, false, false),
        (Anycast, T, false, ShuttingDown, false, false),
        (Anycast, T, true,  ShuttingDown, false, false),
    ];

    #[test]
    fn decision_table_covers_every_combination() {
        let mut seen = std::collections::HashSet::new();
        for (mode, healthy, leader, phase, serve, eligible) in TABLE {
            let inputs = Inputs {
                mode,
                healthy,
                leader,
                phase,
            };
            assert!(
                seen.insert(format!("{inputs:?}")),
                "duplicate row {inputs:?}"
            );
            assert_eq!(
                decide(&inputs),
                Desired { serve, eligible },
                "row {inputs:?}"
            );
        }
        assert_eq!(seen.len(), 2 * 3 * 2 * 3, "every combination appears once");
    }
}
