//! A QEMU TCG plugin (plugin API v1, as loaded by QEMU 7.2) that counts the instructions
//! executed, per instruction class, and an estimate of Cortex-M4 cycles ([`timing`]), between
//! two marker addresses.
//!
//! Arguments (`-plugin libqemu_insn_count.so,start=0x…,stop=0x…,out=path`):
//! - `start`, `stop`: addresses of the first instruction of the two marker functions (the bench
//!   firmware's `bench_start` / `bench_stop`). Every time execution reaches `start` the counters
//!   are snapshotted; every time it reaches `stop`, one line with the counts since the snapshot
//!   is appended to `out`:
//!   `region <n> insns <i> cycles <c> taken <t> <class>=<count>…`
//! - `profile=<n>` (optional): at exit, also list the blocks that executed the most
//!   instructions inside region `n` (`hot <address> <instructions>`), to find hot loops.
//! - `out`: file written at exit (QEMU's own `qemu_plugin_outs` only prints with `-d plugin`).
//!
//! Counting is per translation block: at translation each block gets a small record (its
//! instruction count, static cycle estimate and per-class counts), and an exec callback adds it
//! up. A block that ends in a branch is "taken" if the next block does not start right after it.
//! Marker functions are branch targets, so they always start a block.
//!
//! The few API v1 functions needed are declared here by hand (no GPL `qemu-plugin-sys`).

pub mod timing;

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::fmt::Write as _;
use std::sync::Mutex;
use timing::{CLASSES, CLASS_NAMES, TAKEN_BRANCH_PENALTY};

#[allow(non_camel_case_types)]
type qemu_plugin_id_t = u64;

#[repr(C)]
struct QemuPluginTb {
    _opaque: [u8; 0],
}
#[repr(C)]
struct QemuPluginInsn {
    _opaque: [u8; 0],
}

/// `QEMU_PLUGIN_CB_NO_REGS`.
const CB_NO_REGS: c_int = 0;

extern "C" {
    fn qemu_plugin_register_vcpu_tb_trans_cb(
        id: qemu_plugin_id_t,
        cb: extern "C" fn(qemu_plugin_id_t, *mut QemuPluginTb),
    );
    fn qemu_plugin_register_vcpu_tb_exec_cb(
        tb: *mut QemuPluginTb,
        cb: extern "C" fn(c_uint, *mut c_void),
        flags: c_int,
        userdata: *mut c_void,
    );
    fn qemu_plugin_register_atexit_cb(
        id: qemu_plugin_id_t,
        cb: extern "C" fn(qemu_plugin_id_t, *mut c_void),
        userdata: *mut c_void,
    );
    fn qemu_plugin_tb_n_insns(tb: *const QemuPluginTb) -> usize;
    fn qemu_plugin_tb_vaddr(tb: *const QemuPluginTb) -> u64;
    fn qemu_plugin_tb_get_insn(tb: *const QemuPluginTb, idx: usize) -> *mut QemuPluginInsn;
    fn qemu_plugin_insn_data(insn: *const QemuPluginInsn) -> *const c_void;
    fn qemu_plugin_insn_size(insn: *const QemuPluginInsn) -> usize;
}

/// The plugin API version this plugin was written against (QEMU checks it at load).
#[no_mangle]
pub static qemu_plugin_version: c_int = 1;

/// Static summary of one translation block.
struct Block {
    start: u64,
    end: u64,
    insns: u64,
    cycles: u64,
    classes: [u32; CLASSES],
    ends_in_branch: bool,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    insns: u64,
    cycles: u64,
    taken: u64,
    classes: [u64; CLASSES],
}

struct State {
    start: u64,
    stop: u64,
    out: String,
    total: Counters,
    snapshot: Option<Counters>,
    prev: Option<&'static Block>,
    report: String,
    regions: u64,
    /// `profile=N`: instructions executed per block start inside region N.
    profile: Option<u64>,
    hot: std::collections::HashMap<u64, u64>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn parse_addr(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

/// Entry point called by QEMU when the plugin is loaded.
///
/// # Safety
/// Called by QEMU with `argc` valid C strings in `argv`.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: qemu_plugin_id_t,
    _info: *const c_void,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let mut start = None;
    let mut stop = None;
    let mut out = None;
    let mut profile = None;
    for i in 0..argc.max(0) as usize {
        // SAFETY: QEMU passes argc NUL-terminated strings.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }.to_string_lossy();
        match arg.split_once('=') {
            Some(("start", v)) => start = parse_addr(v),
            Some(("stop", v)) => stop = parse_addr(v),
            Some(("out", v)) => out = Some(v.to_string()),
            Some(("profile", v)) => profile = v.parse().ok(),
            _ => {
                eprintln!("qemu-insn-count: unknown argument {arg}");
                return -1;
            }
        }
    }
    let (Some(start), Some(stop), Some(out)) = (start, stop, out) else {
        eprintln!("qemu-insn-count: need start=ADDR,stop=ADDR,out=PATH");
        return -1;
    };
    *STATE.lock().unwrap() = Some(State {
        start: start & !1,
        stop: stop & !1,
        out,
        total: Counters::default(),
        snapshot: None,
        prev: None,
        report: String::new(),
        regions: 0,
        profile,
        hot: std::collections::HashMap::new(),
    });
    // SAFETY: registering callbacks with the id QEMU gave us.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
    }
    0
}

extern "C" fn on_translate(_id: qemu_plugin_id_t, tb: *mut QemuPluginTb) {
    // SAFETY: `tb` is valid for the duration of this callback; instruction data pointers are
    // valid for `insn_size` bytes.
    let n = unsafe { qemu_plugin_tb_n_insns(tb) };
    let start = unsafe { qemu_plugin_tb_vaddr(tb) };
    let mut block = Block {
        start,
        end: start,
        insns: n as u64,
        cycles: 0,
        classes: [0; CLASSES],
        ends_in_branch: false,
    };
    let mut prev_single_mem = false;
    for i in 0..n {
        let (bytes, size) = unsafe {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            let size = qemu_plugin_insn_size(insn);
            let data = qemu_plugin_insn_data(insn) as *const u8;
            (std::slice::from_raw_parts(data, size), size)
        };
        let d = timing::decode(bytes);
        let single_mem = d.single_mem;
        let mut c = d.cycles as u64;
        if single_mem && prev_single_mem {
            c = 1; // pipelined with the previous load/store
        }
        prev_single_mem = single_mem;
        block.cycles += c;
        block.classes[d.class as usize] += 1;
        block.end += size as u64;
        block.ends_in_branch = d.branch;
    }
    let block: &'static Block = Box::leak(Box::new(block));
    // SAFETY: the block record lives for the rest of the run (leaked).
    unsafe {
        qemu_plugin_register_vcpu_tb_exec_cb(
            tb,
            on_exec,
            CB_NO_REGS,
            block as *const Block as *mut c_void,
        );
    }
}

extern "C" fn on_exec(_vcpu: c_uint, udata: *mut c_void) {
    // SAFETY: `udata` is the leaked `Block` registered for this translation block.
    let block: &'static Block = unsafe { &*(udata as *const Block) };
    let mut guard = STATE.lock().unwrap();
    let Some(s) = guard.as_mut() else { return };
    if let Some(prev) = s.prev {
        if prev.ends_in_branch && prev.end != block.start {
            s.total.cycles += TAKEN_BRANCH_PENALTY;
            s.total.taken += 1;
        }
    }
    if block.start == s.start {
        s.snapshot = Some(s.total);
    } else if block.start == s.stop {
        if let Some(snap) = s.snapshot.take() {
            let t = s.total;
            let _ = write!(
                s.report,
                "region {} insns {} cycles {} taken {}",
                s.regions,
                t.insns - snap.insns,
                t.cycles - snap.cycles,
                t.taken - snap.taken
            );
            for (k, name) in CLASS_NAMES.iter().enumerate() {
                let _ = write!(s.report, " {}={}", name, t.classes[k] - snap.classes[k]);
            }
            s.report.push('\n');
            s.regions += 1;
        }
    }
    if s.snapshot.is_some() && s.profile == Some(s.regions) {
        *s.hot.entry(block.start).or_default() += block.insns;
    }
    s.total.insns += block.insns;
    s.total.cycles += block.cycles;
    for k in 0..CLASSES {
        s.total.classes[k] += block.classes[k] as u64;
    }
    s.prev = Some(block);
}

extern "C" fn on_exit(_id: qemu_plugin_id_t, _udata: *mut c_void) {
    let guard = STATE.lock().unwrap();
    if let Some(s) = guard.as_ref() {
        let mut text = format!("{}total insns {}\n", s.report, s.total.insns);
        let mut hot: Vec<_> = s.hot.iter().collect();
        hot.sort_by(|a, b| b.1.cmp(a.1));
        for (addr, n) in hot.iter().take(25) {
            let _ = writeln!(text, "hot {addr:#x} {n}");
        }
        if let Err(e) = std::fs::write(&s.out, text) {
            eprintln!("qemu-insn-count: cannot write {}: {e}", s.out);
        }
    }
}
