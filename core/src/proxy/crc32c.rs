//! CRC-32C (Castagnoli), the checksum of the PROXY v2 `PP2_TYPE_CRC32C` TLV (spec §2.2.3).
//!
//! Reflected polynomial `0x82F63B78`, initial value and final XOR `0xFFFF_FFFF` (the
//! iSCSI / SCTP CRC, RFC 3720 §B.4). Byte-at-a-time with a table built at compile time:
//! a PROXY header is at most 64 KiB and is checked once per connection.

/// The bit-reversed Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLE[b]` is the CRC register after shifting the byte `b` through an empty register.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut reg = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            reg = if reg & 1 == 1 { (reg >> 1) ^ POLY } else { reg >> 1 };
            bit += 1;
        }
        table[byte] = reg;
        byte += 1;
    }
    table
}

/// A running CRC-32C over several slices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc32c(u32);

impl Crc32c {
    /// An empty checksum.
    pub(crate) const fn new() -> Self {
        Crc32c(0xFFFF_FFFF)
    }

    /// Feeds `bytes`.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut reg = self.0;
        for &b in bytes {
            reg = (reg >> 8) ^ TABLE[((reg ^ u32::from(b)) & 0xFF) as usize];
        }
        self.0 = reg;
    }

    /// The checksum of everything fed so far.
    pub(crate) const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

/// The CRC-32C of one slice.
#[cfg(test)]
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(bytes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogued check value of CRC-32C (the CRC of the ASCII digits 1 to 9).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 §B.4 test vectors: 32 bytes of zeros, of 0xFF, ascending, descending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    #[test]
    fn split_updates_match_one_shot() {
        let data = b"The quick brown fox jumps over the lazy dog";
        for cut in 0..=data.len() {
            let mut c = Crc32c::new();
            c.update(&data[..cut]);
            c.update(&data[cut..]);
            assert_eq!(c.finish(), crc32c(data));
        }
    }
}
