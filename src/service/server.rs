//! The signing service's HTTP API (axum): `POST /v1/sign/{zone}`,
//! `GET /v1/status`, `GET /v1/health` and `GET /metrics`, each behind
//! the client's identity ([`Identity`], put on every request by the
//! listener) and the `[[service.allow]]` rules.
//!
//! A signing request is refused early (403, 429, 503) or runs as a job:
//! the zone streamed into its own directory within `max_request_bytes`
//! and `read_timeout`, the zone's turn waited for (one job per zone at a
//! time), then [`crate::sign::job::sign`] on a blocking thread with a
//! token lease ([`Supervisor`]), stopped at `job_timeout`. The signed zone
//! is streamed back and kept as the zone's last version. Every request
//! that names a zone is audited with the identity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio::sync::Semaphore;

use crate::audit::Event;
use crate::failure::exit;
use crate::interrupt::Cancel;
use crate::project::Project;
use crate::service::api::{self, ErrorBody, API_VERSION};
use crate::service::authz::{allowed, Action, Identity};
use crate::service::config::ServiceConfig;
use crate::service::locked;
use crate::service::metrics::Metrics;
use crate::service::supervisor::Supervisor;

/// A refusal or failure, as the client gets it.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl Refusal {
    pub fn new(status: StatusCode, exit_code: u8, error: impl Into<String>) -> Refusal {
        Refusal {
            status,
            body: ErrorBody {
                api: API_VERSION,
                exit_code,
                error: error.into(),
                retry_after: None,
            },
        }
    }

    /// A failure with the exit code the local command would give.
    pub fn of_code(exit_code: u8, error: impl Into<String>) -> Refusal {
        Refusal::new(api::http_status(exit_code), exit_code, error)
    }

    pub fn retry_after(mut self, secs: u64) -> Refusal {
        self.body.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(&self.body)).into_response();
        if let Some(secs) = self.body.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The running service.
pub struct Service {
    pub cfg: ServiceConfig,
    pub sup: Supervisor,
    pub metrics: Metrics,
    /// The project as opened at the start (its audit log checked): every
    /// audit record of the service is appended through it, one at a time.
    project: Mutex<Project>,
    jobs: Arc<Semaphore>,
    /// Requests admitted: running or waiting for a job slot.
    admitted: Arc<Semaphore>,
    zones: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    running: Mutex<HashMap<u64, Cancel>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
}

impl Service {
    pub fn new(cfg: ServiceConfig, sup: Supervisor, project: Project) -> Service {
        let jobs = Arc::new(Semaphore::new(cfg.max_jobs));
        let admitted = Arc::new(Semaphore::new(cfg.max_jobs + cfg.max_queue));
        Service {
            cfg,
            sup,
            metrics: Metrics::new(),
            project: Mutex::new(project),
            jobs,
            admitted,
            zones: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        }
    }

    /// Appends an audit record; a failure to audit is logged (the request's
    /// own answer stands).
    pub fn audit(&self, event: Event) {
        if let Err(e) = locked(&self.project).audit(event) {
            tracing::error!("cannot write the audit record: {e:#}");
        }
    }

    /// Reads from the service's keystore connection.
    pub fn with_project<T>(&self, f: impl FnOnce(&Project) -> T) -> T {
        f(&locked(&self.project))
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Stops taking requests (SIGTERM).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Stops every running job (the end of the shutdown grace).
    pub fn cancel_all(&self, sig: i32) {
        for cancel in locked(&self.running).values() {
            cancel.cancel(sig);
        }
    }

    /// Jobs holding a slot now.
    pub fn jobs_running(&self) -> usize {
        self.cfg.max_jobs - self.jobs.available_permits()
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn zone_lock(&self, zone: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut zones = locked(&self.zones);
        zones.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(zones.entry(zone.to_string()).or_default())
    }

    /// A place among the admitted requests (running or queued), if
    /// there is one.
    pub(crate) fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.admitted).try_acquire_owned().ok()
    }

    /// A job slot, waited for in turn.
    pub(crate) async fn job_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        loop {
            // The semaphore is never closed; if it were, wait again.
            if let Ok(p) = Arc::clone(&self.jobs).acquire_owned().await {
                return p;
            }
        }
    }

    pub(crate) fn register(&self, id: u64, cancel: &Cancel) {
        locked(&self.running).insert(id, cancel.clone());
    }

    pub(crate) fn unregister(&self, id: u64) {
        locked(&self.running).remove(&id);
    }

    /// Refuses `who` unless the rules allow `action`; a refusal of a
    /// signing request is audited.
    pub fn authorise(&self, who: &Identity, action: Action<'_>) -> Result<(), Refusal> {
        if allowed(&self.cfg.allow, who, action) {
            return Ok(());
        }
        let (what, zone) = match action {
            Action::Sign(z) => (format!("sign {z}"), Some(z.to_string())),
            Action::Status => ("read status".to_string(), None),
        };
        let message = format!(
            "not authorised: {who} may not {what} (see [[service.allow]] in {})",
            self.sup.config().path.display()
        );
        self.audit(Event {
            command: "serve".into(),
            zone,
            failed: true,
            detail: format!("refused: {message}"),
            ..Event::default()
        });
        Err(Refusal::new(StatusCode::FORBIDDEN, exit::REFUSED, message))
    }
}

/// The API's routes.
pub fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route(api::SIGN_PATH, post(sign))
        .route(api::STATUS_PATH, get(status))
        .route(api::HEALTH_PATH, get(health))
        .route(api::METRICS_PATH, get(metrics))
        .fallback(|| async {
            Refusal::new(
                StatusCode::NOT_FOUND,
                exit::BAD_INPUT,
                "no such endpoint (API version 1: POST /v1/sign/ZONE, GET /v1/status, GET /v1/health, GET /metrics)",
            )
        })
        .with_state(svc)
}

async fn sign(
    State(svc): State<Arc<Service>>,
    Extension(who): Extension<Identity>,
    UrlPath(zone): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let resp = match crate::service::job::handle(&svc, &who, &zone, &headers, body).await {
        Ok(resp) => resp,
        Err(refusal) => refusal.into_response(),
    };
    svc.metrics.answered(
        "sign",
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn status(State(svc): State<Arc<Service>>, Extension(who): Extension<Identity>) -> Response {
    let started = Instant::now();
    let resp = match svc.authorise(&who, Action::Status) {
        Err(r) => r.into_response(),
        Ok(()) => {
            let svc2 = Arc::clone(&svc);
            match tokio::task::spawn_blocking(move || crate::service::status::status(&svc2)).await {
                Ok(Ok(s)) => axum::Json(s).into_response(),
                Ok(Err(e)) => Refusal::of_code(crate::failure::exit_code(&e), format!("{e:#}"))
                    .into_response(),
                Err(e) => Refusal::of_code(exit::FAILURE, e.to_string()).into_response(),
            }
        }
    };
    svc.metrics.answered(
        "status",
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn health(State(svc): State<Arc<Service>>) -> Response {
    let h = crate::service::status::health(&svc);
    let code = if h.token.state == "away" || h.stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    svc.metrics.answered("health", code.as_u16(), 0.0);
    (code, axum::Json(h)).into_response()
}

async fn metrics(State(svc): State<Arc<Service>>, Extension(who): Extension<Identity>) -> Response {
    if let Err(r) = svc.authorise(&who, Action::Status) {
        return r.into_response();
    }
    svc.metrics
        .jobs_running
        .set(i64::try_from(svc.jobs_running()).unwrap_or(i64::MAX));
    svc.metrics
        .token_up
        .set(i64::from(svc.sup.state().health().state == "present"));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        svc.metrics.render(),
    )
        .into_response()
}
