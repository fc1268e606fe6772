//! Length framing: every message is a 4-byte big-endian length then that many bytes.
//! A length that is negative or above `jute.maxbuffer` is refused before any byte of
//! the body is buffered, as ZooKeeper's `NIOServerCnxn.readLength` does.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} outside 0..={max} (jute.maxbuffer)")]
    BadLength { len: i32, max: usize },
}

/// Takes the next whole frame's body out of `buf`, or `Ok(None)` if more bytes are
/// needed.
pub fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes(buf[..4].try_into().unwrap());
    if len < 0 || len as usize > max {
        return Err(FrameError::BadLength { len, max });
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        // Reserve for the rest of this frame only; the length is already bounded.
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// The four-letter words ZooKeeper answers when they arrive as a connection's first
/// four bytes instead of a length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "conf", "cons", "envi", "mntr", "wchs", "wchc", "wchp", "dump", "isro",
    "dirs", "crst", "srst", "gtmk", "stmk",
];

/// The four-letter word that `first` (a connection's first four bytes) spells, if any.
pub fn four_letter_word(first: &[u8]) -> Option<&'static str> {
    let w = first.get(..4)?;
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|cmd| cmd.as_bytes() == w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_more() {
        let mut b = BytesMut::new();
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(b"ab");
        assert_eq!(next_frame(&mut b, 100).unwrap(), None);
        b.extend_from_slice(b"c");
        b.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(&next_frame(&mut b, 100).unwrap().unwrap()[..], b"abc");
        assert_eq!(&next_frame(&mut b, 100).unwrap().unwrap()[..], b"");
        assert!(b.is_empty());
    }

    #[test]
    fn refuses_oversized_and_negative_lengths() {
        let mut b = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            next_frame(&mut b, 100),
            Err(FrameError::BadLength { len: 101, max: 100 })
        );
        let mut b = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(next_frame(&mut b, 100).is_err());
    }

    #[test]
    fn recognises_four_letter_words() {
        assert_eq!(four_letter_word(b"ruok"), Some("ruok"));
        assert_eq!(four_letter_word(b"mntr\n"), Some("mntr"));
        assert_eq!(four_letter_word(&[0, 0, 0, 44]), None);
        assert_eq!(four_letter_word(b"ru"), None);
    }
}
