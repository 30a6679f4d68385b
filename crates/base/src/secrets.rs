//! Secrets Switchyard makes (the daemon's token, llama-server's own key) and the
//! files that hold them: readable by their user only, from their first byte on and
//! at every write (an older file with a wider mode is replaced, not reused).

use std::path::Path;

use crate::errors::{EngineError, Result};

/// 32 bytes from the operating system, as hex.
pub fn random_token() -> Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| EngineError::Internal {
        problem: format!("no random numbers from the operating system: {error}"),
    })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Writes `lines` (one secret each) to `path`, mode 0600, atomically.
pub fn write_lines(path: &Path, lines: &[&str]) -> Result<()> {
    let mut text = lines.join("\n");
    text.push('\n');
    crate::fs_atomic::write_private(path, text.as_bytes())
        .map_err(|source| EngineError::writing(path, source))
}

/// The key a person set, kept in `path` (its first line), if any.
pub fn read_key(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .filter(|key| !key.is_empty())
}

/// Keeps a key a person typed (trimmed) in `path`, mode 0600, or removes the file
/// when it is `None` or blank. Returns the key as kept.
pub fn store_key(path: &Path, key: Option<String>) -> Result<Option<String>> {
    let key = key
        .map(|key| key.trim().to_owned())
        .filter(|key| !key.is_empty());
    match &key {
        Some(key) => write_lines(path, &[key])?,
        None => match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(EngineError::writing(path, error))
            }
            _ => {}
        },
    }
    Ok(key)
}

/// Whether `presented` is `expected`, taking the same time whatever the first
/// differing byte (a key must not be guessed byte by byte from the timing).
pub fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_secret_file_is_private_also_when_an_older_one_was_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let path = dir.path().join("llama-x.key");
        std::fs::write(&path, "old\n").unwrap_or_else(|error| panic!("{error}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|error| panic!("{error}"));
        let token = random_token().unwrap_or_default();
        assert_eq!(token.len(), 64);
        write_lines(&path, &["a", &token]).unwrap_or_else(|error| panic!("{error}"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, format!("a\n{token}\n"));
    }
}
