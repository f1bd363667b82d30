//! `dnsseal shell`, the key maintainer's shell, against a real SoftHSMv2
//! token: one-shot commands through `-c` and SSH_ORIGINAL_COMMAND print
//! what the CLI prints; everything else is refused with a clear message
//! and a non-zero status; every line is audited with the user and the SSH
//! client; the interactive shell through a pseudo-terminal.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::{dnsseal_bin, skip_unless_softhsm, Project, Run, PIN};
use expectrl::{Eof, Expect, Session};

const SSH: &str = "192.0.2.7 50123 192.0.2.1 22";

/// A project whose dnsseal.toml names a PIN file (0600): the shell's only
/// PIN source.
fn project() -> Project {
    with_pin_file(Project::softhsm())
}

/// `pin_file = "pin"` in the project's `[token]`.
fn with_pin_file(p: Project) -> Project {
    let pin = p.file("pin");
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();
    std::fs::write(
        p.file("dnsseal.toml"),
        conf.replace("[token]\n", "[token]\npin_file = \"pin\"\n"),
    )
    .unwrap();
    p
}

/// `dnsseal shell --project DIR` from another directory, with an
/// environment that would mislead the CLI: a wrong PIN, another config,
/// no SoftHSM configuration, a credential directory. The shell must
/// ignore all of it.
fn shell_command(p: &Project) -> Command {
    let mut c = Command::new(dnsseal_bin());
    c.current_dir("/")
        .env("DNSSEAL_PIN", "0000")
        .env("DNSSEAL_CONFIG", "/nonexistent/dnsseal.toml")
        .env("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf")
        .env("CREDENTIALS_DIRECTORY", "/nonexistent")
        .env("DNSSEAL_LOG", "trace")
        .env_remove("SSH_ORIGINAL_COMMAND")
        .env_remove("SSH_CONNECTION")
        .arg("shell")
        .arg("--project")
        .arg(p.path());
    c
}

/// The line through `-c`.
fn shell_c(p: &Project, line: &str) -> Run {
    Run::from(shell_command(p).arg("-c").arg(line).output().unwrap())
}

/// The line as sshd's ForceCommand gives it, from SSH client 192.0.2.7.
fn shell_ssh(p: &Project, line: &str) -> Run {
    Run::from(
        shell_command(p)
            .env("SSH_ORIGINAL_COMMAND", line)
            .env("SSH_CONNECTION", SSH)
            .output()
            .unwrap(),
    )
}

fn records(p: &Project) -> Vec<serde_json::Value> {
    p.audit_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The shell's audit records whose detail contains `text`.
fn shell_records(p: &Project, text: &str) -> Vec<serde_json::Value> {
    records(p)
        .into_iter()
        .filter(|r| r["command"] == "shell" && r["detail"].as_str().unwrap().contains(text))
        .collect()
}

#[test]
fn one_shot_commands_do_and_print_what_the_cli_does() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    let created = shell_c(
        &p,
        "keys create example.com --role both --algorithm ECDSAP256SHA256",
    )
    .ok();
    assert!(created.contains("example.com"), "{created}");
    assert_eq!(p.keys().len(), 3);
    assert_eq!(shell_c(&p, "keys list").ok(), p.run(&["keys", "list"]).ok());
    assert_eq!(
        shell_c(&p, "--json keys list example.com").ok(),
        p.run(&["--json", "keys", "list", "example.com"]).ok()
    );
    let ds = p.run(&["keys", "ds", "example.com"]).ok();
    assert!(ds.contains(" DS "), "{ds}");
    assert_eq!(shell_c(&p, "keys ds example.com").ok(), ds);
    assert_eq!(shell_ssh(&p, "keys ds example.com").ok(), ds);
    assert_eq!(
        shell_ssh(&p, "keys  dnskey  'example.com'").ok(),
        p.run(&["keys", "dnskey", "example.com"]).ok()
    );
    // Read-only commands print what the CLI prints (the shell's own
    // record of a line is written after the line ran).
    for line in [
        "token info",
        "policy show example.com",
        "audit export",
        "audit export --format csv",
        "keys show example.com --tag TAG",
    ] {
        let tag = p.keys()[0]["key_tag"].to_string();
        let line = line.replace("TAG", &tag);
        let args: Vec<&str> = line.split(' ').collect();
        let cli = p.run(&args).ok();
        assert_eq!(shell_c(&p, &line).ok(), cli, "{line}");
    }
    assert!(shell_c(&p, "rollover plan example.com")
        .ok()
        .contains("example.com"));
    assert!(shell_c(&p, "audit verify").ok().contains("intact"));
    // The key creation is audited by the library under the shell's user
    // and client, and the line by the shell.
    let created = records(&p)
        .into_iter()
        .find(|r| r["command"] == "keys create")
        .expect("keys create audited");
    let user = records(&p)[0]["operator"].as_str().unwrap().to_string();
    assert_eq!(created["operator"], user.as_str());
    let ran = shell_records(&p, "SSH_ORIGINAL_COMMAND: keys ds example.com");
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0]["outcome"], "ok");
    assert_eq!(ran[0]["zone"], "example.com");
    assert_eq!(
        ran[0]["operator"],
        format!("{user} (ssh from 192.0.2.7 port 50123)")
    );
    // Exit codes are the CLI's: a key tag that is not there.
    let err = shell_c(&p, "keys show example.com --tag 1").fails(3);
    assert!(err.contains("1"), "{err}");
    assert_eq!(shell_records(&p, "failed, exit 3; -c: keys show").len(), 1);
    p.run(&["audit", "verify"]).ok();
}

#[test]
fn the_pin_comes_only_from_the_projects_pin_file() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = Project::softhsm();
    let mut c = shell_command(&p);
    c.env("DNSSEAL_PIN", PIN);
    let run = Run::from(
        c.arg("-c")
            .arg("keys create example.com --role ksk --algorithm ECDSAP256SHA256")
            .output()
            .unwrap(),
    );
    let err = run.fails(7);
    assert!(err.contains("pin_file"), "{err}");
    assert!(p.keys().is_empty());
}

#[test]
fn a_pin_file_in_the_configuration_is_checked_and_serves_the_cli_too() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    // The CLI reads it before DNSSEAL_PIN (here wrong).
    p.run_with_pin(
        "0000",
        &[
            "keys",
            "create",
            "a.example",
            "--role",
            "zsk",
            "--algorithm",
            "ECDSAP256SHA256",
        ],
    )
    .ok();
    // Open to others: refused by the shell as by the CLI, exit 7.
    std::fs::set_permissions(p.file("pin"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = shell_c(
        &p,
        "keys create b.example --role zsk --algorithm ECDSAP256SHA256",
    )
    .fails(7);
    assert!(err.contains("PIN file") && err.contains("pin"), "{err}");
    assert_eq!(p.keys().len(), 1);
}

#[test]
fn everything_else_is_refused_clearly_and_audited() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    p.create_key("example.com", "zsk", "ECDSAP256SHA256");
    // A -c argument or a variable holds at most 128 KiB (Linux's
    // MAX_ARG_STRLEN), so a 1 MB line cannot even reach the shell that
    // way; 100 KB is far over the shell's 4096 bytes.
    let long = format!("keys ds {}", "a".repeat(100_000));
    let tmp_x_existed = std::path::Path::new("/tmp/x").exists();
    // A 1 MB line cannot reach the shell through -c or a variable: the
    // kernel refuses to start it (E2BIG).
    let huge = "a".repeat(1 << 20);
    let e = shell_command(&p).arg("-c").arg(&huge).output().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(7), "{e}");
    let cases: Vec<(String, &str)> = vec![
        ("sign x".into(), "`sign` is not a command"),
        ("init --softhsm".into(), "`init` is not a command"),
        (
            "keys import-bind example.com k".into(),
            "`keys import-bind`",
        ),
        ("; sh".into(), "metacharacter ';'"),
        ("$(id)".into(), "metacharacter '$'"),
        ("keys ds `id`".into(), "metacharacter '`'"),
        ("keys list && sh".into(), "metacharacter '&'"),
        ("keys ds ../../etc/passwd".into(), "looks like a file path"),
        ("keys ds '$(id)'".into(), "zone `$(id)` is refused"),
        (long.clone(), "100008 bytes is refused"),
        ("keys\u{7}list".into(), "control character U+0007"),
        ("keys list\u{1b}[2J".into(), "control character U+001B"),
        ("keys list -o /tmp/x".into(), "option -o is refused"),
        (
            "keys list --pin-file pin".into(),
            "option --pin-file is refused",
        ),
    ];
    for (line, why) in &cases {
        for (how, run) in [("-c", shell_c(&p, line)), ("ssh", shell_ssh(&p, line))] {
            assert!(run.stdout.is_empty(), "{how} {line:.60}: {}", run.stdout);
            let err = run.fails(10);
            assert!(
                err.contains("refused") && err.contains(why),
                "{how} {line:.60}: {err}"
            );
        }
    }
    assert_eq!(std::path::Path::new("/tmp/x").exists(), tmp_x_existed);
    // A usage error of an allowed command: clap's message, exit 2.
    let err = shell_c(&p, "keys create example.com").fails(2);
    assert!(err.contains("--role"), "{err}");
    let user = records(&p)[0]["operator"].as_str().unwrap().to_string();
    let refused: Vec<_> = records(&p)
        .into_iter()
        .filter(|r| {
            r["command"] == "shell" && r["detail"].as_str().unwrap().starts_with("refused: ")
        })
        .collect();
    assert_eq!(
        refused.len(),
        2 * cases.len(),
        "one record per refused line"
    );
    for r in &refused {
        assert_eq!(r["outcome"], "failed");
        let op = r["operator"].as_str().unwrap();
        let detail = r["detail"].as_str().unwrap();
        assert!(
            op == user || op == format!("{user} (ssh from 192.0.2.7 port 50123)"),
            "{r}"
        );
        assert!(detail.len() < 1000, "the long line is cut: {detail:.100}");
    }
    assert_eq!(
        refused
            .iter()
            .filter(|r| r["operator"]
                .as_str()
                .unwrap()
                .contains("ssh from 192.0.2.7"))
            .count(),
        cases.len()
    );
    assert_eq!(shell_records(&p, "SSH_ORIGINAL_COMMAND: sign x").len(), 1);
    assert_eq!(shell_records(&p, "(100008 bytes)").len(), 2);
    assert_eq!(shell_records(&p, "-c: keys\\u{7}list").len(), 1);
    p.run(&["audit", "verify"]).ok();
}

#[test]
fn login_shell_names_and_no_command_without_a_terminal() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    p.create_key("example.com", "ksk", "ECDSAP256SHA256");
    let ds = p.run(&["keys", "ds", "example.com"]).ok();
    // As login(1) and sshd start a login shell, and as sshd runs a command
    // through it: argv[0] names the shell, the arguments follow.
    for arg0 in [
        "dnsseal-shell",
        "-dnsseal-shell",
        "/usr/local/bin/dnsseal-shell",
    ] {
        let out = Command::new(dnsseal_bin())
            .arg0(arg0)
            .env_remove("SOFTHSM2_CONF")
            .args(["--project".as_ref(), p.path().as_os_str()])
            .args(["-c", "keys ds example.com"])
            .output()
            .unwrap();
        assert_eq!(Run::from(out).ok(), ds, "{arg0}");
    }
    // No command and no terminal: refused, nothing read from stdin.
    let err = Run::from(shell_command(&p).output().unwrap()).fails(3);
    assert!(err.contains("no command"), "{err}");
    // No project given and none in /etc/dnsseal/shell.toml.
    if !std::path::Path::new("/etc/dnsseal/shell.toml").exists() {
        let out = Command::new(dnsseal_bin())
            .args(["shell", "-c", "keys list"])
            .output()
            .unwrap();
        let err = Run::from(out).fails(3);
        assert!(err.contains("--project DIR"), "{err}");
    }
}

/// The interactive shell through a pseudo-terminal: prompt, help, Tab
/// completion of a command and a zone, history, Ctrl-C, Ctrl-D.
#[test]
fn interactive_through_a_pseudo_terminal() {
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    p.create_key("example.com", "ksk", "ECDSAP256SHA256");
    let ds = p.run(&["keys", "ds", "example.com"]).ok();
    let ds_line = ds.lines().next().unwrap().trim().to_string();
    let mut c = shell_command(&p);
    c.env("TERM", "xterm").env("SSH_CONNECTION", SSH);
    let mut s = Session::spawn(c).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("dnsseal> ").unwrap();
    s.send_line("help").unwrap();
    s.expect("rollover").unwrap();
    s.expect("dnsseal> ").unwrap();
    // Tab completes the command, then the zone from the keystore.
    s.send("ke\t").unwrap();
    s.expect("keys").unwrap();
    s.send(" ds exa\t").unwrap();
    s.expect("example.com").unwrap();
    s.send("\r").unwrap();
    s.expect(ds_line.as_str()).unwrap();
    s.expect("dnsseal> ").unwrap();
    // Up arrow recalls the line; Enter runs it again.
    s.send("\x1b[A").unwrap();
    s.expect("keys ds example.com").unwrap();
    s.send("\r").unwrap();
    s.expect(ds_line.as_str()).unwrap();
    s.expect("dnsseal> ").unwrap();
    // The token lock is let go after each command: the CLI can use the
    // token while the session stays open.
    s.send_line("token info").unwrap();
    s.expect("dnsseal> ").unwrap();
    let mut cli = p.command();
    cli.args([
        "keys",
        "create",
        "other.example",
        "--role",
        "zsk",
        "--algorithm",
        "ECDSAP256SHA256",
    ]);
    let mut child = cli.stdout(std::process::Stdio::null()).spawn().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the CLI waited for the token lock the shell session holds");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    // Ctrl-C while a command runs neither ends the session nor stops the
    // command halfway: the key is made whole, and the shell says so.
    s.send_line("keys create example.com --role zsk --algorithm RSASHA256 --bits 4096")
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    s.send("\x03").unwrap();
    s.expect("ran to its end").unwrap();
    s.expect("dnsseal> ").unwrap();
    s.send_line("keys list example.com").unwrap();
    s.expect("RSASHA256").unwrap();
    s.expect("dnsseal> ").unwrap();
    // A refusal is said, and the session goes on.
    s.send_line("keys list; sh").unwrap();
    s.expect("refused: shell metacharacter ';'").unwrap();
    s.expect("dnsseal> ").unwrap();
    // Ctrl-C drops a half-typed line: nothing runs.
    s.send("sign half").unwrap();
    s.send("\x03").unwrap();
    s.expect("dnsseal> ").unwrap();
    s.send_line("").unwrap();
    s.expect("dnsseal> ").unwrap();
    // Ctrl-D on an empty line leaves with status 0.
    s.send("\x04").unwrap();
    s.expect(Eof).unwrap();
    let status = s.get_process().wait().unwrap();
    assert_eq!(
        status,
        expectrl::process::unix::WaitStatus::Exited(s.get_process().pid(), 0)
    );
    assert_eq!(shell_records(&p, "terminal: keys ds example.com").len(), 2);
    assert_eq!(shell_records(&p, "terminal: help").len(), 1);
    assert!(shell_records(&p, "sign half").is_empty());
    assert_eq!(
        shell_records(&p, "refused: shell metacharacter ';' at column 10").len(),
        1
    );
    assert!(shell_records(&p, "terminal: keys ds")
        .iter()
        .all(|r| r["operator"]
            .as_str()
            .unwrap()
            .ends_with("(ssh from 192.0.2.7 port 50123)")));
    p.run(&["audit", "verify"]).ok();
}

/// Kills the sshd of a test when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real OpenSSH server on 127.0.0.1 with the shell as ForceCommand;
/// skipped, with the reason, where sshd is not installed or the test does
/// not run as root.
#[test]
fn through_a_real_sshd_as_force_command() {
    let sshd = std::path::Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        eprintln!("skipped: /usr/sbin/sshd is not installed (apt-get install openssh-server)");
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: sshd needs root to run");
        return;
    }
    if skip_unless_softhsm("the shell clears KRYOPTIC_CONF") {
        return;
    }
    let p = project();
    p.create_key("example.com", "ksk", "ECDSAP256SHA256");
    let ds = p.run(&["keys", "ds", "example.com"]).ok();
    let d = tempfile::tempdir().unwrap();
    for key in ["host", "user"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.path().join(key))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {out:?}");
    }
    std::fs::copy(d.path().join("user.pub"), d.path().join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = d.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nLogLevel ERROR\n\
             ForceCommand {bin} shell --project {project}\n",
            dir = d.path().display(),
            bin = dnsseal_bin(),
            project = p.path().display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let _sshd = Killed(
        Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ssh = |line: &str| {
        Run::from(
            Command::new("ssh")
                .args(["-F", "/dev/null", "-i"])
                .arg(d.path().join("user"))
                .args(["-p", &port.to_string()])
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "LogLevel=ERROR",
                    "root@127.0.0.1",
                    line,
                ])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(ssh("keys ds example.com").ok(), ds);
    let err = ssh("sign x").fails(10);
    assert!(err.contains("`sign` is not a command"), "{err}");
    let err = ssh("keys list; id").fails(10);
    assert!(err.contains("metacharacter ';'"), "{err}");
    let ran = shell_records(&p, "SSH_ORIGINAL_COMMAND: keys ds example.com");
    assert_eq!(ran.len(), 1);
    let op = ran[0]["operator"].as_str().unwrap();
    assert!(op.contains("(ssh from 127.0.0.1 port "), "{op}");
    assert_eq!(
        shell_records(&p, "SSH_ORIGINAL_COMMAND: keys list; id").len(),
        1
    );
    p.run(&["audit", "verify"]).ok();
}

/// A module that finds its tokens through a variable (Kryoptic:
/// KRYOPTIC_CONF) works from the shell, which clears the environment,
/// when `module_conf` in `[token]` names its configuration.
#[test]
fn a_module_configured_through_a_variable_works_from_the_shell() {
    if !std::path::Path::new(common::KRYOPTIC_MODULE).exists() {
        eprintln!(
            "skipped: the Kryoptic module is not built ({}): scripts/setup.sh builds it",
            common::KRYOPTIC_MODULE
        );
        return;
    }
    let p = with_pin_file(Project::on(common::TokenKind::Kryoptic));
    // Without module_conf: the module finds no token, and says why.
    let err = shell_c(&p, "token info").fails(5);
    assert!(
        err.contains("KRYOPTIC_CONF is not set") && err.contains("module_conf"),
        "{err}"
    );
    let conf = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();
    std::fs::write(
        p.file("dnsseal.toml"),
        conf.replace(
            "[token]\n",
            "[token]\nmodule_conf = \"kryoptic/token.conf\"\n",
        ),
    )
    .unwrap();
    let out = shell_c(
        &p,
        "keys create example.com --role zsk --algorithm ECDSAP256SHA256",
    )
    .ok();
    assert!(out.contains("ECDSAP256SHA256"), "{out}");
    let dnskey = shell_c(&p, "keys dnskey example.com").ok();
    assert!(dnskey.contains("DNSKEY 256 3 13"), "{dnskey}");
    shell_c(&p, "token info").ok();
}
