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

use super::forward::{generate, Generation};
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
    let fallback = default_tokenizer(&args.model, format);
    let tokenizer = read_tokenizer(
        args.tokenizer.as_deref(),
        &fallback,
        model.config.vocab_size,
    )?;
    generate_and_print(
        args,
        tokenizer.as_ref(),
        &format!("{TOKENIZER_FILE} beside the checkpoint"),
        out,
        |prompt, n| generate(&model, prompt, n),
    )
}

/// `--tokenizer FILE` when given, else `fallback` when that file exists.
pub(crate) fn read_tokenizer(
    given: Option<&Path>,
    fallback: &Path,
    vocab: usize,
) -> Result<Option<Tokenizer>> {
    match given {
        Some(p) => Ok(Some(Tokenizer::read(p, vocab)?)),
        None if fallback.is_file() => Ok(Some(Tokenizer::read(fallback, vocab)?)),
        None => Ok(None),
    }
}

/// A Llama's prompts: `--prompt` through the tokenizer (`tokenizer_hint`: where else one could
/// come from, for the missing-tokenizer error), else the ids of `--input` (`simulate`, and
/// `device run` on a Llama blob).
pub(crate) fn prompts(
    prompt: Option<&str>,
    input: Option<&Path>,
    tokenizer: Option<&Tokenizer>,
    tokenizer_hint: &str,
) -> Result<Vec<Vec<usize>>> {
    match (prompt, input) {
        (Some(text), _) => {
            let t = tokenizer.ok_or_else(|| {
                Error::Input(format!(
                    "--prompt needs a tokenizer: --tokenizer FILE (llama2.c tokenizer.bin) or {tokenizer_hint}"
                ))
            })?;
            Ok(vec![t.encode(text)?])
        }
        (None, Some(p)) => read_ids(p),
        (None, None) => Err(Error::Input("give --input FILE or --prompt TEXT".into())),
    }
}

/// What `simulate` does alike on a checkpoint (f32) and on a blob (int8,
/// `super::int8::simulate`): the prompts (`--prompt` through the tokenizer, else the ids of
/// `--input`), `generate(prompt, max_new_tokens)` for each, and the text or `--json` output.
/// `tokenizer_hint` says where else a tokenizer could come from, for the missing-tokenizer
/// error.
pub(crate) fn generate_and_print(
    args: &SimulateArgs,
    tokenizer: Option<&Tokenizer>,
    tokenizer_hint: &str,
    out: &mut dyn Write,
    mut generate: impl FnMut(&[usize], usize) -> Result<Generation>,
) -> Result<()> {
    let prompts = prompts(
        args.prompt.as_deref(),
        args.input.as_deref(),
        tokenizer,
        tokenizer_hint,
    )?;
    let mut generated = Vec::with_capacity(prompts.len());
    let mut logits = Vec::with_capacity(prompts.len());
    for p in &prompts {
        let g = generate(p, args.max_new_tokens)?;
        generated.push(g.ids);
        logits.push(g.logits);
    }
    let texts: Option<Vec<String>> =
        tokenizer.map(|t| generated.iter().map(|ids| t.decode(ids)).collect());
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
