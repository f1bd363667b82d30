//! `dnsseal keys import-bind`: migration of a BIND key pair into the token.
//!
//! This is the one path by which private key material enters dnsseal, so it
//! is explicit (a confirmation or --yes), loud (warnings and an audit record
//! that says IMPORTED) and careful: the file contents and decoded key are
//! zeroized, the token object is sensitive and not extractable from then
//! on, and a test signature made by the token must verify with the public
//! key in the `.key` file before anything is recorded.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::args::ImportArgs;
use super::context::{confirm, Context, Failure};
use super::keys::{
    dnskey_public_key, initial_ds, initial_state, key_spec, parse_zone, timings_for,
};
use crate::audit::Event;
use crate::clock::Timestamp;
use crate::keystore::{KeyState, NewKey, Origin, Role};
use crate::sign::{self, TokenInput};
use crate::token::{EcCurve, ImportKey, SignMechanism};
use crate::zone::dnskey::{rsa_components, strip_leading_zeros};
use crate::zone::{Algorithm, Dnskey, ZoneName};

/// A parsed `K*.private` file: the algorithm, the key, and BIND's timing
/// metadata (Publish, Activate) if present.
struct BindPrivate {
    algorithm: Algorithm,
    key: ImportKey,
    publish: Option<Timestamp>,
    activate: Option<Timestamp>,
}

pub fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let role = args
        .role
        .as_deref()
        .map(|r| r.parse::<Role>().map_err(Failure::BadInput))
        .transpose()?;
    let key_file = key_file_for(&args.private_file)?;
    let (owner, dnskey) = read_key_file(&key_file)?;
    if owner != zone {
        return Err(Failure::BadInput(format!(
            "{}: the key belongs to {owner}, not {zone}",
            key_file.display()
        ))
        .into());
    }
    let private = read_private_file(&args.private_file, &dnskey)?;
    let alg = private.algorithm;
    let role = role.unwrap_or(if dnskey.is_sep() {
        Role::Ksk
    } else {
        Role::Zsk
    });
    if role.is_sep() != dnskey.is_sep() {
        tracing::warn!(
            "role {role} does not match the DNSKEY flags {} of the file; the flags follow the role",
            dnskey.flags
        );
    }
    let spec = key_spec(alg, Some(dnskey.bits()).filter(|_| alg.is_rsa()))
        .or_else(|_| key_spec(alg, None))?;

    eprintln!(
        "WARNING: importing PRIVATE KEY MATERIAL from {}.\n\
         This key has existed outside any token; dnsseal records it as 'imported'\n\
         and audits the import. Destroy the file securely once the migration is done.",
        args.private_file.display()
    );
    if !args.yes
        && !confirm(
            "Import it into the token? Type 'import' to go on:",
            "import",
        )
    {
        return Err(Failure::Refused(
            "not confirmed: type 'import' on a terminal, or pass --yes".into(),
        )
        .into());
    }

    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let zone_s = zone.to_string();
    let now = ctx.now();
    let state =
        args.state
            .map(initial_state)
            .unwrap_or(match (private.activate, private.publish) {
                (Some(a), _) if a <= now => KeyState::Active,
                (_, Some(p)) if p <= now => KeyState::Published,
                _ => KeyState::Generated,
            });
    let rec = ctx.audited(&cfg, Some(zone_s.clone()), || {
        let existing = ks.keys(Some(&zone_s))?;
        let final_dnskey = Dnskey::new(alg, role.is_sep(), dnskey.public_key.clone());
        if let Some(dup) = existing
            .iter()
            .find(|r| r.state != KeyState::Destroyed && r.public_key == dnskey.public_key)
        {
            return Err(Failure::Refused(format!("this key is already in the keystore as key {} of {}", dup.key_tag, dup.zone)).into());
        }
        let module = ctx.module(&cfg)?;
        let (token, session) = ctx.login(&cfg, &module)?;
        let id = session.fresh_id(cfg.token.profile.cka_id_len)?;
        let label = format!("{zone_s} {role} {} imported {}", alg.mnemonic(), now.compact());
        session.import(&private.key, &id, &label)?;
        let checked = (|| -> anyhow::Result<()> {
            // The token's public object must be the .key file's key …
            let pk = dnskey_public_key(alg, &session.public_key(&id, spec)?)?;
            if pk != dnskey.public_key {
                anyhow::bail!("the token holds another public key than {} after the import", key_file.display());
            }
            // … and the private object must sign for it.
            let challenge = session.random(32)?;
            let (mech, input) = match sign::token_input(alg, &challenge) {
                TokenInput::RsaPkcs(v) => (SignMechanism::RsaPkcs, v),
                TokenInput::Ecdsa(v) => (SignMechanism::Ecdsa, v),
                TokenInput::EdDsa(v) => (SignMechanism::EdDsa, v),
            };
            let sig = session.sign(&id, mech, &input)?;
            if !sign::verify(alg, &dnskey.public_key, &challenge, &sig) {
                return Err(Failure::BadInput(format!(
                    "{} and {} are not one key pair: a signature by the private key does not verify with the public key",
                    args.private_file.display(),
                    key_file.display()
                ))
                .into());
            }
            ks.insert_keys(&[NewKey {
                zone: zone_s.clone(),
                key_tag: final_dnskey.key_tag(),
                role,
                algorithm: alg.number(),
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
                timings: timings_for(role, state, now),
            }])?;
            Ok(())
        })();
        if let Err(e) = checked {
            let _ = session.destroy(&id);
            return Err(e);
        }
        let rec = ks
            .keys(Some(&zone_s))?
            .into_iter()
            .find(|r| r.cka_id == id && r.token_serial == token.identity.serial)
            .ok_or_else(|| anyhow::anyhow!("the imported key's record is missing"))?;
        Ok(rec)
    })?;
    drop(private);
    ctx.audit(
        &cfg,
        &mut ks,
        Event {
            command: ctx.command.clone(),
            zone: Some(zone_s.clone()),
            key_tag: Some(rec.key_tag),
            key_id: Some(hex::encode(&rec.cka_id)),
            old_state: None,
            new_state: Some(rec.state.to_string()),
            failed: false,
            detail: format!(
                "IMPORTED private key material from {} (key existed outside the token; not generated in it)",
                args.private_file.display()
            ),
        },
    )?;
    outln!(
        "imported key {} of {} as {} ({}, {}), CKA_ID {}",
        rec.key_tag,
        rec.zone,
        rec.role,
        alg,
        rec.state,
        hex::encode(&rec.cka_id)
    );
    Ok(())
}

/// `Kzone.+alg+tag.private` → `Kzone.+alg+tag.key`.
fn key_file_for(private: &Path) -> anyhow::Result<PathBuf> {
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
fn read_key_file(path: &Path) -> anyhow::Result<(ZoneName, Dnskey)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pos) = fields.iter().position(|f| f.eq_ignore_ascii_case("DNSKEY")) else {
            continue;
        };
        let bad = |what: &str| Failure::BadInput(format!("{}:{}: {what}", path.display(), n + 1));
        let owner: ZoneName = fields[0]
            .parse()
            .map_err(|e: crate::zone::NameError| bad(&e.to_string()))?;
        let dnskey = Dnskey::from_presentation(&fields[pos + 1..].join(" "))
            .ok_or_else(|| bad("DNSKEY RDATA is malformed"))?;
        return Ok((owner, dnskey));
    }
    Err(Failure::BadInput(format!("{}: no DNSKEY record found", path.display())).into())
}

/// Parses a BIND private key file (format v1.2/v1.3).
fn read_private_file(path: &Path, dnskey: &Dnskey) -> anyhow::Result<BindPrivate> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let bad = |line: usize, what: String| -> anyhow::Error {
        Failure::BadInput(format!("{}:{line}: {what}", path.display())).into()
    };
    let mut fields: Vec<(String, Zeroizing<String>, usize)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(bad(n + 1, "expected 'Field: value'".into()));
        };
        fields.push((
            k.trim().to_string(),
            Zeroizing::new(v.trim().to_string()),
            n + 1,
        ));
    }
    let get = |name: &str| fields.iter().find(|(k, _, _)| k == name);
    let format = get("Private-key-format").ok_or_else(|| {
        bad(
            1,
            "not a BIND private key file (no Private-key-format)".into(),
        )
    })?;
    if !format.1.starts_with("v1.") {
        return Err(bad(
            format.2,
            format!(
                "private key format {} is not supported (v1.x is)",
                &*format.1
            ),
        ));
    }
    let (alg_s, alg_line) = get("Algorithm")
        .map(|(_, v, l)| (v.split_whitespace().next().unwrap_or("").to_string(), *l))
        .ok_or_else(|| bad(1, "no Algorithm field".into()))?;
    let algorithm: Algorithm = alg_s
        .parse()
        .map_err(|e: crate::zone::algorithm::UnknownAlgorithm| bad(alg_line, e.to_string()))?;
    if dnskey.algorithm != algorithm.number() {
        return Err(bad(
            alg_line,
            format!(
                "algorithm {algorithm} does not match the .key file's {}",
                dnskey.algorithm
            ),
        ));
    }
    let b64 = |name: &str| -> anyhow::Result<Vec<u8>> {
        let (_, v, line) = get(name).ok_or_else(|| bad(1, format!("{name} is missing")))?;
        BASE64
            .decode(v.as_bytes())
            .map_err(|_| bad(*line, format!("{name} is not base64")))
    };
    let key = match algorithm {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let key = ImportKey::Rsa {
                modulus: b64("Modulus")?,
                public_exponent: b64("PublicExponent")?,
                private_exponent: b64("PrivateExponent")?,
                prime1: b64("Prime1")?,
                prime2: b64("Prime2")?,
                exponent1: b64("Exponent1")?,
                exponent2: b64("Exponent2")?,
                coefficient: b64("Coefficient")?,
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
                    return Err(bad(
                        1,
                        "Modulus/PublicExponent do not match the .key file".into(),
                    ));
                }
            }
            key
        }
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
            let scalar = b64("PrivateKey")?;
            let want = if algorithm == Algorithm::EcdsaP256Sha256 {
                32
            } else {
                48
            };
            if scalar.len() != want {
                return Err(bad(
                    1,
                    format!("PrivateKey must be {want} octets for {algorithm}"),
                ));
            }
            ImportKey::Ec {
                spec: if want == 32 {
                    EcCurve::P256
                } else {
                    EcCurve::P384
                },
                scalar,
                point: dnskey.public_key.clone(),
            }
        }
        Algorithm::Ed25519 => {
            let seed = b64("PrivateKey")?;
            if seed.len() != 32 {
                return Err(bad(1, "PrivateKey must be 32 octets for ED25519".into()));
            }
            ImportKey::Ed25519 {
                seed,
                point: dnskey.public_key.clone(),
            }
        }
    };
    let time = |name: &str| -> anyhow::Result<Option<Timestamp>> {
        match get(name) {
            None => Ok(None),
            Some((_, v, line)) => Timestamp::parse(v)
                .map(Some)
                .map_err(|e| bad(*line, e.to_string())),
        }
    };
    Ok(BindPrivate {
        algorithm,
        key,
        publish: time("Publish")?,
        activate: time("Activate")?,
    })
}
