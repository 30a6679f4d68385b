//! Writes real GGUF files: any metadata and tensors, and complete tiny models that
//! the real llama-server loads and chats with.

mod diffusion;
pub mod hostile;
mod llama;
mod quant;
mod writer;

pub use diffusion::{shared_sdxs_512, write_sdxs_512, SharedSdxs};
pub use llama::{Architecture, LlamaSpec, TensorType, THINKING_CHAT_TEMPLATE};
pub use writer::{GgufWriter, TensorSpec};
