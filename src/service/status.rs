//! What `GET /v1/status` and `GET /v1/health` say: the token as the
//! supervisor last saw it, the jobs, and for each zone of the keystore
//! its keys, its rollover's next step and the service's last signing of
//! it (serial, earliest signature expiry).

use crate::clock::Timestamp;
use crate::keys::{parse_zone, rollover::load_view};
use crate::policy::rollover;
use crate::service::api::{Health, KeyStatus, Status, ZoneStatus, API_VERSION};
use crate::service::server::Service;
use crate::service::work::ZoneFiles;

/// The earliest expiry of the zones' last signed versions.
fn earliest(svc: &Service, zones: &[String]) -> Option<Timestamp> {
    zones
        .iter()
        .filter_map(|z| ZoneFiles::new(&svc.cfg.work_dir, z).last()?.earliest_expiry)
        .filter_map(|t| Timestamp::parse(&t).ok())
        .min()
}

/// The zones the keystore has keys or a policy for.
fn zones(svc: &Service) -> anyhow::Result<Vec<String>> {
    svc.with_project(|p| {
        let ks = p.keystore();
        let mut zones: Vec<String> = ks.keys(None)?.iter().map(|k| k.zone.to_string()).collect();
        zones.extend(ks.policy_zones()?);
        zones.sort();
        zones.dedup();
        Ok(zones)
    })
}

/// `GET /v1/health`: never touches the token or the keystore's locks.
pub fn health(svc: &Service) -> Health {
    let now = Timestamp::system_now();
    let zones = zones(svc).unwrap_or_default();
    let earliest = earliest(svc, &zones);
    Health {
        api: API_VERSION,
        token: svc.sup.state().health(),
        jobs_running: svc.jobs_running(),
        stopping: svc.stopping(),
        earliest_expiry: earliest.map(|t| t.rfc3339()),
        seconds_left: earliest.map(|t| t.unix() - now.unix()),
    }
}

/// `GET /v1/status`.
pub fn status(svc: &Service) -> anyhow::Result<Status> {
    let now = Timestamp::system_now();
    let mut out = Vec::new();
    for zone in zones(svc)? {
        out.push(zone_status(svc, &zone, now)?);
    }
    Ok(Status {
        api: API_VERSION,
        token: svc.sup.state().health(),
        jobs_running: svc.jobs_running(),
        zones: out,
    })
}

fn zone_status(svc: &Service, zone: &str, now: Timestamp) -> anyhow::Result<ZoneStatus> {
    let name = parse_zone(zone)?;
    let view = svc.with_project(|p| load_view(p.keystore(), &name))?;
    let keys = view
        .keys
        .iter()
        .map(|k| KeyStatus {
            tag: k.key_tag,
            role: k.role.to_string(),
            algorithm: k.algorithm.to_string(),
            state: k.state.to_string(),
        })
        .collect();
    let (rollover, next_step) = match &view.current {
        Some((rec, method)) => {
            let steps = rollover::plan(*method, rec, &view.signings, &view.timing(), now);
            let next = steps
                .iter()
                .find(|s| !s.done)
                .map(|s| format!("{} {}", s.step, s.when(now)));
            (
                Some(format!("{method} rollover started {}", rec.started)),
                next,
            )
        }
        None => (None, None),
    };
    Ok(ZoneStatus {
        zone: zone.to_string(),
        keys,
        rollover,
        next_step,
        last_signed: ZoneFiles::new(&svc.cfg.work_dir, zone).last(),
    })
}
