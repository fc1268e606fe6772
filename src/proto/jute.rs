//! Jute's binary encoding: big-endian `int`/`long`, one-byte `boolean`, length-prefixed
//! `buffer`/`ustring` (length -1 is null), count-prefixed `vector` (count -1 is null).
//!
//! Decoding never trusts a length: every length and count is checked against the bytes
//! that remain before anything is allocated, so a hostile frame cannot make us reserve
//! more memory than it actually sent.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} bytes at offset {offset}, {remaining} remain")]
    Truncated {
        offset: usize,
        needed: usize,
        remaining: usize,
    },
    #[error("negative length {0} where a value is required")]
    BadLength(i32),
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    #[error("bad multi header: {0}")]
    BadMulti(&'static str),
}

/// A cursor over one decoded frame.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// The bytes read since position `start` (an earlier `position()`).
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start.min(self.pos)..self.pos]
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length-prefixed byte run; `None` for jute's null (-1). Other negative lengths
    /// are refused.
    pub fn read_raw(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::BadLength(len));
        }
        Ok(Some(self.take(len as usize)?))
    }

    /// A vector's element count, checked against what remains (every element takes at
    /// least one byte), so the caller may reserve that many slots.
    pub fn read_count(&mut self) -> Result<Option<usize>, DecodeError> {
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(DecodeError::BadLength(n));
        }
        let n = n as usize;
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            });
        }
        Ok(Some(n))
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    /// The fewest bytes an encoding of this type takes (0 if unknown). A vector's count
    /// times this must fit in the bytes that remain, so a decoder never reserves more
    /// elements than the frame can hold: without it a count of small-encoded, large
    /// decoded elements (a 12-byte ACL is a 56-byte `Acl`) reserved ~50x the frame.
    const MIN_ENCODED_LEN: usize = 0;

    fn encode(&self, w: &mut BytesMut);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer as one value.
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(buf))
    }

    fn to_bytes(&self) -> BytesMut {
        let mut w = BytesMut::new();
        self.encode(&mut w);
        w
    }
}

/// The empty body (closeSession, ping, whoAmI).
impl Jute for () {
    fn encode(&self, _: &mut BytesMut) {}
    fn decode(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl Jute for i32 {
    const MIN_ENCODED_LEN: usize = 4;
    fn encode(&self, w: &mut BytesMut) {
        w.put_i32(*self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    const MIN_ENCODED_LEN: usize = 8;
    fn encode(&self, w: &mut BytesMut) {
        w.put_i64(*self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    const MIN_ENCODED_LEN: usize = 1;
    fn encode(&self, w: &mut BytesMut) {
        w.put_u8(*self as u8);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// `ustring`. Null decodes as the empty string (ZooKeeper's server treats a null path
/// as invalid anyway, and no reply we send carries a null string).
impl Jute for String {
    const MIN_ENCODED_LEN: usize = 4;
    fn encode(&self, w: &mut BytesMut) {
        w.put_i32(self.len() as i32);
        w.put_slice(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_raw()? {
            None => Ok(String::new()),
            Some(b) => std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| DecodeError::BadUtf8),
        }
    }
}

/// The storage behind [`null_buffer`]: only its address matters.
static NULL_BUFFER: [u8; 1] = [0];

/// Jute's null `buffer` (length -1), which ZooKeeper keeps apart from an empty one: a
/// znode created with null data answers getData with null. It is an empty `Bytes` that
/// points at a private static, so it survives clones and is told apart by address;
/// every other empty buffer is a real empty one.
pub fn null_buffer() -> Bytes {
    Bytes::from_static(&NULL_BUFFER[..0])
}

/// [`null_buffer`] as a slice: what `is_null_buffer` recognises.
pub fn null_slice() -> &'static [u8] {
    &NULL_BUFFER[..0]
}

/// Whether `b` is [`null_buffer`] (or a clone of it).
pub fn is_null_buffer(b: &[u8]) -> bool {
    b.is_empty() && std::ptr::eq(b.as_ptr(), NULL_BUFFER.as_ptr())
}

/// Encodes `b` as a jute `buffer` ([`null_buffer`] as -1).
pub fn put_buffer(w: &mut BytesMut, b: &[u8]) {
    if is_null_buffer(b) {
        w.put_i32(-1);
        return;
    }
    w.put_i32(b.len() as i32);
    w.put_slice(b);
}

/// `buffer`. Decoding copies: a znode's data must not pin the connection's read buffer.
impl Jute for Bytes {
    const MIN_ENCODED_LEN: usize = 4;
    fn encode(&self, w: &mut BytesMut) {
        put_buffer(w, self)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.read_raw()? {
            None => null_buffer(),
            Some(b) => Bytes::copy_from_slice(b),
        })
    }
}

/// `vector<T>`. Null decodes as empty.
impl<T: Jute> Jute for Vec<T> {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode(&self, w: &mut BytesMut) {
        w.put_i32(self.len() as i32);
        for v in self {
            v.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_count()?.unwrap_or(0);
        let needed = n.saturating_mul(T::MIN_ENCODED_LEN);
        if needed > r.remaining() {
            return Err(DecodeError::Truncated {
                offset: r.pos,
                needed,
                remaining: r.remaining(),
            });
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(v)
    }
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $crate::proto::jute::Jute for $name {
            const MIN_ENCODED_LEN: usize =
                0 $(+ <$ty as $crate::proto::jute::Jute>::MIN_ENCODED_LEN)*;

            fn encode(&self, _w: &mut bytes::BytesMut) {
                $(self.$field.encode(_w);)*
            }
            fn decode(_r: &mut $crate::proto::jute::Reader<'_>) -> Result<Self, $crate::proto::jute::DecodeError> {
                Ok(Self { $($field: $crate::proto::jute::Jute::decode(_r)?),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = BytesMut::new();
        7i32.encode(&mut w);
        (-9i64).encode(&mut w);
        true.encode(&mut w);
        "héllo".to_string().encode(&mut w);
        Bytes::from_static(b"\x00\x01").encode(&mut w);
        vec!["a".to_string(), "bc".to_string()].encode(&mut w);
        let mut r = Reader::new(&w);
        assert_eq!(i32::decode(&mut r).unwrap(), 7);
        assert_eq!(i64::decode(&mut r).unwrap(), -9);
        assert!(bool::decode(&mut r).unwrap());
        assert_eq!(String::decode(&mut r).unwrap(), "héllo");
        assert_eq!(&Bytes::decode(&mut r).unwrap()[..], b"\x00\x01");
        assert_eq!(Vec::<String>::decode(&mut r).unwrap(), vec!["a", "bc"]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn null_values_decode_empty() {
        let buf = (-1i32).to_be_bytes();
        assert_eq!(String::from_bytes(&buf).unwrap(), "");
        assert!(Bytes::from_bytes(&buf).unwrap().is_empty());
        assert!(Vec::<i32>::from_bytes(&buf).unwrap().is_empty());
    }

    #[test]
    fn a_null_buffer_stays_null_and_an_empty_one_empty() {
        let null = Bytes::from_bytes(&(-1i32).to_be_bytes()).unwrap();
        assert!(is_null_buffer(&null));
        assert!(is_null_buffer(&null.clone()));
        assert_eq!(&null.to_bytes()[..], &(-1i32).to_be_bytes());
        let empty = Bytes::from_bytes(&0i32.to_be_bytes()).unwrap();
        assert!(!is_null_buffer(&empty));
        assert!(!is_null_buffer(&Bytes::new()));
        assert_eq!(&empty.to_bytes()[..], &0i32.to_be_bytes());
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        // A vector claiming two billion elements in an 8-byte frame.
        let mut buf = i32::MAX.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0; 4]);
        assert!(matches!(
            Vec::<String>::from_bytes(&buf),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            String::from_bytes(&(-5i32).to_be_bytes()),
            Err(DecodeError::BadLength(-5))
        ));
        assert!(matches!(
            Bytes::from_bytes(&100i32.to_be_bytes()),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            String::from_bytes(&[0, 0, 0, 2, 0xff, 0xfe]),
            Err(DecodeError::BadUtf8)
        );
    }

    /// Found by the `client_request` fuzz target: a setACL body whose ACL count equals
    /// the bytes left reserved 56 bytes (an `Acl`) per byte of the frame. A count is now
    /// checked against the smallest encoding of its elements (12 bytes for an ACL), so
    /// what is reserved stays a small multiple of what was sent.
    #[test]
    fn a_count_must_fit_the_smallest_encoding_of_its_elements() {
        use crate::proto::{Acl, Id};
        assert_eq!(<Acl as Jute>::MIN_ENCODED_LEN, 12);
        assert_eq!(<Id as Jute>::MIN_ENCODED_LEN, 8);
        // 100 ACLs claimed in 100 bytes: refused before anything is reserved.
        let mut buf = 100i32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0; 100]);
        assert!(matches!(
            Vec::<Acl>::from_bytes(&buf),
            Err(DecodeError::Truncated { needed: 1200, .. })
        ));
        // 8 of them fit in 96 bytes (all-zero ACLs: perms 0, empty strings).
        let mut buf = 8i32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0; 96]);
        assert_eq!(Vec::<Acl>::from_bytes(&buf).unwrap().len(), 8);
    }
}
