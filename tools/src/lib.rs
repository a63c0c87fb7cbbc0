//! Host-side tools for `core-attn`: checkpoint import, the f32 reference implementation, and
//! the `tools` CLI.
//!
//! - [`checkpoint`]: safetensors, `config.json`, `.npy` and image readers.
//! - [`model`]: typed f32 models (ViT classifier, GPT-2, vision encoder-decoder) loaded with
//!   strict checks on every tensor.
//! - [`float`]: the f32 reference forward passes.
//! - [`cli`]: the command-line interface (one module per subcommand).
//! - [`llama`]: Llama-family decoders (llama2.c and Hugging Face checkpoints, `tokenizer.bin`,
//!   the f32 reference with a KV cache).
//! - [`vocab`]: character vocabularies (`vocab.json`) of character-level LMs.
//! - [`error`]: the crate's error type; every message is one line.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod float;
pub mod int8;
pub mod llama;
pub mod model;
pub mod vocab;

pub use error::{Error, Result};
pub use model::Model;
