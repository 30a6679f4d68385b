//! The model store: installed models, their files and metadata, and the downloads
//! that bring them in.

pub mod add;
pub mod catalog;
pub mod download;
pub mod guess;
pub mod hub;
pub mod names;
mod store;

pub use add::{AddModel, AddModelFile, ModelLocation, RemoteModel};
pub use catalog::{FileRole, InstalledModel, ModelFile, ModelKind, ModelSource};
pub use guess::FileGuess;
pub use store::{
    DiskUsage, DownloadFileRequest, DownloadRequest, DownloadState, DownloadStatus, ModelStore,
    ModelsEvent,
};
