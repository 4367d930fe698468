//! The embedded cluster's launcher: PostgreSQL gets none of croupier's environment, and the
//! files written into the cluster's folder (which its owner controls) are never written
//! through a link planted there.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use croupier::db::embedded::{Cluster, Profile};

fn postmaster_environment(data: &Path) -> Vec<String> {
    let pid_file = fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
    let pid = pid_file.lines().next().expect("a pid").trim().to_string();
    let environ = fs::read(format!("/proc/{pid}/environ")).expect("the postmaster's environ");
    environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn the_cluster_gets_no_croupier_environment_and_follows_no_planted_link() {
    let dir = std::env::temp_dir().join(format!("croupier-launcher-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let data = dir.join("pg");
    let cluster = Cluster::start(&data, Profile::Test).expect("the cluster starts");

    // Nothing of this process's environment reaches PostgreSQL but what it is given.
    // (PWD, SHLVL and _ are set by the shell pg_ctl starts the server through.)
    let given = ["PATH", "LC_ALL", "HOME", "USER", "PWD", "SHLVL", "_"];
    let theirs = postmaster_environment(&data);
    // (Named, not shown: a value may be a secret.)
    let leaked: Vec<String> = std::env::vars()
        .filter(|(k, _)| !given.contains(&k.as_str()))
        .filter(|(k, v)| theirs.contains(&format!("{k}={v}")))
        .map(|(k, _)| k)
        .collect();
    assert!(leaked.is_empty(), "inherited: {leaked:?}");
    cluster.stop().expect("the cluster stops");

    // The cluster's owner plants a link where croupier writes its settings at start.
    let victim = dir.join("victim.txt");
    fs::write(&victim, "untouched").unwrap();
    let before = fs::metadata(&victim).unwrap();
    let conf = data.join("croupier.conf");
    fs::remove_file(&conf).unwrap();
    std::os::unix::fs::symlink(&victim, &conf).unwrap();

    let cluster = Cluster::start(&data, Profile::Test).expect("the cluster starts again");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    let after = fs::metadata(&victim).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert!(fs::symlink_metadata(&conf).unwrap().file_type().is_file());
    assert!(fs::read_to_string(&conf)
        .unwrap()
        .contains("listen_addresses"));
    cluster.stop().expect("the cluster stops");
    let _ = fs::remove_dir_all(&dir);
}
