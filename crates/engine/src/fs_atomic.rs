//! State files are replaced whole or not at all: write a temporary file beside the
//! target, flush it to disk, rename it over the target, then flush the folder.

use std::io::Write as _;
use std::path::Path;

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, std::fs::OpenOptions::new())
}

/// Like [`write`], for secrets: on Unix the file is readable by its user only from
/// its first byte on (the mode is set when the temporary file is created).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    write_with(path, bytes, options)
}

fn write_with(path: &Path, bytes: &[u8], mut options: std::fs::OpenOptions) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.partial"));
    // A leftover temporary file would keep its old mode.
    let _ = std::fs::remove_file(&temporary);
    let mut file = options
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(folder) = path.parent() {
        // Makes the rename itself durable; not possible on every platform.
        if let Ok(folder) = std::fs::File::open(folder) {
            let _ = folder.sync_all();
        }
    }
    Ok(())
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write(path, &bytes)
}

/// Reads a state file; a missing one is the default. A damaged one is kept aside as
/// `<name>.damaged` and reported, never silently overwritten.
pub fn read_json<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
) -> crate::errors::Result<T> {
    use crate::errors::EngineError;
    match std::fs::read(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(EngineError::FileUnreadable {
            path: path.to_path_buf(),
            source,
        }),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            let kept = path.with_extension("json.damaged");
            let _ = std::fs::copy(path, &kept);
            EngineError::CorruptState {
                path: kept,
                problem: error.to_string(),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        super::write(&path, b"first version, longer").unwrap();
        super::write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_readable_by_their_user_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.json");
        super::write_private(&path, b"token").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
