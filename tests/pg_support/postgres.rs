//! A real PostgreSQL for the tests, never a system service: `initdb` in a temporary directory
//! (as the `postgres` user when the tests run as root, which `initdb` requires), `pg_ctl start`
//! on a free loopback port with its socket in that directory, one database, and `pg_ctl stop`
//! on drop. `None` when the binaries are not installed (`.ci/setup.sh` installs them).
//! [`Postgres::start_tls`] serves TLS only (`hostssl` alone in `pg_hba.conf`), with a CA and
//! a server certificate made by `openssl` in the same directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Run the server's tools as `postgres` (we are root).
    as_postgres: bool,
    /// `ssl=on` with `server.crt`/`server.key` in the directory, and only `hostssl` allowed.
    tls: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `openssl` with `args` (split on spaces) in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &str) {
    run(Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir));
}

/// A self-signed CA (`<name>.crt`, `<name>.key`) in `dir`: P-256, valid for two days.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {name}.key -out {name}.crt -days 2 -subj /CN=ingest-edge-test-{name} \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    );
}

impl Postgres {
    /// Starts a fresh cluster with database `edges`; `None` if PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        Self::start_with(false)
    }

    /// As [`Postgres::start`], serving TLS only: `ca.crt` signed `server.crt`, which names
    /// `localhost` only (not `127.0.0.1`, so `verify-full` and `verify-ca` differ when dialled
    /// by address); `other-ca.crt` signed nothing. Plain connections are refused by
    /// `pg_hba.conf` (`hostssl` only).
    pub fn start_tls() -> Option<Postgres> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Postgres> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("ingest-edge-pg")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let pg = Postgres {
            bin,
            port: free_port(),
            dir,
            as_postgres,
            tls,
        };
        let data = pg.data();
        pg.tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        if tls {
            pg.make_certificates();
        }
        pg.start_again();
        pg.tool(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "edges",
            ],
        );
        Some(pg)
    }

    /// The CAs and the server's certificate; `pg_hba.conf` allowing TLS sessions only.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        make_ca(dir, "ca");
        make_ca(dir, "other-ca");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout server.key -out server.csr -subj /CN=localhost",
        );
        openssl(
            dir,
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
             -out server.crt -days 2 -extfile server.ext",
        );
        // The server refuses a key others can read; it runs as `postgres`.
        run(Command::new("chmod").arg("600").arg(dir.join("server.key")));
        if self.as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.join("server.key"))
                .arg(dir.join("server.crt")));
        }
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";
        // Overwritten in place, so it keeps its owner.
        std::fs::write(self.data().join("pg_hba.conf"), hba).unwrap();
    }

    /// A root CA file for `sslrootcert`: `ca` (signed the server's certificate) or `other-ca`.
    pub fn ca(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.crt"))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The edges' `store.url`. The password is ignored (trust) but lets tests check it is
    /// never printed.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:never-logged-pw@127.0.0.1:{}/edges",
            self.port
        )
    }

    /// `pg_ctl start` (again, after [`Postgres::stop`]), waiting until it accepts connections.
    pub fn start_again(&self) {
        let mut opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.dir.path().display(),
            self.port
        );
        if self.tls {
            let dir = self.dir.path().display();
            opts += &format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
            );
        }
        let log = self.dir.path().join("server.log");
        self.tool(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: sessions are cut, as in a database outage.
    pub fn stop(&self) {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// One SQL statement through `psql`; its unaligned output.
    pub fn sql(&self, sql: &str) -> String {
        let out = self.tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "edges",
                "-Atc",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // `/` is readable by postgres; the test's own working directory may not be.
        cmd.args(args).current_dir("/");
        run(&mut cmd)
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .current_dir("/")
            .output();
    }
}
