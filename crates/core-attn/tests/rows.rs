//! `Rows::get_row` and `Rows::iter` (the panic-free row accessors the attention kernels use) agree
//! with `Rows::row` on contiguous, strided and column views, including the last row (which
//! may end the data) and out-of-range indices.

use core_attn::tensor::Rows;

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
