//! Fuzzes BGP message decoding through cpvip-bgp's wire facade: the length-framed reader and
//! `decode_message` (OPEN, UPDATE with RFC 7606 handling, NOTIFICATION, ROUTE-REFRESH) under
//! every session context the speaker uses. Must never panic, hang or allocate without bound.
#![no_main]

use cpvip_bgp::wire::{
    DecodeContext, EXTENDED_MAX_MESSAGE_LEN, FrameReader, MAX_MESSAGE_LEN, decode_message,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let ctx = DecodeContext {
        four_octet_as: flags & 1 != 0,
        ibgp: flags & 2 != 0,
        max_len: if flags & 4 != 0 {
            EXTENDED_MAX_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        },
    };
    // Feed the stream in two pieces to exercise partial frames.
    let cut = usize::from(flags >> 3).min(stream.len());
    let mut reader = FrameReader::new();
    reader.set_max_len(ctx.max_len);
    reader.push(&stream[..cut]);
    let mut fed_rest = false;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                let _ = decode_message(frame, &ctx);
            }
            Ok(None) if !fed_rest => {
                reader.push(&stream[cut..]);
                fed_rest = true;
            }
            Ok(None) | Err(_) => break,
        }
    }
    // The body as a message of each type, with the header made to fit.
    if stream.len() + 19 <= ctx.max_len {
        for ty in 1..=5u8 {
            let mut m = vec![0xff; 16];
            m.extend_from_slice(&u16::try_from(stream.len() + 19).unwrap_or(0).to_be_bytes());
            m.push(ty);
            m.extend_from_slice(stream);
            let _ = decode_message(m.into(), &ctx);
        }
    }
});
