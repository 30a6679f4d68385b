//! The model store: installed models, their files and metadata, and the downloads
//! that bring them in.

pub mod download;
pub mod names;
