//! The first run: a curated list of models and the one proposed for this machine.
//! The wizard then uses the ordinary model download, binary setup and instance
//! start, so a first run and a later one take the same paths.

mod curated;
mod proposal;

pub use curated::{curated_models, CuratedModel};
pub use proposal::{propose, recommend_first_model, CuratedChoice, FirstRunProposal};
