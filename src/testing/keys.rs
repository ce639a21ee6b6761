//! Key material of the test identity provider: RSA-2048 signing keys, their JWKS entries, and
//! the PKCS#8 to PKCS#1 conversion that jsonwebtoken's `EncodingKey::from_rsa_der` needs.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// One RSA-2048 key pair the test identity provider can sign with.
pub(crate) struct RsaKey {
    kid: String,
    pair: KeyPair,
    pkcs1_der: Vec<u8>,
    n: String,
    e: String,
}

impl RsaKey {
    /// Generates a fresh key. Its kid is the base64url SHA-1 of the public key, the same
    /// 27-character shape as Entra's kids (which are certificate thumbprints).
    pub(crate) fn generate() -> RsaKey {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).expect("TestIdp: RSA-2048 key generation failed");
        let pkcs8: Pkcs8V1Der<'static> = pair.as_der().expect("TestIdp: PKCS#8 export failed");
        let pkcs1_der = pkcs8_to_pkcs1(pkcs8.as_ref())
            .expect("TestIdp: aws-lc-rs produced a PKCS#8 document without an RSA key")
            .to_vec();
        let public = pair.public_key();
        let thumbprint = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, public.as_ref());
        RsaKey {
            kid: URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            pkcs1_der,
            pair,
        }
    }

    /// The key id, published as both `kid` and `x5t`.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The PKCS#1 `RSAPrivateKey` DER, as jsonwebtoken wants it.
    pub(crate) fn pkcs1_der(&self) -> &[u8] {
        &self.pkcs1_der
    }

    /// The private key as PKCS#8 v1 DER (what `ClientCredential::certificate` takes).
    pub(crate) fn pkcs8_der(&self) -> Vec<u8> {
        let pkcs8: Pkcs8V1Der<'static> = self.pair.as_der().expect("TestIdp: PKCS#8 export failed");
        pkcs8.as_ref().to_vec()
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER.
    pub(crate) fn public_key_der(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256) over `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .expect("TestIdp: RSA signing failed");
        sig
    }

    /// The JWKS entry for this key, bound to `issuer` (which may be the `{tenantid}` template).
    pub(crate) fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "x5c": [],
            "issuer": issuer,
        })
    }
}

/// Extracts the PKCS#1 `RSAPrivateKey` from a PKCS#8 v1 `PrivateKeyInfo`:
/// `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, .. }`.
///
/// A deliberately tiny DER walker: definite lengths only, no validation of the algorithm
/// (aws-lc-rs made the document). Returns `None` on anything malformed instead of panicking.
pub(crate) fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;

    let (info, _) = der_element(pkcs8, SEQUENCE)?;
    let (_version, rest) = der_element(info, INTEGER)?;
    let (_algorithm, rest) = der_element(rest, SEQUENCE)?;
    let (private_key, _) = der_element(rest, OCTET_STRING)?;
    Some(private_key)
}

/// Reads one DER element with the expected tag; returns its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        // 0x80 is the indefinite form (not DER); more than 4 length bytes is never a key.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn pkcs1_extraction_round_trips_through_aws_lc() {
        let key = RsaKey::generate();
        // An RSAPrivateKey is itself a SEQUENCE starting with INTEGER 0 (two-prime version).
        assert_eq!(&key.pkcs1_der()[..1], &[0x30]);
        let reparsed = KeyPair::from_der(key.pkcs1_der()).expect("PKCS#1 DER parses");
        assert_eq!(
            reparsed
                .public_key()
                .modulus()
                .big_endian_without_leading_zero(),
            key.pair
                .public_key()
                .modulus()
                .big_endian_without_leading_zero()
        );
        assert_eq!(key.kid().len(), 27);
        assert_eq!(key.e, "AQAB");
        assert_eq!(URL_SAFE_NO_PAD.decode(&key.n).unwrap().len(), 256);

        let sig = key.sign(b"header.payload");
        assert_eq!(sig.len(), 256);
        let public =
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.pair.public_key().as_ref());
        assert!(public.verify(b"header.payload", &sig).is_ok());
        assert!(public.verify(b"header.payloaD", &sig).is_err());
    }

    #[test]
    fn der_walker_rejects_malformed_input_without_panicking() {
        assert_eq!(pkcs8_to_pkcs1(&[]), None);
        assert_eq!(pkcs8_to_pkcs1(&[0x30]), None);
        assert_eq!(pkcs8_to_pkcs1(&[0x30, 0x80]), None);
        assert_eq!(pkcs8_to_pkcs1(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(pkcs8_to_pkcs1(&[0x30, 0x05, 0x02, 0x01, 0x00]), None);
        assert_eq!(pkcs8_to_pkcs1(&[0x31, 0x00]), None);
        // SEQUENCE { INTEGER 0, SEQUENCE {}, OCTET STRING { 0xAB } }
        let minimal = [0x30, 0x08, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x01, 0xab];
        assert_eq!(pkcs8_to_pkcs1(&minimal), Some(&[0xab][..]));
        // Long-form length (0x81 0x01).
        let long_form = [
            0x30, 0x09, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x81, 0x01, 0xcd,
        ];
        assert_eq!(pkcs8_to_pkcs1(&long_form), Some(&[0xcd][..]));
        // Length past the end of the input.
        let truncated = [0x30, 0x08, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x02, 0xab];
        assert_eq!(pkcs8_to_pkcs1(&truncated), None);
    }
}
