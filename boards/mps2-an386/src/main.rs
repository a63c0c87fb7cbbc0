//! core-attn on an emulated Cortex-M4 (QEMU `mps2-an386`, 25 MHz core clock).
//!
//! Runs the integer self-check of every kernel and block (one line per case, in the host's
//! format `attn_selftest::format_line`), then every embedded model on its inputs
//! (`board_common`), printing instructions executed (SysTick under `-icount shift=0`). Exits 0
//! only on success.
#![no_std]
#![no_main]

use core::fmt::Write;

use board_common::Clock;

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core clock of the machine (SysTick counts it; 40 instructions per tick).
const CORE_HZ: u32 = 25_000_000;

#[cortex_m_rt::entry]
fn main() -> ! {
    static mut ARENA: Arena = Arena::new();
    // In a static, not on the stack: the parameters are ~30 KiB.
    static mut SELFTEST: attn_selftest::Params = attn_selftest::Params::zeroed();
    let params: &'static mut attn_selftest::Params = SELFTEST;
    board_common::qemu::main(CORE_HZ, |out, clock| {
        selftest(params, out, clock) && ARENA.run(MODELS, out, clock)
    })
}

fn selftest(
    params: &mut attn_selftest::Params,
    out: &mut dyn Write,
    clock: &mut dyn Clock,
) -> bool {
    params.init(attn_selftest::SEED);
    let mut failed = false;
    let start = clock.now();
    let result = attn_selftest::run(params, attn_selftest::SEED, &mut |name, data| {
        let mut w = &mut *out;
        failed |= attn_selftest::format_line(&mut w, name, data).is_err();
        failed |= out.write_str("\n").is_err();
    });
    let spent = clock.now().saturating_sub(start);
    match result {
        Ok(()) if !failed => {
            // `systick=` is what tests/tests/qemu_selftest.rs looks for (40 instructions a tick).
            let ticks = spent * u64::from(CORE_HZ) / 1_000_000_000;
            writeln!(
                out,
                "selftest done systick={ticks} {}={spent}",
                clock.unit()
            )
            .is_ok()
        }
        Ok(()) => false,
        Err(e) => {
            let _ = writeln!(out, "selftest error: {e}");
            false
        }
    }
}
