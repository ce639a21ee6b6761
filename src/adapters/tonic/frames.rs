//! The length-prefixed messages of a gRPC request body ("gRPC over HTTP2",
//! `Length-Prefixed-Message`): a 1-byte compressed flag, a 4-byte big-endian length, and
//! that many bytes of message. [`Frames`] cuts a body's data, however the transport
//! chunked it, into whole messages, each kept as the exact bytes that arrived (prefix
//! included), so that what is released to the service is what the client sent.

use bytes::{Buf, Bytes, BytesMut};

/// The prefix: the compressed flag and the length.
pub(crate) const PREFIX_LEN: usize = 5;

/// One whole message as it arrived: the prefix and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// The message's bytes, without the prefix (what prost decodes).
    pub(crate) fn payload(&self) -> Bytes {
        self.bytes.slice(PREFIX_LEN..)
    }

    /// The frame as it arrived, prefix included (what is released to the service).
    pub(crate) fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// Why a body's frames are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The compressed flag is set: this layer advertises no `grpc-accept-encoding`, so a
    /// client may not compress, and a compressed message cannot be inspected.
    Compressed,
    /// The flag is neither 0 nor 1.
    InvalidFlag,
    /// The prefix announces more bytes than the limit (the payload is never buffered).
    TooLarge {
        /// The announced length.
        len: u64,
    },
    /// The body ended inside a frame.
    Truncated,
}

/// Accumulates a body's data and hands out whole frames, never buffering more than one
/// frame of at most `max_message_bytes` plus what the transport delivered with it.
#[derive(Debug)]
pub(crate) struct Frames {
    buf: BytesMut,
    max_message_bytes: usize,
}

impl Frames {
    /// An empty buffer refusing messages longer than `max_message_bytes`.
    pub(crate) fn new(max_message_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_message_bytes,
        }
    }

    /// Appends data from the body.
    pub(crate) fn push(&mut self, mut data: impl Buf) {
        while data.has_remaining() {
            let chunk = data.chunk();
            self.buf.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }

    /// True when no partial frame is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next whole frame, `None` until one has fully arrived.
    ///
    /// # Errors
    /// A [`FrameError`] as soon as the prefix shows one, before the payload arrives.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        match self.buf[0] {
            0 => {}
            1 => return Err(FrameError::Compressed),
            _ => return Err(FrameError::InvalidFlag),
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len = usize::try_from(len).map_err(|_| FrameError::TooLarge { len: len.into() })?;
        if len > self.max_message_bytes {
            return Err(FrameError::TooLarge { len: len as u64 });
        }
        let total = PREFIX_LEN + len;
        if self.buf.len() < total {
            // Room for the rest of this frame, once.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        Ok(Some(Frame {
            bytes: self.buf.split_to(total).freeze(),
        }))
    }

    /// The end of the body: an error when a frame was cut short.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when a partial frame is buffered.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_are_cut_whatever_the_chunking() {
        let mut body = frame(0, b"hello");
        body.extend(frame(0, b""));
        body.extend(frame(0, b"world!"));
        for chunk_len in 1..=body.len() {
            let mut frames = Frames::new(64);
            let mut out = Vec::new();
            for chunk in body.chunks(chunk_len) {
                frames.push(chunk);
                while let Some(f) = frames.next_frame().unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(frames.finish(), Ok(()), "chunks of {chunk_len}");
            let payloads: Vec<Bytes> = out.iter().map(Frame::payload).collect();
            assert_eq!(
                payloads,
                [&b"hello"[..], b"", b"world!"],
                "chunks of {chunk_len}"
            );
            // The bytes released are the bytes received.
            let released: Vec<u8> = out.into_iter().flat_map(|f| f.into_bytes()).collect();
            assert_eq!(released, body, "chunks of {chunk_len}");
        }
    }

    #[test]
    fn refusals_are_seen_in_the_prefix() {
        let mut frames = Frames::new(64);
        frames.push(&frame(1, b"gzip")[..]);
        assert_eq!(frames.next_frame(), Err(FrameError::Compressed));

        let mut frames = Frames::new(64);
        frames.push(&frame(2, b"x")[..]);
        assert_eq!(frames.next_frame(), Err(FrameError::InvalidFlag));

        // Only the prefix has arrived: refused before 4 GiB are buffered.
        let mut frames = Frames::new(64);
        frames.push(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            frames.next_frame(),
            Err(FrameError::TooLarge { len: 0xffff_ffff })
        );

        let mut frames = Frames::new(4);
        frames.push(&frame(0, b"12345")[..]);
        assert_eq!(frames.next_frame(), Err(FrameError::TooLarge { len: 5 }));
        let mut frames = Frames::new(5);
        frames.push(&frame(0, b"12345")[..]);
        assert!(frames.next_frame().unwrap().is_some());
    }

    #[test]
    fn a_body_ending_inside_a_frame_is_truncated() {
        let mut frames = Frames::new(64);
        frames.push(&frame(0, b"hello")[..4]);
        assert_eq!(frames.next_frame(), Ok(None));
        assert_eq!(frames.finish(), Err(FrameError::Truncated));
        let mut frames = Frames::new(64);
        frames.push(&frame(0, b"hello")[..7]);
        assert_eq!(frames.next_frame(), Ok(None));
        assert_eq!(frames.finish(), Err(FrameError::Truncated));
    }
}
