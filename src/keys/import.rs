//! Import of a BIND key pair into the token (migration).
//!
//! This is the one path by which private key material enters dnsseal, so
//! it is careful: the file contents and decoded key are zeroized, the
//! private file must be the `.key` file's key (checked field by field here,
//! and by a test signature made by the token in [`import_key`]) before
//! anything is recorded, and the token object is sensitive and not
//! extractable from then on.
//!
//! Formats: BIND's `K<zone>.+<alg>+<tag>.key` (a DNSKEY record) and
//! `.private` (`Private-key-format: v1.x`, one `Field: value` a line).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Keystore, NewKey, Origin, Role};
use crate::policy::keygen::{initial_ds, timings_for};
use crate::sign::{self, TokenInput};
use crate::token::{EcCurve, ImportKey, KeyObjects, KeySpec, Token, TokenError, UserSession};
use crate::zone::dnskey::{rsa_components, strip_leading_zeros};
use crate::zone::{Algorithm, Dnskey, ZoneName};

use super::spec::{dnskey_public_key, mechanism};

/// A parsed `K*.private` file: the algorithm, the key, and BIND's timing
/// metadata (Publish, Activate) if present.
pub struct BindPrivate {
    pub algorithm: Algorithm,
    pub key: ImportKey,
    pub publish: Option<Timestamp>,
    pub activate: Option<Timestamp>,
}

/// `Kzone.+alg+tag.private` → `Kzone.+alg+tag.key`, which must exist.
pub fn key_file_for(private: &Path) -> anyhow::Result<PathBuf> {
    let name = private.to_string_lossy();
    let Some(stem) = name.strip_suffix(".private") else {
        return Err(Failure::BadInput(format!(
            "{}: a BIND private key file name ends in .private",
            private.display()
        ))
        .into());
    };
    let key = PathBuf::from(format!("{stem}.key"));
    if !key.exists() {
        return Err(Failure::BadInput(format!(
            "{} is missing: the public half must be beside the private file",
            key.display()
        ))
        .into());
    }
    Ok(key)
}

/// Reads the DNSKEY record from a BIND `.key` file.
pub fn read_key_file(path: &Path) -> anyhow::Result<(ZoneName, Dnskey)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse_key_file(&text, &path.display().to_string())?)
}

/// The owner and DNSKEY of the first DNSKEY record in `text`, the contents
/// of the `.key` file `file` (named in errors).
pub fn parse_key_file(text: &str, file: &str) -> Result<(ZoneName, Dnskey), Failure> {
    for (n, line) in text.lines().enumerate() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pos) = fields.iter().position(|f| f.eq_ignore_ascii_case("DNSKEY")) else {
            continue;
        };
        let bad = |what: &str| Failure::BadInput(format!("{file}:{}: {what}", n + 1));
        let owner: ZoneName = fields[0]
            .parse()
            .map_err(|e: crate::zone::NameError| bad(&e.to_string()))?;
        let dnskey = Dnskey::from_presentation(&fields[pos + 1..].join(" "))
            .ok_or_else(|| bad("DNSKEY RDATA is malformed"))?;
        return Ok((owner, dnskey));
    }
    Err(Failure::BadInput(format!("{file}: no DNSKEY record found")))
}

/// Reads a BIND private key file (format v1.x) that must hold the private
/// half of `dnskey`.
pub fn read_private_file(path: &Path, dnskey: &Dnskey) -> anyhow::Result<BindPrivate> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    Ok(parse_private(&text, &path.display().to_string(), dnskey)?)
}

/// The `Field: value` lines of a private key file, values zeroized on drop.
struct Fields<'a> {
    file: &'a str,
    lines: Vec<(String, Zeroizing<String>, usize)>,
}

impl Fields<'_> {
    fn bad(&self, line: usize, what: String) -> Failure {
        Failure::BadInput(format!("{}:{line}: {what}", self.file))
    }

    fn get(&self, name: &str) -> Option<&(String, Zeroizing<String>, usize)> {
        self.lines.iter().find(|(k, _, _)| k == name)
    }

    /// A field decoded straight into a zeroizing buffer of its final size:
    /// neither an error part way through nor a reallocation leaves a copy of
    /// key material behind, and the caller's error paths drop it zeroized.
    fn b64(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let (_, v, line) = self
            .get(name)
            .ok_or_else(|| self.bad(1, format!("{name} is missing")))?;
        let mut out = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(v.len())));
        BASE64
            .decode_vec(v.as_bytes(), &mut out)
            .map_err(|_| self.bad(*line, format!("{name} is not base64")))?;
        Ok(out)
    }

    fn time(&self, name: &str) -> Result<Option<Timestamp>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some((_, v, line)) => Timestamp::parse(v)
                .map(Some)
                .map_err(|e| self.bad(*line, e.to_string())),
        }
    }
}

/// Parses the text of a BIND private key file `file` (named in errors)
/// that must hold the private half of `dnskey`.
pub fn parse_private(text: &str, file: &str, dnskey: &Dnskey) -> Result<BindPrivate, Failure> {
    let mut fields = Fields {
        file,
        lines: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(fields.bad(n + 1, "expected 'Field: value'".into()));
        };
        fields.lines.push((
            k.trim().to_string(),
            Zeroizing::new(v.trim().to_string()),
            n + 1,
        ));
    }
    let format = fields.get("Private-key-format").ok_or_else(|| {
        fields.bad(
            1,
            "not a BIND private key file (no Private-key-format)".into(),
        )
    })?;
    if !format.1.starts_with("v1.") {
        return Err(fields.bad(
            format.2,
            format!(
                "private key format {} is not supported (v1.x is)",
                &*format.1
            ),
        ));
    }
    let (alg_s, alg_line) = fields
        .get("Algorithm")
        .map(|(_, v, l)| (v.split_whitespace().next().unwrap_or("").to_string(), *l))
        .ok_or_else(|| fields.bad(1, "no Algorithm field".into()))?;
    let algorithm: Algorithm =
        alg_s
            .parse()
            .map_err(|e: crate::zone::algorithm::UnknownAlgorithm| {
                fields.bad(alg_line, e.to_string())
            })?;
    if dnskey.algorithm != algorithm.number() {
        return Err(fields.bad(
            alg_line,
            format!(
                "algorithm {algorithm} does not match the .key file's {}",
                dnskey.algorithm
            ),
        ));
    }
    let key = match algorithm {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => rsa_key(&fields, dnskey)?,
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
            ec_key(&fields, algorithm, dnskey)?
        }
        Algorithm::Ed25519 => {
            let seed = fields.b64("PrivateKey")?;
            if seed.len() != 32 {
                return Err(fields.bad(1, "PrivateKey must be 32 octets for ED25519".into()));
            }
            ImportKey::Ed25519 {
                seed: moved(seed),
                point: dnskey.public_key.clone(),
            }
        }
    };
    Ok(BindPrivate {
        algorithm,
        key,
        publish: fields.time("Publish")?,
        activate: fields.time("Activate")?,
    })
}

/// An RSA private key whose public half must be the DNSKEY's.
fn rsa_key(fields: &Fields<'_>, dnskey: &Dnskey) -> Result<ImportKey, Failure> {
    // Every field is decoded (each into its own zeroizing buffer) before
    // any is moved into the key, which zeroizes itself on drop: a bad later
    // field drops the earlier ones zeroized.
    let modulus = fields.b64("Modulus")?;
    let public_exponent = fields.b64("PublicExponent")?;
    let private_exponent = fields.b64("PrivateExponent")?;
    let prime1 = fields.b64("Prime1")?;
    let prime2 = fields.b64("Prime2")?;
    let exponent1 = fields.b64("Exponent1")?;
    let exponent2 = fields.b64("Exponent2")?;
    let coefficient = fields.b64("Coefficient")?;
    let key = ImportKey::Rsa {
        modulus: moved(modulus),
        public_exponent: moved(public_exponent),
        private_exponent: moved(private_exponent),
        prime1: moved(prime1),
        prime2: moved(prime2),
        exponent1: moved(exponent1),
        exponent2: moved(exponent2),
        coefficient: moved(coefficient),
    };
    if let ImportKey::Rsa {
        modulus,
        public_exponent,
        ..
    } = &key
    {
        let matches = rsa_components(&dnskey.public_key).is_some_and(|(e, n)| {
            strip_leading_zeros(e) == strip_leading_zeros(public_exponent)
                && strip_leading_zeros(n) == strip_leading_zeros(modulus)
        });
        if !matches {
            return Err(fields.bad(
                1,
                "Modulus/PublicExponent do not match the .key file".into(),
            ));
        }
    }
    Ok(key)
}

/// The bytes of a zeroizing buffer moved (not copied) into a key that
/// zeroizes itself on drop; the emptied buffer is left behind.
fn moved(mut buf: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *buf)
}

/// An ECDSA private scalar of the right size for `algorithm`.
fn ec_key(
    fields: &Fields<'_>,
    algorithm: Algorithm,
    dnskey: &Dnskey,
) -> Result<ImportKey, Failure> {
    let scalar = fields.b64("PrivateKey")?;
    let (want, spec) = if algorithm == Algorithm::EcdsaP256Sha256 {
        (32, EcCurve::P256)
    } else {
        (48, EcCurve::P384)
    };
    if scalar.len() != want {
        return Err(fields.bad(
            1,
            format!("PrivateKey must be {want} octets for {algorithm}"),
        ));
    }
    Ok(ImportKey::Ec {
        spec,
        scalar: moved(scalar),
        point: dnskey.public_key.clone(),
    })
}

/// The role of an imported key: the operator's, else what the DNSKEY's SEP
/// flag says (KSK or ZSK).
pub fn import_role(requested: Option<Role>, dnskey: &Dnskey) -> Role {
    requested.unwrap_or(if dnskey.is_sep() {
        Role::Ksk
    } else {
        Role::Zsk
    })
}

/// The token key kind to read an imported key back with: RSA of the
/// `.key` file's size when dnsseal would create that size, else the
/// algorithm's default kind.
pub fn import_spec(alg: Algorithm, dnskey: &Dnskey) -> anyhow::Result<KeySpec> {
    super::spec::key_spec(alg, Some(dnskey.bits()).filter(|_| alg.is_rsa()))
        .or_else(|_| super::spec::key_spec(alg, None))
}

/// Whether the token can sign with a key to import, from what its
/// signing mechanism for the key's kind is listed with
/// ([`Token::sign_key_sizes`]): not listed (e.g. Ed25519 on a Kryoptic
/// built without EdDSA), or an RSA key outside the sizes it reports (e.g.
/// a 512-bit key on Kryoptic, which takes 1024 bits and more), is refused
/// before the key reaches the token (exit 9), saying why, instead of the
/// token's bare C_CreateObject error. A token that reports no maximum (0)
/// is not held to its sizes.
pub fn check_importable(
    alg: Algorithm,
    spec: KeySpec,
    bits: u32,
    sizes: Option<(u64, u64)>,
) -> Result<(), TokenError> {
    let refused = |reason: String| TokenError::Unsupported {
        what: format!("an imported {alg} key of {bits} bits"),
        reason,
    };
    match sizes {
        None => Err(refused(format!(
            "the token does not list {} to sign with it",
            spec.mechanism_types()[1]
        ))),
        Some((lo, hi)) if alg.is_rsa() && hi > 0 && !(lo..=hi).contains(&u64::from(bits)) => {
            Err(refused(format!(
                "the token signs with RSA keys of {lo}-{hi} bits only"
            )))
        }
        Some(_) => Ok(()),
    }
}

/// The keystore must not hold this public key already (outside destroyed
/// records): importing it twice is refused.
pub fn check_not_recorded(existing: &[KeyRecord], public_key: &[u8]) -> Result<(), Failure> {
    match existing
        .iter()
        .find(|r| r.state != KeyState::Destroyed && r.public_key == public_key)
    {
        Some(dup) => Err(Failure::Refused(format!(
            "this key is already in the keystore as key {} of {}",
            dup.key_tag, dup.zone
        ))),
        None => Ok(()),
    }
}

/// A checked BIND key pair on its way into the token.
pub struct ImportRequest<'a> {
    pub zone: &'a ZoneName,
    pub role: Role,
    pub state: KeyState,
    pub spec: KeySpec,
    pub private: &'a BindPrivate,
    /// The `.key` file's DNSKEY.
    pub dnskey: &'a Dnskey,
    pub private_file: &'a Path,
    pub key_file: &'a Path,
    pub cka_id_len: usize,
    /// How `sign` will use the key (the HSM profile's): the private
    /// object is CKA_COPYABLE only for session copies.
    pub key_objects: KeyObjects,
    pub now: Timestamp,
}

/// Imports the key into the token, proves the token's objects are the
/// `.key` file's key pair (its public key, and a test signature that
/// verifies with it), and records it; on any failure after the import the
/// token objects are destroyed again. Returns the new record.
pub fn import_key(
    ks: &mut Keystore,
    token: &Token<'_>,
    session: &UserSession,
    req: &ImportRequest<'_>,
) -> anyhow::Result<KeyRecord> {
    let alg = req.private.algorithm;
    check_importable(
        alg,
        req.spec,
        req.dnskey.bits(),
        token.sign_key_sizes(req.spec)?,
    )?;
    let zone_s = req.zone.to_string();
    let final_dnskey = Dnskey::new(alg, req.role.is_sep(), req.dnskey.public_key.clone());
    let id = session.fresh_id(req.cka_id_len)?;
    let label = format!(
        "{zone_s} {} {} imported {}",
        req.role,
        alg.mnemonic(),
        req.now.compact()
    );
    session.import(&req.private.key, &id, &label, req.key_objects)?;
    let checked = (|| -> anyhow::Result<()> {
        prove_pair(session, &id, req)?;
        let (role, state) = (req.role, req.state);
        ks.insert_keys(&[NewKey {
            zone: req.zone.clone(),
            key_tag: final_dnskey.key_tag(),
            role,
            algorithm: alg,
            bits: final_dnskey.bits(),
            flags: final_dnskey.flags,
            public_key: final_dnskey.public_key.clone(),
            token_serial: token.identity.serial.clone(),
            token_label: token.identity.label.clone(),
            cka_id: id.clone(),
            cka_label: label.clone(),
            state,
            ds: initial_ds(role, state),
            origin: Origin::Imported,
            timings: timings_for(role, state, req.now),
        }])?;
        Ok(())
    })();
    if let Err(e) = checked {
        let _ = session.destroy(&id);
        return Err(e);
    }
    ks.keys(Some(&zone_s))?
        .into_iter()
        .find(|r| r.cka_id == id && r.token_serial == token.identity.serial)
        .ok_or_else(|| anyhow::anyhow!("the imported key's record is missing"))
}

/// The token objects `id` must be the `.key` file's public key, and the
/// private object must sign for it.
fn prove_pair(session: &UserSession, id: &[u8], req: &ImportRequest<'_>) -> anyhow::Result<()> {
    let alg = req.private.algorithm;
    let pk = dnskey_public_key(alg, &session.public_key(id, req.spec)?)?;
    if pk != req.dnskey.public_key {
        anyhow::bail!(
            "the token holds another public key than {} after the import",
            req.key_file.display()
        );
    }
    let challenge = session.random(32)?;
    let (TokenInput::RsaPkcs(input) | TokenInput::Ecdsa(input) | TokenInput::EdDsa(input)) =
        sign::token_input(alg, &challenge);
    let sig = session.sign(id, mechanism(alg), &input)?;
    if !sign::verify(alg, &req.dnskey.public_key, &challenge, &sig) {
        return Err(Failure::BadInput(format!(
            "{} and {} are not one key pair: a signature by the private key does not verify with the public key",
            req.private_file.display(),
            req.key_file.display()
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::exit_code;

    const KEY: &str = "; This is a key-signing key, keyid 1, for example.\n\
        example. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n";

    fn dnskey() -> Dnskey {
        parse_key_file(KEY, "K.key").unwrap().1
    }

    fn private(body: &str) -> String {
        format!(
            "Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\n{body}\
             Created: 20250101000000\nPublish: 20250101000000\n"
        )
    }

    fn parse_err(text: &str) -> Failure {
        match parse_private(text, "K.private", &dnskey()) {
            Ok(_) => panic!("parsed: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn key_file_gives_owner_and_dnskey() {
        let (owner, k) = parse_key_file(KEY, "K.key").unwrap();
        assert_eq!(owner.to_string(), "example.");
        assert_eq!((k.flags, k.algorithm, k.public_key.len()), (257, 15, 32));
        let e = parse_key_file("; nothing\n", "K.key").unwrap_err();
        assert_eq!(e.to_string(), "K.key: no DNSKEY record found");
        let e = parse_key_file("example. IN DNSKEY 257 3\n", "K.key").unwrap_err();
        assert_eq!(e.to_string(), "K.key:1: DNSKEY RDATA is malformed");
    }

    #[test]
    fn good_private_file() {
        let text = private("PrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n");
        let p = parse_private(&text, "K.private", &dnskey()).unwrap();
        assert_eq!(p.algorithm, Algorithm::Ed25519);
        assert_eq!(p.publish, Some(Timestamp::parse("20250101000000").unwrap()));
        assert_eq!(p.activate, None);
        let ImportKey::Ed25519 { seed, point } = &p.key else {
            panic!("not an Ed25519 key");
        };
        assert_eq!(seed.as_slice(), b"82260384628080122645190204142262");
        assert_eq!(point, &dnskey().public_key);
    }

    #[test]
    fn missing_field_names_it() {
        let e = parse_err(&private(""));
        assert_eq!(e.to_string(), "K.private:1: PrivateKey is missing");
        assert_eq!(exit_code(&e.into()), 3);
        let e = parse_err("Algorithm: 15\n");
        assert_eq!(
            e.to_string(),
            "K.private:1: not a BIND private key file (no Private-key-format)"
        );
    }

    #[test]
    fn key_material_is_decoded_into_zeroizing_buffers_and_bad_sizes_refused() {
        // The type carries the promise: every decoded field is Zeroizing.
        let _typed = |f: &Fields<'_>| -> Result<Zeroizing<Vec<u8>>, Failure> { f.b64("x") };
        // A seed one octet short is refused, naming the field.
        let e = parse_err(
            &private("PrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n").replace(
                "ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=",
                "ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI",
            ),
        );
        assert!(e.to_string().contains("PrivateKey"), "{e}");
        let e = parse_err(&private(
            "PrivateKey: MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODk=\n",
        ));
        assert_eq!(
            e.to_string(),
            "K.private:1: PrivateKey must be 32 octets for ED25519"
        );
    }

    #[test]
    fn ec_and_rsa_errors_after_decoding_name_their_field() {
        // P-256: a scalar of 31 octets.
        let key = "example. 3600 IN DNSKEY 257 3 13 \
            mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n";
        let dnskey = parse_key_file(key, "K.key").unwrap().1;
        let text = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n\
            PrivateKey: MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMQ==\n";
        let e = parse_private(text, "K.private", &dnskey).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("K.private:1: PrivateKey must be 32 octets for ECDSAP256SHA256")
        );
        // RSA: the first five fields decode, the sixth is bad.
        let key =
            "example. 3600 IN DNSKEY 257 3 8 AwEAAcGFvxL6yCIC1Ev1SuzTrr+ISnLOaTx2OrHzNclC8aB5\n";
        let dnskey = parse_key_file(key, "K.key").unwrap().1;
        let text = "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n\
            Modulus: wYW/EvrIIgLUS/VK7NOuv4hKcs5pPHY6sfM1yULxoHk=\n\
            PublicExponent: AQAB\nPrivateExponent: AQID\nPrime1: AQID\nPrime2: AQID\n\
            Exponent1: !!!\nExponent2: AQID\nCoefficient: AQID\n";
        let e = parse_private(text, "K.private", &dnskey).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("K.private:8: Exponent1 is not base64")
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_err(&private("PrivateKey: !!!\n"));
        assert_eq!(e.to_string(), "K.private:3: PrivateKey is not base64");
        let e = parse_err("Private-key-format: v1.3\ngarbage\n");
        assert_eq!(e.to_string(), "K.private:2: expected 'Field: value'");
        let e = parse_err("Private-key-format: v2.0\n");
        assert_eq!(
            e.to_string(),
            "K.private:1: private key format v2.0 is not supported (v1.x is)"
        );
    }

    #[test]
    fn key_and_private_mismatch() {
        let text = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n\
                    PrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n";
        let e = parse_err(text);
        assert_eq!(
            e.to_string(),
            "K.private:2: algorithm ECDSAP256SHA256 does not match the .key file's 15"
        );
        let e = parse_err(&private("PrivateKey: AAAA\n"));
        assert_eq!(
            e.to_string(),
            "K.private:1: PrivateKey must be 32 octets for ED25519"
        );
    }

    #[test]
    fn role_and_spec_of_an_imported_key() {
        let ksk = dnskey();
        assert_eq!(import_role(None, &ksk), Role::Ksk);
        assert_eq!(import_role(Some(Role::Csk), &ksk), Role::Csk);
        let zsk = Dnskey {
            flags: 256,
            ..dnskey()
        };
        assert_eq!(import_role(None, &zsk), Role::Zsk);
        assert_eq!(
            import_spec(Algorithm::Ed25519, &ksk).unwrap(),
            KeySpec::Ed25519
        );
    }

    #[test]
    fn an_imported_key_is_refused_twice() {
        use crate::keys::testing::record;
        let mut r = record(1, 10, "S", KeyState::Active);
        r.public_key = dnskey().public_key;
        let e = check_not_recorded(std::slice::from_ref(&r), &dnskey().public_key).unwrap_err();
        assert_eq!(exit_code(&e.into()), 10);
        r.state = KeyState::Destroyed;
        assert!(check_not_recorded(&[r], &dnskey().public_key).is_ok());
    }

    #[test]
    fn a_key_the_token_cannot_sign_with_is_refused_before_the_import() {
        let rsa = KeySpec::Rsa { bits: 2048 };
        let sizes = Some((1024, 16384));
        assert!(check_importable(Algorithm::RsaSha256, rsa, 2048, sizes).is_ok());
        let e = check_importable(Algorithm::RsaSha256, rsa, 512, sizes).unwrap_err();
        assert!(e.to_string().contains("512 bits"), "{e}");
        assert!(e.to_string().contains("1024-16384 bits only"), "{e}");
        assert_eq!(exit_code(&e.into()), crate::failure::exit::UNSUPPORTED);
        // A token that reports no sizes is not held to them.
        assert!(check_importable(Algorithm::RsaSha256, rsa, 512, Some((0, 0))).is_ok());
        // Sizes are about RSA moduli only.
        assert!(check_importable(
            Algorithm::EcdsaP384Sha384,
            KeySpec::EcP384,
            384,
            Some((256, 256))
        )
        .is_ok());
        let e = check_importable(Algorithm::Ed25519, KeySpec::Ed25519, 256, None).unwrap_err();
        assert!(e.to_string().contains("CKM_EDDSA"), "{e}");
        assert_eq!(exit_code(&e.into()), crate::failure::exit::UNSUPPORTED);
    }
}
