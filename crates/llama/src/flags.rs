//! Which flags this llama-server knows, read from its `--help`: flag names change
//! between llama.cpp releases (`-fa` took a value in 2025, `--reasoning-format`
//! and `-kvu` appeared later), and an unknown flag stops the server at once.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// `--help` prints in a few milliseconds; a binary that hangs is not waited for.
const HELP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupportedFlags {
    /// `None` when `--help` could not be read: every flag is then assumed known.
    known: Option<BTreeSet<String>>,
    /// `-fa` takes `on|off|auto` (newer) rather than being a switch (older).
    flash_attention_takes_value: bool,
}

impl SupportedFlags {
    /// Assumes the current llama-server (all flags, `-fa` with a value).
    pub fn assume_current() -> Self {
        Self {
            known: None,
            flash_attention_takes_value: true,
        }
    }

    pub fn from_help(help: &str) -> Self {
        let mut known = BTreeSet::new();
        let mut flash_attention_takes_value = false;
        for line in help.lines() {
            let line = line.trim_start();
            if !line.starts_with('-') {
                continue;
            }
            // The flag column: flags and their value placeholders (`N`, `FNAME`,
            // `[on|off|auto]`), up to the first word of the description.
            let mut column = Vec::new();
            for token in line.split_whitespace() {
                let flag = token.trim_end_matches(',');
                if is_flag(flag) {
                    known.insert(flag.to_owned());
                } else if !is_placeholder(token) {
                    break;
                }
                column.push(token);
            }
            let column = column.join(" ");
            if column.contains("--flash-attn") && column.contains("on|off") {
                flash_attention_takes_value = true;
            }
        }
        if known.is_empty() {
            return Self::assume_current();
        }
        Self {
            known: Some(known),
            flash_attention_takes_value,
        }
    }

    /// Runs `binary --help` (standard input closed, a deadline).
    pub async fn probe(binary: &Path) -> Self {
        Self::probe_recorded(binary, None).await
    }

    /// The same, recorded in `pid_dir` while it runs.
    pub async fn probe_recorded(binary: &Path, pid_dir: Option<&Path>) -> Self {
        let mut command = tokio::process::Command::new(binary);
        command.arg("--help");
        match switchyard_process::output_within(command, HELP_TIMEOUT, pid_dir).await {
            Some(text) => Self::from_help(&text),
            None => Self::assume_current(),
        }
    }

    pub fn knows(&self, flag: &str) -> bool {
        self.known.as_ref().is_none_or(|known| known.contains(flag))
    }

    pub fn flash_attention_takes_value(&self) -> bool {
        self.flash_attention_takes_value
    }
}

/// `-c`, `--ctx-size`, `-no-kvu`; not `-1` or a lone `-` bullet.
fn is_flag(token: &str) -> bool {
    let rest = token.trim_start_matches('-');
    token.starts_with('-')
        && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A value placeholder: `N`, `FNAME`, `JINJA_TEMPLATE`, `[on|off|auto]`, `{a,b}`.
fn is_placeholder(token: &str) -> bool {
    token.starts_with(['[', '{', '<'])
        || (!token.is_empty() && !token.chars().any(|c| c.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "\
-t,    --threads N                      number of CPU threads to use during generation (default: -1)
-fa,   --flash-attn [on|off|auto]       set Flash Attention use ('on', 'off', or 'auto', default: 'auto')
-kvu,  --kv-unified, -no-kvu, --no-kv-unified
                                        use single unified KV buffer shared across all sequences (default:
--reasoning-format FORMAT               controls whether thought tags are allowed and/or extracted from the
                                        - none: leaves thoughts unparsed in `message.content`
";

    #[test]
    fn reads_every_spelling_of_each_flag() {
        let flags = SupportedFlags::from_help(HELP);
        for flag in [
            "-t",
            "--threads",
            "-kvu",
            "--no-kv-unified",
            "-no-kvu",
            "--reasoning-format",
        ] {
            assert!(flags.knows(flag), "{flag}");
        }
        assert!(!flags.knows("--metrics"));
        assert!(!flags.knows("-"), "description bullets are not flags");
        assert!(!flags.knows("none:"));
        assert!(flags.flash_attention_takes_value());
    }

    #[test]
    fn an_old_switch_style_flash_attention_is_seen() {
        let flags = SupportedFlags::from_help(
            "-fa,   --flash-attn                     enable Flash Attention (default: disabled)",
        );
        assert!(flags.knows("-fa"));
        assert!(!flags.flash_attention_takes_value());
    }

    #[test]
    fn unreadable_help_assumes_everything() {
        let flags = SupportedFlags::from_help("segmentation fault");
        assert!(flags.knows("--anything"));
    }
}
