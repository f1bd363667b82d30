//! The signing state reader (`sign::state::State::load`, over a state
//! and a signed zone file written to a directory in memory, /dev/shm when
//! there is one), its cursor and its second reading. The input is
//! `flags:u8 zone-length:u16 zone state`; unless the state is short or
//! bit 0 of the flags says not to, the harness makes the state's magic,
//! version, zone digest and own digest right (no fuzzer finds a BLAKE3
//! digest), so that the node records behind them are read. Any input may
//! be refused; none may panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use dnsseal::sign::state::{path_for, SealKey, State};
use dnsseal::zone::Algorithm;
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8] = b"dnsseal-state\0";
const VERSION: u32 = 4;
/// Seal length, key tag, algorithm.
const SEAL_FIELDS: usize = 5;

/// Makes the digests of `buf` right for `zone`, where the layout allows.
fn repair(buf: &mut [u8], zone: &[u8]) {
    let version_end = MAGIC.len() + 4;
    if buf.len() < version_end + 1 + 4 + 32 + SEAL_FIELDS + 32 {
        return;
    }
    buf[..MAGIC.len()].copy_from_slice(MAGIC);
    buf[MAGIC.len()..version_end].copy_from_slice(&VERSION.to_be_bytes());
    let body_len = buf.len() - 32;
    let fields = body_len - SEAL_FIELDS;
    let seal_len = usize::from(u16::from_be_bytes([buf[fields], buf[fields + 1]]));
    if let Some(end) = fields.checked_sub(seal_len + 32) {
        buf[end..end + 32].copy_from_slice(blake3::hash(zone).as_bytes());
    }
    let own = blake3::hash(&buf[..body_len]);
    buf[body_len..].copy_from_slice(own.as_bytes());
}

/// A directory of this process's own, in memory where the system has one.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::path::Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        let d = base.join(format!("dnsseal-fuzz-state-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    // Bit 0 of the first octet asks for the state as it is.
    let raw = data[0] & 1 != 0;
    let n = usize::from(u16::from_be_bytes([data[1], data[2]]));
    let rest = &data[3..];
    let (zone, state) = rest.split_at(n.min(rest.len()));
    let mut buf = state.to_vec();
    if !raw {
        repair(&mut buf, zone);
    }
    // The state's own origin, so that most states are of "this zone".
    let origin = buf
        .get(MAGIC.len() + 4)
        .and_then(|&l| buf.get(MAGIC.len() + 5..MAGIC.len() + 5 + usize::from(l)))
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| vec![0]);
    let signed = dir().join("z.signed");
    if std::fs::write(&signed, zone).is_err() || std::fs::write(path_for(&signed), &buf).is_err() {
        return;
    }
    let Ok(state) = State::load(&signed, &origin, 1 << 20) else {
        return;
    };
    let mut owners = Vec::new();
    if let Ok(c) = state.cursor() {
        let _ = c.rest(&mut |e| owners.push((e.owner.clone(), e.signatures(), e.text.clone())));
    }
    // The walk beside a new zone's owners: every other owner taken.
    if let Ok(mut cursor) = state.cursor() {
        for (owner, _, _) in owners.iter().step_by(2) {
            let _ = cursor.take_owner(owner, &mut |e| {
                let _ = e.signatures();
            });
        }
        let _ = cursor.rest(&mut |_| {});
    }
    // The writer's second reading: every carried range, then the check.
    if let Ok(mut previous) = state.rereads() {
        for (_, _, text) in &owners {
            let len = text.end.saturating_sub(text.start);
            if previous.zone.copy(text.start, len, &mut |_| Ok(())).is_err() {
                break;
            }
        }
        let _ = previous.zone.finish();
        let _ = previous.state.finish();
    }
    // The seal checked against keys of every algorithm; none made it.
    let ed = [7u8; 32];
    let p256 = [7u8; 64];
    let rsa = [&[3u8, 1, 0, 1][..], &[0xc5u8; 128][..]].concat();
    for tag in [0u16, 4711] {
        let keys = [
            SealKey {
                key_tag: tag,
                algorithm: Algorithm::Ed25519,
                public_key: &ed,
            },
            SealKey {
                key_tag: tag,
                algorithm: Algorithm::EcdsaP256Sha256,
                public_key: &p256,
            },
            SealKey {
                key_tag: tag,
                algorithm: Algorithm::RsaSha256,
                public_key: &rsa,
            },
        ];
        let _ = state.check_seal(&keys);
    }
});
