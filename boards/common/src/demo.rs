//! The demo view: what a model did, for a person, printed by the device next to the machine
//! lines (`boards/run-demo.sh` builds with `TATN_DEMO=1` and hides the machine lines unless
//! `VERBOSE=1`).
//!
//! Per input: the image as ASCII art drawn from the int8 image the device actually ran on
//! (shades scaled between the image's darkest and brightest value), the true answer from the
//! test set, the device's answer with ✓/✗, or for a language model the prompt and the generated
//! text as characters; then the time at a 100 MHz clock. Per model, one closing line
//! `summary: NAME ...` (right answers, time per image or tokens per second).
//!
//! Times: the QEMU firmware counts executed instructions (SysTick under `-icount shift=0`,
//! [`crate::qemu`]); they are converted at **1 instruction ≈ 1 cycle at 100 MHz**, i.e.
//! `ms = instructions / 100 000`. This is optimistic: a Cortex-M4 needs more cycles than
//! instructions (loads, multiplies, branches); `BENCHMARKS.md` estimates 2,568,410 cycles for
//! the 1,874,675 instructions of one `vit-mnist` image, about 1.37 cycles per instruction.
//! With another clock unit (DWT cycles, µs on real boards) the raw count is printed instead.
//!
//! Vocabulary and answers travel in the firmware: a board's `build.rs`
//! ([`crate::host::build`], feature `host`) writes them into `model_consts.rs` as `DEMO`, one
//! [`Shown`] per embedded model. Everything here is panic-free (`get`, `checked_div`, no
//! indexing), since the QEMU firmware links with `deny-panic`.

use core::fmt::{self, Write};

use core_attn::blob::{Header, ModelKind, NO_TOKEN};
use core_attn::model as runner;

use crate::format::LlamaText;
use crate::{Clock, Embedded, Failure, Inputs, Printer, Report, TokenTimes};

/// What the demo view needs of one embedded model, beyond the model itself.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Token id → text (empty: the model has no vocabulary; ids are printed).
    pub vocab: &'static [&'static str],
    /// The true answer per input, from the test set (empty: no labels): one class for an image
    /// classifier, the target token ids (`d… eos pad…`) for an encoder–decoder.
    pub labels: &'static [&'static [u32]],
}

/// Instructions per millisecond at 100 MHz, 1 instruction ≈ 1 cycle.
const PER_MS: u64 = 100_000;

/// Shades from background to ink.
const RAMP: &[u8] = b" .:-=+*#%@";

/// Run `m` (its blob's `header`, parsed by the caller) through `infer` with a reporter that prints the machine lines and the human view,
/// then a `summary:` line.
pub(crate) fn run(
    m: &Embedded,
    shown: &Shown,
    header: Header,
    out: &mut dyn Write,
    clock: &mut dyn Clock,
    infer: impl FnOnce(&mut dyn Clock, &mut Human<'_>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let what = match header.kind {
        ModelKind::VitClassifier => "image classifier (ViT)",
        ModelKind::EncoderDecoder => "image to text (ViT encoder, GPT-2 decoder)",
        ModelKind::DecoderLm => "character language model (GPT-2), greedy decoding",
        ModelKind::Llama => "Llama language model, greedy decoding",
    };
    write!(out, "{}: {what}", m.name)?;
    if clock.unit() == "instructions" {
        out.write_str(
            "; times at 100 MHz: instructions counted under QEMU, 1 instruction \u{2248} 1 cycle",
        )?;
    }
    out.write_char('\n')?;
    let mut h = Human {
        out,
        m,
        shown,
        header,
        right: 0,
        labelled: 0,
        inputs: 0,
        time: 0,
        tokens: 0,
        new: 0,
        unit: clock.unit(),
    };
    infer(clock, &mut h)?;
    h.summary()?;
    Ok(())
}

/// The demo [`Report`]: the machine lines of [`Printer`], then the human view.
pub(crate) struct Human<'a> {
    out: &'a mut dyn Write,
    m: &'a Embedded,
    shown: &'a Shown,
    header: Header,
    /// Right answers among the `labelled` inputs.
    right: usize,
    labelled: usize,
    inputs: usize,
    /// Total time over the inputs, in `unit`s.
    time: u64,
    /// Tokens decoded (language models: prompt + generated) and generated.
    tokens: u64,
    new: u64,
    unit: &'static str,
}

impl Human<'_> {
    fn image(&self, index: usize) -> Option<&'static [i8]> {
        match self.m.inputs {
            Inputs::Images(v) => v.get(index).copied(),
            Inputs::Prompts(_) => None,
        }
    }

    fn draw(&mut self, index: usize) -> fmt::Result {
        let e = self.header.encoder;
        match self.image(index) {
            // One picture per channel would be noise; draw the first.
            Some(img) => draw(self.out, img, e.image_width, e.height),
            None => Ok(()),
        }
    }

    /// ✓/✗ and the bookkeeping for one answer (`None`: no label for this input).
    fn mark(&mut self, right: Option<bool>) -> fmt::Result {
        match right {
            Some(true) => {
                self.right += 1;
                self.labelled += 1;
                self.out.write_str(" \u{2713}")
            }
            Some(false) => {
                self.labelled += 1;
                self.out.write_str(" \u{2717}")
            }
            None => Ok(()),
        }
    }

    fn text(&mut self, ids: &[u32]) -> fmt::Result {
        let d = self.header.decoder;
        text(self.out, self.shown.vocab, ids, d.eos_token, d.pad_token)
    }

    fn summary(&mut self) -> fmt::Result {
        write!(self.out, "summary: {} ", self.m.name)?;
        if self.labelled > 0 {
            let pct = (self.right * 100).checked_div(self.labelled).unwrap_or(0);
            write!(
                self.out,
                "{}/{} right ({pct}%), ",
                self.right, self.labelled
            )?;
        }
        if self.tokens > 0 && self.header.kind == ModelKind::DecoderLm {
            write!(self.out, "{} characters generated, ", self.new)?;
            tokens_per_s(self.out, self.tokens, self.time, self.unit)?;
        } else if self.tokens > 0 && self.header.kind == ModelKind::Llama {
            write!(self.out, "{} tokens generated, ", self.new)?;
            tokens_per_s(self.out, self.tokens, self.time, self.unit)?;
        } else {
            let per = self.time.checked_div(self.inputs as u64).unwrap_or(0);
            duration(self.out, per, self.unit)?;
            self.out.write_str(" per image")?;
            if self.unit == "instructions" {
                self.out.write_str(" at 100 MHz")?;
            }
        }
        self.out.write_char('\n')
    }
}

impl Report for Human<'_> {
    fn classified(
        &mut self,
        name: &str,
        image: usize,
        logits: &[i8],
        time: u64,
        unit: &str,
    ) -> Result<(), Failure> {
        Printer(&mut *self.out).classified(name, image, logits, time, unit)?;
        let top1 = runner::argmax_i8(logits);
        writeln!(self.out, "image {image}:")?;
        self.draw(image)?;
        let label = self
            .shown
            .labels
            .get(image)
            .and_then(|l| l.first())
            .copied();
        if let Some(l) = label {
            write!(self.out, "  true {l}   ")?;
        }
        write!(self.out, "device {top1}")?;
        self.mark(label.map(|l| l as usize == top1))?;
        self.out.write_str("   ")?;
        duration(self.out, time, unit)?;
        self.out.write_char('\n')?;
        self.inputs += 1;
        self.time = self.time.saturating_add(time);
        Ok(())
    }

    fn generated(
        &mut self,
        name: &str,
        what: &str,
        index: usize,
        ids: &[u32],
        text: Option<&LlamaText<'_>>,
        times: &TokenTimes,
        encode: u64,
        unit: &str,
    ) -> Result<(), Failure> {
        Printer(&mut *self.out).generated(name, what, index, ids, text, times, encode, unit)?;
        self.inputs += 1;
        self.tokens = self.tokens.saturating_add(times.tokens as u64);
        let total = times.total.saturating_add(encode);
        self.time = self.time.saturating_add(total);
        match self.m.inputs {
            Inputs::Prompts(ps) => {
                let n = ps.get(index).map_or(0, |p| p.len());
                let (prompt, new) = (ids.get(..n).unwrap_or(&[]), ids.get(n..).unwrap_or(&[]));
                // A Llama's stopping BOS (llama2.c) is not a generated token of the text.
                let shown = text.map_or(ids.len(), |t| t.shown(ids).len());
                let new_count = shown.saturating_sub(n);
                self.new = self.new.saturating_add(new_count as u64);
                write!(self.out, "prompt {index}:\n  prompt:    \"")?;
                match text {
                    // A Llama: its pieces as `run.c` prints them, from the blob's vocabulary.
                    Some(t) => llama_text(self.out, t, ids.get(..n).unwrap_or(ids), 0)?,
                    None => self.text(prompt)?,
                }
                write!(self.out, "\"\n  continued: \"")?;
                match text {
                    Some(t) => llama_text(self.out, t, ids, n)?,
                    None => self.text(new)?,
                }
                write!(
                    self.out,
                    "\"\n  {} new tokens; {} passes through the model (the prompt is fed one \
                     token at a time): ",
                    new_count, times.tokens
                )?;
                tokens_per_s(self.out, times.tokens as u64, times.total, unit)?;
                self.out.write_char('\n')?;
            }
            Inputs::Images(_) => {
                // ids[0] is the decoder's start token.
                let new = ids.get(1..).unwrap_or(&[]);
                writeln!(self.out, "image {index}:")?;
                self.draw(index)?;
                let label = self.shown.labels.get(index).copied();
                if let Some(l) = label {
                    self.out.write_str("  true ")?;
                    self.text(l)?;
                    self.out.write_str("   ")?;
                }
                self.out.write_str("device ")?;
                self.text(new)?;
                let eos = self.header.decoder.eos_token;
                self.mark(label.map(|l| until(l, eos) == until(new, eos)))?;
                self.out.write_str("   ")?;
                duration(self.out, total, unit)?;
                if unit == "instructions" {
                    self.out.write_str(" (encoder ")?;
                    duration(self.out, encode, unit)?;
                    write!(self.out, ", {} tokens ", times.tokens)?;
                    duration(self.out, times.total, unit)?;
                    self.out.write_char(')')?;
                }
                self.out.write_char('\n')?;
            }
        }
        Ok(())
    }
}

/// `ids` up to and including the first `eos` (all of them without one).
fn until(ids: &[u32], eos: u32) -> &[u32] {
    match ids.iter().position(|&t| t == eos) {
        Some(i) => ids.get(..=i).unwrap_or(ids),
        None => ids,
    }
}

/// The text of `ids`: up to the first `eos`, without `pad`; each id's vocabulary entry (a line
/// break as `⏎`), or the ids themselves without a vocabulary.
fn text(out: &mut dyn Write, vocab: &[&str], ids: &[u32], eos: u32, pad: u32) -> fmt::Result {
    for (i, &t) in ids.iter().enumerate() {
        if t == eos && eos != NO_TOKEN {
            break;
        }
        if t == pad && pad != NO_TOKEN {
            continue;
        }
        if vocab.is_empty() {
            if i > 0 {
                out.write_char(' ')?;
            }
            write!(out, "{t}")?;
            continue;
        }
        for c in vocab.get(t as usize).copied().unwrap_or("\u{fffd}").chars() {
            match c {
                '\n' => out.write_char('\u{23ce}')?,
                c => out.write_char(c)?,
            }
        }
    }
    Ok(())
}

/// The text of a Llama's `ids[from..]` ([`LlamaText::each_byte`]) as characters: complete
/// UTF-8 sequences as themselves (a line break as `⏎`), a byte that cannot start or continue
/// one as U+FFFD.
fn llama_text(out: &mut dyn Write, t: &LlamaText<'_>, ids: &[u32], from: usize) -> fmt::Result {
    let mut u = Utf8 {
        out,
        pending: [0; 4],
        len: 0,
    };
    t.each_byte(ids, from, &mut |b| u.push(b))?;
    u.flush()
}

/// Bytes to characters, one byte at a time (a piece may end inside a UTF-8 sequence).
struct Utf8<'w> {
    out: &'w mut dyn Write,
    pending: [u8; 4],
    len: usize,
}

impl Utf8<'_> {
    fn push(&mut self, b: u8) -> fmt::Result {
        if self.len > 0 && b & 0xc0 != 0x80 {
            // A new sequence starts before the pending one completed.
            self.flush()?;
        }
        if let Some(slot) = self.pending.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
        let want = match self.pending.first().copied().unwrap_or(0) {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1, // a stray continuation byte or an invalid lead: flushed as U+FFFD
        };
        if self.len >= want {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> fmt::Result {
        let bytes = self.pending.get(..self.len).unwrap_or(&[]);
        self.len = 0;
        if bytes.is_empty() {
            return Ok(());
        }
        match core::str::from_utf8(bytes) {
            Ok(s) => {
                for c in s.chars() {
                    match c {
                        '\n' => self.out.write_char('\u{23ce}')?,
                        c => self.out.write_char(c)?,
                    }
                }
                Ok(())
            }
            Err(_) => self.out.write_char('\u{fffd}'),
        }
    }
}

/// `N.NN ms at 100 MHz` for an instruction count, else the raw count and unit.
fn duration(out: &mut dyn Write, t: u64, unit: &str) -> fmt::Result {
    if unit != "instructions" {
        return write!(out, "{t} {unit}");
    }
    let us = t / (PER_MS / 1000);
    write!(out, "{}.{:02} ms", us / 1000, (us % 1000) / 10)
}

/// `N tokens/s at 100 MHz (M instructions per token)`.
fn tokens_per_s(out: &mut dyn Write, tokens: u64, t: u64, unit: &str) -> fmt::Result {
    if unit != "instructions" {
        return write!(out, "{tokens} tokens in {t} {unit}");
    }
    let per_s = (tokens.saturating_mul(PER_MS * 1000))
        .checked_div(t)
        .unwrap_or(0);
    let per_token = t.checked_div(tokens).unwrap_or(0);
    write!(
        out,
        "{per_s} tokens/s at 100 MHz ({per_token} instructions per token)"
    )
}

/// Indentation of the pictures.
const INDENT: &str = "    ";

/// An int8 image of `height` rows of `width` pixels (first channel) as ASCII art: one
/// character per 1×2 pixels, or per 2×4 pixels for images wider than 64 (so a 28×112 strip
/// stays 56 columns wide); the shade is the cell's mean between the image's minimum and
/// maximum.
fn draw(out: &mut dyn Write, img: &[i8], width: usize, height: usize) -> fmt::Result {
    let (cw, ch) = if width > 64 { (2, 4) } else { (1, 2) };
    let plane = img.get(..width.saturating_mul(height)).unwrap_or(img);
    let lo = plane.iter().copied().min().unwrap_or(0) as i64;
    let hi = plane.iter().copied().max().unwrap_or(0) as i64;
    let span = hi - lo + 1;
    let levels = RAMP.len() as i64;
    for row in 0..height / ch {
        out.write_str(INDENT)?;
        for col in 0..width / cw {
            let mut sum = 0i64;
            let mut n = 0i64;
            for dy in 0..ch {
                for dx in 0..cw {
                    let at = (row * ch + dy) * width + col * cw + dx;
                    if let Some(&v) = plane.get(at) {
                        sum += v as i64 - lo;
                        n += 1;
                    }
                }
            }
            let level = (sum * levels).checked_div(n * span).unwrap_or(0);
            let c = RAMP
                .get(level.clamp(0, levels - 1) as usize)
                .copied()
                .unwrap_or(b' ');
            out.write_char(c as char)?;
        }
        out.write_char('\n')?;
    }
    Ok(())
}
