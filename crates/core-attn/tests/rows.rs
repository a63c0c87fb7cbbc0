//! `Rows::get_row` and `Rows::iter` (the panic-free row accessors the attention kernels use) agree
//! with `Rows::row` on contiguous, strided and column views, including the last row (which
//! may end the data) and out-of-range indices.

use core_attn::tensor::Rows;
use core_attn::Error;

fn check(r: Rows<'_>) {
    let rows: Vec<&[i8]> = r.iter().collect();
    assert_eq!(rows.len(), r.rows());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(*row, r.row(i));
        assert_eq!(r.get_row(i), Some(r.row(i)));
        assert_eq!(row.len(), r.width());
    }
    assert_eq!(r.get_row(r.rows()), None);
    assert_eq!(r.get_row(usize::MAX), None);
}

#[test]
fn get_and_iter_match_row() {
    let data: Vec<i8> = (0..60).map(|x| x as i8).collect();
    check(Rows::contiguous(&data, 6).unwrap());
    check(Rows::contiguous(&data[..0], 6).unwrap());
    // A fused QKV layout: three views of width 4, stride 12; the V view's last row ends the
    // data exactly.
    for offset in [0, 4, 8] {
        let r = Rows::strided(&data, offset, 5, 4, 12).unwrap();
        check(r);
        check(r.columns(1, 2).unwrap());
        check(r.columns(0, 4).unwrap());
    }
    // Fewer rows than the data holds.
    check(Rows::strided(&data, 3, 2, 5, 7).unwrap());
    check(Rows::strided(&data, 0, 0, 5, 7).unwrap());
    check(Rows::EMPTY);
}

/// Shapes whose bounds overflow `usize` are refused, not wrapped into a small bound that the
/// data would satisfy.
#[test]
fn overflowing_shapes_are_refused() {
    let data = [0i8; 16];
    let huge = usize::MAX / 2 + 1;
    // (rows − 1)·stride wraps to 0 here: 2·(MAX/2 + 1) = MAX + 1.
    assert!(matches!(
        Rows::strided(&data, 0, 3, 1, huge),
        Err(Error::BufferTooSmall {
            needed: usize::MAX,
            available: 16,
            ..
        })
    ));
    assert!(Rows::strided(&data, usize::MAX, 1, 1, 1).is_err());
    assert!(Rows::strided(&data, 1, 1, usize::MAX, usize::MAX).is_err());
    let r = Rows::contiguous(&data, 4).unwrap();
    assert!(r.columns(2, usize::MAX - 1).is_err());
    assert!(r.columns(usize::MAX, 2).is_err());
}
