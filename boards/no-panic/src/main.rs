//! Link-time proof that the firmware's model checks and inference cannot panic.
//!
//! The panic handler below calls a function that exists nowhere, so this binary **links only
//! if no panic call site is left** in everything it contains: [`board_common::check`] (which
//! runs [`Blob::parse`](board_common::core_attn::blob::Blob::parse) and the buffer, layer,
//! id and input checks), [`board_common::Arena::run_quiet`] (the firmware's boot check: each
//! blob parsed as its header's kind by the device type, the same checks) and
//! [`board_common::Arena::infer`] (core-attn's public device types
//! `Vit`, `Lm`, `Reader` and `Llama` — the ones `include_model!` gives a user — with their KV caches,
//! every kernel and block they reach, and the board's greedy-decoding glue) — the same code the QEMU and board firmware
//! runs, through a [`Report`] that folds results instead of formatting them.
//!
//! The models the runners see come through [`core::hint::black_box`]: the optimizer may not
//! use what the embedded blobs or inputs contain, so the proof holds for **any** blob bytes,
//! any inputs and any model sizes, with the compiled buffer sizes of the generated `Arena`.
//! Bounds checks, slice-range checks, divisions by zero, `unwrap`s and `assert!`s that the
//! compiler could not discharge would each keep a call to the panic machinery alive; there is
//! none. (Arithmetic overflow does not panic in release builds: it wraps; the kernels' doc
//! comments argue why their accumulators do not overflow.)
//!
//! `bash boards/no-panic/check.sh` links it for the Cortex-M4/M7 (`thumbv7em`), M0/M0+
//! (`thumbv6m`), M33 (`thumbv8m.main`) and M55 (Helium) builds of core-attn and runs the M4 one
//! under QEMU, where it exits 0 only if every embedded model passed its checks and ran. It also
//! builds the `canary` feature (one deliberate bounds check on opaque data) and requires that
//! build to fail to link, so the mechanism is shown to catch a panic path.
#![no_std]
#![no_main]

use board_common::format::LlamaText;
use board_common::{Embedded, Failure, Report, TokenTimes};
use cortex_m_semihosting::debug;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

#[cortex_m_rt::entry]
fn main() -> ! {
    static mut ARENA: Arena = Arena::new();
    // Opaque to the optimizer: the table, the blob bytes and the inputs it points to.
    let models: &[Embedded] = core::hint::black_box(MODELS);
    let mut clock = Steps(0);
    let mut sum = Fold(0);
    let ran = ARENA.run_quiet(models, &mut clock, &mut sum).is_ok();
    // The generic boot check too (`Blob::parse` of any kind; the serial-link server's): the
    // firmware's own check parses each blob as its kind only (`Arena::run_quiet`).
    let (layers, ids) = core::hint::black_box((8, 64));
    for m in models {
        sum.add(u32::from(
            board_common::check(m, &Arena::SIZES, layers, ids).is_ok(),
        ));
    }
    #[cfg(feature = "canary")]
    sum.add(u32::from(
        models[core::hint::black_box(models.len())].blob[0],
    ));
    // Keep every result alive (and the exit status depend on the run).
    let ok = ran && core::hint::black_box(sum.0) != 0;
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::nop();
    }
}

/// A clock that counts its readings (the proof needs no time, only a [`board_common::Clock`]).
struct Steps(u64);

impl board_common::Clock for Steps {
    fn now(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        self.0
    }
    fn unit(&self) -> &'static str {
        "steps"
    }
}

/// Folds every logit and id into one word (FNV-1a style), so no result is dead code.
struct Fold(u32);

impl Fold {
    fn add(&mut self, v: u32) {
        self.0 = (self.0 ^ v).wrapping_mul(0x0100_0193);
    }
}

impl Report for Fold {
    fn classified(
        &mut self,
        _name: &str,
        _image: usize,
        logits: &[i8],
        _time: u64,
        _unit: &str,
    ) -> Result<(), Failure> {
        logits.iter().for_each(|&l| self.add(l as u32));
        Ok(())
    }

    fn generated(
        &mut self,
        _name: &str,
        _what: &str,
        _index: usize,
        ids: &[u32],
        text: Option<&LlamaText<'_>>,
        times: &TokenTimes,
        _encode: u64,
        _unit: &str,
    ) -> Result<(), Failure> {
        ids.iter().for_each(|&t| self.add(t));
        // A Llama's text (run.c's decoding of the ids): part of the proof too.
        if let Some(t) = text {
            let _ = t.each_byte(ids, 0, &mut |b| {
                self.add(u32::from(b));
                Ok(())
            });
        }
        self.add(times.logits_fnv1a);
        Ok(())
    }
}

/// Reached only if some panic call site survived optimization: then the symbol below is
/// undefined and linking fails, naming it.
#[cfg(not(feature = "list-sites"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        fn inference_path_contains_a_panic_call_site_see_boards_panic_sites_sh() -> !;
    }
    // SAFETY: never executed — the function does not exist, so a binary in which this handler
    // is reachable does not link.
    unsafe { inference_path_contains_a_panic_call_site_see_boards_panic_sites_sh() }
}

/// `--features list-sites`: a handler that links, to list the sites that break the proof.
#[cfg(feature = "list-sites")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}
