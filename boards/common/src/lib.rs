//! Board-independent firmware code, written once for every board.
//!
//! This is the test harness around core-attn's public device API ([`core_attn::device`]: the
//! same [`Vit`], [`Lm`], [`Reader`], [`Llama`] and [`Memory`] a user's firmware gets from
//! `include_model!`); it holds no runtime of its own.
//!
//! - [`Embedded`]: one model blob in flash plus its test inputs. A board's `build.rs` calls
//!   [`host::build`] (feature `host`), which parses the blobs, quantizes the inputs and writes
//!   `OUT_DIR/model_consts.rs`: the [`Embedded`] table `MODELS` and the type `Arena`, an
//!   [`Arena`] whose [`Memory`] is large enough for each embedded model in turn.
//! - [`Arena::run`]: checks every model first (a blob that fails [`Blob::parse`] or does not
//!   fit the compiled buffers stops the run before anything executes), then runs each model on
//!   each input through the device types and prints one [`format`] result line per inference
//!   plus a `perf` line.
//! - [`Clock`]: the one timing trait; SysTick instruction counts under QEMU ([`qemu`]), DWT
//!   cycles on real Cortex-M4 boards ([`dwt`]), a µs timer on the RP2040 (in its board crate).
//!
//! The host (feature `host`) prints the very same result lines from the same blobs and inputs
//! through core-attn's owned-buffer runners ([`host::result_lines`]): the QEMU tests compare the
//! two byte for byte.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "host")]
extern crate std;

use core::fmt::{self, Write};

/// Re-exported so that board crates need no second path to core-attn.
pub use core_attn;

use core::marker::PhantomData;

use core_attn::blob::{Blob, BufferSizes, Header, ModelKind, NO_TOKEN};
use core_attn::device::{Llama, Lm, Memory, ModelInfo, Reader, Vit};
use core_attn::model as runner;

pub mod demo;
#[cfg(feature = "dwt")]
pub mod dwt;
pub mod format;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "link")]
pub mod link;
#[cfg(feature = "qemu")]
pub mod qemu;
#[cfg(feature = "defmt")]
pub mod rtt;
#[cfg(feature = "selftest")]
pub mod selftest;
#[cfg(feature = "uart")]
pub mod uart;

/// 16-byte aligned storage for a blob in flash (`&Align16(*include_bytes!(..))`): the blob's
/// `i32`/`u16` sections are read zero-copy and need the alignment.
#[repr(C, align(16))]
pub struct Align16<B: ?Sized>(pub B);

/// Test inputs of one embedded model.
#[derive(Debug, Clone, Copy)]
pub enum Inputs {
    /// int8 images `[C][H][W]`, already quantized with the blob's input scale and zero point
    /// (ViT classifier, encoder–decoder; the latter decodes from its start token).
    Images(&'static [&'static [i8]]),
    /// Prompt token ids (decoder-only LM).
    Prompts(&'static [&'static [u32]]),
}

/// One model embedded in the firmware.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// Short name (the blob's file stem); starts every output line about this model.
    pub name: &'static str,
    /// The packed blob (16-byte aligned).
    pub blob: &'static [u8],
    /// Inputs to run.
    pub inputs: Inputs,
    /// New tokens to generate (decoders).
    pub max_new: usize,
    /// What the blob's header says ([`ModelInfo::of`], evaluated at compile time by the
    /// generated table): its kind and buffer sizes, known before the blob is parsed, so that
    /// [`Arena`] parses it as that kind only (the device types' kind-specific validation; the
    /// other kinds' checks are not linked). The device types reject a blob that disagrees.
    pub info: ModelInfo,
}

/// A monotonic counter used to time inferences.
pub trait Clock {
    /// Current count in [`Clock::unit`]s (monotonic; callers subtract two readings).
    fn now(&mut self) -> u64;
    /// What one count is (`instructions`, `cycles`, `us`).
    fn unit(&self) -> &'static str;
}

/// Why a model was refused at boot or failed while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// [`Blob::parse`] rejected the blob, or a runner returned an error.
    Model(core_attn::Error),
    /// The blob needs larger buffers than the firmware was compiled with.
    DoesNotFit {
        /// The first buffer that is too small.
        buffer: &'static str,
        /// Elements the blob needs.
        needs: usize,
        /// Elements the compiled buffer holds.
        have: usize,
    },
    /// More decoder layers than compiled KV-cache slots.
    TooManyLayers {
        /// Decoder layers of the blob.
        needs: usize,
        /// Compiled slots.
        have: usize,
    },
    /// The generated-ids buffer is too short for prompt + new tokens.
    IdsDoNotFit {
        /// prompt + new tokens.
        needs: usize,
        /// Compiled ids buffer.
        have: usize,
    },
    /// The inputs do not match the model (kind, image size, positions, start token).
    BadInputs(&'static str),
    /// The model is of a kind this firmware was not built for.
    Unsupported(&'static str),
    /// Writing the output failed.
    Output,
}

impl From<core_attn::Error> for Failure {
    fn from(e: core_attn::Error) -> Self {
        Failure::Model(e)
    }
}

impl From<fmt::Error> for Failure {
    fn from(_: fmt::Error) -> Self {
        Failure::Output
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Model(e) => write!(f, "{e}"),
            Failure::DoesNotFit {
                buffer,
                needs,
                have,
            } => write!(
                f,
                "does not fit the compiled buffers: {buffer} needs {needs}, firmware has {have} \
                 (rebuild with this model embedded: TATN_MODEL=path)"
            ),
            Failure::TooManyLayers { needs, have } => write!(
                f,
                "{needs} decoder layers, firmware has KV-cache slots for {have}"
            ),
            Failure::IdsDoNotFit { needs, have } => {
                write!(
                    f,
                    "needs {needs} generated ids, firmware has room for {have}"
                )
            }
            Failure::BadInputs(what) => write!(f, "inputs do not match the model: {what}"),
            Failure::Unsupported(what) => f.write_str(what),
            Failure::Output => f.write_str("output failed"),
        }
    }
}

/// Length of the generated-ids sequence for a prompt of `prompt` tokens.
pub fn ids_needed(prompt: usize, max_new: usize) -> usize {
    prompt.saturating_add(max_new)
}

/// Parse `m.blob` and check it fits buffers of sizes `have`, `layers` KV-cache slots and `ids`
/// generated ids, and that its inputs match it. Nothing runs before every model passed this.
pub fn check(
    m: &Embedded,
    have: &BufferSizes,
    layers: usize,
    ids: usize,
) -> Result<Blob<'static>, Failure> {
    let blob = Blob::parse(m.blob)?;
    fits(&blob.buffers(), have)?;
    check_parsed(m, &blob, layers, ids)?;
    Ok(blob)
}

/// The buffers `needs` fit the compiled ones `have` (else the first that does not).
fn fits(needs: &BufferSizes, have: &BufferSizes) -> Result<(), Failure> {
    if !needs.fits_in(have) {
        let pairs = [
            ("x", needs.x, have.x),
            ("normed", needs.normed, have.normed),
            ("wide", needs.wide, have.wide),
            ("scores", needs.scores, have.scores),
            ("patch", needs.patch, have.patch),
            ("logits", needs.logits, have.logits),
            ("kv", needs.kv, have.kv),
            ("cross_kv", needs.cross_kv, have.cross_kv),
        ];
        let (buffer, needs, have) = pairs
            .into_iter()
            .find(|(_, n, h)| n > h)
            .unwrap_or(("buffers", 0, 0));
        return Err(Failure::DoesNotFit {
            buffer,
            needs,
            have,
        });
    }
    Ok(())
}

/// [`check`] of a parsed blob: its decoder layers fit `layers` KV-cache slots, its inputs
/// match it and fit `ids` generated ids.
fn check_parsed(m: &Embedded, blob: &Blob<'_>, layers: usize, ids: usize) -> Result<(), Failure> {
    let h = blob.header();
    if ModelInfo::of_blob(blob).layers > layers {
        return Err(Failure::TooManyLayers {
            needs: h.decoder.layers,
            have: layers,
        });
    }
    let e = h.encoder;
    match (blob.kind(), m.inputs) {
        (ModelKind::DecoderLm | ModelKind::Llama, Inputs::Prompts(ps)) => {
            for p in ps {
                if p.is_empty() || p.iter().any(|&t| t as usize >= h.decoder.vocab) {
                    return Err(Failure::BadInputs(
                        "prompt empty or id outside the vocabulary",
                    ));
                }
                check_positions(p.len(), m.max_new, h.decoder.max_positions, ids)?;
            }
        }
        (ModelKind::VitClassifier | ModelKind::EncoderDecoder, Inputs::Images(imgs)) => {
            let len = e.channels * e.height * e.image_width;
            if imgs.iter().any(|i| i.len() != len) {
                return Err(Failure::BadInputs("image size differs from the model's"));
            }
            if blob.kind() == ModelKind::EncoderDecoder {
                if h.decoder.start_token == NO_TOKEN {
                    return Err(Failure::BadInputs("encoder-decoder without a start token"));
                }
                check_positions(1, m.max_new, h.decoder.max_positions, ids)?;
            }
        }
        _ => {
            return Err(Failure::BadInputs(
                "images for an LM or prompts for an image model",
            ))
        }
    }
    Ok(())
}

fn check_positions(
    prompt: usize,
    max_new: usize,
    positions: usize,
    ids: usize,
) -> Result<(), Failure> {
    if max_new == 0 {
        return Err(Failure::BadInputs("zero new tokens"));
    }
    // The last generated token is never fed back: prompt + max_new - 1 cache rows.
    if prompt + max_new - 1 > positions {
        return Err(Failure::BadInputs(
            "prompt + new tokens exceed the model's positions",
        ));
    }
    let needs = ids_needed(prompt, max_new);
    if needs > ids {
        return Err(Failure::IdsDoNotFit { needs, have: ids });
    }
    Ok(())
}

/// The compiled per-buffer capacities of an [`Arena`] (the maxima over the embedded models,
/// what [`check`] compares each blob with), as a type: [`host::build`] generates one.
pub trait ArenaSizes {
    /// Element counts of each runner buffer and KV arena.
    const SIZES: BufferSizes;
    /// Decoder layer counts of the embedded decoder LMs, as a bit set (bit `n`: some LM has
    /// `n` layers). The device types take the layer count as a const parameter: only these
    /// instantiations of [`Lm`] are reachable, so the others are not linked (flash).
    const LM_LAYERS: u32 = u32::MAX;
    /// The same for the embedded encoder–decoders ([`Reader`]).
    const READER_LAYERS: u32 = u32::MAX;
    /// The same for the embedded Llamas ([`Llama`]).
    const LLAMA_LAYERS: u32 = u32::MAX;
    /// The kinds of the embedded models, as a bit set (bit `ModelKind as u16`, see
    /// [`kind_bit`]). [`Arena`] runs only these kinds: the device types and the blob checks of
    /// the others are never called, so a firmware built for one model links one kind's code
    /// (flash: a char-lm firmware carries no ViT, encoder–decoder or Llama code).
    const KINDS: u32 = u32::MAX;
}

/// The bit of `kind` in [`ArenaSizes::KINDS`].
pub const fn kind_bit(kind: ModelKind) -> u32 {
    1 << (kind as u16)
}

/// Static working memory for every embedded model: one `Arena` per firmware (generated by
/// [`host::build`] as the type `Arena`). The models run through core-attn's public device
/// API ([`core_attn::device`]: [`Vit`], [`Lm`], [`Reader`]) in one [`Memory`] of `I8` bytes
/// and `I32` scores, large enough for each of them in turn (`I8` is the sum of the per-buffer
/// maxima `S::SIZES`, so a model that passes [`check`] fits; no image buffer: the inputs are
/// int8 already);
/// `IDS` is the generated-ids buffer, `LAYERS` the most decoder layers of any model.
pub struct Arena<
    S: ArenaSizes,
    const I8: usize,
    const I32: usize,
    const IDS: usize,
    const LAYERS: usize,
> {
    memory: Memory<I8, I32>,
    ids: [u32; IDS],
    sizes: PhantomData<S>,
}

impl<S: ArenaSizes, const I8: usize, const I32: usize, const IDS: usize, const LAYERS: usize>
    Default for Arena<S, I8, I32, IDS, LAYERS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// Run `$body` with `$l` the const generic `1..=8` equal to `$layers` (the device types take
/// their decoder layer count as a const parameter) when bit `$l` of `$set` is set and `$l` is
/// at most `$max`; anything else is refused. `$set` and `$max` are constants, so the arms
/// they rule out are never called and their instantiations are not linked.
macro_rules! with_layers {
    ($layers:expr, $set:expr, $max:expr, $l:ident => $body:expr) => {
        match $layers {
            1 if $set & (1 << 1) != 0 && $max >= 1 => {
                const $l: usize = 1;
                $body
            }
            2 if $set & (1 << 2) != 0 && $max >= 2 => {
                const $l: usize = 2;
                $body
            }
            3 if $set & (1 << 3) != 0 && $max >= 3 => {
                const $l: usize = 3;
                $body
            }
            4 if $set & (1 << 4) != 0 && $max >= 4 => {
                const $l: usize = 4;
                $body
            }
            5 if $set & (1 << 5) != 0 && $max >= 5 => {
                const $l: usize = 5;
                $body
            }
            6 if $set & (1 << 6) != 0 && $max >= 6 => {
                const $l: usize = 6;
                $body
            }
            7 if $set & (1 << 7) != 0 && $max >= 7 => {
                const $l: usize = 7;
                $body
            }
            8 if $set & (1 << 8) != 0 && $max >= 8 => {
                const $l: usize = 8;
                $body
            }
            n => Err(Failure::TooManyLayers {
                needs: n,
                have: $max.min(8),
            }),
        }
    };
}

impl<S: ArenaSizes, const I8: usize, const I32: usize, const IDS: usize, const LAYERS: usize>
    Arena<S, I8, I32, IDS, LAYERS>
{
    /// All zeros (lands in `.bss`).
    pub const fn new() -> Self {
        Arena {
            memory: Memory::new(),
            ids: [0; IDS],
            sizes: PhantomData,
        }
    }

    /// The compiled buffer sizes.
    pub const SIZES: BufferSizes = S::SIZES;

    /// Before anything is parsed: the model's kind (from its header, [`Embedded::info`]) is one
    /// this firmware was built for ([`ArenaSizes::KINDS`]). (That its buffers fit the compiled
    /// ones is checked after the parse, so that a corrupt blob is refused as corrupt.) Returns the [`ModelInfo`] the harness opens it with: without the image buffer (the
    /// harness hands the device types int8 images, so its [`Memory`] needs no room for one).
    fn precheck(m: &Embedded) -> Result<ModelInfo, Failure> {
        let compiled = 1u32.checked_shl(u32::from(m.info.kind)).unwrap_or(0);
        if S::KINDS & compiled == 0 {
            return Err(Failure::Unsupported(
                "model kind not compiled into this firmware (rebuild with the model embedded: \
                 TATN_MODEL=path)",
            ));
        }
        Ok(ModelInfo { image: 0, ..m.info })
    }

    /// Check every model (print `model ...` lines), then run each on its inputs; prints
    /// `result ...` and `perf ...` lines and, on any failure, one `error: model NAME: ...` line.
    /// Returns true only when every model ran.
    pub fn run(&mut self, models: &[Embedded], out: &mut dyn Write, clock: &mut dyn Clock) -> bool {
        self.run_demo(models, &[], out, clock)
    }

    /// [`Arena::run`], and for each model that has an entry in `shown` (parallel to `models`:
    /// the generated `DEMO`, empty unless the firmware was built with `TATN_DEMO=1`) also the
    /// human view of [`demo`]: the input as a picture, the true answer, the device's answer,
    /// the generated text and the time at 100 MHz. The machine lines are printed unchanged.
    pub fn run_demo(
        &mut self,
        models: &[Embedded],
        shown: &[demo::Shown],
        out: &mut dyn Write,
        clock: &mut dyn Clock,
    ) -> bool {
        for m in models {
            let mut line = |b: &Blob<'_>| format::model_line(out, m.name, b).map_err(Failure::from);
            if let Err(e) = self.open(m, clock, &mut NoReport, Some(&mut line)) {
                let _ = writeln!(out, "error: model {}: {e}; refusing to run", m.name);
                return false;
            }
        }
        for (i, m) in models.iter().enumerate() {
            let r = match shown.get(i) {
                Some(s) => self.header(m, clock).and_then(|header| {
                    demo::run(m, s, header, out, clock, |clock, rep| {
                        self.infer(m, clock, rep)
                    })
                }),
                None => self.infer(m, clock, &mut Printer(out)),
            };
            if let Err(e) = r {
                let _ = writeln!(out, "error: model {}: {e}", m.name);
                return false;
            }
        }
        writeln!(out, "done: {} model(s) ok", models.len()).is_ok()
    }

    /// Check every model, then run each on its inputs, handing every result to `report`; no
    /// formatting, no printing. The firmware prints through [`Arena::run`] (the same
    /// [`Arena::infer`] with a reporter that formats result lines); `boards/no-panic` links
    /// this one with a panic handler that cannot link, which shows that no panic path is
    /// left in the checks and the inference code.
    pub fn run_quiet(
        &mut self,
        models: &[Embedded],
        clock: &mut dyn Clock,
        report: &mut impl Report,
    ) -> Result<(), Failure> {
        for m in models {
            self.open(m, clock, &mut NoReport, Some(&mut |_| Ok(())))?;
        }
        for m in models {
            self.infer(m, clock, report)?;
        }
        Ok(())
    }

    /// Run model `m` on each of its inputs (after checking it again) through the device
    /// API ([`Vit::classify`], [`Lm::step`], [`Reader::encode`] / [`Reader::step`],
    /// [`Llama::step`]), timed with `clock`, and hand each result to `report` (a Llama's with
    /// its [`format::LlamaText`] when the blob has a vocabulary).
    pub fn infer(
        &mut self,
        m: &Embedded,
        clock: &mut dyn Clock,
        report: &mut impl Report,
    ) -> Result<(), Failure> {
        self.open(m, clock, report, None)
    }

    /// The header of `m`'s blob, parsed as its kind ([`Arena::open`]).
    fn header(&mut self, m: &Embedded, clock: &mut dyn Clock) -> Result<Header, Failure> {
        let mut header = None;
        let mut keep = |b: &Blob<'_>| {
            header = Some(*b.header());
            Ok(())
        };
        self.open(m, clock, &mut NoReport, Some(&mut keep))?;
        header.ok_or(Failure::BadInputs("model not opened"))
    }

    /// Open `m` as its kind's device type (the blob parsed as that kind only: [`Vit::new`],
    /// [`Lm::new`], [`Reader::new`], [`Llama::new`]) in this arena's memory after
    /// [`Arena::precheck`], check its layers and inputs, then with `stop` hand it the parsed
    /// blob and return (the boot check: nothing runs), else run it on its inputs. Only the kinds
    /// of [`ArenaSizes::KINDS`] are reachable.
    fn open(
        &mut self,
        m: &Embedded,
        clock: &mut dyn Clock,
        report: &mut impl Report,
        stop: Stop<'_>,
    ) -> Result<(), Failure> {
        const VIT: u16 = ModelKind::VitClassifier as u16;
        const LM: u16 = ModelKind::DecoderLm as u16;
        const READER: u16 = ModelKind::EncoderDecoder as u16;
        const LLAMA: u16 = ModelKind::Llama as u16;
        let info = Self::precheck(m)?;
        let unit = clock.unit();
        let Arena { memory, ids, .. } = self;
        // The parsed blob passes `check_parsed`; with `stop`, hand it over and stop (false).
        let checked = |blob: &Blob<'_>, stop: Stop<'_>| -> Result<bool, Failure> {
            fits(&blob.buffers(), &S::SIZES)?;
            check_parsed(m, blob, LAYERS, IDS)?;
            match stop {
                Some(f) => {
                    f(blob)?;
                    Ok(false)
                }
                None => Ok(true),
            }
        };
        match (info.kind, m.inputs) {
            (VIT, Inputs::Images(imgs)) if S::KINDS & kind_bit(ModelKind::VitClassifier) != 0 => {
                let mut vit = Vit::new(m.blob, &info, memory)?;
                if !checked(vit.blob(), stop)? {
                    return Ok(());
                }
                for (i, img) in imgs.iter().enumerate() {
                    let t0 = clock.now();
                    vit.classify(img)?;
                    let dt = clock.now().saturating_sub(t0);
                    report.classified(m.name, i, vit.logits(), dt, unit)?;
                }
                Ok(())
            }
            (LM, Inputs::Prompts(ps)) if S::KINDS & kind_bit(ModelKind::DecoderLm) != 0 => {
                with_layers!(info.layers, S::LM_LAYERS, LAYERS, L => {
                    let mut lm = Lm::<L>::new(m.blob, &info, memory)?;
                    if !checked(lm.blob(), stop)? {
                        return Ok(());
                    }
                    let eos = lm.blob().header().decoder.eos_token;
                    for (i, p) in ps.iter().enumerate() {
                        lm.reset();
                        let slot = ids_slot(ids, p.len(), m.max_new)?;
                        let (n, t) = timed_greedy(&mut lm, p, m.max_new, eos, slot, clock)?;
                        let done = slot.get(..n).unwrap_or(slot);
                        report.generated(m.name, "prompt", i, done, None, &t, 0, unit)?;
                    }
                    Ok(())
                })
            }
            (LLAMA, Inputs::Prompts(ps)) if S::KINDS & kind_bit(ModelKind::Llama) != 0 => {
                with_layers!(info.layers, S::LLAMA_LAYERS, LAYERS, L => {
                    let mut llama = Llama::<L>::new(m.blob, &info, memory)?;
                    let blob = *llama.blob();
                    if !checked(&blob, stop)? {
                        return Ok(());
                    }
                    let text = format::LlamaText::of(&blob);
                    let eos = blob.header().decoder.eos_token;
                    for (i, p) in ps.iter().enumerate() {
                        llama.reset();
                        let slot = ids_slot(ids, p.len(), m.max_new)?;
                        let (n, t) = timed_greedy(&mut llama, p, m.max_new, eos, slot, clock)?;
                        let done = slot.get(..n).unwrap_or(slot);
                        report.generated(m.name, "prompt", i, done, text.as_ref(), &t, 0, unit)?;
                    }
                    Ok(())
                })
            }
            (READER, Inputs::Images(imgs))
                if S::KINDS & kind_bit(ModelKind::EncoderDecoder) != 0 =>
            {
                with_layers!(info.layers, S::READER_LAYERS, LAYERS, L => {
                    let mut reader = Reader::<L>::new(m.blob, &info, memory)?;
                    if !checked(reader.blob(), stop)? {
                        return Ok(());
                    }
                    let d = reader.blob().header().decoder;
                    let (prompt, eos) = ([d.start_token], d.eos_token);
                    for (i, img) in imgs.iter().enumerate() {
                        let t0 = clock.now();
                        reader.encode(img)?;
                        let enc = clock.now().saturating_sub(t0);
                        let slot = ids_slot(ids, 1, m.max_new)?;
                        let (n, t) =
                            timed_greedy(&mut reader, &prompt, m.max_new, eos, slot, clock)?;
                        let done = slot.get(..n).unwrap_or(slot);
                        report.generated(m.name, "image", i, done, None, &t, enc, unit)?;
                    }
                    Ok(())
                })
            }
            _ => Err(Failure::BadInputs(
                "images for an LM or prompts for an image model",
            )),
        }
    }
}

/// [`Arena::open`]'s boot-check mode: called with the parsed, checked blob instead of running.
type Stop<'s> = Option<&'s mut dyn FnMut(&Blob<'_>) -> Result<(), Failure>>;

/// The boot check's [`Report`]: nothing runs, nothing is reported.
struct NoReport;

impl Report for NoReport {
    fn classified(&mut self, _: &str, _: usize, _: &[i8], _: u64, _: &str) -> Result<(), Failure> {
        Ok(())
    }

    fn generated(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
        _: &[u32],
        _: Option<&format::LlamaText<'_>>,
        _: &TokenTimes,
        _: u64,
        _: &str,
    ) -> Result<(), Failure> {
        Ok(())
    }
}

/// Receives each inference's result from [`Arena::infer`].
pub trait Report {
    /// Image `image` of ViT classifier `name` gave `logits`, in `time` [`Clock`] `unit`s.
    fn classified(
        &mut self,
        name: &str,
        image: usize,
        logits: &[i8],
        time: u64,
        unit: &str,
    ) -> Result<(), Failure>;

    /// Input `index` (`what`: `prompt` or `image`) of decoder `name` gave `ids` (prompt or
    /// start id, then the generated ids); `text` reads them as text (a Llama with a
    /// vocabulary, else `None`); `times` also carries the hash of every step's logits;
    /// `encode` is the encoder's time (0 for an LM).
    #[allow(clippy::too_many_arguments)]
    fn generated(
        &mut self,
        name: &str,
        what: &str,
        index: usize,
        ids: &[u32],
        text: Option<&format::LlamaText<'_>>,
        times: &TokenTimes,
        encode: u64,
        unit: &str,
    ) -> Result<(), Failure>;
}

/// The firmware's [`Report`]: `result` and `perf` lines ([`format`]).
pub(crate) struct Printer<'w>(pub(crate) &'w mut dyn Write);

impl Report for Printer<'_> {
    fn classified(
        &mut self,
        name: &str,
        image: usize,
        logits: &[i8],
        time: u64,
        unit: &str,
    ) -> Result<(), Failure> {
        let top1 = runner::argmax_i8(logits);
        format::vit_line(self.0, name, image, top1, logits)?;
        writeln!(self.0, "perf {name} image {image} {unit} {time}")?;
        Ok(())
    }

    fn generated(
        &mut self,
        name: &str,
        what: &str,
        index: usize,
        ids: &[u32],
        text: Option<&format::LlamaText<'_>>,
        times: &TokenTimes,
        encode: u64,
        unit: &str,
    ) -> Result<(), Failure> {
        format::ids_text_line(self.0, name, what, index, times.logits_fnv1a, ids, text)?;
        times.print(self.0, name, what, index, encode, unit)?;
        Ok(())
    }
}

/// The [`ModelInfo`] of `blob` without the image buffer: the harness hands the device types
/// images already quantized to int8 ([`Vit::classify`], [`Reader::encode`]), never `u8` ones,
/// so its [`Memory`] needs no room for one (the RAM stays the runner buffers'). The serial
/// link's; [`Arena`] opens a model with [`Embedded::info`] instead.
#[cfg(feature = "link")]
pub(crate) fn harness_info(blob: &Blob<'_>) -> ModelInfo {
    ModelInfo {
        image: 0,
        ..ModelInfo::of_blob(blob)
    }
}

/// The generated-ids slot for a prompt of `prompt` tokens (its length was checked by
/// [`check`]; the error is for a caller that skipped it).
fn ids_slot(ids: &mut [u32], prompt: usize, max_new: usize) -> Result<&mut [u32], Failure> {
    let needs = ids_needed(prompt, max_new);
    let have = ids.len();
    ids.get_mut(..needs)
        .ok_or(Failure::IdsDoNotFit { needs, have })
}

/// One decoder step of a device model: [`Lm::step`], [`Reader::step`] or [`Llama::step`].
trait Step {
    fn step(&mut self, token: u32) -> Result<&[i8], core_attn::Error>;
}

impl<const L: usize> Step for Lm<'_, L> {
    fn step(&mut self, token: u32) -> Result<&[i8], core_attn::Error> {
        Lm::step(self, token)
    }
}

impl<const L: usize> Step for Llama<'_, L> {
    fn step(&mut self, token: u32) -> Result<&[i8], core_attn::Error> {
        Llama::step(self, token)
    }
}

impl<const L: usize> Step for Reader<'_, L> {
    fn step(&mut self, token: u32) -> Result<&[i8], core_attn::Error> {
        Reader::step(self, token)
    }
}

/// Per-token timing of one greedy decode.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenTimes {
    /// Tokens decoded (prompt tokens fed plus generated ones).
    pub tokens: usize,
    /// Time of the whole decode, in [`Clock::unit`]s.
    pub total: u64,
    /// Slowest single token.
    pub max: u64,
    /// FNV-1a of every step's int8 logits, prompt positions included
    /// ([`format::LogitsFnv`]; printed in the `result` line, not the `perf` one).
    pub logits_fnv1a: u32,
}

impl TokenTimes {
    fn print(
        &self,
        out: &mut dyn Write,
        name: &str,
        what: &str,
        i: usize,
        encode: u64,
        unit: &str,
    ) -> fmt::Result {
        let avg = self.total / self.tokens.max(1) as u64;
        write!(out, "perf {name} {what} {i} ")?;
        if encode > 0 {
            write!(out, "encode {unit} {encode} ")?;
        }
        writeln!(
            out,
            "tokens {} {unit} {} per_token {avg} max_token {}",
            self.tokens, self.total, self.max
        )
    }
}

/// Greedy decoding of `prompt` through `model`'s steps (a fresh sequence: [`Lm::reset`] /
/// [`Reader::encode`] before), exactly as [`core_attn::model::greedy`] does it — every prompt
/// token fed one at a time, then the argmax fed back until `max_new` ids or eos — writing
/// prompt + generated ids to `out`; each step timed with `clock` and its logits hashed
/// ([`format::LogitsFnv`]). Returns the ids' count and the timing.
fn timed_greedy(
    model: &mut impl Step,
    prompt: &[u32],
    max_new: usize,
    eos: u32,
    out: &mut [u32],
    clock: &mut dyn Clock,
) -> Result<(usize, TokenTimes), Failure> {
    let total = ids_needed(prompt.len(), max_new);
    let have = out.len();
    let out = out
        .get_mut(..total)
        .ok_or(Failure::IdsDoNotFit { needs: total, have })?;
    let (head, _) = out
        .split_at_mut_checked(prompt.len())
        .ok_or(Failure::IdsDoNotFit { needs: total, have })?;
    head.copy_from_slice(prompt);
    let mut t = TokenTimes::default();
    let mut hash = format::LogitsFnv::new();
    let start = clock.now();
    let mut last = start;
    let mut len = prompt.len();
    let mut fed = 0;
    loop {
        // Feed every id not yet in the cache; the last one's logits give the next id.
        let mut next = 0u32;
        while let Some(&token) = out.get(fed).filter(|_| fed < len) {
            let logits = model.step(token)?;
            hash.update(logits);
            next = runner::argmax_i8(logits) as u32;
            fed += 1;
            let now = clock.now();
            let dt = now.saturating_sub(last);
            last = now;
            t.tokens += 1;
            t.max = t.max.max(dt);
        }
        let Some(slot) = out.get_mut(len) else {
            break;
        };
        *slot = next;
        len += 1;
        if eos != NO_TOKEN && next == eos || len == total {
            break;
        }
    }
    t.total = last.saturating_sub(start);
    t.logits_fnv1a = hash.value();
    Ok((len, t))
}
