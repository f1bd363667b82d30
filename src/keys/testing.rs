//! Records for unit tests (no token, no keystore).

use crate::keystore::{DsState, KeyRecord, KeyState, Origin, Role, Timings};
use crate::token::TokenObject;

/// A record of zone `example.` in token `serial` with CKA_ID `[id]`.
pub fn record(id: u8, tag: u16, serial: &str, state: KeyState) -> KeyRecord {
    KeyRecord {
        id: i64::from(id),
        zone: "example.".parse().expect("a zone name"),
        key_tag: tag,
        role: Role::Zsk,
        algorithm: crate::zone::Algorithm::EcdsaP256Sha256,
        bits: 256,
        flags: 256,
        public_key: vec![id; 64],
        token_serial: serial.into(),
        token_label: "test".into(),
        cka_id: vec![id],
        cka_label: format!("key {id}"),
        state,
        ds: DsState::None,
        origin: Origin::Generated,
        timings: Timings::default(),
    }
}

/// A token key object with CKA_ID `[id]`.
pub fn object(id: u8, private: bool) -> TokenObject {
    TokenObject {
        id: vec![id],
        label: format!("key {id}"),
        private,
    }
}
