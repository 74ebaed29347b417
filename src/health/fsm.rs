//! The rise/fall state machine of one check and the aggregate verdict. Pure: no I/O, no time.
//!
//! A check starts `Unknown`. `rise` consecutive passes make it `Up`; from `Up`, `fall`
//! consecutive failures make it `Down`. A check that has never passed goes `Down` at its first
//! failure: there is nothing to protect from flapping yet, and the verdict becomes known
//! ("unhealthy") instead of staying unknown for `fall` intervals.

use serde::{Deserialize, Serialize};

/// Where a check stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// No verdict yet.
    Unknown,
    /// Passing (`rise` consecutive passes seen).
    Up,
    /// Failing.
    Down,
}

/// The outcome of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The probe succeeded.
    Passed,
    /// The probe failed or timed out.
    Failed,
}

/// Thresholds, as `--health-rise` / `--health-fall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiseFall {
    /// Consecutive passes to become `Up`.
    pub rise: u32,
    /// Consecutive failures to become `Down` from `Up`.
    pub fall: u32,
}

/// The state of one check with its consecutive counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckFsm {
    /// Where the check stands.
    pub state: CheckState,
    /// Consecutive passes (0 after a failure).
    pub consecutive_ok: u32,
    /// Consecutive failures (0 after a pass).
    pub consecutive_fail: u32,
}

impl Default for CheckFsm {
    fn default() -> Self {
        Self {
            state: CheckState::Unknown,
            consecutive_ok: 0,
            consecutive_fail: 0,
        }
    }
}

impl CheckFsm {
    /// Applies one probe outcome; returns the new state when it changed.
    pub fn step(&mut self, event: Event, thresholds: RiseFall) -> Option<CheckState> {
        let before = self.state;
        match event {
            Event::Passed => {
                self.consecutive_ok = self.consecutive_ok.saturating_add(1);
                self.consecutive_fail = 0;
                if self.state != CheckState::Up && self.consecutive_ok >= thresholds.rise.max(1) {
                    self.state = CheckState::Up;
                }
            }
            Event::Failed => {
                self.consecutive_fail = self.consecutive_fail.saturating_add(1);
                self.consecutive_ok = 0;
                let fell =
                    self.state == CheckState::Up && self.consecutive_fail >= thresholds.fall.max(1);
                if fell || self.state == CheckState::Unknown {
                    self.state = CheckState::Down;
                }
            }
        }
        (self.state != before).then_some(self.state)
    }
}

/// The aggregate verdict: every check must be up to serve. `None` while no check is down and
/// some are still unknown; no checks at all (`--no-health-check`) means healthy.
pub fn verdict(states: impl IntoIterator<Item = CheckState>) -> Option<bool> {
    let mut unknown = false;
    for state in states {
        match state {
            CheckState::Down => return Some(false),
            CheckState::Unknown => unknown = true,
            CheckState::Up => {}
        }
    }
    (!unknown).then_some(true)
}

#[cfg(test)]
mod tests {
    use super::CheckState::{Down, Unknown, Up};
    use super::Event::{Failed, Passed};
    use super::*;

    const RF: RiseFall = RiseFall { rise: 2, fall: 3 };

    fn run(events: &[Event]) -> Vec<CheckState> {
        let mut fsm = CheckFsm::default();
        events
            .iter()
            .map(|e| {
                fsm.step(*e, RF);
                fsm.state
            })
            .collect()
    }

    #[test]
    fn rises_after_rise_passes() {
        assert_eq!(run(&[Passed, Passed, Passed]), [Unknown, Up, Up]);
    }

    #[test]
    fn falls_after_fall_consecutive_failures_only() {
        let events = [
            Passed, Passed, Failed, Failed, Passed, Failed, Failed, Failed,
        ];
        assert_eq!(
            run(&events),
            [Unknown, Up, Up, Up, Up, Up, Up, Down],
            "a pass in between resets the failure count"
        );
    }

    #[test]
    fn a_check_that_never_passed_is_down_at_its_first_failure_and_needs_rise_to_recover() {
        assert_eq!(
            run(&[Failed, Passed, Failed, Passed, Passed]),
            [Down, Down, Down, Down, Up]
        );
    }

    #[test]
    fn counts_and_transitions_are_reported() {
        let mut fsm = CheckFsm::default();
        assert_eq!(fsm.step(Passed, RF), None);
        assert_eq!(fsm.step(Passed, RF), Some(Up));
        assert_eq!(fsm.step(Failed, RF), None);
        assert_eq!((fsm.consecutive_ok, fsm.consecutive_fail), (0, 1));
        assert_eq!(fsm.step(Failed, RF), None);
        assert_eq!(fsm.step(Failed, RF), Some(Down));
        assert_eq!(fsm.consecutive_fail, 3);
    }

    #[test]
    fn zero_thresholds_behave_as_one() {
        let mut fsm = CheckFsm::default();
        let rf = RiseFall { rise: 0, fall: 0 };
        assert_eq!(fsm.step(Passed, rf), Some(Up));
        assert_eq!(fsm.step(Failed, rf), Some(Down));
    }

    #[test]
    fn verdict_needs_every_check_up() {
        assert_eq!(verdict([]), Some(true));
        assert_eq!(verdict([Up, Up]), Some(true));
        assert_eq!(verdict([Up, Unknown]), None);
        assert_eq!(verdict([Unknown, Down]), Some(false));
        assert_eq!(verdict([Up, Down]), Some(false));
    }
}
