//! Malicious and malformed archives are refused with the right code.

use frameos_core::ErrorCode;
use frameos_package::{Limits, archive};
use tar::{EntryType, Header};

use crate::support::{self, Entry, dir, file, special, targz};

fn code_of(bytes: &[u8], limits: &Limits) -> ErrorCode {
    archive::inspect(bytes, limits).unwrap_err().code()
}

fn unsafe_code(entries: &[Entry<'_>]) -> ErrorCode {
    code_of(&targz(entries), &Limits::default())
}

#[test]
fn traversal_and_absolute_paths_are_unsafe() {
    for name in ["../x", "/etc/x", "a/../../x", "./../x", "a/.."] {
        assert_eq!(
            unsafe_code(&[file(name, b"x")]),
            ErrorCode::UnsafeArchive,
            "{name}"
        );
    }
    assert_eq!(unsafe_code(&[dir("../d/")]), ErrorCode::UnsafeArchive);
}

#[test]
fn odd_components_are_unsafe() {
    for name in ["a//b", "a/./b", "a\\b", "dir/"] {
        assert_eq!(
            unsafe_code(&[file(name, b"x")]),
            ErrorCode::UnsafeArchive,
            "{name}"
        );
    }
}

#[test]
fn links_devices_and_fifos_are_unsafe() {
    let cases = [
        special("link", EntryType::Symlink, "/etc/passwd"),
        special("hard", EntryType::Link, "index.js"),
        special("fifo", EntryType::Fifo, ""),
        special("tty", EntryType::Char, ""),
        special("disk", EntryType::Block, ""),
        special("label", EntryType::new(b'V'), ""),
    ];
    for entry in cases {
        let error = archive::inspect(&targz(&[entry]), &Limits::default()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::UnsafeArchive, "{error}");
    }
}

#[test]
fn sparse_files_are_unsafe() {
    let mut header = support::header(&special("sparse", EntryType::GNUSparse, ""));
    header.as_gnu_mut().unwrap().set_real_size(0);
    header.set_cksum();
    let mut tar = Vec::new();
    support::append_raw(&mut tar, &header, b"");
    tar.extend_from_slice(&[0; 1024]);
    assert_eq!(
        code_of(&support::gzip(&tar), &Limits::default()),
        ErrorCode::UnsafeArchive
    );
}

#[test]
fn the_message_names_the_offending_path() {
    let error = archive::inspect(
        &targz(&[special("evil-link", EntryType::Symlink, "/")]),
        &Limits::default(),
    )
    .unwrap_err();
    let message = frameos_core::Error::from(error).message;
    assert!(
        message.contains("evil-link") && message.contains("symbolic link"),
        "{message}"
    );
}

#[test]
fn setuid_setgid_and_sticky_bits_are_unsafe() {
    for mode in [0o4755, 0o2755, 0o1777] {
        let mut entry = file("tool", b"x");
        entry.mode = mode;
        assert_eq!(unsafe_code(&[entry]), ErrorCode::UnsafeArchive, "{mode:o}");
    }
}

#[test]
fn duplicate_and_conflicting_paths_are_unsafe() {
    assert_eq!(
        unsafe_code(&[file("a.js", b"1"), file("./a.js", b"2")]),
        ErrorCode::UnsafeArchive
    );
    assert_eq!(
        unsafe_code(&[file("a", b"1"), file("a/b", b"2")]),
        ErrorCode::UnsafeArchive
    );
    assert_eq!(
        unsafe_code(&[dir("a/"), file("a", b"1")]),
        ErrorCode::UnsafeArchive
    );
    // The same directory twice is harmless.
    let ok = targz(&[dir("a/"), dir("./a/"), file("a/b", b"2")]);
    assert!(archive::inspect(&ok, &Limits::default()).is_ok());
}

#[test]
fn gnu_long_names_are_judged_too() {
    let mut tar = Vec::new();
    let mut long = Header::new_gnu();
    long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    long.set_entry_type(EntryType::GNULongName);
    long.set_size(9);
    long.set_cksum();
    support::append_raw(&mut tar, &long, b"../evil\0\0");
    support::append_raw(&mut tar, &support::header(&file("harmless", b"x")), b"x");
    tar.extend_from_slice(&[0; 1024]);
    assert_eq!(
        code_of(&support::gzip(&tar), &Limits::default()),
        ErrorCode::UnsafeArchive
    );
}

#[test]
fn pax_path_overrides_are_judged_too() {
    let mut tar = Vec::new();
    let record = b"13 path=../x\n";
    let mut pax = Header::new_ustar();
    pax.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
    pax.set_entry_type(EntryType::XHeader);
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    support::append_raw(&mut tar, &pax, record);
    support::append_raw(&mut tar, &support::header(&file("harmless", b"x")), b"x");
    tar.extend_from_slice(&[0; 1024]);
    assert_eq!(
        code_of(&support::gzip(&tar), &Limits::default()),
        ErrorCode::UnsafeArchive
    );
}

#[test]
fn too_many_entries_is_too_large() {
    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let names = ["a", "b", "c", "d"];
    let entries: Vec<_> = names.iter().map(|n| file(n, b"x")).collect();
    assert_eq!(
        code_of(&targz(&entries), &limits),
        ErrorCode::PackageTooLarge
    );
    assert!(archive::inspect(&targz(&entries[..3]), &limits).is_ok());
}

#[test]
fn a_gzip_bomb_is_too_large_and_is_not_read_into_memory() {
    // 60 MiB of zeros compresses to well under the 10 MiB compressed limit.
    let mut header = support::header(&file("bomb.bin", b""));
    header.set_size(60 << 20);
    header.set_cksum();
    let bomb = support::gzip_with_zeros(header.as_bytes(), (60 << 20) + 1024);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let started = std::time::Instant::now();
    let error = archive::inspect(&bomb, &Limits::default()).unwrap_err();
    assert_eq!(error.code(), ErrorCode::PackageTooLarge, "{error}");
    // Refused on the declared size, before decompressing the contents.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn bytes_hidden_behind_the_end_of_the_tar_count_too() {
    let limits = Limits {
        max_uncompressed_bytes: 1 << 20,
        max_entries: 10,
        ..Limits::default()
    };
    // Honest headers, then megabytes of padding the headers never mention.
    let tar = support::tar(&[file("a.js", b"x")]);
    let bomb = support::gzip_with_zeros(&tar, 8 << 20);
    assert_eq!(code_of(&bomb, &limits), ErrorCode::PackageTooLarge);
}

#[test]
fn many_files_summing_above_the_limit_are_too_large() {
    let limits = Limits {
        max_uncompressed_bytes: 1000,
        ..Limits::default()
    };
    let data = [7u8; 400];
    let entries = [file("a", &data), file("b", &data), file("c", &data)];
    assert_eq!(
        code_of(&targz(&entries), &limits),
        ErrorCode::PackageTooLarge
    );
}

#[test]
fn compressed_size_is_checked_first() {
    let limits = Limits {
        max_compressed_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(code_of(&[0u8; 101], &limits), ErrorCode::PackageTooLarge);
}

#[test]
fn non_gzip_non_tar_and_truncated_input_is_invalid() {
    let limits = Limits::default();
    assert_eq!(code_of(b"hello, world", &limits), ErrorCode::InvalidPackage);
    assert_eq!(code_of(b"", &limits), ErrorCode::InvalidPackage);
    let text = support::gzip(&b"just some text, not a tar archive\n".repeat(40));
    assert_eq!(code_of(&text, &limits), ErrorCode::InvalidPackage);
    assert_eq!(
        code_of(&support::gzip(b""), &limits),
        ErrorCode::InvalidPackage
    );

    let good = support::good_package();
    for cut in [10, good.len() / 2, good.len() - 4] {
        assert_eq!(
            code_of(&good[..cut], &limits),
            ErrorCode::InvalidPackage,
            "cut at {cut}"
        );
    }
    let mut corrupt = good.clone();
    let last = corrupt.len() - 6; // inside the CRC of the gzip trailer
    corrupt[last] ^= 0xff;
    assert_eq!(code_of(&corrupt, &limits), ErrorCode::InvalidPackage);
}

#[test]
fn a_bad_header_checksum_is_invalid() {
    let mut tar = support::tar(&[file("a.js", b"x")]);
    tar[148] ^= 1; // the checksum field
    assert_eq!(
        code_of(&support::gzip(&tar), &Limits::default()),
        ErrorCode::InvalidPackage
    );
}
