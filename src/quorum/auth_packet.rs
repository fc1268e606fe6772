//! `QuorumAuthPacket`, the record of ZooKeeper's quorum SASL exchange
//! (`quorum.auth.enableSasl`): `long magic; int status; buffer token`, sent back to back
//! before anything else on a learner's quorum connection and after the initial message
//! on an election connection (`SaslQuorumAuthLearner` / `SaslQuorumAuthServer`).
//!
//! The magic tells an authenticating peer from one that is not: a server that does not
//! require SASL peeks at the first eight bytes and lets a connection that does not start
//! with it through (`QuorumAuth.nextPacketIsAuth`).

use bytes::{BufMut, BytesMut};

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER` (`-0xa0dbcafecafe1234L` in Java, which wraps).
pub const QUORUM_AUTH_MAGIC: i64 = 0x5f24_3501_3501_edcc;

/// The longest token accepted: a DIGEST-MD5 response is at most 4096 bytes (the JDK's
/// limit); anything longer is not an exchange we take part in.
pub const MAX_TOKEN: usize = 4096;

/// `QuorumAuth.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStatus {
    InProgress,
    Success,
    Error,
}

impl AuthStatus {
    pub fn code(self) -> i32 {
        match self {
            AuthStatus::InProgress => 0,
            AuthStatus::Success => 1,
            AuthStatus::Error => -1,
        }
    }

    /// Unknown codes are errors, as `Status.getStatus` makes them.
    pub fn from_code(c: i32) -> AuthStatus {
        match c {
            0 => AuthStatus::InProgress,
            1 => AuthStatus::Success,
            _ => AuthStatus::Error,
        }
    }
}

/// One packet of the exchange. `token: None` is jute's null buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthPacket {
    pub magic: i64,
    pub status: AuthStatus,
    pub token: Option<Vec<u8>>,
}

impl QuorumAuthPacket {
    /// `QuorumAuth.createPacket`.
    pub fn new(status: AuthStatus, token: Option<Vec<u8>>) -> QuorumAuthPacket {
        QuorumAuthPacket {
            magic: QUORUM_AUTH_MAGIC,
            status,
            token,
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_i64(self.magic);
        out.put_i32(self.status.code());
        match &self.token {
            None => out.put_i32(-1),
            Some(t) => {
                out.put_i32(t.len() as i32);
                out.put_slice(t);
            }
        }
    }

    /// One packet from the front of `buf`: `Ok(None)` until it is all there, with the
    /// bytes it used. A token longer than [`MAX_TOKEN`] or a negative length other than
    /// -1 is an error before anything is allocated.
    pub fn decode(buf: &[u8]) -> Result<Option<(QuorumAuthPacket, usize)>, String> {
        if buf.len() < 16 {
            return Ok(None);
        }
        let magic = i64::from_be_bytes(buf[0..8].try_into().unwrap_or_default());
        let status = i32::from_be_bytes(buf[8..12].try_into().unwrap_or_default());
        let len = i32::from_be_bytes(buf[12..16].try_into().unwrap_or_default());
        let token = match len {
            -1 => None,
            n if n < 0 => return Err(format!("quorum auth token length {n}")),
            n if n as usize > MAX_TOKEN => {
                return Err(format!(
                    "quorum auth token of {n} bytes (at most {MAX_TOKEN})"
                ))
            }
            n => {
                let end = 16 + n as usize;
                if buf.len() < end {
                    return Ok(None);
                }
                Some(buf[16..end].to_vec())
            }
        };
        let used = 16 + token.as_ref().map_or(0, Vec::len);
        Ok(Some((
            QuorumAuthPacket {
                magic,
                status: AuthStatus::from_code(status),
                token,
            },
            used,
        )))
    }
}

/// `QuorumAuth.nextPacketIsAuth` on the first eight bytes of a connection.
pub fn starts_with_auth(first: &[u8; 8]) -> bool {
    i64::from_be_bytes(*first) == QUORUM_AUTH_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_is_javas_wrapped_negative_constant() {
        assert_eq!(QUORUM_AUTH_MAGIC, 6855662812065295820);
        assert_eq!(
            QUORUM_AUTH_MAGIC,
            0xa0db_cafe_cafe_1234u64.wrapping_neg() as i64
        );
    }

    #[test]
    fn round_trip_and_partial_input() {
        for p in [
            QuorumAuthPacket::new(AuthStatus::InProgress, Some(Vec::new())),
            QuorumAuthPacket::new(AuthStatus::Success, Some(b"rspauth=00".to_vec())),
            QuorumAuthPacket::new(AuthStatus::Error, None),
        ] {
            let mut b = BytesMut::new();
            p.encode(&mut b);
            for cut in 0..b.len() {
                assert_eq!(QuorumAuthPacket::decode(&b[..cut]).unwrap(), None);
            }
            let (q, used) = QuorumAuthPacket::decode(&b).unwrap().unwrap();
            assert_eq!((q, used), (p, b.len()));
            let first: [u8; 8] = b[..8].try_into().unwrap();
            assert!(starts_with_auth(&first));
        }
    }

    #[test]
    fn hostile_lengths_are_refused_unallocated() {
        let mut b = BytesMut::new();
        b.put_i64(QUORUM_AUTH_MAGIC);
        b.put_i32(0);
        b.put_i32(i32::MAX);
        assert!(QuorumAuthPacket::decode(&b).is_err());
        let mut b = BytesMut::new();
        b.put_i64(QUORUM_AUTH_MAGIC);
        b.put_i32(0);
        b.put_i32(-7);
        assert!(QuorumAuthPacket::decode(&b).is_err());
        // A plain learner's first packet does not look like auth.
        assert!(!starts_with_auth(&[0, 0, 0, 11, 0, 0, 0, 0]));
    }
}
