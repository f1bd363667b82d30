//! The remote client: `dnsseal sign --server SOCKET|https://HOST:PORT`
//! (and the `dnsseal-client` binary) with every argument of the local
//! `sign`. It needs no token, keystore, PKCS#11 library or PIN: it sends
//! the zone file and the options, and writes the signed zone locally and
//! atomically, after checking its SHA-256 against what the service says
//! it sent. A refusal or failure exits with the code the service gives
//! (the local command's), its message, and nothing written.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use std::io::Write;

use crate::failure::{exit, Failure};
use crate::keys::parse_zone;
use crate::service::api::{self, ErrorBody, SignResult};
use crate::sign::options;
use crate::sign::request::SignArgs;

/// Where the signing service is, and the TLS files to reach it.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Sign on a signing service (dnsseal serve) instead of a local
    /// token: its Unix socket, or https://HOST:PORT. The signed zone is
    /// written here as the local command would write it.
    #[arg(long, value_name = "SOCKET|URL")]
    pub server: Option<String>,
    /// CA certificate(s) that issued the service's certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM), for https.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM), for https.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub key: Option<PathBuf>,
}

/// A service address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    Unix(PathBuf),
    Https { host: String, port: u16 },
}

impl Server {
    /// `https://HOST[:PORT]` (port 8853 by default) or a socket path.
    pub fn parse(text: &str) -> Result<Server, Failure> {
        let Some(rest) = text.strip_prefix("https://") else {
            if text.contains("://") {
                return Err(Failure::BadInput(format!(
                    "--server {text}: use a Unix socket path or https://HOST:PORT (the service speaks no plaintext TCP)"
                )));
            }
            return Ok(Server::Unix(PathBuf::from(text)));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p.parse().map_err(|_| {
                    Failure::BadInput(format!("--server {text}: '{p}' is not a port"))
                })?;
                (h, port)
            }
            _ => (rest, 8853),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(Failure::BadInput(format!("--server {text}: no host")));
        }
        Ok(Server::Https {
            host: host.to_string(),
            port,
        })
    }
}

/// Signs `args.zonefile` on the service and writes the signed zone.
pub fn sign(args: &SignArgs, remote: &RemoteArgs) -> anyhow::Result<SignResult> {
    let server_text = remote
        .server
        .as_deref()
        .ok_or_else(|| Failure::BadInput("no --server given".into()))?;
    let server = Server::parse(server_text)?;
    let zone = parse_zone(&options::origin_text(
        args.origin.as_deref(),
        &args.zonefile,
    ))?
    .to_string();
    let output = options::output_path(args.output.as_deref(), &args.zonefile);
    let previous = match &args.incremental {
        Some(p) => Some(
            crate::files::sha256_file(p)
                .map_err(|e| Failure::BadInput(format!("--incremental {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(exchange(&server, remote, args, &zone, previous, &output))
}

async fn exchange(
    server: &Server,
    remote: &RemoteArgs,
    args: &SignArgs,
    zone: &str,
    previous: Option<String>,
    output: &Path,
) -> anyhow::Result<SignResult> {
    let req = request(args, zone, previous).await?;
    let resp = match server {
        Server::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| unreachable_service(&path.display().to_string(), &e))?;
            send(stream, req).await?
        }
        Server::Https { host, port } => {
            let stream = connect_tls(host, *port, remote).await?;
            send(stream, req).await?
        }
    };
    receive(resp, output).await
}

fn unreachable_service(at: &str, e: &std::io::Error) -> anyhow::Error {
    Failure::Remote {
        code: exit::UNAVAILABLE,
        message: format!("cannot reach the signing service at {at}: {e}"),
    }
    .into()
}

/// The request: the zone file streamed as the body.
async fn request(
    args: &SignArgs,
    zone: &str,
    previous: Option<String>,
) -> anyhow::Result<Request<http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>>> {
    let file = tokio::fs::File::open(&args.zonefile)
        .await
        .map_err(|e| Failure::BadInput(format!("{}: {e}", args.zonefile.display())))?;
    let body = StreamBody::new(tokio_util::io::ReaderStream::new(file).map(|r| r.map(Frame::data)));
    let options = serde_json::to_string(args)?;
    let header = |v: &str, what: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            Failure::BadInput(format!(
                "{what} must be printable ASCII to go to the service: {v}"
            ))
        })
    };
    let name = args
        .zonefile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zone".into());
    let path = format!("/v1/sign/{}", percent_encode(zone));
    let mut req = Request::post(path)
        .header(HOST, "dnsseal")
        .header(CONTENT_TYPE, "text/dns")
        .header(api::OPTIONS_HEADER, header(&options, "the options")?)
        .body(BodyExt::boxed(body))?;
    if let Ok(v) = HeaderValue::from_str(&name) {
        req.headers_mut().insert(api::FILE_HEADER, v);
    }
    if let Some(p) = previous {
        req.headers_mut()
            .insert(api::PREVIOUS_HEADER, header(&p, "the digest")?);
    }
    Ok(req)
}

/// A zone name in a URL path: what is not a letter, digit, `-`, `_` or
/// `.` as %XX.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn connect_tls(
    host: &str,
    port: u16,
    remote: &RemoteArgs,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let need = |v: &Option<PathBuf>, opt: &str| {
        v.clone().ok_or_else(|| {
            Failure::BadInput(format!(
                "https needs {opt} FILE (the service takes clients with certificates only)"
            ))
        })
    };
    let ca = need(&remote.ca, "--ca")?;
    let (cert, key) = (need(&remote.cert, "--cert")?, need(&remote.key, "--key")?);
    let config = crate::service::tls::client_config(&ca, Some(&cert), Some(&key))
        .map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let at = format!("{host}:{port}");
    let tcp = tokio::net::TcpStream::connect(&at)
        .await
        .map_err(|e| unreachable_service(&at, &e))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| Failure::BadInput(format!("--server: '{host}': {e}")))?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            Failure::Remote {
                code: exit::REFUSED,
                message: format!("TLS with the signing service at {at} failed: {e} (a certificate the service does not take is refused in the handshake)"),
            }
            .into()
        })
}

async fn send<IO>(
    io: IO,
    req: Request<http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = ended_tx.send(conn.await);
    });
    match sender.send_request(req).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            // The connection's own error says why (a TLS alert).
            let why = ended.await.ok().and_then(Result::err);
            Err(closed(why.as_ref().unwrap_or(&e)).into())
        }
    }
}

/// A connection that ended before the answer: a TLS alert about this
/// client's certificate (TLS 1.3 refuses it after the client's side of
/// the handshake), or the service gone.
fn closed(e: &hyper::Error) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        // An io::Error's source skips the error it wraps: look inside.
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        if let Some(tls) = inner.unwrap_or(c).downcast_ref::<rustls::Error>() {
            return Failure::Remote {
                code: exit::REFUSED,
                message: format!("the signing service refused this client's certificate in the TLS handshake: {tls}"),
            };
        }
        cause = c.source();
    }
    Failure::Remote {
        code: exit::UNAVAILABLE,
        message: format!("the signing service closed the connection: {e}"),
    }
}

/// The signed zone written atomically, or the service's error.
async fn receive(
    resp: hyper::Response<hyper::body::Incoming>,
    output: &Path,
) -> anyhow::Result<SignResult> {
    let status = resp.status();
    if status != StatusCode::OK {
        let body = resp.into_body().collect().await?.to_bytes();
        return Err(refusal(status, &body).into());
    }
    let result: SignResult = resp
        .headers()
        .get(api::RESULT_HEADER)
        .and_then(|v| serde_json::from_slice(v.as_bytes()).ok())
        .ok_or_else(|| {
            anyhow::anyhow!("the service's answer has no {} header", api::RESULT_HEADER)
        })?;
    let temp = crate::atomic::Temp::beside(output)?;
    let mut file = std::io::BufWriter::new(temp.handle()?);
    let mut hash = Sha256::new();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Remote {
            code: exit::UNAVAILABLE,
            message: format!("the signed zone did not arrive whole: {e}; nothing was written"),
        })?;
        if let Ok(data) = frame.into_data() {
            hash.update(&data);
            file.write_all(&data)
                .with_context(|| format!("cannot write {}", output.display()))?;
        }
    }
    file.flush()?;
    drop(file);
    let got = hex::encode(hash.finalize());
    if got != result.output_sha256 {
        return Err(Failure::Verify(format!(
            "the signed zone arrived with SHA-256 {got}, the service sent {}; nothing was written",
            result.output_sha256
        ))
        .into());
    }
    temp.commit(&output.display().to_string())?;
    Ok(result)
}

/// The service's refusal as this command's failure.
fn refusal(status: StatusCode, body: &[u8]) -> Failure {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => {
            let mut message = e.error;
            if let Some(secs) = e.retry_after {
                message.push_str(&format!(" (retry after {secs} s)"));
            }
            Failure::Remote {
                code: e.exit_code,
                message,
            }
        }
        Err(_) => Failure::Remote {
            code: api::exit_code_of(status),
            message: format!(
                "the signing service answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(
            Server::parse("/run/dnsseal.sock").unwrap(),
            Server::Unix("/run/dnsseal.sock".into())
        );
        assert_eq!(
            Server::parse("https://signer.example:9000/").unwrap(),
            Server::Https {
                host: "signer.example".into(),
                port: 9000
            }
        );
        assert_eq!(
            Server::parse("https://signer.example").unwrap(),
            Server::Https {
                host: "signer.example".into(),
                port: 8853
            }
        );
        assert_eq!(
            Server::parse("https://[::1]:8853").unwrap(),
            Server::Https {
                host: "::1".into(),
                port: 8853
            }
        );
        for bad in ["http://signer:80", "https://:80", "https://h:port"] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_carry_the_services_code_and_wait() {
        let body = br#"{"api":1,"exit_code":14,"error":"busy","retry_after":5}"#;
        let f = refusal(StatusCode::TOO_MANY_REQUESTS, body);
        assert_eq!(f.exit_code(), exit::UNAVAILABLE);
        assert!(f.to_string().contains("busy (retry after 5 s)"), "{f}");
        let f = refusal(StatusCode::FORBIDDEN, b"<html>proxy says no</html>");
        assert_eq!(f.exit_code(), exit::REFUSED);
        assert!(f.to_string().contains("proxy says no"), "{f}");
    }

    #[test]
    fn zone_names_in_paths() {
        assert_eq!(percent_encode("example.com."), "example.com.");
        assert_eq!(percent_encode("a/b ."), "a%2Fb%20.");
    }
}
