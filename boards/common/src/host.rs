//! Host side (feature `host`): choose and load the models a firmware embeds, quantize their
//! inputs, generate `OUT_DIR/model_consts.rs` for a board's `build.rs` ([`build`]), and print
//! the reference result lines on the host ([`result_lines`]).
//!
//! # Which models
//! `TATN_MODEL` (comma-separated) overrides a board's default list. Each entry is a blob file,
//! a directory holding exactly one `*.tatn` (e.g. `models/<name>/`), or the name of a model
//! shipped in `boards/common/models/` (`vit-tiny`, `gpt2-tiny`, `encdec-tiny`,
//! `llama2c-tiny`). Relative
//! paths are relative to the board directory (cargo runs `build.rs` there).
//!
//! # Which inputs
//! `TATN_INPUTS` (only with a single model), else `<stem>.inputs.npy` next to the blob, else
//! `inputs.npy` / `input_ids.npy` in its directory: float32 `[N, C, H, W]` images (quantized
//! here with the blob's input scale and zero point, exactly as `tools simulate` does) or int64
//! `[N, T]` / `[T]` prompts. Without a file: deterministic synthetic images, the prompt `[0]`
//! for an LM, or the prompt `[BOS]` for a Llama (llama2.c: a story from scratch; its prompts
//! are encoded on the host, `run.c`'s BPE needs the tokenizer's scores).
//! At most `TATN_MAX_INPUTS` inputs are used (default: 3 images for a ViT, 1 prompt for an LM
//! or a Llama, 2 images for an encoder–decoder); decoders generate `TATN_MAX_NEW` tokens
//! (default 8, capped by the model's positions).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use core_attn::blob::{fnv1a32, Blob, BufferSizes, ModelKind, NO_TOKEN};
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{self as runner};
use core_attn::requant::QParams;

use crate::format;

/// Environment variables that select models and inputs (and `TATN_DEMO`, the human view, see
/// [`demo_table`]). A model is named by its blob's file stem, or by its directory's name when
/// `TATN_MODEL` names a directory.
pub const ENV_VARS: [&str; 5] = [
    "TATN_MODEL",
    "TATN_INPUTS",
    "TATN_MAX_INPUTS",
    "TATN_MAX_NEW",
    "TATN_DEMO",
];

/// The symbol name of embedded blob `i` in the linked firmware (`#[no_mangle]`, so it does not
/// depend on the toolchain's symbol mangling): a `board_common::Align16<[u8; N]>`, i.e. the
/// blob's bytes rounded up to 16.
pub fn blob_symbol(i: usize) -> String {
    format!("TATN_BLOB_{i}")
}

/// The symbol name of the firmware's static [`crate::Arena`] (`#[no_mangle]`, taken with
/// `board_common::take_arena!` on the QEMU boards).
pub const ARENA_SYMBOL: &str = "TATN_ARENA";

/// Test inputs on the host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostInputs {
    /// Quantized images.
    Images(Vec<Vec<i8>>),
    /// Prompt ids.
    Prompts(Vec<Vec<u32>>),
}

/// One model as the host sees it (the same bytes the firmware embeds).
#[derive(Debug, Clone)]
pub struct HostModel {
    /// File stem.
    pub name: String,
    /// Blob file.
    pub path: PathBuf,
    /// Input file used, if any.
    pub inputs_path: Option<PathBuf>,
    /// Blob bytes.
    pub bytes: Vec<u8>,
    /// Why `Blob::parse` failed (the firmware embeds it anyway and refuses it at boot).
    pub parse_error: Option<String>,
    /// Inputs.
    pub inputs: HostInputs,
    /// New tokens (decoders).
    pub max_new: usize,
    /// Buffers the blob needs (zero when it does not parse).
    pub buffers: BufferSizes,
    /// Decoder layers (KV-cache slots).
    pub layers: usize,
    /// The model kind (`None` when the blob does not parse).
    pub kind: Option<ModelKind>,
}

/// Blob bytes copied into 4-byte aligned storage (the zero-copy reader needs it).
pub struct Aligned {
    words: Vec<u32>,
    len: usize,
}

impl Aligned {
    /// Copy `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Aligned {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes (4-byte aligned).
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }

    /// Parse the blob.
    pub fn parse(&self) -> Result<Blob<'_>, core_attn::Error> {
        Blob::parse(self.bytes())
    }
}

/// The `boards/common/models` directory (shipped blobs and inputs).
pub fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn resolve(entry: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(entry);
    if p.is_file() {
        return Ok(p);
    }
    if p.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "tatn"))
            .collect();
        found.sort();
        return match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(format!("{}: expected one *.tatn, found {n}", p.display())),
        };
    }
    let shipped = shipped_dir().join(format!("{entry}.tatn"));
    if !entry.contains('/') && shipped.is_file() {
        return Ok(shipped);
    }
    Err(format!(
        "TATN_MODEL entry {entry:?}: no such blob file, directory or shipped model"
    ))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The models to embed: `TATN_MODEL` if set, else `defaults` (shipped model names).
pub fn selected(defaults: &[&str]) -> Result<Vec<HostModel>, String> {
    let list: Vec<String> = match env("TATN_MODEL") {
        Some(v) => v
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    let inputs = env("TATN_INPUTS").map(PathBuf::from);
    if inputs.is_some() && list.len() != 1 {
        return Err("TATN_INPUTS needs exactly one model in TATN_MODEL".into());
    }
    let max_inputs = parse_env("TATN_MAX_INPUTS")?;
    let max_new = parse_env("TATN_MAX_NEW")?.unwrap_or(8);
    list.iter()
        .map(|e| {
            let mut m = load(&resolve(e)?, inputs.as_deref(), max_inputs, max_new)?;
            // `models/<name>/`: the model is called by its directory's name.
            if let Some(dir) = Path::new(e)
                .is_dir()
                .then(|| Path::new(e).canonicalize().ok())
                .flatten()
            {
                if let Some(n) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) {
                    if !n.is_empty() && !n.contains(char::is_whitespace) {
                        m.name = n;
                    }
                }
            }
            Ok(m)
        })
        .collect()
}

fn parse_env(name: &str) -> Result<Option<usize>, String> {
    env(name)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{name}={v:?}: not a number"))
        })
        .transpose()
}

fn find_inputs(blob: &Path) -> Option<PathBuf> {
    let dir = blob.parent()?;
    let stem = blob.file_stem()?.to_string_lossy();
    [
        dir.join(format!("{stem}.inputs.npy")),
        dir.join("inputs.npy"),
        dir.join("input_ids.npy"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Load one blob and its inputs (see the module docs).
pub fn load(
    path: &Path,
    inputs: Option<&Path>,
    max_inputs: Option<usize>,
    max_new: usize,
) -> Result<HostModel, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{}: model name must be one word", path.display()));
    }
    let mut m = HostModel {
        name,
        path: path.to_path_buf(),
        inputs_path: None,
        bytes,
        parse_error: None,
        inputs: HostInputs::Images(Vec::new()),
        max_new: 0,
        buffers: BufferSizes::default(),
        layers: 0,
        kind: None,
    };
    let aligned = Aligned::new(&m.bytes);
    let blob = match aligned.parse() {
        Ok(b) => b,
        Err(e) => {
            m.parse_error = Some(e.to_string());
            return Ok(m);
        }
    };
    let h = *blob.header();
    m.buffers = blob.buffers();
    m.layers = core_attn::device::ModelInfo::of_blob(&blob).layers;
    m.kind = Some(blob.kind());
    m.inputs_path = inputs.map(Path::to_path_buf).or_else(|| find_inputs(path));
    let npy = match &m.inputs_path {
        Some(p) => Some(read_npy(p)?),
        None => None,
    };
    let e = h.encoder;
    let image_len = e.channels * e.height * e.image_width;
    m.inputs = match blob.kind() {
        ModelKind::VitClassifier | ModelKind::EncoderDecoder => {
            let n = max_inputs.unwrap_or(if blob.kind() == ModelKind::VitClassifier {
                3
            } else {
                2
            });
            let q = QParams {
                scale: f32::from_bits(h.input_scale_bits) as f64,
                zero_point: h.input_zero_point,
            };
            let images: Vec<Vec<i8>> = match npy {
                Some(Npy::F32(shape, data)) => {
                    if shape
                        .iter()
                        .skip(shape.len().saturating_sub(3))
                        .product::<usize>()
                        != image_len
                    {
                        return Err(format!(
                            "{}: images of shape {shape:?} do not match the model's {}x{}x{}",
                            path.display(),
                            e.channels,
                            e.height,
                            e.image_width
                        ));
                    }
                    data.chunks_exact(image_len)
                        .take(n)
                        .map(|img| img.iter().map(|&v| q.quantize(v as f64)).collect())
                        .collect()
                }
                Some(Npy::I64(..)) => {
                    return Err(format!(
                        "{}: image model needs float32 inputs",
                        path.display()
                    ))
                }
                None => (0..n)
                    .map(|k| {
                        (0..image_len)
                            .map(|i| ((i * 37 + k * 101) % 255) as u8 as i8)
                            .collect()
                    })
                    .collect(),
            };
            HostInputs::Images(images)
        }
        ModelKind::DecoderLm | ModelKind::Llama => {
            let n = max_inputs.unwrap_or(1);
            // A Llama starts from its BOS (llama2.c: a story from scratch).
            let bos = h.decoder.start_token;
            let default = if blob.kind() == ModelKind::Llama && bos != NO_TOKEN {
                bos
            } else {
                0
            };
            let prompts: Vec<Vec<u32>> = match npy {
                Some(Npy::I64(shape, data)) => {
                    let t = *shape.last().unwrap_or(&0);
                    if t == 0 {
                        return Err(format!("{}: empty prompts", path.display()));
                    }
                    data.chunks_exact(t)
                        .take(n)
                        .map(|row| row.iter().map(|&v| v as u32).collect())
                        .collect()
                }
                Some(Npy::F32(..)) => {
                    return Err(format!("{}: LM needs int64 prompt ids", path.display()))
                }
                None => vec![vec![default]],
            };
            HostInputs::Prompts(prompts)
        }
    };
    if m.layers > 0 {
        let prompt = match &m.inputs {
            HostInputs::Prompts(p) => p.iter().map(Vec::len).max().unwrap_or(1),
            HostInputs::Images(_) => 1,
        };
        // prompt + max_new - 1 cache rows are needed.
        m.max_new = max_new
            .min((h.decoder.max_positions + 1).saturating_sub(prompt))
            .max(1);
    }
    Ok(m)
}

enum Npy {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
}

/// Minimal `.npy` reader: little-endian `<f4` or `<i8`, C order, versions 1–3.
fn read_npy(path: &Path) -> Result<Npy, String> {
    let err = |r: &str| format!("{}: {r}", path.display());
    let b = std::fs::read(path).map_err(|e| err(&e.to_string()))?;
    if !b.starts_with(b"\x93NUMPY") || b.len() < 10 {
        return Err(err("not a .npy file"));
    }
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        if b.len() < 12 {
            return Err(err("truncated header"));
        }
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = b
        .get(start..start + hlen)
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .ok_or_else(|| err("truncated header"))?;
    if header.contains("'fortran_order': True") {
        return Err(err("fortran order not supported"));
    }
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| err("no shape"))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| err("bad shape")))
        .collect::<Result<_, _>>()?;
    let data = &b[start + hlen..];
    let n: usize = shape.iter().product();
    if header.contains("'<f4'") {
        let v: Vec<f32> = data
            .chunks_exact(4)
            .take(n)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.len() != n {
            return Err(err("truncated data"));
        }
        Ok(Npy::F32(shape, v))
    } else if header.contains("'<i8'") {
        let v: Vec<i64> = data
            .chunks_exact(8)
            .take(n)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        if v.len() != n {
            return Err(err("truncated data"));
        }
        Ok(Npy::I64(shape, v))
    } else {
        Err(err("dtype must be <f4 or <i8"))
    }
}

/// The `result` lines the firmware must print for `m`, computed on the host through
/// core-attn's owned-buffer runners (an independent wiring of the same kernels).
pub fn result_lines(m: &HostModel) -> Result<Vec<String>, String> {
    let aligned = Aligned::new(&m.bytes);
    let blob = aligned.parse().map_err(|e| format!("{}: {e}", m.name))?;
    let fail = |e: core_attn::Error| format!("{}: {e}", m.name);
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, mut cross) = owned.split(&blob).map_err(fail)?;
    let mut lines = Vec::new();
    let mut s = String::new();
    match (&m.inputs, blob.kind()) {
        (HostInputs::Images(imgs), ModelKind::VitClassifier) => {
            for (i, img) in imgs.iter().enumerate() {
                let l =
                    runner::vit_classify(&blob, img, &mut bufs, &mut |_, _| {}).map_err(fail)?;
                format::vit_line(&mut s, &m.name, i, runner::argmax_i8(l), l)
                    .map_err(|e| e.to_string())?;
            }
        }
        (HostInputs::Prompts(ps), ModelKind::DecoderLm) => {
            for (i, p) in ps.iter().enumerate() {
                let mut out = vec![0u32; p.len() + m.max_new];
                let mut all = Vec::new();
                let n = runner::greedy(
                    &blob,
                    p,
                    m.max_new,
                    &mut out,
                    &mut caches,
                    None,
                    &mut bufs,
                    &mut |_, l| all.extend(l.iter().map(|&q| q as u8)),
                )
                .map_err(fail)?;
                let h = fnv1a32(&all);
                format::ids_line(&mut s, &m.name, "prompt", i, h, &out[..n])
                    .map_err(|e| e.to_string())?;
            }
        }
        (HostInputs::Prompts(ps), ModelKind::Llama) => {
            llama_lines(m, &blob, ps, &mut s)?;
        }
        (HostInputs::Images(imgs), ModelKind::EncoderDecoder) => {
            let start = blob.header().decoder.start_token;
            for (i, img) in imgs.iter().enumerate() {
                runner::encode_for_decoder(&blob, img, &mut cross, &mut bufs, &mut |_, _| {})
                    .map_err(fail)?;
                let mut out = vec![0u32; 1 + m.max_new];
                let mut all = Vec::new();
                let n = runner::greedy(
                    &blob,
                    &[start],
                    m.max_new,
                    &mut out,
                    &mut caches,
                    Some(&cross),
                    &mut bufs,
                    &mut |_, l| all.extend(l.iter().map(|&q| q as u8)),
                )
                .map_err(fail)?;
                let h = fnv1a32(&all);
                format::ids_line(&mut s, &m.name, "image", i, h, &out[..n])
                    .map_err(|e| e.to_string())?;
            }
        }
        _ => return Err(format!("{}: inputs do not match the model kind", m.name)),
    }
    lines.extend(s.lines().map(str::to_string));
    Ok(lines)
}

/// The `result` lines of a Llama (`core_attn::llama::llama_greedy` over owned buffers and
/// KV caches `n_kv_heads · head_dim` wide), with the text of the ids when the blob has a
/// vocabulary.
fn llama_lines(
    m: &HostModel,
    blob: &Blob<'_>,
    prompts: &[Vec<u32>],
    s: &mut String,
) -> Result<(), String> {
    let fail = |e: core_attn::Error| format!("{}: {e}", m.name);
    let d = blob.header().decoder.llama();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let OwnedBuffers {
        x,
        normed,
        wide,
        scores,
        patch,
        logits,
        kv,
        ..
    } = &mut owned;
    let mut caches = runner::kv_caches(kv, d.layers, d.max_positions, d.kv_width())
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let mut bufs = runner::ModelBuffers {
        x,
        normed,
        wide,
        scores,
        patch,
        logits,
    };
    let text = format::LlamaText::of(blob);
    for (i, p) in prompts.iter().enumerate() {
        let mut out = vec![0u32; p.len() + m.max_new];
        let mut all = Vec::new();
        let n = core_attn::llama::llama_greedy(
            blob,
            p,
            m.max_new,
            &mut out,
            &mut caches,
            &mut bufs,
            &mut |_, l| all.extend(l.iter().map(|&q| q as u8)),
        )
        .map_err(fail)?;
        format::ids_text_line(
            s,
            &m.name,
            "prompt",
            i,
            fnv1a32(&all),
            &out[..n],
            text.as_ref(),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// For a board's `build.rs`: copy `memory.x` to `OUT_DIR` (link search path), select the
/// models (`defaults` unless `TATN_MODEL` is set) and write `OUT_DIR/model_consts.rs` with
/// `MODELS: &[Embedded]` and `type Arena` (its `Sizes`: per-buffer maxima over the models; its
/// device `Memory`: their sum).
///
/// A blob that does not parse is still embedded (with a cargo warning): the firmware must
/// refuse it at boot with a clear message and a failure exit.
pub fn build(defaults: &[&str]) {
    if let Err(e) = try_build(defaults) {
        panic!("board build: {e}");
    }
}

fn try_build(defaults: &[&str]) -> Result<(), String> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    if Path::new("memory.x").is_file() {
        std::fs::copy("memory.x", out.join("memory.x")).map_err(|e| format!("memory.x: {e}"))?;
        std::println!("cargo:rustc-link-search={}", out.display());
        std::println!("cargo:rerun-if-changed=memory.x");
    }
    for v in ENV_VARS {
        std::println!("cargo:rerun-if-env-changed={v}");
    }
    let models = selected(defaults)?;
    let mut text = generate(&models)?;
    let demo = env("TATN_DEMO").is_some_and(|v| v.trim() != "0");
    text.push_str(&demo_consts(&models, demo)?);
    std::fs::write(out.join("model_consts.rs"), text).map_err(|e| e.to_string())?;
    for m in &models {
        std::println!("cargo:rerun-if-changed={}", m.path.display());
        if let Some(p) = &m.inputs_path {
            std::println!("cargo:rerun-if-changed={}", p.display());
        }
        if demo {
            for p in [vocab_path(&m.path), labels_path(m)].into_iter().flatten() {
                std::println!("cargo:rerun-if-changed={}", p.display());
            }
        }
        if let Some(e) = &m.parse_error {
            std::println!(
                "cargo:warning={}: invalid model blob ({e}); embedded anyway, the firmware will refuse it at boot",
                m.path.display()
            );
        }
    }
    Ok(())
}

/// The text of `model_consts.rs` for `models`.
pub fn generate(models: &[HostModel]) -> Result<String, String> {
    let mut s = String::new();
    let w = |s: &mut String, t: std::fmt::Arguments<'_>| s.write_fmt(t).map_err(|e| e.to_string());
    w(
        &mut s,
        format_args!("// Generated by board_common::host::build. Do not edit.\n"),
    )?;
    let mut max = BufferSizes::default();
    let mut ids = 1usize;
    let mut layers = 1usize;
    // Bit n: some decoder LM / encoder-decoder has n layers (the device types' const
    // parameter; only these instantiations are reachable in the firmware).
    let (mut lm_layers, mut reader_layers, mut llama_layers) = (0u32, 0u32, 0u32);
    // Bit `ModelKind as u16`: some model is of that kind (`ArenaSizes::KINDS`).
    let mut kinds = 0u32;
    for m in models {
        if let Some(k) = m.kind {
            kinds |= crate::kind_bit(k);
        }
        let mut bit = if (1..32).contains(&m.layers) {
            1u32 << m.layers
        } else {
            0
        };
        // A blob that does not parse here (a corrupt one, in the tests): its header's kind and
        // every layer count, so that the firmware opens it and refuses it as corrupt.
        let raw = m.bytes.get(6..8).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let kind = m.kind.or(match raw {
            Some(1) => Some(ModelKind::VitClassifier),
            Some(2) => Some(ModelKind::DecoderLm),
            Some(3) => Some(ModelKind::EncoderDecoder),
            Some(4) => Some(ModelKind::Llama),
            _ => None,
        });
        if m.kind.is_none() {
            bit = u32::MAX;
            if let Some(k) = kind {
                kinds |= crate::kind_bit(k);
            }
        }
        match kind {
            Some(ModelKind::Llama) => llama_layers |= bit,
            Some(ModelKind::DecoderLm) => lm_layers |= bit,
            Some(ModelKind::EncoderDecoder) => reader_layers |= bit,
            _ => {}
        }
        let b = &m.buffers;
        max.x = max.x.max(b.x);
        max.normed = max.normed.max(b.normed);
        max.wide = max.wide.max(b.wide);
        max.scores = max.scores.max(b.scores);
        max.patch = max.patch.max(b.patch);
        max.logits = max.logits.max(b.logits);
        max.kv = max.kv.max(b.kv);
        max.cross_kv = max.cross_kv.max(b.cross_kv);
        layers = layers.max(m.layers);
        if let HostInputs::Prompts(ps) = &m.inputs {
            for p in ps {
                ids = ids.max(p.len() + m.max_new);
            }
        } else if m.max_new > 0 {
            ids = ids.max(1 + m.max_new);
        }
    }
    // The device `Memory`: every int8 buffer at its maximum (what
    // `core_attn::device::ModelInfo::i8_bytes` sums for one model; no image buffer: the harness
    // passes int8 images), so a model that passes `check` against the maxima fits; the scores.
    let i8_bytes = max.x + max.normed + max.wide + max.patch + max.logits + max.kv + max.cross_kv;
    w(
        &mut s,
        format_args!(
            "/// The per-buffer maxima over the embedded models (what `board_common::check` \
             compares) and the decoder layer counts (bit sets).\n\
             pub struct Sizes;\n\
             impl board_common::ArenaSizes for Sizes {{\n    \
             const SIZES: board_common::core_attn::blob::BufferSizes = \
             board_common::core_attn::blob::BufferSizes {{ x: {}, normed: {}, wide: {}, \
             scores: {}, patch: {}, logits: {}, kv: {}, cross_kv: {} }};\n    \
             const LM_LAYERS: u32 = {:#x};\n    \
             const READER_LAYERS: u32 = {:#x};\n    \
             const LLAMA_LAYERS: u32 = {:#x};\n    \
             const KINDS: u32 = {:#x};\n\
             }}\n\
             /// Working memory for the embedded models ({} bytes): a \
             `core_attn::device::Memory` of {} int8 bytes and {} scores, {} generated ids, up \
             to {} decoder layers.\n\
             pub type Arena = board_common::Arena<Sizes, {}, {}, {}, {}>;\n",
            max.x,
            max.normed,
            max.wide,
            max.scores,
            max.patch,
            max.logits,
            max.kv,
            max.cross_kv,
            lm_layers,
            reader_layers,
            llama_layers,
            kinds,
            i8_bytes + 4 * max.scores + 4 * ids,
            i8_bytes,
            max.scores,
            ids,
            layers,
            i8_bytes,
            max.scores,
            ids,
            layers
        ),
    )?;
    let mut table = String::new();
    for (i, m) in models.iter().enumerate() {
        let path = m
            .path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", m.path.display()))?;
        // `#[no_mangle]`: a fixed symbol name (`blob_symbol`) whatever the mangling scheme, so
        // tests/tests/qemu_models.rs can find the blob in the ELF; its size is the blob's bytes
        // rounded up to the 16-byte alignment.
        w(
            &mut s,
            format_args!(
                "#[no_mangle]\nstatic {}: board_common::Align16<[u8; {}]> = board_common::Align16(*include_bytes!({:?}));\n",
                blob_symbol(i),
                m.bytes.len(),
                path.display().to_string()
            ),
        )?;
        let inputs = match &m.inputs {
            HostInputs::Images(v) => format!("board_common::Inputs::Images(&[{}])", rows(v)),
            HostInputs::Prompts(v) => format!("board_common::Inputs::Prompts(&[{}])", rows(v)),
        };
        w(
            &mut table,
            format_args!(
                "    board_common::Embedded {{ name: {:?}, blob: &{}.0, inputs: {inputs}, max_new: {}, \
                 info: board_common::core_attn::device::ModelInfo::of(include_bytes!({:?})) }},\n",
                m.name,
                blob_symbol(i),
                m.max_new,
                path.display().to_string()
            ),
        )?;
    }
    w(
        &mut s,
        format_args!("/// The embedded models and their inputs.\npub static MODELS: &[board_common::Embedded] = &[\n{table}];\n"),
    )?;
    Ok(s)
}

fn rows<T: std::fmt::Display>(v: &[Vec<T>]) -> String {
    let mut s = String::new();
    for r in v {
        s.push_str("&[");
        for (i, x) in r.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{x}");
        }
        s.push_str("], ");
    }
    s
}

/// `<blob>.vocab.json`, the vocabulary sidecar `tools convert` writes next to a blob, if present.
pub fn vocab_path(blob: &Path) -> Option<PathBuf> {
    let mut s = blob.as_os_str().to_os_string();
    s.push(".vocab.json");
    Some(PathBuf::from(s)).filter(|p| p.is_file())
}

/// The test-set answers next to a model's inputs: `X_labels.npy` for inputs `X.npy`, if present.
pub fn labels_path(m: &HostModel) -> Option<PathBuf> {
    let p = m.inputs_path.as_ref()?;
    let stem = p.file_stem()?.to_string_lossy();
    Some(p.with_file_name(format!("{stem}_labels.npy"))).filter(|p| p.is_file())
}

/// The id → text table the device prints generated tokens with (`None`: the model has no
/// vocabulary; the device then prints ids). Today it comes from the `<blob>.vocab.json`
/// sidecar ([`vocab_path`]); this is the one function to change when the vocabulary moves into
/// the blob. Ids without an entry print as U+FFFD.
pub fn vocab_table(m: &HostModel) -> Result<Option<Vec<String>>, String> {
    let Some(path) = vocab_path(&m.path) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries = parse_vocab_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(
        entries
            .into_iter()
            .map(|e| e.unwrap_or_else(|| "\u{fffd}".to_string()))
            .collect(),
    ))
}

/// A `vocab.json` (the two forms `tools` reads: a JSON array of strings, entry `i` = id `i`, or
/// an object `{"ID": "text", ...}` with gaps allowed) as a table indexed by id.
pub fn parse_vocab_json(text: &str) -> Result<Vec<Option<String>>, String> {
    let mut p = Json {
        s: text.as_bytes(),
        at: 0,
    };
    let mut table: Vec<Option<String>> = Vec::new();
    let mut set = |id: usize, v: String| -> Result<(), String> {
        if id >= 1 << 20 {
            return Err(format!("id {id} is too large"));
        }
        if table.len() <= id {
            table.resize(id + 1, None);
        }
        table[id] = Some(v);
        Ok(())
    };
    let (open, close) = match p.peek() {
        Some(b'[') => (b'[', b']'),
        Some(b'{') => (b'{', b'}'),
        _ => return Err("expected a JSON array or object of strings".into()),
    };
    p.expect(open)?;
    let mut i = 0usize;
    if p.peek() == Some(close) {
        p.at += 1;
    } else {
        loop {
            let id = if open == b'{' {
                let k = p.string()?;
                p.expect(b':')?;
                k.parse::<usize>()
                    .map_err(|_| format!("key {k:?} is not a token id"))?
            } else {
                i
            };
            set(id, p.string()?)?;
            i += 1;
            match p.peek() {
                Some(b',') => p.at += 1,
                Some(c) if c == close => {
                    p.at += 1;
                    break;
                }
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at byte {}",
                        close as char, p.at
                    ))
                }
            }
        }
    }
    if p.peek().is_some() {
        return Err(format!("trailing data at byte {}", p.at));
    }
    Ok(table)
}

/// Just enough JSON for [`parse_vocab_json`]: whitespace, punctuation, strings with escapes.
struct Json<'a> {
    s: &'a [u8],
    at: usize,
}

impl Json<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(c) = self.s.get(self.at).copied() {
            if !c.is_ascii_whitespace() {
                return Some(c);
            }
            self.at += 1;
        }
        None
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() != Some(c) {
            return Err(format!("expected '{}' at byte {}", c as char, self.at));
        }
        self.at += 1;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.at))?;
        self.at += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.at).ok_or("unterminated string")?;
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                if self.s.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err("lone surrogate in \\u escape".into());
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xd800) << 10) + lo.wrapping_sub(0xdc00)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or("invalid \\u escape")?
                        }
                        _ => return Err(format!("bad escape at byte {}", self.at)),
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".to_string())
    }
}

/// The answers of the first `count` inputs from a labels `.npy` (int64 `[N]`: one class per
/// input; `[N, T]`: the target token ids per input, e.g. `d… eos pad…`).
fn read_labels(path: &Path, count: usize) -> Result<Vec<Vec<u32>>, String> {
    let Npy::I64(shape, data) = read_npy(path)? else {
        return Err(format!("{}: labels must be int64", path.display()));
    };
    let per = if shape.len() >= 2 {
        shape.iter().skip(1).product::<usize>()
    } else {
        1
    };
    if per == 0 {
        return Err(format!("{}: empty labels", path.display()));
    }
    let rows: Vec<Vec<u32>> = data
        .chunks_exact(per)
        .take(count)
        .map(|r| {
            r.iter()
                .map(|&v| u32::try_from(v).unwrap_or(u32::MAX))
                .collect()
        })
        .collect();
    if rows.len() < count {
        return Err(format!(
            "{}: {} labels for {count} inputs",
            path.display(),
            rows.len()
        ));
    }
    Ok(rows)
}

/// The true answers of `m`'s inputs for the demo view, from [`labels_path`] (empty without a
/// labels file): one row per input, `[class]` or the target token ids.
pub fn demo_labels(m: &HostModel) -> Result<Vec<Vec<u32>>, String> {
    let count = match &m.inputs {
        HostInputs::Images(v) => v.len(),
        HostInputs::Prompts(v) => v.len(),
    };
    match labels_path(m) {
        Some(p) => read_labels(&p, count),
        None => Ok(Vec::new()),
    }
}

/// The demo view's tables, appended to `model_consts.rs`: `DEMO`, one
/// [`crate::demo::Shown`] per model of `MODELS` (vocabulary from [`vocab_table`], answers from
/// [`labels_path`]), or empty when `demo` is false (`TATN_DEMO` unset or `0`), so that only a
/// demo build carries them in flash.
pub fn demo_consts(models: &[HostModel], demo: bool) -> Result<String, String> {
    let mut s = String::from(
        "/// The demo view's vocabulary and answers per model (TATN_DEMO=1; else empty).\n\
         #[allow(dead_code)]\npub static DEMO: &[board_common::demo::Shown] = &[\n",
    );
    if demo {
        for m in models {
            let vocab = vocab_table(m)?.unwrap_or_default();
            let labels = demo_labels(m)?;
            let _ = writeln!(
                s,
                "    board_common::demo::Shown {{ vocab: &{vocab:?}, labels: &[{}] }},",
                rows(&labels)
            );
        }
    }
    s.push_str("];\n");
    Ok(s)
}
