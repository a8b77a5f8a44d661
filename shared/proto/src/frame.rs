//! Framing: `[u32 length, big-endian][u8 flags][payload]`, payload a postcard message,
//! deflated when flag bit 0 is set. Lengths and inflated sizes are checked before any buffer
//! grows past its limit. No I/O: bytes in, messages out.

use std::io::Read;

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde::de::DeserializeOwned;
use serde::Serialize;

use tournee_core::limits::{
    FRAME_BYTES_MAX, FRAME_COMPRESS_MIN_BYTES, FRAME_INFLATED_BYTES_MAX, INFLATE_CHUNK_BYTES,
};

const FLAG_DEFLATE: u8 = 1;
const HEADER_BYTES: usize = 4;

/// Why bytes from a peer are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than `FRAME_BYTES_MAX`.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A zero-length frame (no flags byte).
    #[error("empty frame")]
    Empty,
    /// Unknown flag bits.
    #[error("unknown frame flags {0:#04x}")]
    Flags(u8),
    /// The deflated payload is corrupt or inflates past `FRAME_INFLATED_BYTES_MAX`.
    #[error("compressed payload is corrupt or inflates past {max} bytes")]
    Inflate {
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid message; postcard's error is the source.
    #[error("message does not decode: {0}")]
    Decode(#[source] postcard::Error),
    /// The stream ended inside a frame.
    #[error("stream ended in the middle of a frame ({have} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        have: usize,
        /// Bytes announced.
        want: usize,
    },
}

/// Encode one message as a frame, deflating it when that pays.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let raw = postcard::to_allocvec(msg).unwrap_or_default();
    let (flags, payload) = if raw.len() >= FRAME_COMPRESS_MIN_BYTES {
        let mut enc =
            DeflateEncoder::new(Vec::with_capacity(raw.len() / 2), Compression::default());
        let deflated = std::io::Write::write_all(&mut enc, &raw)
            .and_then(|()| enc.finish())
            .ok();
        match deflated {
            Some(d) if d.len() < raw.len() => (FLAG_DEFLATE, d),
            _ => (0, raw),
        }
    } else {
        (0, raw)
    };
    let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_BYTES + 1 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&payload);
    out
}

/// Decode one frame body (flags + payload) into a message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (&flags, payload) = body.split_first().ok_or(FrameError::Empty)?;
    match flags {
        0 => postcard::from_bytes(payload).map_err(FrameError::Decode),
        FLAG_DEFLATE => {
            let inflated = inflate_bounded(payload)?;
            postcard::from_bytes(&inflated).map_err(FrameError::Decode)
        }
        other => Err(FrameError::Flags(other)),
    }
}

/// Inflate `payload`, refusing more than `FRAME_INFLATED_BYTES_MAX` bytes. The buffer grows by
/// doubling but never reserves past the limit, so a deflate bomb costs at most the limit.
fn inflate_bounded(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let too_big = FrameError::Inflate {
        max: FRAME_INFLATED_BYTES_MAX,
    };
    let mut decoder = DeflateDecoder::new(payload);
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; INFLATE_CHUNK_BYTES];
    loop {
        let n = decoder.read(&mut chunk).map_err(|_| too_big.clone())?;
        if n == 0 {
            return Ok(out);
        }
        let needed = out.len() + n;
        if needed > FRAME_INFLATED_BYTES_MAX {
            return Err(too_big);
        }
        if needed > out.capacity() {
            let target = (out.capacity() * 2)
                .max(needed)
                .min(FRAME_INFLATED_BYTES_MAX);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Accumulates bytes from a stream and yields whole frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Add bytes received; refuses a frame whose announced length is over the limit. Callers
    /// drain every whole message with `next_msg` after each push, so the buffer holds at most
    /// one maximal frame plus one read.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        self.check_header()
    }

    fn check_header(&self) -> Result<(), FrameError> {
        if let Some(len) = self.announced() {
            if len > FRAME_BYTES_MAX {
                return Err(FrameError::TooLong {
                    len,
                    max: FRAME_BYTES_MAX,
                });
            }
            if len == 0 {
                return Err(FrameError::Empty);
            }
        }
        Ok(())
    }

    fn announced(&self) -> Option<usize> {
        let head: [u8; HEADER_BYTES] = self.buf.get(..HEADER_BYTES)?.try_into().ok()?;
        usize::try_from(u32::from_be_bytes(head)).ok()
    }

    /// The next whole message, if one is buffered.
    pub fn next_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        self.check_header()?;
        let Some(len) = self.announced() else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let msg = decode_body(&self.buf[HEADER_BYTES..HEADER_BYTES + len]);
        self.buf.drain(..HEADER_BYTES + len);
        msg.map(Some)
    }

    /// Call at end of stream: an error if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        Err(FrameError::Truncated {
            have: self.buf.len(),
            want: self.announced().map_or(HEADER_BYTES, |l| l + HEADER_BYTES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_split_anywhere_and_compress_when_large() {
        let small = "hello".to_owned();
        let large = "x".repeat(10_000);
        let mut bytes = encode(&small);
        let big = encode(&large);
        assert!(
            big.len() < 200,
            "10 kB of one letter deflates: {}",
            big.len()
        );
        bytes.extend_from_slice(&big);
        for split in [0, 1, 3, 4, 5, 9, bytes.len() - 1] {
            let mut r = FrameReader::new();
            r.push(&bytes[..split]).expect("push");
            let mut got: Vec<String> = Vec::new();
            while let Some(m) = r.next_msg().expect("decode") {
                got.push(m);
            }
            r.push(&bytes[split..]).expect("push");
            while let Some(m) = r.next_msg().expect("decode") {
                got.push(m);
            }
            assert_eq!(got, vec![small.clone(), large.clone()]);
            r.finish().expect("nothing left");
        }
    }

    #[test]
    fn oversized_empty_truncated_and_bad_flag_frames_are_errors() {
        let mut r = FrameReader::new();
        let too_long = u32::try_from(FRAME_BYTES_MAX + 1)
            .expect("fits")
            .to_be_bytes();
        assert!(matches!(r.push(&too_long), Err(FrameError::TooLong { .. })));
        let mut r = FrameReader::new();
        assert!(matches!(r.push(&[0, 0, 0, 0]), Err(FrameError::Empty)));
        let mut r = FrameReader::new();
        r.push(&[0, 0, 0, 9, 0, 1]).expect("partial");
        assert_eq!(r.next_msg::<String>(), Ok(None));
        assert!(matches!(
            r.finish(),
            Err(FrameError::Truncated { have: 6, want: 13 })
        ));
        assert!(matches!(
            decode_body::<String>(&[7, 1]),
            Err(FrameError::Flags(7))
        ));
        assert!(matches!(
            decode_body::<String>(&[1, 0xff, 0xff]),
            Err(FrameError::Inflate { .. })
        ));
    }

    #[test]
    fn a_payload_that_is_no_message_keeps_postcards_error_as_source() {
        let err = decode_body::<String>(&[0, 5, b'a']).expect_err("string cut short");
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<postcard::Error>().is_some(),
            "{source}"
        );
    }

    #[test]
    fn inflating_never_reserves_past_the_limit() {
        let zeros = vec![0u8; FRAME_INFLATED_BYTES_MAX];
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).expect("deflate");
        let out = inflate_bounded(&enc.finish().expect("finish")).expect("exactly the limit");
        assert_eq!(out.len(), FRAME_INFLATED_BYTES_MAX);
        assert!(
            out.capacity() <= FRAME_INFLATED_BYTES_MAX,
            "{}",
            out.capacity()
        );
    }

    #[test]
    fn a_deflate_bomb_is_refused() {
        let zeros = vec![0u8; FRAME_INFLATED_BYTES_MAX + 10];
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).expect("deflate");
        let mut body = vec![FLAG_DEFLATE];
        body.extend(enc.finish().expect("finish"));
        assert!(body.len() < FRAME_BYTES_MAX);
        assert!(matches!(
            decode_body::<Vec<u8>>(&body),
            Err(FrameError::Inflate { .. })
        ));
    }
}
