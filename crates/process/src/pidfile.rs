//! A pid file per running child in `state/` (`llama-<instance>.pid.json`,
//! `sd-<pid>.pid.json`, `probe-<pid>.pid.json`), so that the next launch can end a
//! child the app left behind (a crash on a platform without a parent-death signal,
//! a power-user's `kill -9` of the app on macOS).
//!
//! Leftovers are ended, never re-adopted: the app would not know a server's
//! configuration for sure, its logs went to a pipe that no longer exists, and a
//! start takes well under a second for cached models anyway. A pid is only
//! signalled when it is still the same process: its start time (Linux:
//! `/proc/<pid>/stat`; elsewhere sysinfo) matches the one recorded, and its
//! command line still names the recorded binary; a child whose recorded owner (a
//! Switchyard process with the recorded start time) still runs is left to that
//! owner.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use switchyard_base::fs_atomic;

const SUFFIX: &str = ".pid.json";
/// How long an ended leftover may take to disappear.
const LEFTOVER_DEADLINE: Duration = Duration::from_secs(3);

/// What a child is, which names its pid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A llama-server instance, recorded by its name.
    LlamaServer,
    /// sd-cli (one per image) or sd-server, recorded by pid.
    Sd,
    /// A short run: a binary's test, `--help`, `--list-devices`; by pid.
    Probe,
}

impl ChildKind {
    const ALL: [Self; 3] = [Self::LlamaServer, Self::Sd, Self::Probe];

    fn prefix(self) -> &'static str {
        match self {
            Self::LlamaServer => "llama-",
            Self::Sd => "sd-",
            Self::Probe => "probe-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The key of its file: the instance's name for llama-server, else the
    /// program's file name.
    pub instance: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux); `None` elsewhere.
    pub start_ticks: Option<u64>,
    pub binary: PathBuf,
    pub port: u16,
    pub owner_pid: u32,
    pub owner_start_ticks: Option<u64>,
}

/// A running child's record, removed when dropped (its owner has seen it end, or
/// ends it).
#[derive(Debug)]
pub struct PidFile {
    path: Option<PathBuf>,
}

impl PidFile {
    /// Records child `pid` of `kind` running `binary` (and listening on `port`,
    /// 0 for none). A file that cannot be written is said in the log: the child
    /// still runs, guarded by the parent-death signal where there is one.
    pub fn record(
        state_dir: &Path,
        kind: ChildKind,
        instance: Option<&str>,
        pid: u32,
        binary: &Path,
        port: u16,
    ) -> Self {
        let (owner_pid, owner_start_ticks) = this_process();
        let program = binary.file_name().map_or_else(
            || "child".into(),
            |name| name.to_string_lossy().into_owned(),
        );
        let key = instance.map_or_else(|| pid.to_string(), str::to_owned);
        let record = PidRecord {
            instance: instance.map_or(program, str::to_owned),
            pid,
            start_ticks: start_ticks(pid),
            binary: binary.to_path_buf(),
            port,
            owner_pid,
            owner_start_ticks,
        };
        let path = state_dir.join(format!("{}{key}{SUFFIX}", kind.prefix()));
        match fs_atomic::write_json(&path, &record) {
            Ok(()) => Self { path: Some(path) },
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot write a pid file");
                Self { path: None }
            }
        }
    }

    /// No record (no state folder given).
    pub fn none() -> Self {
        Self { path: None }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Who a pid is: when it started and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    /// Linux: clock ticks since boot (`/proc/<pid>/stat` field 22); elsewhere
    /// seconds since the epoch (sysinfo).
    start: u64,
    /// argv[0] (Linux) or the executable.
    program: PathBuf,
}

/// The running (not zombie) process `pid`, if any.
#[cfg(target_os = "linux")]
fn identify(pid: u32) -> Option<Identity> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields are counted after the command name, which may hold spaces and `)`.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if matches!(fields.first(), Some(&("Z" | "X")) | None) {
        return None;
    }
    let start = fields.get(19)?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|byte| *byte == 0).next()?;
    Some(Identity {
        start,
        program: PathBuf::from(String::from_utf8_lossy(first).into_owned()),
    })
}

#[cfg(not(target_os = "linux"))]
fn identify(pid: u32) -> Option<Identity> {
    identify_with_sysinfo(pid)
}

/// The portable way (macOS, Windows); Linux reads `/proc` directly, which is
/// cheaper and gives argv[0] as spawned.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn identify_with_sysinfo(pid: u32) -> Option<Identity> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};
    let pid = Pid::from_u32(pid);
    let mut system = System::new().ok()?;
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing()
            .with_exe(UpdateKind::Always)
            .with_cmd(UpdateKind::Always),
    );
    let process = system.process(pid)?;
    if matches!(
        process.status(),
        ProcessStatus::Zombie | ProcessStatus::Dead
    ) {
        return None;
    }
    let program = process
        .exe()
        .map(Path::to_path_buf)
        .or_else(|| process.cmd().first().map(PathBuf::from))?;
    Some(Identity {
        start: process.start_time(),
        program,
    })
}

/// When `pid` started (see [`Identity::start`]); `None` when it does not run.
pub fn start_ticks(pid: u32) -> Option<u64> {
    identify(pid).map(|identity| identity.start)
}

/// Whether `pid` runs and is not a zombie waiting for its parent.
pub fn is_running(pid: u32) -> bool {
    identify(pid).is_some()
}

/// This process, as owners are recorded.
pub fn this_process() -> (u32, Option<u64>) {
    let pid = std::process::id();
    (pid, start_ticks(pid))
}

/// Still the process the record describes (not a reused pid)?
fn is_recorded_server(record: &PidRecord) -> bool {
    let Some(identity) = identify(record.pid) else {
        return false;
    };
    if record
        .start_ticks
        .is_some_and(|start| start != identity.start)
    {
        return false;
    }
    identity.program == record.binary || identity.program.file_name() == record.binary.file_name()
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
        let ours = ChildKind::ALL
            .iter()
            .any(|kind| name.starts_with(kind.prefix()));
        if !(ours && name.ends_with(SUFFIX)) {
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
                "ending a child (llama-server, sd, a probe) left behind by an earlier run"
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
            super::signal_group(pid, Signal::SIGKILL);
        } else {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_i32), Signal::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
        let target = Pid::from_u32(pid);
        if let Ok(mut system) = System::new() {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[target]),
                true,
                ProcessRefreshKind::nothing(),
            );
            if let Some(process) = system.process(target) {
                process.kill();
            }
        }
    }
    let deadline = Instant::now() + LEFTOVER_DEADLINE;
    while is_running(pid) && Instant::now() < deadline {
        std::thread::sleep(super::GONE_POLL);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_portable_identity_finds_the_same_program() {
        let (pid, _) = this_process();
        let portable = identify_with_sysinfo(pid).unwrap();
        let proc_fs = identify(pid).unwrap();
        assert_eq!(portable.program.file_name(), proc_fs.program.file_name());
        assert!(portable.start > 1_600_000_000, "seconds since the epoch");
    }

    #[test]
    fn reads_this_process_start_time() {
        let (pid, ticks) = this_process();
        assert!(ticks.is_some());
        assert!(is_running(pid));
        assert_eq!(start_ticks(pid), ticks);
    }

    #[test]
    fn an_sd_left_behind_is_ended_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut sd = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let record = PidFile::record(
            dir.path(),
            ChildKind::Sd,
            None,
            sd.id(),
            Path::new("/usr/bin/sleep"),
            0,
        );
        let file = record.path().unwrap().to_path_buf();
        assert!(file.ends_with(format!("sd-{}.pid.json", sd.id())));
        // The app that recorded it crashed: the record stays.
        std::mem::forget(record);
        let ended = end_leftovers(dir.path());
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].instance, "sleep");
        assert!(sd.wait().unwrap().code().is_none(), "killed");
        assert!(!file.exists());
    }

    #[test]
    fn a_pid_file_for_another_program_is_removed_but_nothing_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let record = PidFile::record(
            dir.path(),
            ChildKind::LlamaServer,
            Some("x"),
            sleeper.id(),
            Path::new("/opt/llama/llama-server"),
            1,
        );
        let file = record.path().unwrap().to_path_buf();
        std::mem::forget(record);
        assert!(end_leftovers(dir.path()).is_empty());
        assert!(is_running(sleeper.id()), "sleep is not a llama-server");
        assert!(!file.exists());
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
}
