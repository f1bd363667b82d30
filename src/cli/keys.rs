//! `dnsseal keys create|list|show|dnskey|ds|delete|restore`: arguments in,
//! calls into [`crate::keys`], output printed.

use super::args::{
    CreateArgs, CreateRole, DeleteArgs, DnskeyArgs, DsArgs, InitialState, ListArgs, SelectArgs,
};
use super::context::{confirm, Context, Failure};
use crate::audit::Event;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::keys::create::CreateRequest;
use crate::keys::retire;
use crate::keys::select::{self, KeyRef};
use crate::keys::KeyView;
use crate::keystore::{KeyRecord, KeyState, Keystore, Origin, Role};
use crate::token::{KeyObjects, UserSession};
use crate::zone::DigestType;

use crate::keys::spec::key_spec;
use crate::keys::{parse_algorithm, parse_zone};

fn ts(t: Option<Timestamp>) -> String {
    t.map(Timestamp::compact).unwrap_or_else(|| "-".into())
}

/// The state `--state` asks for.
pub fn initial_state(s: InitialState) -> KeyState {
    match s {
        InitialState::Generated => KeyState::Generated,
        InitialState::Published => KeyState::Published,
        InitialState::Active => KeyState::Active,
    }
}

fn view(rec: &KeyRecord) -> KeyView<'_> {
    KeyView::of(rec)
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
        let req = CreateRequest {
            zone: &zone,
            alg,
            spec,
            roles: &roles,
            state: args.state.map(initial_state),
            cka_id_len: cfg.token.profile.cka_id_len,
            key_objects: KeyObjects::of(&cfg.token.profile),
            now: ctx.now(),
        };
        create_keys(ctx, &cfg, &mut ks, req)
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
                checkpoint: None,
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

/// Creates the keys under the token lock and login, with recovery of an
/// interrupted run audited under this command.
fn create_keys(
    ctx: &Context,
    cfg: &Config,
    ks: &mut Keystore,
    req: CreateRequest<'_>,
) -> anyhow::Result<Vec<KeyRecord>> {
    let module = ctx.module(cfg)?;
    let (token, session) = ctx.login(cfg, &module)?;
    crate::keys::create::create_keys(ks, &token, &session, req, &mut |ks, e| {
        audit_as(ctx, cfg, ks, e)
    })
}

/// Appends a library event to the audit log under this run's command.
fn audit_as(ctx: &Context, cfg: &Config, ks: &mut Keystore, e: Event) -> anyhow::Result<()> {
    ctx.audit(
        cfg,
        ks,
        Event {
            command: ctx.command.clone(),
            ..e
        },
    )
}

/// [`crate::keys::create::recover_pending`], auditing under this run's
/// command.
pub fn recover_pending(
    ctx: &Context,
    cfg: &Config,
    ks: &mut Keystore,
    session: &UserSession,
    serial: &str,
) -> anyhow::Result<()> {
    crate::keys::create::recover_pending(ks, session, serial, &mut |ks, e| {
        audit_as(ctx, cfg, ks, e)
    })
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
        let alg = r.algorithm.mnemonic();
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
    crate::keys::select::select(ks, key_ref(args), include_destroyed)
}

fn key_ref(args: &SelectArgs) -> KeyRef<'_> {
    KeyRef {
        zone: &args.zone,
        tag: args.tag,
        id_hex: args.id.as_deref(),
    }
}

pub fn show(ctx: &Context, args: SelectArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let rec = select(&ks, &args, true)?;
    let zone = &rec.zone;
    let dnskey = rec.dnskey();
    let ds: Vec<String> = if rec.role.is_sep() {
        [DigestType::Sha256, DigestType::Sha384]
            .into_iter()
            .map(|d| dnskey.ds(zone, d).to_string())
            .collect()
    } else {
        Vec::new()
    };
    if ctx.json {
        return ctx.print_json(&serde_json::json!({ "key": view(&rec), "ds": ds }));
    }
    let alg = rec.algorithm.mnemonic();
    outln!("zone        {}", rec.zone);
    outln!("key tag     {}", rec.key_tag);
    outln!("role        {}", rec.role);
    outln!(
        "algorithm   {} ({}), {} bits",
        alg,
        rec.algorithm.number(),
        rec.bits
    );
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

fn comment(rec: &KeyRecord) -> String {
    let alg = rec.algorithm.mnemonic();
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
    let keys = select::published(ks.keys(Some(&zone.to_string()))?);
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
            k.dnskey(),
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
    let keys = select::for_parent(ks.keys(Some(&zone.to_string()))?);
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
                let dk = k.dnskey();
                serde_json::json!({
                    "key_tag": k.key_tag,
                    "algorithm": k.algorithm.number(),
                    "state": k.state,
                    "dnskey": dk.to_string(),
                    "ds": digests.iter().map(|d| dk.ds(&zone, *d).to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        return ctx.print_json(&out);
    }
    for k in &keys {
        let dk = k.dnskey();
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
    let (rec, plan) = ctx.audited(&cfg, Some(zone.clone()), || {
        let rec = select(&ks, &args.key, false)?;
        let plan = retire::plan_delete(&rec, args.force, args.destroy, ctx.now())?;
        if plan.forced {
            tracing::warn!(tag = rec.key_tag, "FORCED: deleting a key that is still active for signing");
        }
        if args.destroy {
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
            retire::destroy_objects(&session, &token.identity.serial, &rec)?;
        }
        if !ks.set_state(rec.id, rec.state, plan.new_state, &plan.timings)? {
            return Err(anyhow::anyhow!("key {} changed while we worked on it; nothing recorded, look again", rec.key_tag));
        }
        Ok((rec, plan))
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
            new_state: Some(plan.new_state.to_string()),
            failed: false,
            checkpoint: None,
            detail: plan.detail().into(),
        },
    )?;
    outln!(
        "key {} of {}: {} -> {}",
        rec.key_tag,
        rec.zone,
        rec.state,
        plan.new_state
    );
    Ok(())
}

pub fn restore(ctx: &Context, args: SelectArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let zone = parse_zone(&args.zone)?.to_string();
    let rec = ctx.audited(&cfg, Some(zone.clone()), || {
        let rec = select(&ks, &args, false)?;
        let t = retire::plan_restore(&rec, ctx.now())?;
        // The token must still hold the very key the record describes.
        let module = ctx.module(&cfg)?;
        let (_token, session) = ctx.login(&cfg, &module)?;
        retire::check_token_holds(&session, &rec)?;
        if !ks.set_state(rec.id, KeyState::Removed, KeyState::Published, &t)? {
            return Err(anyhow::anyhow!(
                "key {} changed while we worked on it; look again",
                rec.key_tag
            ));
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
            checkpoint: None,
            detail: "restored as a published standby key".into(),
        },
    )?;
    outln!("key {} of {}: removed -> published", rec.key_tag, rec.zone);
    Ok(())
}
