//! One signing run in a project, as `dnsseal sign` and the signing service
//! (`dnsseal serve`) both make it: the arguments resolved against the
//! zone's policy, the keys chosen, the zone read before the token is
//! touched, the token's sessions opened, the pipeline run
//! ([`crate::sign::pipeline`]), and the signing recorded in the keystore
//! for the rollover waits. The caller writes the audit record (the command
//! line's, or the service's with the client's identity) from
//! [`Signed::detail`], and reports.

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;

use crate::clock::Timestamp;
use crate::interrupt::Cancel;
use crate::keys::offline;
use crate::keys::{check_signing_keys, parse_zone, spec::mechanism};
use crate::policy::signing::{zone_keys, zone_keys_offline};
use crate::policy::zone::ZonePolicy;
use crate::policy::Policy;
use crate::project::Project;
use crate::sign::options::{self, Nsec3Request, SignOptions};
use crate::sign::pipeline::{self, phase, Outcome, Progress};
use crate::sign::plan::StateLoader;
use crate::sign::request::{SerialArg, SignArgs};
use crate::token::{KeyObjects, Module, SignMechanism};
use crate::zone::dnssec::SerialPolicy;
use crate::zone::ZoneName;

/// Where a run gets the token from, asked only once the zone has been
/// read (a bad input never holds the token), and the PIN once the token
/// has been found (a missing token is reported before a PIN is asked for).
pub trait TokenAccess {
    /// The loaded PKCS#11 module.
    fn module(&self) -> anyhow::Result<Arc<Module>>;
    /// The user PIN.
    fn pin(&self) -> anyhow::Result<&SecretString>;
}

/// What a finished run did.
#[derive(Debug)]
pub struct Signed {
    pub opts: SignOptions,
    pub outcome: Outcome,
    /// The key tags that signed.
    pub key_tags: Vec<u16>,
    /// The run in one sentence, for its audit record.
    pub detail: String,
    /// Signing sessions used, and how often they were reopened after a
    /// token fault.
    pub workers: usize,
    pub reopened: usize,
    /// How key objects were used (session copies or the token's own).
    pub key_objects: KeyObjects,
    /// Wall time of the whole run.
    pub seconds: f64,
}

impl Signed {
    /// No RRSIG this run made or kept expires before this: new ones end
    /// in `[expiration - jitter, expiration]`, kept ones after the
    /// refresh point (now + refresh). Presigned DNSKEY signatures of an
    /// offline KSK follow their SKR instead.
    pub fn earliest_expiry(&self) -> Timestamp {
        let t = &self.opts.times;
        let new = t.expiration.unix() - i64::from(t.jitter);
        let kept = match self.outcome.stats.retained {
            0 => i64::MAX,
            _ => self.opts.now.unix() + i64::from(t.refresh),
        };
        Timestamp::from_unix(new.min(kept))
    }
}

/// Signs `args.zonefile` into its output in `project`, with `token`;
/// `cancel` stops the run with nothing written.
pub fn sign(
    project: &mut Project,
    args: &SignArgs,
    token: &dyn TokenAccess,
    progress: Option<Progress<'_>>,
    cancel: &Cancel,
) -> anyhow::Result<Signed> {
    let cfg = &project.config().clone();
    let started = Instant::now();
    phase("start");
    let origin = parse_zone(&options::origin_text(
        args.origin.as_deref(),
        &args.zonefile,
    ))?;
    // The previous signing's state loads (and its zone file is hashed)
    // while the input is parsed.
    let loader = args
        .incremental
        .as_deref()
        .map(|prev| StateLoader::spawn(prev, &origin, cfg.zone_limits.total_bytes));
    let now = project.now();
    let ks = project.keystore();
    let zone_s = origin.to_string();
    // The generation first: a rollover step committed while this run reads
    // the keys then only makes the record of this signing older (safe).
    let generation = ks.generation(&zone_s)?;
    let zone_policy = ZonePolicy::from_stored(&zone_s, ks.policy(&zone_s)?)?;
    let opts = sign_options(
        args,
        cfg,
        origin,
        zone_policy.is_set().then_some(&zone_policy.policy),
        now,
        cancel,
    )?;
    let policy = zone_policy.policy;

    // Keys first: no point reading a big zone for a zone without keys.
    let records = ks.keys(Some(&zone_s))?;
    let keys = if policy.offline_ksk {
        let presigned = offline::presigned_now(ks, &opts.origin, &policy, now)?;
        zone_keys_offline(records, &opts.origin, presigned)?
    } else {
        zone_keys(records, &opts.origin)?
    };
    phase("keys read");
    let zone = pipeline::read_zone(&opts)?;
    let module = token.module()?;
    let found = project.find_token(&module)?;
    keys.in_token(&opts.origin, &found.identity.serial)?;
    let pin = token.pin()?;

    let open = |threads: usize| {
        let mechs: Vec<(Vec<u8>, SignMechanism)> = keys
            .signing
            .iter()
            .map(|k| (k.cka_id.clone(), mechanism(k.algorithm)))
            .collect();
        let mut pool = found.signer_pool(pin, threads, &mechs)?;
        // Checked before any copy is made or anything signed.
        check_signing_keys(&pool, &keys, &opts.origin)?;
        pool.use_key_objects(KeyObjects::of(&cfg.token.profile));
        tracing::debug!("signing with {}", pool.key_objects());
        anyhow::Ok(pool)
    };
    let (outcome, pool) = pipeline::sign_zone(&opts, zone, &keys, &policy, loader, progress, open)?;
    // Rollover waits count from here: this generation of the key set is
    // now in a signed zone.
    project.keystore_mut().record_signing(
        &zone_s,
        generation,
        now,
        outcome.dnskey_ttl,
        outcome.max_ttl,
    )?;
    phase("recorded");
    let mut detail = outcome.describe(&opts, &keys);
    if pool.reopened() > 0 {
        detail.push_str(&format!(
            "; the token failed during the run and {} signing session(s) were reopened",
            pool.reopened()
        ));
    }
    Ok(Signed {
        key_tags: keys.signing.iter().map(|k| k.key_tag).collect(),
        detail,
        workers: pool.workers(),
        reopened: pool.reopened(),
        key_objects: pool.key_objects(),
        seconds: started.elapsed().as_secs_f64(),
        opts,
        outcome,
    })
}

/// The command line and the zone's policy as signing options.
fn sign_options(
    args: &SignArgs,
    cfg: &crate::config::Config,
    origin: ZoneName,
    policy: Option<&Policy>,
    now: crate::clock::Timestamp,
    cancel: &Cancel,
) -> anyhow::Result<SignOptions> {
    let times = options::resolve_times(
        args.start.as_deref(),
        args.end.as_deref(),
        args.jitter,
        args.interval,
        policy,
        now,
    )?;
    let nsec3 = options::resolve_nsec3(
        Nsec3Request {
            nsec3: args.nsec3,
            salt: args.salt.as_deref(),
            iterations: args.iterations,
            opt_out: args.opt_out,
        },
        policy,
    )?;
    Ok(SignOptions {
        origin,
        input: args.zonefile.clone(),
        output: options::output_path(args.output.as_deref(), &args.zonefile),
        incremental: args.incremental.clone(),
        now,
        times,
        nsec3,
        serial: serial_policy(args.serial),
        dnskey_ttl: options::resolve_dnskey_ttl(args.dnskey_ttl, policy),
        threads: args.threads,
        max_sessions: cfg.token.profile.max_sessions as usize,
        software_token: cfg.token.profile.software_token,
        verify: !args.no_verify,
        limits: cfg.zone_limits,
        cancel: cancel.clone(),
    })
}

/// `-N` as the serial policy.
pub fn serial_policy(arg: SerialArg) -> SerialPolicy {
    match arg {
        SerialArg::Keep => SerialPolicy::Keep,
        SerialArg::Increment => SerialPolicy::Increment,
        SerialArg::Unixtime => SerialPolicy::UnixTime,
        SerialArg::Date => SerialPolicy::Date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_of_the_arguments_carries_no_path() {
        let args = SignArgs {
            zonefile: "/home/me/db.example".into(),
            output: Some("/home/me/out".into()),
            incremental: Some("/home/me/prev".into()),
            origin: Some("example.com".into()),
            serial: SerialArg::Unixtime,
            nsec3: true,
            ..SignArgs::default()
        };
        let json = serde_json::to_string(&args).unwrap();
        assert!(!json.contains("/home/me"), "{json}");
        let back: SignArgs = serde_json::from_str(&json).unwrap();
        assert_eq!(back.origin.as_deref(), Some("example.com"));
        assert_eq!(back.serial, SerialArg::Unixtime);
        assert!(back.nsec3);
        assert!(back.incremental.is_none() && back.output.is_none());
    }

    #[test]
    fn unknown_or_missing_wire_fields() {
        let back: SignArgs = serde_json::from_str("{}").unwrap();
        assert_eq!(back.serial, SerialArg::Keep);
        assert!(!back.no_verify);
        let err = serde_json::from_str::<SignArgs>(r#"{"zonefile":"/etc/passwd"}"#);
        assert!(err.is_err(), "a path field is not part of the wire form");
    }

    #[test]
    fn serial_arguments_map_onto_policies() {
        assert_eq!(serial_policy(SerialArg::Keep), SerialPolicy::Keep);
        assert_eq!(serial_policy(SerialArg::Date), SerialPolicy::Date);
        assert_eq!(serial_policy(SerialArg::Unixtime), SerialPolicy::UnixTime);
        assert_eq!(serial_policy(SerialArg::Increment), SerialPolicy::Increment);
    }
}
