//! Rollovers: every method is a list of steps of one key state machine
//! (key states and DS states of [`crate::keystore`]), and every step has
//! an earliest safe time from the RFC 7583 intervals.
//!
//! The intervals count from when a change reached the zone as signed, not
//! from when a command recorded it: a step bumps the zone's key-set
//! generation, `dnsseal sign` records when it first signed each
//! generation, and a wait that needs the change in caches starts at that
//! signing. TTLs are the larger of the policy's and those of the zone as
//! signed since the step before (RFC 7583 §2: TTLkey, TTLsig).
//!
//! | wait           | interval                                                     |
//! |----------------|--------------------------------------------------------------|
//! | DNSKEY cached  | Dprp + TTLkey + publish safety (Ipub, §3.2.1)                |
//! | RRSIGs cached  | Dprp + TTLsig + retire safety (Iret, Dsgn = 0: full re-sign)  |
//! | both cached    | Dprp + max(TTLkey, TTLsig) + max(safeties) (§3.2.2)          |
//! | DS cached      | DprpP + TTLds + retire safety, from the operator's `ds-seen` |
//! | hold-down      | max(RFC 5011 hold-down, Dprp + TTLkey + publish safety)      |

use std::fmt;

use serde::Serialize;

use super::{KskMethod, Policy, ZskMethod};
use crate::clock::Timestamp;
use crate::keystore::{DsState, KeyRecord, KeyState, KeyUpdate, RolloverRecord, Signing};
use crate::zone::dnskey::key_tag;

/// The REVOKE bit of the DNSKEY flags (RFC 5011 §3).
pub const FLAG_REVOKE: u16 = 0x0080;

/// A rollover method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    ZskPrePublication,
    ZskDoubleSignature,
    KskDoubleKsk,
    KskDoubleDs,
    KskDoubleRrset,
    KskRfc5011,
    Csk,
    Algorithm,
    EmergencyZsk,
    EmergencyKsk,
    EmergencyCsk,
    Insecure,
}

/// Which keys an action touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The keys rolled out.
    Old,
    /// The keys rolled in.
    New,
    /// The old KSKs/CSKs.
    OldSep,
    /// The new KSKs/CSKs.
    NewSep,
    /// Every KSK/CSK of the zone whose DS the parent should hold.
    AllSep,
    /// Every key of the zone still in it.
    All,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    State(Who, KeyState),
    Ds(Who, DsState),
    /// RFC 5011: set the REVOKE bit (the key tag changes).
    Revoke(Who),
    /// Signing keys go to postsigning (DNSKEY withdrawn, signatures kept),
    /// the others out of the zone.
    Retire(Who),
    /// The operator confirms the parent: every submitted DS is seen, every
    /// retiring one gone.
    DsSeen,
}

/// A wait before a step, counted from an earlier step (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    DnskeyCached(usize),
    SigsCached(usize),
    BothCached(usize),
    DsCached(usize),
    HoldDown(usize),
}

/// One step of a method.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub summary: &'static str,
    pub guards: &'static [Guard],
    pub actions: &'static [Action],
}

impl Step {
    /// Steps that the parent's action, confirmed by the operator, makes.
    pub fn is_ds_seen(&self) -> bool {
        self.actions.contains(&Action::DsSeen)
    }
}

use Action::{Ds, DsSeen, Retire, Revoke, State};
use Guard::{BothCached, DnskeyCached, DsCached, HoldDown, SigsCached};
use Who::{AllSep, New, NewSep, Old, OldSep};

/// The operator's confirmation of the parent: a step of every method that
/// changes the DS, and of `rollover ds-seen` outside a rollover.
pub const DS_SEEN: Step = Step {
    name: "ds-seen",
    summary:
        "the operator confirms that the parent's servers publish the DS RRset the zone asked for",
    guards: &[],
    actions: &[DsSeen],
};

const ZSK_PRE_PUBLICATION: &[Step] = &[
    Step {
        name: "start",
        summary: "publish the new ZSK's DNSKEY; it does not sign yet",
        guards: &[],
        actions: &[State(New, KeyState::Published)],
    },
    Step {
        name: "activate",
        summary: "the new ZSK signs; the old ZSK stops signing and stays published",
        guards: &[DnskeyCached(0)],
        actions: &[State(New, KeyState::Active), State(Old, KeyState::Inactive)],
    },
    Step {
        name: "finish",
        summary: "remove the old ZSK's DNSKEY",
        guards: &[SigsCached(1)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const ZSK_DOUBLE_SIGNATURE: &[Step] = &[
    Step {
        name: "start",
        summary: "publish the new ZSK; it signs beside the old one",
        guards: &[],
        actions: &[State(New, KeyState::Active)],
    },
    Step {
        name: "finish",
        summary: "remove the old ZSK and its signatures",
        guards: &[BothCached(0)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const KSK_DOUBLE_KSK: &[Step] = &[
    Step {
        name: "start",
        summary: "publish the new KSK; both KSKs sign the DNSKEY RRset",
        guards: &[],
        actions: &[State(New, KeyState::Active)],
    },
    Step {
        name: "submit",
        summary:
            "ask the parent to replace the old DS by the new one (CDS/CDNSKEY, `dnsseal keys ds`)",
        guards: &[DnskeyCached(0)],
        actions: &[Ds(New, DsState::Submitted), Ds(Old, DsState::Retiring)],
    },
    DS_SEEN,
    Step {
        name: "finish",
        summary: "remove the old KSK",
        guards: &[DsCached(2)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const KSK_DOUBLE_DS: &[Step] = &[
    Step {
        name: "start",
        summary: "ask the parent to add the new KSK's DS; the new KSK is not published yet",
        guards: &[],
        actions: &[Ds(New, DsState::Submitted)],
    },
    DS_SEEN,
    Step {
        name: "swap",
        summary: "publish the new KSK and remove the old one (its DS stays at the parent)",
        guards: &[DsCached(1)],
        actions: &[State(New, KeyState::Active), State(Old, KeyState::Removed)],
    },
    Step {
        name: "withdraw",
        summary: "ask the parent to remove the old DS",
        guards: &[DnskeyCached(2)],
        actions: &[Ds(Old, DsState::Retiring)],
    },
    DS_SEEN,
];

const KSK_DOUBLE_RRSET: &[Step] = &[
    Step {
        name: "start",
        summary:
            "publish the new KSK (both sign the DNSKEY RRset) and ask the parent to add its DS",
        guards: &[],
        actions: &[State(New, KeyState::Active), Ds(New, DsState::Submitted)],
    },
    DS_SEEN,
    Step {
        name: "finish",
        summary: "remove the old KSK and ask the parent to remove its DS",
        guards: &[DnskeyCached(0), DsCached(1)],
        actions: &[State(Old, KeyState::Removed), Ds(Old, DsState::Retiring)],
    },
    DS_SEEN,
];

const KSK_RFC5011: &[Step] = &[
    Step {
        name: "start",
        summary:
            "publish the new KSK; both KSKs sign the DNSKEY RRset (RFC 5011 add hold-down starts)",
        guards: &[],
        actions: &[State(New, KeyState::Active)],
    },
    Step {
        name: "submit",
        summary: "ask the parent to replace the old DS by the new one",
        guards: &[DnskeyCached(0)],
        actions: &[Ds(New, DsState::Submitted), Ds(Old, DsState::Retiring)],
    },
    DS_SEEN,
    Step {
        name: "revoke",
        summary: "set the REVOKE bit on the old KSK (RFC 5011); it still signs the DNSKEY RRset",
        guards: &[DsCached(2), HoldDown(0)],
        actions: &[Revoke(Old)],
    },
    Step {
        name: "finish",
        summary: "remove the revoked KSK",
        guards: &[HoldDown(3)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const CSK: &[Step] = &[
    Step {
        name: "start",
        summary: "publish the new CSK; both CSKs sign every RRset",
        guards: &[],
        actions: &[State(New, KeyState::Active)],
    },
    Step {
        name: "submit",
        summary: "ask the parent to replace the old DS by the new one",
        guards: &[BothCached(0)],
        actions: &[Ds(New, DsState::Submitted), Ds(Old, DsState::Retiring)],
    },
    DS_SEEN,
    Step {
        name: "finish",
        summary: "remove the old CSK and its signatures",
        guards: &[DsCached(2)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const ALGORITHM: &[Step] = &[
    Step {
        name: "start",
        summary: "the new-algorithm keys sign every RRset; their DNSKEYs are not published yet (RFC 6781 §4.1.4)",
        guards: &[],
        actions: &[State(New, KeyState::Presigning)],
    },
    Step {
        name: "publish",
        summary: "publish the new-algorithm DNSKEYs",
        guards: &[SigsCached(0)],
        actions: &[State(New, KeyState::Active)],
    },
    Step {
        name: "submit",
        summary: "ask the parent to replace the old-algorithm DS by the new one",
        guards: &[DnskeyCached(1)],
        actions: &[Ds(NewSep, DsState::Submitted), Ds(OldSep, DsState::Retiring)],
    },
    DS_SEEN,
    Step {
        name: "retire",
        summary: "remove the old-algorithm DNSKEYs; their signatures stay",
        guards: &[DsCached(3)],
        actions: &[Retire(Old)],
    },
    Step {
        name: "finish",
        summary: "remove the old-algorithm signatures",
        guards: &[DnskeyCached(4)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const EMERGENCY_ZSK: &[Step] = &[
    Step {
        name: "start",
        summary: "the standby (or a new) ZSK signs at once; the compromised ZSK stops signing and stays published while caches hold its signatures",
        guards: &[],
        actions: &[State(New, KeyState::Active), State(Old, KeyState::Inactive)],
    },
    Step {
        name: "finish",
        summary: "remove the compromised ZSK",
        guards: &[SigsCached(0)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const EMERGENCY_KSK: &[Step] = &[
    Step {
        name: "start",
        summary: "the standby (or a new) key signs at once and the parent is asked for its DS only; the compromised key signs until the old DS has left caches",
        guards: &[],
        actions: &[
            State(New, KeyState::Active),
            Ds(New, DsState::Submitted),
            Ds(Old, DsState::Retiring),
        ],
    },
    DS_SEEN,
    Step {
        name: "finish",
        summary: "remove the compromised key",
        guards: &[DnskeyCached(0), DsCached(1)],
        actions: &[State(Old, KeyState::Removed)],
    },
];

const INSECURE: &[Step] = &[
    Step {
        name: "start",
        summary:
            "publish the CDS/CDNSKEY delete form (RFC 8078): the parent should remove every DS",
        guards: &[],
        actions: &[Ds(AllSep, DsState::Retiring)],
    },
    DS_SEEN,
    Step {
        name: "finish",
        summary: "every key leaves the zone: it is served unsigned from now on",
        guards: &[DsCached(1)],
        actions: &[State(Who::All, KeyState::Removed)],
    },
];

impl Method {
    pub const ALL: [Method; 12] = [
        Method::ZskPrePublication,
        Method::ZskDoubleSignature,
        Method::KskDoubleKsk,
        Method::KskDoubleDs,
        Method::KskDoubleRrset,
        Method::KskRfc5011,
        Method::Csk,
        Method::Algorithm,
        Method::EmergencyZsk,
        Method::EmergencyKsk,
        Method::EmergencyCsk,
        Method::Insecure,
    ];

    /// The name stored in the keystore and printed.
    pub const fn name(self) -> &'static str {
        match self {
            Method::ZskPrePublication => "zsk-pre-publication",
            Method::ZskDoubleSignature => "zsk-double-signature",
            Method::KskDoubleKsk => "ksk-double-ksk",
            Method::KskDoubleDs => "ksk-double-ds",
            Method::KskDoubleRrset => "ksk-double-rrset",
            Method::KskRfc5011 => "ksk-rfc5011",
            Method::Csk => "csk",
            Method::Algorithm => "algorithm",
            Method::EmergencyZsk => "emergency-zsk",
            Method::EmergencyKsk => "emergency-ksk",
            Method::EmergencyCsk => "emergency-csk",
            Method::Insecure => "insecure",
        }
    }

    pub fn from_name(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The `dnsseal rollover KIND` the method belongs to.
    pub const fn kind(self) -> &'static str {
        match self {
            Method::ZskPrePublication | Method::ZskDoubleSignature => "zsk",
            Method::KskDoubleKsk
            | Method::KskDoubleDs
            | Method::KskDoubleRrset
            | Method::KskRfc5011 => "ksk",
            Method::Csk => "csk",
            Method::Algorithm => "algorithm",
            Method::EmergencyZsk | Method::EmergencyKsk | Method::EmergencyCsk => "emergency",
            Method::Insecure => "insecure",
        }
    }

    pub const fn steps(self) -> &'static [Step] {
        match self {
            Method::ZskPrePublication => ZSK_PRE_PUBLICATION,
            Method::ZskDoubleSignature => ZSK_DOUBLE_SIGNATURE,
            Method::KskDoubleKsk => KSK_DOUBLE_KSK,
            Method::KskDoubleDs => KSK_DOUBLE_DS,
            Method::KskDoubleRrset => KSK_DOUBLE_RRSET,
            Method::KskRfc5011 => KSK_RFC5011,
            Method::Csk => CSK,
            Method::Algorithm => ALGORITHM,
            Method::EmergencyZsk => EMERGENCY_ZSK,
            Method::EmergencyKsk | Method::EmergencyCsk => EMERGENCY_KSK,
            Method::Insecure => INSECURE,
        }
    }

    pub fn for_zsk(m: ZskMethod) -> Method {
        match m {
            ZskMethod::PrePublication => Method::ZskPrePublication,
            ZskMethod::DoubleSignature => Method::ZskDoubleSignature,
        }
    }

    pub fn for_ksk(m: KskMethod) -> Method {
        match m {
            KskMethod::DoubleKsk => Method::KskDoubleKsk,
            KskMethod::DoubleDs => Method::KskDoubleDs,
            KskMethod::DoubleRrset => Method::KskDoubleRrset,
            KskMethod::Rfc5011 => Method::KskRfc5011,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The delays and TTLs the waits are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub propagation: i64,
    pub parent_propagation: i64,
    pub registration: i64,
    pub dnskey_ttl: i64,
    pub max_zone_ttl: i64,
    pub ds_ttl: i64,
    pub publish_safety: i64,
    pub retire_safety: i64,
    pub hold_down: i64,
}

impl Timing {
    pub fn from_policy(p: &Policy) -> Timing {
        Timing {
            propagation: p.propagation_delay.secs(),
            parent_propagation: p.parent_propagation_delay.secs(),
            registration: p.registration_delay.secs(),
            dnskey_ttl: p.dnskey_ttl.secs(),
            max_zone_ttl: p.max_zone_ttl.secs(),
            ds_ttl: p.ds_ttl.secs(),
            publish_safety: p.publish_safety.secs(),
            retire_safety: p.retire_safety.secs(),
            hold_down: p.hold_down.secs(),
        }
    }
}

impl Timing {
    /// "propagation 1h, parent propagation 1h, DNSKEY TTL 1h, max zone TTL
    /// 1d, DS TTL 1d, safety 1h/1h", as `rollover plan` heads its output.
    pub fn summary(&self) -> String {
        format!(
            "propagation {}, parent propagation {}, DNSKEY TTL {}, max zone TTL {}, DS TTL {}, safety {}/{}",
            span_text(self.propagation),
            span_text(self.parent_propagation),
            span_text(self.dnskey_ttl),
            span_text(self.max_zone_ttl),
            span_text(self.ds_ttl),
            span_text(self.publish_safety),
            span_text(self.retire_safety),
        )
    }
}

/// One wait of a step, worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// The earliest safe time, or None while the zone has not been signed
    /// since the step the wait counts from.
    pub earliest: Option<Timestamp>,
    /// Which wait, what it counts from, and the TTLs it is made of.
    pub why: String,
}

/// Whether the next step of a rollover may run, and from when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub index: usize,
    pub step: &'static str,
    pub summary: &'static str,
    /// A `ds-seen` step: the operator decides, after checking the parent.
    pub needs_operator: bool,
    pub waits: Vec<Wait>,
}

impl Readiness {
    /// The latest of the waits, if all are known.
    pub fn earliest(&self) -> Option<Timestamp> {
        let mut t = Timestamp::from_unix(i64::MIN / 2);
        for w in &self.waits {
            t = t.max(w.earliest?);
        }
        Some(t)
    }

    pub fn ready(&self, now: Timestamp) -> bool {
        self.earliest().is_some_and(|t| t <= now)
    }

    /// Why the step may not run yet at `now` (empty when it may).
    pub fn blockers(&self, now: Timestamp) -> Vec<String> {
        self.waits
            .iter()
            .filter(|w| w.earliest.is_none_or(|t| t > now))
            .map(|w| match w.earliest {
                Some(t) => format!(
                    "{} = {t} ({} from now)",
                    w.why,
                    span_text(t.unix() - now.unix())
                ),
                None => w.why.clone(),
            })
            .collect()
    }
}

/// "3d 4h 5m" for a number of seconds.
pub fn span_text(secs: i64) -> String {
    let mut s = secs.max(0);
    let mut parts = Vec::new();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n {
            parts.push(format!("{}{unit}", s / n));
            s %= n;
        }
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// The first signing of the zone that carried step `i`'s change, and the
/// TTLs of the zone as signed since the generation before it.
fn signed_after(
    rec: &RolloverRecord,
    i: usize,
    signings: &[Signing],
    t: &Timing,
) -> (Option<Timestamp>, i64, i64) {
    let Some(step) = rec.steps.get(i) else {
        return (None, t.dnskey_ttl, t.max_zone_ttl);
    };
    let first = signings
        .iter()
        .filter(|s| s.generation >= step.generation)
        .map(|s| s.first_signed)
        .min()
        .map(|f| f.max(step.at));
    let since = signings
        .iter()
        .filter(|s| s.generation >= step.generation - 1);
    let (mut key, mut sig) = (t.dnskey_ttl, t.max_zone_ttl);
    for s in since {
        key = key.max(i64::from(s.dnskey_ttl));
        sig = sig.max(i64::from(s.max_ttl));
    }
    (first, key, sig)
}

/// Works out one wait.
pub fn wait(
    guard: Guard,
    method: Method,
    rec: &RolloverRecord,
    signings: &[Signing],
    t: &Timing,
) -> Wait {
    let steps = method.steps();
    let name = |i: usize| steps.get(i).map_or("?", |s| s.name);
    if let DsCached(i) = guard {
        let interval = t.parent_propagation + t.ds_ttl + t.retire_safety;
        return match rec.steps.get(i) {
            Some(s) => Wait {
                earliest: Some(Timestamp::from_unix(s.at.unix() + interval)),
                why: format!(
                    "the old DS RRset must leave every cache: ds-seen at {} + parent propagation {} + DS TTL {}s + retire safety {}",
                    s.at,
                    span_text(t.parent_propagation),
                    t.ds_ttl,
                    span_text(t.retire_safety)
                ),
            },
            None => Wait {
                earliest: None,
                why: format!("step '{}' has not happened", name(i)),
            },
        };
    }
    let i = match guard {
        DnskeyCached(i) | SigsCached(i) | BothCached(i) | HoldDown(i) | DsCached(i) => i,
    };
    let (first, ttl_key, ttl_sig) = signed_after(rec, i, signings, t);
    let Some(first) = first else {
        return Wait {
            earliest: None,
            why: format!(
                "the zone has not been signed since step '{}': run `dnsseal sign` (waits count from the first signing that carries a change)",
                name(i)
            ),
        };
    };
    let (interval, why) = match guard {
        DnskeyCached(_) => (
            t.propagation + ttl_key + t.publish_safety,
            format!(
                "the DNSKEY RRset of step '{}' must be in every cache: first signed {first} + propagation {} + DNSKEY TTL {ttl_key}s + publish safety {}",
                name(i),
                span_text(t.propagation),
                span_text(t.publish_safety)
            ),
        ),
        SigsCached(_) => (
            t.propagation + ttl_sig + t.retire_safety,
            format!(
                "signatures made before step '{}' must leave every cache: first signed {first} + propagation {} + largest zone TTL {ttl_sig}s + retire safety {}",
                name(i),
                span_text(t.propagation),
                span_text(t.retire_safety)
            ),
        ),
        BothCached(_) => (
            t.propagation + ttl_key.max(ttl_sig) + t.publish_safety.max(t.retire_safety),
            format!(
                "the DNSKEY RRset and signatures of step '{}' must be in every cache: first signed {first} + propagation {} + max(DNSKEY TTL {ttl_key}s, largest zone TTL {ttl_sig}s) + safety {}",
                name(i),
                span_text(t.propagation),
                span_text(t.publish_safety.max(t.retire_safety))
            ),
        ),
        HoldDown(_) => {
            let ipub = t.propagation + ttl_key + t.publish_safety;
            (
                t.hold_down.max(ipub),
                format!(
                    "RFC 5011 hold-down after step '{}': first signed {first} + max(hold-down {}, propagation + DNSKEY TTL {ttl_key}s + publish safety)",
                    name(i),
                    span_text(t.hold_down)
                ),
            )
        }
        DsCached(_) => (0, String::new()),
    };
    Wait {
        earliest: Some(Timestamp::from_unix(first.unix() + interval)),
        why,
    }
}

/// The next step of a rollover and its waits; None when it is finished.
pub fn next(
    method: Method,
    rec: &RolloverRecord,
    signings: &[Signing],
    t: &Timing,
) -> Option<Readiness> {
    let index = rec.steps.len();
    let step = method.steps().get(index)?;
    Some(Readiness {
        index,
        step: step.name,
        summary: step.summary,
        needs_operator: step.is_ds_seen(),
        waits: step
            .guards
            .iter()
            .map(|g| wait(*g, method, rec, signings, t))
            .collect(),
    })
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    pub index: usize,
    pub step: &'static str,
    pub summary: &'static str,
    /// When it happened (done), or its earliest time.
    pub at: Option<Timestamp>,
    pub done: bool,
    pub forced: bool,
    /// The time depends on the parent (ds-seen), or on an estimate of it.
    pub estimate: bool,
    pub why: Vec<String>,
}

impl PlanStep {
    /// When the step ran or may run, as `rollover plan` shows it: "done
    /// T", "done T (FORCED)", "~T (depends on the parent)", "due now",
    /// ">= T" or "unknown".
    pub fn when(&self, now: Timestamp) -> String {
        match self.at {
            Some(at) if self.done => {
                format!("done {at}{}", if self.forced { " (FORCED)" } else { "" })
            }
            Some(at) if self.estimate => format!("~{at} (depends on the parent)"),
            Some(at) if at <= now => "due now".to_string(),
            Some(at) => format!(">= {at}"),
            None => "unknown".to_string(),
        }
    }
}

/// The whole timeline of a rollover: what is done, and for every coming
/// step its earliest time if each step before runs at its earliest, the
/// zone is signed at once after each, and the parent acts within the
/// policy's registration delay.
pub fn plan(
    method: Method,
    rec: &RolloverRecord,
    signings: &[Signing],
    t: &Timing,
    now: Timestamp,
) -> Vec<PlanStep> {
    let mut out: Vec<PlanStep> = rec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| PlanStep {
            index: i,
            step: method.steps().get(i).map_or("?", |d| d.name),
            summary: method.steps().get(i).map_or("", |d| d.summary),
            at: Some(s.at),
            done: true,
            forced: s.forced,
            estimate: false,
            why: Vec::new(),
        })
        .collect();
    let mut sim = rec.clone();
    let mut sims: Vec<Signing> = signings.to_vec();
    let mut generation = rec.steps.last().map_or(0, |s| s.generation);
    let last_ttls = signings
        .last()
        .map_or((0, 0), |s| (s.dnskey_ttl, s.max_ttl));
    let mut estimate = false;
    // The last step done may not be signed yet: assume it is, now.
    let mut clock = now;
    if let Some(last) = rec.steps.last() {
        if !signings.iter().any(|s| s.generation >= last.generation) {
            sims.push(Signing {
                generation: last.generation,
                first_signed: clock.max(last.at),
                last_signed: clock.max(last.at),
                dnskey_ttl: last_ttls.0,
                max_ttl: last_ttls.1,
            });
        }
    }
    while let Some(r) = next(method, &sim, &sims, t) {
        let mut at = r.earliest().unwrap_or(clock).max(clock);
        if r.needs_operator {
            // The parent acts some time after the request was signed.
            let asked = sim.steps.last().map_or(clock, |s| s.at);
            at = at.max(Timestamp::from_unix(
                asked.unix() + t.registration + t.parent_propagation,
            ));
            estimate = true;
        }
        out.push(PlanStep {
            index: r.index,
            step: r.step,
            summary: r.summary,
            at: Some(at),
            done: false,
            forced: false,
            estimate,
            why: r.waits.iter().map(|w| w.why.clone()).collect(),
        });
        generation += 1;
        sim.steps.push(crate::keystore::StepRecord {
            name: r.step.to_string(),
            at,
            generation,
            forced: false,
        });
        sims.push(Signing {
            generation,
            first_signed: at,
            last_signed: at,
            dnskey_ttl: last_ttls.0,
            max_ttl: last_ttls.1,
        });
        clock = at;
    }
    out
}

/// The keys a step changes, and how: the updates to commit.
pub fn apply(
    step: &Step,
    old: &[i64],
    new: &[i64],
    keys: &[KeyRecord],
    now: Timestamp,
) -> Vec<KeyUpdate> {
    let mut changed: Vec<KeyRecord> = Vec::new();
    let pick = |who: Who, k: &KeyRecord| -> bool {
        match who {
            Who::Old => old.contains(&k.id),
            Who::New => new.contains(&k.id),
            Who::OldSep => old.contains(&k.id) && k.role.is_sep(),
            Who::NewSep => new.contains(&k.id) && k.role.is_sep(),
            Who::AllSep => k.role.is_sep() && k.ds.wanted(),
            Who::All => k.state.in_zone() || k.state == KeyState::Generated,
        }
    };
    for action in step.actions {
        for k in keys {
            let mut rec = changed
                .iter()
                .find(|c| c.id == k.id)
                .cloned()
                .unwrap_or_else(|| k.clone());
            let before = rec.clone();
            match *action {
                State(who, s) if pick(who, k) => set_state(&mut rec, s, now),
                Retire(who) if pick(who, k) => {
                    let s = if rec.state.is_signing() {
                        KeyState::Postsigning
                    } else {
                        KeyState::Removed
                    };
                    set_state(&mut rec, s, now);
                }
                Ds(who, d) if pick(who, k) && rec.role.is_sep() => set_ds(&mut rec, d, now),
                Revoke(who) if pick(who, k) && rec.role.is_sep() => {
                    rec.flags |= FLAG_REVOKE;
                    rec.key_tag = key_tag(&rec.dnskey().rdata());
                    set_state(&mut rec, KeyState::Revoked, now);
                }
                DsSeen => match rec.ds {
                    DsState::Submitted => set_ds(&mut rec, DsState::Seen, now),
                    DsState::Retiring => set_ds(&mut rec, DsState::Gone, now),
                    _ => {}
                },
                _ => {}
            }
            if rec != before {
                changed.retain(|c| c.id != rec.id);
                changed.push(rec);
            }
        }
    }
    changed
        .into_iter()
        .filter_map(|rec| {
            let orig = keys.iter().find(|k| k.id == rec.id)?;
            Some(KeyUpdate {
                expected_state: orig.state,
                expected_ds: orig.ds,
                record: rec,
            })
        })
        .collect()
}

fn set_state(rec: &mut KeyRecord, s: KeyState, now: Timestamp) {
    if rec.state == s {
        return;
    }
    rec.state = s;
    let t = &mut rec.timings;
    match s {
        KeyState::Published => t.published = Some(now),
        KeyState::Active => {
            t.published.get_or_insert(now);
            t.active = Some(now);
        }
        KeyState::Presigning => t.active = Some(now),
        KeyState::Inactive => t.inactive = Some(now),
        KeyState::Postsigning => t.inactive = Some(now),
        KeyState::Revoked => t.revoked = Some(now),
        KeyState::Removed => t.removed = Some(now),
        KeyState::Destroyed => t.destroyed = Some(now),
        KeyState::Generated => {}
    }
}

fn set_ds(rec: &mut KeyRecord, d: DsState, now: Timestamp) {
    // A DS the parent already serves is not asked for again (an emergency
    // rollover onto a standby KSK whose DS is in place).
    if rec.ds == d || (d == DsState::Submitted && rec.ds == DsState::Seen) {
        return;
    }
    rec.ds = d;
    let t = &mut rec.timings;
    match d {
        DsState::Submitted => t.ds_submitted = Some(now),
        DsState::Seen => t.ds_seen = Some(now),
        DsState::Retiring => t.ds_retired = Some(now),
        DsState::Gone => t.ds_gone = Some(now),
        DsState::None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{Origin, Role, StepRecord, Timings};

    fn timing() -> Timing {
        Timing {
            propagation: 300,
            parent_propagation: 600,
            registration: 86_400,
            dnskey_ttl: 3_600,
            max_zone_ttl: 7_200,
            ds_ttl: 1_800,
            publish_safety: 60,
            retire_safety: 120,
            hold_down: 30 * 86_400,
        }
    }

    fn rollover(method: Method, steps: &[(&str, i64, i64)]) -> RolloverRecord {
        RolloverRecord {
            id: 1,
            zone: "example.".parse().expect("a zone name"),
            method: method.name().into(),
            old: vec![1],
            new: vec![2],
            started: Timestamp::from_unix(steps[0].1),
            finished: None,
            steps: steps
                .iter()
                .map(|(n, at, g)| StepRecord {
                    name: (*n).into(),
                    at: Timestamp::from_unix(*at),
                    generation: *g,
                    forced: false,
                })
                .collect(),
        }
    }

    fn signing(generation: i64, at: i64, dnskey_ttl: u32, max_ttl: u32) -> Signing {
        Signing {
            generation,
            first_signed: Timestamp::from_unix(at),
            last_signed: Timestamp::from_unix(at),
            dnskey_ttl,
            max_ttl,
        }
    }

    fn key(id: i64, role: Role, state: KeyState, ds: DsState) -> KeyRecord {
        KeyRecord {
            id,
            zone: "example.".parse().expect("a zone name"),
            key_tag: 0,
            role,
            algorithm: crate::zone::Algorithm::EcdsaP256Sha256,
            bits: 256,
            flags: if role.is_sep() { 257 } else { 256 },
            public_key: vec![id as u8; 64],
            token_serial: "s".into(),
            token_label: "l".into(),
            cka_id: vec![id as u8],
            cka_label: "c".into(),
            state,
            ds,
            origin: Origin::Generated,
            timings: Timings::default(),
        }
    }

    #[test]
    fn waits_count_from_the_first_signing_with_the_larger_ttl() {
        let t = timing();
        let rec = rollover(Method::ZskPrePublication, &[("start", 1_000, 5)]);
        // Not signed since the step: no time yet, and it says why.
        let r = next(
            Method::ZskPrePublication,
            &rec,
            &[signing(4, 900, 3_600, 7_200)],
            &t,
        )
        .unwrap();
        assert_eq!(r.step, "activate");
        assert_eq!(r.earliest(), None);
        assert!(r.waits[0].why.contains("has not been signed"));
        // Signed at 1 500 with a DNSKEY TTL larger than the policy's.
        let signings = [
            signing(4, 900, 3_600, 7_200),
            signing(5, 1_500, 5_000, 7_200),
        ];
        let r = next(Method::ZskPrePublication, &rec, &signings, &t).unwrap();
        assert_eq!(
            r.earliest(),
            Some(Timestamp::from_unix(1_500 + 300 + 5_000 + 60))
        );
        assert!(!r.ready(Timestamp::from_unix(1_500 + 300 + 5_000 + 59)));
        assert!(r.ready(Timestamp::from_unix(1_500 + 300 + 5_000 + 60)));
    }

    #[test]
    fn ds_wait_counts_from_ds_seen_and_all_guards_must_pass() {
        let t = timing();
        let rec = rollover(
            Method::KskDoubleRrset,
            &[("start", 1_000, 1), ("ds-seen", 50_000, 2)],
        );
        let signings = [
            signing(1, 1_000, 3_600, 7_200),
            signing(2, 50_000, 3_600, 7_200),
        ];
        let r = next(Method::KskDoubleRrset, &rec, &signings, &t).unwrap();
        assert_eq!(r.step, "finish");
        assert_eq!(r.waits.len(), 2);
        // max(start + Ipub, ds-seen + DprpP + TTLds + retire safety)
        assert_eq!(
            r.earliest(),
            Some(Timestamp::from_unix(50_000 + 600 + 1_800 + 120))
        );
        assert_eq!(r.blockers(Timestamp::from_unix(50_000)).len(), 1);
    }

    #[test]
    fn a_ds_seen_step_is_the_operators() {
        let rec = rollover(
            Method::KskDoubleKsk,
            &[("start", 0, 1), ("submit", 10_000, 2)],
        );
        let r = next(Method::KskDoubleKsk, &rec, &[], &timing()).unwrap();
        assert!(r.needs_operator);
        assert!(r.waits.is_empty());
    }

    #[test]
    fn plan_projects_each_step_from_the_one_before() {
        let t = timing();
        let rec = rollover(Method::ZskPrePublication, &[("start", 1_000, 1)]);
        let p = plan(
            Method::ZskPrePublication,
            &rec,
            &[signing(1, 1_000, 3_600, 7_200)],
            &t,
            Timestamp::from_unix(1_000),
        );
        let names: Vec<&str> = p.iter().map(|s| s.step).collect();
        assert_eq!(names, ["start", "activate", "finish"]);
        let activate = 1_000 + 300 + 3_600 + 60;
        assert_eq!(p[1].at, Some(Timestamp::from_unix(activate)));
        assert_eq!(
            p[2].at,
            Some(Timestamp::from_unix(activate + 300 + 7_200 + 120))
        );
        assert!(p[0].done && !p[1].done);
    }

    #[test]
    fn revoking_sets_the_bit_and_a_new_tag() {
        let mut old = key(1, Role::Ksk, KeyState::Active, DsState::Gone);
        old.key_tag = old.dnskey().key_tag();
        let step = &Method::KskRfc5011.steps()[3];
        assert_eq!(step.name, "revoke");
        let u = apply(step, &[1], &[2], &[old.clone()], Timestamp::from_unix(5));
        assert_eq!(u.len(), 1);
        let r = &u[0].record;
        assert_eq!(r.flags, 257 | FLAG_REVOKE);
        assert_eq!(r.state, KeyState::Revoked);
        assert_ne!(r.key_tag, old.key_tag);
        assert_eq!(r.key_tag, r.dnskey().key_tag());
        assert_eq!(r.timings.revoked, Some(Timestamp::from_unix(5)));
    }

    #[test]
    fn ds_seen_settles_every_pending_ds_and_seen_is_not_asked_again() {
        let keys = [
            key(1, Role::Ksk, KeyState::Active, DsState::Retiring),
            key(2, Role::Ksk, KeyState::Active, DsState::Submitted),
            key(3, Role::Zsk, KeyState::Active, DsState::None),
        ];
        let u = apply(&DS_SEEN, &[1], &[2], &keys, Timestamp::from_unix(9));
        let ds: Vec<(i64, DsState)> = u.iter().map(|u| (u.record.id, u.record.ds)).collect();
        assert_eq!(ds, [(1, DsState::Gone), (2, DsState::Seen)]);
        // An emergency start onto a KSK whose DS the parent already serves.
        let keys = [
            key(1, Role::Ksk, KeyState::Active, DsState::Seen),
            key(2, Role::Ksk, KeyState::Published, DsState::Seen),
        ];
        let u = apply(
            &EMERGENCY_KSK[0],
            &[1],
            &[2],
            &keys,
            Timestamp::from_unix(9),
        );
        let new = u.iter().find(|u| u.record.id == 2).unwrap();
        assert_eq!(new.record.ds, DsState::Seen);
        assert_eq!(new.record.state, KeyState::Active);
    }

    #[test]
    fn every_method_waits_only_on_earlier_steps() {
        for m in Method::ALL {
            let steps = m.steps();
            assert_eq!(steps[0].name, "start", "{m}");
            assert!(steps[0].guards.is_empty(), "{m}: start waits for nothing");
            for (i, s) in steps.iter().enumerate() {
                for g in s.guards {
                    let (DnskeyCached(j) | SigsCached(j) | BothCached(j) | DsCached(j)
                    | HoldDown(j)) = *g;
                    assert!(j < i, "{m} step {}: waits on a later step", s.name);
                    if let DsCached(j) = *g {
                        assert!(steps[j].is_ds_seen(), "{m}: DS wait not after ds-seen");
                    }
                }
            }
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
    }

    #[test]
    fn a_plan_step_says_when_it_ran_or_may_run() {
        let now = Timestamp::from_unix(10_000);
        let mut s = PlanStep {
            index: 1,
            step: "activate",
            summary: "",
            at: Some(Timestamp::from_unix(9_000)),
            done: true,
            forced: true,
            estimate: false,
            why: Vec::new(),
        };
        let t = Timestamp::from_unix(9_000);
        assert_eq!(s.when(now), format!("done {t} (FORCED)"));
        s.forced = false;
        assert_eq!(s.when(now), format!("done {t}"));
        s.done = false;
        assert_eq!(s.when(now), "due now");
        s.estimate = true;
        assert_eq!(s.when(now), format!("~{t} (depends on the parent)"));
        s.estimate = false;
        assert_eq!(s.when(Timestamp::from_unix(8_999)), format!(">= {t}"));
        s.at = None;
        assert_eq!(s.when(now), "unknown");
    }

    #[test]
    fn the_timing_summary_names_every_delay() {
        assert_eq!(
            timing().summary(),
            "propagation 5m, parent propagation 10m, DNSKEY TTL 1h, max zone TTL 2h, DS TTL 30m, safety 1m/2m"
        );
    }
}
