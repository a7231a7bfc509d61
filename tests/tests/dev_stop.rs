//! `medmesh dev` never leaves replicas behind: SIGTERM stops every replica it started, and
//! replicas whose `medmesh dev` was killed outright stop by themselves.

use std::process::Stdio;
use std::time::Duration;

use medmesh_tests::{binary, dev_endpoints, free_base_port, wait_until};

/// A started `medmesh dev`: the process, its replicas' pids and their endpoints.
struct Dev {
    child: tokio::process::Child,
    replicas: Vec<u32>,
    endpoints: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Starts `medmesh dev` with one province (the federation's and the province's 3 replicas)
/// and waits until it prints `ready`.
async fn start_dev() -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let mut child = tokio::process::Command::new(binary())
        .args(["dev", "--provinces", "1", "--persons", "4", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("medmesh dev starts");
    let endpoints = dev_endpoints(child.stdout.take().unwrap()).await;
    assert_eq!(endpoints.len(), 6, "the federation and one province x three replicas: {endpoints:?}");
    let replicas = children_of(child.id().expect("dev runs"));
    assert_eq!(replicas.len(), 6, "medmesh dev runs six replica processes: {replicas:?}");
    Dev { child, replicas, endpoints, _dir: dir }
}

/// `(ppid, state)` of a process from `/proc/<pid>/stat`, if it exists.
fn stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let mut rest = s[s.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Pids of the live children of `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| stat(*pid).is_some_and(|(ppid, state)| ppid == parent && state != 'Z'))
        .collect();
    pids.sort();
    pids
}

/// Whether a process still runs (a zombie has ended; only its parent has not reaped it yet).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z')
}

/// Waits until no replica process of `dev` runs and every one of its ports can be bound.
async fn wait_all_gone(dev: &Dev, timeout: Duration) {
    wait_until(timeout, "every replica to end and free its port", || async {
        let running: Vec<u32> = dev.replicas.iter().copied().filter(|p| alive(*p)).collect();
        let busy: Vec<&String> =
            dev.endpoints.iter().filter(|a| std::net::TcpListener::bind(a.as_str()).is_err()).collect();
        (running.is_empty() && busy.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_replica_of_medmesh_dev() {
    let mut dev = start_dev().await;
    let pid = dev.child.id().unwrap();
    let ok = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
    assert!(ok.success());
    let status = tokio::time::timeout(Duration::from_secs(30), dev.child.wait())
        .await
        .expect("medmesh dev ends within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "medmesh dev exits cleanly on SIGTERM: {status}");
    // dev reaps its replicas before it exits.
    assert!(dev.replicas.iter().all(|p| !alive(*p)), "replicas left running: {:?}", children_of(pid));
    wait_all_gone(&dev, Duration::from_secs(10)).await;
}

/// A replica runs with glibc's malloc bounded to two arenas (resident memory under load,
/// BENCHMARKS.md), set by the replica itself: unless the environment it was started with
/// already chose, in which case that choice is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_with_malloc_arenas_bounded() {
    let dev = start_dev().await;
    // What the replicas inherit decides: an operator's MALLOC_ARENA_MAX is kept; with glibc's
    // tunables set instead, none is added; otherwise the replica sets 2.
    let own = std::env::var("MALLOC_ARENA_MAX").ok();
    let tunables = std::env::var_os("GLIBC_TUNABLES").is_some();
    let want = match (own, tunables) {
        (Some(v), _) => Some(format!("MALLOC_ARENA_MAX={v}")),
        (None, true) => None,
        (None, false) => Some("MALLOC_ARENA_MAX=2".to_string()),
    };
    for pid in &dev.replicas {
        let env = std::fs::read(format!("/proc/{pid}/environ")).expect("a replica's environment is readable");
        let vars: Vec<String> = env.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        let arenas = vars.iter().find(|v| v.starts_with("MALLOC_ARENA_MAX="));
        assert_eq!(arenas, want.as_ref(), "replica {pid}'s MALLOC_ARENA_MAX");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_stop_when_medmesh_dev_is_killed() {
    let mut dev = start_dev().await;
    dev.child.start_kill().unwrap();
    dev.child.wait().await.unwrap();
    // Each replica notices its parent is gone within a second and stops gracefully (at most
    // 10 s), so 30 s is ample.
    wait_all_gone(&dev, Duration::from_secs(30)).await;
}
