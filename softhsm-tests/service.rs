//! The signing service (`dnsseal serve`) and its client (`dnsseal sign
//! --server`), end to end on a SoftHSMv2 token: each test starts its own
//! service on a Unix socket in the project directory.
//!
//! What is checked: a signed zone comes back whole and verifies (dnsseal's
//! verifier and the independent ones), `--incremental` reuses the
//! service's copy of the client's previous output, status, health and
//! metrics answer; refusals (another uid, a zone not allowed, too big,
//! malformed, busy) carry the local command's exit code and message and
//! are audited; a stalled or vanished upload frees its slot and leaves
//! nothing behind; the token taken away (faulty-p11) and back is seen by
//! health and signing resumes with no restart; a service killed during a
//! job leaves keystore, token and audit log consistent and no output.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dnsseal_bin, Project, Run};
use serde_json::Value;

const ZONE: &str = "example.com.";

/// A zone of `n` delegations with glue.
fn zone_text(n: usize) -> String {
    let mut z = String::from(
        "$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n",
    );
    for i in 0..n {
        z.push_str(&format!(
            "d{i} IN NS ns.d{i}\nns.d{i} IN A 198.51.100.{}\n",
            i % 250 + 1
        ));
    }
    z
}

/// A project with a CSK for example.com. and a `[service]` table.
fn project(service: &str) -> Project {
    let p = Project::softhsm();
    p.create_key(ZONE, "both", "ECDSAP256SHA256");
    let path = p.file("dnsseal.toml");
    let mut conf = std::fs::read_to_string(&path).expect("dnsseal.toml");
    conf.push_str(&format!("\n[service]\n{service}\n"));
    std::fs::write(&path, conf).expect("dnsseal.toml written");
    std::fs::write(p.file("db.example"), zone_text(50)).expect("zone written");
    p
}

/// This process's uid, from the project directory's owner.
fn my_uid(p: &Project) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p.path()).expect("project").uid()
}

/// A running `dnsseal serve`, killed when dropped.
struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    fn start(p: &Project) -> Server {
        Server::start_env(p, &[])
    }

    fn start_env(p: &Project, env: &[(&str, &std::ffi::OsStr)]) -> Server {
        let socket = p.file("dnsseal.sock");
        let mut cmd = p.command();
        cmd.args(["-v", "serve"])
            .envs(env.iter().map(|(k, v)| (*k, *v)));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.file("serve.log")).expect("log"))
            .spawn()
            .expect("start dnsseal serve");
        let server = Server { child, socket };
        server.wait_ready(p);
        server
    }

    fn wait_ready(&self, p: &Project) {
        let started = Instant::now();
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the service did not come up:\n{}",
                std::fs::read_to_string(p.file("serve.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn socket(&self) -> &str {
        self.socket.to_str().expect("UTF-8 path")
    }

    /// `curl --unix-socket` of a path: (HTTP status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--unix-socket", self.socket()])
            .arg(format!("http://dnsseal{path}"))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("status line");
        (code.trim().parse().expect("HTTP status"), body.to_string())
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let status = self.child.wait().expect("wait for serve");
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dnsseal --json sign --server SOCKET ...` from the project directory.
fn remote(p: &Project, server: &Server, args: &[&str]) -> Run {
    let mut all = vec!["--json", "sign", "--server", server.socket()];
    all.extend_from_slice(args);
    p.run(&all)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The service's job directories (empty between requests).
fn jobs_left(p: &Project) -> usize {
    std::fs::read_dir(p.file("service/jobs"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn audit_has(p: &Project, needles: &[&str]) -> bool {
    p.audit_lines()
        .iter()
        .any(|l| needles.iter().all(|n| l.contains(n)))
}

#[test]
fn a_zone_signed_through_the_socket_verifies_and_is_audited() {
    common::require_verifiers();
    let p = project("");
    let uid = allow_me(&p, "example.com", true);
    let server = Server::start(&p);
    let out = remote(
        &p,
        &server,
        &["db.example", "-o", ZONE, "-f", "signed", "-N", "increment"],
    )
    .ok();
    let r = json(&out);
    assert_eq!(r["serial_in"], 1);
    assert_eq!(r["serial_out"], 2);
    assert_eq!(r["previous"], "none");
    assert!(r["signatures_generated"].as_u64().unwrap() > 50, "{r}");
    let signed = p.file("signed");
    p.run(&["verify", "signed", "-o", ZONE]).ok();
    common::independent_verifiers(&signed, ZONE);
    assert_eq!(
        r["output_sha256"].as_str().unwrap(),
        sha256(&signed),
        "the digest the service sent is the file's"
    );
    assert!(audit_has(
        &p,
        &[
            "serve sign",
            &format!("uid {uid}"),
            "serial 1 -> 2",
            "output sha256"
        ]
    ));

    // --incremental: the service still has this output, so signatures are kept.
    let out = remote(
        &p,
        &server,
        &[
            "db.example",
            "-o",
            ZONE,
            "-f",
            "signed2",
            "--incremental",
            "signed",
        ],
    )
    .ok();
    let r = json(&out);
    assert_eq!(r["previous"], "used", "{r}");
    assert!(r["signatures_retained"].as_u64().unwrap() > 50, "{r}");
    common::independent_verifiers(&p.file("signed2"), ZONE);
    // A previous output the service does not have: signed in full.
    std::fs::write(p.file("other"), "not the output\n").unwrap();
    let r = json(
        &remote(
            &p,
            &server,
            &[
                "db.example",
                "-o",
                ZONE,
                "-f",
                "signed3",
                "--incremental",
                "other",
            ],
        )
        .ok(),
    );
    assert_eq!(r["previous"], "mismatch", "{r}");
    assert_eq!(r["signatures_retained"], 0, "{r}");

    let (code, body) = server.get("/v1/health");
    assert_eq!(code, 200, "{body}");
    // HTTP/2 too (with prior knowledge, as on a socket there is no ALPN).
    let h2 = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--http2-prior-knowledge",
        ])
        .args(["--unix-socket", server.socket(), "http://dnsseal/v1/health"])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&h2.stdout), "2 200");
    let health = json(&body);
    assert_eq!(health["token"]["state"], "present", "{health}");
    assert!(
        health["seconds_left"].as_i64().unwrap() > 86_400,
        "{health}"
    );
    let (code, body) = server.get("/v1/status");
    assert_eq!(code, 200, "{body}");
    let status = json(&body);
    let zone = &status["zones"][0];
    assert_eq!(zone["zone"], ZONE, "{status}");
    let tags: Vec<&Value> = zone["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["tag"])
        .collect();
    for tag in r["key_tags"].as_array().unwrap() {
        assert!(
            tags.contains(&tag),
            "key {tag} missing from the status: {status}"
        );
    }
    assert!(
        zone["last_signed"]["earliest_expiry"].is_string(),
        "{status}"
    );
    let (code, metrics) = server.get("/metrics");
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("dnsseal_requests_total{endpoint=\"sign\",status=\"200\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dnsseal_zone_earliest_signature_expiry_seconds{zone=\"example.com.\"}"),
        "{metrics}"
    );
    assert_eq!(jobs_left(&p), 0);
    assert!(server.stop().success());
    assert!(
        !p.file("dnsseal.sock").exists(),
        "the socket is removed at the end"
    );
    p.run(&["audit", "verify"]).ok();
    assert!(audit_has(&p, &["\"serve\"", "stopped"]));
}

/// A rule for this process's uid: `zone`, and status when asked; the uid.
fn allow_me(p: &Project, zone: &str, status: bool) -> u32 {
    let uid = my_uid(p);
    let status = if status { "status = true\n" } else { "" };
    append_rules(
        p,
        &format!("[[service.allow]]\nuid = {uid}\nzones = [\"{zone}\"]\n{status}"),
    );
    uid
}

/// `dnsseal sign --server` of `file` into `out`, running.
fn spawn_client(p: &Project, server: &Server, file: &str, out: &str) -> Child {
    p.command()
        .args([
            "sign",
            "--server",
            server.socket(),
            file,
            "-o",
            ZONE,
            "-f",
            out,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client")
}

fn append_rules(p: &Project, rules: &str) {
    let path = p.file("dnsseal.toml");
    let mut conf = std::fs::read_to_string(&path).expect("dnsseal.toml");
    conf.push_str(rules);
    std::fs::write(&path, conf).expect("dnsseal.toml written");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

#[test]
fn refusals_carry_the_local_exit_codes_and_are_audited() {
    let p = project("max_request_bytes = 20000");
    let uid = allow_me(&p, "example.com", false);
    let server = Server::start(&p);
    // A zone this uid may not sign.
    std::fs::write(
        p.file("db.net"),
        zone_text(1).replace("example.com", "example.net"),
    )
    .unwrap();
    let err = remote(&p, &server, &["db.net", "-o", "example.net"]).fails(10);
    assert!(
        err.contains(&format!("not authorised: uid {uid}")) && err.contains("sign example.net."),
        "{err}"
    );
    assert!(audit_has(&p, &["refused", "example.net."]));
    // Status without a rule for it.
    let (code, body) = server.get("/v1/status");
    assert_eq!(code, 403, "{body}");
    // Malformed: the client's file name and the line reach the client.
    let mut bad = zone_text(2);
    bad.push_str("www2 IN A 192.0.2.300\n");
    std::fs::write(p.file("db.bad"), bad).unwrap();
    let err = remote(&p, &server, &["db.bad", "-o", ZONE, "-f", "bad.signed"]).fails(3);
    assert!(err.contains("db.bad:10"), "{err}");
    assert!(
        !err.contains("service/jobs"),
        "the service's paths stay on the service: {err}"
    );
    assert!(!p.file("bad.signed").exists());
    // Too big.
    std::fs::write(p.file("db.big"), zone_text(1000)).unwrap();
    let err = remote(&p, &server, &["db.big", "-o", ZONE, "-f", "big.signed"]).fails(3);
    assert!(err.contains("max_request_bytes = 20000"), "{err}");
    // $INCLUDE names the service's files: refused at its line.
    std::fs::write(
        p.file("db.inc"),
        format!("{}$INCLUDE /etc/passwd\n", zone_text(0)),
    )
    .unwrap();
    let err = remote(&p, &server, &["db.inc", "-o", ZONE, "-f", "inc.signed"]).fails(3);
    assert!(
        err.contains("db.inc:6") && err.contains("$INCLUDE is not followed"),
        "{err}"
    );
    // Another uid, through a socket opened to all for the test.
    std::fs::set_permissions(
        &server.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::write(scratch.path().join("db.example"), zone_text(1)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            dnsseal_bin(),
        ])
        .args([
            "sign",
            "--server",
            server.socket(),
            "db.example",
            "-o",
            ZONE,
        ])
        .current_dir(scratch.path())
        .env_remove("DNSSEAL_CONFIG")
        .output()
        .expect("setpriv");
    let r = Run::from(out);
    let err = r.fails(10);
    assert!(err.contains("not authorised: uid 65534"), "{err}");
    assert!(audit_has(&p, &["refused", "uid 65534"]));
    assert_eq!(jobs_left(&p), 0);
    drop(server);
    p.run(&["audit", "verify"]).ok();
}

/// Sends a request's head and `part` of a body announced as `length`.
fn partial_upload(socket: &Path, length: usize, part: &[u8]) -> UnixStream {
    let mut s = UnixStream::connect(socket).expect("connect");
    write!(
        s,
        "POST /v1/sign/example.com. HTTP/1.1\r\nHost: dnsseal\r\nContent-Length: {length}\r\n\r\n"
    )
    .expect("head");
    s.write_all(part).expect("part of the body");
    s
}

#[test]
fn stalled_and_vanished_uploads_free_their_slot_and_leave_nothing() {
    let p = project("read_timeout = 2\nmax_jobs = 2\nmax_queue = 0");
    allow_me(&p, "example.com", false);
    // Another zone, whose clients a stalled example.com upload must not
    // hold up.
    p.create_key("other.test.", "both", "ECDSAP256SHA256");
    allow_me(&p, "other.test", false);
    std::fs::write(
        p.file("db.other"),
        zone_text(5).replace("example.com", "other.test"),
    )
    .unwrap();
    let server = Server::start(&p);
    let other = |out: &str| remote(&p, &server, &["db.other", "-o", "other.test", "-f", out]);
    let text = zone_text(5);
    // A client that stalls mid-upload holds one job slot and its zone ...
    let mut stalled = partial_upload(&server.socket, text.len(), &text.as_bytes()[..40]);
    std::thread::sleep(Duration::from_millis(300));
    // ... another zone signs meanwhile.
    let started = Instant::now();
    other("s1").ok();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "held up by the stalled upload"
    );
    // Two more for the stalled zone: one is admitted and waits for the
    // zone (max_jobs 2 + max_queue 0 admitted at once), the next is told
    // to retry.
    let _queued = partial_upload(&server.socket, text.len(), &text.as_bytes()[..40]);
    std::thread::sleep(Duration::from_millis(300));
    let err = remote(&p, &server, &["db.example", "-o", ZONE, "-f", "s2"]).fails(14);
    assert!(
        err.contains("busy") && err.contains("retry after 5 s"),
        "{err}"
    );
    // The stalled client is answered 408 after read_timeout.
    let mut answer = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("read_timeout (2 s)"), "{answer}");
    // A client that goes away mid-upload.
    drop(partial_upload(
        &server.socket,
        text.len(),
        &text.as_bytes()[..40],
    ));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        jobs_left(&p),
        0,
        "nothing left of the stalled and vanished uploads"
    );
    remote(&p, &server, &["db.example", "-o", ZONE, "-f", "s3"]).ok();
    assert!(!p.file("s2").exists());
}

#[test]
fn the_token_away_is_reported_and_signing_resumes_by_itself() {
    let p = project("token_check = 1");
    allow_me(&p, "example.com", true);
    common::through_faulty(&p);
    let faults = p.file("faults.conf");
    std::fs::write(&faults, "").unwrap();
    let env: [(&str, &std::ffi::OsStr); 2] = [
        (
            "FAULTY_P11_MODULE",
            std::ffi::OsStr::new(common::SOFTHSM_MODULE),
        ),
        ("FAULTY_P11_CONFIG", faults.as_os_str()),
    ];
    let server = Server::start_env(&p, &env);
    remote(&p, &server, &["db.example", "-o", ZONE, "-f", "before"]).ok();
    // The token is unplugged.
    std::fs::write(&faults, "away = true\n").unwrap();
    let r = remote(&p, &server, &["db.example", "-o", ZONE, "-f", "during"]);
    // No token in the slot list (6), or gone mid-call (13).
    assert!(r.code == 6 || r.code == 13, "exit {}: {}", r.code, r.stderr);
    assert!(r.stderr.contains("retry after 30 s"), "{}", r.stderr);
    assert!(!p.file("during").exists());
    let started = Instant::now();
    loop {
        let (code, body) = server.get("/v1/health");
        if code == 503 {
            assert_eq!(json(&body)["token"]["state"], "away", "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "health never said away: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Plugged back: health says so within token_check, and signing works.
    std::fs::write(&faults, "").unwrap();
    let started = Instant::now();
    while server.get("/v1/health").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the token never came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    remote(&p, &server, &["db.example", "-o", ZONE, "-f", "after"]).ok();
    p.run(&["verify", "after", "-o", ZONE]).ok();
}

#[test]
fn a_service_killed_during_a_job_leaves_everything_consistent() {
    let p = project("");
    allow_me(&p, "example.com", false);
    std::fs::write(p.file("db.big"), zone_text(60_000)).unwrap();
    let mut server = Server::start(&p);
    let mut client = spawn_client(&p, &server, "db.big", "big.signed");
    // Kill the service once the job is under way.
    let started = Instant::now();
    while jobs_left(&p) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");
    let status = client.wait().expect("client ends");
    assert!(!status.success());
    assert!(
        !p.file("big.signed").exists(),
        "no output from a killed job"
    );
    let temps: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    let r = p.run(&["keys", "reconcile"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    p.run(&["audit", "verify"]).ok();
    // Restarted: the killed job's files are cleared, and signing works.
    let server = Server::start(&p);
    assert_eq!(jobs_left(&p), 0);
    remote(&p, &server, &["db.example", "-o", ZONE, "-f", "again"]).ok();
    p.run(&["verify", "again", "-o", ZONE]).ok();
}

#[test]
fn thirty_two_parallel_clients_each_get_a_verified_zone() {
    common::require("dnssec-verify", "bind9-utils");
    let p = project("max_jobs = 4");
    let uid = my_uid(&p);
    append_rules(
        &p,
        &format!("[[service.allow]]\nuid = {uid}\nstatus = true\n"),
    );
    // Four zones, each with its own key; several clients per zone at once.
    let zones = ["example.com.", "z2.test.", "z3.test.", "z4.test."];
    let mut rules = format!("[[service.allow]]\nuid = {uid}\nzones = [");
    for (i, z) in zones.iter().enumerate() {
        if i > 0 {
            p.create_key(z, "both", "ECDSAP256SHA256");
            std::fs::write(
                p.file(&format!("db.{i}")),
                zone_text(200).replace("example.com", z.trim_end_matches('.')),
            )
            .unwrap();
        }
        rules.push_str(&format!("\"{z}\", "));
    }
    rules.push_str("]\n");
    append_rules(&p, &rules);
    std::fs::copy(p.file("db.example"), p.file("db.0")).unwrap();
    let server = Server::start(&p);
    let client_bin = env!("CARGO_BIN_EXE_dnsseal-client");
    let handles: Vec<_> = (0..32)
        .map(|c| {
            let (dir, socket) = (p.path().to_path_buf(), server.socket().to_string());
            let zone = zones[c % zones.len()];
            std::thread::spawn(move || {
                let mut done = Vec::new();
                for i in 0..3 {
                    let out = format!("out-{c}-{i}");
                    // Half the clients use the small client binary.
                    let bin = if c % 2 == 0 {
                        dnsseal_bin()
                    } else {
                        client_bin
                    };
                    loop {
                        let r = Command::new(bin)
                            .current_dir(&dir)
                            .args([
                                "sign",
                                "--server",
                                &socket,
                                &format!("db.{}", c % 4),
                                "-o",
                                zone,
                                "-f",
                                &out,
                            ])
                            .output()
                            .expect("client");
                        match r.status.code() {
                            Some(0) => break,
                            // Busy: told to retry; nothing was written.
                            Some(14) => {
                                assert!(!dir.join(&out).exists());
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            other => panic!(
                                "client {c} request {i}: exit {other:?}: {}",
                                String::from_utf8_lossy(&r.stderr)
                            ),
                        }
                    }
                    done.push((out, zone));
                }
                done
            })
        })
        .collect();
    let mut answered = 0;
    for h in handles {
        for (out, zone) in h.join().expect("client thread") {
            let r = Command::new("dnssec-verify")
                .args(["-q", "-o", zone])
                .arg(p.file(&out))
                .output()
                .expect("dnssec-verify");
            assert!(
                r.status.success(),
                "{out} ({zone}): {}",
                String::from_utf8_lossy(&r.stderr)
            );
            answered += 1;
        }
    }
    assert_eq!(answered, 96);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("dnsseal_requests_total{endpoint=\"sign\",status=\"200\"} 96"),
        "{metrics}"
    );
    assert_eq!(jobs_left(&p), 0);
    assert_eq!(
        p.audit_lines()
            .iter()
            .filter(|l| l.contains("\"serve sign\"") && !l.contains("\"failed\""))
            .count(),
        96
    );
    p.run(&["audit", "verify"]).ok();
}

#[test]
fn sigterm_lets_a_running_job_finish_and_stops_one_past_the_grace() {
    let p = project("shutdown_grace = 30");
    allow_me(&p, "example.com", false);
    std::fs::write(p.file("db.big"), zone_text(40_000)).unwrap();
    let server = Server::start(&p);
    let client = spawn_client(&p, &server, "db.big", "big.signed");
    wait_for_job(&p);
    let status = server.stop();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}");
    let out = client.wait_with_output().expect("client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.run(&["verify", "big.signed", "-o", ZONE]).ok();

    // A grace of 1 s: the job is stopped, nothing written.
    let path = p.file("dnsseal.toml");
    let conf = std::fs::read_to_string(&path)
        .unwrap()
        .replace("shutdown_grace = 30", "shutdown_grace = 1");
    std::fs::write(&path, conf).unwrap();
    std::fs::write(p.file("db.big"), zone_text(150_000)).unwrap();
    let server = Server::start(&p);
    let client = spawn_client(&p, &server, "db.big", "cut.signed");
    wait_for_job(&p);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the job was not stopped at the grace"
    );
    let out = client.wait_with_output().expect("client");
    assert!(!out.status.success());
    assert!(!p.file("cut.signed").exists());
    assert_eq!(jobs_left(&p), 0);
    p.run(&["audit", "verify"]).ok();
    assert!(
        audit_has(&p, &["serve sign", "SIGTERM"]),
        "the stopped job is audited"
    );
}

fn wait_for_job(p: &Project) {
    let started = Instant::now();
    while jobs_left(p) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (package systemd)");
        return;
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "dnsseal.service",
        "dnsseal-policy.service",
        "dnsseal-policy.timer",
    ] {
        let text = std::fs::read_to_string(units.join(name)).unwrap();
        assert!(text.contains("/usr/bin/dnsseal") || name.ends_with(".timer"));
        std::fs::write(
            dir.path().join(name),
            text.replace("/usr/bin/dnsseal", dnsseal_bin()),
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(units.join("dnsseal.service")).unwrap();
    for needed in [
        "Type=notify",
        "User=dnsseal",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "LoadCredential=dnsseal-pin:",
    ] {
        assert!(text.contains(needed), "dnsseal.service lacks {needed}");
    }
    for name in [
        "dnsseal.service",
        "dnsseal-policy.service",
        "dnsseal-policy.timer",
    ] {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join(name))
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        // Only what this machine lacks (the dnsseal user) may be said.
        let complaints: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("dnsseal' not found"))
            .collect();
        assert!(
            out.status.success() && complaints.is_empty(),
            "{name}: {err}"
        );
    }
}

/// A test PKI: a CA, the service's certificate for localhost, and client
/// certificates (good, from another CA, expired, not in the rules).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        std::fs::create_dir_all(dir).unwrap();
        let ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let cert = p.self_signed(&key).unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
            Issuer::new(p, key)
        };
        let (good_ca, other_ca) = (ca("ca"), ca("other-ca"));
        let leaf = |name: &str, cn: &str, issuer: &Issuer<'_, KeyPair>, expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            if expired {
                p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
                p.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
            }
            let cert = p.signed_by(&key, issuer).unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        };
        leaf("server", "localhost", &good_ca, false);
        leaf("builder", "builder", &good_ca, false);
        leaf("stranger", "stranger", &good_ca, false);
        leaf("expired", "builder", &good_ca, true);
        leaf("forged", "builder", &other_ca, false);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn tls_clients_are_known_by_their_certificates_and_others_refused() {
    let p = project("");
    let pki = Pki::make(&p.file("tls"));
    let port = free_port();
    append_rules(
        &p,
        &format!(
            "listen = \"127.0.0.1:{port}\"\ntls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\nclient_ca = \"tls/ca.pem\"\n[[service.allow]]\nsubject = \"CN=builder\"\nzones = [\"example.com\"]\nstatus = true\n"
        ),
    );
    let server = Server::start(&p);
    let url = format!("https://localhost:{port}");
    let sign_as = |who: &str, out: &str| {
        p.run(&[
            "sign",
            "--server",
            &url,
            "--ca",
            &pki.file("ca.pem"),
            "--cert",
            &pki.file(&format!("{who}.pem")),
            "--key",
            &pki.file(&format!("{who}.key")),
            "db.example",
            "-o",
            ZONE,
            "-f",
            out,
        ])
    };
    sign_as("builder", "tls.signed").ok();
    p.run(&["verify", "tls.signed", "-o", ZONE]).ok();
    assert!(audit_has(
        &p,
        &["serve sign", "certificate \\\"CN=builder\\\""]
    ));
    // Verified, but named by no rule: 403.
    let err = sign_as("stranger", "s.signed").fails(10);
    assert!(
        err.contains("not authorised: certificate \"CN=stranger\""),
        "{err}"
    );
    // Refused in the handshake: another CA, expired.
    for who in ["forged", "expired"] {
        let err = sign_as(who, &format!("{who}.signed")).fails(10);
        assert!(
            err.contains("refused this client's certificate"),
            "{who}: {err}"
        );
        assert!(!p.file(&format!("{who}.signed")).exists());
    }
    // No certificate at all, and TLS 1.2 with a good one (curl).
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--cacert", &pki.file("ca.pem")])
            .args(extra)
            .arg(format!("{url}/v1/health"))
            .status()
            .expect("curl")
    };
    assert!(!curl(&[]).success(), "no client certificate is refused");
    let tls12 = curl(&[
        "--tls-max",
        "1.2",
        "--cert",
        &pki.file("builder.pem"),
        "--key",
        &pki.file("builder.key"),
    ]);
    assert!(!tls12.success(), "TLS 1.2 is refused");
    assert!(curl(&[
        "--cert",
        &pki.file("builder.pem"),
        "--key",
        &pki.file("builder.key")
    ])
    .success());
    let refused = p
        .audit_lines()
        .iter()
        .filter(|l| l.contains("refused: TLS client 127.0.0.1"))
        .count();
    assert!(
        refused >= 4,
        "every refused handshake is audited ({refused})"
    );
    drop(server);
    p.run(&["audit", "verify"]).ok();
}
