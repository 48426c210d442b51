//! The dashboard in a real browser: the admin example runs with 300 extra named
//! instances, failures are driven through its `payments` circuit until it opens, and
//! headless Chromium (`--dump-dom` after a virtual time budget, so the page's scripts
//! have fetched and rendered the stats) must show that circuit open. A screenshot is
//! saved under the target directory for a person to look at.
//!
//! Ignored, with the reason, where no `chromium` is on `PATH`; CI installs it and sets
//! `RESILIENCE_CHROMIUM_REQUIRED=1`, which turns a missing browser into a build failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The example service, killed on drop.
struct Service {
    child: Child,
    /// `host:port`.
    addr: String,
    /// The dashboard's URL.
    dashboard: String,
    /// Kept open: the example prints more than the first line.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_admin"))
        .args(["--port", "0", "--instances", "300", "--duration", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the admin example starts");
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let dashboard = first.trim().strip_prefix("dashboard: ").expect("prints the URL").to_owned();
    let addr = dashboard
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    Service { child, addr, dashboard, _stdout: stdout }
}

/// A plain HTTP/1.1 GET: the status and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the service listens");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Runs headless Chromium with `args` on `url`, killed after a minute; its stdout.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let child = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    // The browser's exit, awaited on a thread of its own: the test blocks on a channel
    // with a one-minute bound (no timing is asserted), never on a polling sleep.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => String::from_utf8(output.expect("chromium runs").stdout)
            .expect("chromium's output is UTF-8"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("chromium {args:?} {url} did not finish within a minute");
        }
    }
}

fn dump_dom(profile: &Path, url: &str) -> String {
    chromium(profile, &["--virtual-time-budget=5000", "--dump-dom"], url)
}

fn row<'d>(dom: &'d str, name: &str) -> &'d str {
    let start = dom.find(&format!("<tr data-name=\"{name}\"")).unwrap_or_else(|| {
        panic!("no row for {name} in the page:\n{}", &dom[..dom.len().min(4000)])
    });
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[test]
#[cfg_attr(
    resilience_no_chromium,
    ignore = "needs `chromium` on PATH (CI installs Debian's package)"
)]
fn the_dashboard_shows_a_circuit_opened_by_failures() {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let profile = target.join("chromium-profile");
    let service = start();
    // `events=off`: an open event stream would keep the page loading forever, and the
    // virtual time budget from ever running out; the page polls the stats instead.
    let page = format!("{}?events=off", service.dashboard);

    let before = dump_dom(&profile, &page);
    assert!(
        row(&before, "payments").contains("data-state=\"closed\""),
        "{}",
        row(&before, "payments")
    );
    let tenants = before.matches("<tr data-name=\"tenant-").count();
    assert!(tenants >= 300, "every named instance is listed ({tenants} tenant rows)");

    // Drive failures until the circuit rejects calls.
    let opened = (0..1000).any(|_| http_get(&service.addr, "/api/payments/fail").0 == 503);
    assert!(opened, "the payments circuit opened under failures");

    let after = dump_dom(&profile, &page);
    let payments = row(&after, "payments");
    assert!(payments.contains("data-state=\"open\""), "{payments}");
    assert!(payments.contains("st-open"), "the state is shown in the open colour: {payments}");
    assert!(after.contains("health: down"), "the header shows the service down");
    let filtered = dump_dom(&profile, &format!("{page}&filter=payments"));
    // Rows rendered, not the script's templates for them.
    let rows = filtered.matches("<tr data-name=\"").count()
        - filtered.matches("<tr data-name=\"${").count();
    assert_eq!(rows, 1, "the filter keeps one row");

    let shot = target.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    // 1400 x 860 CSS pixels at 0.7: the layout of a desktop window in a small PNG (the
    // README's picture, docs/dashboard.png, is this file).
    let args =
        ["--virtual-time-budget=5000", "--window-size=1400,860", "--force-device-scale-factor=0.7"];
    chromium(&profile, &[&args[..], &[arg.as_str()]].concat(), &page);
    let png = std::fs::read(&shot).expect("chromium saved the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("dashboard screenshot: {}", shot.display());
}
