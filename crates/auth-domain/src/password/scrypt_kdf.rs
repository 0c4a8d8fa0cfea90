//! Medusa's password hashes: the scrypt-kdf format, read so that a store moving from Medusa keeps
//! its customers' passwords (each is replaced by a bcrypt hash at the first login).
//!
//! Medusa's emailpass provider hashes with the npm package `scrypt-kdf` 2.x (`kdf(password,
//! {logN: 15, r: 8, p: 1})` unless the store configured `hashConfig`) and stores the result in
//! `provider_identity.provider_metadata.password` as standard base64 with padding: 128
//! characters for the 96 bytes of Colin Percival's (Tarsnap's) scrypt header:
//!
//! | bytes  | content                                                              |
//! |--------|----------------------------------------------------------------------|
//! | 0..6   | ASCII `scrypt` (so every such hash starts with `c2NyeXB0`)           |
//! | 6      | format version, 0                                                    |
//! | 7      | logN (N = 2^logN)                                                    |
//! | 8..12  | r, u32 big-endian                                                    |
//! | 12..16 | p, u32 big-endian                                                    |
//! | 16..48 | salt (32 random bytes)                                               |
//! | 48..64 | checksum: the first 16 bytes of SHA-256(bytes 0..48)                 |
//! | 64..96 | HMAC-SHA256(key = bytes 32..64 of dk, message = bytes 0..64)         |
//!
//! where dk = scrypt(password, salt, N, r, p, 64 bytes) and the password is the UTF-8 of the
//! string Medusa received (no normalisation). Verification (as `scrypt-kdf`'s `verify`):
//! the checksum must match, then the HMAC is recomputed from the password and compared in
//! constant time.
//!
//! ## The cost a stored hash may ask for
//! The parameters come from the stored hash, so a hash could ask a login for any amount of
//! memory (128·N·r bytes) and work (N·r·p). A hash is refused (read as corrupt) unless
//! `1 <= logN <= 20` ([`MAX_LOG_N`]), `128·N·r <= 128 MiB` ([`MAX_MEMORY_BYTES`]) and
//! `N·r·p <= 2^20` ([`MAX_WORK`]): four times Medusa's default (logN 15, r 8, p 1: 32 MiB
//! and 2^18) in both, which also admits the scrypt crate's recommendation (logN 17, r 8, p 1).
//! (With scrypt's own rule `N < 2^(16·r)`, the memory bound makes logN 19, at r 2, the highest
//! that passes; the logN bound refuses absurd values before any arithmetic.) These are checked
//! when the hash is read, before any scrypt work. A store that configured a higher
//! `hashConfig` has to reset those passwords.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The base64 of `scrypt`: how every hash of the format begins.
pub const PREFIX: &str = "c2NyeXB0";
/// The length of a hash as stored: base64 of 96 bytes.
pub const ENCODED_LEN: usize = 128;
const DECODED_LEN: usize = 96;
/// The highest logN accepted.
pub const MAX_LOG_N: u8 = 20;
/// The most memory (128·N·r bytes) a verification may take.
pub const MAX_MEMORY_BYTES: u64 = 128 << 20;
/// The most work (N·r·p, in units of scrypt's BlockMix of r) a verification may take.
pub const MAX_WORK: u64 = 1 << 20;

/// Why a stored value is not a hash of the format that login can check. Never holds any of the
/// hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not 128 characters of standard base64.
    Encoding,
    /// The decoded bytes do not start with `scrypt`.
    Header,
    /// A format version other than 0.
    Version(u8),
    /// The checksum of the parameters and salt does not match: corrupt or truncated.
    Checksum,
    /// Parameters scrypt refuses, or above the bounds in the module documentation.
    Cost { log_n: u8, r: u32, p: u32 },
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::Encoding => write!(f, "not {ENCODED_LEN} characters of standard base64"),
            Unreadable::Header => f.write_str("no `scrypt` header"),
            Unreadable::Version(v) => write!(f, "format version {v} (only 0 exists)"),
            Unreadable::Checksum => f.write_str("the header checksum does not match (corrupt or truncated)"),
            Unreadable::Cost { log_n, r, p } => write!(
                f,
                "cost logN {log_n}, r {r}, p {p} is refused (at most logN {MAX_LOG_N}, {} MiB and N·r·p 2^{})",
                MAX_MEMORY_BYTES >> 20,
                MAX_WORK.trailing_zeros()
            ),
        }
    }
}

/// A parsed hash: its header checked, its cost within the bounds.
pub struct ScryptKdfHash {
    bytes: [u8; DECODED_LEN],
    params: scrypt::Params,
}

impl fmt::Debug for ScryptKdfHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (log_n, r, p) = self.cost();
        f.debug_struct("ScryptKdfHash").field("log_n", &log_n).field("r", &r).field("p", &p).finish_non_exhaustive()
    }
}

/// Whether `stored` claims to be of this format (it may still be corrupt).
pub fn is_candidate(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

impl ScryptKdfHash {
    /// Reads a hash as Medusa stores it. Cheap: no scrypt is run.
    pub fn parse(stored: &str) -> Result<ScryptKdfHash, Unreadable> {
        if stored.len() != ENCODED_LEN {
            return Err(Unreadable::Encoding);
        }
        let mut bytes = [0u8; DECODED_LEN];
        match base64::engine::general_purpose::STANDARD.decode_slice(stored, &mut bytes) {
            Ok(DECODED_LEN) => {}
            _ => return Err(Unreadable::Encoding),
        }
        if &bytes[..6] != b"scrypt" {
            return Err(Unreadable::Header);
        }
        if bytes[6] != 0 {
            return Err(Unreadable::Version(bytes[6]));
        }
        let checksum = Sha256::digest(&bytes[..48]);
        // Not secret: anyone holding the hash can compute it.
        if checksum[..16] != bytes[48..64] {
            return Err(Unreadable::Checksum);
        }
        let log_n = bytes[7];
        let r = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let p = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let refused = Unreadable::Cost { log_n, r, p };
        if !(1..=MAX_LOG_N).contains(&log_n) || r == 0 || p == 0 {
            return Err(refused);
        }
        let n = 1u128 << log_n;
        if 128 * n * u128::from(r) > u128::from(MAX_MEMORY_BYTES)
            || n * u128::from(r) * u128::from(p) > u128::from(MAX_WORK)
        {
            return Err(refused);
        }
        let params = scrypt::Params::new(log_n, r, p, 64).map_err(|_| refused)?;
        Ok(ScryptKdfHash { bytes, params })
    }

    /// (logN, r, p).
    pub fn cost(&self) -> (u8, u32, u32) {
        (self.params.log_n(), self.params.r(), self.params.p())
    }

    /// Whether `password` (the bytes Medusa hashed: UTF-8 as received) is the one hashed. The
    /// HMAC is compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut dk = [0u8; 64];
        if scrypt::scrypt(password, &self.bytes[16..48], &self.params, &mut dk).is_err() {
            return false;
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&dk[32..]) else { return false };
        dk.fill(0);
        mac.update(&self.bytes[..64]);
        mac.verify_slice(&self.bytes[64..]).is_ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The accounts of `medusa-2.21.2-auth-tables.md` with their hashes from
    /// `medusa-2.21.2-auth-tables.sql` (`provider_identity.provider_metadata.password`), a real
    /// Medusa 2.21.2 backend: (entity_id, password, hash). Copied here: a checkout of this
    /// repository alone does not have the reference files.
    pub(crate) const MEDUSA_ACCOUNTS: [(&str, &str, &str); 5] = [
        (
            "admin@example.com",
            "supersecret",
            "c2NyeXB0AA8AAAAIAAAAAVuUq1iX/f1QJgF/Y985aO8hsUsm6XOaHG60qaf4RfCNUk/cqCK2Vq0hp+1P/cPRdkgSELMspSxrqet8bO9v5Aap6KQs+xDVY4ddNlYOjiQ+",
        ),
        (
            "cdae35ok5rcwg@example.com",
            "benchpass1",
            "c2NyeXB0AA8AAAAIAAAAAW2pFvbq+wwIaCt5xb3mHQTJIEzwHg6Q7NsnmvNqx5oEcTHpcUsBE94L7kfIJpRT4XuFjr4XSBS3WLmvKC8Jnt5P4jONtK7ww1GTaAvZpS+g",
        ),
        (
            "ann@example.com",
            "ann-medusa-pass-1",
            "c2NyeXB0AA8AAAAIAAAAAeRxBfIUFVA8zt9DXMebM5y5/AtDnUS4BDNLWZTJ6O7ecI6wW4yIKsDbexX8aroDlwFmstR3zEZiPwr0fRdkuDXBqcgY/5bYI5xMo9vZsbv0",
        ),
        (
            "Bob.Smith@Example.com",
            "bob medusa pass 2",
            "c2NyeXB0AA8AAAAIAAAAAczKmHPcjwvMgh6XyuDyZAhYE2cA2zmbHpXm0tLbNNOIQWY1CxsktuhZ7yoHgj/dzY29TIC51p0eUCGSgdqB5EBKiwWs0gsYmZeeur6Dtbcl",
        ),
        (
            "carol@example.com",
            "carol-pass-3",
            "c2NyeXB0AA8AAAAIAAAAARDjkNcexRYKA4U220xGtNCy9ERNLUulTUWT62qnIz3ZTReXq5hywwrbI+6eH8vbjz9w5dUUrkQkxtJakUGsRvtnPzYiMPYaMCUItI4EyyG9",
        ),
    ];

    fn decode(stored: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(stored).unwrap()
    }

    fn encode(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A hash written as `scrypt-kdf`'s `kdf` writes it, at any parameters (the tests' own
    /// implementation of the writer).
    pub(crate) fn make(password: &[u8], log_n: u8, r: u32, p: u32, salt: [u8; 32]) -> String {
        let mut bytes = [0u8; DECODED_LEN];
        bytes[..6].copy_from_slice(b"scrypt");
        bytes[7] = log_n;
        bytes[8..12].copy_from_slice(&r.to_be_bytes());
        bytes[12..16].copy_from_slice(&p.to_be_bytes());
        bytes[16..48].copy_from_slice(&salt);
        reseal(&mut bytes, password);
        encode(&bytes)
    }

    /// Recomputes the checksum and (when the cost is one scrypt accepts) the HMAC.
    fn reseal(bytes: &mut [u8; DECODED_LEN], password: &[u8]) {
        let checksum = Sha256::digest(&bytes[..48]);
        bytes[48..64].copy_from_slice(&checksum[..16]);
        let r = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        let p = u32::from_be_bytes(bytes[12..16].try_into().unwrap());
        if let Ok(params) = scrypt::Params::new(bytes[7], r, p, 64) {
            if bytes[7] <= 12 {
                let mut dk = [0u8; 64];
                scrypt::scrypt(password, &bytes[16..48], &params, &mut dk).unwrap();
                let mut mac = Hmac::<Sha256>::new_from_slice(&dk[32..]).unwrap();
                mac.update(&bytes[..64]);
                bytes[64..].copy_from_slice(&mac.finalize().into_bytes());
            }
        }
    }

    #[test]
    fn every_medusa_account_verifies_with_its_password_and_no_other() {
        for (email, password, stored) in MEDUSA_ACCOUNTS {
            assert!(is_candidate(stored), "{email}");
            let hash = ScryptKdfHash::parse(stored).expect(email);
            assert_eq!(hash.cost(), (15, 8, 1), "{email}: Medusa's default");
            let started = std::time::Instant::now();
            assert!(hash.verify(password.as_bytes()), "{email}");
            eprintln!("{email}: verified in {:?}", started.elapsed());
            assert!(!hash.verify(format!("{password}x").as_bytes()), "{email}");
        }
        // Each password against another account's hash.
        let hash = ScryptKdfHash::parse(MEDUSA_ACCOUNTS[0].2).unwrap();
        assert!(!hash.verify(MEDUSA_ACCOUNTS[1].1.as_bytes()));
        assert!(!hash.verify(b""));
        assert!(!hash.verify("SUPERSECRET".as_bytes()));
    }

    #[test]
    fn a_hash_written_here_verifies_like_medusas() {
        let stored = make("pässwörd".as_bytes(), 4, 8, 1, [7; 32]);
        assert_eq!(stored.len(), ENCODED_LEN);
        assert!(stored.starts_with(PREFIX));
        let hash = ScryptKdfHash::parse(&stored).unwrap();
        assert!(hash.verify("pässwörd".as_bytes()));
        assert!(!hash.verify("passwort".as_bytes()));
    }

    #[test]
    fn corrupt_values_are_refused_without_panic() {
        let stored = MEDUSA_ACCOUNTS[2].2;
        let bytes: [u8; DECODED_LEN] = decode(stored).try_into().unwrap();
        // Truncated, extended, empty, not base64, the URL-safe alphabet.
        let bad_values: [&str; 7] = [
            &stored[..127],
            &stored[..64],
            &stored[..8],
            "",
            &format!("{stored}=="),
            &format!("{}!", &stored[..127]),
            &stored.replace('/', "_").replace('+', "-"),
        ];
        for bad in bad_values {
            assert_eq!(ScryptKdfHash::parse(bad).unwrap_err(), Unreadable::Encoding, "{bad}");
        }
        // A bit flipped in each part before the HMAC: the checksum catches it.
        for at in [7, 9, 13, 20, 47, 50, 63] {
            let mut flipped = bytes;
            flipped[at] ^= 1;
            assert_eq!(ScryptKdfHash::parse(&encode(&flipped)).unwrap_err(), Unreadable::Checksum, "byte {at}");
        }
        let mut header = bytes;
        header[0] = b'S';
        assert_eq!(ScryptKdfHash::parse(&encode(&header)).unwrap_err(), Unreadable::Header);
        let mut version = bytes;
        version[6] = 1;
        assert_eq!(ScryptKdfHash::parse(&encode(&version)).unwrap_err(), Unreadable::Version(1));
        // The HMAC is only checked against a password: a corrupt one is a wrong password.
        let mut mac = bytes;
        mac[95] ^= 0x80;
        let hash = ScryptKdfHash::parse(&encode(&mac)).unwrap();
        assert!(!hash.verify(MEDUSA_ACCOUNTS[2].1.as_bytes()));
        // Random bytes behind a valid prefix.
        let noise = format!("{PREFIX}{}", "A".repeat(ENCODED_LEN - PREFIX.len()));
        assert!(ScryptKdfHash::parse(&noise).is_err());
    }

    #[test]
    fn over_cost_headers_are_refused_before_any_work() {
        let refused = [(30, 8, 1), (21, 1, 1), (20, 8, 1), (18, 8, 1), (17, 8, 2), (16, 8, 3), (15, 1, 64), (0, 8, 1)];
        for (log_n, r, p) in refused {
            let stored = make(b"x", log_n, r, p, [1; 32]);
            let started = std::time::Instant::now();
            assert_eq!(ScryptKdfHash::parse(&stored).unwrap_err(), Unreadable::Cost { log_n, r, p }, "{log_n} {r} {p}");
            assert!(started.elapsed() < std::time::Duration::from_millis(100));
        }
        // scrypt itself refuses N >= 2^(16·r).
        for (log_n, r, p) in [(1, 8, 0), (1, 0, 1), (1, u32::MAX, u32::MAX), (4, 1, u32::MAX), (16, 1, 1)] {
            assert!(ScryptKdfHash::parse(&make(b"x", log_n, r, p, [1; 32])).is_err(), "{log_n} {r} {p}");
        }
        // The bounds themselves are accepted (parsed only: not run here).
        for (log_n, r, p) in [(17, 8, 1), (16, 8, 2), (15, 8, 4), (19, 2, 1), (15, 32, 1)] {
            let hash = ScryptKdfHash::parse(&make(b"x", log_n, r, p, [1; 32])).expect("within the bounds");
            assert_eq!(hash.cost(), (log_n, r, p));
        }
        let message = Unreadable::Cost { log_n: 30, r: 8, p: 1 }.to_string();
        assert!(message.contains("logN 30") && message.contains("at most logN 20"), "{message}");
    }

    #[test]
    fn debug_shows_the_cost_only() {
        let hash = ScryptKdfHash::parse(MEDUSA_ACCOUNTS[0].2).unwrap();
        let shown = format!("{hash:?}");
        assert!(shown.contains("log_n: 15") && !shown.contains("bytes"), "{shown}");
    }
}
