//! Serve mode of the emulated Cortex-M7 (QEMU `mps2-an500`): the first embedded model
//! (`TATN_MODEL=path/to/model.tatn`) answers `attn-link` requests on UART0 — model info, run
//! one input, generate N tokens — timed in instructions (SysTick under `-icount shift=0`).
//! `tools device --qemu mps2-an500 MODEL ...` builds this binary, starts QEMU with UART0 on a
//! socket and talks to it. Boot messages (and a refused model) go to semihosting. The firmware
//! is `board_common::serve_firmware!` (shared by the MPS2 boards).
#![no_std]
#![no_main]

include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

/// Core and APB clock of the machine.
const CORE_HZ: u32 = 25_000_000;

board_common::serve_firmware!("mps2-an500", CORE_HZ);
