//! The protocol on the host: CRC, message round trips, and a server fed corrupt, truncated,
//! oversized, garbage-laden and interleaved frames — it answers an error frame for each bad
//! one, keeps serving, answers every valid request exactly once and in order, never panics.

mod common;

use std::time::Duration;

use attn_link::client::{Client, ClientError};
use attn_link::frame::{self, crc32, Decoder, Event, MAGIC, MAX_FRAME, OVERHEAD};
use attn_link::msg::{ty, ErrorCode, Ids, Info, Request, Response};
use attn_link::{Fault, Handler, Reply, Server};
use common::{frames, Capture, Rng};

/// Answers from the request alone (so a test can predict every answer), and counts requests.
#[derive(Default)]
struct Echo {
    handled: u32,
}

impl Handler for Echo {
    fn handle(&mut self, req: &Request<'_>, reply: &mut dyn Reply) -> Result<(), Fault> {
        self.handled += 1;
        match *req {
            Request::Info => reply.send(&Response::Info(Info {
                kind: 7,
                unit: 0,
                max_payload: 100,
                blob_len: self.handled,
                checksum: 0xDEAD_BEEF,
                max_ids: 5,
                name: "echo",
            })),
            Request::Classify { image: [] } => Err(Fault::new(ErrorCode::BadInput, 0)),
            Request::Classify { image } => {
                let rev: Vec<i8> = image.iter().rev().copied().collect();
                let time = image.iter().map(|&v| v as i64).sum::<i64>() as u64;
                reply.send(&Response::Logits { time, logits: &rev })
            }
            Request::Generate {
                max_new,
                prompt,
                image,
            } => reply.send(&Response::Ids {
                encode: max_new as u64,
                decode: image.len() as u64,
                tokens: prompt.len() as u32,
                ids: prompt,
            }),
            Request::TeacherForce { ids, .. } => {
                for (p, t) in ids.iter().enumerate() {
                    reply.send(&Response::Row {
                        position: p as u16,
                        logits: &[t as i8],
                    })?;
                }
                reply.send(&Response::Done {
                    time: 0,
                    rows: ids.len() as u32,
                })
            }
        }
    }
}

fn request_frame(req: &Request<'_>, seq: u8) -> Vec<u8> {
    let mut p = vec![0u8; MAX_FRAME];
    let n = req.encode(&mut p).unwrap();
    let mut f = vec![0u8; n + OVERHEAD];
    frame::encode(req.ty(), seq, &p[..n], &mut f).unwrap();
    f
}

type Served = (Vec<(u8, u8, Vec<u8>)>, Echo, attn_link::server::Stats);

fn serve(input: &[u8], chunk: usize) -> Served {
    let mut s: Server<Capture, 512> = Server::new(Capture::new(input, chunk));
    let mut h = Echo::default();
    s.run(&mut h).unwrap();
    let stats = s.stats();
    let out = s.into_inner().output;
    (frames(&out), h, stats)
}

fn error_of(f: &(u8, u8, Vec<u8>)) -> Option<(ErrorCode, u32)> {
    match Response::parse(f.0, &f.2).unwrap() {
        Response::Error { code, detail } => Some((code, detail)),
        _ => None,
    }
}

#[test]
fn crc32_matches_the_standard_check_value_and_crc32fast() {
    // The CRC-32/ISO-HDLC check value from the CRC catalogue.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
    let mut rng = Rng(7);
    for n in [1, 2, 3, 64, 1000, 4096] {
        let data = rng.bytes(n);
        assert_eq!(crc32(&data), crc32fast::hash(&data), "len {n}");
    }
}

#[test]
fn frame_layout_is_as_documented() {
    let mut f = [0u8; 32];
    let n = frame::encode(0x42, 9, &[1, 2, 3], &mut f).unwrap();
    assert_eq!(n, 3 + OVERHEAD);
    assert_eq!(&f[..7], &[0xA7, 0x4C, frame::VERSION, 0x42, 9, 3, 0]);
    assert_eq!(&f[7..10], &[1, 2, 3]);
    assert_eq!(
        u32::from_le_bytes(f[10..14].try_into().unwrap()),
        crc32fast::hash(&f[2..10])
    );
    // Too small an output buffer is an error, not a panic.
    assert!(frame::encode(0x42, 9, &[1, 2, 3], &mut [0u8; 13]).is_err());
}

#[test]
fn requests_and_responses_round_trip() {
    let img: Vec<i8> = (-50..50).collect();
    let ids = [3u32, 0, 70_000, u32::MAX];
    let reqs = [
        Request::Info,
        Request::Classify { image: &img },
        Request::Generate {
            max_new: 9,
            prompt: Ids::Words(&ids),
            image: &img,
        },
        Request::TeacherForce {
            ids: Ids::Words(&ids),
            image: &[],
        },
    ];
    for r in reqs {
        let mut p = [0u8; 512];
        let n = r.encode(&mut p).unwrap();
        let back = Request::parse(r.ty(), &p[..n]).unwrap();
        // Compare field by field through a second encoding (Ids::Bytes vs Ids::Words).
        let mut p2 = [0u8; 512];
        let n2 = back.encode(&mut p2).unwrap();
        assert_eq!(&p[..n], &p2[..n2]);
        if let (
            Request::Generate {
                max_new, prompt, ..
            },
            Request::Generate {
                max_new: m2,
                prompt: p2,
                ..
            },
        ) = (r, back)
        {
            assert_eq!(max_new, m2);
            assert_eq!(
                prompt.iter().collect::<Vec<_>>(),
                p2.iter().collect::<Vec<_>>()
            );
        }
        // Generate / TeacherForce: a prompt count longer than the payload is malformed.
        if let Request::TeacherForce { .. } = r {
            assert!(Request::parse(r.ty(), &p[..n - 1]).is_err());
        }
    }
    let resps = [
        Response::Info(Info {
            kind: 2,
            unit: 1,
            max_payload: 4096,
            blob_len: 123_456,
            checksum: 0x1234_5678,
            max_ids: 130,
            name: "digit-reader",
        }),
        Response::Logits {
            time: u64::MAX - 3,
            logits: &img,
        },
        Response::Ids {
            encode: 5,
            decode: 6,
            tokens: 7,
            ids: Ids::Words(&ids),
        },
        Response::Row {
            position: 65_000,
            logits: &img,
        },
        Response::Done { time: 1, rows: 2 },
        Response::Error {
            code: ErrorCode::BadInput,
            detail: 77,
        },
    ];
    for r in resps {
        let mut p = [0u8; 512];
        let n = r.encode(&mut p).unwrap();
        let back = Response::parse(r.ty(), &p[..n]).unwrap();
        let mut p2 = [0u8; 512];
        let n2 = back.encode(&mut p2).unwrap();
        assert_eq!(&p[..n], &p2[..n2]);
        match (r, back) {
            (Response::Info(a), Response::Info(b)) => assert_eq!(a, b),
            (Response::Logits { time, logits }, Response::Logits { time: t, logits: l }) => {
                assert_eq!((time, logits), (t, l))
            }
            (Response::Error { code, detail }, Response::Error { code: c, detail: d }) => {
                assert_eq!((code, detail), (c, d))
            }
            _ => {}
        }
    }
    // Truncated fixed fields, trailing bytes and unknown types are errors.
    assert!(Response::parse(ty::DONE, &[0; 11]).is_err());
    assert!(Response::parse(ty::DONE, &[0; 13]).is_err());
    assert!(Response::parse(ty::IDS, &[0; 21]).is_err());
    assert!(Request::parse(0x33, &[]).is_err());
    assert!(Request::parse(ty::GENERATE, &[1, 0, 5, 0, 1, 2, 3]).is_err());
    // An output buffer too small is an error.
    assert!(Request::Classify { image: &img }
        .encode(&mut [0u8; 10])
        .is_err());
}

#[test]
fn every_request_is_answered_with_its_sequence_number() {
    let img = [1i8, -2, 3];
    let mut input = request_frame(&Request::Info, 1);
    input.extend(request_frame(&Request::Classify { image: &img }, 2));
    input.extend(request_frame(
        &Request::TeacherForce {
            ids: Ids::Words(&[4, 5]),
            image: &[],
        },
        3,
    ));
    for chunk in [1, 3, 64] {
        let (out, h, stats) = serve(&input, chunk);
        assert_eq!(h.handled, 3);
        assert_eq!(stats.served, 3);
        assert_eq!(stats.errors, 0);
        let tys: Vec<(u8, u8)> = out.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(
            tys,
            [
                (ty::INFO_REPLY, 1),
                (ty::LOGITS, 2),
                (ty::ROW, 3),
                (ty::ROW, 3),
                (ty::DONE, 3)
            ]
        );
        match Response::parse(out[1].0, &out[1].2).unwrap() {
            Response::Logits { time, logits } => {
                assert_eq!(logits, &[3, -2, 1]);
                assert_eq!(time, 2);
            }
            r => panic!("{r:?}"),
        }
    }
}

#[test]
fn corrupt_frame_gets_an_error_frame_and_serving_goes_on() {
    let good = request_frame(&Request::Classify { image: &[5, 6] }, 10);
    for flip in 2..good.len() {
        let mut bad = good.clone();
        bad[flip] ^= 0x10;
        let mut input = bad.clone();
        input.extend(request_frame(&Request::Info, 11));
        // A flipped length can make the bad frame swallow the next one: the flush completes it
        // (and the rescan finds the swallowed frame).
        input.extend(vec![0u8; 512]);
        let (out, h, stats) = serve(&input, 7);
        let infos: Vec<_> = out.iter().filter(|f| f.0 == ty::INFO_REPLY).collect();
        assert_eq!(infos.len(), 1, "flip {flip}: {out:?}");
        assert_eq!(infos[0].1, 11);
        let errors: Vec<_> = out.iter().filter_map(error_of).collect();
        assert!(stats.errors >= 1 && !errors.is_empty(), "flip {flip}");
        // The corrupted classify request is never executed as if valid... unless the flipped
        // byte was the sequence number or type, which the CRC also covers: then it is an error too.
        assert_eq!(h.handled, 1, "flip {flip}");
        // The high length byte ^ 0x10 declares 4098 bytes: over the 501 this server takes.
        let expected = if flip == 6 {
            ErrorCode::Oversized
        } else {
            ErrorCode::BadCrc
        };
        assert_eq!(errors[0].0, expected, "flip {flip}");
    }
}

#[test]
fn truncated_frame_then_valid_frames_all_answered_after_the_rescan() {
    let good = request_frame(&Request::Classify { image: &[9; 40] }, 20);
    let mut input = good[..good.len() - 10].to_vec();
    input.extend(request_frame(&Request::Info, 21));
    input.extend(request_frame(&Request::Classify { image: &[1, 2] }, 22));
    input.extend(vec![0u8; 100]);
    let (out, h, stats) = serve(&input, 5);
    let seqs: Vec<(u8, u8)> = out.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(
        seqs,
        [(ty::ERROR, 20), (ty::INFO_REPLY, 21), (ty::LOGITS, 22)]
    );
    assert_eq!(error_of(&out[0]), Some((ErrorCode::BadCrc, 0)));
    assert_eq!(h.handled, 2);
    assert_eq!(stats.served, 2);
    assert_eq!(stats.errors, 1);
}

#[test]
fn oversized_frame_is_refused_at_its_header() {
    let mut input = vec![MAGIC[0], MAGIC[1], frame::VERSION, ty::CLASSIFY, 30];
    input.extend(60_000u16.to_le_bytes());
    input.extend(request_frame(&Request::Info, 31));
    let (out, h, _) = serve(&input, 64);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1, 30);
    assert_eq!(error_of(&out[0]), Some((ErrorCode::Oversized, 60_000)));
    assert_eq!((out[1].0, out[1].1), (ty::INFO_REPLY, 31));
    assert_eq!(h.handled, 1);
    // One byte over the server's capacity (512 - OVERHEAD) too; exactly at it is served.
    let cap = 512 - OVERHEAD;
    let at = request_frame(
        &Request::Classify {
            image: &vec![1; cap],
        },
        40,
    );
    let over = request_frame(
        &Request::Classify {
            image: &vec![1; cap + 1],
        },
        41,
    );
    let mut input = over;
    input.extend(at);
    input.extend(vec![0u8; 512]);
    let (out, _, _) = serve(&input, 64);
    assert_eq!(
        error_of(&out[0]),
        Some((ErrorCode::Oversized, cap as u32 + 1))
    );
    // The rescan of the oversized frame's bytes finds nothing before the next frame: its
    // payload has no sync byte.
    assert_eq!((out[1].0, out[1].1), (ty::ERROR, 40)); // response of cap+8 bytes too large
    assert_eq!(error_of(&out[1]).map(|e| e.0), Some(ErrorCode::TooLarge));
}

#[test]
fn version_unknown_type_and_malformed_payload_are_error_frames() {
    let mut input = Vec::new();
    let mut f = request_frame(&Request::Info, 50);
    f[2] = 9; // version
    let crc = crc32(&f[2..f.len() - 4]);
    let n = f.len();
    f[n - 4..].copy_from_slice(&crc.to_le_bytes());
    input.extend(f);
    let mut p = [0u8; 16];
    let n = frame::encode(0x7F, 51, &[], &mut p).unwrap();
    input.extend(&p[..n]);
    let n = frame::encode(ty::GENERATE, 52, &[1, 0, 2, 0, 1], &mut p).unwrap();
    input.extend(&p[..n]);
    input.extend(request_frame(&Request::Classify { image: &[] }, 53));
    input.extend(request_frame(&Request::Info, 54));
    let (out, h, stats) = serve(&input, 3);
    let got: Vec<_> = out.iter().map(|f| (f.1, error_of(f))).collect();
    assert_eq!(
        got,
        [
            (50, Some((ErrorCode::BadVersion, 9))),
            (51, Some((ErrorCode::UnknownType, 0x7F))),
            (52, Some((ErrorCode::Malformed, ty::GENERATE as u32))),
            (53, Some((ErrorCode::BadInput, 0))),
            (54, None),
        ]
    );
    assert_eq!(h.handled, 2);
    assert_eq!(stats.served, 1);
    assert_eq!(stats.errors, 4);
}

/// Random streams of valid frames, corrupt frames, truncated frames, oversized headers and
/// garbage: every valid frame is answered exactly once, in order, and the state survives
/// (the handler saw exactly the valid requests).
#[test]
fn interleaved_chaos_every_valid_request_answered_once_in_order() {
    let mut rng = Rng(0x5eed);
    for round in 0..200 {
        let mut input = Vec::new();
        let mut valid = Vec::new();
        let mut seq = 0u8;
        for _ in 0..rng.below(12) + 1 {
            seq = seq.wrapping_add(1);
            let n = rng.below(60);
            let img: Vec<i8> = rng.bytes(n).iter().map(|&b| b as i8).collect();
            let img: Vec<i8> = if img.is_empty() { vec![1] } else { img };
            let f = request_frame(&Request::Classify { image: &img }, seq);
            match rng.below(5) {
                0 => {
                    let mut bad = f.clone();
                    let i = 2 + rng.below(bad.len() - 2);
                    bad[i] ^= 1 << rng.below(8);
                    input.extend(bad);
                }
                1 => input.extend(&f[..rng.below(f.len())]),
                2 => {
                    // Garbage without sync bytes (so it cannot fake a header), then the frame.
                    let n = rng.below(30);
                    let g: Vec<u8> = rng
                        .bytes(n)
                        .into_iter()
                        .map(|b| if b == MAGIC[0] { 0 } else { b })
                        .collect();
                    input.extend(g);
                    input.extend(&f);
                    valid.push((seq, img));
                }
                3 => {
                    input.extend([MAGIC[0], MAGIC[1], 1, ty::INFO, seq, 0xFF, 0xFF]);
                }
                _ => {
                    input.extend(&f);
                    valid.push((seq, img));
                }
            }
        }
        input.extend(vec![0u8; 512]);
        let chunk = 1 + rng.below(70);
        let (out, h, stats) = serve(&input, chunk);
        let answers: Vec<_> = out.iter().filter(|f| f.0 == ty::LOGITS).collect();
        assert_eq!(answers.len(), valid.len(), "round {round}");
        for (a, (seq, img)) in answers.iter().zip(&valid) {
            assert_eq!(a.1, *seq, "round {round}");
            let rev: Vec<i8> = img.iter().rev().copied().collect();
            match Response::parse(a.0, &a.2).unwrap() {
                Response::Logits { logits, .. } => assert_eq!(logits, &rev[..]),
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(h.handled as usize, valid.len(), "round {round}");
        assert_eq!(stats.served as usize, valid.len());
        assert_eq!(
            stats.errors as usize,
            out.len() - valid.len(),
            "round {round}: every other frame is an error frame"
        );
    }
}

#[test]
fn decoder_never_holds_more_than_its_capacity() {
    let mut rng = Rng(99);
    let mut d = Decoder::<64>::new();
    for _ in 0..100_000 {
        let b = if rng.below(4) == 0 {
            MAGIC[rng.below(2)]
        } else {
            rng.next() as u8
        };
        d.push(b, &mut |ev| {
            if let Event::Frame(f) = ev {
                assert!(f.payload.len() <= 64 - OVERHEAD);
            }
        });
        assert!(d.pending() <= 64);
    }
}

fn echo_server() -> (std::thread::JoinHandle<Echo>, Client<common::PipeEnd>) {
    let (dev, host) = common::pipe();
    let t = std::thread::spawn(move || {
        let mut s: Server<_, MAX_FRAME> = Server::new(dev);
        let mut h = Echo::default();
        s.run(&mut h).unwrap();
        h
    });
    (t, Client::new(host, Duration::from_secs(5)))
}

#[test]
fn client_round_trips_and_reports_device_errors() {
    let (t, mut c) = echo_server();
    let info = c.info().unwrap();
    assert_eq!(info.name, "echo");
    assert_eq!(info.checksum, 0xDEAD_BEEF);
    let (l, time) = c.classify(&[1, 2, 3]).unwrap();
    assert_eq!((l, time), (vec![3, 2, 1], 6));
    let g = c.generate(&[7, 8], 3, &[1; 5]).unwrap();
    assert_eq!((g.ids, g.encode, g.decode, g.tokens), (vec![7, 8], 3, 5, 2));
    let (rows, _) = c.teacher_force(&[1, 2, 3], &[]).unwrap();
    assert_eq!(rows, vec![vec![1], vec![2], vec![3]]);
    match c.classify(&[]) {
        Err(ClientError::Device { code, .. }) => assert_eq!(code, ErrorCode::BadInput),
        r => panic!("{r:?}"),
    }
    // Garbage and a corrupt frame on the line: the next request still works.
    c.send_raw(&[MAGIC[0], 0, 1, 2, 3]).unwrap();
    let mut bad = request_frame(&Request::Info, 200);
    let n = bad.len();
    bad[n - 1] ^= 0xFF;
    c.send_raw(&bad).unwrap();
    assert_eq!(c.info().unwrap().blob_len, 6);
    drop(c);
    assert_eq!(t.join().unwrap().handled, 6);
}

#[test]
fn client_times_out_on_silence_and_on_garbage() {
    // Nobody answers.
    let (_dev, host) = common::pipe();
    let mut c = Client::new(host, Duration::from_millis(200));
    match c.info() {
        Err(e @ ClientError::Timeout { garbage: 0, .. }) => {
            assert!(e.to_string().contains("did not answer"), "{e}")
        }
        r => panic!("{r:?}"),
    }
    // Something answers garbage.
    let (mut dev, host) = common::pipe();
    let mut c = Client::new(host, Duration::from_millis(300));
    let t = std::thread::spawn(move || {
        use embedded_io::{Read, Write};
        let mut b = [0u8; 64];
        let _ = dev.read(&mut b);
        dev.write_all(b"Hello from a board that speaks another protocol\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    match c.info() {
        Err(e @ ClientError::Timeout { .. }) => {
            assert!(e.to_string().contains("garbage"), "{e}")
        }
        r => panic!("{r:?}"),
    }
    t.join().unwrap();
}

#[test]
fn client_resynchronises_a_device_stuck_in_a_truncated_frame() {
    let (t, mut c) = echo_server();
    // A header declaring 100 bytes, and nothing more: the device waits for the rest.
    c.send_raw(&[MAGIC[0], MAGIC[1], frame::VERSION, ty::CLASSIFY, 1, 100, 0])
        .unwrap();
    c.set_timeout(Duration::from_millis(300));
    // The Info request is swallowed by the partial frame: no answer in time.
    assert!(matches!(c.info(), Err(ClientError::Timeout { .. })));
    // The next request is preceded by a flush: the device answers again.
    c.set_timeout(Duration::from_secs(5));
    let info = c.info().unwrap();
    assert_eq!(info.name, "echo");
    drop(c);
    // The swallowed Info was recovered by the rescan and answered late (dropped by the
    // client as stale), then the new one: two requests handled.
    assert_eq!(t.join().unwrap().handled, 2);
}
