//! One signing request of the service, from its checks to the signed zone
//! streamed back: see [`crate::service::server`] for the order of things.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::audit::Event;
use crate::clock::{Clock, Timestamp};
use crate::failure::{exit, exit_code};
use crate::interrupt::Cancel;
use crate::keys::parse_zone;
use crate::project::Project;
use crate::service::api::{self, LastSigned, SignResult, API_VERSION};
use crate::service::authz::{Action, Identity};
use crate::service::server::{Refusal, Service};
use crate::service::supervisor::Lease;
use crate::service::work::{JobDir, ZoneFiles};
use crate::sign::job::{self, Signed, TokenAccess};
use crate::sign::request::SignArgs;
use crate::token::Module;

/// Seconds a client is asked to wait when every job slot is taken.
const BUSY_RETRY: u64 = 5;
/// Seconds a client is asked to wait while the service stops or the
/// token is away.
const UNAVAILABLE_RETRY: u64 = 30;

/// What a request brought: the zone's name, the options, the client's
/// file name (for messages) and the previous output's digest.
struct Request {
    zone: String,
    args: SignArgs,
    file_name: String,
    previous: Option<String>,
}

/// Answers one `POST /v1/sign/{zone}`.
pub async fn handle(
    svc: &Arc<Service>,
    who: &Identity,
    zone: &str,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<Response, Refusal> {
    let started = Instant::now();
    let (req, admitted) = match admit(svc, who, zone, headers) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            // Read what the client is still sending, so that it reads the
            // refusal rather than a reset connection.
            drain(svc, &mut body).await;
            return Err(refusal);
        }
    };
    let turn = match wait_turn(svc, &req.zone, started).await {
        Ok(turn) => turn,
        Err(refusal) => {
            drain(svc, &mut body).await;
            return Err(refusal);
        }
    };
    let id = svc.next_id();
    let dir = JobDir::create(&svc.cfg.work_dir, id).map_err(|e| {
        Refusal::of_code(
            exit::FAILURE,
            format!("cannot make the job's directory: {e}"),
        )
    })?;
    let input_sha256 = upload(svc, body, &dir.input()).await?;
    let outcome = run(svc, who, &req, (id, &dir), &input_sha256, started).await?;
    drop((turn, admitted));
    respond(outcome, dir).await
}

/// A request's turn: its zone's (one job per zone at a time, so that the
/// signing state and `--incremental` stay consistent), then a job slot;
/// both before the upload is read (a waiting client holds its data, not
/// the service's disk), within `job_timeout`.
async fn wait_turn(
    svc: &Service,
    zone: &str,
    started: Instant,
) -> Result<
    (
        tokio::sync::OwnedMutexGuard<()>,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Refusal,
> {
    svc.metrics.jobs_waiting.inc();
    let left = || svc.cfg.job_timeout.saturating_sub(started.elapsed());
    let zone_turn = tokio::time::timeout(left(), svc.zone_lock(zone).lock_owned()).await;
    let turn = match zone_turn {
        Ok(z) => tokio::time::timeout(left(), svc.job_slot())
            .await
            .map(|slot| (z, slot))
            .map_err(|_| timed_out(svc, "waiting for a job slot")),
        Err(_) => Err(timed_out(svc, "waiting for another job of the same zone")),
    };
    svc.metrics.jobs_waiting.dec();
    turn
}

/// The checks before anything is read: the zone's name, the rules, the
/// service stopping, room among the admitted requests, the headers.
fn admit(
    svc: &Service,
    who: &Identity,
    zone: &str,
    headers: &HeaderMap,
) -> Result<(Request, tokio::sync::OwnedSemaphorePermit), Refusal> {
    let zone = parse_zone(zone)
        .map_err(|e| Refusal::of_code(exit::BAD_INPUT, format!("zone '{zone}': {e}")))?
        .to_string();
    svc.authorise(who, Action::Sign(&zone))?;
    if svc.stopping() {
        return Err(unavailable("the signing service is stopping"));
    }
    let slot = svc.admit().ok_or_else(|| {
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            exit::UNAVAILABLE,
            format!(
                "the signing service is busy: all {} job slots are taken and {} requests wait",
                svc.cfg.max_jobs, svc.cfg.max_queue
            ),
        )
        .retry_after(BUSY_RETRY)
    })?;
    Ok((read_headers(zone, headers)?, slot))
}

fn unavailable(why: &str) -> Refusal {
    Refusal::new(StatusCode::SERVICE_UNAVAILABLE, exit::UNAVAILABLE, why)
        .retry_after(UNAVAILABLE_RETRY)
}

fn timed_out(svc: &Service, during: &str) -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        exit::UNAVAILABLE,
        format!(
            "the job ran past job_timeout ({} s) {during}: nothing was written",
            svc.cfg.job_timeout.as_secs()
        ),
    )
    .retry_after(UNAVAILABLE_RETRY)
}

/// The options and the client's names from the headers.
fn read_headers(zone: String, headers: &HeaderMap) -> Result<Request, Refusal> {
    let bad = |m: String| Refusal::of_code(exit::BAD_INPUT, m);
    let text = |name: &str| -> Result<Option<String>, Refusal> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| bad(format!("header {name}: not printable ASCII")))
            })
            .transpose()
    };
    let mut args: SignArgs = match text(api::OPTIONS_HEADER)? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| bad(format!("header {}: {e}", api::OPTIONS_HEADER)))?,
        None => SignArgs::default(),
    };
    if let Some(o) = &args.origin {
        let given = parse_zone(o).map_err(|e| bad(format!("origin '{o}': {e}")))?;
        if given.to_string() != zone {
            return Err(bad(format!(
                "the origin {given} in the options is not the zone {zone} of the request's path"
            )));
        }
    }
    args.origin = Some(zone.clone());
    let file_name = text(api::FILE_HEADER)?
        .filter(|n| !n.is_empty() && !n.contains('/') && n.len() <= 255)
        .unwrap_or_else(|| "zone".into());
    let previous = text(api::PREVIOUS_HEADER)?;
    if let Some(p) = &previous {
        if p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "header {}: not a SHA-256 in hex",
                api::PREVIOUS_HEADER
            )));
        }
    }
    Ok(Request {
        zone,
        args,
        file_name,
        previous: previous.map(|p| p.to_ascii_lowercase()),
    })
}

/// Streams the request body into `path` within the size limit and the
/// read timeout; the SHA-256 of what came.
async fn upload(svc: &Service, mut body: Body, path: &Path) -> Result<String, Refusal> {
    let io = |e: std::io::Error| {
        Refusal::of_code(exit::FAILURE, format!("cannot store the upload: {e}"))
    };
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let (mut size, mut hash) = (0u64, Sha256::new());
    let limit = svc.cfg.max_request_bytes;
    loop {
        let frame = tokio::time::timeout(svc.cfg.read_timeout, body.frame())
            .await
            .map_err(|_| {
                Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    exit::UNAVAILABLE,
                    format!(
                        "the client sent nothing for read_timeout ({} s) during the upload",
                        svc.cfg.read_timeout.as_secs()
                    ),
                )
            })?;
        let Some(frame) = frame else { break };
        let frame = frame
            .map_err(|e| Refusal::of_code(exit::BAD_INPUT, format!("the upload failed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > limit {
            drain(svc, &mut body).await;
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                exit::BAD_INPUT,
                format!("the zone is larger than the service takes (max_request_bytes = {limit})"),
            ));
        }
        hash.update(&data);
        file.write_all(&data).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(hex::encode(hash.finalize()))
}

/// Most of a refused upload read and dropped, so that a client still
/// sending reads the answer rather than a reset connection.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads and drops the rest of a refused upload, up to [`DRAIN_MAX`],
/// each part within `read_timeout`.
async fn drain(svc: &Service, body: &mut Body) {
    let mut drained = 0u64;
    while drained < DRAIN_MAX {
        match tokio::time::timeout(svc.cfg.read_timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                drained += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}

/// A finished job: what the client gets.
struct Done {
    result: SignResult,
    output: std::path::PathBuf,
}

/// Runs the job on a blocking thread, stopped at the job's deadline.
async fn run(
    svc: &Arc<Service>,
    who: &Identity,
    req: &Request,
    (id, dir): (u64, &JobDir),
    input_sha256: &str,
    started: Instant,
) -> Result<Done, Refusal> {
    let zone_files = ZoneFiles::new(&svc.cfg.work_dir, &req.zone);
    let mut args = req.args.clone();
    args.zonefile = dir.input();
    args.output = Some(dir.output());
    let previous = match (&req.previous, zone_files.last()) {
        (None, _) => "none",
        (Some(p), Some(last)) if *p == last.output_sha256 && zone_files.signed().exists() => {
            args.incremental = Some(zone_files.signed());
            "used"
        }
        (Some(_), _) => "mismatch",
    };
    let cancel = Cancel::new();
    svc.register(id, &cancel);
    let (svc2, cancel2) = (Arc::clone(svc), cancel.clone());
    let mut task = tokio::task::spawn_blocking(move || sign_blocking(&svc2, &args, &cancel2));
    let left = svc.cfg.job_timeout.saturating_sub(started.elapsed());
    let joined = match tokio::time::timeout(left.max(Duration::from_millis(1)), &mut task).await {
        Ok(j) => j,
        Err(_) => {
            cancel.cancel(signal_hook::consts::SIGALRM);
            task.await
        }
    };
    svc.unregister(id);
    let signed =
        joined.map_err(|e| Refusal::of_code(exit::FAILURE, format!("the job failed: {e}")))?;
    let name_in = |m: String| m.replace(&dir.input().display().to_string(), &req.file_name);
    let seconds = started.elapsed().as_secs_f64();
    match signed {
        Ok(signed) => {
            let facts = Facts {
                input_sha256,
                previous,
                seconds,
            };
            finish(svc, who, req, signed, facts).await
        }
        Err(e) => {
            let stopped = e
                .chain()
                .find_map(|c| c.downcast_ref::<crate::interrupt::Interrupted>())
                .map(|i| i.0);
            let message = name_in(format!("{e:#}"));
            svc.audit(Event {
                command: "serve sign".into(),
                zone: Some(req.zone.clone()),
                failed: true,
                detail: format!("{who}: input sha256 {input_sha256}: {message} ({seconds:.3} s)"),
                ..Event::default()
            });
            match stopped {
                Some(signal_hook::consts::SIGALRM) => return Err(timed_out(svc, "while signing")),
                Some(_) => {
                    return Err(unavailable(
                        "the signing service is stopping: the job was stopped, nothing was written",
                    ))
                }
                None => {}
            }
            let code = exit_code(&e);
            let refusal = Refusal::of_code(code, message);
            Err(match code {
                exit::MODULE | exit::TOKEN | exit::TOKEN_FAILED => {
                    refusal.retry_after(UNAVAILABLE_RETRY)
                }
                _ => refusal,
            })
        }
    }
}

/// The token for a job: the lease's module, the service's PIN.
struct LeaseAccess<'a> {
    svc: &'a Service,
    lease: std::cell::OnceCell<Lease<'a>>,
}

impl TokenAccess for LeaseAccess<'_> {
    fn module(&self) -> anyhow::Result<Arc<Module>> {
        if let Some(l) = self.lease.get() {
            return l.module();
        }
        let lease = self
            .svc
            .sup
            .lease(true, Timestamp::system_now())?
            .ok_or_else(|| anyhow::anyhow!("no token lease"))?;
        let module = lease.module();
        let _ = self.lease.set(lease);
        module
    }

    fn pin(&self) -> anyhow::Result<&secrecy::SecretString> {
        Ok(self.svc.sup.pin())
    }
}

/// The job itself, on a blocking thread.
fn sign_blocking(svc: &Service, args: &SignArgs, cancel: &Cancel) -> anyhow::Result<Signed> {
    let mut cfg = svc.sup.config().clone();
    // An upload is one file: its $INCLUDE must not name the box's files.
    cfg.zone_limits.includes = false;
    let mut project = Project::open_checked(cfg, Clock::system(), "serve sign")?;
    let access = LeaseAccess {
        svc,
        lease: std::cell::OnceCell::new(),
    };
    let now = Timestamp::system_now();
    let signed = job::sign(&mut project, args, &access, None, cancel);
    match &signed {
        Ok(s) => {
            svc.sup.saw(Ok(()), now);
            svc.metrics
                .signatures
                .inc_by(s.outcome.stats.generated as u64);
        }
        Err(e) => {
            if crate::service::supervisor::is_token_fault(e) {
                svc.metrics.token_errors.inc();
            }
            svc.sup.saw(Err(e), now)
        }
    }
    signed
}

/// What the audit record and the result say of a job besides the run.
struct Facts<'a> {
    input_sha256: &'a str,
    /// Whether the previous output was used ("used", "mismatch", "none").
    previous: &'a str,
    seconds: f64,
}

/// A signed zone: kept as the zone's last version, audited, described.
async fn finish(
    svc: &Arc<Service>,
    who: &Identity,
    req: &Request,
    signed: Signed,
    facts: Facts<'_>,
) -> Result<Done, Refusal> {
    let Facts {
        input_sha256,
        previous,
        seconds,
    } = facts;
    let zone_files = ZoneFiles::new(&svc.cfg.work_dir, &req.zone);
    let output = signed.opts.output.clone();
    let out2 = output.clone();
    let output_sha256 = tokio::task::spawn_blocking(move || crate::files::sha256_file(&out2))
        .await
        .map_err(|e| Refusal::of_code(exit::FAILURE, e.to_string()))?
        .map_err(|e| {
            Refusal::of_code(exit::FAILURE, format!("cannot read the signed zone: {e}"))
        })?;
    let earliest = signed.earliest_expiry();
    let last = LastSigned {
        at: Timestamp::system_now().rfc3339(),
        serial: signed.outcome.serial.1,
        output_sha256: output_sha256.clone(),
        earliest_expiry: Some(earliest.rfc3339()),
    };
    zone_files.keep(&output, &last).map_err(|e| {
        Refusal::of_code(exit::FAILURE, format!("cannot keep the signed zone: {e:#}"))
    })?;
    svc.metrics
        .earliest_expiry
        .get_or_create(&crate::service::metrics::ZoneLabels {
            zone: req.zone.clone(),
        })
        .set(earliest.unix());
    let stats = signed.outcome.stats;
    let tags: Vec<String> = signed.key_tags.iter().map(u16::to_string).collect();
    svc.audit(Event {
        command: "serve sign".into(),
        zone: Some(req.zone.clone()),
        detail: format!(
            "{who}: serial {} -> {}, keys {}, input sha256 {input_sha256}, output sha256 {output_sha256}, previous output {previous}, {seconds:.3} s: {}",
            signed.outcome.serial.0,
            signed.outcome.serial.1,
            tags.join(" "),
            signed.detail
        ),
        ..Event::default()
    });
    Ok(Done {
        result: SignResult {
            api: API_VERSION,
            zone: req.zone.clone(),
            serial_in: signed.outcome.serial.0,
            serial_out: signed.outcome.serial.1,
            signatures_generated: stats.generated,
            signatures_retained: stats.retained,
            signatures_dropped: stats.dropped,
            seconds,
            signing_seconds: signed.outcome.signing_seconds,
            key_tags: signed.key_tags.clone(),
            incremental_from: signed.opts.incremental.as_ref().map(|_| {
                if signed.outcome.from_state {
                    "state"
                } else {
                    "text"
                }
                .to_string()
            }),
            previous: previous.to_string(),
            input_sha256: input_sha256.to_string(),
            output_sha256,
            earliest_expiry: Some(earliest.rfc3339()),
        },
        output,
    })
}

/// The signed zone as the response body; the job's directory goes when
/// the body has been sent (or the client has gone).
async fn respond(done: Done, dir: JobDir) -> Result<Response, Refusal> {
    let file = tokio::fs::File::open(&done.output).await.map_err(|e| {
        Refusal::of_code(exit::FAILURE, format!("cannot read the signed zone: {e}"))
    })?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        let _keep = &dir;
        chunk
    });
    let result = serde_json::to_string(&done.result)
        .map_err(|e| Refusal::of_code(exit::FAILURE, e.to_string()))?;
    let mut resp = Response::new(Body::from_stream(stream));
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/dns"),
    );
    if let Ok(v) = HeaderValue::from_str(&result) {
        headers.insert(api::RESULT_HEADER, v);
    }
    Ok(resp)
}
