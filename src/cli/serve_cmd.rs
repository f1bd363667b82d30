//! `dnsseal serve`: the project opened and its audit log checked, the
//! `[service]` table validated, the PIN read once, the token looked at
//! (a wrong PIN stops here, before requests could spend the token's
//! tries), the doors opened, and the service run ([`crate::service`])
//! until SIGTERM.

use std::sync::Arc;

use super::context::Context;
use crate::audit::Event;
use crate::clock::{Clock, Timestamp};
use crate::failure::{exit, exit_code};
use crate::pin;
use crate::project::Project;
use crate::service::config::ServiceConfig;
use crate::service::server::Service;
use crate::service::supervisor::Supervisor;
use crate::service::{listen, work};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Check the configuration, the token and the PIN, print what the
    /// service would listen on, and exit.
    #[arg(long)]
    pub check: bool,
}

pub fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let project = Project::open(&ctx.config_path, Clock::system(), "serve")?;
    let cfg = project.config().clone();
    let scfg = ServiceConfig::from_raw(
        &cfg.service,
        &cfg.base,
        &cfg.path,
        cfg.zone_limits.total_bytes,
    )?;
    let file = ctx.pin_file.as_deref().or(cfg.token.pin_file.as_deref());
    let sup = Supervisor::new(cfg.clone(), pin::read(file, &pin::USER_PIN)?);
    first_look(&sup)?;
    eprintln!("{}", describe(&scfg));
    if args.check {
        return Ok(());
    }
    std::fs::create_dir_all(&scfg.work_dir)?;
    let left = work::clear_jobs(&scfg.work_dir)?;
    if left > 0 {
        tracing::warn!("removed the files of {left} job(s) a stopped service left behind");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(scfg.max_jobs * 2 + 4)
        .enable_all()
        .build()?;
    runtime.block_on(serve(scfg, sup, project))
}

/// What the service listens on, and its rules, in a line each.
fn describe(cfg: &ServiceConfig) -> String {
    let mut text = format!("socket {} (mode 0660)", cfg.socket.display());
    if let Some(tls) = &cfg.tls {
        text.push_str(&format!(
            "\nTLS {} (client certificates from {})",
            tls.listen,
            tls.client_ca.display()
        ));
    }
    text.push_str(&format!(
        "\n{} rule(s) in [[service.allow]]; max_jobs {}, job_timeout {} s, max_request_bytes {}",
        cfg.allow.len(),
        cfg.max_jobs,
        cfg.job_timeout.as_secs(),
        cfg.max_request_bytes
    ));
    if cfg.allow.is_empty() {
        text.push_str("\nwarning: no [[service.allow]] rule: every request will be refused");
    }
    text
}

/// The token at the start: a missing token is reported and waited for
/// (health says so); a PIN the token refuses stops the service.
fn first_look(sup: &Supervisor) -> anyhow::Result<()> {
    let now = Timestamp::system_now();
    let looked = sup.lease(true, now).and_then(|lease| {
        let lease = lease.ok_or_else(|| anyhow::anyhow!("no token lease"))?;
        let module = lease.module()?;
        let token = module.find_token(&sup.config().token.selector)?;
        token.login(sup.pin())?;
        Ok(())
    });
    match looked {
        Ok(()) => sup.saw(Ok(()), now),
        Err(e) if matches!(exit_code(&e), exit::PIN | exit::PIN_LOCKED) => return Err(e),
        Err(e) => {
            tracing::warn!(
                "the token is not usable now; the service starts and waits for it: {e:#}"
            );
            sup.saw(Err(&e), now);
        }
    }
    Ok(())
}

async fn serve(cfg: ServiceConfig, sup: Supervisor, project: Project) -> anyhow::Result<()> {
    let unix = listen::bind_unix(&cfg.socket)?;
    let tls = match &cfg.tls {
        Some(t) => {
            let config = crate::service::tls::server_config(&t.cert, &t.key, &t.client_ca)?;
            let tcp = tokio::net::TcpListener::bind(t.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", t.listen))?;
            Some((tcp, tokio_rustls::TlsAcceptor::from(config)))
        }
        None => None,
    };
    let started = describe(&cfg).replace('\n', "; ");
    let svc = Arc::new(Service::new(cfg, sup, project));
    svc.audit(Event {
        command: "serve".into(),
        detail: format!("started: {started}"),
        ..Event::default()
    });
    let ran = listen::run(Arc::clone(&svc), unix, tls).await;
    let _ = std::fs::remove_file(&svc.cfg.socket);
    svc.audit(Event {
        command: "serve".into(),
        detail: match &ran {
            Ok(()) => "stopped".into(),
            Err(e) => format!("stopped: {e:#}"),
        },
        failed: ran.is_err(),
        ..Event::default()
    });
    ran
}
