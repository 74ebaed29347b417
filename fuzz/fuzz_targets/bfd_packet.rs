//! Fuzzes the BFD control packet decoder: it must never panic, and whatever it accepts must
//! survive an encode/decode round trip unchanged.
#![no_main]

use cpvip_bgp::bfd::packet::{ControlPacket, MANDATORY_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = ControlPacket::decode(data) {
        let encoded = packet.encode();
        assert_eq!(ControlPacket::decode(&encoded), Ok(packet));
        // Everything but the Length byte is reproduced exactly.
        assert_eq!(encoded[..3], data[..3]);
        assert_eq!(encoded[4..], data[4..MANDATORY_LEN]);
    }
});
