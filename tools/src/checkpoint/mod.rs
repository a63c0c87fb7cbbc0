//! Reading checkpoints and data files: safetensors, `config.json`, `.npy`, PGM/PNG.
//!
//! A checkpoint is a directory with `config.json` and `model.safetensors`, as written by
//! Hugging Face `save_pretrained(dir, safe_serialization=True)`.

pub mod config;
pub mod image;
pub mod npy;
pub mod safetensors;

use std::path::Path;

use crate::error::Result;

pub use config::{read_config, ModelConfig};
pub use safetensors::{read_safetensors, Tensor, TensorMap};

/// File name of the config inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A checkpoint as stored: parsed config and all tensors converted to f32.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The parsed `config.json`.
    pub config: ModelConfig,
    /// Every tensor of `model.safetensors`.
    pub tensors: TensorMap,
}

impl Checkpoint {
    /// Reads `dir/config.json` and `dir/model.safetensors`.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = read_config(&dir.join(CONFIG_FILE))?;
        let tensors = read_safetensors(&dir.join(WEIGHTS_FILE))?;
        Ok(Checkpoint { config, tensors })
    }
}
