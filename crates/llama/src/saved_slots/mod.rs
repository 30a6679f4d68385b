//! Conversations kept across a stop: before Switchyard stops a server for an
//! image, an eviction, an idle unload or a restart, llama-server writes each slot's
//! KV cache to a file (`POST /slots/{id}?action=save`); when a server with the very
//! same model and configuration is back, the files are read into its slots
//! (`action=restore`) before any held request reaches it, so the next turn of a long
//! conversation finds its prefix instead of reading the whole prompt again.
//!
//! Layout: `<kv-cache>/<instance>/<fingerprint>/` holds `config.json` (what the
//! fingerprint covers, for people and for model deletion) and `slot-<id>.bin`. The
//! fingerprint covers the model and projector files (path, size, modification
//! time), the binary (the same), the cache's shape (context, parallel slots,
//! unified or not, cache types, flash attention, `--swa-full`) and the person's
//! extra arguments; a start with another fingerprint deletes the instance's other
//! folders, so a cache of another configuration is never loaded. Where the layers
//! run (`-ngl`) is left out: the saved state is the same wherever the cache lives,
//! and llama.cpp checks each layer's types and sizes again when it reads a file.
//!
//! Every file is written under a `.partial` name and renamed once llama-server
//! said it was complete; the folders are the user's only (0700): they hold the
//! conversations.

mod api;
mod folder;

pub use api::{restore_slots, save_slots, ServerAccess};
pub use folder::{SlotFolder, SlotStore};

use std::time::Duration;

use serde::Serialize;
use ts_rs::TS;

/// When slots are saved and how much disk they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSavePolicy {
    pub enabled: bool,
    /// The whole folder's size; the oldest files go first.
    pub budget_bytes: u64,
    /// A save that takes longer is abandoned (the stop goes on, the slots it did
    /// not save are read again after the reload).
    pub save_deadline: Duration,
    /// The longest a restore holds the requests waiting for the server.
    pub restore_deadline: Duration,
}

/// 4 GiB: a few long conversations of a 7–8B model at f16.
pub const DEFAULT_BUDGET_BYTES: u64 = 4 << 30;

impl Default for SlotSavePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            budget_bytes: DEFAULT_BUDGET_BYTES,
            save_deadline: Duration::from_secs(10),
            restore_deadline: Duration::from_secs(30),
        }
    }
}

/// Saving or restoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SlotAction {
    Save,
    Restore,
}

/// What one save or restore of an instance's slots did, for the event log.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SlotsReport {
    pub instance: String,
    pub action: SlotAction,
    /// Slots that held tokens and were saved, or were restored.
    pub slots: u32,
    #[ts(type = "number")]
    pub tokens: u64,
    #[ts(type = "number")]
    pub bytes: u64,
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    /// What went wrong, slot by slot (a failed slot is read again by the server).
    pub problems: Vec<String>,
    /// Files the folder's budget deleted after this save (the oldest first).
    pub evicted_files: u32,
}

impl SlotsReport {
    fn new(instance: &str, action: SlotAction) -> Self {
        Self {
            instance: instance.to_owned(),
            action,
            slots: 0,
            tokens: 0,
            bytes: 0,
            elapsed_ms: 0,
            problems: Vec::new(),
            evicted_files: 0,
        }
    }

    /// A save or restore that could not begin.
    pub(crate) fn failed(instance: &str, action: SlotAction, problem: String) -> Self {
        let mut report = Self::new(instance, action);
        report.problems.push(problem);
        report
    }

    /// Nothing to tell: no slot held tokens and nothing failed.
    pub fn is_empty(&self) -> bool {
        self.slots == 0 && self.problems.is_empty() && self.evicted_files == 0
    }
}

/// The saved caches on disk, for the debug panel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SavedSlotsUsage {
    pub enabled: bool,
    pub folder: String,
    #[ts(type = "number")]
    pub bytes: u64,
    pub files: u32,
    #[ts(type = "number")]
    pub budget_bytes: u64,
}
