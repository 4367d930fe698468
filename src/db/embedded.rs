//! A private PostgreSQL cluster, started from the server binaries installed on the machine,
//! for running without `DATABASE_URL` (and for the test suite).
//!
//! The cluster lives in a folder of its own, listens on 127.0.0.1 only (no Unix socket, so no
//! shared system folder is touched) on a free port chosen at each start, and requires a
//! password that is generated at `initdb` and kept beside the cluster, readable only by its
//! owner. PostgreSQL refuses to run as root, so when this process is root the cluster is
//! owned by and run as the `postgres` system user.
//!
//! A cluster can also be started with a server certificate ([`ServerTls`], for the tests of
//! TLS on the link): it then accepts TLS connections only.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context};

pub use super::binaries::find_bin_dir;

use super::link::{self, Limits};

/// The cluster's superuser, the role croupier connects as.
pub const SUPERUSER: &str = "croupier";

/// How the cluster is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Durable: fsync and synchronous commit on.
    Server,
    /// For throwaway test databases: no fsync, many connections.
    Test,
}

/// A certificate and its private key (PEM) for the cluster to present. Not `Debug`: the key
/// is a secret.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// An unprivileged system user to run the cluster as.
#[derive(Debug, Clone)]
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    run_as: Option<SystemUser>,
    started_here: bool,
    /// Whether the cluster accepts TLS connections only.
    tls_only: bool,
}

impl Cluster {
    /// Starts the cluster in `dir` (creating it on first use), or adopts it if it is already
    /// running (a server or admin command started it).
    pub fn start(dir: &Path, profile: Profile) -> anyhow::Result<Self> {
        Self::start_with_tls(dir, profile, None)
    }

    /// [`Cluster::start`], presenting `tls` when given one and then accepting TLS
    /// connections only.
    pub fn start_with_tls(
        dir: &Path,
        profile: Profile,
        tls: Option<&ServerTls>,
    ) -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        let run_as = if running_as_root()? {
            let user = system_user("postgres").context(
                "running as root: PostgreSQL refuses to run as root and no `postgres` system \
                 user exists to run it as (install the postgresql package, or run croupier \
                 as an ordinary user)",
            )?;
            tracing::info!(user = %user.name, "running as root: the embedded PostgreSQL cluster runs as this system user");
            Some(user)
        } else {
            None
        };
        let password_file = password_path(dir);
        if !dir.join("PG_VERSION").exists() {
            init(dir, &bin, run_as.as_ref(), &password_file)?;
        }
        let password = fs::read_to_string(&password_file)
            .with_context(|| format!("reading {}", password_file.display()))?
            .trim()
            .to_string();

        let mut cluster = Self {
            dir: dir.to_path_buf(),
            bin,
            port: 0,
            password,
            run_as,
            started_here: false,
            tls_only: tls.is_some(),
        };
        if let Some(port) = cluster.running_port()? {
            cluster.port = port;
            tracing::info!(port, dir = %dir.display(), "adopted the running PostgreSQL cluster");
            return Ok(cluster);
        }
        cluster.port = free_port()?;
        cluster.write_config(profile, tls)?;
        cluster.pg_ctl_start()?;
        cluster.started_here = true;
        tracing::info!(port = cluster.port, dir = %dir.display(), "started the embedded PostgreSQL cluster");
        Ok(cluster)
    }

    /// Starts this cluster again after `stop`, on the same port and settings. For fault
    /// injection.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl_start()
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let log = self.dir.join("server.log");
        let status = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.dir)
            .args(["-w", "-t", "60", "-s", "-l"])
            .arg(&log)
            // Its own process group: a Ctrl-C in the terminal reaches croupier, which then
            // stops the cluster in order, instead of reaching PostgreSQL directly.
            .process_group(0)
            .stdin(Stdio::null())
            .status()
            .context("running pg_ctl start")?;
        if !status.success() {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            bail!(
                "PostgreSQL did not start (see {}):\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Connection URL for database `db`. Contains the password: never log it.
    ///
    /// It says `sslmode=disable` on a plain cluster: on loopback, with no certificate, asking
    /// for TLS first (libpq's default `prefer`) would cost every connection a round trip and
    /// protect nothing. A TLS-only cluster's says `sslmode=require`.
    pub fn database_url(&self, db: &str) -> String {
        let tls = if self.tls_only {
            "sslmode=require"
        } else {
            "sslmode=disable"
        };
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{db}?{tls}",
            self.password, self.port
        )
    }

    /// Whether this process started the cluster (rather than adopting a running one).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Creates database `name` if it does not exist. Returns whether it was created.
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<bool> {
        let (client, connection) =
            link::connect(&self.database_url("postgres"), Limits::unlimited())
                .await
                .context("connecting to the embedded PostgreSQL cluster")?;
        let driver = tokio::spawn(connection);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some();
        if !exists {
            let quoted = name.replace('"', "\"\"");
            client
                .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
                .await?;
        }
        drop(client);
        let _ = driver.await;
        Ok(!exists)
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the cluster (fast shutdown: open transactions are rolled back, committed data
    /// is safe).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl_stop("fast")
    }

    /// Stops the cluster as a crash would (immediate shutdown: every process quits at once,
    /// no checkpoint; the next start recovers from the WAL). For fault injection.
    pub fn stop_immediately(&self) -> anyhow::Result<()> {
        self.pg_ctl_stop("immediate")
    }

    fn pg_ctl_stop(&self, mode: &str) -> anyhow::Result<()> {
        let status = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", mode, "-w", "-s"])
            .stdin(Stdio::null())
            .status()
            .context("running pg_ctl stop")?;
        if !status.success() {
            bail!("pg_ctl stop -m {mode} failed for {}", self.dir.display());
        }
        tracing::info!(dir = %self.dir.display(), mode, "stopped the embedded PostgreSQL cluster");
        Ok(())
    }

    /// The port of the postmaster running on this folder, if one is.
    fn running_port(&self) -> anyhow::Result<Option<u16>> {
        let status = self
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running pg_ctl status")?;
        if !status.success() {
            return Ok(None);
        }
        Ok(Some(self.pid_file_line(4)?))
    }

    /// The running postmaster's process id.
    pub fn postmaster_pid(&self) -> anyhow::Result<u32> {
        self.pid_file_line(1)
    }

    /// Line `n` (from 1) of `postmaster.pid`: 1 is the process id, 4 the port.
    fn pid_file_line<T: std::str::FromStr>(&self, n: usize) -> anyhow::Result<T> {
        let pid_file = fs::read_to_string(self.dir.join("postmaster.pid"))?;
        pid_file
            .lines()
            .nth(n - 1)
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| anyhow!("unreadable postmaster.pid in {}", self.dir.display()))
    }

    fn write_config(&self, profile: Profile, tls: Option<&ServerTls>) -> anyhow::Result<()> {
        let mut conf = format!(
            "# Written by croupier at every start; edit postgresql.conf for lasting changes.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = ''\n\
             password_encryption = 'scram-sha-256'\n",
            self.port
        );
        conf.push_str(match profile {
            Profile::Server => {
                // Each setting is explained in the README ("The embedded cluster's settings").
                "max_connections = 200\n\
                 shared_buffers = '256MB'\n\
                 wal_buffers = '16MB'\n\
                 checkpoint_timeout = '15min'\n\
                 max_wal_size = '4GB'\n\
                 checkpoint_completion_target = 0.9\n\
                 wal_compression = lz4\n\
                 jit = off\n\
                 autovacuum_vacuum_cost_limit = 2000\n"
            }
            Profile::Test => {
                "max_connections = 400\n\
                 shared_buffers = '128MB'\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n"
            }
        });
        if let Some(tls) = tls {
            conf.push_str(&self.write_tls(tls)?);
        }
        let path = self.dir.join("croupier.conf");
        write_owned(&path, conf.as_bytes(), 0o600, self.run_as.as_ref())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the certificate, its key (readable by the cluster's owner only, as PostgreSQL
    /// wants) and a client authentication file that accepts TLS connections only. Returns the
    /// settings that use them.
    fn write_tls(&self, tls: &ServerTls) -> anyhow::Result<String> {
        let dir = fs::canonicalize(&self.dir)?;
        let files = [
            ("server.crt", tls.cert_pem.as_str(), 0o644),
            ("server.key", tls.key_pem.as_str(), 0o600),
            (
                "croupier_hba.conf",
                "hostssl all all 127.0.0.1/32 scram-sha-256\n",
                0o600,
            ),
        ];
        for (name, text, mode) in files {
            let path = dir.join(name);
            write_owned(&path, text.as_bytes(), mode, self.run_as.as_ref())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(format!(
            "ssl = on\n\
             ssl_cert_file = '{0}/server.crt'\n\
             ssl_key_file = '{0}/server.key'\n\
             hba_file = '{0}/croupier_hba.conf'\n",
            dir.display()
        ))
    }

    /// A command for one of the PostgreSQL binaries, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        command_as(&self.bin, program, self.run_as.as_ref())
    }
}

/// A PostgreSQL program with an environment of its own: none of croupier's (which holds
/// secrets: database URLs, provider credentials) reaches the cluster's processes.
fn command_as(bin: &Path, program: &str, run_as: Option<&SystemUser>) -> Command {
    let mut cmd = Command::new(bin.join(program));
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C");
    if let Some(user) = run_as {
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("HOME", "/tmp").env("USER", &user.name);
    }
    cmd
}

/// Writes `path`, in a directory the cluster's owner can write to, without following a link
/// planted there: the contents go to a new file beside it (created exclusively, so never
/// through a link), given to the owner through its descriptor, then renamed over `path` (a
/// rename replaces a link, never its target).
fn write_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    run_as: Option<&SystemUser>,
) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let written = (|| {
        file.write_all(contents)?;
        if let Some(user) = run_as {
            std::os::unix::fs::fchown(&file, Some(user.uid), Some(user.gid))?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// Gives the directory `dir` (croupier just made it) to the cluster's owner; refused if it is
/// a link.
fn give_dir(dir: &Path, run_as: Option<&SystemUser>) -> anyhow::Result<()> {
    if !fs::symlink_metadata(dir)?.file_type().is_dir() {
        bail!("{} is not a directory (a link?)", dir.display());
    }
    if let Some(user) = run_as {
        std::os::unix::fs::lchown(dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to {}", dir.display(), user.name))?;
    }
    Ok(())
}

fn password_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pg".into());
    dir.with_file_name(format!("{name}.password"))
}

fn init(
    dir: &Path,
    bin: &Path,
    run_as: Option<&SystemUser>,
    password_file: &Path,
) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    give_dir(dir, run_as)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;

    let password = hex::encode(rand::random::<[u8; 24]>());
    write_owned(password_file, password.as_bytes(), 0o600, run_as)
        .with_context(|| format!("writing {}", password_file.display()))?;

    tracing::info!(dir = %dir.display(), "creating the embedded PostgreSQL cluster (initdb)");
    let output = command_as(bin, "initdb", run_as)
        .arg("-D")
        .arg(dir)
        .args([
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", password_file.display()))
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    // initdb ran as the owner, who could have put a link here: opened without following one.
    let conf = dir.join("postgresql.conf");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&conf)
        .with_context(|| format!("opening {}", conf.display()))?;
    writeln!(file, "\ninclude_if_exists = 'croupier.conf'")?;
    Ok(())
}

fn running_as_root() -> anyhow::Result<bool> {
    // /proc/self is owned by the effective user.
    Ok(fs::metadata("/proc/self")?.uid() == 0)
}

fn system_user(name: &str) -> anyhow::Result<SystemUser> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [n, _, uid, gid, ..] if *n == name => Some(SystemUser {
                    name: name.to_string(),
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            }
        })
        .ok_or_else(|| anyhow!("no system user `{name}`"))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free local port")?;
    Ok(listener.local_addr()?.port())
}
