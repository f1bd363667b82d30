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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testing::record;

    fn zone() -> ZoneName {
        "example.".parse().unwrap()
    }

    fn zone_keys() -> Vec<KeyRecord> {
        vec![
            record(1, 10, "S", KeyState::Active),
            record(2, 20, "S", KeyState::Published),
            record(3, 20, "S", KeyState::Published),
            record(4, 40, "S", KeyState::Destroyed),
        ]
    }

    #[test]
    fn picks_the_one_key() {
        let r = pick(zone_keys(), &zone(), 10, None, false).unwrap();
        assert_eq!(r.id, 1);
        let r = pick(zone_keys(), &zone(), 20, Some(&[3]), false).unwrap();
        assert_eq!(r.id, 3);
    }

    #[test]
    fn clashing_tags_need_an_id() {
        let e = pick(zone_keys(), &zone(), 20, None, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 keys of example. have tag 20: add --id with one of 02, 03"
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn destroyed_keys_only_when_asked() {
        let e = pick(zone_keys(), &zone(), 40, None, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "example. has no key with tag 40 (that is not destroyed)"
        );
        let r = pick(zone_keys(), &zone(), 40, None, true).unwrap();
        assert_eq!(r.state, KeyState::Destroyed);
        let e = pick(zone_keys(), &zone(), 99, None, true).unwrap_err();
        assert_eq!(e.to_string(), "example. has no key with tag 99");
    }
}

/// The keys of a zone that are in its DNSKEY RRset.
pub fn published(records: Vec<KeyRecord>) -> Vec<KeyRecord> {
    records
        .into_iter()
        .filter(|r| r.state.is_published())
        .collect()
}

/// What the parent should hold: every KSK/CSK whose DS is submitted or
/// seen (in a double-DS rollover that includes a key not yet published).
pub fn for_parent(records: Vec<KeyRecord>) -> Vec<KeyRecord> {
    records
        .into_iter()
        .filter(|r| r.role.is_sep() && r.ds.wanted() && r.state != KeyState::Destroyed)
        .collect()
}

#[cfg(test)]
mod set_tests {
    use super::*;
    use crate::keys::testing::record;
    use crate::keystore::{DsState, Role};

    #[test]
    fn published_keys_are_the_dnskey_rrset() {
        let keys = vec![
            record(1, 10, "S", KeyState::Generated),
            record(2, 20, "S", KeyState::Published),
            record(3, 30, "S", KeyState::Active),
            record(4, 40, "S", KeyState::Removed),
        ];
        let tags: Vec<u16> = published(keys).iter().map(|r| r.key_tag).collect();
        assert_eq!(tags, [20, 30]);
    }

    #[test]
    fn the_parent_holds_wanted_ds_of_sep_keys() {
        let sep = |id, state, ds| {
            let mut r = record(id, u16::from(id), "S", state);
            r.role = Role::Ksk;
            r.ds = ds;
            r
        };
        let keys = vec![
            sep(1, KeyState::Active, DsState::Seen),
            sep(2, KeyState::Generated, DsState::Submitted),
            sep(3, KeyState::Active, DsState::None),
            sep(4, KeyState::Destroyed, DsState::Seen),
            record(5, 5, "S", KeyState::Active),
        ];
        let tags: Vec<u16> = for_parent(keys).iter().map(|r| r.key_tag).collect();
        assert_eq!(tags, [1, 2]);
    }
}
