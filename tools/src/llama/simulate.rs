//! `tools simulate` on a Llama checkpoint (f32 path): a llama2.c `.bin` or a Hugging Face
//! `LlamaForCausalLM` directory.
//!
//! Prompts: `--prompt TEXT`, encoded as `run.c` does with the llama2.c `tokenizer.bin` given by
//! `--tokenizer FILE` (default: `tokenizer.bin` beside the `.bin`, or inside the directory); or
//! `--input ids.npy` (int64 `[N, T]` or `[T]`, fed as they are). Greedy decoding of
//! `--max-new-tokens N` ids per prompt ([`super::forward::generate`]: `run.c` stops before a
//! BOS, Hugging Face after an eos). Output: the text `run.c` prints, one line per prompt (without
//! a tokenizer, the ids); `--json`: `{"generated": [[ids] per prompt], "logits": [[[vocab] per
//! position] per prompt], "text": [..] (with a tokenizer)}` where `logits` has one row per
//! prompt position, then one per new id.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::forward::generate;
use super::tokenizer::Tokenizer;
use super::{load, Format};
use crate::cli::simulate::{read_ids, SimulateArgs};
use crate::error::{Error, Result};

/// Default tokenizer file name.
pub const TOKENIZER_FILE: &str = "tokenizer.bin";

/// Where the tokenizer is looked for when `--tokenizer` is not given.
pub(crate) fn default_tokenizer(model: &Path, format: Format) -> PathBuf {
    match format {
        Format::Llama2c => model
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(TOKENIZER_FILE),
        Format::HuggingFace => model.join(TOKENIZER_FILE),
    }
}

/// Runs `simulate` on a Llama checkpoint of the given format.
pub fn run(args: &SimulateArgs, format: Format, out: &mut dyn Write) -> Result<()> {
    if args.attention_map.is_some() {
        return Err(Error::Input(
            "--attention-map needs an image model (ViT or encoder-decoder)".into(),
        ));
    }
    if args.vocab.is_some() {
        return Err(Error::Input(
            "--vocab is for character LMs; a Llama model takes --tokenizer FILE (llama2.c tokenizer.bin)"
                .into(),
        ));
    }
    let model = load(&args.model, format)?;
    let vocab_size = model.config.vocab_size;
    let tokenizer = match &args.tokenizer {
        Some(p) => Some(Tokenizer::read(p, vocab_size)?),
        None => {
            let p = default_tokenizer(&args.model, format);
            if p.is_file() {
                Some(Tokenizer::read(&p, vocab_size)?)
            } else {
                None
            }
        }
    };
    let prompts = match (&args.prompt, &args.input) {
        (Some(text), _) => {
            let t = tokenizer.as_ref().ok_or_else(|| {
                Error::Input(format!(
                    "--prompt needs a tokenizer: --tokenizer FILE (llama2.c tokenizer.bin) or {TOKENIZER_FILE} beside the checkpoint"
                ))
            })?;
            vec![t.encode(text)?]
        }
        (None, Some(p)) => read_ids(p)?,
        (None, None) => return Err(Error::Input("give --input FILE or --prompt TEXT".into())),
    };
    let mut generated = Vec::with_capacity(prompts.len());
    let mut logits = Vec::with_capacity(prompts.len());
    for p in &prompts {
        let g = generate(&model, p, args.max_new_tokens)?;
        generated.push(g.ids);
        logits.push(g.logits);
    }
    let texts: Option<Vec<String>> = tokenizer
        .as_ref()
        .map(|t| generated.iter().map(|ids| t.decode(ids)).collect());
    let text = if args.json {
        let mut v = json!({"generated": generated, "logits": logits});
        if let Some(t) = &texts {
            v["text"] = json!(t);
        }
        v.to_string()
    } else {
        match &texts {
            Some(t) => t.join("\n"),
            None => generated
                .iter()
                .enumerate()
                .map(|(i, s)| format!("sequence {i}: {s:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    };
    writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
}
