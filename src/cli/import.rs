//! `dnsseal keys import-bind`: migration of a BIND key pair into the token.
//!
//! This is the one path by which private key material enters dnsseal, so it
//! is explicit (a confirmation or --yes), loud (warnings and an audit record
//! that says IMPORTED) and careful (see [`crate::keys::import`], which reads
//! the files, imports the key and proves the pair before recording it).

use super::args::ImportArgs;
use super::context::{confirm, Context, Failure};
use super::keys::initial_state;
use crate::audit::Event;
use crate::keys::import::{
    check_not_recorded, import_key, import_role, import_spec, key_file_for, read_key_file,
    read_private_file, ImportRequest,
};
use crate::keys::parse_zone;
use crate::keystore::Role;
use crate::policy::keygen::imported_state;

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
    let role = import_role(role, &dnskey);
    if role.is_sep() != dnskey.is_sep() {
        tracing::warn!(
            "role {role} does not match the DNSKEY flags {} of the file; the flags follow the role",
            dnskey.flags
        );
    }
    let spec = import_spec(alg, &dnskey)?;

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
    let state = args
        .state
        .map(initial_state)
        .unwrap_or_else(|| imported_state(private.publish, private.activate, now));
    let rec = ctx.audited(&cfg, Some(zone_s.clone()), || {
        check_not_recorded(&ks.keys(Some(&zone_s))?, &dnskey.public_key)?;
        let module = ctx.module(&cfg)?;
        let (token, session) = ctx.login(&cfg, &module)?;
        let req = ImportRequest {
            zone: &zone,
            role,
            state,
            spec,
            private: &private,
            dnskey: &dnskey,
            private_file: &args.private_file,
            key_file: &key_file,
            cka_id_len: cfg.token.profile.cka_id_len,
            key_objects: crate::token::KeyObjects::of(&cfg.token.profile),
            now,
        };
        import_key(&mut ks, &token, &session, &req)
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
            checkpoint: None,
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
