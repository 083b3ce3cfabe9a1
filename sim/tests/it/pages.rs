//! The client's page cache for one file (`sim::nfs::pages`).

use sim::nfs::pages::Pages;

/// A flush takes its dirty extents and sends them one WRITE at a time. A fill
/// by another process of the same host in between (a reader that found the
/// clean data stale) must keep the extents not yet sent, as Linux keeps pages
/// under writeback, and must not shrink the local size to the server's
/// partial one. (`two-servers --seed 34` indexed past the shrunken image.)
#[test]
fn a_fill_during_writeback_keeps_the_extents_not_yet_sent() {
    let mut p = Pages::default();
    p.write(0, &[1u8; 40_000]);
    assert_eq!(p.take_dirty(), vec![(0, 40_000)]);
    p.written(0, 8192);
    // The server holds the first chunk only.
    p.fill(vec![1u8; 8192], 7);
    assert_eq!(p.size, 40_000);
    assert_eq!(p.bytes(32_768, 40_000), &[1u8; 7232][..]);
    // A flush that fails leaves what it had not sent dirty again.
    p.writeback_failed();
    assert!(p.has_dirty());
    assert_eq!(p.take_dirty(), vec![(8192, 40_000)]);
    p.written(8192, 40_000);
    p.fill(vec![1u8; 40_000], 8);
    assert_eq!(p.size, 40_000);
    assert!(!p.has_dirty());
}
