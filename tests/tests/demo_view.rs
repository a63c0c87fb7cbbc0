//! The demo view (`board_common::demo`, what `boards/run-demo.sh` shows a person) run on the
//! host through the very `Arena::run_demo` the firmware runs, checked against independent
//! computations: the answers against the host reference lines (`host::result_lines`, core-attn's
//! owned-buffer runners) and the test-set labels read with `tools`' `.npy` reader, the text
//! against `tools`' vocabulary decoder (serde_json), the pictures against the float images, the
//! times against the clock. No QEMU needed.

use std::fmt::Write as _;
use std::path::PathBuf;

use board_common::demo::Shown;
use board_common::host::{self, HostInputs, HostModel};
use board_common::{Clock, Embedded, Inputs};
use tools::checkpoint::npy::{read_npy_f32, read_npy_i64};
use tools::vocab::Vocab;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Per-buffer capacities large enough for every shipped model (checked at run time by
/// `board_common::check`).
struct BigSizes;

impl board_common::ArenaSizes for BigSizes {
    const SIZES: core_attn::blob::BufferSizes = core_attn::blob::BufferSizes {
        x: 1 << 14,
        normed: 1 << 14,
        wide: 1 << 15,
        scores: 1 << 12,
        patch: 1 << 14,
        logits: 1 << 8,
        kv: 1 << 17,
        cross_kv: 1 << 15,
    };
}

/// The device memory for them: the sum of the int8 capacities.
type Big = board_common::Arena<
    BigSizes,
    { (1 << 14) * 3 + (1 << 15) * 2 + (1 << 8) + (1 << 17) },
    { 1 << 12 },
    256,
    8,
>;

/// Every reading advances by 100 000 instructions: 1 ms at 100 MHz.
struct Ticks(u64);

impl Clock for Ticks {
    fn now(&mut self) -> u64 {
        self.0 += 100_000;
        self.0
    }
    fn unit(&self) -> &'static str {
        "instructions"
    }
}

fn leak<T: Clone>(v: &[T]) -> &'static [T] {
    Box::leak(v.to_vec().into_boxed_slice())
}

fn embedded(m: &HostModel) -> Embedded {
    let inputs = match &m.inputs {
        HostInputs::Images(v) => {
            Inputs::Images(leak(&v.iter().map(|i| leak(i)).collect::<Vec<_>>()))
        }
        HostInputs::Prompts(v) => {
            Inputs::Prompts(leak(&v.iter().map(|i| leak(i)).collect::<Vec<_>>()))
        }
    };
    Embedded {
        name: Box::leak(m.name.clone().into_boxed_str()),
        blob: Box::leak(Box::new(host::Aligned::new(&m.bytes))).bytes(),
        inputs,
        max_new: m.max_new,
        info: board_common::core_attn::device::ModelInfo::of(&m.bytes),
    }
}

/// Load a trained model as `boards/run-demo.sh` embeds it, run the demo view on the host and
/// return (host model, its output).
fn demo(model: &str, inputs: &str, count: usize, max_new: usize) -> (HostModel, String) {
    let blob = root().join(format!("models/{model}.tatn"));
    let data = root().join(format!("models/data/{inputs}"));
    let m = host::load(&blob, Some(&data), Some(count), max_new).unwrap();
    let vocab: Vec<&'static str> = host::vocab_table(&m)
        .unwrap()
        .unwrap_or_default()
        .into_iter()
        .map(|s| &*s.leak())
        .collect();
    let labels: Vec<&'static [u32]> = host::demo_labels(&m)
        .unwrap()
        .iter()
        .map(|l| leak(l))
        .collect();
    let shown = Shown {
        vocab: leak(&vocab),
        labels: leak(&labels),
    };
    let e = embedded(&m);
    // The arena is large: build and run it on a thread with room for it.
    let out = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut arena = Box::new(Big::new());
            let mut out = String::new();
            let ok = arena.run_demo(&[e], &[shown], &mut out, &mut Ticks(0));
            assert!(ok, "{out}");
            out
        })
        .unwrap()
        .join()
        .unwrap();
    (m, out)
}

fn machine_lines_unchanged(m: &HostModel, out: &str) {
    let device: Vec<&str> = out.lines().filter(|l| l.starts_with("result ")).collect();
    assert_eq!(device, host::result_lines(m).unwrap(), "{out}");
    assert!(out.contains(&format!("model {} kind ", m.name)), "{out}");
    assert!(out.contains("done: 1 model(s) ok"), "{out}");
}

fn mark(right: bool) -> char {
    if right {
        '\u{2713}'
    } else {
        '\u{2717}'
    }
}

#[test]
fn digits_pictures_answers_and_times() {
    let n = 500;
    let (m, out) = demo("vit-mnist", "mnist_test_500.npy", n, 0);
    machine_lines_unchanged(&m, &out);
    let (_, labels) = read_npy_i64(&root().join("models/data/mnist_test_500_labels.npy")).unwrap();
    let (shape, pixels) = read_npy_f32(&root().join("models/data/mnist_test_500.npy")).unwrap();
    assert_eq!(&shape[1..], [1, 28, 28]);
    let lines: Vec<&str> = out.lines().collect();
    let mut right = 0;
    for (i, line) in host::result_lines(&m).unwrap().iter().enumerate() {
        let top1: i64 = line.split(' ').nth(5).unwrap().parse().unwrap();
        right += usize::from(top1 == labels[i]);
        // One clock reading before and one after the inference: 100 000 instructions.
        let expect = format!(
            "  true {}   device {top1} {}   1.00 ms",
            labels[i],
            mark(top1 == labels[i])
        );
        assert!(lines.contains(&expect.as_str()), "{expect:?} in\n{out}");
        // The picture: 14 rows of 28 cells, one per two pixel rows. A cell of two background
        // pixels (exactly -1.0 in the float test set) is blank; a cell with a pixel at or above
        // mid-grey (0.0) is not.
        let at = lines
            .iter()
            .position(|l| *l == format!("image {i}:"))
            .unwrap();
        let pic = &lines[at + 1..at + 15];
        let img = &pixels[i * 784..(i + 1) * 784];
        for (r, row) in pic.iter().enumerate() {
            let cells: Vec<char> = row.strip_prefix("    ").unwrap().chars().collect();
            assert_eq!(cells.len(), 28, "{row:?}");
            for (c, &ch) in cells.iter().enumerate() {
                let (a, b) = (img[2 * r * 28 + c], img[(2 * r + 1) * 28 + c]);
                if a == -1.0 && b == -1.0 {
                    assert_eq!(ch, ' ', "image {i} cell {r},{c}");
                }
                if a.max(b) >= 0.0 {
                    assert_ne!(ch, ' ', "image {i} cell {r},{c}");
                }
            }
        }
        assert!(lines[at + 15].starts_with("  true "), "{out}");
    }
    // models/README.md: 98.8% of these 500: some answers are wrong, so ✗ is exercised too.
    assert!(right < n && right > n * 9 / 10, "{right}/{n}");
    let pct = right * 100 / n;
    assert!(
        out.contains(&format!(
            "summary: vit-mnist {right}/{n} right ({pct}%), 1.00 ms per image at 100 MHz\n"
        )),
        "{out}"
    );
}

#[test]
fn strips_read_as_digit_strings() {
    let n = 100;
    let (m, out) = demo("digit-reader", "strips_test_100.npy", n, 5);
    machine_lines_unchanged(&m, &out);
    let vocab = Vocab::read(&root().join("models/digit-reader.tatn.vocab.json"), 13).unwrap();
    let (shape, labels) =
        read_npy_i64(&root().join("models/data/strips_test_100_labels.npy")).unwrap();
    let eos = 2usize; // models/README.md: 0 <start>, 1 <pad>, 2 <eos>, digit d -> d + 3
    let text = |ids: &[usize]| -> String {
        let end = ids.iter().position(|&t| t == eos).unwrap_or(ids.len());
        vocab.decode(&ids[..end])
    };
    let mut right = 0;
    for (i, line) in host::result_lines(&m).unwrap().iter().enumerate() {
        let ids: Vec<usize> = line
            .rsplit(' ')
            .next()
            .unwrap()
            .split(',')
            .map(|t| t.parse().unwrap())
            .collect();
        let row: Vec<usize> = labels[i * shape[1]..(i + 1) * shape[1]]
            .iter()
            .map(|&t| t as usize)
            .collect();
        let (device, truth) = (text(&ids[1..]), text(&row));
        assert!(truth.chars().all(|c| c.is_ascii_digit()) && !truth.is_empty());
        // Right: the same digits and the eos (whole-string accuracy).
        let ok = device == truth && ids[1..].contains(&eos);
        right += usize::from(ok);
        let expect = format!("  true {truth}   device {device} {}   ", mark(ok));
        assert!(
            out.lines().any(|l| l.starts_with(&expect)),
            "{expect:?} in\n{out}"
        );
    }
    // models/README.md: 97 of these 100 strips are read right: ✗ is exercised too.
    assert!(right < n && right > n * 9 / 10, "{right}/{n}");
    assert!(
        out.contains(&format!("summary: digit-reader {right}/{n} right")),
        "{out}"
    );
}

#[test]
fn language_model_prints_its_text() {
    let new = 24;
    let (m, out) = demo("char-lm", "char_lm_prompts.npy", 2, new);
    machine_lines_unchanged(&m, &out);
    let vocab = Vocab::read(&root().join("models/char-lm.tatn.vocab.json"), 63).unwrap();
    let HostInputs::Prompts(prompts) = &m.inputs else {
        panic!("char-lm takes prompts")
    };
    let show = |ids: &[usize]| vocab.decode(ids).replace('\n', "\u{23ce}");
    for (i, line) in host::result_lines(&m).unwrap().iter().enumerate() {
        let ids: Vec<usize> = line
            .rsplit(' ')
            .next()
            .unwrap()
            .split(',')
            .map(|t| t.parse().unwrap())
            .collect();
        let p = prompts[i].len();
        assert_eq!(ids.len(), p + new);
        let mut expect = String::new();
        writeln!(expect, "prompt {i}:").unwrap();
        writeln!(expect, "  prompt:    \"{}\"", show(&ids[..p])).unwrap();
        writeln!(expect, "  continued: \"{}\"", show(&ids[p..])).unwrap();
        // One clock reading per token: 100 000 instructions each = 1000 tokens/s at 100 MHz.
        writeln!(
            expect,
            "  {new} new tokens; {} passes through the model (the prompt is fed one token at a \
             time): 1000 tokens/s at 100 MHz (100000 instructions per token)",
            p + new - 1
        )
        .unwrap();
        assert!(out.contains(&expect), "{expect}\nin\n{out}");
    }
    assert!(
        out.contains(&format!(
            "summary: char-lm {} characters generated, 1000 tokens/s",
            2 * new
        )),
        "{out}"
    );
}

/// `parse_vocab_json` (the build script's dependency-free reader) agrees with `tools`' reader
/// (serde_json) on the shipped vocabularies and on escapes, arrays and gaps.
#[test]
fn vocab_json_agrees_with_tools() {
    let cases: Vec<(String, usize)> = vec![
        (
            std::fs::read_to_string(root().join("models/char-lm.tatn.vocab.json")).unwrap(),
            63,
        ),
        (
            std::fs::read_to_string(root().join("models/digit-reader.tatn.vocab.json")).unwrap(),
            13,
        ),
        (
            r#"["\n", " ", "\"", "\\", "\u00e9", "\ud83d\ude00", "<eos>", "\t"]"#.into(),
            8,
        ),
        (r#" { "0" : "a", "3": "\/b" , "5":"\u2713" } "#.into(), 6),
    ];
    for (text, size) in &cases {
        let ours = host::parse_vocab_json(text).unwrap();
        let theirs = Vocab::parse(text, std::path::Path::new("v.json"), *size).unwrap();
        for id in 0..*size {
            let want = theirs.decode(&[id]);
            let got = ours
                .get(id)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "\u{fffd}".into());
            assert_eq!(got, want, "id {id} of {text}");
        }
        assert!(ours.len() <= *size);
    }
    for bad in [
        "",
        "{",
        "[\"a\"",
        "{\"x\": \"a\"}",
        "[\"a\" \"b\"]",
        "[\"a\"] x",
        "[1]",
        "[\"\\ud800\"]",
    ] {
        assert!(host::parse_vocab_json(bad).is_err(), "{bad:?}");
    }
}
