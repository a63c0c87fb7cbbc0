//! Serve mode of the emulated Cortex-M33 (QEMU `mps2-an505`): the first embedded model
//! (`TATN_MODEL=path/to/model.tatn`) answers `attn-link` requests on UART0 — model info, run
//! one input, generate N tokens — timed in instructions (SysTick under `-icount shift=0`).
//! `tools device --qemu mps2-an505 MODEL ...` builds this binary, starts QEMU with UART0 on a
//! socket and talks to it. Boot messages (and a refused model) go to semihosting. The firmware
//! is `board_common::serve_firmware!` with this machine's UART0 (Secure alias: the firmware
//! runs Secure; `board_common::uart` has the memory map).
#![no_std]
#![no_main]

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core clock of the machine (SysTick counts it).
const CORE_HZ: u32 = 20_000_000;

/// APB clock of the machine's UARTs (QEMU's `apb_periph_frq`).
const APB_HZ: u32 = 20_000_000;

board_common::serve_firmware!(
    "mps2-an505",
    CORE_HZ,
    board_common::uart::AN505_UART0,
    APB_HZ
);
