#![doc = include_str!("../README.md")]
#![no_std]
// docs.rs: a badge on every item that needs a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
// `unsafe` is denied everywhere but in `dsp` (the `asm!` kernels), where every block carries a
// `// SAFETY:` argument.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod activation;
pub mod attention;
pub mod blob;
pub mod block;
pub mod device;
#[allow(unsafe_code)]
pub mod dsp;
pub mod embed;
pub mod error;
pub mod linear;
pub mod llama;
pub mod model;
pub mod norm;
pub mod position;
#[cfg(feature = "std")]
pub mod quantize_block;
#[cfg(feature = "std")]
pub mod quantize_model;
pub mod requant;
pub mod residual;
pub mod rmsnorm;
pub mod rope;
pub mod softmax;
pub mod swiglu;
pub mod tensor;

#[cfg(feature = "std")]
pub mod reference;

pub use error::{BlobError, Error};
pub use requant::{ChannelRequant, Requant};

/// Largest model width (features per token, and input features of any linear layer) the crate
/// supports. Every accumulator bound in the docs is argued for this width: a dot product of
/// `MAX_WIDTH` int8 × int8 terms is at most `16384 · 16384 = 2^28` in magnitude.
pub const MAX_WIDTH: usize = 16384;

/// Largest sequence length (tokens attended over) the crate supports.
pub const MAX_SEQ_LEN: usize = 16384;
