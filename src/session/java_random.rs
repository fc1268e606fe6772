//! `java.util.Random`, bit for bit.
//!
//! ZooKeeper derives a session's password from `new Random(sessionId ^ secret)`, and
//! clients of a real ZooKeeper hold passwords made that way: to accept a session moved
//! from (or checked against) ZooKeeper, and for our passwords to be the ones ZooKeeper
//! would give, the generator must be Java's 48-bit LCG exactly.

const MULTIPLIER: i64 = 0x5DEECE66D;
const ADDEND: i64 = 0xB;
const MASK: i64 = (1 << 48) - 1;

/// A `java.util.Random` with its seed, producing the same sequence as the JVM.
#[derive(Debug, Clone)]
pub struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    /// `new Random(seed)`: the seed is scrambled with the multiplier and cut to 48 bits.
    pub fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed ^ MULTIPLIER) & MASK,
        }
    }

    /// `next(bits)`: advances the LCG and returns its top `bits` bits (1..=32).
    fn next(&mut self, bits: u32) -> i32 {
        self.seed = self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND) & MASK;
        // `(int)(seed >>> (48 - bits))`: the seed is non-negative, so >> is >>>.
        (self.seed >> (48 - bits)) as i32
    }

    /// `nextInt()`.
    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// `nextLong()`: two ints, the first as the high half (added, not or-ed, as Java).
    pub fn next_long(&mut self) -> i64 {
        let hi = i64::from(self.next(32));
        let lo = i64::from(self.next(32));
        (hi << 32).wrapping_add(lo)
    }

    /// `nextBytes(bytes)`: one `nextInt()` per 4 bytes, least significant byte first;
    /// the unused bytes of the last int are dropped.
    pub fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let rnd = self.next_int().to_le_bytes();
            chunk.copy_from_slice(&rnd[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Reference values printed by a JVM (OpenJDK 17): see the session module tests
    // for the program.
    #[test]
    fn next_int_and_long_match_jvm() {
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_int(), -1170105035);
        assert_eq!(r.next_int(), 234785527);
        assert_eq!(r.next_long(), -5843495416241995736);
    }

    #[test]
    fn next_bytes_partial_int_matches_jvm() {
        let mut r = JavaRandom::new(42);
        let mut b = [0u8; 7];
        r.next_bytes(&mut b);
        assert_eq!(hex(&b), "359d41baf78afe");
    }
}
