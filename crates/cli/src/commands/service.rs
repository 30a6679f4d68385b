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
/// Refused when a path holds a line break or another control character (no escape
/// carries one through a unit file), or when the program's path holds a quote or
/// a backslash (systemd will not run such a program: "Executable name contains
/// special characters").
pub fn unit_file(
    program: &Path,
    environment: &[(&'static str, String)],
) -> Result<String, EngineError> {
    let program_text = program.display().to_string();
    refuse("program", &program_text, |c| {
        c.is_control() || matches!(c, '"' | '\'' | '\\')
    })?;
    for (name, value) in environment {
        refuse(name, value, char::is_control)?;
    }
    let mut unit = String::from(
        "[Unit]\n\
         Description=Switchyard daemon (local llama-server instances)\n\
         Documentation=https://github.com/switchyard-app/switchyard/blob/main/docs/cli.md\n\
         \n\
         [Service]\n\
         Type=simple\n",
    );
    unit.push_str(&format!("ExecStart={} daemon\n", executable(&program_text)));
    for (name, value) in environment {
        unit.push_str(&format!("Environment=\"{name}={}\"\n", quoted_text(value)));
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
    Ok(unit)
}

fn refuse(
    field: &'static str,
    value: &str,
    unwritable: impl Fn(char) -> bool,
) -> Result<(), EngineError> {
    match value.chars().find(|c| unwritable(*c)) {
        None => Ok(()),
        Some(found) => Err(EngineError::InvalidInput {
            field,
            problem: format!(
                "`{}` holds {found:?}, which a systemd unit cannot carry there; use a path without it",
                value.escape_debug()
            ),
        }),
    }
}

/// The program of `ExecStart=` (systemd.service(5), "Command lines"): quoted when
/// it holds spaces or `;`, `%` (a specifier everywhere) doubled. `$` is literal in
/// the program's name (only arguments expand variables).
fn executable(path: &str) -> String {
    let escaped = path.replace('%', "%%");
    if path.contains(|c: char| c.is_whitespace() || c == ';') {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// Text inside double quotes of a unit file (systemd.syntax(7)): backslashes and
/// quotes escaped, and `%`, which starts a specifier everywhere, doubled.
fn quoted_text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
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
    let environment: Vec<(&'static str, String)> = [DATA_DIR_ENV, CONFIG_DIR_ENV]
        .into_iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (name, value))
        })
        .collect();
    let unit = unit_file(&program, &environment).map_err(|error| error.report())?;
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
        )
        .unwrap();
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
        let unit = unit_file(Path::new("/home/a b/switchyard"), &[]).unwrap();
        assert!(
            unit.contains("ExecStart=\"/home/a b/switchyard\" daemon\n"),
            "{unit}"
        );
    }

    /// `%` (specifiers), quotes and backslashes mean something in a unit file:
    /// each comes out as the path it was (systemd.syntax(7); the program's line
    /// checked with systemd 252's `systemd-analyze verify`).
    #[test]
    fn specifiers_quotes_and_backslashes_are_escaped() {
        let unit = unit_file(
            Path::new("/home/50% off/$HOME/switchyard"),
            &[
                (DATA_DIR_ENV, "/srv/100% \"data\"".to_owned()),
                (CONFIG_DIR_ENV, "/srv/$conf\\x".to_owned()),
            ],
        )
        .unwrap();
        assert!(
            unit.contains("\nExecStart=\"/home/50%% off/$HOME/switchyard\" daemon\n"),
            "{unit}"
        );
        assert!(
            unit.contains("\nEnvironment=\"SWITCHYARD_DATA_DIR=/srv/100%% \\\"data\\\"\"\n"),
            "{unit}"
        );
        // `$` has no meaning in Environment=.
        assert!(
            unit.contains("\nEnvironment=\"SWITCHYARD_CONFIG_DIR=/srv/$conf\\\\x\"\n"),
            "{unit}"
        );
        let plain = unit_file(Path::new("/opt/50%/switchyard"), &[]).unwrap();
        assert!(
            plain.contains("\nExecStart=/opt/50%%/switchyard daemon\n"),
            "{plain}"
        );
    }

    #[test]
    fn a_line_break_in_a_path_and_a_quote_in_the_program_are_refused() {
        for program in [
            "/home/a\nExecStartPre=/bin/evil/switchyard",
            "/home/a\"b/switchyard",
            "/home/a\\b/switchyard",
        ] {
            let error = unit_file(Path::new(program), &[]).unwrap_err();
            assert_eq!(error.code(), switchyard_engine::ErrorCode::InvalidInput);
        }
        let error = unit_file(
            Path::new("/opt/switchyard"),
            &[(DATA_DIR_ENV, "/srv/a\nb".to_owned())],
        )
        .unwrap_err();
        assert_eq!(error.code(), switchyard_engine::ErrorCode::InvalidInput);
        assert!(error.to_string().contains(DATA_DIR_ENV), "{error}");
    }
}
