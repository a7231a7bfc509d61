//! Validated identifiers. Every identifier is non-empty printable ASCII of bounded length, so
//! it can be used in storage keys (which separate parts with `/`) without escaping.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9._:-]`.
    #[error("may only contain letters, digits, '.', '_', ':' and '-'")]
    BadCharacter,
    /// A province code must be six digits (GB/T 2260), ending in `0000`.
    #[error("must be a six-digit province code such as 110000")]
    BadProvince,
    /// A keyed hash must be 64 lowercase hex characters.
    #[error("must be a keyed hash (64 lowercase hex characters)")]
    NotKeyedHash,
    /// Sealed bytes must hold a nonce and a tag, and at most 2048 bytes.
    #[error("must be sealed bytes (28 to 2048 bytes)")]
    NotSealed,
    /// A unified social credit code must be 18 characters of GB 32100-2015 with its check
    /// character.
    #[error("must be an 18-character unified social credit code (GB 32100) with a matching check character")]
    BadCreditCode,
}

fn check(text: &str, max: usize) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > max {
        return Err(IdError::TooLong { max });
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                check(&text, $max)?;
                Ok(Self(text))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
    };
}

id_type!(
    /// A designated medical institution's code.
    InstitutionId, 64
);
id_type!(
    /// A national medical-personnel code.
    PersonnelCode, 64
);
id_type!(
    /// A national catalogue code (drug, service item or consumable).
    ItemCode, 64
);
id_type!(
    /// A caller's serial number (the idempotency key, scoped by institution).
    Serial, 64
);

/// An insured person's identity number (ID card number or social-security number).
///
/// Its `Debug` and `Display` never print the raw number: use [`PersonId::expose`] only where
/// the raw value must be stored or compared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(String);

impl PersonId {
    /// Validates an identity number (6–32 letters or digits).
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        check(&text, 32)?;
        if text.len() < 6 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(text))
    }

    /// The raw identity number. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form, safe for logs and views.
    pub fn masked(&self) -> String {
        mask_identity(&self.0)
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonId({})", self.masked())
    }
}

impl From<PersonId> for String {
    fn from(v: PersonId) -> String {
        v.0
    }
}

impl TryFrom<String> for PersonId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// Masks an identity number: keeps the first three and last four characters.
pub fn mask_identity(raw: &str) -> String {
    let n = raw.chars().count();
    if n <= 7 {
        return "*".repeat(n);
    }
    raw.chars().enumerate().map(|(i, c)| if i < 3 || i >= n - 4 { c } else { '*' }).collect()
}

/// A keyed hash (HMAC-SHA256 under a province's key, 64 lowercase hex characters) standing
/// for an identity or certificate number in storage keys and records: the number itself is
/// never a key and never stored in clear (see the `medmesh-seal` crate).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyedHash(String);

impl KeyedHash {
    /// Length in hex characters.
    pub const LEN: usize = 64;

    /// Validates a keyed hash: exactly 64 lowercase hex characters.
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        if text.len() != Self::LEN {
            return Err(IdError::NotKeyedHash);
        }
        if !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(IdError::NotKeyedHash);
        }
        Ok(Self(text))
    }

    /// The hash as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyedHash({}…)", &self.0[..8])
    }
}

impl From<KeyedHash> for String {
    fn from(v: KeyedHash) -> String {
        v.0
    }
}

impl TryFrom<String> for KeyedHash {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// Identity fields encrypted under a province's key (nonce and AES-256-GCM ciphertext with its
/// tag, see the `medmesh-seal` crate). Opaque to the state machines, which only store it; at
/// most [`Sealed::MAX`] bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Largest sealed value: a nonce, a tag and a few hundred bytes of identity fields.
    pub const MAX: usize = 2048;
    /// Smallest: a 12-byte nonce and a 16-byte tag.
    pub const MIN: usize = 28;

    /// Wraps sealed bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, IdError> {
        if bytes.len() < Self::MIN || bytes.len() > Self::MAX {
            return Err(IdError::NotSealed);
        }
        Ok(Self(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

impl From<Sealed> for Vec<u8> {
    fn from(v: Sealed) -> Vec<u8> {
        v.0
    }
}

impl TryFrom<Vec<u8>> for Sealed {
    type Error = IdError;
    fn try_from(b: Vec<u8>) -> Result<Self, IdError> {
        Self::new(b)
    }
}

/// A six-digit province code (GB/T 2260), for example `110000` for Beijing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProvinceCode(String);

impl ProvinceCode {
    /// Validates a province code.
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) || !text.ends_with("0000") {
            return Err(IdError::BadProvince);
        }
        Ok(Self(text))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProvinceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProvinceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Province({})", self.0)
    }
}

impl From<ProvinceCode> for String {
    fn from(v: ProvinceCode) -> String {
        v.0
    }
}

impl TryFrom<String> for ProvinceCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// A pharmaceutical enterprise's unified social credit code (统一社会信用代码, GB 32100-2015):
/// 18 characters of `0-9` and `ABCDEFGHJKLMNPQRTUWXY` (no I, O, S, V or Z), the last a check
/// character over the first 17. An enterprise is a legal person, so its code is a public
/// registry number, not personal data.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnterpriseCode(String);

/// The 31 characters of a unified social credit code, each worth its index.
const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weight of each of the first 17 characters: 3^i mod 31.
const CREDIT_CODE_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl EnterpriseCode {
    /// Validates a code, its check character included: with `v` each character's index in
    /// `0-9A-HJ-NP-RTUWXY`, the check character's index is `(31 − Σ vᵢ·wᵢ mod 31) mod 31`
    /// over the first 17 characters, `wᵢ = 3^i mod 31`.
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        let values: Option<Vec<u32>> = text
            .bytes()
            .map(|b| CREDIT_CODE_CHARS.iter().position(|c| *c == b).and_then(|i| u32::try_from(i).ok()))
            .collect();
        let Some(values) = values.filter(|v| v.len() == 18) else {
            return Err(IdError::BadCreditCode);
        };
        let sum: u32 = values.iter().zip(CREDIT_CODE_WEIGHTS).map(|(v, w)| v * w).sum();
        if values[17] != (31 - sum % 31) % 31 {
            return Err(IdError::BadCreditCode);
        }
        Ok(Self(text))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnterpriseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EnterpriseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Enterprise({})", self.0)
    }
}

impl From<EnterpriseCode> for String {
    fn from(v: EnterpriseCode) -> String {
        v.0
    }
}

impl TryFrom<String> for EnterpriseCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published codes of listed companies, checked by hand against GB 32100's rule, pass;
    /// one changed character, a lowercase letter, a forbidden letter or a short code fail.
    #[test]
    fn enterprise_codes_carry_their_check_character() {
        for ok in ["91110000710925462X", "91350100M000100Y43", "91440300708461136T", "91110108551385082Q"] {
            assert!(EnterpriseCode::new(ok).is_ok(), "{ok}");
        }
        for bad in ["91110000710925462Y", "91110000710925462x", "9111000071092546IX", "91110000710925462", ""] {
            assert_eq!(EnterpriseCode::new(bad), Err(IdError::BadCreditCode), "{bad}");
        }
    }

    #[test]
    fn identity_numbers_are_masked_in_display_and_debug() {
        let p = PersonId::new("110101199001011234").unwrap();
        assert_eq!(p.to_string(), "110***********1234");
        assert!(!format!("{p:?}").contains("19900101"));
    }

    #[test]
    fn ids_reject_separators_and_empties() {
        assert_eq!(Serial::new(""), Err(IdError::Empty));
        assert_eq!(Serial::new("a/b"), Err(IdError::BadCharacter));
        assert!(ProvinceCode::new("110000").is_ok());
        assert!(ProvinceCode::new("110101").is_err());
    }
}
