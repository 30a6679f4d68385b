//! State files are replaced whole or not at all: write a temporary file beside the
//! target, flush it to disk, rename it over the target, then flush the folder.
//!
//! Each write has a temporary file of its own (a random name, created exclusively):
//! with one fixed name, two processes saving the same file would truncate or rename
//! each other's half-written copy into place.

use std::io::Write as _;
use std::path::Path;

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, Access::Default)
}

/// Like [`write`], for secrets: on Unix the file is readable by its user only from
/// its first byte on (the mode is set when the temporary file is created, and the
/// rename replaces whatever mode an earlier file had).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, Access::Private)
}

#[derive(Clone, Copy)]
enum Access {
    /// What `File::create` gives: everyone may read, as the umask allows.
    Default,
    /// The user alone (0600).
    Private,
}

fn write_with(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = folder_of(path);
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = match access {
            Access::Default => 0o666,
            Access::Private => 0o600,
        };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = access;
    // Removed again when dropped, whichever step below fails.
    let mut temporary = builder.tempfile_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    sync_folder(folder);
    Ok(())
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes a rename in `folder` durable; not possible on every platform.
fn sync_folder(folder: &Path) {
    if let Ok(folder) = std::fs::File::open(folder) {
        let _ = folder.sync_all();
    }
}

/// Puts a file another writer has just finished (`staged`, in the same folder) in
/// place of `target` the same way: flushed, readable by its user only (it may hold
/// secrets), renamed over the target, the folder flushed.
pub fn replace_with_private(staged: &Path, target: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(staged)?;
    file.sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    drop(file);
    std::fs::rename(staged, target)?;
    sync_folder(folder_of(target));
    Ok(())
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write(path, &bytes)
}

/// [`write_json`] for a file that holds secrets (see [`write_private`]).
pub fn write_json_private(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_private(path, &bytes)
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

    /// Two writers of one file at once (the app and the daemon saving a state
    /// file): every write succeeds and the file is always one writer's whole copy.
    #[test]
    fn concurrent_writers_never_mix_or_lose_their_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let writers: Vec<_> = [b'a', b'b']
            .into_iter()
            .map(|letter| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let copy = vec![letter; 64 * 1024];
                    (0..200)
                        .map(|_| super::write(&path, &copy))
                        .collect::<Result<Vec<()>, _>>()
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap().expect("every write succeeds");
        }
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), 64 * 1024);
        assert!(
            written.iter().all(|byte| *byte == written[0]),
            "a mixed copy"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: the rename fails.
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        super::write(&path, b"never in place").unwrap_err();
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

    #[cfg(unix)]
    #[test]
    fn a_file_once_readable_by_others_becomes_private_at_the_next_write() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&path, b"token").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn ordinary_files_keep_the_usual_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.png");
        super::write(&path, b"png").unwrap();
        std::fs::write(dir.path().join("reference"), b"x").unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("image.png"), mode("reference"));
    }
}
