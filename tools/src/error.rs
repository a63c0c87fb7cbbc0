//! The one error type of the tools crate.
//!
//! Every variant renders as a single line that names the file, tensor or config key at fault,
//! so that the CLI can print `error: {err}` and nothing else.

use std::path::PathBuf;

/// Errors from checkpoint import, the float reference and the CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A safetensors file is malformed (bad header, offsets out of range, ...).
    #[error("{}: invalid safetensors file: {reason}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor is stored with a dtype this importer does not convert.
    #[error("tensor `{tensor}`: unsupported dtype {dtype} (supported: F32, F16, BF16)")]
    UnsupportedDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype string from the file.
        dtype: String,
    },
    /// The architecture needs a tensor the checkpoint does not have.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// The checkpoint has a tensor the architecture does not use (and that is not known to be
    /// safely ignorable, like `*.pooler.*`).
    #[error("unexpected tensor `{0}`")]
    UnexpectedTensor(String),
    /// A tensor's shape differs from the one the config implies.
    #[error("tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape stored in the file.
        found: Vec<usize>,
    },
    /// A weight contains NaN or an infinity.
    #[error("tensor `{tensor}` contains {value} at flat index {index}")]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// `NaN`, `inf` or `-inf`.
        value: &'static str,
        /// Flat (C order) index of the first bad value.
        index: usize,
    },
    /// A config key has a value this crate does not support.
    #[error("config.json: unsupported value for `{key}`: {value}")]
    UnsupportedConfig {
        /// Key path, e.g. `decoder.activation_function`.
        key: String,
        /// The offending value as JSON.
        value: String,
    },
    /// A config key is malformed or inconsistent (wrong type, zero, not divisible, ...).
    #[error("config.json: invalid `{key}`: {reason}")]
    InvalidConfig {
        /// Key path.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The config and the tensors describe different models.
    #[error("config disagrees with tensors: {0}")]
    ConfigMismatch(String),
    /// A `.npy` file is malformed or uses an unsupported layout or dtype.
    #[error("{}: invalid .npy file: {reason}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image file is malformed or unsupported.
    #[error("{}: invalid image: {reason}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Model input (pixels, token ids) does not fit the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A model blob failed to parse (corrupt, truncated, wrong magic or version, ...).
    #[error("{}: {reason}", path.display())]
    Blob {
        /// The blob file.
        path: PathBuf,
        /// core-attn's one-line reason (`invalid model blob: ...`).
        reason: String,
    },
    /// A `vocab.json` is malformed or does not fit the model.
    #[error("{}: invalid vocabulary: {reason}", path.display())]
    Vocab {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The int8 path (calibration, quantization, a runner) failed.
    #[error("int8: {0}")]
    Int8(String),
    /// A llama2.c checkpoint (`.bin`) is malformed (wrong size, bad header, non-finite weight).
    #[error("{}: invalid llama2.c checkpoint: {reason}", path.display())]
    Llama2c {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A llama2.c `tokenizer.bin` is malformed or does not fit the model.
    #[error("{}: invalid tokenizer: {reason}", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A feature that is planned but not implemented yet.
    #[error("not implemented: {0}")]
    Unimplemented(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
