//! `dnsseal keys create|list|show|dnskey|ds|delete|restore`.

use serde::Serialize;

use super::args::{
    CreateArgs, CreateRole, DeleteArgs, DnskeyArgs, DsArgs, InitialState, ListArgs, SelectArgs,
};
use super::context::{confirm, Context, Failure};
use crate::audit::Event;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::keystore::{DsState, KeyRecord, KeyState, Keystore, NewKey, Origin, Role, Timings};
use crate::token::{KeySpec, PublicKey, UserSession};
use crate::zone::dnskey::{check_public_key, rsa_public_key};
use crate::zone::{Algorithm, DigestType, Dnskey, ZoneName};

/// RSA modulus sizes dnsseal creates (RFC 8624 recommends at least 2048).
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=4096;
/// RSA size when --bits is not given.
pub const RSA_DEFAULT_BITS: u32 = 2048;
/// Tries to draw a key whose tag no other key of the zone has.
const TAG_ATTEMPTS: usize = 5;

/// Maps a DNSSEC algorithm (and RSA size) onto the token's key kind.
pub fn key_spec(alg: Algorithm, bits: Option<u32>) -> anyhow::Result<KeySpec> {
    Ok(match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
            if !RSA_BITS.contains(&bits) {
                return Err(Failure::BadInput(format!(
                    "RSA key size {bits} is out of range: use {} to {} bits",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ))
                .into());
            }
            KeySpec::Rsa { bits }
        }
        other => {
            let fixed = other.fixed_bits().unwrap_or(0);
            if let Some(b) = bits.filter(|&b| b != fixed) {
                return Err(Failure::BadInput(format!(
                    "{other} keys are always {fixed} bits; --bits {b} does not apply"
                ))
                .into());
            }
            match other {
                Algorithm::EcdsaP256Sha256 => KeySpec::EcP256,
                Algorithm::EcdsaP384Sha384 => KeySpec::EcP384,
                _ => KeySpec::Ed25519,
            }
        }
    })
}

/// The key kind of a stored record (for reading its public key back).
pub fn record_spec(rec: &KeyRecord) -> anyhow::Result<(Algorithm, KeySpec)> {
    let alg = Algorithm::from_number(rec.algorithm).ok_or_else(|| {
        Failure::BadInput(format!(
            "key {} has algorithm {}, which dnsseal does not handle",
            rec.key_tag, rec.algorithm
        ))
    })?;
    let spec = match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => KeySpec::Rsa { bits: rec.bits },
        Algorithm::EcdsaP256Sha256 => KeySpec::EcP256,
        Algorithm::EcdsaP384Sha384 => KeySpec::EcP384,
        Algorithm::Ed25519 => KeySpec::Ed25519,
    };
    Ok((alg, spec))
}

/// The DNSKEY public key field for a key the token holds.
pub fn dnskey_public_key(alg: Algorithm, pk: &PublicKey) -> anyhow::Result<Vec<u8>> {
    let field = match pk {
        PublicKey::Rsa { modulus, exponent } => rsa_public_key(exponent, modulus)?,
        PublicKey::Ec { point } | PublicKey::Ed25519 { point } => point.clone(),
    };
    check_public_key(alg, &field)?;
    Ok(field)
}

/// The DNSKEY RDATA of a stored key.
pub fn record_dnskey(rec: &KeyRecord) -> Dnskey {
    Dnskey {
        flags: rec.flags,
        protocol: crate::zone::dnskey::PROTOCOL,
        algorithm: rec.algorithm,
        public_key: rec.public_key.clone(),
    }
}

pub fn parse_zone(s: &str) -> anyhow::Result<ZoneName> {
    s.parse::<ZoneName>()
        .map_err(|e| Failure::BadInput(e.to_string()).into())
}

pub fn parse_algorithm(s: &str) -> anyhow::Result<Algorithm> {
    s.parse::<Algorithm>()
        .map_err(|e| Failure::BadInput(e.to_string()).into())
}

fn ts(t: Option<Timestamp>) -> String {
    t.map(Timestamp::compact).unwrap_or_else(|| "-".into())
}

/// Whether an active key of role `have` already does the job of `want`
/// (a CSK does every job, and any active key stands in the way of a CSK).
fn covers(have: Role, want: Role) -> bool {
    want == Role::Csk || have == want || have == Role::Csk
}

/// The state a new key starts in when the operator does not say: active
/// when nothing does its job yet, a published standby when something
/// does, and only generated when the zone is signed with another algorithm
/// (publishing it before it signs would break RFC 4035 §2.2; an algorithm
/// rollover introduces it).
fn default_state(
    existing: &[KeyRecord],
    planned: &[(Role, KeyState)],
    role: Role,
    alg: u8,
) -> KeyState {
    let other_algorithm_active = existing
        .iter()
        .any(|r| r.state == KeyState::Active && r.algorithm != alg);
    if other_algorithm_active {
        return KeyState::Generated;
    }
    let active_now = existing
        .iter()
        .filter(|r| r.state == KeyState::Active)
        .any(|r| covers(r.role, role))
        || planned
            .iter()
            .any(|(r, s)| *s == KeyState::Active && covers(*r, role));
    if active_now {
        KeyState::Published
    } else {
        KeyState::Active
    }
}

pub fn timings_for(role: Role, state: KeyState, now: Timestamp) -> Timings {
    Timings {
        created: Some(now),
        published: state.is_published().then_some(now),
        active: (state == KeyState::Active).then_some(now),
        ds_submitted: initial_ds(role, state).pending().then_some(now),
        ..Timings::default()
    }
}

/// A KSK or CSK that goes straight into the zone needs its DS at the
/// parent: it starts as submitted (CDS/CDNSKEY ask for it, and `dnsseal
/// keys ds` prints it) until `dnsseal rollover ds-seen` confirms it.
pub fn initial_ds(role: Role, state: KeyState) -> DsState {
    if role.is_sep() && state.is_published() {
        DsState::Submitted
    } else {
        DsState::None
    }
}

pub fn initial_state(s: InitialState) -> KeyState {
    match s {
        InitialState::Generated => KeyState::Generated,
        InitialState::Published => KeyState::Published,
        InitialState::Active => KeyState::Active,
    }
}

#[derive(Serialize)]
struct KeyView<'a> {
    #[serde(flatten)]
    record: &'a KeyRecord,
    algorithm_name: String,
    dnskey: String,
}

fn view(rec: &KeyRecord) -> KeyView<'_> {
    KeyView {
        record: rec,
        algorithm_name: Algorithm::from_number(rec.algorithm)
            .map(|a| a.mnemonic().to_string())
            .unwrap_or_else(|| rec.algorithm.to_string()),
        dnskey: record_dnskey(rec).to_string(),
    }
}

pub fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    // Input first: nothing is touched before it is all valid.
    let zone = parse_zone(&args.zone)?;
    let alg = parse_algorithm(&args.algorithm)?;
    let spec = key_spec(alg, args.bits)?;
    let roles: Vec<Role> = match args.role {
        CreateRole::Ksk => vec![Role::Ksk],
        CreateRole::Zsk => vec![Role::Zsk],
        CreateRole::Csk => vec![Role::Csk],
        CreateRole::Both => vec![Role::Ksk, Role::Zsk, Role::Zsk],
    };
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let zone_s = zone.to_string();
    let created = ctx.audited(&cfg, Some(zone_s.clone()), || {
        create_keys(ctx, &cfg, &mut ks, &zone, alg, spec, &roles, args.state)
    })?;
    for rec in &created {
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
                    "generated {} {} {} bits in token {} (label '{}')",
                    rec.role, alg, rec.bits, rec.token_serial, rec.cka_label
                ),
            },
        )?;
    }
    if ctx.json {
        let views: Vec<_> = created.iter().map(view).collect();
        return ctx.print_json(&views);
    }
    print_table(&created)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn create_keys(
    ctx: &Context,
    cfg: &Config,
    ks: &mut Keystore,
    zone: &ZoneName,
    alg: Algorithm,
    spec: KeySpec,
    roles: &[Role],
    state: Option<InitialState>,
) -> anyhow::Result<Vec<KeyRecord>> {
    let module = ctx.module(cfg)?;
    let (token, session) = ctx.login(cfg, &module)?;
    let zone_s = zone.to_string();
    recover_pending(ctx, cfg, ks, &session, &token.identity.serial)?;
    let existing: Vec<KeyRecord> = ks
        .keys(Some(&zone_s))?
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    // Each key's state from the zone's keys and those made before it here.
    let mut planned: Vec<(Role, KeyState)> = Vec::new();
    for &role in roles {
        let s = state
            .map(initial_state)
            .unwrap_or_else(|| default_state(&existing, &planned, role, alg.number()));
        planned.push((role, s));
    }
    let now = ctx.now();
    let new_keys = generate_keys(cfg, ks, &token, &session, zone, alg, spec, &planned, now)?;
    if let Err(e) = ks.insert_keys(&new_keys) {
        // Nothing recorded them: take the new objects out of the token again.
        let made: Vec<Vec<u8>> = new_keys.iter().map(|k| k.cka_id.clone()).collect();
        forget_objects(ks, &session, &token.identity.serial, &made);
        return Err(e.into());
    }
    let all = ks.keys(Some(&zone_s))?;
    Ok(all
        .into_iter()
        .filter(|r| {
            new_keys
                .iter()
                .any(|n| n.cka_id == r.cka_id && n.token_serial == r.token_serial)
        })
        .collect())
}

/// Generates a key pair whose key tag clashes with no other key of the
/// zone (a clash is legal but confuses operators and some validators).
///
/// Each CKA_ID is noted in the keystore's journal before the token makes
/// the pair, so that a run killed before the key is recorded leaves a trace
/// that [`recover_pending`] cleans up.
#[allow(clippy::too_many_arguments)]
fn generate_unique(
    ks: &mut Keystore,
    session: &UserSession,
    serial: &str,
    id_len: usize,
    spec: KeySpec,
    alg: Algorithm,
    role: Role,
    label: &str,
    existing: &[KeyRecord],
    planned: &[NewKey],
    made_ids: &mut Vec<Vec<u8>>,
    now: Timestamp,
) -> anyhow::Result<(Vec<u8>, Dnskey)> {
    for _ in 0..TAG_ATTEMPTS {
        let id = session.fresh_id(id_len)?;
        ks.add_pending(serial, &id, now)?;
        made_ids.push(id.clone());
        let pk = session.generate(spec, &id, label)?;
        let dnskey = Dnskey::new(alg, role.is_sep(), dnskey_public_key(alg, &pk)?);
        let tag = dnskey.key_tag();
        let clash =
            existing.iter().any(|r| r.key_tag == tag) || planned.iter().any(|n| n.key_tag == tag);
        if !clash {
            return Ok((id, dnskey));
        }
        tracing::info!(tag, "key tag already used in the zone; drawing another key");
        session.destroy(&id)?;
        ks.remove_pending(serial, &id)?;
        made_ids.pop();
    }
    Err(anyhow::anyhow!(
        "could not draw a key with an unused key tag in {TAG_ATTEMPTS} attempts"
    ))
}

/// Generates key pairs in the token for a zone and returns them as records
/// still to be stored (by the caller, in its own transaction). On an
/// error every pair made is destroyed again.
#[allow(clippy::too_many_arguments)]
pub fn generate_keys(
    cfg: &Config,
    ks: &mut Keystore,
    token: &crate::token::Token<'_>,
    session: &UserSession,
    zone: &ZoneName,
    alg: Algorithm,
    spec: KeySpec,
    roles: &[(Role, KeyState)],
    now: Timestamp,
) -> anyhow::Result<Vec<NewKey>> {
    let cap = token.capability(spec)?;
    if !cap.supported {
        return Err(crate::token::TokenError::Unsupported {
            what: format!("{alg} ({spec})"),
            reason: if cap.missing.is_empty() {
                format!(
                    "key size outside the token's range {}-{} bits",
                    cap.min_bits.unwrap_or(0),
                    cap.max_bits.unwrap_or(0)
                )
            } else {
                format!("mechanisms missing: {}", cap.missing.join(", "))
            },
        }
        .into());
    }
    let zone_s = zone.to_string();
    let existing: Vec<KeyRecord> = ks
        .keys(Some(&zone_s))?
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    let mut new_keys: Vec<NewKey> = Vec::new();
    let mut made_ids: Vec<Vec<u8>> = Vec::new();
    let serial = token.identity.serial.clone();
    let result = (|| -> anyhow::Result<()> {
        for &(role, state) in roles {
            let label = format!("{zone_s} {role} {} {}", alg.mnemonic(), now.compact());
            let (id, dnskey) = generate_unique(
                ks,
                session,
                &serial,
                cfg.token.profile.cka_id_len,
                spec,
                alg,
                role,
                &label,
                &existing,
                &new_keys,
                &mut made_ids,
                now,
            )?;
            new_keys.push(NewKey {
                zone: zone_s.clone(),
                key_tag: dnskey.key_tag(),
                role,
                algorithm: alg.number(),
                bits: dnskey.bits(),
                flags: dnskey.flags,
                public_key: dnskey.public_key.clone(),
                token_serial: serial.clone(),
                token_label: token.identity.label.clone(),
                cka_id: id,
                cka_label: label,
                state,
                ds: initial_ds(role, state),
                origin: Origin::Generated,
                timings: timings_for(role, state, now),
            });
        }
        Ok(())
    })();
    if let Err(e) = result {
        forget_objects(ks, session, &serial, &made_ids);
        return Err(e);
    }
    Ok(new_keys)
}

/// Destroys token objects that no record names, and their journal entries.
pub fn forget_objects(ks: &mut Keystore, session: &UserSession, serial: &str, ids: &[Vec<u8>]) {
    for id in ids {
        match session.destroy(id) {
            Ok(_) => {
                if let Err(e) = ks.remove_pending(serial, id) {
                    tracing::error!(id = %hex::encode(id), "could not clear the key journal: {e}");
                }
            }
            Err(d) => {
                tracing::error!(id = %hex::encode(id), "could not remove an unrecorded key pair: {d}")
            }
        }
    }
}

/// Cleans up after runs that were stopped between making a key pair and
/// recording it: pairs that no record names are destroyed (nothing ever
/// signed with them), and the cleanup is audited.
pub fn recover_pending(
    ctx: &Context,
    cfg: &Config,
    ks: &mut Keystore,
    session: &UserSession,
    serial: &str,
) -> anyhow::Result<()> {
    let pending = ks.pending(serial)?;
    if pending.is_empty() {
        return Ok(());
    }
    let known = ks.keys(None)?;
    for id in pending {
        let recorded = known
            .iter()
            .any(|k| k.token_serial == serial && k.cka_id == id);
        if !recorded {
            // Audited before the objects go, so that a run stopped halfway
            // through the cleanup leaves no destruction unlogged.
            ctx.audit(
                cfg,
                ks,
                Event {
                    command: ctx.command.clone(),
                    key_id: Some(hex::encode(&id)),
                    detail: "recovery: destroyed the token objects (if any) of an interrupted key generation (never recorded, never used)".into(),
                    ..Event::default()
                },
            )?;
            let destroyed = session.destroy(&id)?;
            tracing::warn!(id = %hex::encode(&id), objects = destroyed, "destroyed a key pair of an interrupted run that was never recorded");
        }
        ks.remove_pending(serial, &id)?;
    }
    Ok(())
}

fn print_table(records: &[KeyRecord]) -> anyhow::Result<()> {
    outln!(
        "{:<24} {:>5} {:<4} {:<16} {:>5} {:<10} {:<14} {:<14} {:<14} {:<14} {:<14} {:<16} CKA_ID",
        "ZONE",
        "TAG",
        "ROLE",
        "ALGORITHM",
        "BITS",
        "STATE",
        "CREATED",
        "PUBLISHED",
        "ACTIVE",
        "INACTIVE",
        "REMOVED",
        "TOKEN"
    );
    for r in records {
        let alg = Algorithm::from_number(r.algorithm)
            .map(|a| a.mnemonic().to_string())
            .unwrap_or_else(|| r.algorithm.to_string());
        outln!(
            "{:<24} {:>5} {:<4} {:<16} {:>5} {:<10} {:<14} {:<14} {:<14} {:<14} {:<14} {:<16} {}{}",
            r.zone,
            r.key_tag,
            r.role.as_str(),
            alg,
            r.bits,
            r.state.as_str(),
            ts(r.timings.created),
            ts(r.timings.published),
            ts(r.timings.active),
            ts(r.timings.inactive),
            ts(r.timings.removed),
            r.token_serial,
            hex::encode(&r.cka_id),
            if r.origin == Origin::Imported {
                " (imported)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let zone = args.zone.as_deref().map(parse_zone).transpose()?;
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let records = ks.keys(zone.as_ref().map(|z| z.to_string()).as_deref())?;
    if ctx.json {
        let views: Vec<_> = records.iter().map(view).collect();
        return ctx.print_json(&views);
    }
    if records.is_empty() {
        eprintln!(
            "no keys{}",
            zone.map(|z| format!(" for {z}")).unwrap_or_default()
        );
        return Ok(());
    }
    print_table(&records)?;
    Ok(())
}

/// Finds the one key a --tag (and --id) names; destroyed keys only when
/// `include_destroyed`.
pub fn select(
    ks: &Keystore,
    args: &SelectArgs,
    include_destroyed: bool,
) -> anyhow::Result<KeyRecord> {
    let zone = parse_zone(&args.zone)?;
    let id = args
        .id
        .as_deref()
        .map(|h| hex::decode(h).map_err(|_| Failure::BadInput(format!("--id '{h}' is not hex"))))
        .transpose()?;
    let matches: Vec<KeyRecord> = ks
        .keys(Some(&zone.to_string()))?
        .into_iter()
        .filter(|r| r.key_tag == args.tag)
        .filter(|r| include_destroyed || r.state != KeyState::Destroyed)
        .filter(|r| id.as_ref().is_none_or(|i| *i == r.cka_id))
        .collect();
    match matches.len() {
        1 => Ok(matches
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no key"))?),
        0 => Err(Failure::BadInput(format!(
            "{zone} has no key with tag {}{}",
            args.tag,
            if include_destroyed {
                ""
            } else {
                " (that is not destroyed)"
            }
        ))
        .into()),
        _ => Err(Failure::BadInput(format!(
            "{} keys of {zone} have tag {}: add --id with one of {}",
            matches.len(),
            args.tag,
            matches
                .iter()
                .map(|r| hex::encode(&r.cka_id))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

pub fn show(ctx: &Context, args: SelectArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let rec = select(&ks, &args, true)?;
    let zone = parse_zone(&rec.zone)?;
    let dnskey = record_dnskey(&rec);
    let ds: Vec<String> = if rec.role.is_sep() {
        [DigestType::Sha256, DigestType::Sha384]
            .into_iter()
            .map(|d| dnskey.ds(&zone, d).to_string())
            .collect()
    } else {
        Vec::new()
    };
    if ctx.json {
        return ctx.print_json(&serde_json::json!({ "key": view(&rec), "ds": ds }));
    }
    let alg = Algorithm::from_number(rec.algorithm)
        .map(|a| a.mnemonic())
        .unwrap_or("?");
    outln!("zone        {}", rec.zone);
    outln!("key tag     {}", rec.key_tag);
    outln!("role        {}", rec.role);
    outln!("algorithm   {} ({}), {} bits", alg, rec.algorithm, rec.bits);
    outln!("state       {}", rec.state);
    if rec.role.is_sep() {
        outln!("DS state    {}", rec.ds);
    }
    outln!("origin      {}", rec.origin.as_str());
    outln!(
        "token       serial {} label '{}'",
        rec.token_serial,
        rec.token_label
    );
    outln!("CKA_ID      {}", hex::encode(&rec.cka_id));
    outln!("CKA_LABEL   {}", rec.cka_label);
    let t = &rec.timings;
    for (name, v) in [
        ("created", t.created),
        ("published", t.published),
        ("active", t.active),
        ("inactive", t.inactive),
        ("revoked", t.revoked),
        ("removed", t.removed),
        ("destroyed", t.destroyed),
        ("DS asked", t.ds_submitted),
        ("DS seen", t.ds_seen),
        ("DS retired", t.ds_retired),
        ("DS gone", t.ds_gone),
    ] {
        if let Some(v) = v {
            outln!("{name:<11} {v}");
        }
    }
    outln!("DNSKEY      {} IN DNSKEY {}", rec.zone, dnskey);
    for d in ds {
        outln!("DS          {} IN DS {}", rec.zone, d);
    }
    Ok(())
}

fn published(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<Vec<KeyRecord>> {
    Ok(ks
        .keys(Some(&zone.to_string()))?
        .into_iter()
        .filter(|r| r.state.is_published())
        .collect())
}

fn comment(rec: &KeyRecord) -> String {
    let alg = Algorithm::from_number(rec.algorithm)
        .map(|a| a.mnemonic())
        .unwrap_or("?");
    let kind = match rec.role {
        Role::Ksk => "KSK",
        Role::Zsk => "ZSK",
        Role::Csk => "CSK",
    };
    format!("; {kind} {alg} key tag {} ({})", rec.key_tag, rec.state)
}

pub fn dnskey(ctx: &Context, args: DnskeyArgs) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let keys = published(&ks, &zone)?;
    if keys.is_empty() {
        return Err(Failure::BadInput(format!(
            "{zone} has no published keys: create some with `dnsseal keys create`"
        ))
        .into());
    }
    if ctx.json {
        let views: Vec<_> = keys.iter().map(view).collect();
        return ctx.print_json(&views);
    }
    for k in &keys {
        outln!(
            "{zone} {} IN DNSKEY {} {}",
            args.ttl,
            record_dnskey(k),
            comment(k)
        );
    }
    Ok(())
}

pub fn ds(ctx: &Context, args: DsArgs) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let digests = args
        .digest
        .iter()
        .map(|d| {
            d.parse::<DigestType>()
                .map_err(|e| Failure::BadInput(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if digests.contains(&DigestType::Sha1) {
        tracing::warn!("SHA-1 DS records are deprecated (RFC 8624: MUST NOT be generated); give them only to parents that need them");
    }
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    // What the parent should hold: every KSK/CSK whose DS is submitted or
    // seen (in a double-DS rollover that includes a key not yet published).
    let keys: Vec<KeyRecord> = ks
        .keys(Some(&zone.to_string()))?
        .into_iter()
        .filter(|r| r.role.is_sep() && r.ds.wanted() && r.state != KeyState::Destroyed)
        .collect();
    if keys.is_empty() {
        return Err(Failure::BadInput(format!(
            "{zone} has no KSK or CSK whose DS the parent should hold: nothing to give the parent"
        ))
        .into());
    }
    if ctx.json {
        let out: Vec<_> = keys
            .iter()
            .map(|k| {
                let dk = record_dnskey(k);
                serde_json::json!({
                    "key_tag": k.key_tag,
                    "algorithm": k.algorithm,
                    "state": k.state,
                    "dnskey": dk.to_string(),
                    "ds": digests.iter().map(|d| dk.ds(&zone, *d).to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        return ctx.print_json(&out);
    }
    for k in &keys {
        let dk = record_dnskey(k);
        if args.dnskey {
            outln!("{zone} {} IN DNSKEY {} {}", args.ttl, dk, comment(k));
        } else {
            for d in &digests {
                outln!(
                    "{zone} {} IN DS {} {}",
                    args.ttl,
                    dk.ds(&zone, *d),
                    comment(k)
                );
            }
        }
    }
    Ok(())
}

pub fn delete(ctx: &Context, args: DeleteArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let zone = parse_zone(&args.key.zone)?.to_string();
    let (rec, new_state) = ctx.audited(&cfg, Some(zone.clone()), || {
        let rec = select(&ks, &args.key, false)?;
        if rec.state == KeyState::Active && !args.force {
            return Err(Failure::Refused(format!(
                "key {} of {} is active: the zone is signed with it. Roll it first, or use --force (the zone will fail validation until re-signed)",
                rec.key_tag, rec.zone
            ))
            .into());
        }
        if rec.state == KeyState::Active {
            tracing::warn!(tag = rec.key_tag, "FORCED: deleting a key that is still active for signing");
        }
        if !args.destroy && rec.state == KeyState::Removed {
            return Err(Failure::Refused(format!(
                "key {} is already removed; --destroy destroys its token objects",
                rec.key_tag
            ))
            .into());
        }
        let now = ctx.now();
        let mut t = rec.timings;
        t.removed = t.removed.or(Some(now));
        if rec.state == KeyState::Active {
            t.inactive = t.inactive.or(Some(now));
        }
        let new_state = if args.destroy {
            if !args.yes
                && !confirm(
                    &format!(
                        "Destroy key {} of {} in the token? This cannot be undone. Type the key tag to confirm:",
                        rec.key_tag, rec.zone
                    ),
                    &rec.key_tag.to_string(),
                )
            {
                return Err(Failure::Refused(
                    "not confirmed: --destroy needs the key tag typed on a terminal, or --yes".into(),
                )
                .into());
            }
            let module = ctx.module(&cfg)?;
            let (token, session) = ctx.login(&cfg, &module)?;
            if token.identity.serial != rec.token_serial {
                return Err(Failure::Refused(format!(
                    "key {} lives in token serial {}, not in the configured token {}",
                    rec.key_tag, rec.token_serial, token.identity.serial
                ))
                .into());
            }
            let n = session.destroy(&rec.cka_id)?;
            if n == 0 {
                return Err(Failure::Drift(format!(
                    "the token has no object with CKA_ID {}: run `dnsseal keys reconcile`",
                    hex::encode(&rec.cka_id)
                ))
                .into());
            }
            t.destroyed = Some(now);
            KeyState::Destroyed
        } else {
            KeyState::Removed
        };
        if !ks.set_state(rec.id, rec.state, new_state, &t)? {
            return Err(anyhow::anyhow!("key {} changed while we worked on it; nothing recorded, look again", rec.key_tag));
        }
        Ok((rec, new_state))
    })?;
    ctx.audit(
        &cfg,
        &mut ks,
        Event {
            command: ctx.command.clone(),
            zone: Some(zone),
            key_tag: Some(rec.key_tag),
            key_id: Some(hex::encode(&rec.cka_id)),
            old_state: Some(rec.state.to_string()),
            new_state: Some(new_state.to_string()),
            failed: false,
            detail: match (new_state, rec.state == KeyState::Active) {
                (KeyState::Destroyed, true) => {
                    "FORCED: destroyed token objects of an active key".into()
                }
                (KeyState::Destroyed, false) => "destroyed token objects".into(),
                (_, true) => "FORCED: removed an active key (token objects kept)".into(),
                _ => "removed (token objects kept; `keys restore` brings it back)".into(),
            },
        },
    )?;
    outln!(
        "key {} of {}: {} -> {}",
        rec.key_tag,
        rec.zone,
        rec.state,
        new_state
    );
    Ok(())
}

pub fn restore(ctx: &Context, args: SelectArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let zone = parse_zone(&args.zone)?.to_string();
    let rec = ctx.audited(&cfg, Some(zone.clone()), || {
        let rec = select(&ks, &args, false)?;
        if rec.state != KeyState::Removed {
            return Err(Failure::Refused(format!("key {} is {}, not removed: nothing to restore", rec.key_tag, rec.state)).into());
        }
        // The token must still hold the very key the record describes.
        let (alg, spec) = record_spec(&rec)?;
        let module = ctx.module(&cfg)?;
        let (_token, session) = ctx.login(&cfg, &module)?;
        let pk = session.public_key(&rec.cka_id, spec).map_err(|e| match e {
            crate::token::TokenError::KeyNotFound { .. } => Failure::Drift(format!(
                "key {}: {e}; it cannot be restored (run `dnsseal keys reconcile`)",
                rec.key_tag
            ))
            .into(),
            other => anyhow::Error::from(other),
        })?;
        if dnskey_public_key(alg, &pk)? != rec.public_key {
            return Err(Failure::Drift(format!(
                "the token object with CKA_ID {} holds another public key than the record: run `dnsseal keys reconcile`",
                hex::encode(&rec.cka_id)
            ))
            .into());
        }
        let mut t = rec.timings;
        t.removed = None;
        t.inactive = None;
        t.published = Some(ctx.now());
        if !ks.set_state(rec.id, KeyState::Removed, KeyState::Published, &t)? {
            return Err(anyhow::anyhow!("key {} changed while we worked on it; look again", rec.key_tag));
        }
        Ok(rec)
    })?;
    ctx.audit(
        &cfg,
        &mut ks,
        Event {
            command: ctx.command.clone(),
            zone: Some(zone),
            key_tag: Some(rec.key_tag),
            key_id: Some(hex::encode(&rec.cka_id)),
            old_state: Some(KeyState::Removed.to_string()),
            new_state: Some(KeyState::Published.to_string()),
            failed: false,
            detail: "restored as a published standby key".into(),
        },
    )?;
    outln!("key {} of {}: removed -> published", rec.key_tag, rec.zone);
    Ok(())
}
