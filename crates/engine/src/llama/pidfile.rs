//! A pid file per running server in `state/`, so that the next launch can end a
//! server the app left behind (a crash on a platform without a parent-death
//! signal, a power-user's `kill -9` of the app on macOS).
//!
//! Leftovers are ended, never re-adopted: the app would not know the server's
//! configuration for sure, its logs went to a pipe that no longer exists, and a
//! start takes well under a second for cached models anyway. A pid is only
//! signalled when it is still the same process: its start time (Linux:
//! `/proc/<pid>/stat`) matches the one recorded, and its command line still names
//! the recorded binary; a server whose recorded owner (a Switchyard process with
//! the recorded start time) still runs is left to that owner.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fs_atomic;

const PREFIX: &str = "llama-";
const SUFFIX: &str = ".pid.json";
/// How long an ended leftover may take to disappear.
const LEFTOVER_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    pub instance: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux); `None` elsewhere.
    pub start_ticks: Option<u64>,
    pub binary: PathBuf,
    pub port: u16,
    pub owner_pid: u32,
    pub owner_start_ticks: Option<u64>,
}

pub fn path_for(state_dir: &Path, instance: &str) -> PathBuf {
    state_dir.join(format!("{PREFIX}{instance}{SUFFIX}"))
}

pub fn write(state_dir: &Path, record: &PidRecord) {
    if let Err(error) = fs_atomic::write_json(&path_for(state_dir, &record.instance), record) {
        tracing::warn!(%error, "cannot write the pid file");
    }
}

pub fn remove(state_dir: &Path, instance: &str) {
    let _ = std::fs::remove_file(path_for(state_dir, instance));
}

/// Start time in clock ticks since boot: field 22 of `/proc/<pid>/stat`, counted
/// after the command name (which may itself hold spaces and parentheses).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` runs and is not a zombie waiting for its parent.
pub fn is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    } else {
        signal_exists(pid)
    }
}

#[cfg(unix)]
fn signal_exists(pid: u32) -> bool {
    i32::try_from(pid)
        .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

#[cfg(not(unix))]
fn signal_exists(_pid: u32) -> bool {
    false
}

/// The program a pid runs, from `/proc/<pid>/cmdline` (argv[0]).
fn program_of(pid: u32) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|byte| *byte == 0).next()?;
    Some(PathBuf::from(String::from_utf8_lossy(first).into_owned()))
}

/// This process, as owners are recorded.
pub fn this_process() -> (u32, Option<u64>) {
    let pid = std::process::id();
    (pid, start_ticks(pid))
}

/// Still the process the record describes (not a reused pid)?
fn is_recorded_server(record: &PidRecord) -> bool {
    if !is_running(record.pid) {
        return false;
    }
    if record.start_ticks.is_some() && start_ticks(record.pid) != record.start_ticks {
        return false;
    }
    let Some(program) = program_of(record.pid) else {
        return false;
    };
    program == record.binary || program.file_name() == record.binary.file_name()
}

fn owner_still_runs(record: &PidRecord) -> bool {
    let (me, _) = this_process();
    record.owner_pid != me
        && is_running(record.owner_pid)
        && record.owner_start_ticks.is_some()
        && start_ticks(record.owner_pid) == record.owner_start_ticks
}

/// A leftover server that was found and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedLeftover {
    pub instance: String,
    pub pid: u32,
    pub port: u16,
}

/// Ends every leftover server recorded in `state_dir` and removes stale pid
/// files. Blocking (at most a few seconds when a server refuses to die); called
/// once when the engine starts.
pub fn end_leftovers(state_dir: &Path) -> Vec<EndedLeftover> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let record: Option<PidRecord> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let Some(record) = record else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if owner_still_runs(&record) {
            continue;
        }
        if is_recorded_server(&record) {
            tracing::warn!(
                instance = record.instance,
                pid = record.pid,
                "ending a llama-server left behind by an earlier run"
            );
            end_process(record.pid);
            ended.push(EndedLeftover {
                instance: record.instance.clone(),
                pid: record.pid,
                port: record.port,
            });
        }
        let _ = std::fs::remove_file(&path);
    }
    ended
}

/// SIGKILL: a leftover serves nobody (its app is gone) and llama-server keeps
/// nothing on disk that a clean exit would save.
fn end_process(pid: u32) {
    #[cfg(unix)]
    {
        use nix::sys::signal::Signal;
        // Our servers lead their own process group; signal the group when it is
        // theirs, else the process alone.
        let pid_i32 = i32::try_from(pid).unwrap_or(0);
        let leads_group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid_i32)))
            .is_ok_and(|group| group.as_raw() == pid_i32);
        if leads_group {
            super::process::signal_group(pid, Signal::SIGKILL);
        } else {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_i32), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + LEFTOVER_DEADLINE;
    while is_running(pid) && Instant::now() < deadline {
        std::thread::sleep(super::process::GONE_POLL);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_start_time() {
        let (pid, ticks) = this_process();
        assert!(ticks.is_some());
        assert!(is_running(pid));
        assert_eq!(start_ticks(pid), ticks);
    }

    #[test]
    fn a_pid_file_for_another_program_is_removed_but_nothing_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let record = PidRecord {
            instance: "x".into(),
            pid: sleeper.id(),
            start_ticks: start_ticks(sleeper.id()),
            binary: "/opt/llama/llama-server".into(),
            port: 1,
            owner_pid: u32::MAX,
            owner_start_ticks: None,
        };
        write(dir.path(), &record);
        assert!(end_leftovers(dir.path()).is_empty());
        assert!(is_running(sleeper.id()), "sleep is not a llama-server");
        assert!(!path_for(dir.path(), "x").exists());
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
}
