//! QEMU machines: semihosting output and exit code, SysTick as an instruction counter, and
//! the panic handler (with `deny-panic`, one that makes a release build with any panic path
//! fail to link).
//!
//! # Instructions from SysTick
//! Under `-icount shift=0` QEMU advances virtual time by exactly 1 ns per executed guest
//! instruction, and SysTick (clock source = core clock) counts that virtual time at the
//! machine's core clock `hz`. So one tick is `10^9 / hz` instructions: 40 on `mps2-an386` /
//! `mps2-an500` (25 MHz), 50 on `mps2-an505` (20 MHz), 31.25 on `mps3-an547` (32 MHz) and
//! 62.5 on `microbit` (16 MHz). [`main`] checks this at boot on a loop of a known instruction
//! count and prints `clock: N instructions = T ticks = M counted`; `tests/tests/qemu_models.rs`
//! asserts `M` is `N` to within two ticks (three readings, each quantized to a tick). The resolution is one tick (31–63 instructions).
//!
//! The 24-bit counter wraps every 2^24 ticks; the SysTick exception counts wraps, so readings
//! are 64-bit.
//!
//! DWT CYCCNT reads 0 under QEMU: not usable here.

use core::fmt::{self, Write};
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};

use crate::Clock;

/// A static taken once as `&'static mut` without a copy (`static_cell::ConstStaticCell`):
/// what a QEMU board keeps its [`Arena`](crate::Arena) in, under the fixed, unmangled symbol
/// name `TATN_ARENA` (`board_common::host::ARENA_SYMBOL`), so that
/// `tests/tests/qemu_models.rs` finds it in the ELF whatever the toolchain's mangling scheme:
///
/// ```ignore
/// #[no_mangle]
/// static TATN_ARENA: ArenaCell<Arena> = ArenaCell::new(Arena::new());
/// let arena: Option<&'static mut Arena> = TATN_ARENA.try_take();
/// ```
///
/// The symbol's size is the arena's plus 4 bytes (the taken flag and padding); all zeros, so
/// it lands in `.bss`.
pub use static_cell::ConstStaticCell as ArenaCell;

/// Semihosting stdout as a [`core::fmt::Write`].
pub struct Semihosting(hio::HostStream);

impl Semihosting {
    /// Open the host's stdout (`None` without a semihosting host).
    pub fn stdout() -> Option<Self> {
        hio::hstdout().ok().map(Semihosting)
    }
}

impl Write for Semihosting {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS (load + store: thumbv6m has no atomic RMW).
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

const RELOAD: u32 = 0x00ff_ffff;

/// SysTick on the core clock, extended to 64 bits, reported in instructions (see the module
/// docs for the conversion).
pub struct SysTickClock {
    _syst: SYST,
    // Non-zero by type: the conversion below divides by it and must not be able to panic.
    hz: NonZeroU64,
}

impl SysTickClock {
    /// Start SysTick (core clock, full 24-bit reload, wrap interrupt) on a core clocked at `hz`
    /// (0 is taken as 1).
    pub fn new(mut syst: SYST, hz: u32) -> Self {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock {
            _syst: syst,
            hz: NonZeroU64::new(hz as u64).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// Raw ticks since [`SysTickClock::new`].
    pub fn ticks(&self) -> u64 {
        loop {
            let w1 = WRAPS.load(Ordering::Relaxed);
            let cur = SYST::get_current();
            let w2 = WRAPS.load(Ordering::Relaxed);
            if w1 == w2 {
                // The counter runs RELOAD, ..., 1, 0 and the exception fires on 1 -> 0, so
                // at 0 the wrap is already counted. (0 is also the value before the first
                // tick, with no wrap: elapsed 0.)
                let base = (w1 as u64) << 24;
                return if cur == 0 {
                    base.saturating_sub(1)
                } else {
                    base + (RELOAD - cur) as u64
                };
            }
        }
    }

    /// Ticks to instructions: `ticks · 10^9 / hz` (1 instruction = 1 ns under `-icount shift=0`).
    pub fn instructions(&self, ticks: u64) -> u64 {
        ticks * 1_000_000_000 / self.hz
    }
}

impl Clock for SysTickClock {
    fn now(&mut self) -> u64 {
        self.instructions(self.ticks())
    }
    fn unit(&self) -> &'static str {
        "instructions"
    }
}

/// Execute exactly `2 · n` instructions (`subs` + `bne` per iteration), `n >= 1`.
#[inline(always)]
fn spin(n: u32) {
    // SAFETY: a register-only loop; clobbers only r0 (declared) and the flags.
    unsafe {
        core::arch::asm!("1:", "subs r0, #1", "bne 1b", inout("r0") n => _, options(nomem, nostack));
    }
}

/// Measure a loop of a known instruction count: returns (instructions, ticks). Two loops of
/// different lengths are timed and subtracted, so the reading overhead cancels.
pub fn calibrate(clock: &SysTickClock) -> (u64, u64) {
    const SHORT: u32 = 10_000;
    const LONG: u32 = 510_000;
    let t0 = clock.ticks();
    spin(SHORT);
    let t1 = clock.ticks();
    spin(LONG);
    let t2 = clock.ticks();
    let short = t1 - t0;
    let long = t2 - t1;
    (2 * (LONG - SHORT) as u64, long - short)
}

/// Stack painting: every word between the end of the statics (`_stack_end`) and just below
/// the current stack pointer is set to [`PAINT`] at boot; after the run, the lowest word that
/// changed is the stack high-water mark.
const PAINT: u32 = 0xa5a5_5a5a;

extern "C" {
    static mut _stack_end: u32;
    static _stack_start: u32;
}

fn stack_bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken (no read: safe).
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

#[inline(never)]
fn paint_stack() {
    let (lo, _) = stack_bounds();
    // Stop 256 bytes below the current stack pointer: this frame and its callees live above.
    let hi = cortex_m::register::msp::read() as usize - 256;
    let mut p = lo;
    while p + 4 <= hi {
        // SAFETY: [lo, hi) is unused stack (below every live frame) inside RAM.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// (bytes of stack used at most, bytes of stack available) since [`paint_stack`].
fn stack_high_water() -> (usize, usize) {
    let (lo, hi) = stack_bounds();
    let mut p = lo;
    // SAFETY: reads of RAM words between the statics and the stack top.
    while p < hi && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (hi - p, hi - lo)
}

/// Exit QEMU with success or failure (semihosting `SYS_EXIT`).
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// The whole QEMU firmware: open semihosting, start SysTick on a core clocked at `hz`, print
/// the clock calibration, call `body` (which prints and returns success), exit 0 only on
/// success.
pub fn main(hz: u32, body: impl FnOnce(&mut dyn Write, &mut dyn Clock) -> bool) -> ! {
    let Some(mut out) = Semihosting::stdout() else {
        exit(false)
    };
    let Some(cp) = cortex_m::Peripherals::take() else {
        let _ = writeln!(out, "error: core peripherals already taken");
        exit(false)
    };
    paint_stack();
    let mut clock = SysTickClock::new(cp.SYST, hz);
    let (n, ticks) = calibrate(&clock);
    let _ = writeln!(
        out,
        "clock: {n} instructions = {ticks} ticks = {} counted ({hz} Hz, -icount shift=0)",
        clock.instructions(ticks)
    );
    let ok = body(&mut out, &mut clock);
    let (used, size) = stack_high_water();
    let _ = writeln!(
        out,
        "stack: {used} of {size} bytes used (high-water, painted)"
    );
    exit(ok)
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    if let Some(mut out) = Semihosting::stdout() {
        let _ = writeln!(out, "hard fault at pc {:#010x} (stack overflow?)", ef.pc());
    }
    exit(false)
}

/// Prints the panic and exits with failure. Unused by the QEMU boards' release builds, which
/// enable `deny-panic` (below); kept for debug builds and for firmware without that feature.
#[cfg(any(not(feature = "deny-panic"), feature = "allow-panic", debug_assertions))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Some(mut out) = Semihosting::stdout() {
        let _ = writeln!(out, "panic: {info}");
    }
    exit(false)
}

/// `deny-panic` (release builds): the handler calls a function defined nowhere, so the firmware
/// links only if no panic call site is left anywhere in it — boot check, self-check,
/// inference and output formatting alike (`boards/no-panic` shows the same for the checks and
/// inference over blobs the optimizer cannot see). `WHERE=1 bash boards/panic-sites.sh BOARD`
/// (which builds with `board-common/allow-panic`, overriding this) lists the sites when a
/// change brings one back.
#[cfg(all(
    feature = "deny-panic",
    not(feature = "allow-panic"),
    not(debug_assertions)
))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        fn firmware_contains_a_panic_call_site_see_boards_panic_sites_sh() -> !;
    }
    // SAFETY: never executed — the function does not exist, so a firmware in which this
    // handler is reachable does not link.
    unsafe { firmware_contains_a_panic_call_site_see_boards_panic_sites_sh() }
}
