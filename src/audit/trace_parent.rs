//! [`TraceParent`]: the caller's W3C Trace Context (`traceparent` header), carried from
//! the request to its audit event so that exported records join the caller's trace.

use std::fmt;

/// A parsed W3C `traceparent` header (version `00`): the caller's trace id, the id of its
/// span that made the request, and the trace flags.
///
/// ```
/// use entra_governor::audit::TraceParent;
///
/// let tp = TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(tp.sampled());
/// assert!(TraceParent::parse(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` value was not accepted. The value itself is never shown: it is
/// attacker-controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// Not `00-<32 hex>-<16 hex>-<2 hex>` (lower-case hex, 55 bytes).
    #[error("traceparent is not `00-<32 hex>-<16 hex>-<2 hex>` ({len} bytes)")]
    Malformed {
        /// The value's length in bytes.
        len: usize,
    },
    /// A version other than `00`.
    #[error("traceparent version is not 00")]
    UnsupportedVersion,
    /// The trace id is all zeros.
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    /// The parent (span) id is all zeros.
    #[error("traceparent parent id is all zeros")]
    ZeroParentId,
}

impl TraceParent {
    /// Parses a `traceparent` header value strictly: version `00`, exactly 55 bytes,
    /// lower-case hex, neither id all zeros (W3C Trace Context, level 1).
    ///
    /// # Errors
    /// A [`TraceParentError`] saying which rule the value broke.
    pub fn parse(value: &[u8]) -> Result<Self, TraceParentError> {
        let malformed = TraceParentError::Malformed { len: value.len() };
        if value.len() != 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return Err(malformed);
        }
        let mut version = [0u8; 1];
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        let mut flags = [0u8; 1];
        let parts = [
            (&value[0..2], &mut version[..]),
            (&value[3..35], &mut trace_id[..]),
            (&value[36..52], &mut parent_id[..]),
            (&value[53..55], &mut flags[..]),
        ];
        for (hex, out) in parts {
            decode_hex(hex, out).ok_or(malformed)?;
        }
        if version[0] != 0 {
            return Err(TraceParentError::UnsupportedVersion);
        }
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags: flags[0],
        })
    }

    /// The trace id (16 bytes).
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The id of the caller's span that made the request (8 bytes).
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags byte (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled its trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id in lower-case hex (32 characters).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent id in lower-case hex (16 characters).
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }
}

/// The header form, `00-<trace id>-<parent id>-<flags>`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.parent_id_hex(),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (pair, byte) in hex.chunks_exact(2).zip(out.iter_mut()) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_round_trips() {
        let tp: TraceParent = VALID.parse().unwrap();
        assert_eq!(tp.to_string(), VALID);
        assert_eq!(tp.parent_id_hex(), "00f067aa0ba902b7");
        assert_eq!(tp.trace_id()[0], 0x4b);
        assert_eq!(tp.flags(), 1);
        let unsampled: TraceParent = VALID.replace("-01", "-00").parse().unwrap();
        assert!(!unsampled.sampled());
    }

    #[test]
    fn everything_else_is_refused() {
        use TraceParentError::*;
        let e = |v: &str| TraceParent::parse(v.as_bytes()).unwrap_err();
        assert_eq!(e(""), Malformed { len: 0 });
        assert_eq!(e(&format!("{VALID}-")), Malformed { len: 56 });
        assert_eq!(e(&VALID.to_uppercase()), Malformed { len: 55 });
        assert_eq!(e(&VALID.replacen('-', "_", 1)), Malformed { len: 55 });
        assert_eq!(e(&VALID.replace("4bf9", "4bfg")), Malformed { len: 55 });
        assert_eq!(e(&VALID.replace("4bf9", "+bf9")), Malformed { len: 55 });
        assert_eq!(e(&VALID.replacen("00", "01", 1)), UnsupportedVersion);
        assert_eq!(e(&VALID.replacen("00", "ff", 1)), UnsupportedVersion);
        assert_eq!(
            e("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            ZeroTraceId
        );
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            ZeroParentId
        );
        // Multi-byte input of the right length must not panic on slicing.
        let odd = "é".repeat(27) + "x";
        assert_eq!(e(&odd), Malformed { len: 55 });
        assert_eq!(
            e(&VALID.to_uppercase()).to_string(),
            "traceparent is not `00-<32 hex>-<16 hex>-<2 hex>` (55 bytes)"
        );
    }
}
