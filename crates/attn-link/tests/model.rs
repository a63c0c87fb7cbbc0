//! End to end on the host: Client ↔ in-memory pipe ↔ Server running `ModelHandler` on the
//! shipped blobs (the Llamas included: the llama2.c fixture and the trained `llama-kjv`).
//! Every answer must equal core-attn's owned-buffer runners called directly (the host
//! simulation), and bad requests must be error frames that leave the model serving.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use attn_link::client::{Client, ClientError};
use attn_link::model::{Clock, ModelHandler, Workspace};
use attn_link::{ErrorCode, Server, MAX_FRAME};
use common::Rng;
use core_attn::attention::KvCache;
use core_attn::blob::{fnv1a32, Blob, ModelKind};
use core_attn::llama::{llama_greedy, llama_step, LlamaModel};
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{self as runner, kv_caches, ModelBuffers};

/// Counts its own readings: every request's time is then the number of clock readings.
struct Counter(u64);

impl Clock for Counter {
    fn now(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
    fn unit(&self) -> &'static str {
        "instructions"
    }
}

fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut w = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..bytes.len()].copy_from_slice(bytes);
    w
}

fn blobs() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        "boards/common/models/vit-tiny.tatn",
        "boards/common/models/gpt2-tiny.tatn",
        "boards/common/models/encdec-tiny.tatn",
        "models/vit-mnist.tatn",
        "models/char-lm.tatn",
        "models/digit-reader.tatn",
        "boards/common/models/llama2c-tiny.tatn",
        "models/llama-kjv.tatn",
    ]
    .iter()
    .map(|p| {
        let path = root.join(p);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (p.to_string(), bytes)
    })
    .collect()
}

type Split<'s> = (ModelBuffers<'s>, Vec<KvCache<'s>>, Vec<KvCache<'s>>);

/// `OwnedBuffers::split`, and for a Llama its caches `kv_heads · head_dim` wide (what
/// `tools`' Llama runner builds).
fn split<'s>(owned: &'s mut OwnedBuffers, blob: &Blob<'_>) -> Split<'s> {
    if blob.kind() != ModelKind::Llama {
        return owned.split(blob).unwrap();
    }
    let d = blob.llama_dims();
    let OwnedBuffers {
        x,
        normed,
        wide,
        scores,
        patch,
        logits,
        kv,
        ..
    } = owned;
    let caches = kv_caches(kv, d.layers, d.max_positions, d.kv_width())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let buffers = ModelBuffers {
        x,
        normed,
        wide,
        scores,
        patch,
        logits,
    };
    (buffers, caches, Vec::new())
}

/// Serve `bytes` in a thread; returns the client.
fn start(bytes: Vec<u8>) -> (std::thread::JoinHandle<()>, Client<common::PipeEnd>) {
    let (dev, host) = common::pipe();
    let t = std::thread::spawn(move || {
        let words = aligned(&bytes);
        let b = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
        let blob = Blob::parse(b).unwrap();
        let mut owned = OwnedBuffers::new(&blob.buffers());
        let (buffers, mut caches, mut cross) = split(&mut owned, &blob);
        let mut prompt = vec![0u32; 256];
        let mut ids = vec![0u32; 300];
        let ws = Workspace {
            buffers,
            caches: &mut caches,
            cross: &mut cross,
            prompt: &mut prompt,
            ids: &mut ids,
        };
        let mut h = ModelHandler::new(
            b,
            "m",
            MAX_FRAME - attn_link::frame::OVERHEAD,
            ws,
            Counter(0),
        )
        .unwrap();
        let mut s: Server<_, MAX_FRAME> = Server::new(dev);
        s.run(&mut h).unwrap();
    });
    (t, Client::new(host, Duration::from_secs(30)))
}

fn image(blob: &Blob<'_>, k: usize) -> Vec<i8> {
    let e = blob.header().encoder;
    let n = e.channels * e.height * e.image_width;
    (0..n)
        .map(|i| ((i * 37 + k * 101) % 255) as u8 as i8)
        .collect()
}

fn device_error(r: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Device { code, .. }) => code,
        r => panic!("expected a device error, got {r:?}"),
    }
}

#[test]
fn every_shipped_model_answers_like_the_host_runners() {
    for (name, bytes) in blobs() {
        let words = aligned(&bytes);
        let b = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
        let blob = Blob::parse(b).unwrap();
        let h = *blob.header();
        let d = h.decoder;
        let mut owned = OwnedBuffers::new(&blob.buffers());
        let (mut bufs, mut caches, mut cross) = split(&mut owned, &blob);
        let (t, mut c) = start(bytes.clone());

        let info = c.info().unwrap();
        assert_eq!(info.checksum, fnv1a32(&bytes[12..]), "{name}");
        assert_eq!(info.blob_len as usize, bytes.len(), "{name}");
        assert_eq!(info.unit, "instructions");
        let kind = [
            ModelKind::VitClassifier,
            ModelKind::DecoderLm,
            ModelKind::EncoderDecoder,
            ModelKind::Llama,
        ][info.kind as usize];
        assert_eq!(kind, blob.kind(), "{name}");

        match blob.kind() {
            ModelKind::VitClassifier => {
                for k in 0..3 {
                    let img = image(&blob, k);
                    let (got, time) = c.classify(&img).unwrap();
                    let want =
                        runner::vit_classify(&blob, &img, &mut bufs, &mut |_, _| {}).unwrap();
                    assert_eq!(got, want, "{name} image {k}");
                    // Two clock readings around one inference.
                    assert_eq!(time, 1);
                }
                assert_eq!(device_error(c.generate(&[0], 2, &[])), ErrorCode::WrongKind);
                assert_eq!(device_error(c.classify(&[0; 3])), ErrorCode::BadInput);
            }
            ModelKind::DecoderLm | ModelKind::EncoderDecoder => {
                let enc = blob.kind() == ModelKind::EncoderDecoder;
                let mut rng = Rng(name.len() as u64 + 1);
                for k in 0..2 {
                    let (prompt, img) = if enc {
                        (vec![d.start_token], image(&blob, k))
                    } else {
                        let n = 1 + rng.below(5);
                        ((0..n).map(|_| rng.below(d.vocab) as u32).collect(), vec![])
                    };
                    let max_new = 8usize.min(d.max_positions + 1 - prompt.len());
                    let g = c.generate(&prompt, max_new as u16, &img).unwrap();
                    // Host: the same runners on owned buffers.
                    let cr = if enc {
                        runner::encode_for_decoder(
                            &blob,
                            &img,
                            &mut cross,
                            &mut bufs,
                            &mut |_, _| {},
                        )
                        .unwrap();
                        Some(&cross[..])
                    } else {
                        None
                    };
                    let mut out = vec![0u32; prompt.len() + max_new];
                    let n = runner::greedy(
                        &blob,
                        &prompt,
                        max_new,
                        &mut out,
                        &mut caches,
                        cr,
                        &mut bufs,
                        &mut |_, _| {},
                    )
                    .unwrap();
                    assert_eq!(g.ids, &out[..n], "{name} input {k}");
                    assert_eq!(
                        g.tokens as usize,
                        n - 1,
                        "{name}: every id but the last is fed"
                    );
                    assert_eq!(g.encode > 0, enc);

                    let (rows, _) = c.teacher_force(&g.ids, &img).unwrap();
                    for cc in caches.iter_mut() {
                        cc.clear();
                    }
                    assert_eq!(rows.len(), g.ids.len());
                    for (p, &tok) in g.ids.iter().enumerate() {
                        let cr = if enc { Some(&cross[..]) } else { None };
                        let l = runner::decoder_step(
                            &blob,
                            tok,
                            &mut caches,
                            cr,
                            &mut bufs,
                            &mut |_, _| {},
                        )
                        .unwrap();
                        assert_eq!(rows[p], l, "{name} input {k} position {p}");
                    }
                }
                // Bad requests: error frames, then the model still answers the same.
                assert_eq!(device_error(c.classify(&[0; 4])), ErrorCode::WrongKind);
                let good = if enc { vec![d.start_token] } else { vec![1] };
                let img = if enc { image(&blob, 0) } else { vec![] };
                assert_eq!(
                    device_error(c.generate(&[d.vocab as u32], 2, &img)),
                    ErrorCode::BadInput
                );
                assert_eq!(
                    device_error(c.generate(&good, (d.max_positions + 5) as u16, &img)),
                    ErrorCode::BadInput
                );
                assert_eq!(
                    device_error(c.generate(&good, 0, &img)),
                    ErrorCode::BadInput
                );
                let wrong_img = if enc { vec![0i8; 5] } else { vec![0i8; 1] };
                assert_eq!(
                    device_error(c.generate(&good, 2, &wrong_img)),
                    ErrorCode::BadInput
                );
                let a = c.generate(&good, 3, &img).unwrap();
                c.send_raw(&[0xA7, 0x4C, 1, 3, 9, 0xFF, 0x0F]).unwrap();
                c.send_raw(&vec![0u8; MAX_FRAME]).unwrap();
                let b2 = c.generate(&good, 3, &img).unwrap();
                assert_eq!(a.ids, b2.ids, "{name}: same answer after errors");
            }
            ModelKind::Llama => {
                let mut rng = Rng(name.len() as u64 + 7);
                for k in 0..2 {
                    // BOS first (as llama2.c prompts are), then random ids.
                    let n = 1 + rng.below(6);
                    let prompt: Vec<u32> = std::iter::once(d.start_token)
                        .chain((1..n).map(|_| rng.below(d.vocab) as u32))
                        .collect();
                    let max_new = 12usize.min(d.max_positions + 1 - prompt.len());
                    let g = c.generate(&prompt, max_new as u16, &[]).unwrap();
                    let mut out = vec![0u32; prompt.len() + max_new];
                    let len = llama_greedy(
                        &blob,
                        &prompt,
                        max_new,
                        &mut out,
                        &mut caches,
                        &mut bufs,
                        &mut |_, _| {},
                    )
                    .unwrap();
                    assert_eq!(g.ids, &out[..len], "{name} input {k}");
                    assert_eq!(
                        g.tokens as usize,
                        len - 1,
                        "{name}: every id but the last is fed"
                    );
                    assert_eq!(g.encode, 0);

                    let (rows, _) = c.teacher_force(&g.ids, &[]).unwrap();
                    for cc in caches.iter_mut() {
                        cc.clear();
                    }
                    assert_eq!(rows.len(), g.ids.len());
                    for (p, &tok) in g.ids.iter().enumerate() {
                        let l =
                            llama_step(&blob, tok, &mut caches, &mut bufs, &mut |_, _| {}).unwrap();
                        assert_eq!(rows[p], l, "{name} input {k} position {p}");
                    }
                }
                // Bad requests: error frames, then the model still answers the same.
                assert_eq!(device_error(c.classify(&[0; 4])), ErrorCode::WrongKind);
                let good = vec![d.start_token];
                assert_eq!(
                    device_error(c.generate(&[d.vocab as u32], 2, &[])),
                    ErrorCode::BadInput
                );
                assert_eq!(
                    device_error(c.generate(&good, (d.max_positions + 5) as u16, &[])),
                    ErrorCode::BadInput
                );
                assert_eq!(
                    device_error(c.generate(&good, 2, &[0i8; 3])),
                    ErrorCode::BadInput
                );
                assert_eq!(
                    device_error(c.teacher_force(&[0, d.vocab as u32], &[])),
                    ErrorCode::BadInput
                );
                let a = c.generate(&good, 3, &[]).unwrap();
                c.send_raw(&[0xA7, 0x4C, 1, 3, 9, 0xFF, 0x0F]).unwrap();
                c.send_raw(&vec![0u8; MAX_FRAME]).unwrap();
                let b2 = c.generate(&good, 3, &[]).unwrap();
                assert_eq!(a.ids, b2.ids, "{name}: same answer after errors");
            }
        }
        drop(c);
        t.join().unwrap();
    }
}
