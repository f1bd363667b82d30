//! Making a new project (`dnsseal init`): the directory's files, a token
//! entry for the configuration (a private SoftHSMv2 token made here, or an
//! HSM named by profile and label or serial), the keystore, the empty audit
//! log with its first record, and `dnsseal.toml`.
//!
//! The steps come apart so that the caller can read PINs between them: a
//! directory that is already set up is refused before anyone is asked for
//! a PIN, and nothing is created before both PINs are in. The keystore and
//! the audit log are for the operator's eyes only (mode 0600, the SoftHSMv2
//! directory 0700).

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;

use crate::audit::Event;
use crate::clock::Timestamp;
use crate::config::{Config, Profile, RawConfig, RawTokenConfig, CONFIG_VERSION};
use crate::failure::Failure;
use crate::keystore::Keystore;
use crate::token::Module;

/// The keystore's file name in a new project.
pub const KEYSTORE_FILE: &str = "keystore.sqlite";
/// The audit log's file name in a new project.
pub const AUDIT_FILE: &str = "audit.log";
/// The directory of a project's own SoftHSMv2 token.
pub const SOFTHSM_DIR: &str = "softhsm";
/// The label of a project's own SoftHSMv2 token unless one is given.
pub const DEFAULT_LABEL: &str = "dnsseal";

/// Where a new project's files go.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The project directory (absolute).
    pub dir: PathBuf,
    /// `dnsseal.toml`, as the caller named it.
    pub config: PathBuf,
    pub keystore: PathBuf,
    pub audit_log: PathBuf,
}

impl Layout {
    /// The files of a project whose configuration is `config_path`; makes
    /// the directory, and refuses (exit 10) when any of the files exists.
    pub fn new(config_path: &Path) -> anyhow::Result<Layout> {
        let dir = config_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = std::fs::canonicalize(&dir)?;
        let layout = Layout {
            keystore: dir.join(KEYSTORE_FILE),
            audit_log: dir.join(AUDIT_FILE),
            config: config_path.to_path_buf(),
            dir,
        };
        for existing in [&layout.config, &layout.keystore, &layout.audit_log] {
            // A link counts, dangling or not.
            if existing.symlink_metadata().is_ok() {
                return Err(Failure::Refused(format!(
                    "{} already exists: this directory is set up; nothing was changed",
                    existing.display()
                ))
                .into());
            }
        }
        Ok(layout)
    }

    /// The SoftHSMv2 configuration of the project's own token; refused
    /// when it exists.
    pub fn softhsm_conf(&self) -> anyhow::Result<PathBuf> {
        let conf = self.dir.join(SOFTHSM_DIR).join("softhsm2.conf");
        if conf.exists() {
            return Err(Failure::Refused(format!(
                "{} already exists: remove it or choose another --dir",
                conf.display()
            ))
            .into());
        }
        Ok(conf)
    }
}

/// The token of a new project's own SoftHSMv2 directory.
pub struct SoftHsm<'a> {
    pub label: Option<String>,
    /// The PKCS#11 module, when not the profile's.
    pub module: Option<PathBuf>,
    pub so_pin: &'a SecretString,
    pub user_pin: &'a SecretString,
}

/// Makes DIR/softhsm/{softhsm2.conf,tokens} and initialises a token there;
/// on failure the directory is removed again.
pub fn softhsm_token(layout: &Layout, req: SoftHsm<'_>) -> anyhow::Result<RawTokenConfig> {
    let conf = layout.softhsm_conf()?;
    let label = req.label.unwrap_or_else(|| DEFAULT_LABEL.to_string());
    let softhsm_dir = layout.dir.join(SOFTHSM_DIR);
    let tokens = softhsm_dir.join("tokens");
    // 0700 from creation: the token's files are the keys.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tokens)
        .with_context(|| format!("cannot create {}", tokens.display()))?;
    let text = format!(
        "# SoftHSMv2 configuration of this dnsseal directory (written by dnsseal init)\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    crate::atomic::write(&conf, text.as_bytes())?;
    let profile = Profile::load("softhsm2")?;
    let module_path = req.module.clone().unwrap_or_else(|| profile.module_path());
    let made = Module::load(&module_path, Some(&conf))
        .and_then(|m| m.init_token(&label, req.so_pin, req.user_pin));
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
        module: req.module,
        label: Some(identity.label),
        serial: None,
        softhsm_conf: Some(PathBuf::from(SOFTHSM_DIR).join("softhsm2.conf")),
        pin_file: None,
        module_conf: None,
    })
}

/// The token entry for an HSM named by its profile and its label or
/// serial; the profile must exist.
pub fn hsm_token(
    profile: Option<String>,
    module: Option<PathBuf>,
    label: Option<String>,
    serial: Option<String>,
) -> anyhow::Result<RawTokenConfig> {
    let profile = profile.ok_or_else(|| {
        Failure::BadInput(
            "say which token: --softhsm for a local SoftHSMv2 token, or --profile NAME with --token-label or --token-serial".into(),
        )
    })?;
    if label.is_none() && serial.is_none() {
        return Err(
            Failure::BadInput("--profile needs --token-label or --token-serial".into()).into(),
        );
    }
    Profile::load(&profile)?;
    Ok(RawTokenConfig {
        profile,
        module,
        label,
        serial,
        softhsm_conf: None,
        pin_file: None,
        module_conf: None,
    })
}

/// Writes the keystore, the audit log with its first record, and the
/// configuration; a configuration that cannot be written takes the
/// keystore with it. Warns when an HSM's token cannot be found now (it may
/// be attached later).
pub fn create(layout: &Layout, token: RawTokenConfig, now: Timestamp) -> anyhow::Result<Config> {
    let own_token = token.softhsm_conf.is_some();
    let raw = RawConfig {
        version: CONFIG_VERSION,
        keystore: PathBuf::from(KEYSTORE_FILE),
        audit_log: PathBuf::from(AUDIT_FILE),
        token,
        zone: Default::default(),
        service: None,
    };
    let cfg = Config::from_raw(raw.clone(), &layout.config)?;
    if !own_token {
        check_reachable(&cfg);
    }
    let mut ks = Keystore::create(&layout.keystore)?;
    if let Err(e) = crate::files::open(&layout.audit_log, crate::files::Open::CreateNew) {
        let _ = std::fs::remove_file(&layout.keystore);
        return Err(anyhow::Error::new(e).context("cannot create the audit log"));
    }
    let text = format!(
        "# dnsseal configuration (written by `dnsseal init`).\n\
         # Paths are relative to this file. Reference: docs/operator-guide.md\n{}",
        toml::to_string(&raw)?
    );
    if let Err(e) = crate::atomic::write(&layout.config, text.as_bytes()) {
        let _ = std::fs::remove_file(&layout.keystore);
        return Err(e);
    }
    let event = Event {
        command: "init".into(),
        detail: format!(
            "initialised {} with token {} (profile {})",
            layout.dir.display(),
            cfg.token.selector,
            cfg.token.profile.name
        ),
        ..Event::default()
    };
    super::append(&cfg, &mut ks, now, event)?;
    Ok(cfg)
}

/// Warns (does not fail: the HSM may be attached later) when the token
/// cannot be found now.
fn check_reachable(cfg: &Config) {
    if let Err(e) = Module::load(&cfg.token.module, cfg.token.softhsm_conf.as_deref())
        .and_then(|m| m.find_token(&cfg.token.selector).map(|_| ()))
    {
        tracing::warn!("the token is not reachable now: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_up_directory_is_refused_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("p").join("dnsseal.toml");
        let layout = Layout::new(&config).unwrap();
        assert_eq!(layout.keystore, layout.dir.join(KEYSTORE_FILE));
        std::fs::write(&layout.audit_log, b"").unwrap();
        let err = Layout::new(&config).unwrap_err();
        assert_eq!(
            crate::failure::exit_code(&err),
            crate::failure::exit::REFUSED
        );
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn an_hsm_needs_a_profile_and_a_label_or_serial() {
        let e = hsm_token(None, None, Some("x".into()), None).unwrap_err();
        assert_eq!(
            crate::failure::exit_code(&e),
            crate::failure::exit::BAD_INPUT
        );
        let e = hsm_token(Some("softhsm2".into()), None, None, None).unwrap_err();
        assert!(e.to_string().contains("--token-label"), "{e}");
        let raw = hsm_token(Some("softhsm2".into()), None, None, Some("123".into())).unwrap();
        assert_eq!(raw.serial.as_deref(), Some("123"));
    }

    #[test]
    fn a_new_project_opens_with_its_first_audit_record() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&dir.path().join("dnsseal.toml")).unwrap();
        // A profile whose token is not there: init only warns.
        let token = hsm_token(
            Some("softhsm2".into()),
            Some(dir.path().join("no-such-module.so")),
            Some("nowhere".into()),
            None,
        )
        .unwrap();
        create(&layout, token, Timestamp::from_unix(1_000)).unwrap();
        let project = super::super::Project::open(
            &layout.config,
            crate::clock::Clock::fixed(Timestamp::from_unix(2_000)),
            "test",
        )
        .unwrap();
        assert_eq!(
            project.keystore().audit_head().unwrap().map(|h| h.0),
            Some(1)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&layout.keystore)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
