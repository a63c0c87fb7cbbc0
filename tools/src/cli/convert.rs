//! `tools convert CHECKPOINT_DIR -o MODEL_BLOB [--calibration FILE.npy]`.
//!
//! Loads the checkpoint, maps it onto core-attn's f64 reference, calibrates (on FILE.npy, or on
//! a synthesized seeded set: see [`crate::int8`]), quantizes and packs. The blob is written
//! atomically: to a temporary file in the output's directory, then renamed over the output, so
//! no output file appears on any error. Same inputs give the same bytes.
//!
//! A language model's `vocab.json` (see [`crate::vocab`]) is checked before anything is
//! written, embedded in the blob's optional vocabulary sections (so that a device can turn ids
//! into text, `core_attn::blob::Vocab`) and copied to `<output>.vocab.json`, where `simulate`
//! and `eval` look for it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::vocab::Vocab;

/// Arguments of `convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Checkpoint directory (config.json + model.safetensors).
    pub checkpoint: PathBuf,
    /// Output blob file.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Calibration inputs (.npy): float32 images (N, C, H, W) or int64 prompts (N, T).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `convert`.
pub fn run(args: &ConvertArgs, out: &mut dyn Write) -> Result<()> {
    let model = Model::load(&args.checkpoint)?;
    let vocab_size = match &model {
        Model::Vit(_) => None,
        Model::Gpt2(m) => Some(m.config.vocab_size),
        Model::EncoderDecoder(m) => Some(m.decoder.config.vocab_size),
    };
    // Checked before anything is written: a bad vocab.json leaves no output.
    let vocab_src = args.checkpoint.join("vocab.json");
    let (parsed, vocab) = match vocab_size {
        Some(v) if vocab_src.is_file() => (
            Some(Vocab::read(&vocab_src, v)?),
            Some(std::fs::read(&vocab_src).map_err(|e| Error::io(&vocab_src, e))?),
        ),
        _ => (None, None),
    };
    // The blob carries the vocabulary (for the device); the sidecar stays for the host tools.
    let bytes =
        crate::int8::convert_with_vocab(&model, args.calibration.as_deref(), parsed.as_ref())?;
    write_atomic(&args.output, &bytes)?;
    if let Some(v) = vocab {
        write_atomic(&Vocab::blob_sidecar(&args.output), &v)?;
    }
    writeln!(
        out,
        "wrote {} ({} bytes, {})",
        args.output.display(),
        bytes.len(),
        model.kind()
    )
    .map_err(|e| Error::io("<stdout>", e))
}
