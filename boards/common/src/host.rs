//! Host side (feature `host`): choose and load the models a firmware embeds, quantize their
//! inputs, generate `OUT_DIR/model_consts.rs` for a board's `build.rs` ([`build`]), and print
//! the reference result lines on the host ([`result_lines`]).
//!
//! # Which models
//! `TATN_MODEL` (comma-separated) overrides a board's default list. Each entry is a blob file,
//! a directory holding exactly one `*.tatn` (e.g. `models/<name>/`), or the name of a model
//! shipped in `boards/common/models/` (`vit-tiny`, `gpt2-tiny`, `encdec-tiny`). Relative
//! paths are relative to the board directory (cargo runs `build.rs` there).
//!
//! # Which inputs
//! `TATN_INPUTS` (only with a single model), else `<stem>.inputs.npy` next to the blob, else
//! `inputs.npy` / `input_ids.npy` in its directory: float32 `[N, C, H, W]` images (quantized
//! here with the blob's input scale and zero point, exactly as `tools simulate` does) or int64
//! `[N, T]` / `[T]` prompts. Without a file: deterministic synthetic images, or the prompt `[0]`.
//! At most `TATN_MAX_INPUTS` inputs are used (default: 3 images for a ViT, 1 prompt for an LM,
//! 2 images for an encoder–decoder); decoders generate `TATN_MAX_NEW` tokens (default 8, capped
//! by the model's positions).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use core_attn::blob::{Blob, BufferSizes, ModelKind};
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{self as runner};
use core_attn::quant::QParams;

use crate::format;

/// Environment variables that select models and inputs. A model is named by its blob's file
/// stem, or by its directory's name when `TATN_MODEL` names a directory.
pub const ENV_VARS: [&str; 4] = [
    "TATN_MODEL",
    "TATN_INPUTS",
    "TATN_MAX_INPUTS",
    "TATN_MAX_NEW",
];

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
    if blob.kind().has_decoder() {
        m.layers = h.decoder.layers;
    }
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
        ModelKind::DecoderLm => {
            let n = max_inputs.unwrap_or(1);
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
                None => vec![vec![0]],
            };
            HostInputs::Prompts(prompts)
        }
    };
    if blob.kind().has_decoder() {
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
                let n = runner::greedy(
                    &blob,
                    p,
                    m.max_new,
                    &mut out,
                    &mut caches,
                    None,
                    &mut bufs,
                    &mut |_, _| {},
                )
                .map_err(fail)?;
                format::ids_line(&mut s, &m.name, "prompt", i, &out[..n])
                    .map_err(|e| e.to_string())?;
            }
        }
        (HostInputs::Images(imgs), ModelKind::EncoderDecoder) => {
            let start = blob.header().decoder.start_token;
            for (i, img) in imgs.iter().enumerate() {
                runner::encode_for_decoder(&blob, img, &mut cross, &mut bufs, &mut |_, _| {})
                    .map_err(fail)?;
                let mut out = vec![0u32; 1 + m.max_new];
                let n = runner::greedy(
                    &blob,
                    &[start],
                    m.max_new,
                    &mut out,
                    &mut caches,
                    Some(&cross),
                    &mut bufs,
                    &mut |_, _| {},
                )
                .map_err(fail)?;
                format::ids_line(&mut s, &m.name, "image", i, &out[..n])
                    .map_err(|e| e.to_string())?;
            }
        }
        _ => return Err(format!("{}: inputs do not match the model kind", m.name)),
    }
    lines.extend(s.lines().map(str::to_string));
    Ok(lines)
}

/// For a board's `build.rs`: copy `memory.x` to `OUT_DIR` (link search path), select the
/// models (`defaults` unless `TATN_MODEL` is set) and write `OUT_DIR/model_consts.rs` with
/// `MODELS: &[Embedded]` and `type Arena` (buffer sizes = maxima over the models).
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
    std::fs::write(out.join("model_consts.rs"), generate(&models)?).map_err(|e| e.to_string())?;
    for m in &models {
        std::println!("cargo:rerun-if-changed={}", m.path.display());
        if let Some(p) = &m.inputs_path {
            std::println!("cargo:rerun-if-changed={}", p.display());
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
    for m in models {
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
    w(
        &mut s,
        format_args!(
            "/// Static buffers sized for the embedded models ({} bytes).\n\
             pub type Arena = board_common::Arena<{}, {}, {}, {}, {}, {}, {}, {}, {}, {}>;\n",
            max.total_bytes() + 4 * ids,
            max.x,
            max.normed,
            max.wide,
            max.scores,
            max.patch,
            max.logits,
            max.kv,
            max.cross_kv,
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
        w(
            &mut s,
            format_args!(
                "static BLOB_{i}: &board_common::Align16<[u8]> = &board_common::Align16(*include_bytes!({:?}));\n",
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
                "    board_common::Embedded {{ name: {:?}, blob: &BLOB_{i}.0, inputs: {inputs}, max_new: {} }},\n",
                m.name, m.max_new
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
