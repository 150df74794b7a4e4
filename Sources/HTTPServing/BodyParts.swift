public import NIOCore

/// A response body kept in parts (a large snapshot body re-encoded only where it changed),
/// sent as they are and joined only when one buffer is needed.
extension Array where Element == ByteBuffer {
    /// The bytes of every part.
    public var readableBytes: Int { reduce(0) { $0 + $1.readableBytes } }

    /// The parts in one buffer (the only part itself when there is one).
    public func joined() -> ByteBuffer {
        if count == 1 { return self[0] }
        var out = ByteBufferAllocator().buffer(capacity: readableBytes)
        for part in self { out.writeImmutableBuffer(part) }
        return out
    }
}
