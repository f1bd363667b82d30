//! Carrying out what the policy decides for a zone's keys: the keys a
//! rollover or `policy run` needs, made in the token under the keystore's
//! journal; each step committed as one keystore transaction with its key
//! changes, the rollover's record and its audit events (in the keystore's
//! outbox, written to the log right after, or by the next run if this one
//! is stopped first).
//!
//! The decisions themselves are [`crate::policy`]'s (what a zone needs
//! now, how a rollover starts, whether a step may run); a [`Steward`]
//! loads the zone's view, asks, and acts. Nothing here prints; warnings
//! go to `tracing`, results come back as text for the caller to show.

use secrecy::SecretString;
use serde::Serialize;

use crate::audit::Event;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::failure::Failure;
use crate::keys::create::{forget_objects, generate_keys, recover_pending};
use crate::keys::spec::key_spec;
use crate::keystore::{
    Batch, Committed, KeyRef, KeyState, KeyUpdate, Keystore, NewKey, NewStep, Role, RolloverRecord,
    RolloverWrite,
};
use crate::policy::rollover::{Method, Readiness};
use crate::policy::schedule::{self, RunAction};
use crate::policy::start::{self, Kind};
use crate::policy::step::{self, DsSeen, DueStep};
use crate::policy::zone::{ZonePolicy, ZoneView};
use crate::project;
use crate::token::{KeyObjects, Token, UserSession};
use crate::zone::{Algorithm, ZoneName};

/// Reads what the keystore knows about one zone.
pub fn load_view(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<ZoneView> {
    let name = zone.to_string();
    let policy = ZonePolicy::from_stored(&name, ks.policy(&name)?)?;
    let keys = ks.keys(Some(&name))?;
    let rollovers = ks.rollovers(&name)?;
    let signings = ks.signings(&name)?;
    Ok(ZoneView::new(zone, policy, keys, rollovers, signings)?)
}

/// What `policy run` did for one zone.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub zone: String,
    pub action: String,
    pub next: Option<String>,
    pub earliest: Option<Timestamp>,
}

/// Who acts on a project's keys, and with what.
pub struct Steward<'a> {
    pub cfg: &'a Config,
    /// The command as the audit log names it.
    pub command: &'a str,
    pub now: Timestamp,
    /// The user PIN, read only when a key must be made (it may prompt).
    pub pin: &'a dyn Fn() -> anyhow::Result<&'a SecretString>,
}

impl Steward<'_> {
    /// The zone as the decisions see it, read now.
    pub fn view(&self, zone: &ZoneName) -> anyhow::Result<ZoneView> {
        load_view(&Keystore::open(&self.cfg.keystore)?, zone)
    }

    /// `policy run` for one zone: what it needs now, done.
    pub fn run_zone(&self, zone: &ZoneName) -> anyhow::Result<RunReport> {
        let view = self.view(zone)?;
        if view.policy.offline_ksk {
            return self.run_offline(&view);
        }
        let report = |action: String, view: &ZoneView| -> RunReport {
            let r = view.next();
            RunReport {
                zone: view.name.clone(),
                action,
                next: r.as_ref().map(|r| step::describe_next(r, self.now)),
                earliest: r.and_then(|r| r.earliest()),
            }
        };
        match schedule::next_action(&view, self.now) {
            RunAction::StaysInsecure => Ok(report(
                "insecure (its insecure rollover finished): nothing to do".into(),
                &view,
            )),
            RunAction::FirstKeys => {
                let (alg, roles) = schedule::first_keys(&view.policy)?;
                let why = "policy: the zone's first keys";
                let made = self.record_new_keys(&view, alg, &roles, why)?;
                Ok(report(
                    format!("created {made} (sign the zone, then hand the DS to the parent: `dnsseal keys ds {}`)", view.name),
                    &view,
                ))
            }
            RunAction::Continue => match step::due_step(&view, self.now) {
                DueStep::Wait(why) => Ok(report(why, &view)),
                DueStep::Take(rec, method, r) => {
                    let done = self.take_step(&view, rec, method, &r, false)?;
                    Ok(report(done, &self.view(zone)?))
                }
            },
            RunAction::Start { kind, why } => {
                let started = self.start(&view, kind, None)?;
                Ok(report(format!("{why}: {started}"), &self.view(zone)?))
            }
            RunAction::Standby { count } => {
                let made = match schedule::standby_algorithm(&view)? {
                    None => "no standby (no active ZSK)".into(),
                    Some(alg) => {
                        let roles = vec![(Role::Zsk, KeyState::Published); count as usize];
                        self.record_new_keys(&view, alg, &roles, "policy: standby ZSK")?
                    }
                };
                Ok(report(format!("published {made}"), &view))
            }
            RunAction::Idle { next } => {
                let mut r = report("nothing to do".into(), &view);
                if let Some(s) = next {
                    r.next = Some(format!("{} at {}", s.what, s.at));
                    r.earliest = Some(s.at);
                }
                Ok(r)
            }
        }
    }

    /// Makes keys and records them, audited, in one transaction; returns
    /// them as "ROLE TAG (state)" for the report.
    pub fn record_new_keys(
        &self,
        view: &ZoneView,
        alg: Algorithm,
        roles: &[(Role, KeyState)],
        why: &str,
    ) -> anyhow::Result<String> {
        let made = self.make_keys(view, alg, roles)?;
        let mut batch = Batch::new(&view.name);
        let mut text = Vec::new();
        for k in &made {
            text.push(format!(
                "{} {} ({})",
                k.role.as_str().to_uppercase(),
                k.key_tag,
                k.state
            ));
            batch
                .outbox
                .push(self.outbox(self.key_event(&view.name, k, why)));
        }
        batch.new_keys = made;
        self.commit(batch)?;
        Ok(text.join(", "))
    }

    /// Starts a rollover: the keys rolled out and in (new ones made in
    /// the token when no standby will do), and step 0.
    pub fn start(
        &self,
        view: &ZoneView,
        kind: Kind,
        method_arg: Option<&str>,
    ) -> anyhow::Result<String> {
        let plan = start::plan_start(view, kind, method_arg)?;
        // One login and one journal cleanup for all new keys: a cleanup
        // between two generations would take the first (not yet recorded)
        // for debris. They are made as generated: step 0 moves them on.
        let mut new_keys: Vec<NewKey> = match plan.make.first() {
            None => Vec::new(),
            Some(&(_, alg)) => {
                let roles: Vec<(Role, KeyState)> = plan
                    .make
                    .iter()
                    .map(|(role, _)| (*role, KeyState::Generated))
                    .collect();
                self.make_keys(view, alg, &roles)?
            }
        };
        match self.commit_start(view, &plan, &mut new_keys) {
            Ok(detail) => {
                self.start_warnings(view, kind, &plan.standby);
                Ok(detail)
            }
            Err(e) => {
                if !new_keys.is_empty() {
                    let made: Vec<Vec<u8>> = new_keys.iter().map(|k| k.cka_id.clone()).collect();
                    self.with_session(|token, session| {
                        let mut ks = Keystore::open(&self.cfg.keystore)?;
                        forget_objects(&mut ks, session, &token.identity.serial, &made);
                        Ok(())
                    })?;
                }
                Err(e)
            }
        }
    }

    /// Step 0 of a rollover and its new keys, in one transaction.
    fn commit_start(
        &self,
        view: &ZoneView,
        plan: &start::StartPlan,
        new_keys: &mut [NewKey],
    ) -> anyhow::Result<String> {
        let first = start::first_step(view, plan, new_keys, self.now);
        let method = plan.method;
        let mut batch = Batch::new(&view.name);
        batch
            .outbox
            .push(self.zone_event(&view.name, first.detail.clone()));
        let why = format!("{method} rollover");
        for k in new_keys.iter() {
            batch
                .outbox
                .push(self.outbox(self.key_event(&view.name, k, &why)));
        }
        self.push_update_events(&view.name, &first.updates, &mut batch);
        batch.updates = first.updates;
        let mut new_refs: Vec<KeyRef> = plan
            .standby
            .iter()
            .map(|id| KeyRef::Existing(*id))
            .collect();
        new_refs.extend((0..new_keys.len()).map(KeyRef::New));
        batch.rollover = Some(RolloverWrite::Start {
            method: method.name().to_string(),
            old: plan.old.iter().map(|id| KeyRef::Existing(*id)).collect(),
            new: new_refs,
            step: NewStep {
                name: first.step.name.to_string(),
                at: self.now,
                forced: false,
            },
        });
        batch.new_keys = new_keys.to_vec();
        self.commit(batch)?;
        Ok(first.detail)
    }

    /// What an operator should know after a start: a policy that would roll
    /// back, an emergency's window of risk.
    fn start_warnings(&self, view: &ZoneView, kind: Kind, standby: &[i64]) {
        if let Some(w) = start::algorithm_warning(view, kind) {
            tracing::warn!("{w}");
        }
        if matches!(kind, Kind::Emergency(..)) {
            let after = self.view(&view.zone).ok();
            for w in start::emergency_warnings(view, standby, after.as_ref(), self.now) {
                tracing::warn!("{w}");
            }
        }
    }

    /// Runs the next step of a rollover (checked by the caller), refusing
    /// when it is too early unless forced.
    pub fn take_step(
        &self,
        view: &ZoneView,
        rec: &RolloverRecord,
        method: Method,
        r: &Readiness,
        force: bool,
    ) -> anyhow::Result<String> {
        let plan = step::plan_step(view, rec, method, r, force, self.now)?;
        if let Some(w) = &plan.warning {
            tracing::warn!("{w}");
        }
        let mut batch = Batch::new(&view.name);
        batch.outbox.push(self.zone_event(&view.name, plan.detail));
        self.push_update_events(&view.name, &plan.updates, &mut batch);
        batch.updates = plan.updates;
        batch.rollover = Some(RolloverWrite::Step {
            rollover: rec.id,
            index: plan.index,
            step: NewStep {
                name: plan.step.name.to_string(),
                at: self.now,
                forced: plan.forced,
            },
            finished: plan.finished,
        });
        self.commit(batch)?;
        Ok(plan.done)
    }

    /// Stores a zone's policy (checked by the caller), audited with it in
    /// one transaction.
    pub fn set_policy(&self, zone: &str, text: &str, detail: String) -> anyhow::Result<()> {
        let mut ks = Keystore::open(&self.cfg.keystore)?;
        let (at, json) = self.zone_event(zone, detail);
        ks.set_policy(zone, text, at, json)?;
        project::flush_outbox(self.cfg, &mut ks)
    }

    /// `rollover ds-seen`: the rollover's ds-seen step, or a first DS.
    pub fn ds_seen(&self, zone: &ZoneName) -> anyhow::Result<String> {
        let view = self.view(zone)?;
        let updates = match step::ds_seen(&view, self.now)? {
            DsSeen::Step(rec, m, r) => return self.take_step(&view, rec, m, &r, false),
            DsSeen::Pending(updates) => updates,
        };
        let mut batch = Batch::new(&view.name);
        let text = step::change_text(&updates);
        let detail = format!("the operator confirmed the parent's DS RRset: {text}");
        batch.outbox.push(self.zone_event(&view.name, detail));
        self.push_update_events(&view.name, &updates, &mut batch);
        batch.updates = updates;
        self.commit(batch)?;
        Ok(format!("the parent's DS RRset confirmed: {text}"))
    }

    /// Runs `body` with the token logged in with the user PIN (read once
    /// the token is found, so a missing token is reported before a PIN is
    /// asked for), under the token lock.
    pub(crate) fn with_session<T>(
        &self,
        body: impl FnOnce(&Token<'_>, &UserSession) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let module = project::load_module(self.cfg)?;
        let token = module.find_token(&self.cfg.token.selector)?;
        let session = token.login((self.pin)()?)?;
        body(&token, &session)
    }

    /// Makes keys in the token (not yet recorded: the caller commits them).
    pub(crate) fn make_keys(
        &self,
        view: &ZoneView,
        alg: Algorithm,
        roles: &[(Role, KeyState)],
    ) -> anyhow::Result<Vec<NewKey>> {
        self.with_session(|token, session| {
            let mut ks = Keystore::open(&self.cfg.keystore)?;
            let serial = token.identity.serial.clone();
            recover_pending(&mut ks, session, &serial, &mut |ks, e| self.audit(ks, e))?;
            let id_len = self.cfg.token.profile.cka_id_len;
            let used_as = KeyObjects::of(&self.cfg.token.profile);
            let mut made = Vec::new();
            for &(role, state) in roles {
                let spec = key_spec(alg, view.policy.bits(role.is_sep()))?;
                let zone = &view.zone;
                let states = [(role, state)];
                made.append(&mut generate_keys(
                    &mut ks, token, session, id_len, used_as, zone, alg, spec, &states, self.now,
                )?);
            }
            Ok(made)
        })
    }

    /// Commits a batch and writes its audit records.
    pub(crate) fn commit(&self, batch: Batch) -> anyhow::Result<Committed> {
        let mut ks = Keystore::open(&self.cfg.keystore)?;
        let done = ks.commit(batch)?.ok_or_else(|| {
            Failure::Refused(
                "the keystore changed while this step was being prepared (another dnsseal run?): nothing was done; run the command again".into(),
            )
        })?;
        project::flush_outbox(self.cfg, &mut ks)?;
        Ok(done)
    }

    /// Appends an event of the library to the log under this command.
    pub(crate) fn audit(&self, ks: &mut Keystore, e: Event) -> anyhow::Result<()> {
        let command = self.command.to_string();
        project::append(self.cfg, ks, self.now, Event { command, ..e })
    }

    pub(crate) fn outbox(&self, event: Event) -> (Timestamp, String) {
        project::outbox_event(self.now, &event)
    }

    /// The audit record of a change to a zone as a whole.
    pub(crate) fn zone_event(&self, zone: &str, detail: String) -> (Timestamp, String) {
        self.outbox(Event {
            command: self.command.to_string(),
            zone: Some(zone.to_string()),
            detail,
            ..Event::default()
        })
    }

    /// The audit record of a key made for the zone.
    pub(crate) fn key_event(&self, zone: &str, k: &NewKey, why: &str) -> Event {
        Event {
            command: self.command.to_string(),
            zone: Some(zone.to_string()),
            key_tag: Some(k.key_tag),
            key_id: Some(hex::encode(&k.cka_id)),
            old_state: None,
            new_state: Some(k.state.to_string()),
            failed: false,
            checkpoint: None,
            detail: format!(
                "{why}: generated {} {} {} bits in token {} (label '{}'), DS {}",
                k.role,
                k.algorithm.mnemonic(),
                k.bits,
                k.token_serial,
                k.cka_label,
                k.ds
            ),
        }
    }

    pub(crate) fn push_update_events(&self, zone: &str, updates: &[KeyUpdate], batch: &mut Batch) {
        for u in updates {
            let r = &u.record;
            batch.outbox.push(self.outbox(Event {
                command: self.command.to_string(),
                zone: Some(zone.to_string()),
                key_tag: Some(r.key_tag),
                key_id: Some(hex::encode(&r.cka_id)),
                old_state: Some(u.expected_state.to_string()),
                new_state: Some(r.state.to_string()),
                failed: false,
                checkpoint: None,
                detail: step::update_text(u),
            }));
        }
    }
}
