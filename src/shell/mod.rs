//! `dnsseal shell`: the key maintainer's login shell (or sshd
//! `ForceCommand`). Whoever logs in gets key management and nothing
//! else: no general shell, no file system paths, no environment, no PIN.
//!
//! This module is the shell's logic without the token: the strict
//! tokenizer ([`tokenize`]), the grammar that turns words into the CLI's
//! own [`Command`](crate::cli::Command) ([`grammar`]), tab completion
//! ([`complete`]), where the project is ([`project_dir`]) and who is
//! logged in from where ([`client_from_ssh_connection`]). `cli` wires it
//! to the terminal, the library and the audit log.

pub mod complete;
pub mod grammar;
pub mod tokenize;

use std::path::{Path, PathBuf};

use crate::failure::Failure;

/// The system file that names the project when `--project` is not given.
pub const SYSTEM_CONFIG: &str = "/etc/dnsseal/shell.toml";

/// `/etc/dnsseal/shell.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellToml {
    /// The project directory (holds dnsseal.toml).
    project: PathBuf,
}

/// The project directory: `--project` if the administrator gave it, else
/// the `project` of [`SYSTEM_CONFIG`]; never anything from the user or
/// the environment. The directory must be absolute.
pub fn project_dir(given: Option<&Path>, system: &Path) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => {
            let text = match std::fs::read_to_string(system) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Failure::BadInput(format!(
                        "dnsseal shell needs its project: give --project DIR (in the sshd \
                         ForceCommand or a wrapper), or set project = \"DIR\" in {}",
                        system.display()
                    ))
                    .into())
                }
                Err(e) => anyhow::bail!("cannot read {}: {e}", system.display()),
            };
            project_from_toml(&text)
                .map_err(|e| Failure::BadInput(format!("{}: {e}", system.display())))?
        }
    };
    if !dir.is_absolute() {
        return Err(Failure::BadInput(format!(
            "the shell's project directory must be an absolute path, not {}",
            dir.display()
        ))
        .into());
    }
    Ok(dir)
}

/// The `project` of a shell.toml text.
pub fn project_from_toml(text: &str) -> Result<PathBuf, String> {
    toml::from_str::<ShellToml>(text)
        .map(|t| t.project)
        .map_err(|e| e.to_string().trim().to_string())
}

/// Where the login came from, for the audit log, from the value of
/// `SSH_CONNECTION` ("client-address client-port server-address
/// server-port"): "ssh from ADDRESS port PORT", or the value escaped when
/// it is not of that form.
pub fn client_from_ssh_connection(value: &str) -> String {
    let mut f = value.split(' ');
    let addr = f.next().and_then(|a| a.parse::<std::net::IpAddr>().ok());
    let port = f.next().and_then(|p| p.parse::<u16>().ok());
    match (addr, port) {
        (Some(a), Some(p)) => format!("ssh from {a} port {p}"),
        _ => format!(
            "ssh, SSH_CONNECTION not understood: {}",
            tokenize::excerpt(value)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_comes_from_the_option_or_the_system_file() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("shell.toml");
        let given = Path::new("/srv/dnsseal");
        assert_eq!(project_dir(Some(given), &system).unwrap(), given);
        let err = project_dir(None, &system).unwrap_err().to_string();
        assert!(
            err.contains("--project DIR") && err.contains("shell.toml"),
            "{err}"
        );
        std::fs::write(&system, "project = \"/var/lib/dnsseal\"\n").unwrap();
        assert_eq!(
            project_dir(None, &system).unwrap(),
            Path::new("/var/lib/dnsseal")
        );
        std::fs::write(&system, "project = \"relative\"\n").unwrap();
        assert!(project_dir(None, &system).is_err());
        assert!(project_from_toml("project = 1").is_err());
        assert!(project_from_toml("project = \"/x\"\nextra = 1").is_err());
        assert!(project_from_toml("").is_err());
    }

    #[test]
    fn ssh_connection_is_read_for_the_audit() {
        assert_eq!(
            client_from_ssh_connection("192.0.2.7 50123 192.0.2.1 22"),
            "ssh from 192.0.2.7 port 50123"
        );
        assert_eq!(
            client_from_ssh_connection("2001:db8::7 50123 2001:db8::1 22"),
            "ssh from 2001:db8::7 port 50123"
        );
        assert!(client_from_ssh_connection("x\u{1b} y").contains("\\u{1b}"));
    }
}
