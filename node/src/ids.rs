//! Identifiers shared by every layer: document ids, node ids and facility codes.
//!
//! Document and node ids are 16 random or derived bytes shown as 32 lowercase hex characters.
//! Operators may type any unique prefix of at least [`MIN_PREFIX`] characters; resolving a
//! prefix is the store's job. Facility codes are short ASCII codes assigned by the alliance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shortest id prefix an operator may type instead of a whole id.
pub const MIN_PREFIX: usize = 4;

/// Why an identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not 32 hex characters.
    #[error("{what} must be 32 hexadecimal characters, got {got:?}")]
    BadHex {
        /// Which kind of id was expected.
        what: &'static str,
        /// The text that was given.
        got: String,
    },
    /// A facility code with characters or a length the alliance does not use.
    #[error("facility code {0:?} is invalid: use 2 to 32 letters, digits, '-' or '_' (e.g. TC-01)")]
    BadFacility(String),
}

fn parse_hex16(s: &str, what: &'static str) -> Result<[u8; 16], IdError> {
    let bad = || IdError::BadHex {
        what,
        got: s.chars().take(40).collect(),
    };
    if s.len() != 32 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

macro_rules! hex_id {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Serialised as hex text in human-readable formats (JSON) and as 16 raw bytes
        /// otherwise (postcard).
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 16]);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; 16]>::deserialize(d).map($name)
                }
            }
        }

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex16(&s.to_ascii_lowercase(), $what).map($name)
            }
        }
    };
}

hex_id!(
    DocId,
    "a document id",
    "The id of one document, random at creation."
);
hex_id!(
    NodeId,
    "a node id",
    "The id of a node: the first 16 bytes of SHA-256 over its public key."
);

impl DocId {
    /// A fresh random document id.
    pub fn random() -> Self {
        DocId(crate::identity::random_bytes())
    }

    /// The id of a well-known document every node names the same way (the drug catalog, a
    /// facility's stock rows): the first 16 bytes of SHA-256 over `name`. Nodes that create it
    /// independently create the same document, and their histories merge.
    pub fn derived(name: &str) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&d.as_ref()[..16]);
        DocId(id)
    }
}

/// A facility code (e.g. `CH-01` for the county hospital, `TC-03` for a township center),
/// normalised to upper case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FacilityCode(String);

impl FacilityCode {
    /// The audience marker for "every facility of the alliance" (`*`).
    pub const EVERYONE: &'static str = "*";

    /// The `*` marker: in an audience, every facility of the alliance may hold the document.
    pub fn everyone() -> FacilityCode {
        FacilityCode(Self::EVERYONE.to_string())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FacilityCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        if t == Self::EVERYONE {
            return Ok(Self::everyone());
        }
        let ok = (2..=32).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(FacilityCode(t.to_ascii_uppercase()))
        } else {
            Err(IdError::BadFacility(s.chars().take(40).collect()))
        }
    }
}

impl TryFrom<String> for FacilityCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<FacilityCode> for String {
    fn from(c: FacilityCode) -> String {
        c.0
    }
}

impl fmt::Display for FacilityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FacilityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FacilityCode({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_id_round_trips_through_text() {
        let id = DocId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<DocId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<DocId>().unwrap(), id);
    }

    #[test]
    fn ids_are_hex_in_json_and_raw_in_postcard() {
        let id = NodeId([0xab; 16]);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", "ab".repeat(16))
        );
        let back: NodeId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        assert_eq!(back, id);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(postcard::from_bytes::<NodeId>(&bytes).unwrap(), id);
    }

    #[test]
    fn bad_ids_are_named() {
        let err = "xyz".parse::<DocId>().unwrap_err();
        assert!(err.to_string().contains("document id"), "{err}");
        assert!("é".repeat(16).parse::<NodeId>().is_err());
    }

    #[test]
    fn facility_codes_are_validated_and_normalised() {
        assert_eq!("tc-01".parse::<FacilityCode>().unwrap().as_str(), "TC-01");
        for bad in ["", "a", "has space", "卫生院", &"x".repeat(33)] {
            assert!(bad.parse::<FacilityCode>().is_err(), "{bad:?} accepted");
        }
    }
}
