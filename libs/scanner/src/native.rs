//! Native code shipped in a package, by name or by executable magic bytes.

const NATIVE_EXTENSIONS: &[&str] = &["node", "so", "dylib", "dll"];

/// True for native libraries/executables, whatever the file claims to be.
pub(crate) fn is_native(path: &str, contents: &[u8]) -> bool {
    has_native_name(path) || is_elf(contents) || is_mach_o(contents) || is_pe(contents)
}

fn has_native_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let mut parts = name.split('.').skip(1);
    // "libfoo.so.1.2" is a shared object too: any extension after the first dot counts.
    parts.any(|extension| NATIVE_EXTENSIONS.contains(&extension))
}

fn is_elf(contents: &[u8]) -> bool {
    contents.starts_with(b"\x7fELF")
}

fn is_mach_o(contents: &[u8]) -> bool {
    let Some(magic) = contents.get(..4) else {
        return false;
    };
    match magic {
        [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => true,
        // Universal binaries share CAFEBABE with Java class files; a Mach-O follows it with a
        // small architecture count where Java has its class-file version (45 and up).
        [0xca, 0xfe, 0xba, 0xbe] => contents
            .get(4..8)
            .is_some_and(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) < 30),
        _ => false,
    }
}

/// A DOS stub ("MZ") whose header points at a "PE\0\0" signature.
fn is_pe(contents: &[u8]) -> bool {
    if !contents.starts_with(b"MZ") {
        return false;
    }
    let Some(offset) = contents.get(0x3c..0x40) else {
        return false;
    };
    let offset = u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize;
    offset
        .checked_add(4)
        .and_then(|end| contents.get(offset..end))
        .is_some_and(|signature| signature == b"PE\0\0")
}
