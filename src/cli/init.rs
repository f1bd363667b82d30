//! `dnsseal init`: configuration, keystore, audit log, and with --softhsm a
//! private SoftHSMv2 token.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::args::InitArgs;
use super::context::{write_atomic, Context, Failure};
use super::pin;
use crate::audit::Event;
use crate::config::{Config, Profile, RawConfig, RawTokenConfig, CONFIG_VERSION};
use crate::keystore::Keystore;
use crate::token::Module;

const KEYSTORE_FILE: &str = "keystore.sqlite";
const AUDIT_FILE: &str = "audit.log";
const SOFTHSM_DIR: &str = "softhsm";
const DEFAULT_LABEL: &str = "dnsseal";

pub fn run(ctx: &Context, args: InitArgs) -> anyhow::Result<()> {
    let config_path = ctx.config_path.clone();
    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    let keystore_path = dir.join(KEYSTORE_FILE);
    let audit_path = dir.join(AUDIT_FILE);
    for existing in [&config_path, &keystore_path, &audit_path] {
        if existing.exists() {
            return Err(Failure::Refused(format!(
                "{} already exists: this directory is set up; nothing was changed",
                existing.display()
            ))
            .into());
        }
    }

    let raw = if args.softhsm {
        softhsm_token(ctx, &args, &dir)?
    } else {
        let profile = args.profile.clone().ok_or_else(|| {
            Failure::BadInput(
                "say which token: --softhsm for a local SoftHSMv2 token, or --profile NAME with --token-label or --token-serial".into(),
            )
        })?;
        if args.token_label.is_none() && args.token_serial.is_none() {
            return Err(Failure::BadInput(
                "--profile needs --token-label or --token-serial".into(),
            )
            .into());
        }
        Profile::load(&profile)?;
        RawTokenConfig {
            profile,
            module: args.module.clone(),
            label: args.token_label.clone(),
            serial: args.token_serial.clone(),
            softhsm_conf: None,
        }
    };

    let raw = RawConfig {
        version: CONFIG_VERSION,
        keystore: PathBuf::from(KEYSTORE_FILE),
        audit_log: PathBuf::from(AUDIT_FILE),
        token: raw,
    };
    let cfg = Config::from_raw(raw.clone(), &config_path)?;
    if !args.softhsm {
        check_reachable(&cfg);
    }

    let mut ks = Keystore::create(&keystore_path)?;
    // Keystore and audit log are for the operator's eyes only.
    std::fs::File::create(&audit_path)
        .with_context(|| format!("cannot create {}", audit_path.display()))?;
    restrict_file(&keystore_path);
    restrict_file(&audit_path);
    let text = format!(
        "# dnsseal configuration (written by `dnsseal init`).\n\
         # Paths are relative to this file. Reference: docs/operator-guide.md\n{}",
        toml::to_string(&raw)?
    );
    if let Err(e) = write_atomic(&config_path, text.as_bytes()) {
        let _ = std::fs::remove_file(&keystore_path);
        return Err(e);
    }
    ctx.audit(
        &cfg,
        &mut ks,
        Event {
            command: "init".into(),
            detail: format!(
                "initialised {} with token {} (profile {})",
                dir.display(),
                cfg.token.selector,
                cfg.token.profile.name
            ),
            ..Event::default()
        },
    )?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "config": config_path,
            "keystore": keystore_path,
            "audit_log": audit_path,
            "token": cfg.token.selector.to_string(),
            "module": cfg.token.module,
        }))?;
    } else if !ctx.quiet {
        outln!("dnsseal is set up in {}", dir.display());
        outln!(
            "  config     {}",
            std::fs::canonicalize(&config_path)
                .unwrap_or(config_path.clone())
                .display()
        );
        outln!("  keystore   {}", keystore_path.display());
        outln!("  audit log  {}", audit_path.display());
        outln!(
            "  token      {} via {}",
            cfg.token.selector,
            cfg.token.module.display()
        );
        outln!("next: dnsseal keys create ZONE --role both --algorithm ECDSAP256SHA256");
    }
    Ok(())
}

/// Makes DIR/softhsm/{softhsm2.conf,tokens} and initialises a token there.
fn softhsm_token(ctx: &Context, args: &InitArgs, dir: &Path) -> anyhow::Result<RawTokenConfig> {
    let label = args
        .token_label
        .clone()
        .unwrap_or_else(|| DEFAULT_LABEL.to_string());
    let softhsm_dir = dir.join(SOFTHSM_DIR);
    let tokens = softhsm_dir.join("tokens");
    let conf = softhsm_dir.join("softhsm2.conf");
    if conf.exists() {
        return Err(Failure::Refused(format!(
            "{} already exists: remove it or choose another --dir",
            conf.display()
        ))
        .into());
    }
    // Read both PINs before touching anything.
    let so_pin = pin::read(
        args.so_pin_file.as_deref(),
        pin::SO_PIN_VAR,
        "New security officer PIN: ",
    )?;
    let user_pin = ctx.user_pin()?;

    std::fs::create_dir_all(&tokens)
        .with_context(|| format!("cannot create {}", tokens.display()))?;
    restrict(&softhsm_dir);
    let text = format!(
        "# SoftHSMv2 configuration of this dnsseal directory (written by dnsseal init)\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    write_atomic(&conf, text.as_bytes())?;

    let profile = Profile::load("softhsm2")?;
    let module_path = args.module.clone().unwrap_or_else(|| profile.module_path());
    let made = Module::load(&module_path, Some(&conf))
        .and_then(|m| m.init_token(&label, &so_pin, &user_pin));
    let identity = match made {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&softhsm_dir);
            return Err(e.into());
        }
    };
    tracing::info!(label = %identity.label, serial = %identity.serial, "SoftHSMv2 token initialised");
    Ok(RawTokenConfig {
        profile: "softhsm2".into(),
        module: args.module.clone(),
        label: Some(identity.label),
        serial: None,
        softhsm_conf: Some(PathBuf::from(SOFTHSM_DIR).join("softhsm2.conf")),
    })
}

/// Warns (does not fail: the HSM may be attached later) when the token
/// cannot be found now.
fn check_reachable(cfg: &Config) {
    match Module::load(&cfg.token.module, cfg.token.softhsm_conf.as_deref())
        .and_then(|m| m.find_token(&cfg.token.selector).map(|_| ()))
    {
        Ok(()) => {}
        Err(e) => tracing::warn!("the token is not reachable now: {e}"),
    }
}

#[cfg(unix)]
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) {}

#[cfg(unix)]
fn restrict_file(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_file(_file: &Path) {}
