//! Parsing what the measurement produces: the counting plugin's `region` lines, the bench
//! firmware's `bench` / `check` lines (paired one to one with the regions), `arm-none-eabi-nm`
//! output and the linker's complaint when a model does not fit. Pure functions of text.

use qemu_insn_count::timing::{CLASSES, CLASS_NAMES};

/// One measured region (or on-device check) of the bench firmware.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Kernel (`linear`, `model:vit-mnist`, `vit-part`, …).
    pub kernel: String,
    /// Shape (`17x64x192`) or part (`image`, `qkv`, …).
    pub shape: String,
    /// Variant (`naive`, `generic`, `optimized`, `embedded-nn`, a layer `L0`, …).
    pub variant: String,
    /// Multiply-accumulates of the region (0: none).
    pub macs: u64,
    /// Elements (softmax rows) or steps (decoders).
    pub elems: u64,
    /// The device's `match=1`.
    pub matched: bool,
    /// Instructions, estimated M4 cycles and taken branches, marker overhead subtracted.
    pub insns: u64,
    /// See [`Row::insns`].
    pub cycles: u64,
    /// See [`Row::insns`].
    pub taken: u64,
    /// Instructions per plugin class (indexed like `CLASS_NAMES`), overhead subtracted.
    pub classes: [u64; CLASSES],
    /// Whole models: first decoder position of the region.
    pub pos: u64,
    /// Whole models: stack high-water (bytes).
    pub stack: Option<u64>,
    /// `embedded-nn` rows: largest |difference| from the generic output.
    pub maxdiff: Option<u64>,
    /// `embedded-nn` rows: its tolerance.
    pub tol: Option<u64>,
    /// A `check` line of the firmware (an on-device cross-check, not a measured region).
    pub untimed: bool,
}

/// `key=<number>` of one whitespace-separated token.
pub fn field(tok: &str, key: &str) -> Option<u64> {
    tok.strip_prefix(key)?.strip_prefix('=')?.parse().ok()
}

/// `key=<number>` anywhere in a list of tokens.
fn find(tokens: &[&str], key: &str) -> Option<u64> {
    tokens.iter().find_map(|t| field(t, key))
}

/// One `region <n> insns <i> cycles <c> taken <t> <class>=<count>…` line of the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// Instructions executed inside the region.
    pub insns: u64,
    /// Estimated Cortex-M4 cycles.
    pub cycles: u64,
    /// Taken branches.
    pub taken: u64,
    /// Instructions per class (absent classes: 0).
    pub classes: [u64; CLASSES],
}

impl Region {
    /// Parse one `region` line.
    pub fn parse(line: &str) -> Result<Region, String> {
        let t: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize, key: &str| -> Result<u64, String> {
            match (t.get(i - 1), t.get(i)) {
                (Some(&k), Some(v)) if k == key => v.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("bad region line (no {key} count): {line}"))
        };
        if t.first() != Some(&"region") {
            return Err(format!("not a region line: {line}"));
        }
        let mut classes = [0u64; CLASSES];
        for (k, name) in CLASS_NAMES.iter().enumerate() {
            classes[k] = find(&t, name).unwrap_or(0);
        }
        Ok(Region {
            insns: num(3, "insns")?,
            cycles: num(5, "cycles")?,
            taken: num(7, "taken")?,
            classes,
        })
    }

    /// Every `region` line of a plugin output file, in order.
    pub fn all(text: &str) -> Result<Vec<Region>, String> {
        text.lines()
            .filter(|l| l.starts_with("region "))
            .map(Region::parse)
            .collect()
    }

    /// `self − base` (the marker overhead of the empty region): counts must not go below it,
    /// class counts saturate at 0.
    pub fn minus(&self, base: &Region) -> Result<Region, String> {
        let sub = |a: u64, b: u64, what: &str| {
            a.checked_sub(b).ok_or_else(|| {
                format!("a region has fewer {what} ({a}) than the empty calibration region ({b})")
            })
        };
        let mut classes = [0u64; CLASSES];
        for (k, c) in classes.iter_mut().enumerate() {
            *c = self.classes[k].saturating_sub(base.classes[k]);
        }
        Ok(Region {
            insns: sub(self.insns, base.insns, "instructions")?,
            cycles: sub(self.cycles, base.cycles, "cycles")?,
            taken: sub(self.taken, base.taken, "taken branches")?,
            classes,
        })
    }
}

/// The rows of one bench firmware run: its standard output (`bench <kernel> <shape>
/// <variant> key=value…` per region, `check …` lines, `bench done failed=0`) and the plugin's
/// region file. The `bench` lines pair with the regions in order; the region whose kernel is
/// `empty` is the marker overhead, removed and subtracted from every other; `check` lines
/// become untimed rows at the end.
pub fn bench_rows(stdout: &str, regions: &str) -> Result<Vec<Row>, String> {
    let regions: Vec<&str> = regions
        .lines()
        .filter(|l| l.starts_with("region "))
        .collect();
    if !stdout.contains("bench done failed=0") {
        return Err(format!("firmware did not finish cleanly:\n{stdout}"));
    }
    let benches: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("bench ") && !l.starts_with("bench done"))
        .collect();
    if benches.len() != regions.len() {
        return Err(format!(
            "{} bench lines but {} regions",
            benches.len(),
            regions.len()
        ));
    }
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    for (b, r) in benches.iter().zip(&regions) {
        let bt: Vec<&str> = b.split_whitespace().collect();
        let [_, kernel, shape, variant, ..] = bt[..] else {
            return Err(format!("bad bench line (want kernel, shape, variant): {b}"));
        };
        measured.push(Region::parse(r)?);
        rows.push(Row {
            kernel: kernel.into(),
            shape: shape.into(),
            variant: variant.into(),
            macs: find(&bt, "macs").unwrap_or(0),
            elems: find(&bt, "elems").unwrap_or(0),
            matched: find(&bt, "match") == Some(1),
            insns: 0,
            cycles: 0,
            taken: 0,
            classes: [0; CLASSES],
            pos: find(&bt, "pos").unwrap_or(0),
            stack: find(&bt, "stack"),
            maxdiff: find(&bt, "maxdiff"),
            tol: find(&bt, "tol"),
            untimed: false,
        });
    }
    // Subtract the marker overhead measured by the empty region.
    let empty = rows
        .iter()
        .position(|r| r.kernel == "empty")
        .ok_or("no calibration region (a `bench empty …` line)")?;
    rows.remove(empty);
    let base = measured.remove(empty);
    for (row, region) in rows.iter_mut().zip(&measured) {
        let net = region
            .minus(&base)
            .map_err(|e| format!("{} {} {}: {e}", row.kernel, row.shape, row.variant))?;
        row.insns = net.insns;
        row.cycles = net.cycles;
        row.taken = net.taken;
        row.classes = net.classes;
    }
    // `check <name> layers=<n> macs=<n> … match=<0|1>`: on-device cross-checks (not measured).
    for c in stdout.lines().filter(|l| l.starts_with("check ")) {
        let ct: Vec<&str> = c.split_whitespace().collect();
        rows.push(Row {
            kernel: ct.get(1).copied().unwrap_or("?").into(),
            shape: format!("{} random layers", find(&ct, "layers").unwrap_or(0)),
            variant: "check (not timed)".into(),
            macs: find(&ct, "macs").unwrap_or(0),
            elems: 0,
            matched: find(&ct, "match") == Some(1),
            insns: 0,
            cycles: 0,
            taken: 0,
            classes: [0; CLASSES],
            pos: 0,
            stack: None,
            maxdiff: None,
            tol: None,
            untimed: true,
        });
    }
    Ok(rows)
}

/// Address of symbol `name` in `arm-none-eabi-nm` output (`<address> <kind> <name>` lines).
pub fn symbol_address(nm: &str, name: &str) -> Option<u64> {
    nm.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let addr = it.next()?;
        let _kind = it.next()?;
        (it.next()? == name).then(|| u64::from_str_radix(addr, 16).ok())?
    })
}

/// Why a firmware build failed, from cargo's standard error: the linker's "will not fit in
/// region" line when a model does not fit the chip's memory map.
pub fn build_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.contains("will not fit in region"))
        .map(|l| {
            format!(
                "does not link: {}",
                l.trim().trim_start_matches("rust-lld: error: ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a real run (`bash bench/run`, M4, mps2-an386): the firmware's standard
    // output and the plugin's region file of the kernel suite and of the char-lm model, and
    // part of `arm-none-eabi-nm` of the kernel firmware.
    const KERNELS_OUT: &str = include_str!("../tests/data/m4-kernels.stdout.txt");
    const KERNELS_REGIONS: &str = include_str!("../tests/data/m4-kernels.regions.txt");
    const LM_OUT: &str = include_str!("../tests/data/m4-char-lm.stdout.txt");
    const LM_REGIONS: &str = include_str!("../tests/data/m4-char-lm.regions.txt");
    const NM: &str = include_str!("../tests/data/m4-kernels.nm.txt");

    /// The number after `key` (`"insns "`, `"dual_mac="`) in a raw line.
    fn after(line: &str, key: &str) -> u64 {
        let rest = line.split(key).nth(1).unwrap();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Every kernel row is its `bench` line's names and numbers with the region at the same
    /// position, minus the first (empty) region, recomputed here from the raw text; the
    /// `check` line is an untimed row at the end. Catches bench lines paired with the wrong
    /// region, the overhead not subtracted (or subtracted from the wrong counter), and the
    /// check row lost.
    #[test]
    fn kernel_rows_from_captured_output() {
        let rows = bench_rows(KERNELS_OUT, KERNELS_REGIONS).unwrap();
        let benches: Vec<&str> = KERNELS_OUT
            .lines()
            .filter(|l| l.starts_with("bench ") && l != &"bench done failed=0")
            .collect();
        let regions: Vec<&str> = KERNELS_REGIONS
            .lines()
            .filter(|l| l.starts_with("region "))
            .collect();
        assert_eq!(benches.len(), regions.len());
        // The plugin's last line is its whole-run total, not a region.
        assert!(KERNELS_REGIONS.trim_end().ends_with(&format!(
            "total insns {}",
            after(KERNELS_REGIONS, "total insns ")
        )));
        assert!(benches[0].starts_with("bench empty "));
        let base = regions[0];
        let timed: Vec<&Row> = rows.iter().filter(|r| !r.untimed).collect();
        assert_eq!(timed.len(), benches.len() - 1);
        for (i, r) in timed.iter().enumerate() {
            let (b, g) = (benches[i + 1], regions[i + 1]);
            let words: Vec<&str> = b.split(' ').collect();
            assert_eq!([&r.kernel[..], &r.shape, &r.variant], words[1..4], "{b}");
            assert_eq!(r.macs, after(b, "macs="), "{b}");
            assert_eq!(r.elems, after(b, "elems="), "{b}");
            assert_eq!(r.matched, b.contains(" match=1"), "{b}");
            assert_eq!(
                r.maxdiff,
                b.contains("maxdiff=").then(|| after(b, "maxdiff="))
            );
            assert_eq!(r.tol, b.contains("tol=").then(|| after(b, "tol=")));
            assert_eq!(r.insns, after(g, "insns ") - after(base, "insns "), "{b}");
            assert_eq!(
                r.cycles,
                after(g, "cycles ") - after(base, "cycles "),
                "{b}"
            );
            assert_eq!(r.taken, after(g, "taken ") - after(base, "taken "), "{b}");
            for (k, name) in CLASS_NAMES.iter().enumerate() {
                let key = format!(" {name}=");
                let want = after(g, &key).saturating_sub(after(base, &key));
                assert_eq!(r.classes[k], want, "{b} {name}");
            }
        }
        let checks: Vec<&str> = KERNELS_OUT
            .lines()
            .filter(|l| l.starts_with("check "))
            .collect();
        assert_eq!(rows.len(), timed.len() + checks.len());
        let last = rows.last().unwrap();
        let c = checks[0];
        assert!(last.untimed && last.matched == c.contains(" match=1"));
        assert_eq!(last.kernel, c.split(' ').nth(1).unwrap());
        assert_eq!(last.macs, after(c, "macs="));
        assert_eq!(last.shape, format!("{} random layers", after(c, "layers=")));
        assert_eq!((last.insns, last.cycles), (0, 0));
    }

    /// A whole-model run: steps, first position and stack from the `bench model:…` lines;
    /// the `result` line and the blank line are not regions.
    #[test]
    fn model_rows_from_captured_output() {
        let rows = bench_rows(LM_OUT, LM_REGIONS).unwrap();
        let benches: Vec<&str> = LM_OUT
            .lines()
            .filter(|l| l.starts_with("bench model:"))
            .collect();
        assert_eq!(rows.len(), benches.len());
        for (r, b) in rows.iter().zip(&benches) {
            assert_eq!(r.kernel, "model:char-lm");
            assert_eq!(r.elems, after(b, "elems="));
            assert_eq!(r.pos, after(b, "pos="));
            assert_eq!(r.stack, Some(after(b, "stack=")));
            assert!(r.matched);
        }
    }

    /// Broken outputs are errors that say what is wrong, never panics: a firmware that
    /// reported a failure or stopped early, a region missing, a bench line without its
    /// names, a region line without counts, no empty region, a region below the overhead.
    #[test]
    fn broken_output_is_an_error() {
        let err = |out: &str, reg: &str| bench_rows(out, reg).unwrap_err();
        let failed = KERNELS_OUT.replace("failed=0", "failed=1");
        assert!(err(&failed, KERNELS_REGIONS).contains("did not finish cleanly"));
        let cut = KERNELS_OUT.lines().take(10).collect::<Vec<_>>().join("\n");
        assert!(err(&cut, KERNELS_REGIONS).contains("did not finish cleanly"));
        let n = KERNELS_REGIONS
            .lines()
            .filter(|l| l.starts_with("region "))
            .count();
        let fewer: String = KERNELS_REGIONS
            .lines()
            .filter(|l| l.starts_with("region "))
            .take(n - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            err(KERNELS_OUT, &fewer),
            format!("{n} bench lines but {} regions", n - 1)
        );
        let short = KERNELS_OUT.replacen(
            "bench linear 17x64x192 generic macs=208896 elems=3264 match=1",
            "bench linear 17x64x192",
            1,
        );
        assert!(err(&short, KERNELS_REGIONS).starts_with("bad bench line"));
        let bad = KERNELS_REGIONS.replacen(" cycles 1502914", " cycles", 1);
        assert!(err(KERNELS_OUT, &bad).contains("no cycles count"));
        let no_empty = KERNELS_OUT.replacen("bench empty", "bench nothing", 1);
        assert!(err(&no_empty, KERNELS_REGIONS).contains("no calibration region"));
        let below = KERNELS_REGIONS.replacen("region 1 insns 1234709", "region 1 insns 4", 1);
        assert!(err(KERNELS_OUT, &below).contains("fewer instructions (4)"));
    }

    /// Symbols are matched by whole name (`main`, not a longer name ending in it).
    #[test]
    fn symbols_from_captured_nm() {
        // The addresses on the `bench_start` / `bench_stop` / `main` lines of the capture.
        assert_eq!(symbol_address(NM, "bench_start"), Some(0x8d8c));
        assert_eq!(symbol_address(NM, "bench_stop"), Some(0x8d94));
        assert_eq!(symbol_address(NM, "main"), Some(0x8d9e));
        assert_eq!(symbol_address(NM, "bench"), None);
        assert_eq!(symbol_address(NM, "stext"), None);
    }
}
