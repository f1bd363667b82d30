//! Shared helpers for the integration tests: each test gets a fresh project
//! directory with its own SoftHSMv2 token (through the SOFTHSM2_CONF that
//! `dnsseal init --softhsm` writes), and drives the real `dnsseal` binary.
//!
//! `DNSSEAL_TEST_TOKEN=kryoptic` puts the project on a fresh token of the
//! second PKCS#11 implementation instead, Kryoptic (scripts/setup.sh builds
//! its module): a `kryoptic/token.conf` and SQLite store in the test's
//! directory, the token initialised with the same PINs by OpenSC's
//! pkcs11-tool (C_InitToken, C_InitPIN), then `dnsseal init --profile
//! kryoptic`, and every run of dnsseal with KRYOPTIC_CONF naming it. Tests
//! of SoftHSMv2's own behaviour ask for [`Project::softhsm`], or skip with
//! [`skip_unless_softhsm`]; tests of an algorithm the token lacks skip with
//! [`skip_without`].
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

pub const PIN: &str = "1234";
pub const SO_PIN: &str = "12345678";
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Where scripts/setup.sh installs the Kryoptic module it builds.
pub const KRYOPTIC_MODULE: &str = "/usr/local/lib/kryoptic/libkryoptic_pkcs11.so";
/// The label of every test token.
pub const TOKEN_LABEL: &str = "dnsseal";

/// A zone policy with short waits, so that a rollover step is due within
/// two hours.
pub const SHORT_WAITS_POLICY: &str = r#"dnskey-ttl = "1h"
max-zone-ttl = "1d"
ds-ttl = "1h"
propagation-delay = "5m"
parent-propagation-delay = "5m"
publish-safety = "10m"
retire-safety = "10m"
"#;

/// The PKCS#11 implementation a project's token is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    SoftHsm,
    Kryoptic,
}

impl TokenKind {
    /// The one the tests run on: `DNSSEAL_TEST_TOKEN` unset, empty or
    /// `softhsm` for SoftHSMv2, `kryoptic` for Kryoptic.
    pub fn selected() -> TokenKind {
        match std::env::var("DNSSEAL_TEST_TOKEN").as_deref() {
            Err(_) | Ok("") | Ok("softhsm") | Ok("softhsm2") => TokenKind::SoftHsm,
            Ok("kryoptic") => TokenKind::Kryoptic,
            Ok(other) => panic!("DNSSEAL_TEST_TOKEN={other}: use softhsm or kryoptic"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenKind::SoftHsm => "SoftHSMv2",
            TokenKind::Kryoptic => "Kryoptic",
        }
    }

    /// The HSM profile dnsseal uses for it.
    pub fn profile(self) -> &'static str {
        match self {
            TokenKind::SoftHsm => "softhsm2",
            TokenKind::Kryoptic => "kryoptic",
        }
    }

    pub fn module(self) -> &'static str {
        match self {
            TokenKind::SoftHsm => SOFTHSM_MODULE,
            TokenKind::Kryoptic => KRYOPTIC_MODULE,
        }
    }

    /// The variable that names the module's configuration.
    pub fn conf_var(self) -> &'static str {
        match self {
            TokenKind::SoftHsm => "SOFTHSM2_CONF",
            TokenKind::Kryoptic => "KRYOPTIC_CONF",
        }
    }

    /// The DNSSEC algorithms the token can generate and sign with.
    pub fn algorithms(self) -> &'static [&'static str] {
        match self {
            TokenKind::SoftHsm => &[
                "RSASHA256",
                "RSASHA512",
                "ECDSAP256SHA256",
                "ECDSAP384SHA384",
                "ED25519",
            ],
            // Kryoptic has EdDSA only when built against OpenSSL >= 3.2.
            TokenKind::Kryoptic => &[
                "RSASHA256",
                "RSASHA512",
                "ECDSAP256SHA256",
                "ECDSAP384SHA384",
            ],
        }
    }

    pub fn has(self, algorithm: &str) -> bool {
        self.algorithms().contains(&algorithm)
    }
}

/// True (and says why on stderr) when the tests run on another token than
/// SoftHSMv2: for a test of SoftHSMv2's own behaviour.
pub fn skip_unless_softhsm(why: &str) -> bool {
    let kind = TokenKind::selected();
    if kind == TokenKind::SoftHsm {
        return false;
    }
    eprintln!("skipped on {}: {why}", kind.name());
    true
}

/// ED25519 where the test token can make such keys, else `fallback`: for
/// tests whose point is not the algorithm.
pub fn ed25519_or(fallback: &'static str) -> &'static str {
    if TokenKind::selected().has("ED25519") {
        "ED25519"
    } else {
        fallback
    }
}

/// True (and says so on stderr) when the test token cannot make keys of
/// this algorithm.
pub fn skip_without(algorithm: &str) -> bool {
    let kind = TokenKind::selected();
    if kind.has(algorithm) {
        return false;
    }
    eprintln!(
        "skipped on {}: the token cannot make {algorithm} keys",
        kind.name()
    );
    true
}

/// Fails the test with a clear reason when a required tool is missing
/// (`.ci/run` and `scripts/setup.sh` install them all).
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: apt-get install -y {package} (scripts/setup.sh does it)"
    );
}

pub fn require_softhsm() {
    assert!(
        Path::new(SOFTHSM_MODULE).exists(),
        "SoftHSMv2 is not installed ({SOFTHSM_MODULE}): apt-get install -y softhsm2 (scripts/setup.sh does it)"
    );
}

/// A dnsseal project directory with its own token.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// What the project's token is (SoftHSMv2 for [`Project::empty`]).
    pub token: TokenKind,
}

/// The outcome of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts a given exit code and returns stderr.
    #[track_caller]
    pub fn fails(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

pub fn dnsseal_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dnsseal")
}

impl Project {
    /// A new directory with `dnsseal init` done on a fresh token of the
    /// selected kind ([`TokenKind::selected`]).
    pub fn new() -> Project {
        Project::on(TokenKind::selected())
    }

    /// A new directory with `dnsseal init --softhsm` done, whatever
    /// token the other tests run on.
    pub fn softhsm() -> Project {
        Project::on(TokenKind::SoftHsm)
    }

    /// A new directory with `dnsseal init` done on a fresh token of `kind`.
    pub fn on(kind: TokenKind) -> Project {
        let mut p = Project::empty();
        p.token = kind;
        match kind {
            TokenKind::SoftHsm => {
                require_softhsm();
                p.run(&["init", "--softhsm"]).ok();
            }
            TokenKind::Kryoptic => {
                p.make_kryoptic_token();
                p.run(&[
                    "init",
                    "--profile",
                    "kryoptic",
                    "--token-label",
                    TOKEN_LABEL,
                ])
                .ok();
            }
        }
        p
    }

    /// DIR/kryoptic/token.conf with one slot whose SQLite store is beside
    /// it, and the token in it initialised with SO_PIN and PIN.
    fn make_kryoptic_token(&self) {
        assert!(
            Path::new(KRYOPTIC_MODULE).exists(),
            "the Kryoptic module is not built ({KRYOPTIC_MODULE}): run scripts/setup.sh"
        );
        require("pkcs11-tool", "opensc");
        let dir = self.file("kryoptic");
        std::fs::create_dir(&dir).expect("kryoptic directory");
        std::fs::write(
            self.token_conf(),
            format!(
                "# Kryoptic slots of this test project\n[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
                dir.join("token.sql").display()
            ),
        )
        .expect("token.conf written");
        let tool = |args: &[&str]| {
            let out = Command::new("pkcs11-tool")
                .env(TokenKind::Kryoptic.conf_var(), self.token_conf())
                .args(["--module", KRYOPTIC_MODULE])
                .args(args)
                .output()
                .expect("run pkcs11-tool");
            assert!(
                out.status.success(),
                "pkcs11-tool {args:?} on Kryoptic: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        tool(&["--init-token", "--label", TOKEN_LABEL, "--so-pin", SO_PIN]);
        tool(&[
            "--token-label",
            TOKEN_LABEL,
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO_PIN,
            "--init-pin",
            "--pin",
            PIN,
        ]);
    }

    /// A new directory with nothing in it.
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temporary directory"),
            token: TokenKind::SoftHsm,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command with a clean environment: PINs from the variables, no
    /// inherited SoftHSM, systemd credential or dnsseal settings.
    pub fn command(&self) -> Command {
        let mut c = Command::new(dnsseal_bin());
        c.current_dir(self.path())
            .env_remove("SOFTHSM2_CONF")
            .env_remove("KRYOPTIC_CONF")
            .env_remove("DNSSEAL_CONFIG")
            .env_remove("DNSSEAL_LOG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("DNSSEAL_PIN", PIN)
            .env("DNSSEAL_SO_PIN", SO_PIN);
        if self.token == TokenKind::Kryoptic {
            // Kryoptic finds its slots only through this variable.
            c.env("KRYOPTIC_CONF", self.token_conf());
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run dnsseal"))
    }

    /// Runs dnsseal with these variables set as well.
    pub fn run_env(&self, env: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Run {
        let mut c = self.command();
        c.envs(env.iter().copied());
        Run::from(c.args(args).output().expect("run dnsseal"))
    }

    /// Runs dnsseal with the process umask set to `umask` (octal) first.
    pub fn run_under_umask(&self, umask: &str, args: &[&str]) -> Run {
        let base = self.command();
        let mut c = Command::new("sh");
        c.current_dir(self.path());
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(dnsseal_bin())
            .args(args);
        Run::from(c.output().expect("run dnsseal"))
    }

    pub fn run_with_pin(&self, pin: &str, args: &[&str]) -> Run {
        Run::from(
            self.command()
                .env("DNSSEAL_PIN", pin)
                .args(args)
                .output()
                .expect("run dnsseal"),
        )
    }

    /// `keys create ZONE --role ROLE --algorithm ALG`, which must succeed;
    /// returns its output.
    pub fn create_key(&self, zone: &str, role: &str, algorithm: &str) -> String {
        self.run(&[
            "keys",
            "create",
            zone,
            "--role",
            role,
            "--algorithm",
            algorithm,
        ])
        .ok()
    }

    /// Points the configuration at a PKCS#11 module that does not exist:
    /// any use of the token then fails with exit 5.
    pub fn use_missing_module(&self) {
        let conf = std::fs::read_to_string(self.file("dnsseal.toml")).expect("dnsseal.toml");
        std::fs::write(
            self.file("dnsseal.toml"),
            conf.replace(
                &format!("profile = \"{}\"", self.token.profile()),
                &format!(
                    "profile = \"{}\"\nmodule = \"/nonexistent/libpkcs11.so\"",
                    self.token.profile()
                ),
            ),
        )
        .expect("dnsseal.toml written");
    }

    /// `keys list --json` parsed.
    pub fn keys(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["--json", "keys", "list"]).ok();
        serde_json::from_str(&out).expect("keys list --json is JSON")
    }

    pub fn softhsm_conf(&self) -> PathBuf {
        self.file("softhsm/softhsm2.conf")
    }

    /// The configuration of the project's token's module (the file its
    /// [`TokenKind::conf_var`] names).
    pub fn token_conf(&self) -> PathBuf {
        match self.token {
            TokenKind::SoftHsm => self.softhsm_conf(),
            TokenKind::Kryoptic => self.file("kryoptic/token.conf"),
        }
    }

    /// pkcs11-tool (OpenSC) against this project's token: an independent
    /// view of what the token holds.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Output {
        Command::new("pkcs11-tool")
            .env(self.token.conf_var(), self.token_conf())
            .args([
                "--module",
                self.token.module(),
                "--token-label",
                TOKEN_LABEL,
                "--login",
                "--pin",
                PIN,
            ])
            .args(args)
            .output()
            .expect("run pkcs11-tool")
    }

    /// CKA_IDs (hex) of the token's private key objects, per pkcs11-tool.
    pub fn token_private_ids(&self) -> Vec<String> {
        let out = self.pkcs11_tool(&["--list-objects", "--type", "privkey"]);
        assert!(
            out.status.success(),
            "pkcs11-tool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ID:").map(|s| s.trim().to_string()))
            .collect();
        ids.sort();
        ids
    }

    pub fn audit_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.file("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

/// A key's field from `keys list --json`.
pub fn field<'a>(k: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    k.get(name)
        .unwrap_or_else(|| panic!("key has no field {name}: {k}"))
}

pub fn require_verifiers() {
    require("dnssec-verify", "bind9-utils");
    require("ldns-verify-zone", "ldnsutils");
    require("kzonecheck", "knot-dnssecutils");
}

/// Runs the three independent verifiers (BIND's dnssec-verify,
/// ldns-verify-zone, Knot's kzonecheck); panics with their output on
/// failure.
///
/// A zone signed by CSKs alone (every DNSKEY has the SEP flag) is checked by
/// dnssec-verify with -z, which otherwise wants a key without it.
pub fn independent_verifiers(file: &Path, origin: &str) {
    let f = file.to_str().expect("UTF-8 path");
    let text = std::fs::read_to_string(file).expect("signed zone");
    let has_zsk = text.lines().any(|l| {
        l.split_whitespace().nth(3) == Some("DNSKEY") && l.split_whitespace().nth(4) == Some("256")
    });
    let sep_keys = text
        .lines()
        .filter(|l| {
            l.split_whitespace().nth(3) == Some("DNSKEY")
                && l.split_whitespace().nth(4) == Some("257")
        })
        .count();
    let mut bind = vec!["-q", "-o", origin, f];
    if !has_zsk {
        bind.insert(0, "-z");
    }
    let mut runs: Vec<(&str, Vec<&str>)> =
        vec![("dnssec-verify", bind), ("ldns-verify-zone", vec![f])];
    if !has_zsk && sep_keys > 1 {
        // kzonecheck finds "no valid signature" in any zone signed by two
        // CSKs at once, also one signed by dnssec-signzone -z with two KSK
        // flagged keys (seen with Knot 3.x here).
        eprintln!(
            "kzonecheck skipped for {f}: it cannot check a zone signed by two CSKs (CSK rollover)"
        );
    } else {
        runs.push(("kzonecheck", vec!["-o", origin, "-d", "on", f]));
    }
    for (tool, args) in runs {
        let out = Command::new(tool)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} rejects {f}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// faulty-p11 (softhsm-tests/faulty-p11), built once for this test
/// binary, with a target directory of its own (the running `cargo test`
/// holds the lock of the main one).
pub fn faulty_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/faulty-p11");
        let started = Instant::now();
        let out = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("softhsm-tests/faulty-p11/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo build for faulty-p11");
        assert!(
            out.status.success(),
            "cannot build faulty-p11:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "faulty-p11 built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let so = target.join("release/libfaulty_p11.so");
        assert!(so.exists(), "{} missing after the build", so.display());
        so
    })
}

/// Points the project's dnsseal.toml at faulty-p11.
pub fn through_faulty(p: &Project) {
    let path = p.file("dnsseal.toml");
    let conf = std::fs::read_to_string(&path).expect("dnsseal.toml");
    assert!(conf.contains("profile = \"softhsm2\""), "{conf}");
    let conf = conf.replace(
        "profile = \"softhsm2\"",
        &format!(
            "profile = \"softhsm2\"\nmodule = \"{}\"",
            faulty_module().display()
        ),
    );
    std::fs::write(&path, conf).expect("dnsseal.toml written");
}
