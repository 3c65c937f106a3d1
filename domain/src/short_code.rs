//! Short codes: base62, six characters, unique by construction and not sequential.
//!
//! A code is the base62 form of a keyed permutation (a Feistel network with cycle walking) of
//! the URL's database id over the `62^len` code space. Distinct ids give distinct codes of one
//! length, so new codes never collide with each other, whatever happens to Redis or counters.
//! The only possible clash is with a code imported verbatim from the legacy data set; then the
//! next length is used (a code of another length can only clash with an import of that length).
//! Consecutive ids give unrelated codes, so links cannot be enumerated by counting.
//!
//! A client may also choose a code, a custom alias ([`ShortCode::custom`]): 3 to 16
//! characters of `[A-Za-z0-9_-]`, not a [`RESERVED`] word. The api gives a new link the first of
//! its id's codes that no link holds, so an alias is skipped like an imported code.

use std::fmt;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const MIN_LEN: usize = 6;
pub const MAX_LEN: usize = 16;
const ROUNDS: usize = 6;

/// A syntactically valid short code: 1 to 16 characters of `[A-Za-z0-9_-]` (generated codes
/// are base62; custom aliases may also hold `_` and `-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortCode(String);

/// A byte a code may hold: base62 for generated codes, plus `_` and `-` for custom aliases.
fn code_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl ShortCode {
    /// Accepts what could name a link; anything else can only be a 404.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= MAX_LEN && raw.bytes().all(code_byte);
        ok.then(|| Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shortest custom alias.
pub const CUSTOM_MIN_LEN: usize = 3;

/// Words a custom alias may not be (compared without regard to case): the first segments of
/// Curtain's own paths and of paths a deployment commonly puts in front of it, so that an alias
/// can never be mistaken for, or shadow, a route in `/urls/<code>/redirect`, `/ui/links/<code>`
/// or behind a proxy that serves `/<code>`.
pub const RESERVED: &[&str] = &[
    "r",
    "u",
    "urls",
    "users",
    "events",
    "docs",
    "admin",
    "ui",
    "static",
    "metrics",
    "health",
    "api",
    "openapi",
    "openapi.json",
    "debug",
    "alerts",
    "shorten-ui",
    "short",
    "redirect",
    "analytics",
    "details",
    "favicon",
    "login",
    "logout",
    "www",
    "assets",
];

/// Why a requested custom alias is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasError {
    /// Shorter than [`CUSTOM_MIN_LEN`] or longer than [`MAX_LEN`].
    Length,
    /// A character outside `[A-Za-z0-9_-]`.
    Alphabet,
    /// One of [`RESERVED`].
    Reserved,
}

impl ShortCode {
    /// A custom alias chosen by a client: 3 to 16 characters of `[A-Za-z0-9_-]`, not a
    /// [`RESERVED`] word. (16 is the contract's `short_code` column limit.)
    pub fn custom(raw: &str) -> Result<Self, AliasError> {
        if !raw.bytes().all(code_byte) {
            return Err(AliasError::Alphabet);
        }
        if !(CUSTOM_MIN_LEN..=MAX_LEN).contains(&raw.len()) {
            return Err(AliasError::Length);
        }
        if RESERVED.iter().any(|w| w.eq_ignore_ascii_case(raw)) {
            return Err(AliasError::Reserved);
        }
        Ok(Self(raw.to_owned()))
    }
}

/// Derives codes from ids with a deployment secret.
#[derive(Clone)]
pub struct CodeGenerator {
    round_keys: [u64; ROUNDS],
}

fn mix64(mut z: u64) -> u64 {
    // splitmix64 finaliser: a fast, well-distributed bijective mixer.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl CodeGenerator {
    #[must_use]
    pub fn new(secret: &str) -> Self {
        let seed = secret.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut round_keys = [0; ROUNDS];
        for (i, key) in round_keys.iter_mut().enumerate() {
            *key = mix64(seed.wrapping_add(i as u64 + 1));
        }
        Self { round_keys }
    }

    /// The code of `id` with the shortest length (at least six) whose space holds the id, or
    /// the `attempt`-th longer one after clashes with imported codes.
    #[must_use]
    pub fn code_for(&self, id: u64, attempt: usize) -> Option<String> {
        let mut len = MIN_LEN;
        while space(len) <= u128::from(id) {
            len += 1;
        }
        let len = len + attempt;
        (len <= MAX_LEN).then(|| encode(self.permute(u128::from(id), len), len))
    }

    fn permute(&self, x: u128, len: usize) -> u128 {
        let domain = space(len);
        let bits = 128 - (domain - 1).leading_zeros();
        let half = bits.div_ceil(2);
        let mask = (1u128 << half) - 1;
        let mut v = x;
        // Cycle walking: the network permutes [0, 2^(2*half)); re-apply until inside the domain.
        loop {
            let (mut left, mut right) = (v >> half, v & mask);
            for key in self.round_keys {
                let f = u128::from(mix64((right as u64) ^ key)) & mask;
                (left, right) = (right, left ^ f);
            }
            v = (left << half) | right;
            if v < domain {
                return v;
            }
        }
    }
}

fn space(len: usize) -> u128 {
    62u128.pow(len as u32)
}

fn encode(mut n: u128, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_six_base62_chars_and_unique() {
        let generator = CodeGenerator::new("test");
        let mut seen = HashSet::new();
        for id in 1..20_000 {
            let code = generator.code_for(id, 0).unwrap();
            assert_eq!(code.len(), 6);
            assert!(ShortCode::parse(&code).is_some());
            assert!(seen.insert(code), "duplicate code for id {id}");
        }
    }

    #[test]
    fn consecutive_ids_do_not_give_sequential_codes() {
        let generator = CodeGenerator::new("test");
        let a = generator.code_for(1000, 0).unwrap();
        let b = generator.code_for(1001, 0).unwrap();
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        assert!(common < 4, "{a} and {b} share a long prefix");
    }

    #[test]
    fn a_clash_moves_to_a_longer_code() {
        let generator = CodeGenerator::new("test");
        assert_eq!(generator.code_for(7, 1).unwrap().len(), 7);
        assert_eq!(generator.code_for(7, 10).unwrap().len(), 16);
        assert!(generator.code_for(7, 11).is_none());
    }

    #[test]
    fn huge_ids_get_longer_codes() {
        let generator = CodeGenerator::new("test");
        assert_eq!(generator.code_for(i64::MAX as u64, 0).unwrap().len(), 11);
    }

    #[test]
    fn parse_accepts_the_code_alphabet_only() {
        assert!(ShortCode::parse("abc-1_2").is_some());
        assert!(ShortCode::parse("abc.12").is_none());
        assert!(ShortCode::parse("abc 12").is_none());
        assert!(ShortCode::parse("").is_none());
        assert!(ShortCode::parse("a".repeat(17).as_str()).is_none());
        assert!(ShortCode::parse("AbC123").is_some());
    }

    #[test]
    fn custom_aliases_have_their_own_rules() {
        assert_eq!(
            ShortCode::custom("my-Promo_1").unwrap().as_str(),
            "my-Promo_1"
        );
        assert_eq!(ShortCode::custom("ab"), Err(AliasError::Length));
        assert!(ShortCode::custom("abc").is_ok());
        assert!(ShortCode::custom(&"a".repeat(16)).is_ok());
        assert_eq!(ShortCode::custom(&"a".repeat(17)), Err(AliasError::Length));
        assert_eq!(ShortCode::custom("a/b.c"), Err(AliasError::Alphabet));
        assert_eq!(ShortCode::custom("caf\u{e9}"), Err(AliasError::Alphabet));
        assert_eq!(ShortCode::custom("URLS"), Err(AliasError::Reserved));
        assert_eq!(ShortCode::custom("docs"), Err(AliasError::Reserved));
    }
}
