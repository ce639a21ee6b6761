//! The token envelope (size cap, segments, strict base64url, JOSE header) and the claims
//! parser on arbitrary bytes: they must never panic, hang or allocate beyond the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    entra_governor::token::fuzz_parse(data);
});
