//! Folders only this user may enter. sd writes its images into one and Switchyard
//! reads them back: whoever else could write there (a shared `/tmp` path another
//! local user made first, a folder open to the group) could change what is read.
//! A folder of ours with a wider mode is made private; one owned by someone else,
//! or a link in its place, is refused.

use std::path::Path;

use crate::errors::{EngineError, Result};

/// Makes `path` (and its parents) if missing, and proves it is a private folder of
/// this user: a directory, not a link, owned by us, mode 0700 (a wider mode on our
/// own folder is narrowed).
pub fn ensure_private_dir(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| EngineError::StorageUnavailable {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    match create_private(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => check_existing(path),
        Err(source) => Err(EngineError::StorageUnavailable {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    // The data folder lives in the user's profile, which Windows keeps private.
    std::fs::create_dir(path)
}

#[cfg(unix)]
fn check_existing(path: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let unsafe_folder = |problem: String| EngineError::UnsafeFolder {
        path: path.to_path_buf(),
        problem,
    };
    // Not followed: a link could point anywhere.
    let metadata =
        std::fs::symlink_metadata(path).map_err(|source| EngineError::StorageUnavailable {
            path: path.to_path_buf(),
            source,
        })?;
    if metadata.file_type().is_symlink() {
        return Err(unsafe_folder("it is a link, not a folder".into()));
    }
    if !metadata.is_dir() {
        return Err(unsafe_folder("it is a file, not a folder".into()));
    }
    let ours = nix::unistd::geteuid().as_raw();
    if metadata.uid() != ours {
        return Err(unsafe_folder(format!(
            "it belongs to another user (uid {}, not {ours})",
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "a private folder was open to others; narrowing it to 0700"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| EngineError::StorageUnavailable {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_existing(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
        Ok(())
    } else {
        Err(EngineError::UnsafeFolder {
            path: path.to_path_buf(),
            problem: "it is not a folder".into(),
        })
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;
    use crate::errors::ErrorCode;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_folder_is_private_to_us() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("state").join("images-work");
        ensure_private_dir(&work).unwrap();
        assert_eq!(mode(&work), 0o700);
        ensure_private_dir(&work).unwrap();
    }

    #[test]
    fn our_folder_open_to_others_is_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("images-work");
        std::fs::create_dir(&work).unwrap();
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&work).unwrap();
        assert_eq!(mode(&work), 0o700);
    }

    #[test]
    fn a_folder_of_another_user_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("images-work");
        std::fs::create_dir(&work).unwrap();
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
        if std::os::unix::fs::chown(&work, Some(65534), Some(65534)).is_err() {
            eprintln!("skipped: giving a folder to another user needs root");
            return;
        }
        let error = ensure_private_dir(&work).unwrap_err();
        assert_eq!(error.code(), ErrorCode::StorageUnavailable);
        let message = error.to_string();
        assert!(
            message.contains(&work.display().to_string()) && message.contains("uid 65534"),
            "{message}"
        );
        assert!(
            error.suggestion().contains("Remove"),
            "{}",
            error.suggestion()
        );
        assert_eq!(mode(&work), 0o777, "someone else's folder is left alone");
    }

    #[test]
    fn a_link_in_place_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let work = dir.path().join("images-work");
        std::os::unix::fs::symlink(&elsewhere, &work).unwrap();
        let error = ensure_private_dir(&work).unwrap_err();
        assert!(error.to_string().contains("link"), "{error}");
    }
}
