//! Runs the built app the way a person would, on a virtual display when there is no
//! real one, with a session bus, and in a temporary data folder.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc_stats;

/// The app and everything it started; ended (whole process group) on drop.
pub struct AppSession {
    launcher: Child,
    display: Option<Child>,
    _home: tempfile::TempDir,
}

impl AppSession {
    pub fn start(app: &Path, args: &[&str]) -> Result<Self> {
        let home = tempfile::tempdir()?;
        let display = match std::env::var_os("DISPLAY") {
            Some(_) => None,
            None => Some(start_xvfb()?),
        };
        let mut command = Command::new("dbus-run-session");
        command
            .arg("--")
            .arg(app)
            .args(args)
            .env("SWITCHYARD_DATA_DIR", home.path().join("data"))
            .env("SWITCHYARD_CONFIG_DIR", home.path().join("config"))
            .env("SWITCHYARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if display.is_some() {
            command.env("DISPLAY", XVFB_DISPLAY);
        }
        let launcher = command
            .spawn()
            .context("could not start dbus-run-session (install dbus)")?;
        Ok(Self {
            launcher,
            display,
            _home: home,
        })
    }

    /// The app's own process, once it exists.
    pub fn app_pid(&self, deadline: Duration) -> Result<u32> {
        wait_for(deadline, || {
            // The kernel keeps 15 bytes of a process's name: `switchyard-desktop`
            // is listed as `switchyard-desk`.
            proc_stats::find_in_tree(self.launcher.id(), "switchyard-desk")
        })
        .context("the app did not start")
    }

    /// Waits until the app has a web content process (the window is up).
    pub fn wait_for_webview(&self, app_pid: u32, deadline: Duration) -> Result<()> {
        wait_for(deadline, || {
            proc_stats::find_in_tree(app_pid, "WebKitWebProces")
        })
        .map(|_| ())
        .context("the window's web process never appeared")
    }
}

impl Drop for AppSession {
    fn drop(&mut self) {
        for child in [Some(&mut self.launcher), self.display.as_mut()]
            .into_iter()
            .flatten()
        {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

const XVFB_DISPLAY: &str = ":97";

fn start_xvfb() -> Result<Child> {
    let child = Command::new("Xvfb")
        .args([
            XVFB_DISPLAY,
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("no DISPLAY and Xvfb could not start (apt-get install xvfb)")?;
    let socket = PathBuf::from("/tmp/.X11-unix/X97");
    wait_for(Duration::from_secs(10), || socket.exists().then_some(()))
        .context("Xvfb did not open its display")?;
    Ok(child)
}

fn wait_for<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(found) = check() {
            return Ok(found);
        }
        if start.elapsed() > deadline {
            bail!("gave up after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
