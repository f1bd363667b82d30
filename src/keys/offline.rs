//! Offline KSK, carried out: on the online box, `ksr create` (the ZSK
//! schedule extended and its new ZSKs made in the token), `skr import`
//! (a response checked and stored), `policy run` moving the ZSKs along
//! the schedule, and the SKR period `sign` publishes; on the offline box,
//! `ksr sign` (a request checked against the box's policy and answered
//! with its KSKs).
//!
//! The schedule, the last request, the imported response and the pinned
//! KSKs are `meta` values of the keystore, written in the same
//! transaction as the keys and audit records they go with
//! ([`crate::keystore::Batch::meta`]). The decisions are
//! [`crate::ksr`]'s and [`crate::policy`]'s.

use secrecy::SecretString;

use super::rollover::{RunReport, Steward};
use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keys::create::forget_objects;
use crate::keystore::{Batch, KeyRecord, KeyState, KeyUpdate, Keystore, NewKey, Role};
use crate::ksr::respond::{self, Answer, InForce};
use crate::ksr::schedule::{self, Schedule};
use crate::ksr::{self, OfflinePolicy, Request, RequestPeriod, Response};
use crate::policy::signing::{cds_rdata, Presigned, ZoneKeys};
use crate::policy::zone::ZoneView;
use crate::policy::Policy;
use crate::project::Project;
use crate::sign::engine::SigningKey;
use crate::token::KeyObjects;
use crate::zone::dnskey::{Dnskey, FLAG_SEP, PROTOCOL};
use crate::zone::ZoneName;

/// Names of the keystore `meta` values of an offline-KSK zone.
pub mod meta {
    use crate::zone::ZoneName;

    pub fn schedule(zone: &ZoneName) -> String {
        format!("zsk-schedule/{zone}")
    }
    pub fn request(zone: &ZoneName) -> String {
        format!("ksr/{zone}")
    }
    pub fn response(zone: &ZoneName) -> String {
        format!("skr/{zone}")
    }
    pub fn pins(zone: &ZoneName) -> String {
        format!("skr-ksks/{zone}")
    }
}

/// What `ksr create` made.
pub struct Created {
    pub request: Request,
    /// The request file's text.
    pub text: String,
    /// "ZSK TAG" of each key made.
    pub made: Vec<String>,
    /// When the next ZSK rollover needs another request.
    pub plan_end: Option<Timestamp>,
}

/// What `skr import` stored.
pub struct Imported {
    pub periods: usize,
    pub first: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub ksks: Vec<u16>,
}

fn stored<T>(
    ks: &Keystore,
    name: &str,
    read: impl FnOnce(&str) -> Result<T, Failure>,
) -> anyhow::Result<Option<T>> {
    Ok(ks.meta(name)?.map(|t| read(&t)).transpose()?)
}

fn refusals(what: &str, r: Vec<ksr::Refusal>) -> Failure {
    let lines: Vec<String> = r.iter().map(|r| format!("  {r}")).collect();
    Failure::Refused(format!(
        "{what} refused, nothing written:\n{}",
        lines.join("\n")
    ))
}

/// The zone's stored response, read.
pub fn stored_response(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<Option<Response>> {
    stored(ks, &meta::response(zone), |t| {
        ksr::parse_response_text(t, "the stored SKR", zone)
            .map_err(|e| Failure::BadInput(e.to_string()))
    })
}

/// The stored ZSK schedule (empty when none).
pub fn stored_schedule(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<Schedule> {
    Ok(stored(ks, &meta::schedule(zone), Schedule::from_json)?.unwrap_or_default())
}

/// The SKR period an offline-KSK zone publishes at `now`, with a warning
/// when the SKR runs out within the policy's margin; refused when no SKR
/// is imported, or none covers `now`.
pub fn presigned_now(
    ks: &Keystore,
    zone: &ZoneName,
    policy: &Policy,
    now: Timestamp,
) -> anyhow::Result<Presigned> {
    let Some(response) = stored_response(ks, zone)? else {
        return Err(Failure::Refused(format!(
            "{zone} has an offline KSK and no SKR is imported: `dnsseal ksr create {zone}`, have the KSR signed on the offline box, then `dnsseal skr import`"
        ))
        .into());
    };
    let (p, ends) = match respond::period_at(&response, now) {
        InForce::Period(p, ends) => (p, ends),
        InForce::NotYet(t) => {
            return Err(Failure::Refused(format!(
                "the imported SKR of {zone} starts at {t}: nothing signs the DNSKEY RRset now"
            ))
            .into())
        }
        InForce::Over(t) => {
            return Err(Failure::Refused(format!(
                "the imported SKR of {zone} ran out at {t}: its DNSKEY signatures have expired. Import a new SKR (`dnsseal ksr create`, a signing ceremony, `dnsseal skr import`)"
            ))
            .into())
        }
    };
    if ends.unix() - now.unix() < policy.skr_margin.secs() {
        tracing::warn!(
            "the imported SKR of {zone} runs out at {ends} (skr-margin {}): make the next KSR now",
            policy.skr_margin
        );
    }
    Ok(Presigned {
        period: p.time,
        ends,
        dnskey_ttl: p.dnskey_ttl,
        dnskeys: p.dnskeys.iter().map(Dnskey::rdata).collect(),
        cds_ttl: p.cds_ttl,
        cds: p.cds.clone(),
        cdnskey: p.cdnskey.clone(),
        rrsigs: p.rrsigs.clone(),
    })
}

fn new_dnskey(k: &NewKey) -> Dnskey {
    Dnskey {
        flags: k.flags,
        protocol: PROTOCOL,
        algorithm: k.algorithm.number(),
        public_key: k.public_key.clone(),
    }
}

fn require_offline(view: &ZoneView) -> anyhow::Result<()> {
    if !view.policy.offline_ksk {
        return Err(Failure::Refused(format!(
            "the policy of {} does not say offline-ksk = true: its KSK signs on this box",
            view.name
        ))
        .into());
    }
    Ok(())
}

impl Steward<'_> {
    /// `ksr create`: the ZSK schedule extended to `to`, its new ZSKs made
    /// in the token, and the request for `from`..`to` stored with them.
    pub fn ksr_create(
        &self,
        zone: &ZoneName,
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Created> {
        if to <= from {
            return Err(Failure::BadInput(format!("--to {to} is not after --from {from}")).into());
        }
        let view = self.view(zone)?;
        require_offline(&view)?;
        if let Some((rec, method)) = &view.current {
            return Err(Failure::Refused(format!(
                "a {method} rollover of {zone} started {} is in progress: its keys would not follow the plan. Finish it (`dnsseal rollover plan {zone}`) before the first `ksr create`",
                rec.started
            ))
            .into());
        }
        let previous = stored_schedule(&Keystore::open(&self.cfg.keystore)?, zone)?;
        let mut plan = schedule::extend(&previous, &view.keys, &view.policy, from, to)?;
        let alg = view
            .policy
            .algorithm()
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        let made = match plan.unmade() {
            0 => Vec::new(),
            n => self.make_keys(&view, alg, &vec![(Role::Zsk, KeyState::Generated); n])?,
        };
        let ids: Vec<(Vec<u8>, u16)> = made.iter().map(|k| (k.cka_id.clone(), k.key_tag)).collect();
        plan.fill(&ids);
        match self.commit_request(&view, &plan, &made, from, to) {
            Ok(c) => Ok(c),
            Err(e) => {
                if !made.is_empty() {
                    let ids: Vec<Vec<u8>> = made.iter().map(|k| k.cka_id.clone()).collect();
                    self.with_session(|token, session| {
                        let mut ks = Keystore::open(&self.cfg.keystore)?;
                        forget_objects(&mut ks, session, &token.identity.serial, &ids);
                        Ok(())
                    })?;
                }
                Err(e)
            }
        }
    }

    fn commit_request(
        &self,
        view: &ZoneView,
        plan: &Schedule,
        made: &[NewKey],
        from: Timestamp,
        to: Timestamp,
    ) -> anyhow::Result<Created> {
        let dnskey_of = |id: &str| -> Option<Dnskey> {
            let old = view.keys.iter().find(|r| hex::encode(&r.cka_id) == id);
            old.map(KeyRecord::dnskey).or_else(|| {
                made.iter()
                    .find(|k| hex::encode(&k.cka_id) == id)
                    .map(new_dnskey)
            })
        };
        let ttl = u32::try_from(view.policy.dnskey_ttl.secs()).unwrap_or(u32::MAX);
        let mut periods = Vec::new();
        for (time, set) in schedule::periods(plan, from, to) {
            let dnskeys = set
                .iter()
                .map(|&i| dnskey_of(&plan.keys[i].cka_id))
                .collect::<Option<Vec<Dnskey>>>()
                .ok_or_else(|| anyhow::anyhow!("a planned ZSK has no key record"))?;
            periods.push(RequestPeriod { time, ttl, dnskeys });
        }
        let request = Request {
            zone: view.zone.clone(),
            periods,
        };
        let text = ksr::write_request(&request, self.now);
        let mut batch = Batch::new(&view.name);
        batch.meta = vec![
            (meta::schedule(&view.zone), plan.to_json()),
            (meta::request(&view.zone), text.clone()),
        ];
        let made_text: Vec<String> = made.iter().map(|k| format!("ZSK {}", k.key_tag)).collect();
        batch.outbox.push(self.zone_event(
            &view.name,
            format!(
                "key signing request from {from} to {to}: {} period(s), SHA-256 {}{}",
                request.periods.len(),
                ksr::spoken_digest(text.as_bytes()).replace(' ', ""),
                if made.is_empty() {
                    String::new()
                } else {
                    format!(", pre-generated {}", made_text.join(", "))
                }
            ),
        ));
        for k in made {
            let event = self.key_event(&view.name, k, "ksr create: planned ZSK");
            batch.outbox.push(self.outbox(event));
        }
        batch.new_keys = made.to_vec();
        self.commit(batch)?;
        Ok(Created {
            request,
            text,
            made: made_text,
            plan_end: plan.end(&view.policy),
        })
    }

    /// `skr import`: the response checked against the stored request and
    /// the pinned KSKs (`pins` replaces them), its ZSKs this box's, and
    /// stored over the periods it replaces.
    pub fn skr_import(
        &self,
        zone: &ZoneName,
        text: &str,
        file: &str,
        pins: Option<Vec<Dnskey>>,
    ) -> anyhow::Result<Imported> {
        let ks = Keystore::open(&self.cfg.keystore)?;
        let bad = |e: ksr::KsrError| Failure::BadInput(e.to_string());
        let request = stored(&ks, &meta::request(zone), |t| {
            ksr::parse_request_text(t, "the stored KSR", zone).map_err(bad)
        })?
        .ok_or_else(|| Failure::Refused(format!(
            "no key signing request of {zone} was made on this box: an SKR answers the request of `dnsseal ksr create {zone}`"
        )))?;
        let response = ksr::parse_response_text(text, file, zone).map_err(bad)?;
        let pins = match pins {
            Some(p) => p,
            None => stored(&ks, &meta::pins(zone), |t| {
                pins_from_json(t).ok_or_else(|| Failure::BadInput("the pinned KSKs are unreadable".into()))
            })?
            .ok_or_else(|| Failure::Refused(format!(
                "no KSK of {zone} is pinned on this box: name the offline KSK's DNSKEY record(s) with --ksk FILE (from the key ceremony)"
            )))?,
        };
        ksr::check_response(&response, &request, &pins).map_err(|r| refusals(file, r))?;
        let records = ks.keys(Some(&zone.to_string()))?;
        let zsks = self.own_zsks(&response, &records, file)?;
        self.with_session(|_, session| {
            for k in &zsks {
                session.key_pair(&k.cka_id).map_err(|e| {
                    Failure::Drift(format!(
                        "{file}: ZSK {} is not in the token: {e}",
                        k.key_tag
                    ))
                })?;
            }
            Ok(())
        })?;
        let merged = respond::merge(stored_response(&ks, zone)?, response);
        drop(ks);
        let stored_text = ksr::write_response(&merged, self.now);
        let end = respond::response_end(&merged);
        let ksks: Vec<u16> = pins.iter().map(Dnskey::key_tag).collect();
        let mut batch = Batch::new(&zone.to_string());
        batch.meta = vec![
            (meta::response(zone), stored_text),
            (meta::pins(zone), pins_to_json(&pins)),
        ];
        batch.outbox.push(self.zone_event(
            &zone.to_string(),
            format!(
                "signed key response {file} imported (SHA-256 {}): {} period(s) stored, KSK(s) {:?}, runs out at {}",
                ksr::spoken_digest(text.as_bytes()).replace(' ', ""),
                merged.periods.len(),
                ksks,
                end.map_or("-".into(), |e| e.to_string())
            ),
        ));
        self.commit(batch)?;
        Ok(Imported {
            periods: merged.periods.len(),
            first: merged.periods.first().map(|p| p.time),
            end,
            ksks,
        })
    }

    /// The response's ZSKs, each a key of this zone in this box's keystore.
    fn own_zsks(
        &self,
        response: &Response,
        records: &[KeyRecord],
        file: &str,
    ) -> anyhow::Result<Vec<KeyRecord>> {
        let mut out: Vec<KeyRecord> = Vec::new();
        for p in &response.periods {
            for d in p.dnskeys.iter().filter(|d| d.flags & FLAG_SEP == 0) {
                let Some(r) = records
                    .iter()
                    .find(|r| r.dnskey() == *d && r.state != KeyState::Destroyed)
                else {
                    return Err(Failure::Refused(format!(
                        "{file}: period {} publishes ZSK {}, which is not a key of {} on this box",
                        p.time,
                        d.key_tag(),
                        response.zone
                    ))
                    .into());
                };
                if !out.iter().any(|o| o.id == r.id) {
                    out.push(r.clone());
                }
            }
        }
        Ok(out)
    }

    /// `policy run` for an offline-KSK zone: its first ZSKs, or its ZSKs
    /// moved along the schedule of the last `ksr create`; never a KSK.
    pub fn run_offline(&self, view: &ZoneView) -> anyhow::Result<RunReport> {
        let report = |action: String, next: Option<(String, Timestamp)>| RunReport {
            zone: view.name.clone(),
            action,
            next: next.as_ref().map(|n| n.0.clone()),
            earliest: next.map(|n| n.1),
        };
        if !view
            .keys
            .iter()
            .any(|k| k.role == Role::Zsk && (k.state.in_zone() || k.state == KeyState::Generated))
        {
            let alg = view
                .policy
                .algorithm()
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let mut roles = vec![(Role::Zsk, KeyState::Active)];
            roles.extend((0..view.policy.standby_zsks).map(|_| (Role::Zsk, KeyState::Published)));
            let made = self.record_new_keys(
                view,
                alg,
                &roles,
                "policy: the zone's first ZSK (offline KSK)",
            )?;
            return Ok(report(
                format!(
                    "created {made}; the KSK is offline: `dnsseal ksr create {}`",
                    view.name
                ),
                None,
            ));
        }
        let ks = Keystore::open(&self.cfg.keystore)?;
        let plan = stored_schedule(&ks, &view.zone)?;
        let skr_end = stored_response(&ks, &view.zone)?.and_then(|r| respond::response_end(&r));
        drop(ks);
        let updates = schedule_updates(&plan, &view.keys, self.now);
        let next = next_transition(&plan, self.now).map(|t| {
            let skr = skr_end.map_or("no SKR imported".into(), |e| format!("SKR runs out at {e}"));
            (format!("next ZSK change at {t} ({skr})"), t)
        });
        if updates.is_empty() {
            let what = if plan.keys.is_empty() {
                format!(
                    "nothing to do: no ZSK schedule yet (`dnsseal ksr create {}`)",
                    view.name
                )
            } else {
                "nothing to do (ZSKs follow the schedule of the last KSR)".into()
            };
            return Ok(report(what, next));
        }
        let text: Vec<String> = updates
            .iter()
            .map(|u| {
                format!(
                    "ZSK {} {} -> {}",
                    u.record.key_tag, u.expected_state, u.record.state
                )
            })
            .collect();
        let mut batch = Batch::new(&view.name);
        self.push_update_events(&view.name, &updates, &mut batch);
        batch.updates = updates;
        self.commit(batch)?;
        Ok(report(format!("ZSK schedule: {}", text.join(", ")), next))
    }
}

/// The keystore changes that bring the zone's ZSKs to their planned
/// states at `now` (only forwards: a key is never planned back).
pub fn schedule_updates(plan: &Schedule, records: &[KeyRecord], now: Timestamp) -> Vec<KeyUpdate> {
    let rank = |s: KeyState| match s {
        KeyState::Generated => 0,
        KeyState::Published => 1,
        KeyState::Active => 2,
        KeyState::Inactive => 3,
        KeyState::Removed => 4,
        _ => 5,
    };
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.role == Role::Zsk) {
        let Some(lc) = plan.of(&r.cka_id) else {
            continue;
        };
        let want = schedule::state_at(lc, now);
        if rank(r.state) >= 4 || rank(want) <= rank(r.state) {
            continue;
        }
        let mut record = r.clone();
        record.state = want;
        let t = &mut record.timings;
        if rank(want) >= 1 {
            t.published.get_or_insert(now);
        }
        if rank(want) >= 2 {
            t.active.get_or_insert(now);
        }
        if rank(want) >= 3 {
            t.inactive.get_or_insert(now);
        }
        if want == KeyState::Removed {
            t.removed = Some(now);
        }
        out.push(KeyUpdate {
            expected_state: r.state,
            expected_ds: r.ds,
            record,
        });
    }
    out
}

/// The next planned change of a ZSK after `now`.
pub fn next_transition(plan: &Schedule, now: Timestamp) -> Option<Timestamp> {
    plan.keys
        .iter()
        .flat_map(|k| [Some(k.publish), k.active, k.retire, k.remove])
        .flatten()
        .filter(|&t| t > now.unix())
        .min()
        .map(Timestamp::from_unix)
}

fn pins_to_json(pins: &[Dnskey]) -> String {
    let hex: Vec<String> = pins.iter().map(|k| hex::encode(k.rdata())).collect();
    serde_json::to_string(&hex).unwrap_or_default()
}

fn pins_from_json(text: &str) -> Option<Vec<Dnskey>> {
    let hex: Vec<String> = serde_json::from_str(text).ok()?;
    hex.iter()
        .map(|h| hex::decode(h).ok().and_then(|b| ksr::dnskey_from_rdata(&b)))
        .collect()
}

/// An offline-KSK zone as `rollover plan` shows it: its ZSK schedule and
/// its imported SKR.
#[derive(Debug, serde::Serialize)]
pub struct OfflineStatus {
    pub schedule: Schedule,
    pub skr_periods: usize,
    pub skr_first: Option<Timestamp>,
    /// When the imported SKR runs out.
    pub skr_end: Option<Timestamp>,
}

pub fn status(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<OfflineStatus> {
    let skr = stored_response(ks, zone)?;
    Ok(OfflineStatus {
        schedule: stored_schedule(ks, zone)?,
        skr_periods: skr.as_ref().map_or(0, |r| r.periods.len()),
        skr_first: skr.as_ref().and_then(|r| r.periods.first().map(|p| p.time)),
        skr_end: skr.as_ref().and_then(respond::response_end),
    })
}

/// What the offline box signed.
pub struct Answered {
    pub response: Response,
    pub text: String,
    pub ksks: Vec<u16>,
    pub end: Option<Timestamp>,
}

/// `ksr sign` on the offline box: `request` checked against the zone's
/// policy on this box, answered with its KSKs in the token, and the
/// answer checked as the online box will check it before it is returned.
pub fn answer_request(
    project: &Project,
    pin: &SecretString,
    request: &Request,
    policy: &Policy,
) -> anyhow::Result<Answered> {
    let zone = &request.zone;
    let now = project.now();
    let offline = OfflinePolicy::from_policy(policy).map_err(Failure::BadInput)?;
    ksr::check_request(request, &offline, now).map_err(|r| refusals("the request", r))?;
    let records: Vec<KeyRecord> = project
        .keystore()
        .keys(Some(&zone.to_string()))?
        .into_iter()
        .filter(|r| r.role == Role::Ksk && r.state != KeyState::Destroyed)
        .collect();
    let published: Vec<KeyRecord> = records
        .iter()
        .filter(|r| r.state.is_published())
        .cloned()
        .collect();
    let signing: Vec<KeyRecord> = records
        .iter()
        .filter(|r| r.state.is_signing())
        .cloned()
        .collect();
    if signing.is_empty() {
        return Err(Failure::Refused(format!(
            "this box holds no active KSK of {zone}: see `dnsseal keys list {zone}`"
        ))
        .into());
    }
    let (cds, cdnskey) = cds_rdata(&records, zone, policy)?;
    let module = project.module()?;
    let token = project.find_token(&module)?;
    let keys = ZoneKeys {
        published: published.clone(),
        ksks: signing.clone(),
        zsks: Vec::new(),
        all: records.clone(),
        signing: signing.clone(),
        ksk_index: (0..signing.len()).collect(),
        zsk_index: Vec::new(),
        presigned: None,
    };
    keys.in_token(zone, &token.identity.serial)?;
    let mechs: Vec<_> = signing
        .iter()
        .map(|k| (k.cka_id.clone(), super::spec::mechanism(k.algorithm)))
        .collect();
    let mut pool = token.signer_pool(pin, 1, &mechs)?;
    super::check_signing_keys(&pool, &keys, zone)?;
    pool.use_key_objects(KeyObjects::of(&project.config().token.profile));
    let signers: Vec<SigningKey> = signing
        .iter()
        .map(|k| SigningKey {
            algorithm: k.algorithm,
            key_tag: k.key_tag,
            public_key: k.public_key.clone(),
        })
        .collect();
    let ksks: Vec<Dnskey> = published.iter().map(KeyRecord::dnskey).collect();
    let answer = Answer {
        zone,
        ksks: &ksks,
        signers: &signers,
        cds: &cds,
        cdnskey: &cdnskey,
        validity: policy.signature_validity.secs(),
        refresh: policy.signature_refresh.secs(),
    };
    let response = respond::respond(request, &answer, &pool)?;
    let text = ksr::write_response(&response, now);
    // The file as the online box reads it must pass its checks.
    let again = ksr::parse_response_text(&text, "the response", zone)
        .map_err(|e| anyhow::anyhow!("the response written does not read back: {e}"))?;
    ksr::check_response(&again, request, &ksks)
        .map_err(|r| refusals("the response made (an internal error)", r))?;
    Ok(Answered {
        end: respond::response_end(&response),
        response,
        text,
        ksks: ksks.iter().map(Dnskey::key_tag).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ksr::schedule::Lifecycle;

    fn zsk(id: u8, state: KeyState) -> KeyRecord {
        crate::keys::testing::record(id, 1000 + u16::from(id), "serial", state)
    }

    fn planned(id: u8, publish: i64, active: i64, retire: Option<i64>) -> Lifecycle {
        Lifecycle {
            cka_id: hex::encode([id]),
            key_tag: 1000 + u16::from(id),
            publish,
            active: Some(active),
            retire,
            remove: retire.map(|r| r + 100),
        }
    }

    #[test]
    fn zsks_move_forwards_along_the_schedule_only() {
        let plan = Schedule {
            keys: vec![planned(1, 0, 0, Some(1000)), planned(2, 900, 1000, None)],
        };
        let records = [zsk(1, KeyState::Active), zsk(2, KeyState::Generated)];
        let t = |x: i64| Timestamp::from_unix(x);
        assert!(schedule_updates(&plan, &records, t(500)).is_empty());
        let at_publish = schedule_updates(&plan, &records, t(950));
        assert_eq!(at_publish.len(), 1);
        assert_eq!(at_publish[0].record.state, KeyState::Published);
        assert_eq!(at_publish[0].record.timings.published, Some(t(950)));
        let at_roll = schedule_updates(&plan, &records, t(1000));
        let states: Vec<(u16, KeyState)> = at_roll
            .iter()
            .map(|u| (u.record.key_tag, u.record.state))
            .collect();
        assert_eq!(
            states,
            vec![(1001, KeyState::Inactive), (1002, KeyState::Active)]
        );
        // A key already further on (by hand) is not moved back.
        let ahead = [zsk(1, KeyState::Removed), zsk(2, KeyState::Active)];
        assert!(schedule_updates(&plan, &ahead, t(1000)).is_empty());
        assert_eq!(next_transition(&plan, t(950)), Some(t(1000)));
        assert_eq!(next_transition(&plan, t(1100)), None);
    }

    #[test]
    fn pinned_ksks_round_trip() {
        let k = Dnskey {
            flags: 257,
            protocol: PROTOCOL,
            algorithm: 13,
            public_key: vec![7; 64],
        };
        assert_eq!(
            pins_from_json(&pins_to_json(std::slice::from_ref(&k))),
            Some(vec![k])
        );
        assert_eq!(pins_from_json("not json"), None);
    }
}
