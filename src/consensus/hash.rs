//! SHA-256d and the 32-byte hash newtypes.
//!
//! Hashes are stored in *internal* byte order (the raw digest) and displayed
//! byte-reversed in hex, exactly as Bitcoin Core prints block hashes and txids.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

use super::error::DecodeError;

/// SHA-256 applied twice: `SHA256(SHA256(data))`, the hash Bitcoin uses for
/// block headers, transactions and merkle nodes.
#[inline]
#[must_use]
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

macro_rules! hash_newtype {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Internal byte order; `Display`/`FromStr` use the byte-reversed hex
        /// form that Bitcoin Core prints.
        ///
        /// Serde: display-order hex in human-readable formats (JSON: the
        /// API, the observer's files), the 32 raw bytes otherwise (bincode:
        /// the wire and the store), so the chain's own types serve the API.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    $name::from_hex(&text).map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map($name)
                }
            }
        }

        impl $name {
            /// The all-zero hash (the genesis block's `prev_blockhash`).
            pub const ZERO: $name = $name([0u8; 32]);

            /// Raw internal-order bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Display-order (byte-reversed) hex, 64 characters.
            #[must_use]
            pub fn to_hex(&self) -> String {
                let mut rev = self.0;
                rev.reverse();
                hex::encode(rev)
            }

            /// Parses display-order hex (64 characters).
            ///
            /// # Errors
            /// [`DecodeError::BadHex`] when the text is not 64 hex digits.
            pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(s.trim(), &mut bytes)
                    .map_err(|e| DecodeError::BadHex(format!("{e} (want 64 hex digits)")))?;
                bytes.reverse();
                Ok($name(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = DecodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

hash_newtype!(BlockHash, "A block hash: sha256d of the 80-byte header.");
hash_newtype!(
    Txid,
    "A transaction id: sha256d of the transaction's bytes."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_matches_reference() {
        // Well-known value: sha256d("") = 5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456
        assert_eq!(
            hex::encode(sha256d(b"")),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }

    #[test]
    fn hex_round_trip_is_byte_reversed() {
        let h =
            BlockHash::from_hex("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
                .unwrap();
        assert_eq!(h.0[31], 0x00);
        assert_eq!(h.0[0], 0x6f);
        assert_eq!(
            h.to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert!(BlockHash::from_hex("zz").is_err());
    }

    #[test]
    fn serde_is_display_hex_in_json_and_raw_bytes_in_bincode() {
        let h =
            BlockHash::from_hex("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
                .unwrap();
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            "\"000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f\""
        );
        assert_eq!(serde_json::from_str::<BlockHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<BlockHash>("\"00ff\"").is_err());
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(h, config).unwrap();
        assert_eq!(bytes, h.0.to_vec(), "the wire and store form is unchanged");
        let (back, _): (BlockHash, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, h);
    }
}
