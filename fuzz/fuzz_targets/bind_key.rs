//! The BIND key file readers (`keys::import`, what `keys import` reads
//! from `K<zone>+<alg>+<tag>.key` and `.private`). The input is the `.key`
//! text, a NUL octet and the `.private` text; without a NUL the whole
//! input is tried as either. The `.key` text is read with
//! `parse_key_file`; the `.private` text with `parse_private` for the
//! DNSKEY it gave (so that a matching key pair reaches every check), or
//! else for a DNSKEY of each algorithm. Any input may be refused; none may
//! panic.
#![no_main]

use dnsseal::keys::import::{import_role, import_spec, parse_key_file, parse_private};
use dnsseal::zone::{Algorithm, Dnskey};
use libfuzzer_sys::fuzz_target;

/// A DNSKEY of each algorithm, for `.private` text without its `.key`.
fn stand_ins() -> Vec<Dnskey> {
    let rsa = [&[3u8, 1, 0, 1][..], &[0xc5u8; 128][..]].concat();
    vec![
        Dnskey::new(Algorithm::RsaSha256, true, rsa.clone()),
        Dnskey::new(Algorithm::RsaSha512, false, rsa),
        Dnskey::new(Algorithm::EcdsaP256Sha256, true, vec![7; 64]),
        Dnskey::new(Algorithm::EcdsaP384Sha384, true, vec![7; 96]),
        Dnskey::new(Algorithm::Ed25519, true, vec![7; 32]),
    ]
}

fuzz_target!(|data: &[u8]| {
    let (key, private) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    let (Ok(key), Ok(private)) = (std::str::from_utf8(key), std::str::from_utf8(private)) else {
        return;
    };
    let keys = match parse_key_file(key, "Kfuzz.key") {
        Ok((_owner, dnskey)) => {
            let _ = dnskey.key_tag();
            let _ = dnskey.bits();
            let _ = import_role(None, &dnskey);
            vec![dnskey]
        }
        Err(_) => stand_ins(),
    };
    for dnskey in &keys {
        if let Ok(private) = parse_private(private, "Kfuzz.private", dnskey) {
            let _ = import_spec(private.algorithm, dnskey);
        }
    }
});
