//! The BIND key file readers (`keys::import`): the input as a `.key` file
//! (`parse_key_file`) and as a `.private` file (`parse_private`) for the
//! DNSKEY the same text gives, or else for a DNSKEY of each algorithm.
//! Any input may be refused; none may panic.
#![no_main]

use dnsseal::keys::import::{import_role, import_spec, parse_key_file, parse_private};
use dnsseal::zone::{Algorithm, Dnskey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut keys = Vec::new();
    if let Ok((_owner, dnskey)) = parse_key_file(text, "Kfuzz.key") {
        let _ = dnskey.key_tag();
        let _ = dnskey.bits();
        let _ = import_role(None, &dnskey);
        keys.push(dnskey);
    } else {
        let rsa = [&[3u8, 1, 0, 1][..], &[0xc5u8; 128][..]].concat();
        keys.push(Dnskey::new(Algorithm::RsaSha256, true, rsa.clone()));
        keys.push(Dnskey::new(Algorithm::RsaSha512, false, rsa));
        keys.push(Dnskey::new(Algorithm::EcdsaP256Sha256, true, vec![7; 64]));
        keys.push(Dnskey::new(Algorithm::EcdsaP384Sha384, true, vec![7; 96]));
        keys.push(Dnskey::new(Algorithm::Ed25519, true, vec![7; 32]));
    }
    for dnskey in &keys {
        if let Ok(private) = parse_private(text, "Kfuzz.private", dnskey) {
            let _ = import_spec(private.algorithm, dnskey);
        }
    }
});
