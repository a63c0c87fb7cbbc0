//! The Armv6-M `asm!` passes (Cortex-M0/M0+ builds only): the one-token chunk kernel, the
//! two-token kernel and the requantization, as the module docs of [`super`] describe them.

use super::*;

/// The chunk kernel in `asm!` (see the module docs); `x.len()` a nonzero multiple of
/// [`UNROLL`], or with `DUFF` any nonzero width: each block then enters the 8-input loop at
/// step `(8 − inf mod 8) mod 8` (a computed `ADD PC`; every step is 14 16-bit instructions),
/// so that the first iteration runs the `inf mod 8` odd inputs.
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
pub(super) fn pass_asm<const DUFF: bool>(x: &[i8], w: &[i8], acc: &mut [i32]) {
    use core::arch::asm;
    let inf = x.len();
    // What the asm relies on: whole blocks of 4 rows, all their weights, whole 8-input steps
    // (any number of inputs with DUFF). `run` passes exactly that, so this returns early only
    // if it is called otherwise (`acc` left as it is).
    if !(!acc.is_empty()
        && acc.len() % ROWS == 0
        && acc.len() <= CHUNK
        && inf <= usize::MAX / CHUNK
        && w.len() >= acc.len() * inf
        && (DUFF || inf % UNROLL == 0)
        && inf > 0)
    {
        debug_assert!(false, "pass_asm: blocks, weights or width");
        return;
    }
    let range = acc.as_mut_ptr_range();
    // One input (1 + 4·3 instructions) and the index step.
    macro_rules! step {
        () => {
            "ldrsb r0, [r3, r2]
            ldrsb r1, [r4, r2]
            muls r1, r0, r1
            add r8, r1
            ldrsb r1, [r5, r2]
            muls r1, r0, r1
            add r9, r1
            ldrsb r1, [r6, r2]
            muls r1, r0, r1
            add r10, r1
            ldrsb r1, [r7, r2]
            muls r1, r0, r1
            add r11, r1
            adds r2, #1"
        };
    }
    // SAFETY: for the block of rows 4b..4b+4 (b < acc.len()/4) the row bases are
    // `w + (4b + r + 1)·inf` and the index runs over −inf..=−1, so the asm reads exactly
    // w[(4b + r)·inf ..(4b + r + 1)·inf] (within `w`: checked above) and x[0..inf] (`x_end =
    // x + inf`); `inf` is a nonzero multiple of 8, so the index reaches exactly 0 at the end of
    // an iteration. It reads and then overwrites acc[4b..4b+4] through `r12`, stopping when
    // `r12` reaches `range.end` (acc.len() is a nonzero multiple of 4): `acc` is an exclusive
    // borrow. `r6`/`r7` (not available as operands) are pushed and popped, so the stack is
    // balanced on exit; every other register written is declared. The wrapping pointer
    // arithmetic stays within (or one past) the slices.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov r12, r0",
            "mov lr, r1",
            // DUFF: [sp] = byte offset of the first step run, 28·((−inf) mod 8).
            ".if {duff}",
            "rsbs r2, r5, #0",
            "movs r6, #7",
            "ands r2, r6",
            "movs r6, #28",
            "muls r2, r6, r2",
            "push {{r2}}",
            ".endif",
            "2:",
            // Block start: r0 = acc of this block, r4 = row 0 base, r5 = inf.
            "ldm r0!, {{r1, r2, r6, r7}}",
            "mov r8, r1",
            "mov r9, r2",
            "mov r10, r6",
            "mov r11, r7",
            "rsbs r2, r5, #0",
            "adds r6, r5, r5",
            "adds r7, r6, r5",
            "adds r6, r4, r6",
            "adds r7, r4, r7",
            "adds r5, r4, r5",
            ".if {duff}",
            "ldr r0, [sp]",
            "add pc, r0",
            "nop",
            ".endif",
            "3:",
            // Written out rather than `.rept`: LLVM sizes inline asm by its lines when it
            // relaxes branches around it.
            step!(),
            step!(),
            step!(),
            step!(),
            step!(),
            step!(),
            step!(),
            step!(),
            "bne 3b",
            // inf = base 1 − base 0; the next block's row 0 starts where row 3 ends.
            "subs r5, r5, r4",
            "adds r4, r7, r5",
            "mov r0, r12",
            "mov r1, r8",
            "mov r2, r9",
            "mov r6, r10",
            "mov r7, r11",
            "stm r0!, {{r1, r2, r6, r7}}",
            "mov r12, r0",
            "cmp r0, lr",
            "beq 4f",
            "b 2b",
            "4:",
            ".if {duff}",
            "add sp, #4",
            ".endif",
            "pop {{r6, r7}}",
            duff = const DUFF as u32,
            inout("r0") range.start => _,
            inout("r1") range.end => _,
            out("r2") _,
            inout("r3") x.as_ptr().wrapping_add(inf) => _,
            inout("r4") w.as_ptr().wrapping_add(inf) => _,
            inout("r5") inf => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// [`requant_chunk`] in `asm!` for the channels with a right shift in 33..=62; if any channel
/// of the chunk has another shift, the chunk is redone by [`requant_chunk`].
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
pub(super) fn requant_asm(acc: &[i32], m: &[i32], s: &[i8], y: &mut [i8], c: i32, zero_point: i32) {
    use core::arch::asm;
    let n = acc.len();
    // What the asm relies on: one multiplier, shift and output per accumulator (`run` passes
    // exactly that; otherwise nothing is written).
    if !(n > 0 && m.len() >= n && s.len() >= n && y.len() >= n) {
        debug_assert!(false, "requant_asm: chunk lengths");
        return;
    }
    let slow: usize;
    // SAFETY: the loop reads acc[0..n] (ldm, aligned i32s), m[0..n] (ldrh of the low half and
    // ldm, aligned i32s) and s[0..n], and writes y[0..n] (all checked above: `y` is an
    // exclusive borrow), stopping when the accumulator pointer reaches `acc.end`. `r6`/`r7`
    // are pushed and popped (balanced stack); every other register written is declared.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov lr, r4",
            "mov r8, r5",
            "movs r4, #0",
            "mov r9, r4",
            "2:",
            // hi = mulhi(a, m): r4 = al, r5 = ah, r6/r7 = halves of m.
            "ldm r0!, {{r4}}",
            "asrs r5, r4, #16",
            "uxth r4, r4",
            "ldrh r6, [r1]",
            "muls r6, r4, r6",
            "lsrs r6, r6, #16",
            "ldrh r7, [r1]",
            "muls r7, r5, r7",
            "adds r6, r6, r7",
            "ldm r1!, {{r7}}",
            "asrs r7, r7, #16",
            "muls r5, r7, r5",
            "muls r4, r7, r4",
            "uxth r7, r6",
            "adds r4, r4, r7",
            "asrs r6, r6, #16",
            "asrs r4, r4, #16",
            "adds r5, r5, r6",
            "adds r5, r5, r4",
            // k = −2 − shift = 254 − (shift as u8); flag k > 29 (not the 32-bit path).
            "ldrb r6, [r2]",
            "adds r2, #1",
            "movs r7, #254",
            "subs r7, r7, r6",
            "cmp r7, #29",
            "bls 3f",
            "mov r9, r0",
            "3:",
            // v = ((hi >> k) + 1 + 2z) >> 1, saturated to i8.
            "asrs r5, r7",
            "add r5, r8",
            "asrs r5, r5, #1",
            "sxtb r6, r5",
            "cmp r6, r5",
            "beq 4f",
            "asrs r5, r5, #31",
            "movs r6, #127",
            "eors r5, r6",
            "4:",
            "strb r5, [r3]",
            "adds r3, #1",
            "cmp r0, lr",
            "bne 2b",
            "mov r0, r9",
            "pop {{r6, r7}}",
            inout("r0") acc.as_ptr() => slow,
            inout("r1") m.as_ptr() => _,
            inout("r2") s.as_ptr() => _,
            inout("r3") y.as_mut_ptr() => _,
            inout("r4") acc.as_ptr_range().end => _,
            inout("r5") c => _,
            out("r8") _,
            out("r9") _,
            out("lr") _,
        );
    }
    if slow != 0 {
        requant_chunk(acc, m, s, y, c, zero_point);
    }
}

/// The 2-token kernel in `asm!` (see [`Pass2`], [`pass2_portable`] and the module docs);
/// `xp.len()` a nonzero multiple of [`UNROLL`], or with `DUFF` any width ≥ 2: each block then
/// runs one input alone first when the width is odd (skipped by a computed `ADD PC`
/// otherwise), and enters the loop of 4 input pairs at pair `(4 − ⌊inf/2⌋ mod 4) mod 4` (every
/// pair step is 23 16-bit instructions).
#[cfg(all(target_arch = "arm", core_attn_v6m))]
#[inline(always)]
pub(super) fn pass2_asm<const DUFF: bool>(
    xp: &[i32],
    w: &[i8],
    acc: &mut [i32; 2 * CHUNK],
    k: usize,
) {
    use core::arch::asm;
    let inf = xp.len();
    // What the asm relies on: whole blocks of 2 rows within the chunk, all their weights,
    // whole 8-input steps (with DUFF, at least one input pair). `run` passes exactly that, so
    // this returns early only if it is called otherwise (`acc` left as it is).
    if !(k > 0
        && k % 2 == 0
        && k <= CHUNK
        && (if DUFF {
            inf >= 2
        } else {
            inf > 0 && inf % UNROLL == 0
        })
        && inf <= usize::MAX / CHUNK
        && w.len() >= k * inf)
    {
        debug_assert!(false, "pass2_asm: blocks, weights or width");
        return;
    }
    let a = acc.as_mut_ptr();
    // Two inputs (a packed word each) for 2 rows: 4 products in 4 `MULS`, unpacked to 8 MACs.
    macro_rules! pair {
        () => {
            "ldm r0!, {{r1, r2}}
            ldrsb r6, [r4, r3]
            muls r6, r1, r6
            ldrsb r7, [r5, r3]
            muls r7, r1, r7
            adds r3, #1
            ldrsb r1, [r4, r3]
            muls r1, r2, r1
            adds r6, r6, r1
            ldrsb r1, [r5, r3]
            muls r1, r2, r1
            adds r7, r7, r1
            sxth r1, r6
            subs r6, r6, r1
            asrs r6, r6, #16
            add r8, r1
            add r9, r6
            sxth r1, r7
            subs r7, r7, r1
            asrs r7, r7, #16
            add r10, r1
            add r11, r7
            adds r3, #1"
        };
    }
    // SAFETY: for the block of rows 2b, 2b+1 (2b < k) the row bases are `w + (2b + 1)·inf` and
    // `w + (2b + 2)·inf` and the index runs over −inf..=−1, so the asm reads exactly rows
    // 2b..2b+2 of `w` (k·inf ≤ w.len(), checked) and, with `ldm`, the inf aligned words of
    // `xp` (the pointer is moved back by 4·inf after each block); `inf` is a nonzero multiple
    // of 8, so the index reaches exactly 0 at the end of an iteration. It reads acc[2b],
    // acc[2b+1] and writes them and acc[CHUNK + 2b], acc[CHUNK + 2b + 1] (2b + 1 < k ≤ CHUNK:
    // within the array, an exclusive borrow), stopping when the block pointer reaches
    // `acc + k`. `r6`/`r7` (not available as operands) are pushed and popped, so the stack is
    // balanced on exit; every other register written is declared.
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "mov r12, r2",
            "mov lr, r1",
            "mov r6, r2",
            // DUFF: [sp] = 0 for an odd width (run the lone input), else 32 (its size);
            // [sp, #4] = byte offset of the first pair step run, 46·((−⌊inf/2⌋) mod 4).
            ".if {duff}",
            "rsbs r1, r3, #0",
            "lsrs r2, r1, #1",
            "rsbs r2, r2, #0",
            "movs r7, #3",
            "ands r2, r7",
            "movs r7, #46",
            "muls r2, r7, r2",
            "movs r7, #1",
            "ands r1, r7",
            "eors r1, r7",
            "lsls r1, r1, #5",
            "push {{r1, r2}}",
            ".endif",
            "2:",
            // Block start (r6 = acc of this block): −bias of both rows, for both tokens.
            "ldr r1, [r6]",
            "rsbs r1, r1, #0",
            "mov r8, r1",
            "mov r9, r1",
            "ldr r1, [r6, #4]",
            "rsbs r1, r1, #0",
            "mov r10, r1",
            "mov r11, r1",
            ".if {duff}",
            "ldr r1, [sp]",
            "add pc, r1",
            "nop",
            // The lone first input of an odd width: one packed word, 2 products.
            "ldm r0!, {{r1}}",
            "ldrsb r6, [r4, r3]",
            "muls r6, r1, r6",
            "ldrsb r7, [r5, r3]",
            "muls r7, r1, r7",
            "adds r3, #1",
            "sxth r1, r6",
            "subs r6, r6, r1",
            "asrs r6, r6, #16",
            "add r8, r1",
            "add r9, r6",
            "sxth r1, r7",
            "subs r7, r7, r1",
            "asrs r7, r7, #16",
            "add r10, r1",
            "add r11, r7",
            "ldr r1, [sp, #4]",
            "add pc, r1",
            "nop",
            ".endif",
            "3:",
            pair!(),
            pair!(),
            pair!(),
            pair!(),
            "bne 3b",
            // inf = base 1 − base 0: rewind the packed input, move to the next 2 rows.
            "subs r1, r5, r4",
            "lsls r2, r1, #2",
            "subs r0, r0, r2",
            "adds r4, r5, r1",
            "adds r5, r4, r1",
            "rsbs r3, r1, #0",
            // Store the sums (negated back): token 0 at acc[o..], token 1 at acc[CHUNK + o..].
            "mov r6, r12",
            "mov r1, r8",
            "rsbs r1, r1, #0",
            "mov r2, r10",
            "rsbs r2, r2, #0",
            "stm r6!, {{r1, r2}}",
            "mov r12, r6",
            "movs r7, #{bofs}",
            "adds r7, r7, r6",
            "mov r1, r9",
            "rsbs r1, r1, #0",
            "mov r2, r11",
            "rsbs r2, r2, #0",
            "stm r7!, {{r1, r2}}",
            "cmp r6, lr",
            "beq 4f",
            "b 2b",
            "4:",
            ".if {duff}",
            "add sp, #8",
            ".endif",
            "pop {{r6, r7}}",
            duff = const DUFF as u32,
            bofs = const 4 * CHUNK - 8,
            inout("r0") xp.as_ptr() => _,
            inout("r1") a.wrapping_add(k) => _,
            inout("r2") a => _,
            inout("r3") (inf as isize).wrapping_neg() => _,
            inout("r4") w.as_ptr().wrapping_add(inf) => _,
            inout("r5") w.as_ptr().wrapping_add(2 * inf) => _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
}
