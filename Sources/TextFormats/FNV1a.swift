/// FNV-1a hashes: stable across runs and machines (unlike `Hasher`), for ETags, cache file
/// names and the colour of a name (which the web page's script computes too).
public enum FNV1a {
    public static let offset64: UInt64 = 0xCBF2_9CE4_8422_2325

    /// The hash of `bytes`, or of what was hashed into `hash` followed by `bytes`.
    @inlinable
    public static func hash64<Bytes: Sequence<UInt8>>(_ bytes: Bytes, continuing hash: UInt64 = offset64) -> UInt64 {
        var hash = hash
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    @inlinable
    public static func hash32<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }

    /// The 64-bit hash as 16 lower-case hex digits.
    public static func hex64<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        let hex = String(hash64(bytes), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
