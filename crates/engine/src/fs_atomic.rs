//! State files are replaced whole or not at all: write a temporary file beside the
//! target, flush it to disk, rename it over the target, then flush the folder.

use std::io::Write as _;
use std::path::Path;

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.partial"));
    let mut file = std::fs::File::create(&temporary)?;
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
}
