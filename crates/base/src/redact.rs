//! Secrets shown as what they are, never as their value: in `Debug` output (so no
//! span or log line can print them), in problem reports and in logged command lines.

use std::fmt;

/// What stands where a secret was.
pub const REDACTED: &str = "<redacted>";

/// `Debug` for an optional secret: `Some(<redacted>)` or `None`, so a reader still
/// sees whether one is set.
pub struct Hidden<'a>(pub &'a Option<String>);

impl fmt::Debug for Hidden<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

/// A person's extra llama-server arguments with every value taken out and the
/// flags kept (`--hf-token abc` → `--hf-token <redacted>`, `--x=abc` →
/// `--x=<redacted>`): which flags were passed helps whoever reads a report, and a
/// value may be a token.
pub fn extra_args(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((flag, _)) if is_flag(flag) => format!("{flag}={REDACTED}"),
            _ if is_flag(arg) => arg.clone(),
            _ => REDACTED.to_owned(),
        })
        .collect()
}

/// `-x`, `--name`; not `-1` (a negative number is a value).
fn is_flag(arg: &str) -> bool {
    arg.strip_prefix('-')
        .and_then(|rest| rest.trim_start_matches('-').chars().next())
        .is_some_and(|first| first.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_arguments_keep_their_flags_and_lose_their_values() {
        let args: Vec<String> = ["--hf-token", "hf_abc", "--api=xyz", "-c", "-1", "--jinja"]
            .map(String::from)
            .into();
        assert_eq!(
            extra_args(&args),
            [
                "--hf-token",
                "<redacted>",
                "--api=<redacted>",
                "-c",
                "<redacted>",
                "--jinja"
            ]
        );
    }

    #[test]
    fn a_hidden_secret_says_only_whether_there_is_one() {
        assert_eq!(
            format!("{:?}", Hidden(&Some("k".into()))),
            "Some(<redacted>)"
        );
        assert_eq!(format!("{:?}", Hidden(&None)), "None");
    }
}
