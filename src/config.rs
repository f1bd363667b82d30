//! `dnsseal.toml` and the HSM profiles.
//!
//! Both are versioned TOML with unknown keys rejected, read into validated
//! types. Relative paths in `dnsseal.toml` are relative to the directory that
//! holds it, so a project directory can be moved as a whole.
//!
//! The profiles under `hsm-profiles/` are compiled into the binary; a profile
//! may also be given as a path to a TOML file of the same shape.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::ReadLimits;

/// The name of the configuration file `dnsseal init` writes.
pub const CONFIG_FILE: &str = "dnsseal.toml";
/// The only configuration format version this build reads.
pub const CONFIG_VERSION: u32 = 1;
/// Default CKA_ID length in bytes: 128 random bits make clashes negligible.
pub const DEFAULT_CKA_ID_LEN: usize = 16;

/// Profiles shipped with dnsseal, by name.
const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("softhsm2", include_str!("../hsm-profiles/softhsm2.toml")),
    ("yubihsm2", include_str!("../hsm-profiles/yubihsm2.toml")),
    (
        "opensc-sc-hsm",
        include_str!("../hsm-profiles/opensc-sc-hsm.toml"),
    ),
    ("luna", include_str!("../hsm-profiles/luna.toml")),
    ("kryoptic", include_str!("../hsm-profiles/kryoptic.toml")),
];

/// What went wrong with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no {CONFIG_FILE} at {path}: run `dnsseal init` first, or pass --config")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("unknown HSM profile '{0}': use one of {names}, or a path to a profile TOML", names = builtin_profile_names().join(", "))]
    UnknownProfile(String),
}

/// `dnsseal.toml` as written on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub version: u32,
    /// The SQLite keystore.
    pub keystore: PathBuf,
    /// The hash-chained audit log (JSON lines).
    pub audit_log: PathBuf,
    pub token: RawTokenConfig,
    /// Bounds on reading zone files (defaults when absent).
    #[serde(default, skip_serializing_if = "RawZoneConfig::is_empty")]
    pub zone: RawZoneConfig,
    /// The signing service (`dnsseal serve`), checked when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::service::config::RawServiceConfig>,
}

/// The `[zone]` table: how much one reading of a zone may take in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZoneConfig {
    /// Largest zone file or `$INCLUDE`d file, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    /// Largest total of a zone file and all its includes (each counted
    /// every time it is included), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_bytes: Option<u64>,
}

impl RawZoneConfig {
    fn is_empty(&self) -> bool {
        self.max_file_bytes.is_none() && self.max_total_bytes.is_none()
    }
}

/// The `[token]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenConfig {
    /// A built-in profile name or a path to a profile TOML.
    pub profile: String,
    /// Overrides the profile's module paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// Token label to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Token serial number to use (wins over the label when both are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// SoftHSMv2 configuration to load the module with (sets SOFTHSM2_CONF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softhsm_conf: Option<PathBuf>,
    /// The user PIN file (same checks as --pin-file): the only PIN source
    /// of `dnsseal shell`; the CLI reads it when --pin-file is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// The module's own configuration file, handed to it in the variable
    /// the profile names (`conf_variable`, Kryoptic: KRYOPTIC_CONF), so
    /// that the shell, the service and timers need no environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_conf: Option<PathBuf>,
}

/// A validated configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub keystore: PathBuf,
    pub audit_log: PathBuf,
    pub token: TokenConfig,
    /// Bounds on reading a zone's files.
    pub zone_limits: ReadLimits,
    /// `[service]` as written, and the directory its relative paths are
    /// taken from ([`crate::service::config::ServiceConfig::from_raw`]).
    pub service: crate::service::config::RawServiceConfig,
    pub base: PathBuf,
}

/// How to find the token.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub profile: Profile,
    pub module: PathBuf,
    pub selector: TokenSelector,
    pub softhsm_conf: Option<PathBuf>,
    /// The user PIN file, absolute.
    pub pin_file: Option<PathBuf>,
    /// The module's configuration file, absolute (see
    /// [`TokenConfig::module_env`]).
    pub module_conf: Option<PathBuf>,
}

impl TokenConfig {
    /// The environment the module reads its configuration from: the
    /// SoftHSMv2 configuration, and `module_conf` in the profile's
    /// variable. Set while the process has one thread.
    pub fn module_env(&self) -> Vec<(&str, &Path)> {
        let mut env = Vec::new();
        if let Some(conf) = &self.softhsm_conf {
            env.push(("SOFTHSM2_CONF", conf.as_path()));
        }
        if let (Some(conf), Some(var)) = (&self.module_conf, &self.profile.conf_variable) {
            env.push((var.as_str(), conf.as_path()));
        }
        env
    }
}

/// Which token of the module's slots is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    Label(String),
    Serial(String),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "label '{l}'"),
            TokenSelector::Serial(s) => write!(f, "serial '{s}'"),
        }
    }
}

/// One HSM family: where its module lives and what it can do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub version: u32,
    pub name: String,
    pub description: String,
    /// Whether the project's tests run against this family.
    pub tested: bool,
    pub module_paths: Vec<PathBuf>,
    /// Upper bound on parallel sessions (0: whatever the token allows).
    #[serde(default)]
    pub max_sessions: u32,
    /// CKA_ID length in bytes for new keys.
    #[serde(default = "default_cka_id_len")]
    pub cka_id_len: usize,
    /// Sign with a copy of each private key made inside the token as a
    /// session object (C_CopyObject with CKA_TOKEN false), one per signing
    /// session, instead of with the token object itself. Worth it where a
    /// token does per-use work on token objects that a session object
    /// skips; the copy keeps the key's attributes (sensitive, not
    /// extractable) and goes when its session closes. A token that refuses
    /// the copy is used through the token object as before. New private
    /// keys are CKA_COPYABLE only under a profile that sets this; keys are
    /// never CKA_MODIFIABLE, so the token must allow copying such a key
    /// into a session object (SoftHSMv2 does not).
    #[serde(default)]
    pub session_key_copies: bool,
    /// The token does its cryptography on this host's CPU (a software
    /// token). `dnsseal sign` without `--threads` then sizes its sessions
    /// so that signing and the host checks share the cores well.
    #[serde(default)]
    pub software_token: bool,
    /// The environment variable the module finds its configuration
    /// through (Kryoptic: KRYOPTIC_CONF), named when the module will not
    /// load and the variable is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf_variable: Option<String>,
    /// DNSSEC algorithm mnemonics the family is documented to support.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Known quirks and gaps, for `token info` and the operator.
    #[serde(default)]
    pub notes: Vec<String>,
}

fn default_cka_id_len() -> usize {
    DEFAULT_CKA_ID_LEN
}

/// Names of the built-in profiles.
pub fn builtin_profile_names() -> Vec<&'static str> {
    BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect()
}

impl Profile {
    /// A built-in profile by name, or a profile TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ConfigError> {
        if let Some((_, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(
                text,
                Path::new(&format!("hsm-profiles/{name_or_path}.toml")),
            );
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            return Profile::parse(&text, path);
        }
        Err(ConfigError::UnknownProfile(name_or_path.to_string()))
    }

    /// Reads and checks a profile's TOML text (`path` names it in
    /// messages).
    pub fn parse(text: &str, path: &Path) -> Result<Profile, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let p: Profile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if p.version != CONFIG_VERSION {
            return Err(invalid(format!(
                "profile version {} is not supported (this build reads version {CONFIG_VERSION})",
                p.version
            )));
        }
        if p.module_paths.is_empty() {
            return Err(invalid("module_paths is empty".into()));
        }
        if !(1..=64).contains(&p.cka_id_len) {
            return Err(invalid(format!(
                "cka_id_len {} is out of range 1..=64",
                p.cka_id_len
            )));
        }
        Ok(p)
    }

    /// The first module path that exists, else the first listed.
    pub fn module_path(&self) -> PathBuf {
        self.module_path_in(&|p: &Path| p.exists())
    }

    /// [`Profile::module_path`] with `exists` saying which paths exist.
    pub fn module_path_in(&self, exists: &dyn Fn(&Path) -> bool) -> PathBuf {
        self.module_paths
            .iter()
            .find(|p| exists(p))
            .or_else(|| self.module_paths.first())
            .cloned()
            .unwrap_or_default()
    }
}

/// What reading a `dnsseal.toml` asks of the file system, answered by the
/// caller ([`Config::parse_with`]); [`Config::parse`] answers from the
/// file system itself.
pub struct Lookups<'a> {
    /// The configuration file's directory, absolute: relative paths in the
    /// file are taken from it.
    pub base: PathBuf,
    /// A profile by built-in name, or by path (absolute, or joined to
    /// `base`), as [`Profile::load`] finds it.
    pub profile: &'a dyn Fn(&str) -> Result<Profile, ConfigError>,
    /// Whether a path exists (a profile's first existing module is used).
    pub exists: &'a dyn Fn(&Path) -> bool,
}

impl Config {
    /// Reads and validates `dnsseal.toml`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing {
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Reads and validates the text of a `dnsseal.toml` at `path` (relative
    /// paths in it are taken from the file's directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::from_raw(Config::raw(text, path)?, path)
    }

    /// [`Config::parse`] without the file system: what it would look up
    /// there comes from `lookups`, so that no file is opened, read or
    /// looked at (fuzzing, tests).
    pub fn parse_with(
        text: &str,
        path: &Path,
        lookups: &Lookups<'_>,
    ) -> Result<Config, ConfigError> {
        Config::from_raw_with(Config::raw(text, path)?, path, lookups)
    }

    fn raw(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Validates a raw configuration read from `path`.
    pub fn from_raw(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let lookups = Lookups {
            base,
            profile: &Profile::load,
            exists: &|p: &Path| p.exists(),
        };
        Config::from_raw_with(raw, path, &lookups)
    }

    /// [`Config::from_raw`] with the file system's answers from `lookups`.
    pub fn from_raw_with(
        raw: RawConfig,
        path: &Path,
        lookups: &Lookups<'_>,
    ) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if raw.version != CONFIG_VERSION {
            return Err(invalid(format!(
                "version {} is not supported (this build reads version {CONFIG_VERSION})",
                raw.version
            )));
        }
        let base = &lookups.base;
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let selector = match (&raw.token.serial, &raw.token.label) {
            (Some(s), _) => TokenSelector::Serial(s.clone()),
            (None, Some(l)) => TokenSelector::Label(l.clone()),
            (None, None) => return Err(invalid("[token] needs a label or a serial".into())),
        };
        // A profile given as a relative path is relative to this file too.
        let profile = if builtin_profile_names().contains(&raw.token.profile.as_str())
            || Path::new(&raw.token.profile).is_absolute()
        {
            (lookups.profile)(&raw.token.profile)?
        } else {
            (lookups.profile)(&base.join(&raw.token.profile).to_string_lossy())?
        };
        let zone_limits = ReadLimits {
            file_bytes: raw
                .zone
                .max_file_bytes
                .unwrap_or(ReadLimits::DEFAULT.file_bytes),
            total_bytes: raw
                .zone
                .max_total_bytes
                .unwrap_or(ReadLimits::DEFAULT.total_bytes),
            includes: true,
        };
        if zone_limits.file_bytes == 0 || zone_limits.total_bytes == 0 {
            return Err(invalid(
                "[zone] max_file_bytes and max_total_bytes must be above 0".into(),
            ));
        }
        let module = raw
            .token
            .module
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| profile.module_path_in(lookups.exists));
        if raw.token.module_conf.is_some() && profile.conf_variable.is_none() {
            return Err(invalid(format!(
                "[token] module_conf: the {} profile's module takes no configuration file through a variable (SoftHSMv2: softhsm_conf)",
                profile.name
            )));
        }
        Ok(Config {
            path: path.to_path_buf(),
            keystore: abs(&raw.keystore),
            audit_log: abs(&raw.audit_log),
            token: TokenConfig {
                profile,
                module,
                selector,
                softhsm_conf: raw.token.softhsm_conf.as_deref().map(abs),
                pin_file: raw.token.pin_file.as_deref().map(abs),
                module_conf: raw.token.module_conf.as_deref().map(abs),
            },
            zone_limits,
            service: raw.service.unwrap_or_default(),
            base: base.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses() {
        for name in builtin_profile_names() {
            let p = Profile::load(name).unwrap();
            assert_eq!(p.name, name);
        }
        assert!(Profile::load("softhsm2").unwrap().tested);
        assert!(Profile::load("kryoptic").unwrap().tested);
        assert_eq!(Profile::load("yubihsm2").unwrap().cka_id_len, 2);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "version = 1\nkeystore = \"k\"\naudit_log = \"a\"\nsurprise = 1\n[token]\nprofile = \"softhsm2\"\nlabel = \"x\"\n";
        let err = toml::from_str::<RawConfig>(text).unwrap_err();
        assert!(err.to_string().contains("surprise"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let raw: RawConfig = toml::from_str(
            "version = 1\nkeystore = \"k.sqlite\"\naudit_log = \"a.log\"\n[token]\nprofile = \"softhsm2\"\nlabel = \"x\"\n",
        )
        .unwrap();
        let cfg = Config::from_raw(raw, Path::new("/tmp/dnsseal.toml")).unwrap();
        assert_eq!(cfg.keystore, Path::new("/tmp/k.sqlite"));
        assert_eq!(cfg.token.selector, TokenSelector::Label("x".into()));
    }

    /// `module_conf` goes to the module in its profile's variable, and
    /// only a profile that names one takes it.
    #[test]
    fn a_module_configuration_goes_in_the_profiles_variable() {
        let text = |profile: &str| {
            format!("version = 1\nkeystore = \"k\"\naudit_log = \"a\"\n[token]\nprofile = \"{profile}\"\nlabel = \"x\"\nmodule_conf = \"kryoptic/token.conf\"\nsofthsm_conf = \"/etc/s.conf\"\n")
        };
        let cfg = Config::parse(&text("kryoptic"), Path::new("/srv/p/dnsseal.toml")).unwrap();
        let env = cfg.token.module_env();
        assert_eq!(
            env,
            vec![
                ("SOFTHSM2_CONF", Path::new("/etc/s.conf")),
                ("KRYOPTIC_CONF", Path::new("/srv/p/kryoptic/token.conf")),
            ]
        );
        let err = Config::parse(&text("softhsm2"), Path::new("/srv/p/dnsseal.toml")).unwrap_err();
        assert!(err.to_string().contains("module_conf"), "{err}");
    }

    /// Read with the file system's answers handed in, a configuration
    /// reads as [`Config::parse`] reads it from its file; nothing is looked
    /// up but through `lookups`.
    #[test]
    fn parse_with_reads_as_parse_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let profile = "version = 1\nname = \"own\"\ndescription = \"d\"\ntested = false\nmodule_paths = [\"/nonexistent/a.so\", \"lib/b.so\"]\n";
        std::fs::write(dir.join("own.toml"), profile).unwrap();
        let text = "version = 1\nkeystore = \"k.sqlite\"\naudit_log = \"/var/a.log\"\n[token]\nprofile = \"own.toml\"\nserial = \"42\"\n[zone]\nmax_file_bytes = 7\n";
        let path = dir.join(CONFIG_FILE);
        std::fs::write(&path, text).unwrap();
        let from_file = Config::load(&path).unwrap();
        let asked = std::cell::RefCell::new(Vec::new());
        let lookups = Lookups {
            base: dir.clone(),
            profile: &|p: &str| {
                asked.borrow_mut().push(p.to_string());
                Profile::parse(profile, Path::new(p))
            },
            exists: &|_: &Path| false,
        };
        let in_memory = Config::parse_with(text, &path, &lookups).unwrap();
        assert_eq!(
            *asked.borrow(),
            [dir.join("own.toml").display().to_string()]
        );
        let fields = |c: &Config| {
            (
                c.keystore.clone(),
                c.audit_log.clone(),
                c.token.module.clone(),
                c.token.selector.clone(),
                c.token.profile.name.clone(),
                c.zone_limits,
            )
        };
        assert_eq!(fields(&in_memory), fields(&from_file));
        assert_eq!(in_memory.keystore, dir.join("k.sqlite"));
        assert_eq!(in_memory.token.module, Path::new("/nonexistent/a.so"));
        let with_b = Lookups {
            exists: &|p: &Path| p.ends_with("b.so"),
            ..lookups
        };
        let c = Config::parse_with(text, &path, &with_b).unwrap();
        assert_eq!(c.token.module, Path::new("lib/b.so"));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let raw: RawConfig = toml::from_str(
            "version = 2\nkeystore = \"k\"\naudit_log = \"a\"\n[token]\nprofile = \"softhsm2\"\nlabel = \"x\"\n",
        )
        .unwrap();
        assert!(Config::from_raw(raw, Path::new("/tmp/dnsseal.toml")).is_err());
    }
}
