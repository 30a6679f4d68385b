//! Lock access that survives poisoning. Every lock in the engine guards values that
//! are replaced whole or are caches, so a panic elsewhere cannot leave them
//! half-written and recovering the guard is safe. Also the file behind an OS lock
//! between processes.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Opens (creating it, keeping its content) the file an OS lock is taken on.
pub fn lock_file(path: &std::path::Path) -> crate::errors::Result<std::fs::File> {
    std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| crate::errors::EngineError::writing(path, source))
}
