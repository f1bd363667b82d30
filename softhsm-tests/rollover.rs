//! Rollovers replayed over simulated time against a model of every cache a
//! validating resolver could hold.
//!
//! Each test drives the real `dnsseal` binary on a SoftHSMv2 token (or a
//! Kryoptic one, with DNSSEAL_TEST_TOKEN=kryoptic; the algorithm rollovers
//! then go to ECDSAP384SHA384, as it has no Ed25519) through a
//! whole rollover with `--now`: every step at its earliest safe time (from
//! `rollover plan`), the zone signed after every step and once a day in
//! between, the parent updating its DS RRset some time between the request
//! and the operator's `ds-seen`. Every signed zone of a step passes
//! dnssec-verify, ldns-verify-zone and kzonecheck.
//!
//! The cache model: zone version j (signed at s_j) may be served from s_j
//! until s_{j+1} + propagation delay (secondaries lag); an RRset fetched at
//! u stays cached until u + TTL, with the RRSIGs of the same version. The
//! parent's DS RRset likewise, from the moment the zone asked for it until
//! the operator's ds-seen + parent propagation. At every instant where
//! something can change, every combination (DS RRset, DNSKEY RRset, data
//! RRset) a resolver may hold must validate with a strict validator: for
//! every algorithm of the DS RRset a chain to a non-revoked key that signs
//! the DNSKEY RRset, and for every algorithm of the DNSKEY RRset a valid
//! signature over the DNSKEY RRset and over the data (RFC 4035 §2.2, the
//! reason for RFC 6781 §4.1.4's order). Signatures are checked with their
//! validity at that instant.
//!
//! `forced_*` tests move a step earlier than its safe time on purpose and
//! show that the model catches it, so the model can fail.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{ed25519_or, independent_verifiers, require_verifiers, Project};
use dnsseal::clock::Timestamp;
use dnsseal::sign::engine::append_rrset;
use dnsseal::zone::model::{Rdatas, RrSet};
use dnsseal::zone::rr::{rtype, Source};
use dnsseal::zone::{Algorithm, DigestType, Dnskey, ZoneName};

const ORIGIN: &str = "example.com.";
const ZONE: &str = "\
$ORIGIN example.com.
$TTL 3600
@       3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 600
@       3600 IN NS  ns1
ns1     3600 IN A   192.0.2.1
www     7200 IN A   192.0.2.2
mail    3600 IN MX  10 www
";
const POLICY: &str = "\
dnskey-ttl = \"1h\"
max-zone-ttl = \"2h\"
ds-ttl = \"1h\"
propagation-delay = \"5m\"
parent-propagation-delay = \"5m\"
registration-delay = \"2h\"
publish-safety = \"10m\"
retire-safety = \"10m\"
hold-down = \"3d\"
signature-validity = \"14d\"
signature-refresh = \"5d\"
signature-jitter = \"12h\"
";
const DPRP: i64 = 300;
const DPRP_PARENT: i64 = 300;
const TTL_DS: i64 = 3600;
/// How long the parent takes to act on a request.
const PARENT_DELAY: i64 = 2 * 3600;

/// An RRset and its signatures as one version of the zone serves them.
#[derive(Clone, Debug, Default)]
struct Served {
    ttl: u32,
    rdatas: Vec<Vec<u8>>,
    sigs: Vec<Vec<u8>>,
}

/// One signed version of the zone.
struct Version {
    signed: i64,
    dnskey: Served,
    /// (owner, type) → RRset: the data RRsets the model checks.
    data: Vec<((Vec<u8>, u16), Served)>,
}

/// One DS RRset of the parent and when it may be served.
#[derive(Debug)]
struct ParentSet {
    from: i64,
    until: i64,
    ds: Vec<Vec<u8>>,
}

struct History {
    versions: Vec<Version>,
    parent: Vec<ParentSet>,
    /// Steps as done: (name, time, forced).
    steps: Vec<(String, i64, bool)>,
}

/// The real clock, rounded down to the hour: signatures made for simulated
/// times also verify for the independent verifiers, which use the real one.
fn epoch() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    now - now % 3600
}

fn stamp(t: i64) -> String {
    Timestamp::from_unix(t).compact()
}

struct Driver {
    p: Project,
    t0: i64,
    t: i64,
    kind: &'static str,
    history: History,
    origin: ZoneName,
}

impl Driver {
    /// A zone with a policy, its first keys, signed, its DS at the parent.
    fn new(kind: &'static str, extra_policy: &str) -> Driver {
        require_verifiers();
        let p = Project::new();
        std::fs::write(p.file("db"), ZONE).unwrap();
        std::fs::write(p.file("policy.toml"), format!("{POLICY}{extra_policy}")).unwrap();
        let t0 = epoch();
        let mut d = Driver {
            p,
            t0,
            t: t0,
            kind,
            history: History {
                versions: Vec::new(),
                parent: Vec::new(),
                steps: Vec::new(),
            },
            origin: ORIGIN.parse().unwrap(),
        };
        d.dnsseal(&["policy", "set", ORIGIN, "policy.toml"]).ok();
        d.dnsseal(&["policy", "run", ORIGIN]).ok();
        d.sign(true);
        // The parent holds the first DS from the start.
        let first = d.wanted_ds();
        assert!(!first.is_empty(), "no DS after the first keys");
        d.history.parent.push(ParentSet {
            from: i64::MIN / 4,
            until: i64::MAX / 4,
            ds: first,
        });
        d.dnsseal(&["rollover", "ds-seen", ORIGIN]).ok();
        d.sign(true);
        // A day of quiet before the rollover.
        d.advance_to(t0 + 86_400);
        d
    }

    fn dnsseal(&self, args: &[&str]) -> common::Run {
        let now = stamp(self.t);
        let mut all = vec!["--now", now.as_str()];
        all.extend_from_slice(args);
        self.p.run(&all)
    }

    /// Signs at the current simulated time and records the version; a
    /// step's version also goes through the three verifiers.
    fn sign(&mut self, verify: bool) {
        let start = stamp(self.t0 - 7200);
        let end = stamp(self.t + 14 * 86_400);
        self.dnsseal(&[
            "sign",
            "db",
            "-o",
            ORIGIN,
            "-f",
            "db.signed",
            "-s",
            &start,
            "-e",
            &end,
        ])
        .ok();
        let file = self.p.file("db.signed");
        if verify {
            independent_verifiers(&file, ORIGIN);
            let own = self.p.run(&["verify", "db.signed", "-o", ORIGIN]);
            assert_eq!(own.code, 0, "dnsseal verify: {}", own.stderr);
        }
        let v = read_version(&file, &self.origin, self.t);
        self.history.versions.push(v);
    }

    /// Moves the clock, signing once a day on the way (signature refresh).
    fn advance_to(&mut self, t: i64) {
        while self.t + 86_400 < t {
            self.t += 86_400;
            self.sign(false);
        }
        self.t = self.t.max(t);
    }

    /// DS RDATA the keystore says the parent should hold.
    fn wanted_ds(&self) -> Vec<Vec<u8>> {
        let out = self.dnsseal(&["--json", "keys", "ds", ORIGIN]);
        if out.code != 0 {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("keys ds JSON");
        let mut ds = Vec::new();
        for k in v.as_array().expect("array") {
            let dnskey = Dnskey::from_presentation(k["dnskey"].as_str().expect("dnskey field"))
                .expect("DNSKEY presentation");
            ds.push(dnskey.ds(&self.origin, DigestType::Sha256).rdata());
        }
        ds.sort();
        ds
    }

    /// The next step and its earliest time, from `rollover plan --json`.
    fn next_step(&self) -> Option<(String, i64)> {
        let out = self.dnsseal(&["--json", "rollover", "plan", ORIGIN]).ok();
        let v: serde_json::Value = serde_json::from_str(&out).expect("plan JSON");
        let steps = v["steps"].as_array()?;
        let next = steps.iter().find(|s| s["done"] == false)?;
        let at = Timestamp::parse(next["at"].as_str().expect("at"))
            .expect("time")
            .unix();
        Some((next["step"].as_str().expect("step").to_string(), at))
    }

    /// Runs a rollover to its end. `early` names a step to force this many
    /// seconds after the step before it instead of waiting.
    fn run(&mut self, start: &[&str], early: Option<(&str, i64)>) -> &History {
        let mut args = vec!["rollover", self.kind, ORIGIN, "start"];
        args.extend_from_slice(start);
        self.dnsseal(&args).ok();
        self.history.steps.push(("start".into(), self.t, false));
        // Where the parent's next DS RRset comes from: the latest request.
        let mut requested = self.t;
        let mut wanted = self.wanted_ds();
        self.sign(true);
        while let Some((step, earliest)) = self.next_step() {
            let previous = self.history.steps.last().map_or(self.t, |s| s.1);
            if step == "ds-seen" {
                self.advance_to(requested.max(self.t) + PARENT_DELAY);
                let before = self.history.parent.len() - 1;
                self.history.parent[before].until = self.t + DPRP_PARENT;
                self.history.parent.push(ParentSet {
                    from: requested,
                    until: i64::MAX / 4,
                    ds: wanted.clone(),
                });
                self.dnsseal(&["rollover", "ds-seen", ORIGIN]).ok();
                self.history.steps.push((step, self.t, false));
                self.sign(true);
                continue;
            }
            let forced = early.filter(|(name, _)| *name == step);
            let at = match forced {
                Some((_, after)) => previous + after,
                None => earliest.max(self.t),
            };
            if forced.is_none() && at - 60 >= self.t {
                // One minute early is refused, with the earliest time named.
                self.advance_to(at - 60);
                let refused = self.dnsseal(&["rollover", self.kind, ORIGIN, &step]);
                let msg = refused.fails(10);
                assert!(
                    msg.contains("too early") && msg.contains(&Timestamp::from_unix(at).rfc3339()),
                    "refusal does not name the earliest time {}: {msg}",
                    Timestamp::from_unix(at)
                );
            }
            self.advance_to(at);
            let mut args = vec!["rollover", self.kind, ORIGIN, step.as_str()];
            if forced.is_some() {
                args.push("--force");
            }
            self.dnsseal(&args).ok();
            let last = step == "finish" && self.kind == "insecure";
            self.history.steps.push((step, self.t, forced.is_some()));
            if last {
                // From now on the zone is served unsigned.
                let v = read_version(&self.p.file("db"), &self.origin, self.t);
                self.history.versions.push(v);
                self.t += 3 * 86_400;
                let v = read_version(&self.p.file("db"), &self.origin, self.t);
                self.history.versions.push(v);
                return &self.history;
            }
            let now_wanted = self.wanted_ds();
            if now_wanted != wanted {
                wanted = now_wanted;
                requested = self.t;
            }
            self.sign(true);
        }
        // Let every cache run dry.
        self.advance_to(self.t + 3 * 86_400);
        self.sign(false);
        &self.history
    }
}

fn read_version(file: &Path, origin: &ZoneName, signed: i64) -> Version {
    let parsed = dnsseal::zone::parse::parse_file(file, origin).expect("signed zone parses");
    let mut sets: HashMap<(Vec<u8>, u16), Served> = HashMap::new();
    for r in &parsed.records {
        if r.rtype == rtype::RRSIG {
            let covered = u16::from_be_bytes([r.rdata[0], r.rdata[1]]);
            sets.entry((r.owner.clone(), covered))
                .or_default()
                .sigs
                .push(r.rdata.clone());
        } else {
            let s = sets.entry((r.owner.clone(), r.rtype)).or_default();
            s.ttl = r.ttl;
            s.rdatas.push(r.rdata.clone());
        }
    }
    for s in sets.values_mut() {
        s.rdatas.sort();
        s.rdatas.dedup();
    }
    let apex = origin.wire().to_vec();
    let www = {
        let mut w = vec![3, b'w', b'w', b'w'];
        w.extend_from_slice(&apex);
        w
    };
    // An unsigned zone (after an insecure rollover) has none.
    let dnskey = sets
        .get(&(apex.clone(), rtype::DNSKEY))
        .cloned()
        .unwrap_or_default();
    let data = [
        (apex.clone(), rtype::SOA),
        (www, 1),
        (apex.clone(), rtype::NS),
    ]
    .into_iter()
    .map(|k| {
        let s = sets.get(&k).cloned().expect("data RRset");
        (k, s)
    })
    .collect();
    Version {
        signed,
        dnskey,
        data,
    }
}

/// When a version may be in some cache at `t` for an RRset of this TTL.
fn may_hold(from: i64, until: i64, ttl: i64, t: i64) -> bool {
    from.max(t - ttl) <= until.min(t)
}

struct Key {
    dnskey: Dnskey,
    tag: u16,
    revoked: bool,
}

fn keys_of(set: &Served) -> Vec<Key> {
    set.rdatas
        .iter()
        .map(|rd| {
            let k = Dnskey {
                flags: u16::from_be_bytes([rd[0], rd[1]]),
                protocol: rd[2],
                algorithm: rd[3],
                public_key: rd[4..].to_vec(),
            };
            Key {
                tag: k.key_tag(),
                revoked: k.flags & 0x0080 != 0,
                dnskey: k,
            }
        })
        .collect()
}

/// A signature check: (signature, public key, signed data).
type Checked = (Vec<u8>, Vec<u8>, Vec<u8>);

thread_local! {
    /// Signature checks already done, and their results.
    static VERIFIED: std::cell::RefCell<HashMap<Checked, bool>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Whether `sig` (RRSIG RDATA) over the RRset is valid at `t` with `key`.
fn sig_ok(sig: &[u8], owner: &[u8], rtype: u16, set: &Served, key: &Key, t: i64) -> bool {
    let be32 = |i: usize| u32::from_be_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
    let (orig_ttl, expiration, inception) = (be32(4), be32(8), be32(12));
    if i64::from(inception) > t || i64::from(expiration) < t {
        return false;
    }
    if sig[2] != key.dnskey.algorithm || u16::from_be_bytes([sig[16], sig[17]]) != key.tag {
        return false;
    }
    let signer_len = {
        let mut i = 18;
        while sig[i] != 0 {
            i += usize::from(sig[i]) + 1;
        }
        i + 1 - 18
    };
    let end = 18 + signer_len;
    let mut msg = sig[..end].to_vec();
    let rrset = RrSet {
        rtype,
        ttl: orig_ttl,
        rdatas: Rdatas::from_sorted(set.rdatas.iter().map(Vec::as_slice)),
        source: Source::default(),
        rrsigs: Vec::new(),
    };
    append_rrset(&mut msg, owner, &rrset);
    let memo = (sig.to_vec(), key.dnskey.public_key.clone(), msg.clone());
    if let Some(v) = VERIFIED.with(|m| m.borrow().get(&memo).copied()) {
        return v;
    }
    let alg = Algorithm::from_number(sig[2]).expect("known algorithm");
    let v = dnsseal::sign::verify(alg, &key.dnskey.public_key, &msg, &sig[end..]);
    VERIFIED.with(|m| m.borrow_mut().insert(memo, v));
    v
}

/// For every algorithm of the keys: a valid signature by one of them.
fn signed_by_every_algorithm(
    owner: &[u8],
    rtype: u16,
    set: &Served,
    keys: &[&Key],
    t: i64,
) -> Result<(), String> {
    let mut algs: Vec<u8> = keys.iter().map(|k| k.dnskey.algorithm).collect();
    algs.sort_unstable();
    algs.dedup();
    for alg in algs {
        let ok = set.sigs.iter().any(|s| {
            keys.iter()
                .filter(|k| k.dnskey.algorithm == alg)
                .any(|k| sig_ok(s, owner, rtype, set, k, t))
        });
        if !ok {
            return Err(format!(
                "no valid algorithm {alg} signature over type {rtype}"
            ));
        }
    }
    Ok(())
}

/// Validates one combination a resolver may hold at `t`.
fn validate(
    origin: &ZoneName,
    ds: &[Vec<u8>],
    dnskey: &Served,
    data: &((Vec<u8>, u16), Served),
    t: i64,
) -> Result<(), String> {
    if ds.is_empty() {
        return Ok(()); // insecure delegation: nothing to validate
    }
    let apex = origin.wire().to_vec();
    let keys = keys_of(dnskey);
    let usable: Vec<&Key> = keys.iter().filter(|k| !k.revoked).collect();
    // The chain: every DS algorithm leads to a key that signs the DNSKEY RRset.
    let mut ds_algs: Vec<u8> = ds.iter().map(|d| d[2]).collect();
    ds_algs.sort_unstable();
    ds_algs.dedup();
    for alg in ds_algs {
        let ok = ds.iter().filter(|d| d[2] == alg).any(|d| {
            usable.iter().any(|k| {
                k.dnskey.ds(origin, DigestType::Sha256).rdata() == *d
                    && dnskey
                        .sigs
                        .iter()
                        .any(|s| sig_ok(s, &apex, rtype::DNSKEY, dnskey, k, t))
            })
        });
        if !ok {
            return Err(format!(
                "no chain from the algorithm {alg} DS to a key that signs the DNSKEY RRset"
            ));
        }
    }
    // RFC 4035 §2.2 as a strict validator checks it.
    let all: Vec<&Key> = keys.iter().collect();
    signed_by_every_algorithm(&apex, rtype::DNSKEY, dnskey, &usable, t)?;
    let ((owner, rt), set) = data;
    signed_by_every_algorithm(
        owner,
        *rt,
        set,
        &all.into_iter().filter(|k| !k.revoked).collect::<Vec<_>>(),
        t,
    )
}

/// Every instant where what a cache may hold changes, and every
/// combination it may hold then: the failures found.
fn check(h: &History, origin: &ZoneName) -> Vec<String> {
    let n = h.versions.len();
    let until = |j: usize| {
        if j + 1 < n {
            h.versions[j + 1].signed + DPRP
        } else {
            i64::MAX / 4
        }
    };
    let mut ttls: Vec<i64> = vec![TTL_DS];
    for v in &h.versions {
        ttls.push(i64::from(v.dnskey.ttl));
        ttls.extend(v.data.iter().map(|(_, s)| i64::from(s.ttl)));
    }
    ttls.sort_unstable();
    ttls.dedup();
    let mut events: Vec<i64> = Vec::new();
    for j in 0..n {
        events.push(h.versions[j].signed);
        events.push(until(j));
    }
    for p in &h.parent {
        events.push(p.from);
        events.push(p.until);
    }
    let start = h.versions[0].signed;
    let end = h.versions[n - 1].signed;
    let mut instants: Vec<i64> = Vec::new();
    for e in events {
        for ttl in ttls.iter().copied().chain([0]) {
            for d in [-1, 0, 1] {
                let t = e + ttl + d;
                if (start..=end).contains(&t) {
                    instants.push(t);
                }
            }
        }
    }
    instants.sort_unstable();
    instants.dedup();
    let mut failures = Vec::new();
    for &t in &instants {
        let parents: Vec<&ParentSet> = h
            .parent
            .iter()
            .filter(|p| may_hold(p.from, p.until, TTL_DS, t))
            .collect();
        let keysets: Vec<usize> = (0..n)
            .filter(|&j| h.versions[j].signed <= t)
            .filter(|&j| {
                may_hold(
                    h.versions[j].signed,
                    until(j),
                    i64::from(h.versions[j].dnskey.ttl),
                    t,
                )
            })
            .collect();
        for (d, _) in h.versions[0].data.iter().enumerate() {
            let datas: Vec<usize> = (0..n)
                .filter(|&j| h.versions[j].signed <= t)
                .filter(|&j| {
                    may_hold(
                        h.versions[j].signed,
                        until(j),
                        i64::from(h.versions[j].data[d].1.ttl),
                        t,
                    )
                })
                .collect();
            for p in &parents {
                for &k in &keysets {
                    for &j in &datas {
                        if let Err(e) = validate(
                            origin,
                            &p.ds,
                            &h.versions[k].dnskey,
                            &h.versions[j].data[d],
                            t,
                        ) {
                            failures.push(format!(
                                "at {}: DS set from {}, DNSKEY of the zone signed {}, {} of the zone signed {}: {e}",
                                Timestamp::from_unix(t),
                                Timestamp::from_unix(p.from.max(0)),
                                Timestamp::from_unix(h.versions[k].signed),
                                h.versions[j].data[d].0 .1,
                                Timestamp::from_unix(h.versions[j].signed),
                            ));
                        }
                    }
                }
            }
        }
    }
    failures
}

fn steps_text(h: &History) -> String {
    h.steps
        .iter()
        .map(|(s, t, f)| {
            format!(
                "{s}@{}{}",
                Timestamp::from_unix(*t),
                if *f { "(forced)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a rollover at its safe times; the model must find nothing.
fn safe(kind: &'static str, start: &[&str], policy: &str, expect_steps: &[&str]) {
    let mut d = Driver::new(kind, policy);
    let origin = d.origin.clone();
    let h = d.run(start, None);
    let names: Vec<&str> = h.steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, expect_steps, "steps taken");
    let failures = check(h, &origin);
    assert!(
        failures.is_empty(),
        "{kind} {start:?}: {} combinations a resolver may hold do not validate (steps {}), e.g.:\n{}",
        failures.len(),
        steps_text(h),
        failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    println!(
        "{kind} {start:?}: {} zone versions, steps {} — every cache combination validates",
        h.versions.len(),
        steps_text(h)
    );
}

/// Runs a rollover with one step forced early; the model must object.
fn unsafe_early(kind: &'static str, start: &[&str], step: &str, after: i64) {
    let mut d = Driver::new(kind, "");
    let origin = d.origin.clone();
    let h = d.run(start, Some((step, after)));
    let failures = check(h, &origin);
    assert!(
        !failures.is_empty(),
        "{kind}: step '{step}' forced {after}s after the step before it, yet the cache model found no failure (steps {})",
        steps_text(h)
    );
    println!(
        "{kind}: '{step}' forced early: {} failing combinations, e.g. {}",
        failures.len(),
        failures[0]
    );
    // The forced step is in the audit log as such.
    let log = std::fs::read_to_string(d.p.file("audit.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("FORCED before its safe time") && l.contains(&format!("'{step}'"))),
        "no FORCED audit record for '{step}'"
    );
}

#[test]
fn zsk_pre_publication() {
    safe("zsk", &[], "", &["start", "activate", "finish"]);
}

#[test]
fn zsk_double_signature() {
    safe(
        "zsk",
        &["--method", "double-signature"],
        "",
        &["start", "finish"],
    );
}

#[test]
fn ksk_double_ksk() {
    safe("ksk", &[], "", &["start", "submit", "ds-seen", "finish"]);
}

#[test]
fn ksk_double_ds() {
    safe(
        "ksk",
        &["--method", "double-ds"],
        "",
        &["start", "ds-seen", "swap", "withdraw", "ds-seen"],
    );
}

#[test]
fn ksk_double_rrset() {
    safe(
        "ksk",
        &["--method", "double-rrset"],
        "",
        &["start", "ds-seen", "finish", "ds-seen"],
    );
}

#[test]
fn ksk_rfc5011_revocation() {
    safe(
        "ksk",
        &["--method", "rfc5011"],
        "",
        &["start", "submit", "ds-seen", "revoke", "finish"],
    );
}

#[test]
fn csk_rollover() {
    safe(
        "csk",
        &[],
        "layout = \"csk\"\n",
        &["start", "submit", "ds-seen", "finish"],
    );
}

#[test]
fn algorithm_rollover() {
    safe(
        "algorithm",
        &["--to", ed25519_or("ECDSAP384SHA384")],
        "",
        &["start", "publish", "submit", "ds-seen", "retire", "finish"],
    );
}

#[test]
fn insecure_with_cds_delete() {
    safe("insecure", &[], "", &["start", "ds-seen", "finish"]);
}

#[test]
fn emergency_zsk_with_a_standby() {
    // The standby ZSK has been published for a day: it takes over at once
    // and no cache combination fails.
    safe(
        "emergency",
        &["--role", "zsk"],
        "standby-zsks = 1\n",
        &["start", "finish"],
    );
}

#[test]
fn forced_zsk_activation_is_caught() {
    // Activating the new ZSK ten minutes after its DNSKEY was published:
    // resolvers still hold the DNSKEY RRset without it.
    unsafe_early("zsk", &[], "activate", 600);
}

#[test]
fn forced_ksk_removal_is_caught() {
    // Removing the old KSK right after the parent switched the DS:
    // resolvers still hold the old DS RRset.
    unsafe_early("ksk", &[], "finish", 60);
}

#[test]
fn forced_algorithm_publication_is_caught() {
    // New-algorithm DNSKEYs before the new signatures are in every cache.
    unsafe_early(
        "algorithm",
        &["--to", ed25519_or("ECDSAP384SHA384")],
        "publish",
        600,
    );
}

/// `dnsseal policy run` from cron for a year: once a day the policy is run
/// and the zone signed; the parent acts on each DS request within a day and
/// the operator confirms it. Every rollover the key lifetimes call for
/// happens, on its own, and no cache combination fails in the whole year.
#[test]
fn a_year_of_policy_run() {
    let mut d = Driver::new(
        "zsk",
        "zsk-lifetime = \"20d\"\nksk-lifetime = \"60d\"\nstandby-zsks = 1\n",
    );
    let origin = d.origin.clone();
    let end = d.t0 + 365 * 86_400;
    let mut wanted = d.wanted_ds();
    let mut requested = d.t;
    let mut actions: Vec<String> = Vec::new();
    while d.t < end {
        d.t += 86_400;
        let out = d.dnsseal(&["--json", "policy", "run", ORIGIN]).ok();
        let v: serde_json::Value = serde_json::from_str(&out).expect("policy run JSON");
        let action = v[0]["action"].as_str().expect("action").to_string();
        if action.contains("waits for the parent") {
            // The parent acted some time after the request; confirm it.
            assert!(d.t >= requested + PARENT_DELAY);
            let last = d.history.parent.len() - 1;
            d.history.parent[last].until = d.t + DPRP_PARENT;
            d.history.parent.push(ParentSet {
                from: requested,
                until: i64::MAX / 4,
                ds: wanted.clone(),
            });
            d.dnsseal(&["rollover", "ds-seen", ORIGIN]).ok();
            actions.push(format!("{} ds-seen", Timestamp::from_unix(d.t)));
        }
        let changed = !(action.starts_with("nothing to do") || action.contains("not due yet"))
            || action.contains("waits for the parent");
        if changed && !action.contains("waits for the parent") {
            actions.push(format!("{} {action}", Timestamp::from_unix(d.t)));
        }
        let now_wanted = d.wanted_ds();
        if now_wanted != wanted {
            wanted = now_wanted;
            requested = d.t;
        }
        // The three verifiers on every signing that follows a change.
        d.sign(changed);
    }
    let zsk = actions
        .iter()
        .filter(|a| {
            a.contains("zsk-pre-publication rollover step 'finish'")
                || a.contains("step 'finish' of the zsk-pre-publication")
        })
        .count();
    let ksk = actions
        .iter()
        .filter(|a| a.contains("step 'finish' of the ksk-double-ksk"))
        .count();
    println!("a year of policy run:\n  {}", actions.join("\n  "));
    assert!(
        zsk >= 12,
        "only {zsk} ZSK rollovers finished in a year of 20-day ZSKs"
    );
    assert!(
        ksk >= 4,
        "only {ksk} KSK rollovers finished in a year of 60-day KSKs"
    );
    let failures = check(&d.history, &origin);
    assert!(
        failures.is_empty(),
        "{} combinations fail over the year, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "{} zone versions over a year, {zsk} ZSK and {ksk} KSK rollovers: every cache combination validates",
        d.history.versions.len()
    );
}

/// What operators get wrong gets a clear refusal, and nothing changes.
#[test]
fn refusals_name_what_is_wrong() {
    let mut d = Driver::new("ksk", "");
    // A policy file with a typo: exit 3, file and field named.
    std::fs::write(d.p.file("bad.toml"), "zsk-lifetme = \"30d\"\n").unwrap();
    let e = d.dnsseal(&["policy", "set", ORIGIN, "bad.toml"]).fails(3);
    assert!(e.contains("bad.toml") && e.contains("zsk-lifetme"), "{e}");
    // No rollover yet: a step is refused.
    let e = d.dnsseal(&["rollover", "ksk", ORIGIN, "finish"]).fails(10);
    assert!(e.contains("no rollover"), "{e}");
    d.dnsseal(&["rollover", "ksk", ORIGIN, "start"]).ok();
    d.sign(false);
    // A second start, another kind, a wrong step name: refused.
    let e = d.dnsseal(&["rollover", "ksk", ORIGIN, "start"]).fails(10);
    assert!(e.contains("in progress"), "{e}");
    let e = d.dnsseal(&["rollover", "zsk", ORIGIN, "next"]).fails(10);
    assert!(e.contains("ksk-double-ksk"), "{e}");
    let e = d.dnsseal(&["rollover", "ksk", ORIGIN, "finish"]).fails(10);
    assert!(e.contains("'submit', not 'finish'"), "{e}");
    // ds-seen is not the next step yet, and `next` never confirms the parent.
    let e = d.dnsseal(&["rollover", "ds-seen", ORIGIN]).fails(10);
    assert!(e.contains("not ds-seen"), "{e}");
    d.advance_to(d.t + 2 * 3600);
    d.dnsseal(&["rollover", "ksk", ORIGIN, "submit"]).ok();
    // Not signed since the request: the parent never saw it.
    let e = d.dnsseal(&["rollover", "ds-seen", ORIGIN]).fails(10);
    assert!(e.contains("never published the request"), "{e}");
    d.sign(false);
    let e = d.dnsseal(&["rollover", "ksk", ORIGIN, "next"]).fails(10);
    assert!(e.contains("rollover ds-seen"), "{e}");
    d.dnsseal(&["rollover", "ds-seen", ORIGIN]).ok();
    // Every refusal left a failed audit record; the log still verifies.
    d.p.run(&["audit", "verify"]).ok();
    let log = std::fs::read_to_string(d.p.file("audit.log")).unwrap();
    let failed = log
        .lines()
        .filter(|l| l.contains("\"outcome\":\"failed\""))
        .count();
    assert!(failed >= 7, "{failed} failed attempts audited");
    // An emergency rollover needs the compromised key's role.
    let e = d
        .dnsseal(&["rollover", "emergency", ORIGIN, "start"])
        .fails(10);
    assert!(e.contains("in progress"), "{e}");
}

/// An emergency KSK rollover: the new key signs at once, the operator is
/// told the soonest moment the compromised key can go, and every step's
/// zone verifies.
#[test]
fn emergency_ksk_reports_when_the_compromised_key_can_go() {
    let mut d = Driver::new("emergency", "");
    let e = d
        .dnsseal(&["rollover", "emergency", ORIGIN, "start"])
        .fails(3);
    assert!(e.contains("--role"), "{e}");
    let out = d.dnsseal(&["rollover", "emergency", ORIGIN, "start", "--role", "ksk"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("can leave the zone at the soonest"),
        "{}",
        out.stderr
    );
    d.sign(true);
    let cds: Vec<String> = std::fs::read_to_string(d.p.file("db.signed"))
        .unwrap()
        .lines()
        .filter(|l| l.split('\t').nth(3) == Some("CDS"))
        .map(String::from)
        .collect();
    assert_eq!(cds.len(), 1, "CDS must name the new KSK only: {cds:?}");
    // dnsseal verify checks the CDS signature too: a changed digest fails.
    let signed = std::fs::read_to_string(d.p.file("db.signed")).unwrap();
    let digest = cds[0].split_whitespace().last().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if digest.starts_with('0') { "1" } else { "0" },
        &digest[1..]
    );
    std::fs::write(d.p.file("tampered"), signed.replace(&digest, &flipped)).unwrap();
    let e = d.p.run(&["verify", "tampered", "-o", ORIGIN]).fails(11);
    assert!(e.contains("problem"), "{e}");
    d.advance_to(d.t + PARENT_DELAY);
    d.dnsseal(&["rollover", "ds-seen", ORIGIN]).ok();
    d.sign(true);
    let (step, at) = d.next_step().expect("finish");
    assert_eq!(step, "finish");
    d.advance_to(at);
    d.dnsseal(&["rollover", "emergency", ORIGIN, "finish"]).ok();
    d.sign(true);
    assert!(d.next_step().is_none());
}

/// `policy run` from cron: one zone that fails does not stop the others,
/// and the run still exits with the failure's code.
#[test]
fn policy_run_goes_on_past_a_failing_zone() {
    let p = Project::new();
    let alg = ed25519_or("ECDSAP384SHA384");
    std::fs::write(p.file("p.toml"), format!("algorithm = \"{alg}\"\n")).unwrap();
    for z in ["a.example", "b.example"] {
        p.run(&["policy", "set", z, "p.toml"]).ok();
    }
    // A policy that no longer checks (stored by an older build, say).
    let db = rusqlite::Connection::open(p.file("keystore.sqlite")).unwrap();
    db.execute(
        "UPDATE zones SET policy = 'algorithm = \"DSA\"' WHERE zone = 'a.example.'",
        [],
    )
    .unwrap();
    drop(db);
    let run = p.run(&["policy", "run"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("a.example.: failed") && run.stderr.contains("DSA"));
    assert!(
        run.stdout.contains("b.example.: created KSK"),
        "{}",
        run.stdout
    );
    let keys = p.run(&["keys", "list", "b.example"]).ok();
    assert!(keys.contains(alg), "{keys}");
}
