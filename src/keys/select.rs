//! Finding the one key of a zone that a key tag (and, when tags clash, a
//! CKA_ID) names.

use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Keystore};
use crate::zone::ZoneName;

/// Which key an operator means: a zone, a key tag, and optionally the
/// CKA_ID in hex (needed only when two keys of the zone share the tag).
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub zone: &'a str,
    pub tag: u16,
    pub id_hex: Option<&'a str>,
}

/// Finds the one key `key` names in the keystore; destroyed keys only when
/// `include_destroyed`.
pub fn select(
    ks: &Keystore,
    key: KeyRef<'_>,
    include_destroyed: bool,
) -> anyhow::Result<KeyRecord> {
    let zone = super::parse_zone(key.zone)?;
    let id = key
        .id_hex
        .map(|h| hex::decode(h).map_err(|_| Failure::BadInput(format!("--id '{h}' is not hex"))))
        .transpose()?;
    let records = ks.keys(Some(&zone.to_string()))?;
    Ok(pick(
        records,
        &zone,
        key.tag,
        id.as_deref(),
        include_destroyed,
    )?)
}

/// The one record among a zone's `records` with key tag `tag` (and CKA_ID
/// `id` if given); none or several is bad input, and the message says how
/// to tell clashing keys apart.
pub fn pick(
    records: Vec<KeyRecord>,
    zone: &ZoneName,
    tag: u16,
    id: Option<&[u8]>,
    include_destroyed: bool,
) -> Result<KeyRecord, Failure> {
    let mut matches: Vec<KeyRecord> = records
        .into_iter()
        .filter(|r| r.key_tag == tag)
        .filter(|r| include_destroyed || r.state != KeyState::Destroyed)
        .filter(|r| id.is_none_or(|i| i == r.cka_id.as_slice()))
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(Failure::BadInput(format!(
            "{zone} has no key with tag {tag}{}",
            if include_destroyed {
                ""
            } else {
                " (that is not destroyed)"
            }
        ))),
        _ => Err(Failure::BadInput(format!(
            "{} keys of {zone} have tag {tag}: add --id with one of {}",
            matches.len(),
            matches
                .iter()
                .map(|r| hex::encode(&r.cka_id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
