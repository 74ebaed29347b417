//! The BGP session: the pure RFC 4271 §8 state machine ([`fsm`]) and OPEN negotiation /
//! collision resolution ([`negotiate`]). No sockets, no clocks: the driver feeds events and
//! performs the returned actions.

pub mod fsm;
pub mod negotiate;

#[cfg(test)]
mod tests;

pub use fsm::{Action, DownReason, Event, Session, SessionConfig, State, Timer, connect_backoff};
pub use negotiate::{CollisionWinner, Negotiated, negotiate, resolve_collision};
