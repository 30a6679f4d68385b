//! How a child ended, in words a person can act on, and the last lines it printed.

use std::process::ExitStatus;

/// How a program ended, in words; a signal is named, and an illegal instruction is
/// explained, because it is the typical death of a build made for newer CPUs.
pub fn describe_exit(status: impl Into<Option<ExitStatus>>) -> String {
    let Some(status) = status.into() else {
        return "ended in a way nobody saw (no exit status)".into();
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return describe_signal(signal);
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "ended without an exit code".into(),
    }
}

pub fn describe_signal(signal: i32) -> String {
    match signal {
        4 => "died of an illegal instruction (SIGILL): this build needs CPU features this machine lacks".into(),
        6 => "aborted (SIGABRT)".into(),
        7 => "crashed with a bus error (SIGBUS)".into(),
        8 => "crashed with an arithmetic error (SIGFPE)".into(),
        9 => "was killed (SIGKILL)".into(),
        11 => "crashed (SIGSEGV, segmentation fault)".into(),
        15 => "was terminated (SIGTERM)".into(),
        other => format!("died of signal {other}"),
    }
}

/// The last `lines` non-empty lines of `output`, for error messages.
pub fn last_lines(output: &str, lines: usize) -> String {
    let tail: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect();
    tail[tail.len().saturating_sub(lines)..].join("\n")
}
