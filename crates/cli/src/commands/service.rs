//! `service install|uninstall|status`: the daemon as a systemd user service on
//! Linux. launchd (macOS) and Task Scheduler (Windows) are described in
//! docs/cli.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchyard_engine::paths::{CONFIG_DIR_ENV, DATA_DIR_ENV};
use switchyard_engine::{EngineError, ErrorReport};

use super::Outcome;
use crate::args::ServiceCommand;
use crate::context::Context;

pub const UNIT_NAME: &str = "switchyard.service";

/// The unit for `program` (an absolute path). `environment` carries the folder
/// overrides in force at install time, so the service uses the same folders.
pub fn unit_file(program: &Path, environment: &[(&str, String)]) -> String {
    let mut unit = String::from(
        "[Unit]\n\
         Description=Switchyard daemon (local llama-server instances)\n\
         Documentation=https://github.com/switchyard-app/switchyard/blob/main/docs/cli.md\n\
         \n\
         [Service]\n\
         Type=simple\n",
    );
    unit.push_str(&format!("ExecStart={} daemon\n", quoted(program)));
    for (name, value) in environment {
        unit.push_str(&format!("Environment=\"{name}={}\"\n", escape(value)));
    }
    unit.push_str(
        "Restart=on-failure\n\
         RestartSec=5\n\
         # SIGTERM to the daemon only: it stops its servers in order; whatever is\n\
         # left after the timeout gets SIGKILL.\n\
         KillMode=mixed\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
    );
    unit
}

/// systemd splits ExecStart on spaces unless the word is quoted.
fn quoted(program: &Path) -> String {
    let text = program.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("\"{}\"", escape(&text))
    } else {
        text
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `~/.config/systemd/user/switchyard.service` (or under `$XDG_CONFIG_HOME`).
pub fn unit_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("systemd").join("user").join(UNIT_NAME))
}

pub fn run(_context: &Context, command: ServiceCommand) -> Outcome {
    if !cfg!(target_os = "linux") {
        return Err(EngineError::InvalidInput {
            field: "service",
            problem: "only systemd (Linux) is installed by this command; docs/cli.md shows launchd and Task Scheduler setups".into(),
        }
        .report());
    }
    let path = unit_path().ok_or_else(|| internal("no home folder to install the unit into"))?;
    match command {
        ServiceCommand::Install { print } => install(&path, print),
        ServiceCommand::Uninstall => uninstall(&path),
        ServiceCommand::Status => status(&path),
    }
}

fn install(path: &Path, print_only: bool) -> Outcome {
    let program = std::env::current_exe()
        .map_err(|error| internal(&format!("cannot find this program: {error}")))?;
    let environment: Vec<(&str, String)> = [DATA_DIR_ENV, CONFIG_DIR_ENV]
        .into_iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (name, value))
        })
        .collect();
    let unit = unit_file(&program, &environment);
    if print_only {
        print!("{unit}");
        return Ok(0);
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|source| EngineError::writing(folder, source).report())?;
    }
    switchyard_engine::fs_atomic::write(path, unit.as_bytes())
        .map_err(|source| EngineError::writing(path, source).report())?;
    println!("wrote {}", path.display());
    if systemctl(&["daemon-reload"]) && systemctl(&["enable", "--now", UNIT_NAME]) {
        println!("enabled and started: the daemon now runs at login");
    } else {
        println!(
            "no systemd user session here; to start it: systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}"
        );
        println!("to keep it running after logout: loginctl enable-linger $USER");
    }
    Ok(0)
}

fn uninstall(path: &Path) -> Outcome {
    systemctl(&["disable", "--now", UNIT_NAME]);
    match std::fs::remove_file(path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!("not installed ({} does not exist)", path.display());
        }
        Err(source) => return Err(EngineError::writing(path, source).report()),
    }
    systemctl(&["daemon-reload"]);
    Ok(0)
}

fn status(path: &Path) -> Outcome {
    if !path.is_file() {
        println!("not installed");
        return Ok(crate::exit::NOT_FOUND);
    }
    let active = systemctl(&["is-active", "--quiet", UNIT_NAME]);
    println!(
        "installed at {}; {}",
        path.display(),
        if active { "active" } else { "not active" }
    );
    Ok(if active { 0 } else { crate::exit::NOT_HEALTHY })
}

/// `systemctl --user …`; false when it fails or there is no systemd.
fn systemctl(args: &[&str]) -> bool {
    Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn internal(problem: &str) -> ErrorReport {
    EngineError::Internal {
        problem: problem.to_owned(),
    }
    .report()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_daemon_with_the_folders_of_the_install() {
        let unit = unit_file(
            Path::new("/opt/switchyard/switchyard"),
            &[(DATA_DIR_ENV, "/srv/switchyard data".to_owned())],
        );
        assert!(
            unit.contains("\nExecStart=/opt/switchyard/switchyard daemon\n"),
            "{unit}"
        );
        assert!(unit.contains("\nEnvironment=\"SWITCHYARD_DATA_DIR=/srv/switchyard data\"\n"));
        assert!(unit.contains("\nKillMode=mixed\n"));
        assert!(unit.contains("\nRestart=on-failure\n"));
        assert!(unit.contains("[Install]\nWantedBy=default.target\n"));
    }

    #[test]
    fn a_program_path_with_spaces_is_quoted() {
        let unit = unit_file(Path::new("/home/a b/switchyard"), &[]);
        assert!(
            unit.contains("ExecStart=\"/home/a b/switchyard\" daemon\n"),
            "{unit}"
        );
    }
}
