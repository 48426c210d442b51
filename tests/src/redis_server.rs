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
}

/// Why no Redis is available.
fn unavailable(why: &str) -> Option<RedisServer> {
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
                Some(RedisServer { port: port.unwrap_or(6379), child: None, url })
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
        let mut server =
            RedisServer { port, child: None, url: format!("redis://127.0.0.1:{port}") };
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
