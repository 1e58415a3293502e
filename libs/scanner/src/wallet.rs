//! Bitcoin bech32/bech32m checksums (BIP 173, BIP 350), so random "bc1..." identifiers are not
//! mistaken for addresses.

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];
const BECH32_CONSTANT: u32 = 1;
const BECH32M_CONSTANT: u32 = 0x2bc8_30a3;

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    let mut checksum: u32 = 1;
    for value in values {
        let top = checksum >> 25;
        checksum = ((checksum & 0x01ff_ffff) << 5) ^ u32::from(value);
        for (i, generator) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                checksum ^= generator;
            }
        }
    }
    checksum
}

/// True for a mainnet ("bc") address whose bech32 or bech32m checksum is valid.
pub(crate) fn is_bitcoin_bech32(candidate: &str) -> bool {
    let lower = candidate.to_ascii_lowercase();
    let Some(("bc", data)) = lower.rsplit_once('1') else {
        return false;
    };
    let Some(values) = data
        .bytes()
        .map(|c| {
            CHARSET
                .iter()
                .position(|&d| d == c)
                .and_then(|p| u8::try_from(p).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let hrp = b"bc";
    let expanded = hrp
        .iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31))
        .chain(values);
    matches!(polymod(expanded), BECH32_CONSTANT | BECH32M_CONSTANT)
}

#[cfg(test)]
mod tests {
    use super::is_bitcoin_bech32;

    #[test]
    fn bip_test_vectors() {
        assert!(is_bitcoin_bech32(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        ));
        assert!(is_bitcoin_bech32(
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"
        ));
        assert!(is_bitcoin_bech32(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
        ));
        // One character changed breaks the checksum.
        assert!(!is_bitcoin_bech32(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"
        ));
        assert!(!is_bitcoin_bech32(
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
        ));
    }
}
