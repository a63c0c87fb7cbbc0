//! Board glue of the QEMU example — everything that is not the model, so that
//! `src/bin/*.rs` read as the user code of the core-attn README:
//!
//! - [`entry!`]: the `cortex-m-rt` entry point that runs the binary's
//!   `fn run() -> Result<(), core_attn::Error>` and exits QEMU with its status;
//! - [`print!`] / [`println!`]: output over semihosting (the host's stdout under QEMU), and
//!   [`print_line`]: a text and a number without `core::fmt` (code size);
//! - the panic handler: prints the message and exits QEMU with a failure status;
//! - [`DIGITS`] / [`LABELS`]: test images as raw `u8` pixels (a camera's view), embedded by
//!   `build.rs` from `models/data/mnist_test_500.npy`.
#![no_std]
#![warn(missing_docs)]

use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hio;

mod digits {
    include!(concat!(env!("OUT_DIR"), "/digits.rs"));
}
pub use digits::{DIGITS, LABELS};

#[doc(hidden)]
pub use cortex_m_rt as __rt;

/// Write `bytes` to the host's stdout (semihosting); output errors are ignored. Every print of
/// this glue ends here. Not inlined: the code-size benchmark (`bash bench/run
/// --example-size`) counts instructions between `main`, the first call of this function and
/// [`finish`].
#[doc(hidden)]
#[inline(never)]
pub fn _print(bytes: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(bytes);
    }
}

/// Formatted text through [`_print`] (the [`print!`] / [`println!`] macros).
#[doc(hidden)]
pub fn _print_fmt(args: core::fmt::Arguments<'_>) {
    struct Out;
    impl core::fmt::Write for Out {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            _print(s.as_bytes());
            Ok(())
        }
    }
    let _ = core::fmt::Write::write_fmt(&mut Out, args);
}

/// Print `text`, the decimal `n` and a newline — `println!("{text}{n}")` without
/// `core::fmt`: a few dozen bytes of code instead of the ~1 KB of core's formatting
/// machinery (`fmt::write`, `pad_integral`, the digit table), which a firmware that prints
/// only this never links. (The embassy examples log with defmt, which formats on the host.)
pub fn print_line(text: &str, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    _print(text.as_bytes());
    _print(&digits[i..]);
    _print(b"\n");
}

/// `print!` over semihosting.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::_print_fmt(format_args!($($arg)*)) };
}

/// `println!` over semihosting.
#[macro_export]
macro_rules! println {
    () => { $crate::_print(b"\n") };
    ($($arg:tt)*) => {{ $crate::_print_fmt(format_args!($($arg)*)); $crate::_print(b"\n") }};
}

/// Exit QEMU: status 0 for `Ok`, 1 (after printing `error N`, N the [`error_code`]) for
/// `Err`. Not inlined (a marker of the code-size benchmark, see [`_print`]).
#[inline(never)]
pub fn finish(result: Result<(), core_attn::Error>) -> ! {
    let code = match result {
        Ok(()) => EXIT_SUCCESS,
        Err(e) => {
            print_line("error ", error_code(&e));
            EXIT_FAILURE
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

/// A number for the kind of error: 1 `BadBlob`, 2 `ShapeMismatch`, 3 `BadDimension`,
/// 4 `BufferTooSmall`, 5 `CacheFull`, 6 `TokenOutOfRange`, 7 `BadRequant`. Not the message:
/// printing it (`{}`, core-attn's `Display`, or `BlobError::message` and the `what` fields)
/// links the text of every check the firmware could fail — about 1 KB at opt-level "s" with
/// the formatting — and a firmware that prints only this number links none of them. The host
/// (`tools`) prints the message for the same blob and input.
pub fn error_code(e: &core_attn::Error) -> usize {
    use core_attn::Error;
    match *e {
        Error::BadBlob(_) => 1,
        Error::ShapeMismatch { .. } => 2,
        Error::BadDimension { .. } => 3,
        Error::BufferTooSmall { .. } => 4,
        Error::CacheFull { .. } => 5,
        Error::TokenOutOfRange { .. } => 6,
        _ => 7,
    }
}

/// The firmware entry point: `entry!(run)` runs `run()` and exits QEMU with its status.
#[macro_export]
macro_rules! entry {
    ($run:ident) => {
        #[$crate::__rt::entry]
        fn main() -> ! {
            $crate::finish($run())
        }
    };
}

/// The device-specific part of the vector table (cortex-m-rt's `device` feature), as a
/// peripheral access crate provides it: the mps2-an386's 32 external interrupts, all on the
/// default handler (this firmware enables none). Without it cortex-m-rt links a generic
/// 240-entry table (960 bytes).
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

extern "C" {
    /// cortex-m-rt's default handler (a loop, or the user's `#[exception] DefaultHandler`).
    fn DefaultHandler();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {}", info);
    debug::exit(EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
