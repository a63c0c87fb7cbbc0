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
//! and `eval` look for it. The blob and that sidecar are written as one step
//! ([`write_atomic_all`]): both or neither, and an existing pair is left untouched on any error.

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
    /// Llama checkpoints: llama2.c tokenizer.bin (default: `tokenizer.bin` beside the `.bin` /
    /// inside the directory); its pieces go into the blob, the file to `<output>.tokenizer.bin`.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Llama checkpoints: the blob's context (RoPE table rows, KV cache capacity), at most the
    /// checkpoint's `seq_len` (default: `seq_len`). The KV cache is `2 · layers · N · kv_dim`
    /// bytes: stories260K at its 512 positions needs 160 KiB, at 64 20 KiB.
    #[arg(long)]
    pub max_positions: Option<usize>,
    /// Llama checkpoints: pack-time outlier handling (no format change): the SwiGLU product's
    /// channels migrated into W2 by power-of-two SmoothQuant scales (α 0.5), and every
    /// activation's calibration range but the logits' clipped to its least-square-error range.
    #[arg(long)]
    pub smooth: bool,
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_all(&[(path, bytes)])
}

/// Write several files as one step: every file goes to a temporary file in its target's
/// directory first (written and synced); only when all are written are they renamed into
/// place. If anything fails, nothing is left behind: no new file, no temporary file, and every
/// file that existed before has its previous contents (a replaced file is restored from a hard
/// link — or a copy — taken just before its rename). Errors name the target path.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<()> {
    write_atomic_all_with(files, &mut |from, to| std::fs::rename(from, to))
}

/// [`write_atomic_all`] with the rename step injectable (tests make it fail part-way).
fn write_atomic_all_with(
    files: &[(&Path, &[u8])],
    rename: &mut dyn FnMut(&Path, &Path) -> std::io::Result<()>,
) -> Result<()> {
    let side = |path: &Path, kind: &str| -> Result<PathBuf> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| Error::Input(format!("{}: not a file path", path.display())))?;
        Ok(dir.join(format!(
            ".{}.{kind}{}",
            name.to_string_lossy(),
            std::process::id()
        )))
    };
    // 1. Every file to its temporary file.
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let written = (|| {
        for &(path, bytes) in files {
            let tmp = side(path, "tmp")?;
            temps.push(tmp.clone());
            let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
            f.write_all(bytes).map_err(|e| Error::io(path, e))?;
            f.sync_all().map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    // 2. Rename them into place, keeping a way back for each replaced file.
    // `done[i]`: file i renamed into place, with its backup if it replaced a file.
    let mut done: Vec<Option<PathBuf>> = Vec::with_capacity(files.len());
    let mut result = Ok(());
    for (&(path, _), tmp) in files.iter().zip(&temps) {
        let backup = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            let b = match side(path, "bak") {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let _ = std::fs::remove_file(&b);
            if std::fs::hard_link(path, &b).is_err() {
                if let Err(e) = std::fs::copy(path, &b) {
                    let _ = std::fs::remove_file(&b);
                    result = Err(Error::io(path, e));
                    break;
                }
            }
            Some(b)
        } else {
            None
        };
        if let Err(e) = rename(tmp, path) {
            if let Some(b) = backup {
                let _ = std::fs::remove_file(b);
            }
            result = Err(Error::io(path, e));
            break;
        }
        done.push(backup);
    }
    if result.is_err() {
        // Undo: restore what each renamed file replaced, or remove it if it was new.
        for ((path, _), backup) in files.iter().zip(&done) {
            match backup {
                Some(b) => {
                    let _ = std::fs::rename(b, path);
                }
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        for t in &temps[done.len()..] {
            let _ = std::fs::remove_file(t);
        }
    } else {
        for b in done.into_iter().flatten() {
            let _ = std::fs::remove_file(b);
        }
    }
    result
}

/// Runs `convert`.
pub fn run(args: &ConvertArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(format) = crate::llama::detect(&args.checkpoint) {
        return convert_llama(args, format, out);
    }
    if args.tokenizer.is_some() || args.max_positions.is_some() || args.smooth {
        return Err(Error::Input(
            "--tokenizer, --max-positions and --smooth are for Llama checkpoints (llama2.c .bin or a Hugging Face Llama directory)"
                .into(),
        ));
    }
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
    // The blob and its vocabulary sidecar are written as one step: both or neither.
    let sidecar = Vocab::blob_sidecar(&args.output);
    let mut files: Vec<(&Path, &[u8])> = vec![(&args.output, &bytes)];
    if let Some(v) = &vocab {
        files.push((&sidecar, v));
    }
    write_atomic_all(&files)?;
    writeln!(
        out,
        "wrote {} ({} bytes, {})",
        args.output.display(),
        bytes.len(),
        model.kind()
    )
    .map_err(|e| Error::io("<stdout>", e))
}

/// `convert` on a Llama checkpoint: the blob (model kind 4, the tokenizer's pieces as its
/// vocabulary) and `<output>.tokenizer.bin`, written as one step.
fn convert_llama(
    args: &ConvertArgs,
    format: crate::llama::Format,
    out: &mut dyn Write,
) -> Result<()> {
    use crate::llama::{int8, simulate::default_tokenizer, tokenizer::Tokenizer};
    let mut model = crate::llama::load(&args.checkpoint, format)?;
    if let Some(n) = args.max_positions {
        if n == 0 || n > model.config.seq_len {
            return Err(Error::Input(format!(
                "--max-positions {n} outside 1..={} (the checkpoint's sequence length)",
                model.config.seq_len
            )));
        }
        model.config.seq_len = n;
    }
    let vocab = model.config.vocab_size;
    let tok_path = match &args.tokenizer {
        Some(p) => Some(p.clone()),
        None => Some(default_tokenizer(&args.checkpoint, format)).filter(|p| p.is_file()),
    };
    let tokenizer = tok_path
        .as_deref()
        .map(|p| Tokenizer::read(p, vocab))
        .transpose()?;
    let tok_bytes = tok_path
        .as_deref()
        .map(|p| std::fs::read(p).map_err(|e| Error::io(p, e)))
        .transpose()?;
    let transform = if args.smooth {
        int8::PackTransform::SMOOTH
    } else {
        int8::PackTransform::NONE
    };
    let bytes = int8::convert_with(
        &model,
        args.calibration.as_deref(),
        tokenizer.as_ref(),
        transform,
    )?;
    let sidecar = int8::tokenizer_sidecar(&args.output);
    let mut files: Vec<(&Path, &[u8])> = vec![(&args.output, &bytes)];
    if let Some(t) = &tok_bytes {
        files.push((&sidecar, t));
    }
    write_atomic_all(&files)?;
    writeln!(
        out,
        "wrote {} ({} bytes, llama)",
        args.output.display(),
        bytes.len()
    )
    .map_err(|e| Error::io("<stdout>", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The second rename of a pair fails after the first succeeded: the first target gets its
    /// previous contents back (or disappears if it was new), and no temporary or backup file
    /// remains.
    ///
    /// Injected: no undo step (`if result.is_err() { … }` removed) → fails with `a.bin: left:
    /// "new a" right: "old a"`.
    #[test]
    fn failed_second_rename_restores_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a.bin"), tmp.path().join("b.bin"));
        for a_existed in [true, false] {
            if a_existed {
                std::fs::write(&a, "old a").unwrap();
            }
            std::fs::write(&b, "old b").unwrap();
            let before = listing(tmp.path());
            let mut calls = 0;
            let r = write_atomic_all_with(&[(&a, b"new a"), (&b, b"new b")], &mut |from, to| {
                calls += 1;
                if calls == 2 {
                    Err(std::io::Error::other("injected"))
                } else {
                    std::fs::rename(from, to)
                }
            });
            assert_eq!(
                r.unwrap_err().to_string(),
                format!("{}: injected", b.display())
            );
            assert_eq!(listing(tmp.path()), before, "a_existed {a_existed}");
            if a_existed {
                assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a", "a.bin");
                std::fs::remove_file(&a).unwrap();
            }
            assert_eq!(std::fs::read_to_string(&b).unwrap(), "old b");
        }
        // And the plain path writes both.
        write_atomic_all(&[(&a, b"new a"), (&b, b"new b")]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(listing(tmp.path()), ["a.bin", "b.bin"]);
    }
}
