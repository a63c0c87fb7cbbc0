//! core-attn on an emulated Cortex-M4 (QEMU `mps2-an386`, 25 MHz core clock).
//!
//! Runs the integer self-check of every kernel and block (one line per case, in the host's
//! format `attn_selftest::format_line`), then every embedded model on its inputs
//! (`board_common`), printing instructions executed (SysTick under `-icount shift=0`) and, when
//! built with `TATN_DEMO=1` (`boards/run-demo.sh`), the human view (`board_common::demo`).
//! Exits 0 only on success.
#![no_std]
#![no_main]

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core clock of the machine (SysTick counts it; 40 instructions per tick).
const CORE_HZ: u32 = 25_000_000;

/// The models' static buffers, under a fixed symbol name (tests/tests/qemu_models.rs finds it).
#[no_mangle]
static TATN_ARENA: board_common::qemu::ArenaCell<Arena> =
    board_common::qemu::ArenaCell::new(Arena::new());

#[cortex_m_rt::entry]
fn main() -> ! {
    // In a static, not on the stack: the parameters are ~30 KiB.
    static mut SELFTEST: attn_selftest::Params = attn_selftest::Params::zeroed();
    let params: &'static mut attn_selftest::Params = SELFTEST;
    let arena = TATN_ARENA.try_take();
    board_common::qemu::main(CORE_HZ, |out, clock| {
        board_common::selftest::run(params, CORE_HZ, out, clock)
            && arena.is_some_and(|a| a.run_demo(MODELS, DEMO, out, clock))
    })
}
