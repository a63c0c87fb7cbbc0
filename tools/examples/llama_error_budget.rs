//! Where the int8 logit error of a Llama comes from: an f64 forward pass of core-attn's
//! reference (`LlamaF`) with int8 quantize–dequantize ("fake quantization") at chosen points
//! only, against the same pass without any, on held-out data.
//!
//! ```sh
//! cargo run --release -p tools --example llama_error_budget -- \
//!     models/llama-kjv/model.bin models/data/llama_calib_8x128.npy \
//!     models/data/llama_val_16x256.npy models/data/llama_prompts.json
//! ```
//!
//! Each line quantizes one kind of point in every layer (activations with the scales
//! `convert` takes from calibration, weights as `LinearParams::quantize` does: symmetric per
//! output row; the embedding symmetric per tensor, which is also the tied classifier's
//! weights), then `all` quantizes every point. Columns: RMS logit error, mean over rows of the
//! largest error on the clean pass's two leading logits, top-1 agreement, perplexity ratio on
//! the validation windows, and how many held-out prompts decode greedily to the same 16 new
//! tokens as the clean pass. The same table for the transformed model (`tools convert
//! --smooth`: scale migration and calibration ranges) follows, then the real int8 runner on
//! both. Knobs: `LQ_ALPHA=0.8|none` (migration strength), `LQ_CLIP=swiglu,w2` (points whose
//! range is clipped), `LQ_ONLY=1` (no per-point tables), `LQ_STATS=1` (ranges, quantiles and
//! per-channel / per-token maxima of every point over the calibration set).

use std::path::{Path, PathBuf};

use core_attn::quantize_block::Calibration;
use core_attn::reference::block::NoObserver;
use core_attn::reference::llama::LlamaF;
use core_attn::requant::QParams;
use tools::llama::int8::{
    calibration_ids, quantize_reference, reference_calibration_with, PackTransform,
};

/// Points quantized symmetrically by `LlamaParams::quantize` (the others asymmetrically).
const SYMMETRIC: &[&str] = &["q", "k", "v", "q_rope", "k_rope", "attn", "final", "logits"];

fn kind(point: &str) -> &str {
    point.split_once('.').map_or(point, |(_, k)| k)
}

/// Fake quantization: which points (by kind, e.g. `w1`) and which weights (`w:qkv`, `w:emb`…).
struct Fq<'a> {
    calib: &'a Calibration,
    acts: Vec<&'a str>,
    all: bool,
    /// With `all`: kinds left unquantized (what a wider format there would give).
    except: Vec<&'a str>,
}

impl Fq<'_> {
    fn apply(&self, point: &str, v: &mut [f64]) {
        let k = kind(point);
        if !(self.all || self.acts.contains(&k)) || k == "x0" || self.except.contains(&k) {
            return;
        }
        let q = if SYMMETRIC.contains(&k) {
            self.calib.symmetric(point)
        } else {
            self.calib.asymmetric(point)
        }
        .expect("calibration point");
        for x in v.iter_mut() {
            *x = q.dequantize(q.quantize(*x));
        }
    }
}

fn fq_rows(w: &mut [f32], cols: usize) {
    for row in w.chunks_exact_mut(cols) {
        let max = row.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        for v in row {
            *v = (((*v as f64) / s).round().clamp(-127.0, 127.0) * s) as f32;
        }
    }
}

/// The model with the named weights quantized (`qkv`, `wo`, `w1`, `w3`, `w2`, `emb`).
fn fq_weights(f: &LlamaF, which: &[&str]) -> LlamaF {
    let mut g = f.clone();
    for b in &mut g.blocks {
        for (name, l) in [
            ("qkv", &mut b.qkv),
            ("wo", &mut b.wo),
            ("w1", &mut b.w1),
            ("w3", &mut b.w3),
            ("w2", &mut b.w2),
        ] {
            if which.contains(&name) {
                let cols = l.in_features;
                fq_rows(&mut l.w, cols);
            }
        }
    }
    if which.contains(&"emb_rows") {
        // per-row scales (a format change: the blob holds one embedding scale)
        let cols = g.width;
        fq_rows(&mut g.embedding, cols);
    }
    if which.contains(&"emb") {
        let q = QParams::symmetric(
            g.embedding
                .iter()
                .fold(0.0f64, |m, &v| m.max((v as f64).abs())),
        );
        for v in &mut g.embedding {
            *v = q.dequantize(q.quantize(*v as f64)) as f32;
        }
    }
    g
}

fn rms(x: &[f64], g: &[f32], eps: f64) -> Vec<f64> {
    let d = g.len();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let den = (row.iter().map(|v| v * v).sum::<f64>() / d as f64 + eps).sqrt();
        out.extend(row.iter().zip(g).map(|(&v, &g)| v / den * g as f64));
    }
    out
}

fn lin(x: &[f64], l: &core_attn::reference::block::LinearF) -> Vec<f64> {
    l.forward(x)
}

/// `LlamaF::forward` with `fq` applied at every observation point (same order, same maths).
fn forward(f: &LlamaF, ids: &[u32], fq: &Fq) -> Vec<f64> {
    let (d, dh) = (f.width, f.head_dim());
    let kvw = f.kv_heads * dh;
    let n = ids.len();
    let mut x: Vec<f64> = ids
        .iter()
        .flat_map(|&id| {
            f.embedding[id as usize * d..][..d]
                .iter()
                .map(|&e| e as f64)
        })
        .collect();
    let p = |i: usize, s: &str| format!("l{i}.{s}");
    for (i, b) in f.blocks.iter().enumerate() {
        let mut a = rms(&x, &b.rms1.gamma, b.rms1.eps);
        fq.apply(&p(i, "rms1"), &mut a);
        let qkv = lin(&a, &b.qkv);
        let stride = d + 2 * kvw;
        let (mut q, mut k, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for r in qkv.chunks_exact(stride) {
            q.extend_from_slice(&r[..d]);
            k.extend_from_slice(&r[d..d + kvw]);
            v.extend_from_slice(&r[d + kvw..]);
        }
        fq.apply(&p(i, "q"), &mut q);
        fq.apply(&p(i, "k"), &mut k);
        fq.apply(&p(i, "v"), &mut v);
        for (buf, w) in [(&mut q, d), (&mut k, kvw)] {
            for (t, r) in buf.chunks_exact_mut(w).enumerate() {
                let rot = core_attn::reference::llama::rope_f64(r, dh, t, f.theta, f.style)
                    .expect("rope");
                r.copy_from_slice(&rot);
            }
        }
        fq.apply(&p(i, "q_rope"), &mut q);
        fq.apply(&p(i, "k_rope"), &mut k);
        let group = f.heads / f.kv_heads;
        let mut ctx = vec![0.0; n * d];
        for t in 0..n {
            for h in 0..f.heads {
                let g = h / group;
                let qh = &q[t * d + h * dh..][..dh];
                let s: Vec<f64> = (0..=t)
                    .map(|j| {
                        let kj = &k[j * kvw + g * dh..][..dh];
                        qh.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() / (dh as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|s| (s - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (j, ej) in e.iter().enumerate() {
                    let vj = &v[j * kvw + g * dh..][..dh];
                    for (o, x) in ctx[t * d + h * dh..][..dh].iter_mut().zip(vj) {
                        *o += ej / sum * x;
                    }
                }
            }
        }
        fq.apply(&p(i, "attn"), &mut ctx);
        let mut pr = lin(&ctx, &b.wo);
        fq.apply(&p(i, "proj"), &mut pr);
        x.iter_mut().zip(&pr).for_each(|(a, b)| *a += b);
        fq.apply(&p(i, "add1"), &mut x);
        let mut a = rms(&x, &b.rms2.gamma, b.rms2.eps);
        fq.apply(&p(i, "rms2"), &mut a);
        let mut g = lin(&a, &b.w1);
        fq.apply(&p(i, "w1"), &mut g);
        let mut u = lin(&a, &b.w3);
        fq.apply(&p(i, "w3"), &mut u);
        let mut h: Vec<f64> = g
            .iter()
            .zip(&u)
            .map(|(&g, &u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        fq.apply(&p(i, "swiglu"), &mut h);
        let mut y = lin(&h, &b.w2);
        fq.apply(&p(i, "w2"), &mut y);
        x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        fq.apply(&p(i, "add2"), &mut x);
    }
    let mut y = rms(&x, &f.final_norm.gamma, f.final_norm.eps);
    fq.apply("final", &mut y);
    let head = f.head.as_ref().unwrap_or(&f.embedding);
    let v = f.vocab();
    let mut logits = Vec::with_capacity(n * v);
    for row in y.chunks_exact(d) {
        for o in 0..v {
            logits.push(
                row.iter()
                    .zip(&head[o * d..][..d])
                    .map(|(&a, &b)| a * b as f64)
                    .sum(),
            );
        }
    }
    fq.apply("logits", &mut logits);
    logits
}

fn argmax(r: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = i;
        }
    }
    best
}

fn nll(rows: &[f64], v: usize, ids: &[u32]) -> f64 {
    let mut s = 0.0;
    for t in 0..ids.len() - 1 {
        let r = &rows[t * v..][..v];
        let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + r.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        s += lse - r[ids[t + 1] as usize];
    }
    s
}

/// Greedy ids of `prompt` + 16 new tokens with a logits function of a whole sequence.
fn greedy(
    prompt: &[u32],
    eos: Option<u32>,
    v: usize,
    run: &dyn Fn(&[u32]) -> Vec<f64>,
) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..16 {
        let l = run(&ids);
        let next = argmax(&l[(ids.len() - 1) * v..][..v]) as u32;
        if Some(next) == eos {
            break;
        }
        ids.push(next);
    }
    ids
}

struct Data {
    windows: Vec<Vec<u32>>,
    prompts: Vec<Vec<u32>>,
    clean_windows: Vec<Vec<f64>>,
    clean_greedy: Vec<Vec<u32>>,
    clean_nll: f64,
    tokens: usize,
}

fn report(name: &str, d: &Data, v: usize, eos: Option<u32>, run: &dyn Fn(&[u32]) -> Vec<f64>) {
    let (mut se, mut n, mut lead, mut rows, mut agree, mut nl) =
        (0.0, 0usize, 0.0, 0usize, 0usize, 0.0);
    for (w, clean) in d.windows.iter().zip(&d.clean_windows) {
        let l = run(w);
        nl += nll(&l, v, w);
        for (rc, rq) in clean.chunks_exact(v).zip(l.chunks_exact(v)) {
            for (a, b) in rc.iter().zip(rq) {
                se += (a - b) * (a - b);
                n += 1;
            }
            let mut order: Vec<usize> = (0..v).collect();
            order.sort_by(|&i, &j| rc[j].total_cmp(&rc[i]));
            lead += order[..2]
                .iter()
                .map(|&i| (rc[i] - rq[i]).abs())
                .fold(0.0, f64::max);
            rows += 1;
            agree += (argmax(rc) == argmax(rq)) as usize;
        }
    }
    let equal = d
        .prompts
        .iter()
        .zip(&d.clean_greedy)
        .filter(|(p, g)| greedy(p, eos, v, run) == **g)
        .count();
    println!(
        "{name:<24} rms {:.4}  lead {:.4}  top1 {:.2}%  ppl {:+.2}%  greedy16 {equal}/{}",
        (se / n as f64).sqrt(),
        lead / rows as f64,
        100.0 * agree as f64 / rows as f64,
        100.0 * (((nl - d.clean_nll) / d.tokens as f64).exp() - 1.0),
        d.prompts.len()
    );
}

fn budget(title: &str, f: &LlamaF, calib: &Calibration, d: &Data) {
    println!("== {title}");
    let v = f.vocab();
    let none = Fq {
        calib,
        acts: vec![],
        except: vec![],
        all: false,
    };
    let kinds = [
        "rms1", "q", "k", "v", "q_rope", "k_rope", "attn", "proj", "add1", "rms2", "w1", "w3",
        "swiglu", "w2", "add2", "final", "logits",
    ];
    for k in kinds {
        let fq = Fq {
            calib,
            acts: vec![k],
            except: vec![],
            all: false,
        };
        report(&format!("act {k}"), d, v, f.eos, &|ids| {
            forward(f, ids, &fq)
        });
    }
    for w in ["qkv", "wo", "w1", "w3", "w2", "emb"] {
        let g = fq_weights(f, &[w]);
        report(&format!("weights {w}"), d, v, f.eos, &|ids| {
            forward(&g, ids, &none)
        });
    }
    let all_w = fq_weights(f, &["qkv", "wo", "w1", "w3", "w2", "emb"]);
    report("all weights", d, v, f.eos, &|ids| {
        forward(&all_w, ids, &none)
    });
    let all = Fq {
        calib,
        acts: vec![],
        except: vec![],
        all: true,
    };
    report("all activations", d, v, f.eos, &|ids| forward(f, ids, &all));
    report("everything", d, v, f.eos, &|ids| forward(&all_w, ids, &all));
    println!("-- what a format change would give (f64 simulation)");
    for (name, except) in [
        ("everything but swiglu", vec!["swiglu"]),
        ("everything but add1/add2", vec!["add1", "add2"]),
        ("everything but k/k_rope", vec!["k", "k_rope"]),
    ] {
        let fq = Fq {
            calib,
            acts: vec![],
            all: true,
            except,
        };
        report(name, d, v, f.eos, &|ids| forward(&all_w, ids, &fq));
    }
    let rows_w = fq_weights(f, &["qkv", "wo", "w1", "w3", "w2", "emb_rows"]);
    report("everything, emb per row", d, v, f.eos, &|ids| {
        forward(&rows_w, ids, &all)
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if a.len() != 4 {
        return Err("usage: llama_error_budget MODEL.bin CALIB.npy VAL.npy PROMPTS.json".into());
    }
    let m = tools::llama::llama2c::load(&a[0])?;
    let f = tools::llama::int8::to_reference(&m)?;
    let calib_ids = calibration_ids(&m, Some(&a[1]))?;
    let v = f.vocab();
    let windows: Vec<Vec<u32>> = tools::int8::npy_ids(&a[2], v)?
        .into_iter()
        .take(6)
        .map(|w| w.into_iter().map(|i| i as u32).collect())
        .collect();
    let pj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&a[3])?)?;
    let prompts: Vec<Vec<u32>> = pj["ids"]
        .as_array()
        .ok_or("prompts.json: no ids")?
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let none_calib = Calibration::default();
    let none = Fq {
        calib: &none_calib,
        acts: vec![],
        except: vec![],
        all: false,
    };
    let clean = |ids: &[u32]| forward(&f, ids, &none);
    let clean_windows: Vec<Vec<f64>> = windows.iter().map(|w| clean(w)).collect();
    let clean_nll = windows
        .iter()
        .zip(&clean_windows)
        .map(|(w, l)| nll(l, v, w))
        .sum();
    let clean_greedy = prompts
        .iter()
        .map(|p| greedy(p, f.eos, v, &clean))
        .collect();
    let tokens = windows.iter().map(|w| w.len() - 1).sum();
    let d = Data {
        windows,
        prompts,
        clean_windows,
        clean_greedy,
        clean_nll,
        tokens,
    };
    // sanity: our forward equals the reference's
    let r = f.forward(&d.windows[0], &mut NoObserver)?;
    let diff = r
        .iter()
        .zip(&d.clean_windows[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("forward vs LlamaF::forward: max |diff| {diff:.2e}");

    let calib = core_attn::llama::calibrate_llama(&f, &calib_ids)?;
    if std::env::var("LQ_STATS").is_ok() {
        stats(&f, &calib_ids);
    }
    let only = std::env::var("LQ_ONLY").is_ok();
    if !only {
        budget("as shipped (max ranges, no migration)", &f, &calib, &d);
    }
    // LQ_ALPHA=0.3 (or "none") overrides the SwiGLU migration strength, LQ_ONLY=1 skips the
    // per-point tables
    let mut t = PackTransform::SMOOTH;
    match std::env::var("LQ_ALPHA") {
        Ok(s) if s == "none" => t.swiglu_alpha = None,
        Ok(s) => t.swiglu_alpha = Some(s.parse()?),
        Err(_) => {}
    }
    if let Ok(s) = std::env::var("LQ_CLIP") {
        let kinds: Vec<&'static str> = s
            .split(',')
            .filter(|k| !k.is_empty())
            .map(|k| &*Box::leak(k.to_string().into_boxed_str()))
            .collect();
        t.clip = Box::leak(kinds.into_boxed_slice());
    }
    println!("transform: {t:?}");
    let (g, gcalib) = reference_calibration_with(&m, Some(&a[1]), t)?;
    let r = g.forward(&d.windows[0], &mut NoObserver)?;
    let diff = r
        .iter()
        .zip(&d.clean_windows[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("transformed vs original logits: max |diff| {diff:.2e}");
    if !only {
        budget("transformed", &g, &gcalib, &d);
    } else {
        let all = Fq {
            calib: &gcalib,
            acts: vec![],
            except: vec![],
            all: true,
        };
        let all_w = fq_weights(&g, &["qkv", "wo", "w1", "w3", "w2", "emb"]);
        report("transformed: everything", &d, v, f.eos, &|ids| {
            forward(&all_w, ids, &all)
        });
        let sw = Fq {
            calib: &gcalib,
            acts: vec!["swiglu"],
            except: vec![],
            all: false,
        };
        report("transformed: act swiglu", &d, v, f.eos, &|ids| {
            forward(&g, ids, &sw)
        });
        let w2 = fq_weights(&g, &["w2"]);
        report("transformed: weights w2", &d, v, f.eos, &|ids| {
            forward(&w2, ids, &none)
        });
    }

    println!("== real int8 runner (LlamaParams on the host)");
    for (name, model, c) in [("shipped", &f, &calib), ("transformed", &g, &gcalib)] {
        let params = quantize_reference(model, c)?;
        let bytes = core_attn::blob::write_llama(&params, None)?;
        let blob = tools::int8::AlignedBlob::from_bytes(&bytes);
        let blob = blob.parse(Path::new("memory"))?;
        report(&format!("int8 {name}"), &d, v, f.eos, &|ids| {
            let ids: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
            tools::llama::int8::logits(&blob, &ids)
                .expect("int8 logits")
                .concat()
                .into_iter()
                .map(f64::from)
                .collect()
        });
    }
    Ok(())
}

/// Collects every value of the points it is given.
#[derive(Default)]
struct Values(std::collections::BTreeMap<String, Vec<f64>>);

impl core_attn::reference::block::Observer for Values {
    fn observe(&mut self, point: &str, values: &[f64]) {
        self.0
            .entry(point.to_string())
            .or_default()
            .extend_from_slice(values);
    }
}

/// Ranges, quantiles and per-channel / per-token maxima of every point over the calibration set.
fn stats(f: &LlamaF, ids: &[Vec<u32>]) {
    let mut v = Values::default();
    for s in ids {
        f.forward(s, &mut v).expect("forward");
    }
    let tokens: usize = ids.iter().map(Vec::len).sum();
    for (p, vals) in &v.0 {
        let w = vals.len() / tokens;
        let mut a: Vec<f64> = vals.iter().map(|x| x.abs()).collect();
        a.sort_by(f64::total_cmp);
        let q = |p: f64| a[((a.len() - 1) as f64 * p) as usize];
        let (lo, hi) = vals
            .iter()
            .fold((0.0f64, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        let mut ch = vec![0.0f64; w];
        let mut tok = vec![0.0f64; tokens];
        for (i, &x) in vals.iter().enumerate() {
            ch[i % w] = ch[i % w].max(x.abs());
            tok[i / w] = tok[i / w].max(x.abs());
        }
        ch.sort_by(f64::total_cmp);
        tok.sort_by(f64::total_cmp);
        println!(
            "{p:<10} w {w:>3} [{lo:>8.3}, {hi:>8.3}] |x| q50 {:.3} q99 {:.3} q99.9 {:.3} q99.99 {:.3}; chan max med {:.3} top3 {:.2} {:.2} {:.2}; token max med {:.3} top3 {:.2} {:.2} {:.2}",
            q(0.5), q(0.99), q(0.999), q(0.9999),
            ch[w / 2], ch[w - 1], ch[w - 2], ch[w - 3],
            tok[tokens / 2], tok[tokens - 1], tok[tokens - 2], tok[tokens - 3]
        );
    }
}
