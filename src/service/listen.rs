//! The signing service's doors and its life: the Unix socket (mode 0660,
//! the client known by its peer credentials) and, when configured, TLS on
//! TCP (the client known by its verified certificate); HTTP/1.1 and
//! HTTP/2 on both (hyper-util's auto builder), headers within
//! `read_timeout`. Readiness and stopping go to systemd (`sd_notify`).
//! On SIGTERM or SIGINT the doors close, running jobs have
//! `shutdown_grace` to finish, and are then stopped (nothing half
//! written: a stopped job's output is never renamed into place).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::clock::Timestamp;
use crate::service::authz::Identity;
use crate::service::server::{router, Service};

/// Connections served at once on each door; more wait in the backlog.
const MAX_CONNECTIONS: usize = 512;

/// A connection's stream, holding its connection slot.
struct Permitted<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Permitted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Permitted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Binds the Unix socket at `path`: a socket left by a stopped service is
/// replaced; one that answers is another service's, and refused.
pub fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is in use: another dnsseal serve is listening there",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the old socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// The connections' shutdown: taken when the service stops.
type Graceful = Arc<std::sync::Mutex<Option<GracefulShutdown>>>;

/// Serves one connection of a client known as `who` until it ends or
/// the service stops.
fn serve_connection<IO>(
    app: Router,
    io: IO,
    who: Identity,
    read_timeout: Duration,
    graceful: &Graceful,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(who.clone());
        req
    });
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    let watcher = match &*crate::service::locked(graceful) {
        Some(g) => g.watcher(),
        // Stopping: the connection is closed unanswered.
        None => return,
    };
    let conn = watcher.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection ended: {e}");
        }
    });
}

/// The next connection a door accepts, with its slot; `None` once the
/// service stops.
async fn next_connection<T, F>(
    slots: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
    door: &str,
    mut accept: impl FnMut() -> F,
) -> Option<(T, OwnedSemaphorePermit)>
where
    F: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        let permit = Arc::clone(slots).acquire_owned().await.ok()?;
        let accepted = tokio::select! {
            a = accept() => a,
            _ = stop.changed() => return None,
        };
        match accepted {
            Ok(a) => return Some((a, permit)),
            Err(e) => {
                tracing::warn!("accept on {door}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Accepts on the Unix socket until `stop` turns true.
async fn unix_door(
    listener: UnixListener,
    app: Router,
    svc: Arc<Service>,
    graceful: Graceful,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    while let Some(((stream, _), permit)) =
        next_connection(&slots, &mut stop, "the socket", || listener.accept()).await
    {
        let who = match stream.peer_cred() {
            Ok(c) => Identity::Unix {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            Err(e) => {
                tracing::warn!("no peer credentials on a connection: {e}");
                continue;
            }
        };
        let io = Permitted {
            io: stream,
            _permit: permit,
        };
        serve_connection(app.clone(), io, who, svc.cfg.read_timeout, &graceful);
    }
}

/// Accepts TLS connections until `stop` turns true: the handshake (TLS
/// 1.3, a client certificate from the configured CA, in date) within
/// `read_timeout`, on the connection's own task.
async fn tls_door(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    svc: Arc<Service>,
    graceful: Graceful,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    while let Some(((tcp, peer), permit)) =
        next_connection(&slots, &mut stop, "the TLS port", || listener.accept()).await
    {
        let (acceptor, app, svc2, graceful2) = (
            acceptor.clone(),
            app.clone(),
            Arc::clone(&svc),
            Arc::clone(&graceful),
        );
        tokio::spawn(async move {
            let timeout = svc2.cfg.read_timeout;
            let accept = acceptor.accept(tcp).into_fallible();
            let tls = match tokio::time::timeout(timeout, accept).await {
                Ok(Ok(tls)) => tls,
                Ok(Err((e, tcp))) => {
                    refused_handshake(&svc2, peer, &e.to_string());
                    return linger(tcp).await;
                }
                Err(_) => {
                    return refused_handshake(&svc2, peer, "no handshake within read_timeout")
                }
            };
            let who = crate::service::tls::peer_identity(tls.get_ref().1).map(|c| Identity::Cert {
                subject: c.subject,
                spki_sha256: c.spki_sha256,
            });
            let Some(who) = who else {
                return refused_handshake(&svc2, peer, "no client certificate");
            };
            let io = Permitted {
                io: tls,
                _permit: permit,
            };
            serve_connection(app, io, who, timeout, &graceful2);
        });
    }
}

/// After a refused handshake: the alert has been sent; what the client
/// still sends (TLS 1.3 clients send their request before they hear of
/// the refusal) is read and dropped for a moment, so that the client
/// reads the alert rather than a reset connection.
async fn linger(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let drain = async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// A TLS client the handshake refused (no certificate, another CA, out
/// of date, not TLS 1.3): audited, with its address.
fn refused_handshake(svc: &Service, peer: std::net::SocketAddr, why: &str) {
    tracing::info!("TLS handshake from {peer} refused: {why}");
    svc.audit(crate::audit::Event {
        command: "serve".into(),
        failed: true,
        detail: format!("refused: TLS client {peer}: {why}"),
        ..crate::audit::Event::default()
    });
}

/// Runs the service until SIGTERM or SIGINT, then stops it as the module
/// doc says.
pub async fn run(
    svc: Arc<Service>,
    unix: UnixListener,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
) -> anyhow::Result<()> {
    let app = router(Arc::clone(&svc));
    let graceful: Graceful = Arc::new(std::sync::Mutex::new(Some(GracefulShutdown::new())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut doors = tokio::task::JoinSet::new();
    doors.spawn(unix_door(
        unix,
        app.clone(),
        Arc::clone(&svc),
        Arc::clone(&graceful),
        stop_rx.clone(),
    ));
    if let Some((tcp, acceptor)) = tls {
        doors.spawn(tls_door(
            tcp,
            acceptor,
            app,
            Arc::clone(&svc),
            Arc::clone(&graceful),
            stop_rx.clone(),
        ));
    }
    let looker = tokio::spawn(look_at_token(Arc::clone(&svc), stop_rx));
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!("ready");
    let sig = wait_for_signal().await?;
    tracing::info!(
        "{sig}: no new requests; running jobs have {} s",
        svc.cfg.shutdown_grace.as_secs()
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    svc.stop();
    let _ = stop_tx.send(true);
    while doors.join_next().await.is_some() {}
    let _ = looker.await;
    let Some(graceful) = crate::service::locked(&graceful).take() else {
        return Ok(());
    };
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    if tokio::time::timeout(svc.cfg.shutdown_grace, &mut drained)
        .await
        .is_err()
    {
        tracing::warn!(
            "jobs still running at the end of shutdown_grace: stopping them (nothing is written)"
        );
        svc.cancel_all(signal_hook::consts::SIGTERM);
        let _ = tokio::time::timeout(Duration::from_secs(30), drained).await;
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// The idle look at the token, every `token_check`.
async fn look_at_token(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(svc.cfg.token_check);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let svc2 = Arc::clone(&svc);
        let _ = tokio::task::spawn_blocking(move || svc2.sup.look(Timestamp::system_now())).await;
        let up = svc.sup.state().health().state == "present";
        svc.metrics.token_up.set(i64::from(up));
    }
}
