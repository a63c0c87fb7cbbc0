//! The integer self-check of every core-attn kernel and block (`attn-selftest`) on the device:
//! one line per case in the host's format, then `selftest done systick=…`. The workspace test
//! `tests/tests/qemu_selftest.rs` runs the same cases on the host and compares the lines byte for
//! byte, so every optimized kernel a core compiles (SMLAD `asm!` on M4/M7/M33, Helium on M55) is
//! checked against the host's portable code on that core.

use core::fmt::Write;

use crate::Clock;

/// Run the self-check with `params` (a `static`: the parameters are tens of KiB, too much for
/// the stack), writing its lines to `out`. `core_hz` converts the clock to SysTick ticks for the
/// summary line. Returns `true` on success.
pub fn run(
    params: &mut attn_selftest::Params,
    core_hz: u32,
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
            // `systick=` is what tests/tests/qemu_selftest.rs looks for.
            let ticks = spent * u64::from(core_hz) / 1_000_000_000;
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
