//! A real `redis-server` for tests: its own process on a free loopback port with a temporary
//! directory, no persistence, stopped when dropped. `None` (the caller prints SKIPPED) when
//! the binary is missing; `.ci/setup.sh` installs Debian's `redis-server`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    /// Where a stopped server is started again (same port, same directory).
    dir: tempfile::TempDir,
    /// A second, TLS-only port and its certificate, key and CA files (see [`Redis::start_tls`]).
    tls: Option<(u16, [std::path::PathBuf; 3])>,
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}

fn binary() -> Option<&'static str> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

impl Redis {
    pub fn start() -> Option<Redis> {
        Self::launch(None)
    }

    /// As [`Redis::start`], and TLS on a second port with this certificate chain and key
    /// (PEM files; `ca` is what the server would check client certificates against, which it
    /// does not ask for). The plain port stays, for the test's own [`Redis::command`].
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Option<Redis> {
        Self::launch(Some([cert.into(), key.into(), ca.into()]))
    }

    fn launch(tls_files: Option<[std::path::PathBuf; 3]>) -> Option<Redis> {
        binary()?;
        let tls = match tls_files {
            Some(files) => Some((free_port()?, files)),
            None => None,
        };
        let mut r = Redis {
            child: None,
            port: free_port()?,
            dir: tempfile::tempdir().ok()?,
            tls,
        };
        r.restart();
        Some(r)
    }

    /// `rediss://127.0.0.1:<TLS port>`, when started with [`Redis::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(port, _)| format!("rediss://127.0.0.1:{port}"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and waits until it answers `PING`.
    pub fn restart(&mut self) {
        let Some(bin) = binary() else { return };
        let mut cmd = Command::new(bin);
        if let Some((port, [cert, key, ca])) = &self.tls {
            cmd.args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(ca);
        }
        let child = cmd
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            // `DEBUG SLEEP` from loopback (tests pause the server with it).
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .command(&["PING"])
                .is_some_and(|r| r.starts_with("+PONG"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One command over a fresh connection; the raw reply, `None` when the server is away.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// `DEBUG SLEEP secs` from a thread: the server answers nothing meanwhile.
    pub fn pause(&self, secs: f64) -> std::thread::JoinHandle<()> {
        let port = self.port;
        std::thread::spawn(move || {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let secs = secs.to_string();
                let req = format!(
                    "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{secs}\r\n",
                    secs.len()
                );
                let _ = s.write_all(req.as_bytes());
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = s.read(&mut [0u8; 64]);
            }
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
