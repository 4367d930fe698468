//! A private PostgreSQL cluster, started from the server binaries installed on the machine,
//! for running without `DATABASE_URL` (and for the test suite).
//!
//! The cluster lives in a folder of its own, listens on 127.0.0.1 only (no Unix socket, so no
//! shared system folder is touched) on a free port chosen at each start, and requires a
//! password that is generated at `initdb` and kept beside the cluster, readable only by its
//! owner. PostgreSQL refuses to run as root, so when this process is root the cluster is
//! owned by and run as the `postgres` system user.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context};
use tokio_postgres::NoTls;

/// The cluster's superuser, the role croupier connects as.
pub const SUPERUSER: &str = "croupier";

/// Lowest PostgreSQL major version we support.
const MIN_MAJOR: u32 = 15;

/// How the cluster is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Durable: fsync and synchronous commit on.
    Server,
    /// For throwaway test databases: no fsync, many connections.
    Test,
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
}

impl Cluster {
    /// Starts the cluster in `dir` (creating it on first use), or adopts it if it is already
    /// running (a server or admin command started it).
    pub fn start(dir: &Path, profile: Profile) -> anyhow::Result<Self> {
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
        };
        if let Some(port) = cluster.running_port()? {
            cluster.port = port;
            tracing::info!(port, dir = %dir.display(), "adopted the running PostgreSQL cluster");
            return Ok(cluster);
        }
        cluster.port = free_port()?;
        cluster.write_config(profile)?;
        let log = dir.join("server.log");
        let status = cluster
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(dir)
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
        cluster.started_here = true;
        tracing::info!(port = cluster.port, dir = %dir.display(), "started the embedded PostgreSQL cluster");
        Ok(cluster)
    }

    /// Connection URL for database `db`. Contains the password: never log it.
    pub fn database_url(&self, db: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Whether this process started the cluster (rather than adopting a running one).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Creates database `name` if it does not exist. Returns whether it was created.
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<bool> {
        let (client, connection) = tokio_postgres::connect(&self.database_url("postgres"), NoTls)
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
        // postmaster.pid, line 4: the port.
        let pid_file = fs::read_to_string(self.dir.join("postmaster.pid"))?;
        let port = pid_file
            .lines()
            .nth(3)
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| anyhow!("unreadable postmaster.pid in {}", self.dir.display()))?;
        Ok(Some(port))
    }

    fn write_config(&self, profile: Profile) -> anyhow::Result<()> {
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
                "max_connections = 200\n\
                 shared_buffers = '256MB'\n\
                 wal_buffers = '16MB'\n\
                 checkpoint_timeout = '15min'\n\
                 max_wal_size = '4GB'\n"
            }
            Profile::Test => {
                "max_connections = 400\n\
                 shared_buffers = '128MB'\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n"
            }
        });
        let path = self.dir.join("croupier.conf");
        fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        self.give(&path)
    }

    /// A command for one of the PostgreSQL binaries, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        command_as(&self.bin, program, self.run_as.as_ref())
    }

    fn give(&self, path: &Path) -> anyhow::Result<()> {
        give_to(path, self.run_as.as_ref())
    }
}

fn command_as(bin: &Path, program: &str, run_as: Option<&SystemUser>) -> Command {
    let mut cmd = Command::new(bin.join(program));
    cmd.env("LC_ALL", "C").env_remove("PGDATA");
    if let Some(user) = run_as {
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("HOME", "/tmp").env("USER", &user.name);
    }
    cmd
}

fn give_to(path: &Path, run_as: Option<&SystemUser>) -> anyhow::Result<()> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to {}", path.display(), user.name))?;
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
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    give_to(dir, run_as)?;

    let password = hex::encode(rand::random::<[u8; 24]>());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(password_file)
        .with_context(|| format!("writing {}", password_file.display()))?;
    file.write_all(password.as_bytes())?;
    drop(file);
    give_to(password_file, run_as)?;

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
    let conf = dir.join("postgresql.conf");
    let mut file = fs::OpenOptions::new().append(true).open(&conf)?;
    writeln!(file, "\ninclude_if_exists = 'croupier.conf'")?;
    Ok(())
}

/// Finds the PostgreSQL server binaries: `pg_config --bindir`, then `PATH`, then Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first).
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    let mut too_old = None;
    for dir in candidates {
        let complete = ["postgres", "initdb", "pg_ctl"]
            .iter()
            .all(|b| dir.join(b).is_file());
        if !complete {
            continue;
        }
        match major_version(&dir) {
            Some(v) if v >= MIN_MAJOR => return Ok(dir),
            Some(v) => too_old = Some(v),
            None => {}
        }
    }
    match too_old {
        Some(v) => bail!(
            "PostgreSQL {v} found, croupier needs {MIN_MAJOR} or newer: install postgresql-{MIN_MAJOR} (or newer), or set DATABASE_URL"
        ),
        None => bail!(
            "PostgreSQL server binaries not found (initdb, pg_ctl, postgres): install the `postgresql` package (PostgreSQL {MIN_MAJOR}+), or set DATABASE_URL"
        ),
    }
}

fn major_version(bin: &Path) -> Option<u32> {
    let out = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split('.').next()?.parse().ok()
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
