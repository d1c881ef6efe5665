//! Feeders: ways of cutting the same bytes into the pieces a socket might deliver.
//!
//! An incremental parser must not care where `read(2)` happened to split the stream, so
//! every case is replayed once per feeder and all outcomes must be identical. The set
//! mirrors gunicorn's own harness (`tests/treq.py`): all at once, line by line, byte by
//! byte, random chunks, and the first byte then the rest.

use std::fmt;

/// One way of cutting the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feeder {
    /// Everything in one `receive`.
    Whole,
    /// One `receive` per line, each ending just after its LF (a bare CR does not split).
    Lines,
    /// One `receive` per byte.
    Bytes,
    /// Chunks of pseudo-random length (1 to about a sixth of the input), from a seed.
    Random(u64),
    /// The first byte, then all the rest.
    FirstByte,
}

/// The seeds of the random feeders.
pub const SEEDS: [u64; 4] = [1, 2, 3, 0x00C0_FFEE];

/// Every feeder, [`Feeder::Whole`] first (it is the reference the others are compared to).
pub fn all() -> Vec<Feeder> {
    let mut feeders = vec![Feeder::Whole, Feeder::Lines, Feeder::Bytes];
    feeders.extend(SEEDS.iter().map(|&s| Feeder::Random(s)));
    feeders.push(Feeder::FirstByte);
    feeders
}

impl fmt::Display for Feeder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feeder::Whole => f.write_str("whole"),
            Feeder::Lines => f.write_str("lines"),
            Feeder::Bytes => f.write_str("bytes"),
            Feeder::Random(seed) => write!(f, "random(seed={seed})"),
            Feeder::FirstByte => f.write_str("first-byte"),
        }
    }
}

impl Feeder {
    /// Cuts `data` into non-empty pieces that concatenate back to `data`.
    pub fn chunks<'a>(&self, data: &'a [u8]) -> Vec<&'a [u8]> {
        if data.is_empty() {
            return Vec::new();
        }
        match *self {
            Feeder::Whole => vec![data],
            Feeder::Lines => data.split_inclusive(|&b| b == b'\n').collect(),
            Feeder::Bytes => data.chunks(1).collect(),
            Feeder::FirstByte => {
                let (first, rest) = data.split_at(1);
                if rest.is_empty() { vec![first] } else { vec![first, rest] }
            }
            Feeder::Random(seed) => {
                let mut rng = SplitMix64::new(seed);
                let max = (data.len() / 6).max(2) as u64;
                let mut out = Vec::new();
                let mut rest = data;
                while !rest.is_empty() {
                    let take = (1 + rng.next_u64() % max) as usize;
                    let (piece, tail) = rest.split_at(take.min(rest.len()));
                    out.push(piece);
                    rest = tail;
                }
                out
            }
        }
    }
}

/// A tiny deterministic PRNG (SplitMix64, Steele et al. 2014): same seed, same chunks,
/// on every platform and Rust version.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feeder_reassembles_the_input() {
        let data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\rmore\nend";
        for feeder in all() {
            let chunks = feeder.chunks(data);
            assert!(chunks.iter().all(|c| !c.is_empty()), "{feeder}");
            assert_eq!(chunks.concat(), data.to_vec(), "{feeder}");
        }
        assert!(Feeder::Bytes.chunks(b"").is_empty());
        assert_eq!(Feeder::FirstByte.chunks(b"x"), vec![b"x".as_slice()]);
    }

    #[test]
    fn lines_split_after_lf_only() {
        let chunks = Feeder::Lines.chunks(b"a\r\nb\rc\n\nd");
        assert_eq!(chunks, vec![b"a\r\n".as_slice(), b"b\rc\n", b"\n", b"d"]);
    }

    #[test]
    fn random_chunks_are_deterministic_and_vary_by_seed() {
        let data = [7u8; 300];
        let a: Vec<usize> = Feeder::Random(1).chunks(&data).iter().map(|c| c.len()).collect();
        let b: Vec<usize> = Feeder::Random(1).chunks(&data).iter().map(|c| c.len()).collect();
        let c: Vec<usize> = Feeder::Random(2).chunks(&data).iter().map(|c| c.len()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() > 3);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 from the reference implementation.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
