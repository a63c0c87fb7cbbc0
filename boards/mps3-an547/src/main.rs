//! core-attn on an emulated cortex-m55 (QEMU `mps3-an547`): the integer self-check of every kernel
//! (`board_common::selftest`), then every embedded model on its inputs, result
//! lines and instruction counts over semihosting (all of it in `board_common`); built with
//! `TATN_DEMO=1` also the human view (`boards/run-demo.sh` runs a Llama that does not fit the M4
//! here).
#![no_std]
#![no_main]

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core clock of the machine: SysTick counts it (`10^9 / CORE_HZ` instructions a tick).
const CORE_HZ: u32 = 32_000_000;

/// The models' static buffers, under a fixed symbol name (tests/tests/qemu_models.rs finds it).
#[no_mangle]
static TATN_ARENA: board_common::qemu::ArenaCell<Arena> =
    board_common::qemu::ArenaCell::new(Arena::new());

#[cortex_m_rt::entry]
fn main() -> ! {
    // In a static, not on the stack: the self-check's parameters are tens of KiB.
    static mut SELFTEST: attn_selftest::Params = attn_selftest::Params::zeroed();
    let params: &'static mut attn_selftest::Params = SELFTEST;
    let arena = TATN_ARENA.try_take();
    board_common::qemu::main(CORE_HZ, |out, clock| {
        board_common::selftest::run(params, CORE_HZ, out, clock)
            && arena.is_some_and(|a| a.run_demo(MODELS, DEMO, out, clock))
    })
}
