//! Property tests on attacker-controlled input: any string given as a token is an error and
//! never a panic, any single-byte change to a valid token is refused, and policy loading
//! never panics on arbitrary TOML-ish text.
//!
//! One local Entra look-alike and one governor with its keys loaded serve every case; they
//! live on a multi-threaded runtime so the look-alike answers while a case blocks on it.

use crate::common;
use crate::seeded;

use std::sync::OnceLock;

use entra_governor::testing::TestIdp;
use entra_governor::{Governor, Policy, Principal, TokenError};
use proptest::prelude::*;

struct World {
    runtime: tokio::runtime::Runtime,
    idp: TestIdp,
    governor: Governor,
    valid: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (idp, governor, valid) = runtime.block_on(async {
            let (idp, governor) = common::setup().await;
            let valid = idp.token().roles(["Trainer"]).sign();
            governor
                .verify(&valid)
                .await
                .expect("the valid token verifies");
            (idp, governor, valid)
        });
        World {
            runtime,
            idp,
            governor,
            valid,
        }
    })
}

fn verify(token: &str) -> Result<Principal, TokenError> {
    let w = world();
    w.runtime.block_on(w.governor.verify(token))
}

/// Bytes a mutation may put in: the base64url alphabet, the separator and the usual
/// non-canonical suspects.
fn token_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => proptest::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()
        ),
        1 => proptest::sample::select(b".=+/ \t\n\0\"{}".to_vec()),
        1 => 0x20u8..0x7f,
    ]
}

const POLICY_EXAMPLE: &str = include_str!("../../examples/policy.toml");

proptest! {
    #![proptest_config(seeded::config(256))]

    #[test]
    fn any_string_is_an_error_never_a_panic(s in any::<String>()) {
        prop_assert!(verify(&s).is_err());
    }

    #[test]
    fn any_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(verify(&String::from_utf8_lossy(&bytes)).is_err());
    }

    #[test]
    fn any_three_segment_shape_is_an_error(
        h in "[A-Za-z0-9_-]{0,200}",
        p in "[A-Za-z0-9_-]{0,400}",
        s in "[A-Za-z0-9_=+/-]{0,400}",
    ) {
        let token = format!("{h}.{p}.{s}");
        prop_assert!(verify(&token).is_err());
    }

    #[test]
    fn any_header_json_on_a_valid_payload_is_an_error(header in "\\{(\"[a-z]{1,5}\":(\"[A-Za-z0-9]{0,8}\"|[0-9]{1,3}|null|true|\\[\\]),?){0,6}\\}") {
        use base64::Engine as _;
        let w = world();
        let (_, rest) = w.valid.split_once('.').unwrap();
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&header);
        let token = format!("{encoded}.{rest}");
        prop_assert!(verify(&token).is_err());
    }

    #[test]
    fn any_single_byte_change_to_a_valid_token_is_refused(
        index in any::<proptest::sample::Index>(),
        byte in token_byte(),
    ) {
        let w = world();
        let mut bytes = w.valid.clone().into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let token = String::from_utf8(bytes).unwrap();
        let result = verify(&token);
        prop_assert!(result.is_err(), "accepted a token changed at byte {}: {:?}", i, result);
    }

    #[test]
    fn any_truncation_or_extension_is_refused(cut in any::<proptest::sample::Index>(), tail in "[A-Za-z0-9_.-]{1,8}") {
        let w = world();
        let i = cut.index(w.valid.len());
        prop_assert!(verify(&w.valid[..i]).is_err());
        let longer = format!("{}{tail}", w.valid);
        prop_assert!(verify(&longer).is_err());
    }

    #[test]
    fn policy_parsing_never_panics_on_any_string(s in any::<String>()) {
        let _ = Policy::from_toml_str(&s);
    }

    #[test]
    fn policy_parsing_never_panics_on_toml_ish_text(
        s in "(\\[{1,2}[a-z.\\-]{0,12}\\]{1,2}\n|[a-z_]{1,10} = (\"[a-z*./\\-]{0,12}\"|[0-9]{1,3}|true|\\[(\"[a-z.*\\-]{0,8}\",?){0,3}\\]|\\{ ?([a-z]{1,8} = \"[a-z*]{0,6}\",? ?){0,3}\\})\n){0,24}"
    ) {
        let _ = Policy::from_toml_str(&s);
    }

    #[test]
    fn policy_parsing_never_panics_on_a_mutated_real_policy(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0x20u8..0x7f), 1..8),
    ) {
        let mut bytes = POLICY_EXAMPLE.as_bytes().to_vec();
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = Policy::from_toml_str(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn the_world_is_sane() {
    let w = world();
    assert_eq!(verify(&w.valid).unwrap().tenant(), &w.idp.tenant_id());
    assert!(Policy::from_toml_str(POLICY_EXAMPLE).is_ok());
}
