//! A Redis for tests: the one `RESILIENCE_REDIS_URL` names (CI starts it), or a
//! `redis-server` started here on a free 127.0.0.1 port, which a test can kill and
//! restart.
//!
//! With neither, [`RedisServer::shared`] and [`RedisServer::own`] say why and return
//! `None` (a failure with `RESILIENCE_REDIS_REQUIRED=1`, set by CI). The tests never get
//! there silently: the build script of this crate finds out whether a Redis is available
//! and the tests that need one are then reported as ignored, with the reason; a test that
//! runs and gets `None` fails. The benchmarks skip their Redis groups.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a started server has to answer `PING`.
const STARTUP: Duration = Duration::from_secs(10);

/// A Redis reachable on loopback.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    /// `None` for the server named by `RESILIENCE_REDIS_URL`.
    child: Option<Child>,
    url: String,
    /// More `redis-server` options (TLS, Cluster), after the common ones.
    extra: Vec<String>,
    /// A directory of our own (certificates, the Cluster's node file), removed on drop.
    dir: Option<PathBuf>,
    /// The CA certificate a TLS server's certificate is signed with (PEM).
    root_cert: Option<Vec<u8>>,
}

/// Why no Redis is available.
fn unavailable<T>(why: &str) -> Option<T> {
    let required = std::env::var("RESILIENCE_REDIS_REQUIRED").is_ok_and(|v| v == "1");
    assert!(!required, "RESILIENCE_REDIS_REQUIRED=1 but {why}");
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         NO REDIS: {why}.\n\
         Install redis-server (apt-get install redis-server) or set RESILIENCE_REDIS_URL\n\
         to run the Redis backend tests.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

impl RedisServer {
    /// The shared server of `RESILIENCE_REDIS_URL`, else one of our own.
    pub fn shared() -> Option<RedisServer> {
        match std::env::var("RESILIENCE_REDIS_URL") {
            Ok(url) => {
                let port = url.rsplit(':').next().and_then(|p| p.split('/').next()?.parse().ok());
                Some(RedisServer {
                    port: port.unwrap_or(6379),
                    child: None,
                    url,
                    extra: Vec::new(),
                    dir: None,
                    root_cert: None,
                })
            }
            Err(_) => RedisServer::own(),
        }
    }

    /// A server of our own (it can be killed and restarted).
    pub fn own() -> Option<RedisServer> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            return unavailable(
                "no `redis-server` binary on PATH and RESILIENCE_REDIS_URL is unset",
            );
        }
        let port = match free_port() {
            Ok(p) => p,
            Err(e) => return unavailable(&format!("no free loopback port: {e}")),
        };
        let mut server = RedisServer {
            port,
            child: None,
            url: format!("redis://127.0.0.1:{port}"),
            extra: Vec::new(),
            dir: None,
            root_cert: None,
        };
        match server.start() {
            Ok(()) => Some(server),
            Err(e) => unavailable(&format!("redis-server did not start: {e}")),
        }
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this server can be killed (it is ours).
    pub fn is_own(&self) -> bool {
        self.child.is_some()
    }

    /// Starts (or restarts) the server on its port and waits until it answers.
    ///
    /// The server runs under a small shell watchdog that stops it when this process
    /// exits, so a server held in a `static` (never dropped) does not outlive the tests.
    pub fn start(&mut self) -> Result<(), String> {
        let watchdog = format!(
            "redis-server \"$@\" & r=$!; \
             while kill -0 \"$r\" 2>/dev/null; do \
               kill -0 {parent} 2>/dev/null || {{ kill \"$r\"; break; }}; sleep 0.2; \
             done; wait \"$r\"",
            parent = std::process::id()
        );
        let mut child = Command::new("sh")
            .args(["-c", &watchdog, "sh"])
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .args(["--logfile", ""])
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        // Readiness is the server's own log line, read as it comes (and the log drained
        // until the server exits); no polling.
        let (ready_tx, ready) = mpsc::channel();
        if let Some(log) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(log).lines().map_while(Result::ok) {
                    if line.contains("Ready to accept connections") {
                        let _ = ready_tx.send(());
                    }
                }
            });
        }
        match ready.recv_timeout(STARTUP) {
            Ok(()) if self.ping() => {
                self.child = Some(child);
                Ok(())
            }
            Ok(()) => {
                let _ = child.kill();
                Err(format!("port {} answers, but not as our Redis", self.port))
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.try_wait().ok().flatten();
                Err(format!(
                    "redis-server not ready on port {} within {STARTUP:?} (exited: {status:?}; port taken?)",
                    self.port
                ))
            }
        }
    }

    /// Stops the server (ours only: `SHUTDOWN NOSAVE`) and waits until it has exited
    /// and freed its port.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) {
                let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
                let _ = s.read(&mut [0u8; 64]);
            }
            let _ = child.wait();
        }
    }

    /// One raw inline command; its reply as text (empty when there is none).
    fn command(&self, command: &str) -> String {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = vec![0u8; 4096];
        if s.write_all(format!("{command}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// One raw `PING`.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh directory under the system's temporary directory.
fn scratch_dir(what: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_prefix(what).replace(':', "-"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs `program` with `args` in `dir`; `Err` with its output when it fails.
fn run(dir: &Path, program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() { Ok(text) } else { Err(format!("{program} {args:?} failed: {text}")) }
}

/// Makes a throwaway CA and a server certificate for 127.0.0.1 signed by it, in `dir`
/// (`ca.crt`, `server.crt`, `server.key`).
fn make_certificates(dir: &Path) -> Result<(), String> {
    let days = ["-days", "2"];
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=resilience test CA",
            days[0],
            days[1],
        ],
    )?;
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    )?;
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        .map_err(|e| e.to_string())?;
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
            days[0],
            days[1],
        ],
    )?;
    Ok(())
}

impl RedisServer {
    /// A TLS server of our own: a throwaway CA and certificate made with `openssl`, TLS
    /// on one free port ([`url`](Self::url) is `rediss://127.0.0.1:port`), plain TCP on
    /// another for the readiness check. Trust [`root_cert`](Self::root_cert) to connect.
    pub fn tls() -> Option<RedisServer> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            return unavailable("no `redis-server` binary on PATH");
        }
        let made = (|| -> Result<RedisServer, String> {
            let dir = scratch_dir("tls").map_err(|e| e.to_string())?;
            make_certificates(&dir)?;
            let root_cert = std::fs::read(dir.join("ca.crt")).map_err(|e| e.to_string())?;
            let port = free_port().map_err(|e| e.to_string())?;
            let tls_port = free_port().map_err(|e| e.to_string())?;
            let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
            let extra = vec![
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                file("server.crt"),
                "--tls-key-file".into(),
                file("server.key"),
                "--tls-ca-cert-file".into(),
                file("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
            ];
            let mut server = RedisServer {
                port,
                child: None,
                url: format!("rediss://127.0.0.1:{tls_port}"),
                extra,
                dir: Some(dir),
                root_cert: Some(root_cert),
            };
            server.start()?;
            Ok(server)
        })();
        made.map_or_else(|e| unavailable(&format!("no TLS redis-server: {e}")), Some)
    }

    /// The CA certificate (PEM) of a [`tls`](Self::tls) server.
    pub fn root_cert(&self) -> Option<&[u8]> {
        self.root_cert.as_deref()
    }
}

/// A Redis Cluster of our own: three primaries (no replicas) on free loopback ports,
/// joined with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the three nodes, creates the cluster and waits until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> Option<RedisCluster> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            return unavailable("no `redis-server` binary on PATH");
        }
        let made = (|| -> Result<RedisCluster, String> {
            let mut nodes = Vec::new();
            for _ in 0..3 {
                let dir = scratch_dir("cluster").map_err(|e| e.to_string())?;
                let port = free_port().map_err(|e| e.to_string())?;
                let extra = vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.join("nodes.conf").to_string_lossy().into_owned(),
                    "--dir".into(),
                    dir.to_string_lossy().into_owned(),
                ];
                let mut node = RedisServer {
                    port,
                    child: None,
                    url: format!("redis://127.0.0.1:{port}"),
                    extra,
                    dir: Some(dir),
                    root_cert: None,
                };
                node.start()?;
                nodes.push(node);
            }
            let addresses: Vec<String> =
                nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
            let mut args = vec!["--cluster", "create"];
            args.extend(addresses.iter().map(String::as_str));
            args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
            run(&std::env::temp_dir(), "redis-cli", &args)?;
            let cluster = RedisCluster { nodes };
            cluster.wait_until_ok()?;
            Ok(cluster)
        })();
        made.map_or_else(|e| unavailable(&format!("no Redis Cluster: {e}")), Some)
    }

    /// The nodes agree on the slots once each says `cluster_state:ok` (gossip takes a
    /// moment after `--cluster create` returns). Each check is one `redis-cli` round trip,
    /// which paces the loop: it waits on the servers, not on a timer.
    fn wait_until_ok(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + STARTUP;
        for node in &self.nodes {
            loop {
                if node.command("CLUSTER INFO").contains("cluster_state:ok") {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!("node {} not ok within {STARTUP:?}", node.port));
                }
            }
        }
        Ok(())
    }

    /// The seed node's URL (`redis://127.0.0.1:port`); the client discovers the rest.
    pub fn url(&self) -> &str {
        self.nodes[0].url()
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url().to_owned()).collect()
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A key prefix no other test uses, so tests can share one server.
pub fn unique_prefix(test: &str) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    // RandomState is seeded afresh per process and per instance.
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("test:{test}:{}:{random:x}", std::process::id())
}
