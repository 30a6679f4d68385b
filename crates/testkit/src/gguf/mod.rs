//! Writes real GGUF files: any metadata and tensors, and complete tiny models that
//! the real llama-server loads and chats with.

mod diffusion;
mod llama;
mod quant;
mod writer;

pub use diffusion::write_sdxs_512;
pub use llama::{LlamaSpec, TensorType, THINKING_CHAT_TEMPLATE};
pub use writer::{GgufWriter, TensorSpec};
