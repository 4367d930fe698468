//! Where the PostgreSQL server binaries are, and whether they are new enough.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

/// Lowest PostgreSQL major version we support.
pub const MIN_MAJOR: u32 = 15;

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
