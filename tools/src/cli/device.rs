//! `tools device (--port TTY [--baud N] | --qemu MACHINE [--firmware ELF]) MODEL
//! (info | run (--input FILE | --prompt TEXT) [--json] [--max-new-tokens N] | eval ...)`.
//!
//! Talks to a board serving MODEL over a serial link (the `attn-link` protocol): a real board
//! on a serial port, or a QEMU machine that this command starts with the model's serve
//! firmware and its UART0 on a TCP socket on 127.0.0.1 (QEMU connects to a port this command
//! listens on). The firmware is built on demand (`cargo build --release --bin serve` in
//! `boards/<machine>` with `TATN_MODEL=MODEL`) unless `--firmware` names one.
//!
//! - `info`: the model the device holds, checked against MODEL (length and checksum).
//! - `run`: the same JSON (or text) as `tools simulate MODEL` — computed on the device — plus
//!   `"device"`: the device's time per input in its unit (`instructions` under QEMU, `cycles`
//!   or `us` on real boards). A Llama blob as `simulate` runs it: its stop rule, its
//!   tokenizer (`--tokenizer`, else `<blob>.tokenizer.bin`), no padding.
//! - `eval`: on-target validation: every input on the device and on the host's int8
//!   simulation, with bit-exact agreement, top-1 agreement, accuracy with `--labels`, time.
//!
//! A device that does not answer in time, answers garbage, or holds another model is one
//! `error: LINK: ...` line and exit 1.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attn_link::client::{Client, ClientError, DeviceInfo};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::checkpoint::npy::{parse_npy, NpyData};
use crate::cli::simulate::{blob_vit_config, read_ids, read_images};
use crate::error::{Error, Result};
use crate::float::ops;
use crate::int8::{self, AlignedBlob};
use crate::llama::tokenizer::Tokenizer;
use crate::llama::StopRule;
use crate::vocab::Vocab;
use core_attn::blob::{fnv1a32, Blob, ModelKind, NO_TOKEN};

/// QEMU machines with a serve firmware: (machine, board directory, CPU, target).
const QEMU_BOARDS: [(&str, &str, &str, &str); 4] = [
    (
        "mps2-an386",
        "mps2-an386",
        "cortex-m4",
        "thumbv7em-none-eabihf",
    ),
    (
        "mps2-an500",
        "mps2-an500",
        "cortex-m7",
        "thumbv7em-none-eabihf",
    ),
    (
        "mps2-an505",
        "mps2-an505",
        "cortex-m33",
        "thumbv8m.main-none-eabihf",
    ),
    (
        "mps3-an547",
        "mps3-an547",
        "cortex-m55",
        "thumbv8m.main-none-eabihf",
    ),
];

/// Arguments of `device`.
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// Serial port of a board running the serve firmware (e.g. /dev/ttyACM0).
    #[arg(long, conflicts_with = "qemu", required_unless_present = "qemu")]
    pub port: Option<PathBuf>,
    /// Baud rate of --port.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Start this QEMU machine with the model's serve firmware (mps2-an386, mps2-an500,
    /// mps2-an505, mps3-an547).
    #[arg(long)]
    pub qemu: Option<String>,
    /// Serve firmware ELF for --qemu (default: built for MODEL in `boards/<machine>`).
    #[arg(long, requires = "qemu")]
    pub firmware: Option<PathBuf>,
    /// Seconds to wait for each answer of the device.
    #[arg(long, default_value_t = 20.0)]
    pub timeout: f64,
    /// The model blob the device should hold.
    pub model: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `device` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Which model the device holds (checked against MODEL).
    Info,
    /// Run inputs on the device: `tools simulate`'s output plus the device's counters.
    Run(RunArgs),
    /// On-target validation: the device against the host's int8 simulation over a test set.
    Eval(EvalArgs),
}

/// Arguments of `device run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Input: .npy (float32 images or int64 token ids) or a PGM/PNG image.
    #[arg(long, required_unless_present = "prompt", conflicts_with = "prompt")]
    pub input: Option<PathBuf>,
    /// Text prompt for a character LM (encoded with its vocabulary) or a Llama model (with its
    /// tokenizer, as `simulate` encodes it).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Vocabulary (default `<blob>.vocab.json`).
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Llama models: llama2.c tokenizer.bin (default `<blob>.tokenizer.bin`).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// New tokens to generate (decoders).
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
}

/// Arguments of `device eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Test inputs: float32 images `[N, C, H, W]` or int64 prompts `[N, T]` (LMs, Llamas).
    #[arg(long)]
    pub data: PathBuf,
    /// int64 labels `[N]` (ViT: accuracy on the device and on the host).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Evaluate the first N inputs only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// New tokens to generate (decoders).
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A tty in raw mode: a read that times out (returns 0) is reported as `TimedOut`.
struct Tty(File);

impl Read for Tty {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::ErrorKind::TimedOut.into()),
            n => Ok(n),
        }
    }
}

impl Write for Tty {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The open link (and the QEMU process behind it, killed on drop).
enum Port {
    Tty(Tty),
    Qemu(TcpStream, QemuProcess),
}

impl Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Port::Tty(t) => t.read(buf),
            Port::Qemu(s, _) => s.read(buf),
        }
    }
}

impl Write for Port {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Port::Tty(t) => t.write(buf),
            Port::Qemu(s, _) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Port::Tty(t) => t.flush(),
            Port::Qemu(s, _) => s.flush(),
        }
    }
}

struct QemuProcess {
    child: Child,
    log: PathBuf,
    /// A firmware copy made by [`build_firmware`], removed with the process.
    firmware: Option<PathBuf>,
}

impl QemuProcess {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        if let Some(f) = &self.firmware {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// One error line naming the link.
fn link_error(link: &str, msg: impl Into<String>) -> Error {
    Error::io(link, std::io::Error::other(msg.into()))
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Build the serve firmware of `board` with `model` embedded; returns a private copy of the
/// ELF (in the temp directory, the caller removes it). Builds are serialized by a lock file
/// (they share one target directory), so concurrent callers each get their own model.
pub fn build_firmware(board: &str, target_triple: &str, model: &Path) -> Result<PathBuf> {
    let dir = repo_dir().join("boards").join(board);
    let model = model.canonicalize().map_err(|e| Error::io(model, e))?;
    let target = repo_dir().join("boards").join("target").join("serve");
    let name = format!("boards/{board}");
    std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
    let _lock = BuildLock::take(target.join("build.lock"))?;
    eprintln!(
        "building the serve firmware of boards/{board} for {} ...",
        model.display()
    );
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--quiet", "--bin", "serve"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&dir)
        .env("TATN_MODEL", &model)
        .env_remove("TATN_INPUTS")
        .env_remove("TATN_MAX_INPUTS")
        .env_remove("TATN_MAX_NEW")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| link_error(&name, format!("cargo build: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
        return Err(link_error(
            &name,
            format!("building the serve firmware failed: {tail}"),
        ));
    }
    let elf = target.join(target_triple).join("release").join("serve");
    let copy = std::env::temp_dir().join(format!(
        "tools-device-{}-{}-{}.elf",
        std::process::id(),
        model
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::copy(&elf, &copy).map_err(|e| Error::io(&elf, e))?;
    Ok(copy)
}

/// A lock file created exclusively (`create_new`), removed on drop; one older than 15 minutes
/// is taken as left behind by a killed build and removed. (`File::lock` is newer than the
/// workspace's MSRV.)
struct BuildLock(PathBuf);

impl BuildLock {
    fn take(path: PathBuf) -> Result<Self> {
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(BuildLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(900));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                    } else if start.elapsed() > Duration::from_secs(1800) {
                        return Err(link_error(
                            &path.display().to_string(),
                            "another firmware build holds this lock",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Start QEMU `machine` with `elf`, its UART0 connected to a socket we listen on.
fn start_qemu(machine: &str, cpu: &str, elf: &Path, temp: bool, link: &str) -> Result<Port> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(link, e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io(link, e))?
        .port();
    let log = std::env::temp_dir().join(format!(
        "tools-device-qemu-{}-{port}.log",
        std::process::id()
    ));
    let log_file = File::create(&log).map_err(|e| Error::io(&log, e))?;
    let log_err = log_file.try_clone().map_err(|e| Error::io(&log, e))?;
    let child = Command::new("qemu-system-arm")
        .args(["-machine", machine, "-cpu", cpu])
        .args(["-display", "none", "-monitor", "none", "-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-serial")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| link_error(link, format!("cannot start qemu-system-arm: {e}")))?;
    let mut qemu = QemuProcess {
        child,
        log,
        firmware: temp.then(|| elf.to_path_buf()),
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(link, e))?;
    let start = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = qemu.child.try_wait() {
                    return Err(link_error(
                        link,
                        format!(
                            "QEMU exited ({status}) before connecting: {}",
                            qemu.output().trim()
                        ),
                    ));
                }
                if start.elapsed() > Duration::from_secs(20) {
                    return Err(link_error(
                        link,
                        "QEMU did not connect its UART within 20 s",
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(Error::io(link, e)),
        }
    };
    let setup = |s: &TcpStream| -> std::io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_millis(50)))
    };
    setup(&stream).map_err(|e| Error::io(link, e))?;
    Ok(Port::Qemu(stream, qemu))
}

fn open_tty(path: &Path, baud: u32) -> Result<Port> {
    let st = Command::new("stty")
        .arg("-F")
        .arg(path)
        .args([&baud.to_string(), "raw", "-echo", "min", "0", "time", "1"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| link_error(&path.display().to_string(), format!("stty: {e}")))?;
    if !st.status.success() {
        return Err(link_error(
            &path.display().to_string(),
            format!(
                "cannot set {baud} baud, raw mode: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            ),
        ));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    Ok(Port::Tty(Tty(f)))
}

struct Link {
    client: Client<Port>,
    name: String,
    info: DeviceInfo,
}

impl Link {
    /// One error line; under QEMU with what the firmware printed (a boot refusal, a fault).
    fn err(&mut self, e: ClientError) -> Error {
        link_error(&self.name, format!("{e}{}", qemu_output(&mut self.client)))
    }
}

fn qemu_output(client: &mut Client<Port>) -> String {
    match client.io_mut() {
        Port::Qemu(_, q) => {
            // The first lines say what happened (a boot refusal, a fault); not a register dump.
            let out = q.output();
            let lines: Vec<&str> = out
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(2)
                .collect();
            let text: String = lines.join(" / ").chars().take(300).collect();
            if text.is_empty() {
                String::new()
            } else {
                format!(" (QEMU output: {text})")
            }
        }
        Port::Tty(_) => String::new(),
    }
}

/// Open the link and check the device holds `bytes`.
fn connect(args: &DeviceArgs, bytes: &[u8]) -> Result<Link> {
    let (port, name) = match (&args.port, &args.qemu) {
        (Some(p), _) => (open_tty(p, args.baud)?, p.display().to_string()),
        (None, Some(m)) => {
            let name = format!("qemu {m}");
            let Some((_, board, cpu, triple)) = QEMU_BOARDS.iter().find(|b| b.0 == m) else {
                let known: Vec<&str> = QEMU_BOARDS.iter().map(|b| b.0).collect();
                return Err(link_error(
                    &name,
                    format!(
                        "no serve firmware for this machine (known: {})",
                        known.join(", ")
                    ),
                ));
            };
            let (elf, temp) = match &args.firmware {
                Some(f) => (f.clone(), false),
                None => (build_firmware(board, triple, &args.model)?, true),
            };
            (start_qemu(m, cpu, &elf, temp, &name)?, name)
        }
        (None, None) => return Err(Error::Input("give --port TTY or --qemu MACHINE".into())),
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(Error::Input(format!(
            "--timeout {}: must be > 0",
            args.timeout
        )));
    }
    let mut client = Client::new(port, Duration::from_secs_f64(args.timeout));
    let info = match client.info() {
        Ok(i) => i,
        Err(e) => {
            let extra = qemu_output(&mut client);
            return Err(link_error(&name, format!("{e}{extra}")));
        }
    };
    let want = fnv1a32(bytes.get(12..).unwrap_or(&[]));
    if info.checksum != want || info.blob_len as usize != bytes.len() {
        return Err(link_error(
            &name,
            format!(
                "device holds a different model: {} ({} bytes, checksum {:#010x}), {} is {} bytes, checksum {want:#010x}",
                info.name,
                info.blob_len,
                info.checksum,
                args.model.display(),
                bytes.len()
            ),
        ));
    }
    Ok(Link { client, name, info })
}

fn dequantize(blob: &Blob<'_>, q: &[i8]) -> Vec<f32> {
    let h = blob.header();
    let s = h.logits_scale();
    q.iter()
        .map(|&v| s * (v as i32 - h.logits_zero_point) as f32)
        .collect()
}

/// Draws `label i/n` on stderr when it is a terminal.
struct Progress {
    n: usize,
    show: bool,
    label: &'static str,
}

impl Progress {
    fn new(label: &'static str, n: usize) -> Self {
        Progress {
            n,
            show: n > 1 && std::io::stderr().is_terminal(),
            label,
        }
    }
    fn tick(&self, i: usize) {
        if self.show {
            let w = 30;
            let done = (i * w) / self.n.max(1);
            eprint!(
                "\r{} [{}{}] {i}/{}",
                self.label,
                "#".repeat(done),
                " ".repeat(w - done),
                self.n
            );
            if i == self.n {
                eprintln!();
            }
        }
    }
}

/// Device results of one decoder run: (generated padded ids, teacher-forced logits, device
/// counters).
type Decoded = (Vec<Vec<usize>>, Vec<Vec<Vec<f32>>>, Value);

/// Greedy generation on the device with `int8::generate`'s batch rule (rows padded to the
/// longest with the pad id), then the teacher-forced logits, also on the device.
fn device_generate(
    link: &mut Link,
    blob: &Blob<'_>,
    prompts: &[Vec<usize>],
    images: Option<&[Vec<i8>]>,
    max_new: usize,
) -> Result<Decoded> {
    let d = blob.header().decoder;
    let (mut runs, mut enc, mut dec, mut toks) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let bar = Progress::new("device", prompts.len());
    for (r, p) in prompts.iter().enumerate() {
        let need = p.len() + max_new.saturating_sub(1);
        if need > d.max_positions {
            return Err(Error::Input(format!(
                "prompt of {} tokens + {max_new} new tokens needs {need} positions, model has {}",
                p.len(),
                d.max_positions
            )));
        }
        let max_new16 = u16::try_from(max_new)
            .map_err(|_| Error::Input(format!("--max-new-tokens {max_new}: too many")))?;
        let ids: Vec<u32> = p.iter().map(|&i| i as u32).collect();
        let img: &[i8] = images.and_then(|i| i.get(r)).map_or(&[], Vec::as_slice);
        let g = link
            .client
            .generate(&ids, max_new16, img)
            .map_err(|e| link.err(e))?;
        enc.push(g.encode);
        dec.push(g.decode);
        toks.push(g.tokens);
        runs.push(g.ids);
        bar.tick(r + 1);
    }
    let longest = runs.iter().map(Vec::len).max().unwrap_or(0);
    let pad = if d.pad_token != NO_TOKEN {
        d.pad_token
    } else if d.eos_token != NO_TOKEN {
        d.eos_token
    } else {
        0
    };
    let mut seqs = Vec::new();
    let mut logits = Vec::new();
    for (r, mut run) in runs.into_iter().enumerate() {
        run.resize(longest, pad);
        let img: &[i8] = images.and_then(|i| i.get(r)).map_or(&[], Vec::as_slice);
        let fed: Vec<u32> = run.iter().take(d.max_positions).copied().collect();
        let (rows, _) = link
            .client
            .teacher_force(&fed, img)
            .map_err(|e| link.err(e))?;
        logits.push(rows.iter().map(|l| dequantize(blob, l)).collect::<Vec<_>>());
        seqs.push(run.iter().map(|&t| t as usize).collect());
    }
    let counters = if images.is_some() {
        json!({"unit": link.info.unit, "encode": enc, "decode": dec, "tokens": toks})
    } else {
        json!({"unit": link.info.unit, "decode": dec, "tokens": toks})
    };
    Ok((seqs, logits, counters))
}

fn prompts(args: &RunArgs, vocab: Option<&Vocab>) -> Result<Vec<Vec<usize>>> {
    match (&args.prompt, &args.input) {
        (Some(text), _) => {
            let v = vocab.ok_or_else(|| {
                Error::Input(
                    "--prompt needs a vocabulary: <blob>.vocab.json, or --vocab FILE".into(),
                )
            })?;
            if text.is_empty() {
                return Err(Error::Input("empty prompt".into()));
            }
            Ok(vec![v.encode(text)?])
        }
        (None, Some(p)) => read_ids(p),
        (None, None) => Err(Error::Input("give --input FILE or --prompt TEXT".into())),
    }
}

fn image_input(input: &Option<PathBuf>) -> Result<&Path> {
    input.as_deref().ok_or_else(|| {
        Error::Input("--prompt is for language models; this model takes --input FILE".into())
    })
}

fn write_line(out: &mut dyn Write, s: &str) -> Result<()> {
    writeln!(out, "{s}").map_err(|e| Error::io("<stdout>", e))
}

/// Runs `device`.
pub fn run(args: &DeviceArgs, out: &mut dyn Write) -> Result<()> {
    let aligned = AlignedBlob::read(&args.model)?;
    let blob = aligned.parse(&args.model)?;
    let mut link = connect(args, aligned.bytes())?;
    match &args.action {
        Action::Info => {
            let i = &link.info;
            let kind = ["vit-classifier", "decoder-lm", "encoder-decoder", "llama"]
                .get(i.kind as usize)
                .copied()
                .unwrap_or("unknown");
            write_line(
                out,
                &format!(
                    "device: {} holds {} ({kind}, {} bytes, checksum {:#010x}: same as {})\ntimes in: {}\nlargest request: {} bytes, longest prompt + new tokens: {}",
                    link.name,
                    i.name,
                    i.blob_len,
                    i.checksum,
                    args.model.display(),
                    i.unit,
                    i.max_payload,
                    i.max_ids
                ),
            )
        }
        Action::Run(r) => run_inputs(args, r, &blob, &mut link, out),
        Action::Eval(e) => eval(args, e, &blob, &mut link, out),
    }
}

fn run_inputs(
    args: &DeviceArgs,
    r: &RunArgs,
    blob: &Blob<'_>,
    link: &mut Link,
    out: &mut dyn Write,
) -> Result<()> {
    let h = *blob.header();
    if r.tokenizer.is_some() && h.kind != ModelKind::Llama {
        return Err(Error::Input(
            "--tokenizer is for Llama models (a Llama blob)".into(),
        ));
    }
    let vocab = if h.kind.has_decoder() {
        Vocab::for_blob(&args.model, r.vocab.as_deref(), h.decoder.vocab)?
    } else {
        None
    };
    let mut result = match h.kind {
        ModelKind::Llama => return run_llama(args, r, blob, link, out),
        ModelKind::VitClassifier => {
            let images = read_images(image_input(&r.input)?, &blob_vit_config(&h))?;
            let (mut logits, mut top1, mut times) = (Vec::new(), Vec::new(), Vec::new());
            let bar = Progress::new("device", images.len());
            for (i, img) in images.iter().enumerate() {
                let q = int8::quantize_image(blob, img);
                let (l, t) = link.client.classify(&q).map_err(|e| link.err(e))?;
                let l = dequantize(blob, &l);
                top1.push(ops::argmax(&l));
                logits.push(l);
                times.push(t);
                bar.tick(i + 1);
            }
            json!({"logits": logits, "top1": top1, "device": {"unit": link.info.unit, "time": times}})
        }
        ModelKind::DecoderLm => {
            let prompts = prompts(r, vocab.as_ref())?;
            for p in &prompts {
                int8::check_ids(blob, p)?;
            }
            let (generated, logits, dev) =
                device_generate(link, blob, &prompts, None, r.max_new_tokens)?;
            json!({"logits": logits, "generated": generated, "device": dev})
        }
        ModelKind::EncoderDecoder => {
            let images = read_images(image_input(&r.input)?, &blob_vit_config(&h))?;
            let q: Vec<Vec<i8>> = images
                .iter()
                .map(|i| int8::quantize_image(blob, i))
                .collect();
            let prompts = vec![vec![h.decoder.start_token as usize]; images.len()];
            let (generated, logits, dev) =
                device_generate(link, blob, &prompts, Some(&q), r.max_new_tokens)?;
            json!({"logits": logits, "generated": generated, "device": dev})
        }
    };
    // The same "text" field as `simulate` (same decoding).
    super::simulate::add_text(&mut result, vocab.as_ref());
    if r.json {
        return write_line(out, &result.to_string());
    }
    let mut lines = Vec::new();
    let unit = link.info.unit;
    if let Some(top1) = result.get("top1").and_then(Value::as_array) {
        for (i, t) in top1.iter().enumerate() {
            let logit = &result["logits"][i][t.as_u64().unwrap_or(0) as usize];
            let time = &result["device"]["time"][i];
            lines.push(format!("image {i}: top1 {t} (logit {logit}) {time} {unit}"));
        }
    }
    if let Some(g) = result.get("generated").and_then(Value::as_array) {
        for (i, s) in g.iter().enumerate() {
            let dev = &result["device"];
            let enc = dev
                .get("encode")
                .map(|e| format!("encode {} {unit}, ", e[i]))
                .unwrap_or_default();
            lines.push(format!(
                "sequence {i}: {s} ({enc}{} tokens in {} {unit})",
                dev["tokens"][i], dev["decode"][i]
            ));
            if let Some(t) = result.get("text").and_then(|t| t.get(i)) {
                lines.push(format!("text {i}: {t}"));
            }
        }
    }
    write_line(out, &lines.join("\n"))
}

fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let a = parse_npy(&bytes, path)?;
    match a.data {
        NpyData::I64(v) => Ok(v),
        NpyData::F32(_) => Err(Error::Input(format!(
            "{}: labels must be int64",
            path.display()
        ))),
    }
}

fn stats(v: &[u64]) -> Value {
    let n = v.len().max(1) as f64;
    json!({
        "mean": v.iter().sum::<u64>() as f64 / n,
        "min": v.iter().min().copied().unwrap_or(0),
        "max": v.iter().max().copied().unwrap_or(0),
    })
}

fn eval(
    args: &DeviceArgs,
    e: &EvalArgs,
    blob: &Blob<'_>,
    link: &mut Link,
    out: &mut dyn Write,
) -> Result<()> {
    let h = *blob.header();
    let unit = link.info.unit;
    let report = match h.kind {
        ModelKind::VitClassifier => {
            let mut images = read_images(&e.data, &blob_vit_config(&h))?;
            images.truncate(e.limit.unwrap_or(usize::MAX));
            let labels = e.labels.as_deref().map(read_labels).transpose()?;
            if let Some(l) = &labels {
                if l.len() < images.len() {
                    return Err(Error::Input(format!(
                        "{} labels for {} images",
                        l.len(),
                        images.len()
                    )));
                }
            }
            let (mut exact, mut agree, mut dev_ok, mut host_ok) = (0usize, 0usize, 0usize, 0usize);
            let mut times = Vec::new();
            let mut first_diff = None;
            let bar = Progress::new("eval", images.len());
            for (i, img) in images.iter().enumerate() {
                let q = int8::quantize_image(blob, img);
                let (l, t) = link.client.classify(&q).map_err(|e| link.err(e))?;
                let dl = dequantize(blob, &l);
                let hl = int8::classify(blob, img)?;
                let (dt, ht) = (ops::argmax(&dl), ops::argmax(&hl));
                if dl == hl {
                    exact += 1;
                } else if first_diff.is_none() {
                    first_diff = Some(i);
                }
                agree += usize::from(dt == ht);
                if let Some(l) = &labels {
                    dev_ok += usize::from(dt as i64 == l[i]);
                    host_ok += usize::from(ht as i64 == l[i]);
                }
                times.push(t);
                bar.tick(i + 1);
            }
            let n = images.len();
            let mut r = json!({
                "model": args.model.display().to_string(),
                "device": link.name,
                "inputs": n,
                "bit_exact": exact,
                "top1_agreement": agree as f64 / n.max(1) as f64,
                "first_difference": first_diff,
                "unit": unit,
                "time": stats(&times),
            });
            if labels.is_some() {
                r["accuracy_device"] = json!(dev_ok as f64 / n.max(1) as f64);
                r["accuracy_host"] = json!(host_ok as f64 / n.max(1) as f64);
            }
            r
        }
        ModelKind::DecoderLm | ModelKind::EncoderDecoder | ModelKind::Llama => {
            let enc = h.kind == ModelKind::EncoderDecoder;
            let llama = h.kind == ModelKind::Llama;
            let (prompts, images, q) = if enc {
                let mut images = read_images(&e.data, &blob_vit_config(&h))?;
                images.truncate(e.limit.unwrap_or(usize::MAX));
                let q: Vec<Vec<i8>> = images
                    .iter()
                    .map(|i| int8::quantize_image(blob, i))
                    .collect();
                (
                    vec![vec![h.decoder.start_token as usize]; images.len()],
                    Some(images),
                    Some(q),
                )
            } else {
                let mut p = read_ids(&e.data)?;
                p.truncate(e.limit.unwrap_or(usize::MAX));
                for x in &p {
                    int8::check_ids(blob, x)?;
                }
                (p, None, None)
            };
            let (mut exact_seq, mut exact_logits, mut tokens_agree, mut tokens) = (0, 0, 0, 0);
            let (mut dec_times, mut per_token) = (Vec::new(), Vec::new());
            let bar = Progress::new("eval", prompts.len());
            for (i, p) in prompts.iter().enumerate() {
                let one = std::slice::from_ref(p);
                let qi = q.as_ref().map(|q| std::slice::from_ref(&q[i]));
                let (dg, dl, dev, hg, hl) = if llama {
                    // `simulate`'s Llama rule: the blob's stop rule, no padding.
                    let d = device_llama(link, blob, p, e.max_new_tokens)?;
                    let g = crate::llama::int8::generate(blob, p, e.max_new_tokens)?;
                    let dev = json!({"decode": [d.decode], "tokens": [d.tokens]});
                    (
                        vec![d.ids],
                        vec![d.logits],
                        dev,
                        vec![g.ids],
                        vec![g.logits],
                    )
                } else {
                    let (dg, dl, dev) = device_generate(link, blob, one, qi, e.max_new_tokens)?;
                    let hi = images.as_ref().map(|im| std::slice::from_ref(&im[i]));
                    let (hg, hl) = int8::generate(blob, one, hi, e.max_new_tokens)?;
                    (dg, dl, dev, hg, hl)
                };
                exact_seq += usize::from(dg == hg);
                exact_logits += usize::from(dl == hl);
                let (d0, h0) = (&dg[0][p.len()..], &hg[0][p.len().min(hg[0].len())..]);
                tokens += h0.len();
                tokens_agree += d0.iter().zip(h0).filter(|(a, b)| a == b).count();
                let dt = dev["decode"][0].as_u64().unwrap_or(0);
                let tk = dev["tokens"][0].as_u64().unwrap_or(1).max(1);
                dec_times.push(dt);
                per_token.push(dt / tk);
                bar.tick(i + 1);
            }
            let n = prompts.len();
            json!({
                "model": args.model.display().to_string(),
                "device": link.name,
                "inputs": n,
                "sequences_equal": exact_seq,
                "logits_bit_exact": exact_logits,
                "token_agreement": tokens_agree as f64 / tokens.max(1) as f64,
                "unit": unit,
                "decode_time": stats(&dec_times),
                "time_per_token": stats(&per_token),
            })
        }
    };
    if e.json {
        return write_line(out, &report.to_string());
    }
    let mut s = format!(
        "on-target validation: {} on {} ({} inputs)\n",
        args.model.display(),
        link.name,
        report["inputs"]
    );
    let n = report["inputs"].as_u64().unwrap_or(0);
    if h.kind == ModelKind::VitClassifier {
        s += &format!(
            "  logits bit-exact with the host int8 simulation: {}/{n}\n  top-1 agreement with the host: {:.2}%\n",
            report["bit_exact"],
            100.0 * report["top1_agreement"].as_f64().unwrap_or(0.0)
        );
        if let Some(a) = report.get("accuracy_device") {
            s += &format!(
                "  accuracy: device {:.2}%, host {:.2}%\n",
                100.0 * a.as_f64().unwrap_or(0.0),
                100.0 * report["accuracy_host"].as_f64().unwrap_or(0.0)
            );
        }
        s += &format!(
            "  time per image: mean {:.0} {unit} (min {}, max {})",
            report["time"]["mean"].as_f64().unwrap_or(0.0),
            report["time"]["min"],
            report["time"]["max"]
        );
    } else {
        s += &format!(
            "  generated sequences equal to the host's: {}/{n}\n  teacher-forced logits bit-exact: {}/{n}\n  generated-token agreement: {:.2}%\n  time per token: mean {:.0} {unit} (min {}, max {})",
            report["sequences_equal"],
            report["logits_bit_exact"],
            100.0 * report["token_agreement"].as_f64().unwrap_or(0.0),
            report["time_per_token"]["mean"].as_f64().unwrap_or(0.0),
            report["time_per_token"]["min"],
            report["time_per_token"]["max"]
        );
    }
    write_line(out, &s)
}

/// One Llama prompt on the device, as `tools simulate` runs it
/// (`crate::llama::int8::generate`): the ids and one dequantized logits row per id, plus the
/// device's decode time and the tokens it fed.
struct LlamaRun {
    ids: Vec<usize>,
    logits: Vec<Vec<f32>>,
    decode: u64,
    tokens: u32,
}

/// Greedy generation of `prompt` on the device (`Generate`), cut by the blob's stop rule, then
/// the teacher-forced logits of every id (`TeacherForce`), also on the device. The device's
/// `llama_greedy` keeps an emitted eos and stops there; `simulate` stops *before* a llama2.c
/// eos (its BOS), so that one is dropped here. The prompt is checked as `simulate` checks it
/// (same errors), and against the device's room for ids.
fn device_llama(
    link: &mut Link,
    blob: &Blob<'_>,
    prompt: &[usize],
    max_new: usize,
) -> Result<LlamaRun> {
    crate::llama::int8::check_prompt(blob, prompt, max_new)?;
    let room = link.info.max_ids;
    if prompt.len() + max_new > room {
        return Err(Error::Input(format!(
            "prompt of {} tokens + {max_new} new tokens: {} ids, {} has room for {room}",
            prompt.len(),
            prompt.len() + max_new,
            link.name
        )));
    }
    let p: Vec<u32> = prompt.iter().map(|&t| t as u32).collect();
    let (mut ids, decode, tokens) = if max_new == 0 {
        (p, 0, 0)
    } else {
        let max_new16 = u16::try_from(max_new)
            .map_err(|_| Error::Input(format!("--max-new-tokens {max_new}: too many")))?;
        let g = link
            .client
            .generate(&p, max_new16, &[])
            .map_err(|e| link.err(e))?;
        (g.ids, g.decode, g.tokens)
    };
    if let StopRule::Before(eos) = crate::llama::int8::stop_rule(blob) {
        if ids.len() > prompt.len() && ids.last() == Some(&(eos as u32)) {
            ids.pop();
        }
    }
    let (rows, _) = link
        .client
        .teacher_force(&ids, &[])
        .map_err(|e| link.err(e))?;
    Ok(LlamaRun {
        ids: ids.iter().map(|&t| t as usize).collect(),
        logits: rows.iter().map(|l| dequantize(blob, l)).collect(),
        decode,
        tokens,
    })
}

/// `device run` on a Llama blob: `simulate`'s prompts (`--prompt` through the tokenizer, else
/// `--input` ids), ids, logits and text, computed on the device, plus `"device"`.
fn run_llama(
    args: &DeviceArgs,
    r: &RunArgs,
    blob: &Blob<'_>,
    link: &mut Link,
    out: &mut dyn Write,
) -> Result<()> {
    if r.vocab.is_some() {
        return Err(Error::Input(
            "--vocab is for character LMs; a Llama model takes --tokenizer FILE (llama2.c tokenizer.bin)"
                .into(),
        ));
    }
    let vocab = blob.header().decoder.llama().vocab;
    let tokenizer: Option<Tokenizer> =
        crate::llama::int8::blob_tokenizer(&args.model, r.tokenizer.as_deref(), vocab)?;
    let prompts = crate::llama::simulate::prompts(
        r.prompt.as_deref(),
        r.input.as_deref(),
        tokenizer.as_ref(),
        &format!(
            "{} (written by convert --tokenizer)",
            crate::llama::int8::tokenizer_sidecar(&args.model).display()
        ),
    )?;
    let (mut generated, mut logits, mut decode, mut tokens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let bar = Progress::new("device", prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        let run = device_llama(link, blob, p, r.max_new_tokens)?;
        generated.push(run.ids);
        logits.push(run.logits);
        decode.push(run.decode);
        tokens.push(run.tokens);
        bar.tick(i + 1);
    }
    let unit = link.info.unit;
    let texts: Option<Vec<String>> = tokenizer
        .as_ref()
        .map(|t| generated.iter().map(|ids| t.decode(ids)).collect());
    if r.json {
        let mut v = json!({
            "generated": generated,
            "logits": logits,
            "device": {"unit": unit, "decode": decode, "tokens": tokens},
        });
        if let Some(t) = &texts {
            v["text"] = json!(t);
        }
        return write_line(out, &v.to_string());
    }
    let mut lines = Vec::new();
    for (i, s) in generated.iter().enumerate() {
        lines.push(format!(
            "sequence {i}: {s:?} ({} tokens in {} {unit})",
            tokens[i], decode[i]
        ));
        if let Some(t) = texts.as_ref().and_then(|t| t.get(i)) {
            lines.push(format!("text {i}: {}", json!(t)));
        }
    }
    write_line(out, &lines.join("\n"))
}
