/// A 64-bit hash over 32-byte stripes (four multiply-rotate lanes, as xxHash64 does): several
/// GB/s, so checking a checkpoint of hundreds of MB costs a fraction of a second. It detects
/// corruption (board checkpoints) and tells large bodies apart (snapshot ETags); it is not a
/// cryptographic digest.
public struct StripeHash: Sendable {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private var lanes: (UInt64, UInt64, UInt64, UInt64) = (p1 &+ p2, p2, 0, 0 &- p1)
    private var pending: [UInt8] = []
    private var total: UInt64 = 0

    private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var a = acc &+ input &* p2
        a = (a << 31) | (a >> 33)
        return a &* p1
    }

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        total &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(32 - pending.count, bytes.count)
            pending += bytes[0..<take]
            offset = take
            if pending.count == 32 {
                pending.withUnsafeBytes { stripe($0, at: 0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while offset + 32 <= bytes.count {
            stripe(bytes, at: offset)
            offset += 32
        }
        if offset < bytes.count { pending += bytes[offset...] }
    }

    private mutating func stripe(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        lanes.0 = Self.round(lanes.0, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        lanes.1 = Self.round(lanes.1, bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        lanes.2 = Self.round(lanes.2, bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
        lanes.3 = Self.round(lanes.3, bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
    }

    public func finish() -> UInt64 {
        var h = ((lanes.0 << 1) | (lanes.0 >> 63)) &+ ((lanes.1 << 7) | (lanes.1 >> 57))
            &+ ((lanes.2 << 12) | (lanes.2 >> 52)) &+ ((lanes.3 << 18) | (lanes.3 >> 46))
        h = (h ^ Self.round(0, lanes.0)) &* Self.p1
        h = (h ^ Self.round(0, lanes.1)) &* Self.p1
        h = (h ^ Self.round(0, lanes.2)) &* Self.p1
        h = (h ^ Self.round(0, lanes.3)) &* Self.p1
        h &+= total
        // The last 0…31 bytes, eight at a time, zero-padded.
        var tail = pending
        tail += [UInt8](repeating: 0, count: (8 - tail.count % 8) % 8)
        tail.withUnsafeBytes { t in
            for offset in stride(from: 0, to: t.count, by: 8) {
                h ^= Self.round(0, t.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                h = ((h << 27) | (h >> 37)) &* Self.p1 &+ Self.p3
            }
        }
        h ^= h >> 33
        h &*= Self.p2
        h ^= h >> 29
        h &*= Self.p3
        return h ^ (h >> 32)
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var c = StripeHash()
        c.update(bytes)
        return c.finish()
    }
}

extension StripeHash {
    /// The hash of `bytes` as 16 hex digits.
    public static func hex64(_ bytes: [UInt8]) -> String {
        hex(bytes.withUnsafeBytes { hash($0) })
    }

    /// A hash as 16 hex digits.
    public static func hex(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
