//! The property checked by the `link_frames` fuzz target, shared with the seed replay in
//! `crates/attn-link/tests/fuzz_seeds.rs`: any bytes on the serial link, the attn-link server
//! (serving a real model blob picked by the first byte) answers only whole, valid frames,
//! never panics, and still serves afterwards — a valid `Info` request sent after the bytes
//! (and a flush that completes any partial frame) is answered with the model's info.

use attn_link::frame::{self, Decoder, Event, OVERHEAD};
use attn_link::model::{Clock, ModelHandler, Workspace};
use attn_link::msg::{ty, Request, Response};
use attn_link::Server;
use core_attn::blob::Blob;
use core_attn::model::host::OwnedBuffers;

/// Frames of at most 1024 bytes (a 28x28 image fits): a small device.
const N: usize = 1024;

struct Port {
    input: std::collections::VecDeque<u8>,
    output: Vec<u8>,
}

impl embedded_io::ErrorType for Port {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        // Odd chunk sizes: frames straddle reads.
        let n = buf.len().min(13).min(self.input.len());
        for (s, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *s = b;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct Ticks(u64);

impl Clock for Ticks {
    fn now(&mut self) -> u64 {
        self.0 += 3;
        self.0
    }
    fn unit(&self) -> &'static str {
        "cycles"
    }
}

static BLOBS: [&[u8]; 3] = [
    include_bytes!("../seeds/blob/vit.tatn"),
    include_bytes!("../seeds/blob/gpt2.tatn"),
    include_bytes!("../seeds/blob/encdec.tatn"),
];

/// The check (see the target's docs); panics on a violated property.
pub fn check(data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    let raw = BLOBS[which as usize % 3];
    // Blob::parse needs 4-byte alignment: a Vec<u32> viewed as bytes.
    let mut words = vec![0u32; raw.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..raw.len()].copy_from_slice(raw);
    let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..raw.len()];
    let blob = Blob::parse(bytes).expect("seed blob parses");
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (buffers, mut caches, mut cross) = owned.split(&blob).expect("buffers");
    let mut prompt = vec![0u32; 40];
    let mut ids = vec![0u32; 48];
    let ws = Workspace {
        buffers,
        caches: &mut caches,
        cross: &mut cross,
        prompt: &mut prompt,
        ids: &mut ids,
    };
    let mut h = ModelHandler::new(bytes, "fuzz", N - OVERHEAD, ws, Ticks(0)).expect("handler");

    // The fuzz bytes, then a flush of zeros (completes any partial frame), then Info.
    let mut input: Vec<u8> = data.to_vec();
    input.extend(std::iter::repeat_n(0u8, N));
    let mut info = [0u8; 16];
    let n = frame::encode(ty::INFO, 0xEE, &[], &mut info).expect("info frame");
    input.extend(&info[..n]);
    let port = Port {
        input: input.into_iter().collect(),
        output: Vec::new(),
    };
    let mut s: Server<Port, N> = Server::new(port);
    s.run(&mut h).expect("in-memory port never fails");
    let stats = s.stats();
    let out = s.into_inner().output;

    // Everything written is whole, valid frames whose payloads parse.
    let mut d = Box::new(Decoder::<{ attn_link::MAX_FRAME }>::new());
    let mut frames = Vec::new();
    for &b in &out {
        d.push(b, &mut |ev| match ev {
            Event::Frame(f) => {
                Response::parse(f.ty, f.payload).expect("server wrote a malformed response");
                frames.push((f.ty, f.seq, f.payload.to_vec()));
            }
            e => panic!("server wrote a bad frame: {e:?}"),
        });
    }
    assert_eq!(d.skipped(), 0);
    assert_eq!(d.pending(), 0);
    assert!(frames.len() as u64 >= u64::from(stats.served) + u64::from(stats.errors));
    // The last frame answers the trailing Info: the server is still serving the same model.
    let (t, seq, payload) = frames.last().expect("the trailing Info is answered");
    assert_eq!((*t, *seq), (ty::INFO_REPLY, 0xEE));
    match Response::parse(*t, payload) {
        Ok(Response::Info(i)) => {
            assert_eq!(i.blob_len as usize, raw.len());
            assert_eq!(i.name, "fuzz");
        }
        r => panic!("{r:?}"),
    }
    // Requests parse the same way the server saw them (smoke: any payload parses or errors).
    let _ = Request::parse(which, data);
}
