//! Unpacking release archives (zip, tar.gz) without ever writing outside the target
//! folder: entry names that are absolute or contain `..` are refused, nothing is ever
//! written through a link, links must stay inside (checked by name while unpacking and
//! by the real path once everything is there), and device files and pipes are refused.
//!
//! The caller unpacks into a fresh staging folder and moves it into place only when
//! everything succeeded, so a half-unpacked or refused archive is never used.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use switchyard_base::errors::{EngineError, Result};

/// More entries than any llama.cpp or stable-diffusion.cpp release has by far.
const MAX_ENTRIES: usize = 100_000;
/// Unpacked bytes over all entries: a CUDA build with its runtime is about 1.5 GB; a
/// zip bomb is stopped here.
const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Zip,
    TarGz,
}

impl ArchiveFormat {
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".zip") {
            Some(Self::Zip)
        } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Some(Self::TarGz)
        } else {
            None
        }
    }
}

/// Unpacks `archive` into `dest`, an existing empty folder.
pub fn extract(archive: &Path, format: ArchiveFormat, dest: &Path) -> Result<()> {
    let mut unpacker = Unpacker {
        archive_name: archive
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dest: dest.to_path_buf(),
        entries: 0,
        bytes: 0,
    };
    match format {
        ArchiveFormat::Zip => unpacker.zip(archive)?,
        ArchiveFormat::TarGz => unpacker.tar_gz(archive)?,
    }
    unpacker.check_links_resolve_inside()
}

/// An archive entry name as a relative path that stays inside the destination:
/// no root, no drive, no `..`; `\` counts as a separator (zips made on Windows).
pub fn safe_entry_path(raw: &str) -> std::result::Result<PathBuf, &'static str> {
    if raw.contains('\0') {
        return Err("has a NUL byte in its name");
    }
    let normalized = raw.replace('\\', "/");
    if normalized.starts_with('/') || has_drive_prefix(&normalized) {
        return Err("has an absolute path");
    }
    let mut path = PathBuf::new();
    for part in normalized.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out of the folder with `..`"),
            part => path.push(part),
        }
    }
    // Whatever the platform's parser thinks of the parts (prefixes on Windows).
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("has an absolute path");
    }
    Ok(path)
}

fn has_drive_prefix(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Where a link at `link` (relative to the destination) pointing to `target` lands,
/// by name; `Err` when the name alone leaves the destination.
pub fn link_destination(link: &Path, target: &str) -> std::result::Result<PathBuf, &'static str> {
    let normalized = target.replace('\\', "/");
    if normalized.is_empty() {
        return Err("is a link to nothing");
    }
    if normalized.starts_with('/') || has_drive_prefix(&normalized) {
        return Err("is a link to an absolute path");
    }
    let mut resolved: Vec<String> = link
        .parent()
        .map(|parent| {
            parent
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for part in normalized.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    return Err("is a link that points outside the folder");
                }
            }
            part => resolved.push(part.to_owned()),
        }
    }
    Ok(resolved.iter().collect())
}

/// The folder to install: `dir` itself, or, while it holds exactly one entry and
/// that is a real folder (upstream archives wrap everything in `llama-bNNNN/` or
/// `build/bin/`), that folder.
pub fn single_root(dir: &Path) -> PathBuf {
    let mut current = dir.to_path_buf();
    loop {
        let Ok(entries) = std::fs::read_dir(&current) else {
            return current;
        };
        let entries: Vec<_> = entries.flatten().collect();
        match entries.as_slice() {
            [only] if only.file_type().is_ok_and(|t| t.is_dir()) => current = only.path(),
            _ => return current,
        }
    }
}

/// The first of `names` (preferred first) found in `dir` or below (breadth first, a
/// few levels deep), as a path relative to `dir`.
pub fn find_executable(dir: &Path, names: &[String]) -> Option<PathBuf> {
    const MAX_DEPTH: usize = 4;
    let mut level = vec![PathBuf::new()];
    for _ in 0..=MAX_DEPTH {
        let mut next = Vec::new();
        let mut files = Vec::new();
        for relative in &level {
            let Ok(entries) = std::fs::read_dir(dir.join(relative)) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for entry in entries {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = relative.join(entry.file_name());
                if kind.is_dir() {
                    next.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for name in names {
            if let Some(found) = files.iter().find(|path| {
                path.file_name()
                    .is_some_and(|file| file.to_string_lossy() == name.as_str())
                    && dir.join(path).is_file()
            }) {
                return Some(found.clone());
            }
        }
        if next.is_empty() {
            return None;
        }
        level = next;
    }
    None
}

/// Moves every entry of `from` into `into` (a dependency archive's files beside the
/// program's); an entry that exists already is an error rather than an overwrite.
pub fn merge_into(from: &Path, into: &Path, archive_name: &str) -> Result<()> {
    let entries = std::fs::read_dir(from).map_err(|source| EngineError::writing(from, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| EngineError::writing(from, source))?;
        let target = into.join(entry.file_name());
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(EngineError::UnsafeArchive {
                archive: archive_name.to_owned(),
                entry: entry.file_name().to_string_lossy().into_owned(),
                problem: "would replace a file of the program's own archive".into(),
            });
        }
        std::fs::rename(entry.path(), &target)
            .map_err(|source| EngineError::writing(&target, source))?;
    }
    Ok(())
}

struct Unpacker {
    archive_name: String,
    dest: PathBuf,
    entries: usize,
    bytes: u64,
}

/// Unix file-type bits as zip and tar store them.
const TYPE_MASK: u32 = 0o170_000;
const TYPE_LINK: u32 = 0o120_000;
const TYPE_DIR: u32 = 0o040_000;
const TYPE_FILE: u32 = 0o100_000;

impl Unpacker {
    fn unsafe_entry(&self, entry: &str, problem: impl Into<String>) -> EngineError {
        EngineError::UnsafeArchive {
            archive: self.archive_name.clone(),
            entry: entry.to_owned(),
            problem: problem.into(),
        }
    }

    fn unreadable(&self, archive: &Path, problem: impl std::fmt::Display) -> EngineError {
        EngineError::FileUnreadable {
            path: archive.to_path_buf(),
            source: std::io::Error::other(format!("not a readable archive: {problem}")),
        }
    }

    fn count_entry(&mut self, name: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(
                self.unsafe_entry(name, format!("is past the limit of {MAX_ENTRIES} entries"))
            );
        }
        Ok(())
    }

    fn zip(&mut self, archive: &Path) -> Result<()> {
        let file = std::fs::File::open(archive).map_err(|source| EngineError::FileUnreadable {
            path: archive.to_path_buf(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|error| self.unreadable(archive, error))?;
        for index in 0..zip.len() {
            let mut entry = zip
                .by_index(index)
                .map_err(|error| self.unreadable(archive, error))?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            self.count_entry(&name)?;
            let relative =
                safe_entry_path(&name).map_err(|problem| self.unsafe_entry(&name, problem))?;
            let mode = entry.unix_mode().unwrap_or(0);
            let file_type = mode & TYPE_MASK;
            if entry.is_dir() || file_type == TYPE_DIR {
                self.make_dirs(&relative, &name)?;
            } else if file_type == TYPE_LINK {
                let mut target = String::new();
                entry
                    .by_ref()
                    .take(4096)
                    .read_to_string(&mut target)
                    .map_err(|error| self.unreadable(archive, error))?;
                self.make_link(&relative, &target, &name)?;
            } else if file_type == 0 || file_type == TYPE_FILE {
                self.write_file(&relative, &mut entry, mode, &name)?;
            } else {
                return Err(self.unsafe_entry(&name, special_file_problem(file_type)));
            }
        }
        Ok(())
    }

    fn tar_gz(&mut self, archive: &Path) -> Result<()> {
        let file = std::fs::File::open(archive).map_err(|source| EngineError::FileUnreadable {
            path: archive.to_path_buf(),
            source,
        })?;
        let mut tar =
            tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        let entries = tar
            .entries()
            .map_err(|error| self.unreadable(archive, error))?;
        for entry in entries {
            let mut entry = entry.map_err(|error| self.unreadable(archive, error))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let entry_type = entry.header().entry_type();
            if entry_type.is_pax_global_extensions() {
                continue;
            }
            self.count_entry(&name)?;
            let relative =
                safe_entry_path(&name).map_err(|problem| self.unsafe_entry(&name, problem))?;
            let mode = entry.header().mode().unwrap_or(0o644);
            if entry_type.is_dir() {
                self.make_dirs(&relative, &name)?;
            } else if entry_type.is_file() {
                self.write_file(&relative, &mut entry, mode, &name)?;
            } else if entry_type.is_symlink() {
                let target = entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                self.make_link(&relative, &target, &name)?;
            } else if entry_type.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                self.copy_hard_link(&relative, &target, &name)?;
            } else if entry_type.is_character_special() || entry_type.is_block_special() {
                return Err(self.unsafe_entry(&name, "is a device file"));
            } else if entry_type.is_fifo() {
                return Err(self.unsafe_entry(&name, "is a named pipe"));
            } else {
                return Err(self.unsafe_entry(
                    &name,
                    format!("has an unsupported entry type ({:?})", entry_type),
                ));
            }
        }
        Ok(())
    }

    /// Creates the folders of `relative` one by one, refusing to pass through a link
    /// or a file: an entry `lib/x` after a link `lib -> /etc` must not reach `/etc`.
    fn make_dirs(&self, relative: &Path, name: &str) -> Result<()> {
        let mut current = self.dest.clone();
        for part in relative.components() {
            current.push(part);
            match std::fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(self.unsafe_entry(name, "would be written through a link or a file"))
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&current)
                        .map_err(|source| EngineError::writing(&current, source))?;
                }
                Err(source) => return Err(EngineError::writing(&current, source)),
            }
        }
        Ok(())
    }

    fn make_parent(&self, relative: &Path, name: &str) -> Result<PathBuf> {
        if let Some(parent) = relative.parent() {
            self.make_dirs(parent, name)?;
        }
        Ok(self.dest.join(relative))
    }

    fn write_file(
        &mut self,
        relative: &Path,
        reader: &mut impl Read,
        mode: u32,
        name: &str,
    ) -> Result<()> {
        let path = self.make_parent(relative, name)?;
        // `create_new` never follows a link and never replaces: a second entry with
        // the same name cannot overwrite the first (or a link's target).
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    self.unsafe_entry(name, "appears twice in the archive")
                } else {
                    EngineError::writing(&path, source)
                }
            })?;
        let allowed = MAX_TOTAL_BYTES.saturating_sub(self.bytes);
        let written = std::io::copy(&mut reader.take(allowed + 1), &mut file)
            .map_err(|source| EngineError::writing(&path, source))?;
        self.bytes += written;
        if written > allowed {
            return Err(self.unsafe_entry(
                name,
                format!("unpacks past {} GiB in total", MAX_TOTAL_BYTES >> 30),
            ));
        }
        set_mode(&path, mode).map_err(|source| EngineError::writing(&path, source))
    }

    fn make_link(&self, relative: &Path, target: &str, name: &str) -> Result<()> {
        link_destination(relative, target).map_err(|problem| self.unsafe_entry(name, problem))?;
        let path = self.make_parent(relative, name)?;
        create_symlink(target, &path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                self.unsafe_entry(name, "appears twice in the archive")
            } else if source.kind() == std::io::ErrorKind::Unsupported {
                self.unsafe_entry(name, "is a link, which this system cannot unpack")
            } else {
                EngineError::writing(&path, source)
            }
        })
    }

    /// A tar hard link becomes a copy of the file it names, which must be a regular
    /// file unpacked earlier from this archive, reached through real folders only:
    /// a link on the way (`t -> s/..` after `s -> .`) passes the name checks but can
    /// lead outside, and the final check of links comes after the copy.
    fn copy_hard_link(&mut self, relative: &Path, target: &str, name: &str) -> Result<()> {
        let source_relative = safe_entry_path(target)
            .map_err(|problem| self.unsafe_entry(name, format!("is a hard link that {problem}")))?;
        let mut on_the_way = self.dest.clone();
        let folders = source_relative
            .parent()
            .into_iter()
            .flat_map(Path::components);
        for part in folders {
            on_the_way.push(part);
            if !std::fs::symlink_metadata(&on_the_way).is_ok_and(|m| m.file_type().is_dir()) {
                return Err(self.unsafe_entry(
                    name,
                    format!(
                        "is a hard link through `{}`, which is not a folder of the archive (a link could lead outside)",
                        on_the_way.strip_prefix(&self.dest).unwrap_or(&on_the_way).display()
                    ),
                ));
            }
        }
        let source = self.dest.join(&source_relative);
        let is_unpacked_file = std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file());
        if !is_unpacked_file {
            return Err(
                self.unsafe_entry(name, "is a hard link to a file that is not in the archive")
            );
        }
        let mode = std::fs::metadata(&source)
            .map(|m| permissions_mode(&m))
            .unwrap_or(0o644);
        let mut reader =
            std::fs::File::open(&source).map_err(|error| EngineError::writing(&source, error))?;
        self.write_file(relative, &mut reader, mode, name)
    }

    /// By real path now that everything is there: `s -> .` then `t -> s/s/..` passes
    /// the name check but lands outside.
    fn check_links_resolve_inside(&self) -> Result<()> {
        let root = self
            .dest
            .canonicalize()
            .map_err(|source| EngineError::writing(&self.dest, source))?;
        let mut pending = vec![self.dest.clone()];
        while let Some(dir) = pending.pop() {
            let entries =
                std::fs::read_dir(&dir).map_err(|source| EngineError::writing(&dir, source))?;
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                let relative = path
                    .strip_prefix(&self.dest)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                if kind.is_symlink() {
                    match path.canonicalize() {
                        Ok(real) if real.starts_with(&root) => {}
                        Ok(_) => {
                            return Err(self.unsafe_entry(
                                &relative,
                                "is a link that points outside the folder",
                            ))
                        }
                        Err(_) => {
                            return Err(self.unsafe_entry(
                                &relative,
                                "is a link to something not in the archive",
                            ))
                        }
                    }
                } else if kind.is_dir() {
                    pending.push(path);
                }
            }
        }
        Ok(())
    }
}

fn special_file_problem(file_type: u32) -> &'static str {
    match file_type {
        0o020_000 | 0o060_000 => "is a device file",
        0o010_000 => "is a named pipe",
        0o140_000 => "is a socket",
        _ => "has an unknown file type",
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    // Executable for everyone when the archive says so for anyone; never setuid.
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn permissions_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn permissions_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

/// Makes `path` executable (a program from an archive that did not say so).
#[cfg(unix)]
pub fn make_executable(path: &Path) -> std::io::Result<()> {
    set_mode(path, 0o755)
}

#[cfg(not(unix))]
pub fn make_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_symlink(target: &str, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn create_symlink(_target: &str, _path: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_stay_inside() {
        assert_eq!(
            safe_entry_path("llama-b1/llama-server").unwrap(),
            PathBuf::from("llama-b1/llama-server")
        );
        assert_eq!(
            safe_entry_path("./build/bin/").unwrap(),
            PathBuf::from("build/bin")
        );
        assert_eq!(
            safe_entry_path("bin\\ggml.dll").unwrap(),
            PathBuf::from("bin/ggml.dll")
        );
        for bad in [
            "/etc/passwd",
            "\\evil.dll",
            "C:\\Windows\\x.dll",
            "c:x",
            "../x",
            "a/../../x",
            "a/..",
            "a\\..\\..\\x",
            "a\0b",
        ] {
            assert!(safe_entry_path(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            safe_entry_path("../x").unwrap_err(),
            "climbs out of the folder with `..`"
        );
        assert_eq!(safe_entry_path("/x").unwrap_err(), "has an absolute path");
    }

    #[test]
    fn link_targets_are_resolved_from_the_links_folder() {
        let link = Path::new("bin/libggml.so");
        assert_eq!(
            link_destination(link, "libggml.so.0").unwrap(),
            PathBuf::from("bin/libggml.so.0")
        );
        assert_eq!(
            link_destination(link, "../lib/libggml.so.0").unwrap(),
            PathBuf::from("lib/libggml.so.0")
        );
        assert!(link_destination(link, "../../etc/passwd").is_err());
        assert!(link_destination(Path::new("top"), "..").is_err());
        assert!(link_destination(link, "/usr/lib/libc.so.6").is_err());
        assert!(link_destination(link, "").is_err());
    }

    #[test]
    fn formats_come_from_the_name() {
        assert_eq!(
            ArchiveFormat::from_name("llama-b1-bin-ubuntu-x64.tar.gz"),
            Some(ArchiveFormat::TarGz)
        );
        assert_eq!(
            ArchiveFormat::from_name("x.TGZ"),
            Some(ArchiveFormat::TarGz)
        );
        assert_eq!(
            ArchiveFormat::from_name("sd-bin-win-x64.zip"),
            Some(ArchiveFormat::Zip)
        );
        assert_eq!(ArchiveFormat::from_name("x.7z"), None);
    }

    #[test]
    fn single_root_descends_through_wrapper_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("build/bin")).unwrap();
        std::fs::write(dir.path().join("build/bin/llama-server"), b"x").unwrap();
        std::fs::write(dir.path().join("build/bin/libggml.so"), b"x").unwrap();
        assert_eq!(single_root(dir.path()), dir.path().join("build/bin"));
        std::fs::write(dir.path().join("LICENSE"), b"x").unwrap();
        assert_eq!(single_root(dir.path()), dir.path());
        let names = vec!["sd-cli".to_owned(), "llama-server".to_owned()];
        assert_eq!(
            find_executable(dir.path(), &names).unwrap(),
            PathBuf::from("build/bin/llama-server")
        );
    }
}
