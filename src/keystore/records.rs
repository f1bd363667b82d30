//! The types of what the keystore stores about a key: its role, its state
//! in the zone, its DS state at the parent, its origin, its timings, the
//! whole record as read back ([`KeyRecord`]) and a key about to be
//! recorded ([`NewKey`]). No SQL here.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::zone::{Algorithm, ZoneName};

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Key signing key: signs the DNSKEY RRset, has a DS at the parent.
    Ksk,
    /// Zone signing key: signs everything else.
    Zsk,
    /// Combined signing key: both jobs.
    Csk,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Ksk => "ksk",
            Role::Zsk => "zsk",
            Role::Csk => "csk",
        }
    }

    /// KSKs and CSKs carry the SEP flag and have DS records at the parent.
    pub const fn is_sep(self) -> bool {
        matches!(self, Role::Ksk | Role::Csk)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ksk" => Ok(Role::Ksk),
            "zsk" => Ok(Role::Zsk),
            "csk" => Ok(Role::Csk),
            _ => Err(format!("unknown key role '{s}': use ksk, zsk or csk")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Exists in the token; not yet in the zone.
    Generated,
    /// In the DNSKEY RRset, not signing (a standby or pre-published key).
    Published,
    /// In the DNSKEY RRset and signing.
    Active,
    /// Still in the DNSKEY RRset, no longer signing (retired).
    Inactive,
    /// Signing, but not yet in the DNSKEY RRset: the first stage of an
    /// algorithm rollover (RFC 6781 §4.1.4), signatures before keys.
    Presigning,
    /// Out of the DNSKEY RRset, still signing: the last stage of an
    /// algorithm rollover, keys before signatures.
    Postsigning,
    /// In the DNSKEY RRset with the REVOKE bit (RFC 5011), signing only the
    /// DNSKEY RRset; its key tag changed with the flag.
    Revoked,
    /// Out of the zone; the token object is kept, the key can be restored.
    Removed,
    /// The token object was destroyed; the record is kept as history.
    Destroyed,
}

impl KeyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Generated => "generated",
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Inactive => "inactive",
            KeyState::Presigning => "presigning",
            KeyState::Postsigning => "postsigning",
            KeyState::Revoked => "revoked",
            KeyState::Removed => "removed",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether the DNSKEY is in the zone's DNSKEY RRset.
    pub const fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Published | KeyState::Active | KeyState::Inactive | KeyState::Revoked
        )
    }

    /// Whether the key makes signatures (over the RRsets of its role; a
    /// revoked key over the DNSKEY RRset only).
    pub const fn is_signing(self) -> bool {
        matches!(
            self,
            KeyState::Active | KeyState::Presigning | KeyState::Postsigning | KeyState::Revoked
        )
    }

    /// Whether the key is still part of the zone in some way.
    pub const fn in_zone(self) -> bool {
        self.is_published() || self.is_signing()
    }

    /// Whether a token object should exist for the key.
    pub const fn has_token_object(self) -> bool {
        !matches!(self, KeyState::Destroyed)
    }
}

impl FromStr for KeyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "generated" => KeyState::Generated,
            "published" => KeyState::Published,
            "active" => KeyState::Active,
            "inactive" => KeyState::Inactive,
            "presigning" => KeyState::Presigning,
            "postsigning" => KeyState::Postsigning,
            "revoked" => KeyState::Revoked,
            "removed" => KeyState::Removed,
            "destroyed" => KeyState::Destroyed,
            _ => return Err(format!("unknown key state '{s}'")),
        })
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the key came to be in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Generated inside the token; never left it.
    Generated,
    /// Imported from a key file (migration); was outside a token once.
    Imported,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Generated => "generated",
            Origin::Imported => "imported",
        }
    }
}

/// Where a KSK's or CSK's DS record stands at the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DsState {
    /// No DS is wanted (ZSKs, and SEP keys not yet in play).
    #[default]
    None,
    /// The parent is asked to publish it (CDS/CDNSKEY list it); not yet
    /// confirmed.
    Submitted,
    /// The operator confirmed that the parent serves it.
    Seen,
    /// The parent is asked to remove it; not yet confirmed.
    Retiring,
    /// The operator confirmed that the parent no longer serves it.
    Gone,
}

impl DsState {
    pub const fn as_str(self) -> &'static str {
        match self {
            DsState::None => "none",
            DsState::Submitted => "submitted",
            DsState::Seen => "seen",
            DsState::Retiring => "retiring",
            DsState::Gone => "gone",
        }
    }

    /// Whether the parent should serve the DS (once it acts).
    pub const fn wanted(self) -> bool {
        matches!(self, DsState::Submitted | DsState::Seen)
    }

    /// Whether the parent has yet to act on a request.
    pub const fn pending(self) -> bool {
        matches!(self, DsState::Submitted | DsState::Retiring)
    }
}

impl FromStr for DsState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => DsState::None,
            "submitted" => DsState::Submitted,
            "seen" => DsState::Seen,
            "retiring" => DsState::Retiring,
            "gone" => DsState::Gone,
            _ => return Err(format!("unknown DS state '{s}'")),
        })
    }
}

impl fmt::Display for DsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Timings of a key, as in BIND's key metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    pub created: Option<Timestamp>,
    pub published: Option<Timestamp>,
    pub active: Option<Timestamp>,
    pub inactive: Option<Timestamp>,
    pub removed: Option<Timestamp>,
    pub destroyed: Option<Timestamp>,
    /// RFC 5011 REVOKE bit set.
    pub revoked: Option<Timestamp>,
    /// The parent was asked to publish the DS.
    pub ds_submitted: Option<Timestamp>,
    /// The operator confirmed the DS at the parent.
    pub ds_seen: Option<Timestamp>,
    /// The parent was asked to remove the DS.
    pub ds_retired: Option<Timestamp>,
    /// The operator confirmed the DS gone from the parent.
    pub ds_gone: Option<Timestamp>,
}

/// A key as the keystore knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Row id (stable within one keystore).
    pub id: i64,
    #[serde(serialize_with = "as_text")]
    pub zone: ZoneName,
    pub key_tag: u16,
    pub role: Role,
    #[serde(serialize_with = "as_number")]
    pub algorithm: Algorithm,
    pub bits: u32,
    pub flags: u16,
    #[serde(serialize_with = "as_base64")]
    pub public_key: Vec<u8>,
    pub token_serial: String,
    pub token_label: String,
    #[serde(serialize_with = "as_hex")]
    pub cka_id: Vec<u8>,
    pub cka_label: String,
    pub state: KeyState,
    pub ds: DsState,
    pub origin: Origin,
    pub timings: Timings,
}

impl KeyRecord {
    /// The key's DNSKEY RDATA as it is published (flags as stored, so a
    /// revoked key carries its REVOKE bit).
    pub fn dnskey(&self) -> crate::zone::Dnskey {
        crate::zone::Dnskey {
            flags: self.flags,
            protocol: crate::zone::dnskey::PROTOCOL,
            algorithm: self.algorithm.number(),
            public_key: self.public_key.clone(),
        }
    }
}

/// A zone name as JSON shows it: its presentation form.
fn as_text<S: serde::Serializer>(z: &ZoneName, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(z)
}

/// An algorithm as JSON shows it: its IANA number.
fn as_number<S: serde::Serializer>(a: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(a.number())
}

fn as_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn as_base64<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

/// A key about to be recorded.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub zone: ZoneName,
    pub key_tag: u16,
    pub role: Role,
    pub algorithm: Algorithm,
    pub bits: u32,
    pub flags: u16,
    pub public_key: Vec<u8>,
    pub token_serial: String,
    pub token_label: String,
    pub cka_id: Vec<u8>,
    pub cka_label: String,
    pub state: KeyState,
    pub ds: DsState,
    pub origin: Origin,
    pub timings: Timings,
}
