//! Shared by the fuzz targets.
#![allow(dead_code)]

/// Copy `data` into 4-byte-aligned storage (the device keeps blobs 16-byte aligned in flash, the
/// host in a `Vec<u32>`), returning the storage; view it with `bytes(&words, data.len())`.
pub fn aligned(data: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; data.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..data.len()].copy_from_slice(data);
    words
}

/// The first `len` bytes of `words`.
pub fn bytes(words: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(words)[..len]
}
