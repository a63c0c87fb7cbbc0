//! Thumb / Thumb-2 instruction classes and the Cortex-M4 cycle model used for the estimate.
//!
//! The model (from the Cortex-M4 TRM, "Processor instruction timings", simplified):
//!
//! | class | cycles |
//! |---|---|
//! | ALU / move / compare / extend (incl. `SXTB16`, `UXTB16`, `SSAT`) / `IT` / hint | 1 |
//! | single load or store (`LDR*`, `STR*`, any width) | 2, or 1 when it directly follows another single load/store in straight-line code (address/data phase pipelining; address dependencies ignored) |
//! | `LDM` / `STM` / `PUSH` / `POP` / `LDRD` / `STRD` with N registers | 1 + N |
//! | `MUL`, `SMULL`/`UMULL`/`SMLAL`/`UMLAL`, `SMMUL(R)`, `SMUL*`/`SMLA*` halfword forms | 1 |
//! | `MLA`, `MLS` | 2 |
//! | dual 16-bit MACs `SMLAD(X)`, `SMUAD(X)`, `SMLSD`, `SMLALD` (2 MACs/instr) | 1 |
//! | `SDIV` / `UDIV` | 12 (the worst case of 2–12: early termination is data dependent) |
//! | branch not taken (`B<c>`, `CBZ`, `CBNZ`) | 1 |
//! | branch taken, `BL`, `BX`, `POP {…, pc}`, `LDR pc`, `TBB`/`TBH` | base + 2 (pipeline refill; the TRM's P is 1–3) |
//! | FP add / sub / mul / neg / abs / compare / convert / move (`VADD`, `VSUB`, `VMUL`, `VNMUL`, `VABS`, `VNEG`, `VCMP(E)`, `VCVT*`, `VMOV` register or immediate, `VMOV` core↔single, `VMRS`/`VMSR`) | 1 |
//! | FP multiply-accumulate (`VMLA`, `VMLS`, `VNMLA`, `VNMLS`, `VFMA`, `VFMS`, `VFNMA`, `VFNMS`) | 3 |
//! | FP divide / square root (`VDIV`, `VSQRT`) | 14 |
//! | `VMOV` of two core registers ↔ two singles / one double | 2 |
//! | `VLDR` / `VSTR` (single) | 2, or 1 when it directly follows another single load/store (the same pipelining rule as `LDR`/`STR`) |
//! | `VLDM` / `VSTM` / `VPUSH` / `VPOP` with N words | 1 + N |
//! | other coprocessor instructions | 1 |
//!
//! Taken or not is found at run time: a block ending in a branch is "taken" when the next block
//! executed does not start right after it.

/// The cycle model as a Markdown table (printed into BENCHMARKS.md).
pub const MODEL_TABLE: &str = "Cortex-M4 cycle model (TRM, simplified):\n\n| class | cycles |\n|---|---|\n| ALU / move / compare / extend (incl. `SXTB16`, `UXTB16`, `SSAT`) / `IT` / hint | 1 |\n| single load or store (`LDR*`, `STR*`, any width) | 2, or 1 when it directly follows another single load/store in straight-line code (address/data phase pipelining; address dependencies ignored) |\n| `LDM` / `STM` / `PUSH` / `POP` / `LDRD` / `STRD` with N registers | 1 + N |\n| `MUL`, `SMULL`/`UMULL`/`SMLAL`/`UMLAL`, `SMMUL(R)`, `SMUL*`/`SMLA*` halfword forms | 1 |\n| `MLA`, `MLS` | 2 |\n| dual 16-bit MACs `SMLAD(X)`, `SMUAD(X)`, `SMLSD`, `SMLALD` (2 MACs/instr) | 1 |\n| `SDIV` / `UDIV` | 12 (the worst case of 2–12: early termination is data dependent) |\n| branch not taken (`B<c>`, `CBZ`, `CBNZ`) | 1 |\n| branch taken, `BL`, `BX`, `POP {…, pc}`, `LDR pc`, `TBB`/`TBH` | base + 2 (pipeline refill; the TRM's P is 1–3) |\n| FP add / sub / mul / neg / abs / compare / convert / move (`VADD`, `VSUB`, `VMUL`, `VNMUL`, `VABS`, `VNEG`, `VCMP(E)`, `VCVT*`, `VMOV` register or immediate, `VMOV` core↔single, `VMRS`/`VMSR`) | 1 |\n| FP multiply-accumulate (`VMLA`, `VMLS`, `VNMLA`, `VNMLS`, `VFMA`, `VFMS`, `VFNMA`, `VFNMS`) | 3 |\n| FP divide / square root (`VDIV`, `VSQRT`) | 14 |\n| `VMOV` of two core registers ↔ two singles / one double | 2 |\n| `VLDR` / `VSTR` (single) | 2, or 1 when it directly follows another single load/store (the same pipelining rule as `LDR`/`STR`) |\n| `VLDM` / `VSTM` / `VPUSH` / `VPOP` with N words | 1 + N |\n| other coprocessor instructions | 1 |\n\nTaken or not is decided at run time: a block ending in a branch is taken when the next block executed does not start right after it.\n";

/// Instruction classes counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Data processing, moves, extends, IT, hints.
    Alu = 0,
    /// Single load (any width).
    Load = 1,
    /// Single store (any width).
    Store = 2,
    /// LDM/STM/PUSH/POP/LDRD/STRD.
    Multiple = 3,
    /// Multiplies with one product (MUL, MLA, SMLABB, SMULL, SMMUL, …).
    Mul = 4,
    /// Dual 16-bit multiply-accumulate (SMLAD and friends): 2 MACs per instruction.
    DualMac = 5,
    /// SDIV / UDIV.
    Div = 6,
    /// Branches and other writes to the PC.
    Branch = 7,
    /// Floating point (VFP) data processing and register transfers that are not in the classes
    /// below: add, subtract, multiply, negate, absolute value, compare, convert, `VMOV`,
    /// `VMRS`/`VMSR`.
    Fp = 8,
    /// Floating-point multiply-accumulate (`VMLA`, `VMLS`, `VNMLA`, `VNMLS`, `VFMA`, `VFMS`,
    /// `VFNMA`, `VFNMS`).
    FpMac = 9,
    /// Floating-point divide and square root (`VDIV`, `VSQRT`).
    FpDiv = 10,
    /// Floating-point loads and stores (`VLDR`, `VSTR`, `VLDM`, `VSTM`, `VPUSH`, `VPOP`).
    FpMem = 11,
}

/// Number of classes.
pub const CLASSES: usize = 12;

/// Names, indexed by `Class as usize`.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "alu", "load", "store", "ldm_stm", "mul", "dual_mac", "div", "branch", "fp", "fp_mac",
    "fp_div", "fp_mem",
];

/// Extra cycles of a taken branch (pipeline refill).
pub const TAKEN_BRANCH_PENALTY: u64 = 2;

/// One decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Class.
    pub class: Class,
    /// Cycles when executed, without the taken-branch penalty and without load pipelining.
    pub cycles: u32,
    /// Writes the PC (a branch of any kind).
    pub branch: bool,
    /// A single load or store (`LDR*`/`STR*`, `VLDR`/`VSTR`): costs 1 cycle instead of
    /// [`Insn::cycles`] when it directly follows another one (pipelining).
    pub single_mem: bool,
}

fn insn(class: Class, cycles: u32) -> Insn {
    Insn {
        class,
        cycles,
        branch: class == Class::Branch,
        single_mem: matches!(class, Class::Load | Class::Store),
    }
}

/// Classify a VFP instruction (coprocessor 10/11, first halfword `111x 11xx …`, second
/// halfword bits 11:9 = `101`); `None` if it is not one.
///
/// Encodings from the ARMv7-M ARM, A6.4 (floating-point data processing), A6.5 (extension
/// register load/store), A6.6 (8/16/32-bit transfers) and A6.7 (64-bit transfers); timings from
/// the Cortex-M4 TRM, "FPU instruction set" table.
fn decode_vfp(h1: u16, h2: u16) -> Option<Insn> {
    if h1 & 0xec00 != 0xec00 || (h2 >> 9) & 7 != 0b101 {
        return None;
    }
    let double = h2 & 0x0100 != 0;
    if h1 & 0xfe00 == 0xec00 {
        // Extension register load/store and 64-bit transfers (h1 = 1110 110P UDWL Rn).
        if h1 & 0x01e0 == 0x0040 {
            return Some(insn(Class::Fp, 2)); // VMOV two core registers <-> two singles / double
        }
        if h1 & 0x0120 == 0x0100 {
            // VLDR / VSTR (P = 1, W = 0).
            let mut i = insn(Class::FpMem, if double { 3 } else { 2 });
            i.single_mem = !double;
            return Some(i);
        }
        // VLDM / VSTM / VPUSH / VPOP: imm8 = number of words transferred.
        let words = (h2 & 0xff) as u32;
        return Some(insn(Class::FpMem, 1 + words));
    }
    if h1 & 0xff00 != 0xee00 {
        // 0xFCxx-0xFFxx (ARMv8-M VSEL, VMAXNM, VRINT*, VCVT{A,N,P,M}), 0xEFxx: single cycle.
        return Some(insn(Class::Fp, 1));
    }
    if h2 & 0x0010 != 0 {
        // 8/16/32-bit transfers: VMOV core <-> single / scalar, VMRS, VMSR.
        return Some(insn(Class::Fp, 1));
    }
    // Data processing: opc1 = h1 bits 7, 5, 4 (bit 6 is D); opc3 bit 0 = h2 bit 6.
    let opc1 = ((h1 >> 5) & 4) | ((h1 >> 4) & 3);
    let opc3_0 = h2 & 0x0040 != 0;
    let opc2 = h1 & 0xf;
    Some(match opc1 {
        0b000 | 0b001 | 0b101 | 0b110 => insn(Class::FpMac, 3), // VMLA/VMLS/VNMLA/VNMLS/VF(N)MA/S
        0b010 | 0b011 => insn(Class::Fp, 1),                    // VMUL/VNMUL, VADD/VSUB
        0b100 => insn(Class::FpDiv, 14),                        // VDIV
        _ => {
            if opc3_0 && opc2 == 0b0001 && h2 & 0x0080 != 0 {
                insn(Class::FpDiv, 14) // VSQRT
            } else {
                insn(Class::Fp, 1) // VMOV imm/reg, VABS, VNEG, VCMP(E), VCVT*
            }
        }
    })
}

/// Classify one instruction from its bytes (little-endian halfwords, 2 or 4 bytes).
pub fn decode(bytes: &[u8]) -> Insn {
    let hw1 = u16::from_le_bytes([bytes[0], *bytes.get(1).unwrap_or(&0)]);
    if bytes.len() >= 4 && (hw1 >> 11) >= 0b11101 {
        let hw2 = u16::from_le_bytes([bytes[2], bytes[3]]);
        decode32(hw1, hw2)
    } else {
        decode16(hw1)
    }
}

fn decode16(h: u16) -> Insn {
    let regs8 = (h & 0xff).count_ones();
    if h >> 11 == 0b01001 {
        return insn(Class::Load, 2); // LDR literal
    }
    if h >> 12 == 0b0101 {
        // Register offset: opB bits 11:9; 000 STR, 001 STRH, 010 STRB, others loads.
        let op = (h >> 9) & 7;
        return if op <= 2 {
            insn(Class::Store, 2)
        } else {
            insn(Class::Load, 2)
        };
    }
    if h >> 13 == 0b011 || h >> 12 == 0b1000 || h >> 12 == 0b1001 {
        // Immediate offset (word/byte, halfword, SP-relative): bit 11 = load.
        return if h & 0x0800 != 0 {
            insn(Class::Load, 2)
        } else {
            insn(Class::Store, 2)
        };
    }
    if h >> 9 == 0b1011010 {
        // PUSH
        let n = regs8 + ((h >> 8) & 1) as u32;
        return insn(Class::Multiple, 1 + n);
    }
    if h >> 9 == 0b1011110 {
        // POP
        let pc = (h >> 8) & 1 != 0;
        let n = regs8 + pc as u32;
        return if pc {
            insn(Class::Branch, 1 + n)
        } else {
            insn(Class::Multiple, 1 + n)
        };
    }
    if h >> 12 == 0b1100 {
        return insn(Class::Multiple, 1 + regs8); // STM / LDM
    }
    if h >> 12 == 0b1101 {
        let cond = (h >> 8) & 0xf;
        return if cond >= 0b1110 {
            insn(Class::Alu, 1) // UDF / SVC
        } else {
            insn(Class::Branch, 1)
        };
    }
    if h >> 11 == 0b11100 {
        return insn(Class::Branch, 1); // B
    }
    if h & 0xf500 == 0xb100 {
        return insn(Class::Branch, 1); // CBZ / CBNZ
    }
    if h >> 10 == 0b010001 {
        let op = (h >> 8) & 3;
        if op == 3 {
            return insn(Class::Branch, 1); // BX / BLX
        }
        let rd = (h & 7) | ((h >> 4) & 8);
        if op != 1 && rd == 15 {
            return insn(Class::Branch, 1); // ADD pc / MOV pc
        }
        return insn(Class::Alu, 1);
    }
    if h & 0xffc0 == 0x4340 {
        return insn(Class::Mul, 1); // MULS
    }
    insn(Class::Alu, 1)
}

fn decode32(h1: u16, h2: u16) -> Insn {
    if let Some(i) = decode_vfp(h1, h2) {
        return i;
    }
    let op1 = (h1 >> 11) & 3;
    match op1 {
        0b01 => {
            if h1 & 0xfe40 == 0xe800 {
                // LDM / STM (incl. PUSH.W / POP.W); bit 4 of h1 = load.
                let load = h1 & 0x0010 != 0;
                let n = h2.count_ones();
                if load && h2 & 0x8000 != 0 {
                    return insn(Class::Branch, 1 + n);
                }
                return insn(Class::Multiple, 1 + n);
            }
            if h1 & 0xfe40 == 0xe840 {
                if h1 & 0xfff0 == 0xe8d0 && h2 & 0xffe0 == 0xf000 {
                    return insn(Class::Branch, 2); // TBB / TBH
                }
                if h1 & 0x0120 == 0 && h1 & 0x0080 == 0 {
                    // LDREX / STREX family
                    return if h1 & 0x0010 != 0 {
                        insn(Class::Load, 2)
                    } else {
                        insn(Class::Store, 2)
                    };
                }
                return insn(Class::Multiple, 3); // LDRD / STRD: 1 + 2
            }
            insn(Class::Alu, 1) // data processing (shifted register), other coprocessor
        }
        0b10 => {
            if h2 & 0x8000 == 0 {
                return insn(Class::Alu, 1); // data processing immediate
            }
            match h2 & 0x5000 {
                0x0000 => {
                    let cond = (h1 >> 6) & 0xf;
                    if cond >= 0b1110 {
                        insn(Class::Alu, 1) // MSR / MRS / hints / barriers
                    } else {
                        insn(Class::Branch, 1) // B<c>.W
                    }
                }
                _ => insn(Class::Branch, 1), // B.W, BL
            }
        }
        _ => {
            if h1 & 0xfe00 == 0xf800 {
                // Single load/store; bit 4 = load. Rt = h2[15:12].
                let load = h1 & 0x0010 != 0;
                if load && h2 >> 12 == 15 && h1 & 0x0060 == 0x0040 {
                    return insn(Class::Branch, 2); // LDR pc
                }
                if load && h2 >> 12 == 15 {
                    return insn(Class::Alu, 1); // PLD / PLI hints
                }
                return if load {
                    insn(Class::Load, 2)
                } else {
                    insn(Class::Store, 2)
                };
            }
            if h1 & 0xff80 == 0xfb00 {
                // Multiply, multiply-accumulate, dual 16-bit, SMMUL…
                let op = (h1 >> 4) & 7;
                let op2 = (h2 >> 4) & 0xf;
                let ra = h2 >> 12;
                return match op {
                    0 if op2 == 0 && ra != 15 => insn(Class::Mul, 2), // MLA
                    0 if op2 == 1 => insn(Class::Mul, 2),             // MLS
                    2 | 4 => insn(Class::DualMac, 1), // SMLAD(X)/SMUAD(X), SMLSD(X)/SMUSD(X)
                    _ => insn(Class::Mul, 1),
                };
            }
            if h1 & 0xff80 == 0xfb80 {
                let op = (h1 >> 4) & 7;
                let op2 = (h2 >> 4) & 0xf;
                if (op == 1 || op == 3) && op2 == 0xf {
                    return insn(Class::Div, 12);
                }
                if (op == 4 || op == 5) && (op2 & 0xe) == 0xc {
                    return insn(Class::DualMac, 1); // SMLALD(X), SMLSLD(X)
                }
                return insn(Class::Mul, 1);
            }
            insn(Class::Alu, 1) // data processing register (SXTB16, shifts, parallel add)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d32(h1: u16, h2: u16) -> Insn {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&h1.to_le_bytes());
        b[2..].copy_from_slice(&h2.to_le_bytes());
        decode(&b)
    }
    fn d16(h: u16) -> Insn {
        decode(&h.to_le_bytes())
    }

    #[test]
    fn known_encodings() {
        // smlad r0, r1, r2, r0  = fb21 0002
        assert_eq!(d32(0xfb21, 0x0002).class, Class::DualMac);
        // smlabb r0, r1, r2, r0 = fb11 0002
        assert_eq!(d32(0xfb11, 0x0002).class, Class::Mul);
        // mla r0, r1, r2, r3 = fb01 3002
        assert_eq!(d32(0xfb01, 0x3002), insn(Class::Mul, 2));
        // mul r0, r1, r2 = fb01 f002
        assert_eq!(d32(0xfb01, 0xf002), insn(Class::Mul, 1));
        // sdiv r0, r1, r2 = fb91 f0f2 ; udiv = fbb1 f0f2
        assert_eq!(d32(0xfb91, 0xf0f2).class, Class::Div);
        assert_eq!(d32(0xfbb1, 0xf0f2).class, Class::Div);
        // smull r0, r1, r2, r3 = fb82 0103
        assert_eq!(d32(0xfb82, 0x0103).class, Class::Mul);
        // sxtb16 r0, r1 = fa2f f081
        assert_eq!(d32(0xfa2f, 0xf081).class, Class::Alu);
        // ldr.w r0, [r1, #4] = f8d1 0004
        assert_eq!(d32(0xf8d1, 0x0004).class, Class::Load);
        // ldrsb.w r0, [r1], #1 = f911 0b01
        assert_eq!(d32(0xf911, 0x0b01).class, Class::Load);
        // strb.w r0, [r1], #1 = f801 0b01
        assert_eq!(d32(0xf801, 0x0b01).class, Class::Store);
        // ldm.w lr!, {r4, r5, r8, r9} = e8be 0330
        assert_eq!(d32(0xe8be, 0x0330), insn(Class::Multiple, 5));
        // pop.w {r4-r11, pc} = e8bd 8ff0
        assert_eq!(d32(0xe8bd, 0x8ff0).class, Class::Branch);
        // ldrd r0, r1, [r2] = e9d2 0100
        assert_eq!(d32(0xe9d2, 0x0100), insn(Class::Multiple, 3));
        // bl = f000 f800 ; b.w = f000 b800 ; bne.w = f040 8000
        assert!(d32(0xf000, 0xf800).branch);
        assert!(d32(0xf000, 0xb800).branch);
        assert!(d32(0xf040, 0x8000).branch);
        // movw r0, #0 = f240 0000
        assert_eq!(d32(0xf240, 0x0000).class, Class::Alu);
        // 16-bit
        assert!(d16(0x4770).branch); // bx lr
        assert!(d16(0xd1fe).branch); // bne
        assert!(d16(0xe7fe).branch); // b
        assert!(d16(0xb90b).branch); // cbnz
        assert_eq!(d16(0xb510), insn(Class::Multiple, 3)); // push {r4, lr}
        assert!(d16(0xbd10).branch); // pop {r4, pc}
        assert_eq!(d16(0x6808).class, Class::Load); // ldr r0, [r1]
        assert_eq!(d16(0x6008).class, Class::Store); // str r0, [r1]
        assert_eq!(d16(0x5608).class, Class::Load); // ldrsb r0, [r1, r0]
        assert_eq!(d16(0x4348).class, Class::Mul); // muls
        assert_eq!(d16(0xbf18).class, Class::Alu); // it ne
        assert_eq!(d16(0x3001).class, Class::Alu); // adds r0, #1
    }

    #[test]
    fn vfp_encodings() {
        // Encodings as assembled by arm-none-eabi-as -mcpu=cortex-m4 -mfpu=fpv4-sp-d16.
        // vadd.f32 s0, s0, s1 = ee30 0a20 ; vsub.f32 = ee30 0a60 ; vmul.f32 = ee20 0a20
        assert_eq!(d32(0xee30, 0x0a20), insn(Class::Fp, 1));
        assert_eq!(d32(0xee30, 0x0a60), insn(Class::Fp, 1));
        assert_eq!(d32(0xee20, 0x0a20), insn(Class::Fp, 1));
        // vnmul.f32 s0, s0, s1 = ee20 0a60
        assert_eq!(d32(0xee20, 0x0a60), insn(Class::Fp, 1));
        // vmla.f32 s0, s1, s2 = ee00 0a81 ; vmls.f32 = ee00 0ac1 ; vfma.f32 = eea0 0a81
        assert_eq!(d32(0xee00, 0x0a81), insn(Class::FpMac, 3));
        assert_eq!(d32(0xee00, 0x0ac1), insn(Class::FpMac, 3));
        assert_eq!(d32(0xeea0, 0x0a81), insn(Class::FpMac, 3));
        // vfnms.f32 s0, s1, s2 = ee90 0a81
        assert_eq!(d32(0xee90, 0x0a81), insn(Class::FpMac, 3));
        // vdiv.f32 s0, s1, s2 = ee80 0a81 ; vsqrt.f32 s0, s1 = eeb1 0ae0
        assert_eq!(d32(0xee80, 0x0a81), insn(Class::FpDiv, 14));
        assert_eq!(d32(0xeeb1, 0x0ae0), insn(Class::FpDiv, 14));
        // vneg.f32 s0, s1 = eeb1 0a60 (same opc2 as VSQRT, opc3 01)
        assert_eq!(d32(0xeeb1, 0x0a60), insn(Class::Fp, 1));
        // vabs.f32 s0, s1 = eeb0 0ae0 ; vmov.f32 s0, s1 = eeb0 0a60 ; vmov.f32 s0, #1.0 = eeb7 0a00
        assert_eq!(d32(0xeeb0, 0x0ae0), insn(Class::Fp, 1));
        assert_eq!(d32(0xeeb0, 0x0a60), insn(Class::Fp, 1));
        assert_eq!(d32(0xeeb7, 0x0a00), insn(Class::Fp, 1));
        // vcmp.f32 s0, s1 = eeb4 0a60 ; vcvt.s32.f32 s0, s0 = eebd 0ac0 ; vcvt.f32.s32 = eeb8 0ac0
        assert_eq!(d32(0xeeb4, 0x0a60), insn(Class::Fp, 1));
        assert_eq!(d32(0xeebd, 0x0ac0), insn(Class::Fp, 1));
        assert_eq!(d32(0xeeb8, 0x0ac0), insn(Class::Fp, 1));
        // vmov s0, r0 = ee00 0a10 ; vmov r0, s0 = ee10 0a10 ; vmrs APSR_nzcv, fpscr = eef1 fa10
        assert_eq!(d32(0xee00, 0x0a10), insn(Class::Fp, 1));
        assert_eq!(d32(0xee10, 0x0a10), insn(Class::Fp, 1));
        assert_eq!(d32(0xeef1, 0xfa10), insn(Class::Fp, 1));
        // vmov r0, r1, d0 = ec51 0b10 ; vmov s0, s1, r0, r1 = ec41 0a10
        assert_eq!(d32(0xec51, 0x0b10), insn(Class::Fp, 2));
        assert_eq!(d32(0xec41, 0x0a10), insn(Class::Fp, 2));
        // vldr s0, [r0, #4] = ed90 0a01 ; vstr s0, [r0] = ed80 0a00: single loads/stores
        let l = d32(0xed90, 0x0a01);
        assert_eq!((l.class, l.cycles, l.single_mem), (Class::FpMem, 2, true));
        let s = d32(0xed80, 0x0a00);
        assert_eq!((s.class, s.cycles, s.single_mem), (Class::FpMem, 2, true));
        // vldmia r0!, {s0-s3} = ecb0 0a04 ; vpush {s16-s17} = ed2d 8a02 ; vpop {d8} = ecbd 8b02
        assert_eq!(d32(0xecb0, 0x0a04), insn(Class::FpMem, 5));
        assert_eq!(d32(0xed2d, 0x8a02), insn(Class::FpMem, 3));
        assert_eq!(d32(0xecbd, 0x8b02), insn(Class::FpMem, 3));
        assert!(!d32(0xecb0, 0x0a04).single_mem);
        // Integer neighbours stay where they were: ldm.w (e8be), ldrd (e9d2), str.w (f8c0).
        assert_eq!(d32(0xe8be, 0x0330), insn(Class::Multiple, 5));
        assert_eq!(d32(0xe9d2, 0x0100), insn(Class::Multiple, 3));
        assert_eq!(d32(0xf8c0, 0x0a00).class, Class::Store);
    }
}
