//! Children that cannot outlive Switchyard.
//!
//! An inference server holds gigabytes of RAM or VRAM; one left behind by a crashed
//! app blocks the next start and the machine. So every server Switchyard spawns is
//! tied to the app's life by the operating system itself, which works even when the
//! app is killed with SIGKILL and runs no clean-up code:
//!
//! - Linux: [`die_with_parent`] asks the kernel to send SIGKILL to the child when
//!   its parent goes (`PR_SET_PDEATHSIG`). The kernel ties this to the parent
//!   *thread*, so the caller must spawn from a thread that lives as long as the
//!   app (the engine keeps one for that).
//! - Windows: [`JobObject`] with "kill on job close": the job handle closes when
//!   the app's process ends, however it ends, and the system ends every process in
//!   the job.
//! - Elsewhere (macOS): nothing here; the engine's pid files end leftovers at the
//!   next start.

/// Makes the child spawned by `command` receive SIGKILL when the spawning thread
/// (and so the app) dies. Linux only.
#[cfg(target_os = "linux")]
pub fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;

    use nix::sys::signal::Signal;
    use nix::unistd::{getpid, getppid};

    let parent = getpid();
    let hook = move || -> std::io::Result<()> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
        // The parent may have died between fork and prctl: then the signal will
        // never come, and the child has already been handed to another process.
        if getppid() != parent {
            return Err(std::io::Error::from(nix::errno::Errno::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec. It only makes the
    // prctl and getppid system calls, which are async-signal-safe, and allocates
    // nothing (its errors are plain errno values), as a hook after fork in a
    // multi-threaded process must.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(hook);
    }
}

/// Ends its processes when it is dropped or when this process ends in any way.
#[cfg(windows)]
#[derive(Debug)]
pub struct JobObject {
    handle: windows_sys::Win32::Foundation::HANDLE,
}

// The handle is an opaque kernel reference usable from any thread.
#[cfg(windows)]
#[allow(unsafe_code)]
unsafe impl Send for JobObject {}
#[cfg(windows)]
#[allow(unsafe_code)]
unsafe impl Sync for JobObject {}

#[cfg(windows)]
impl JobObject {
    /// A job that kills its processes when its last handle closes.
    pub fn kill_on_close() -> std::io::Result<Self> {
        use windows_sys::Win32::System::JobObjects::{
            CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject,
            JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        };
        // SAFETY: plain Win32 calls with valid pointers to a local, zero-initialized
        // structure of the size passed; the handle is checked before use and closed
        // on every error path.
        #[allow(unsafe_code)]
        unsafe {
            let handle = CreateJobObjectW(std::ptr::null(), std::ptr::null());
            if handle.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            let job = Self { handle };
            let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let size = u32::try_from(std::mem::size_of_val(&limits)).unwrap_or(u32::MAX);
            let done = SetInformationJobObject(
                job.handle,
                JobObjectExtendedLimitInformation,
                std::ptr::from_ref(&limits).cast(),
                size,
            );
            if done == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(job)
        }
    }

    /// Puts a running process (its raw handle) into the job.
    pub fn assign(&self, process: std::os::windows::io::RawHandle) -> std::io::Result<()> {
        use windows_sys::Win32::System::JobObjects::AssignProcessToJobObject;
        // SAFETY: both handles are valid for the duration of the call: the job is
        // owned by self, the process handle by the caller's Child.
        #[allow(unsafe_code)]
        let done = unsafe { AssignProcessToJobObject(self.handle, process.cast()) };
        if done == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(windows)]
impl Drop for JobObject {
    fn drop(&mut self) {
        // SAFETY: the handle came from CreateJobObjectW and is closed once, here.
        #[allow(unsafe_code)]
        unsafe {
            windows_sys::Win32::Foundation::CloseHandle(self.handle);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_guarded_child_runs_normally() {
        let mut command = std::process::Command::new("true");
        super::die_with_parent(&mut command);
        let status = command.status().map(|status| status.success());
        assert!(matches!(status, Ok(true)), "{status:?}");
    }
}
