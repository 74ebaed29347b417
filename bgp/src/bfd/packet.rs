//! BFD control packet codec (RFC 5880 §4.1) and the reception checks of §6.8.6 that need no
//! session context.
//!
//! Owns: the 24-byte mandatory section, the `State` and `Diag` code points, and `DecodeError`.
//! Does not own: authentication (we never send it and reject packets that carry it), session
//! selection by discriminator or address (the driver's demultiplexer does that).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |   (only when A is set)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Intervals are in microseconds. Flags: P poll, F final, C control plane independent,
//! A authentication present, D demand, M multipoint (reserved, must be zero).

use std::fmt;

/// Size of the mandatory section, which is all we ever send.
pub const MANDATORY_LEN: usize = 24;

/// The only BFD version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// Session state as carried in the Sta field (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Held down administratively; no session is attempted.
    AdminDown,
    /// The session is down or just created.
    Down,
    /// The remote is heard, but it has not yet confirmed hearing us.
    Init,
    /// Both sides hear each other.
    Up,
}

impl State {
    /// The two-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// Decodes the two-bit wire value (higher bits are ignored).
    pub fn from_code(code: u8) -> State {
        match code & 0x03 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code: why the sender's session last changed state (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: no diagnostic.
    None,
    /// 1: control detection time expired.
    ControlDetectionTimeExpired,
    /// 2: echo function failed.
    EchoFunctionFailed,
    /// 3: neighbor signaled session down.
    NeighborSignaledDown,
    /// 4: forwarding plane reset.
    ForwardingPlaneReset,
    /// 5: path down.
    PathDown,
    /// 6: concatenated path down.
    ConcatenatedPathDown,
    /// 7: administratively down.
    AdministrativelyDown,
    /// 8: reverse concatenated path down.
    ReverseConcatenatedPathDown,
    /// 9-31: reserved; kept so that what a peer sent can be shown as is.
    Reserved(u8),
}

impl Diag {
    /// The five-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(code) => code & 0x1f,
        }
    }

    /// Decodes the five-bit wire value (higher bits are ignored).
    pub fn from_code(code: u8) -> Diag {
        match code & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Reserved(other),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::None => f.write_str("no diagnostic"),
            Diag::ControlDetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFunctionFailed => f.write_str("echo function failed"),
            Diag::NeighborSignaledDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdministrativelyDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Reserved(code) => write!(f, "reserved diagnostic {code}"),
        }
    }
}

/// A BFD control packet without authentication section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    /// The sender's diagnostic.
    pub diag: Diag,
    /// The sender's session state.
    pub state: State,
    /// P: the sender asks for a packet with F set (poll sequence, RFC 5880 §6.5).
    pub poll: bool,
    /// F: answer to a poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// A: an authentication section follows. We never set it; decode rejects it.
    pub auth_present: bool,
    /// D: the sender wishes to use demand mode. We never set it and ignore it.
    pub demand: bool,
    /// M: reserved for multipoint; must be zero.
    pub multipoint: bool,
    /// Detection time multiplier of the sender.
    pub detect_mult: u8,
    /// The sender's discriminator for this session (non-zero).
    pub my_discriminator: u32,
    /// The receiver's discriminator as the sender knows it, zero if unknown.
    pub your_discriminator: u32,
    /// Microseconds: the sender's desired minimum interval between the packets it sends.
    pub desired_min_tx_us: u32,
    /// Microseconds: the smallest interval between received packets the sender supports.
    /// Zero asks the receiver not to send periodic packets.
    pub required_min_rx_us: u32,
    /// Microseconds: the smallest echo interval the sender supports; zero = no echo.
    pub required_min_echo_rx_us: u32,
}

/// Why a received datagram is not a usable control packet (each maps to one rule of
/// RFC 5880 §6.8.6, plus truncation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the mandatory section.
    #[error("datagram of {0} bytes is shorter than the 24-byte mandatory section")]
    Truncated(usize),
    /// Version field is not 1.
    #[error("unsupported BFD version {0}")]
    BadVersion(u8),
    /// Length field below 24 or beyond the datagram.
    #[error("length field {length} is invalid for a {datagram}-byte datagram")]
    BadLength {
        /// The Length field.
        length: u8,
        /// Bytes actually received.
        datagram: usize,
    },
    /// Detect Mult is zero.
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// The multipoint bit is set.
    #[error("multipoint bit is set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while the sender is neither Down nor AdminDown.
    #[error("your discriminator is zero in state {0}")]
    ZeroYourDiscriminator(State),
    /// The A bit is set: we run without authentication and must discard such packets.
    #[error("authentication is present but not configured")]
    AuthenticationNotSupported,
}

impl ControlPacket {
    /// Encodes the mandatory section with Length 24.
    pub fn encode(&self) -> [u8; MANDATORY_LEN] {
        let mut out = [0u8; MANDATORY_LEN];
        out[0] = (VERSION << 5) | self.diag.code();
        let mut flags = self.state.code() << 6;
        for (set, bit) in [
            (self.poll, FLAG_POLL),
            (self.final_, FLAG_FINAL),
            (self.control_plane_independent, FLAG_CPI),
            (self.auth_present, FLAG_AUTH),
            (self.demand, FLAG_DEMAND),
            (self.multipoint, FLAG_MULTIPOINT),
        ] {
            if set {
                flags |= bit;
            }
        }
        out[1] = flags;
        out[2] = self.detect_mult;
        out[3] = MANDATORY_LEN as u8;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        out
    }

    /// Decodes a received UDP payload and applies the context-free checks of RFC 5880 §6.8.6.
    /// Never panics, whatever the input.
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DecodeError> {
        let Some(mandatory) = datagram.first_chunk::<MANDATORY_LEN>() else {
            return Err(DecodeError::Truncated(datagram.len()));
        };
        let version = mandatory[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let flags = mandatory[1];
        let length = mandatory[3];
        if usize::from(length) < MANDATORY_LEN || usize::from(length) > datagram.len() {
            return Err(DecodeError::BadLength {
                length,
                datagram: datagram.len(),
            });
        }
        // With no authentication configured, the A bit alone is reason to discard; checking it
        // before the auth-section length rules means we never parse an auth section at all.
        if flags & FLAG_AUTH != 0 {
            return Err(DecodeError::AuthenticationNotSupported);
        }
        let word = |at: usize| {
            u32::from_be_bytes([
                mandatory[at],
                mandatory[at + 1],
                mandatory[at + 2],
                mandatory[at + 3],
            ])
        };
        let packet = ControlPacket {
            diag: Diag::from_code(mandatory[0]),
            state: State::from_code(flags >> 6),
            poll: flags & FLAG_POLL != 0,
            final_: flags & FLAG_FINAL != 0,
            control_plane_independent: flags & FLAG_CPI != 0,
            auth_present: false,
            demand: flags & FLAG_DEMAND != 0,
            multipoint: flags & FLAG_MULTIPOINT != 0,
            detect_mult: mandatory[2],
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        };
        if packet.detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if packet.multipoint {
            return Err(DecodeError::Multipoint);
        }
        if packet.my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        if packet.your_discriminator == 0 && !matches!(packet.state, State::Down | State::AdminDown)
        {
            return Err(DecodeError::ZeroYourDiscriminator(packet.state));
        }
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Up packet with 300 ms timers, assembled by hand from the RFC 5880 §4.1 layout.
    const UP_PACKET: [u8; 24] = [
        0x20, // version 1, diag 0
        0xc0, // state Up, no flags
        0x03, // detect mult
        0x18, // length 24
        0x11, 0x22, 0x33, 0x44, // my discriminator
        0x55, 0x66, 0x77, 0x88, // your discriminator
        0x00, 0x04, 0x93, 0xe0, // desired min tx 300000 us
        0x00, 0x04, 0x93, 0xe0, // required min rx 300000 us
        0x00, 0x00, 0xc3, 0x50, // required min echo rx 50000 us
    ];

    #[test]
    fn decodes_fields_from_bytes() {
        let p = ControlPacket::decode(&UP_PACKET).expect("valid packet");
        assert_eq!(p.state, State::Up);
        assert_eq!(p.diag, Diag::None);
        assert_eq!(p.detect_mult, 3);
        assert_eq!(p.my_discriminator, 0x1122_3344);
        assert_eq!(p.your_discriminator, 0x5566_7788);
        assert_eq!(p.desired_min_tx_us, 300_000);
        assert_eq!(p.required_min_rx_us, 300_000);
        assert_eq!(p.required_min_echo_rx_us, 50_000);
        assert!(!p.poll && !p.final_ && !p.demand && !p.control_plane_independent);
        assert_eq!(p.encode(), UP_PACKET);
    }

    #[test]
    fn decodes_flags_state_and_diag_bits() {
        let mut bytes = UP_PACKET;
        bytes[0] = 0x23; // diag 3
        bytes[1] = 0x40 | FLAG_POLL | FLAG_CPI | FLAG_DEMAND; // Down, P, C, D
        let p = ControlPacket::decode(&bytes).expect("valid packet");
        assert_eq!(p.diag, Diag::NeighborSignaledDown);
        assert_eq!(p.state, State::Down);
        assert!(p.poll && p.control_plane_independent && p.demand && !p.final_);
        bytes[1] = 0xc0 | FLAG_FINAL;
        let p = ControlPacket::decode(&bytes).expect("valid packet");
        assert!(p.final_ && !p.poll);
        bytes[0] = 0x20 | 0x1f;
        assert_eq!(
            ControlPacket::decode(&bytes).expect("valid").diag,
            Diag::Reserved(31)
        );
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut bytes = UP_PACKET.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert!(ControlPacket::decode(&bytes).is_ok());
    }

    #[test]
    fn rejects_truncated_input() {
        for len in 0..MANDATORY_LEN {
            assert_eq!(
                ControlPacket::decode(&UP_PACKET[..len]),
                Err(DecodeError::Truncated(len))
            );
        }
    }

    #[test]
    fn rejects_every_rule_of_6_8_6() {
        let with = |at: usize, value: u8| {
            let mut b = UP_PACKET;
            b[at] = value;
            ControlPacket::decode(&b)
        };
        assert_eq!(with(0, 0x40), Err(DecodeError::BadVersion(2)));
        assert_eq!(with(0, 0x00), Err(DecodeError::BadVersion(0)));
        assert_eq!(
            with(3, 23),
            Err(DecodeError::BadLength {
                length: 23,
                datagram: 24
            })
        );
        assert_eq!(
            with(3, 25),
            Err(DecodeError::BadLength {
                length: 25,
                datagram: 24
            })
        );
        assert_eq!(with(2, 0), Err(DecodeError::ZeroDetectMult));
        assert_eq!(
            with(1, 0xc0 | FLAG_MULTIPOINT),
            Err(DecodeError::Multipoint)
        );
        assert_eq!(
            with(1, 0xc0 | FLAG_AUTH),
            Err(DecodeError::AuthenticationNotSupported)
        );
        let mut b = UP_PACKET;
        b[4..8].fill(0);
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::ZeroMyDiscriminator)
        );
    }

    #[test]
    fn your_discriminator_zero_only_in_down_or_admin_down() {
        let mut b = UP_PACKET;
        b[8..12].fill(0);
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::ZeroYourDiscriminator(State::Up))
        );
        b[1] = 0x80; // Init
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::ZeroYourDiscriminator(State::Init))
        );
        b[1] = 0x40; // Down
        assert!(ControlPacket::decode(&b).is_ok());
        b[1] = 0x00; // AdminDown
        assert!(ControlPacket::decode(&b).is_ok());
    }

    #[test]
    fn authenticated_packet_with_auth_section_is_rejected() {
        // A bit set, simple password auth section (type 1, len 7, key id 1, "abcd").
        let mut b = UP_PACKET.to_vec();
        b[1] |= FLAG_AUTH;
        b[3] = 31;
        b.extend_from_slice(&[1, 7, 1, b'a', b'b', b'c', b'd']);
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::AuthenticationNotSupported)
        );
    }

    mod roundtrip {
        use super::super::*;
        use proptest::prelude::*;

        fn any_state() -> impl Strategy<Value = State> {
            (0u8..4).prop_map(State::from_code)
        }

        prop_compose! {
            fn valid_packet()(
                diag in (0u8..32).prop_map(Diag::from_code),
                state in any_state(),
                poll: bool, final_: bool, cpi: bool, demand: bool,
                detect_mult in 1u8..,
                my in 1u32..,
                your: u32,
                tx: u32, rx: u32, echo: u32,
            ) -> ControlPacket {
                let your = if matches!(state, State::Down | State::AdminDown) { your } else { your.max(1) };
                ControlPacket {
                    diag, state, poll, final_, control_plane_independent: cpi,
                    auth_present: false, demand, multipoint: false, detect_mult,
                    my_discriminator: my, your_discriminator: your,
                    desired_min_tx_us: tx, required_min_rx_us: rx, required_min_echo_rx_us: echo,
                }
            }
        }

        proptest! {
            #[test]
            fn encode_then_decode_is_identity(p in valid_packet()) {
                prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
            }

            #[test]
            fn decode_never_panics_and_reencodes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(p) = ControlPacket::decode(&bytes) {
                    let again = p.encode();
                    // Byte 3 (Length) differs when the sender padded; everything else must match.
                    prop_assert_eq!(&again[..3], &bytes[..3]);
                    prop_assert_eq!(&again[4..], &bytes[4..MANDATORY_LEN]);
                    prop_assert_eq!(ControlPacket::decode(&again), Ok(p));
                }
            }
        }
    }
}
