//! Random secrets, their text form and their stored hashes: the pieces every credential in
//! [`super`] is made of (API keys, mentor webhook tokens, invite codes).
//!
//! Generators take their random bytes as an argument, so the formats are tested on the host with
//! fixed bytes; [`random_bytes`] is the one place that asks the platform for entropy
//! (`crypto.getRandomValues` in the Worker, the OS on the host).

use subtle::ConstantTimeEq;

/// `N` bytes from the platform's cryptographic generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// RFC 4648 base32, lower case, no padding. Chosen for secrets people copy: no `+ / =` to
/// escape in URLs or shells, no mixed case to misread, and it survives a double-click select.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `s` could be [`base32`] output of exactly `len` characters.
pub fn is_base32(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| BASE32.contains(&b))
}

/// Hex SHA-256 of a credential, as stored in D1.
///
/// A fast hash is the right one here, unlike for passwords: every credential hashed with this
/// carries at least 59 bits of uniform randomness (API keys and mentor tokens 256), so there is
/// no dictionary to try and a slow KDF would buy nothing against brute force, while costing
/// milliseconds of CPU on every request of a Worker whose CPU time is capped.
pub fn sha256_hex(credential: &str) -> String {
    crate::store::digest::sha256_hex(credential.as_bytes())
}

/// Constant-time comparison of a presented credential's hash with a stored one. Both are hex of
/// the same length when they come from [`sha256_hex`]; anything else is a mismatch.
pub fn hash_matches(presented_hash: &str, stored_hash: &str) -> bool {
    presented_hash.len() == stored_hash.len() && bool::from(presented_hash.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        // RFC 4648 §10, lower-cased and without padding.
        for (input, expected) in
            [("", ""), ("f", "my"), ("fo", "mzxq"), ("foo", "mzxw6"), ("foob", "mzxw6yq"), ("fooba", "mzxw6ytb"), ("foobar", "mzxw6ytboi")]
        {
            assert_eq!(base32(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base32(&[0u8; 32]).len(), 52);
        assert_eq!(base32(&[0xff; 5]), "77777777");
    }

    #[test]
    fn base32_shape_is_checked_exactly() {
        assert!(is_base32("abc234", 6));
        assert!(!is_base32("abc234", 7));
        assert!(!is_base32("ABC234", 6));
        assert!(!is_base32("abc018", 6));
    }

    #[test]
    fn hashes_compare_exactly() {
        let h = sha256_hex("r2d1_x");
        assert_eq!(h.len(), 64);
        assert!(hash_matches(&h, &sha256_hex("r2d1_x")));
        assert!(!hash_matches(&h, &sha256_hex("r2d1_y")));
        assert!(!hash_matches(&h, &h[..63]));
    }

    #[test]
    fn random_bytes_are_not_constant() {
        let (a, b) = (random_bytes::<32>().unwrap(), random_bytes::<32>().unwrap());
        assert_ne!(a, b);
    }
}
