/// Lookup structures built once at open from a full (validating) walk of the tree.
///
/// IPv4: the flat partition of `::ffff:0:0/96` by deepest matching network, cut into 65,536
/// buckets by the top 16 bits; each bucket is a sorted run of 16-bit interval starts, searched
/// by binary search. An entry stores the network's properties (packed in one word) and its
/// depth, so a lookup touches the bucket table, a few bytes of starts and one entry, never the
/// tree or the network records.
///
/// IPv6: the same on the top 64 bits for networks of length ≤ 64, bucketed by the top
/// `ipv6BucketBits` bits. A /64 containing longer networks is marked `fallback`, and so is
/// `::/64` (home of the IPv4 mapping); those lookups walk the tree.
/// Interval starts (keys) with their values, as collected at open.
protocol IntervalKeys {
    var keys: [UInt64] { get }
    var values: [UInt64] { get }
    var depths: [UInt8] { get }
}

final class LookupIndex: @unchecked Sendable {
    static let noMatch: UInt8 = 0xFF
    static let fallback: UInt8 = 0xFE
    static let ipv6BucketBits = 20

    private let storage: DatabaseStorage
    private let nodeOffset: Int
    private let nodeCount: Int
    private let networkOffset: Int

    private let v4Buckets: UnsafeMutableBufferPointer<UInt32>
    private let v4Starts: UnsafeMutableBufferPointer<UInt16>
    private let v4Values: UnsafeMutableBufferPointer<UInt64>
    private let v4Depths: UnsafeMutableBufferPointer<UInt8>

    private let v6Buckets: UnsafeMutableBufferPointer<UInt32>
    private let v6Starts: UnsafeMutableBufferPointer<UInt64>
    private let v6Values: UnsafeMutableBufferPointer<UInt64>
    private let v6Depths: UnsafeMutableBufferPointer<UInt8>

    /// Number of IPv4 and IPv6 intervals (for diagnostics).
    let ipv4IntervalCount: Int
    let ipv6IntervalCount: Int

    init(storage: DatabaseStorage, nodeOffset: Int, nodeCount: Int, networkOffset: Int, networkCount: Int) throws(LocationDatabaseError) {
        self.storage = storage
        self.nodeOffset = nodeOffset
        self.nodeCount = nodeCount
        self.networkOffset = networkOffset
        storage.adviseSequential()

        func properties(_ record: UInt32) -> UInt64 {
            let base = networkOffset + Int(record) * Format.networkRecordSize
            return UInt64(storage.u16(base)) << 48 | UInt64(storage.u16(base + 8)) << 32 | UInt64(storage.u32(base + 4))
        }

        // Interval starts as keys: the IPv4 address for IPv4, the top 64 bits for IPv6.
        struct KeySink: IntervalSink, IntervalKeys {
            var keys: [UInt64] = []
            var values: [UInt64] = []
            var depths: [UInt8] = []
            let ipv4: Bool
            init(ipv4: Bool, capacity: Int) {
                self.ipv4 = ipv4
                keys.reserveCapacity(capacity)
                values.reserveCapacity(capacity)
                depths.reserveCapacity(capacity)
            }
            mutating func interval(first: Address128, last: Address128, value: UInt64, depth: UInt8) {
                keys.append(ipv4 ? first.low & 0xFFFF_FFFF : first.high)
                values.append(value)
                depths.append(depth)
            }
        }

        var v4 = IntervalSweep(first: .ipv4First, last: .ipv4Last, baseValue: 0, baseDepth: Self.noMatch,
                               sink: KeySink(ipv4: true, capacity: 2 * networkCount + 2))
        var v6 = IntervalSweep(first: .zero, last: .max, baseValue: 0, baseDepth: Self.noMatch,
                               sink: KeySink(ipv4: false, capacity: 1024))
        var cursor = TreeCursor(storage: storage, nodeOffset: nodeOffset, nodeCount: nodeCount, networkCount: networkCount, validating: true)
        var lastFallback: UInt64? = nil
        while let network = try cursor.next() {
            let value = properties(network.record)
            let depth = network.depth
            let first = network.address
            let last = first.lastAddress(depth)
            if depth <= 64 {
                v6.add(first: first, last: last, value: value, depth: UInt8(depth))
            } else if lastFallback != first.high {
                // Longer than /64: that /64 is answered by walking the tree (marked once).
                v6.add(first: Address128(high: first.high, low: 0), last: Address128(high: first.high, low: .max), value: 0, depth: Self.fallback)
                lastFallback = first.high
            }
            if depth >= 96, first.isIPv4Mapped {
                v4.add(first: first, last: last, value: value, depth: UInt8(depth))
            } else if depth < 96, last >= .ipv4Last, first <= .ipv4First {
                // A network above ::ffff:0:0/96 answers for IPv4 addresses nothing deeper covers.
                v4.setBase(value: value, depth: UInt8(depth))
            }
        }
        v4.finish()
        v6.finish()

        ipv4IntervalCount = v4.sink.keys.count
        ipv6IntervalCount = v6.sink.keys.count
        (v4Buckets, v4Starts, v4Values, v4Depths) = Self.bucketize(v4.sink, bucketBits: 16, keyBits: 32, start: { UInt16(truncatingIfNeeded: $0) })
        (v6Buckets, v6Starts, v6Values, v6Depths) = Self.directory(v6.sink, bucketBits: Self.ipv6BucketBits)
    }

    deinit {
        for b in [v4Buckets, v6Buckets] { b.deallocate() }
        v4Starts.deallocate(); v6Starts.deallocate()
        v4Values.deallocate(); v6Values.deallocate()
        v4Depths.deallocate(); v6Depths.deallocate()
    }

    /// Cuts sorted intervals (covering the whole key space) into buckets: for each bucket, the
    /// interval containing the bucket's first key (stored with start 0) and every interval that
    /// starts inside the bucket.
    private static func bucketize<Sink: IntervalKeys, Start: FixedWidthInteger>(
        _ intervals: Sink, bucketBits: Int, keyBits: Int, start: (UInt64) -> Start
    ) -> (UnsafeMutableBufferPointer<UInt32>, UnsafeMutableBufferPointer<Start>, UnsafeMutableBufferPointer<UInt64>, UnsafeMutableBufferPointer<UInt8>) {
        let bucketCount = 1 << bucketBits
        let shift = UInt64(keyBits - bucketBits)
        let withinMask: UInt64 = shift == 64 ? .max : (1 << shift) - 1
        let keys = intervals.keys
        var starts: [Start] = [], values: [UInt64] = [], depths: [UInt8] = []
        starts.reserveCapacity(intervals.keys.count + bucketCount)
        values.reserveCapacity(intervals.keys.count + bucketCount)
        depths.reserveCapacity(intervals.keys.count + bucketCount)
        let buckets = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: bucketCount + 1)
        var j = 0
        for b in 0..<bucketCount {
            buckets[b] = UInt32(starts.count)
            let bucketFirst = UInt64(b) << shift
            while j + 1 < keys.count, keys[j + 1] <= bucketFirst { j += 1 }
            if !keys.isEmpty {
                starts.append(0)
                values.append(intervals.values[j])
                depths.append(intervals.depths[j])
            }
            var k = j + 1
            while k < keys.count, keys[k] >> shift == UInt64(b) {
                starts.append(start(keys[k] & withinMask))
                values.append(intervals.values[k])
                depths.append(intervals.depths[k])
                k += 1
            }
        }
        buckets[bucketCount] = UInt32(starts.count)
        func copy<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: Swift.max(array.count, 1))
            _ = buffer.initialize(from: array)
            return buffer
        }
        return (buckets, copy(starts), copy(values), copy(depths))
    }

    /// For IPv6: full 64-bit interval starts, no copies; bucket `b` holds the index of the
    /// interval containing the bucket's first key, so the answer for any key of bucket `b` lies
    /// between entries `buckets[b]` and `buckets[b + 1]` inclusive.
    private static func directory<Sink: IntervalKeys>(_ intervals: Sink, bucketBits: Int)
        -> (UnsafeMutableBufferPointer<UInt32>, UnsafeMutableBufferPointer<UInt64>, UnsafeMutableBufferPointer<UInt64>, UnsafeMutableBufferPointer<UInt8>) {
        let bucketCount = 1 << bucketBits
        let shift = UInt64(64 - bucketBits)
        let count = intervals.keys.count
        let buckets = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: bucketCount + 1)
        let starts = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: Swift.max(count, 1))
        let values = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: Swift.max(count, 1))
        let depths = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Swift.max(count, 1))
        for i in 0..<count {
            starts[i] = intervals.keys[i]
            values[i] = intervals.values[i]
            depths[i] = intervals.depths[i]
        }
        var j = 0
        for b in 0..<bucketCount {
            let bucketFirst = UInt64(b) << shift
            while j + 1 < count, starts[j + 1] <= bucketFirst { j += 1 }
            buckets[b] = UInt32(j)
        }
        buckets[bucketCount] = UInt32(Swift.max(count - 1, 0))
        return (buckets, starts, values, depths)
    }

    /// (packed properties, depth); depth `noMatch` when no network covers the address.
    @inline(__always)
    func lookupIPv4(_ address: UInt32) -> (UInt64, UInt8) {
        let bucket = Int(address >> 16)
        var base = Int(v4Buckets[bucket])
        var n = Int(v4Buckets[bucket + 1]) - base
        let key = UInt16(truncatingIfNeeded: address)
        while n > 1 {
            let half = n >> 1
            base = v4Starts[base + half] <= key ? base + half : base
            n -= half
        }
        return (v4Values[base], v4Depths[base])
    }

    /// (packed properties, depth); depth `noMatch`, or `fallback` when the tree must be walked.
    @inline(__always)
    func lookupIPv6(high: UInt64) -> (UInt64, UInt8) {
        let shift = UInt64(64 - Self.ipv6BucketBits)
        let bucket = Int(high >> shift)
        var base = Int(v6Buckets[bucket])
        var n = Int(v6Buckets[bucket + 1]) - base + 1
        while n > 1 {
            let half = n >> 1
            base = v6Starts[base + half] <= high ? base + half : base
            n -= half
        }
        return (v6Values[base], v6Depths[base])
    }

    /// Longest-prefix match by walking the tree: (record index, depth) of the deepest node on
    /// the address's path that carries a network.
    func walk(_ address: Address128) -> (UInt32, Int)? {
        guard nodeCount > 0 else { return nil }
        var node: UInt32 = 0
        var best: UInt32 = Format.noNetwork
        var bestDepth = 0
        var depth = 0
        while true {
            let base = nodeOffset + Int(node) * Format.nodeRecordSize
            let network = storage.u32(base + 8)
            if network != Format.noNetwork {
                best = network
                bestDepth = depth
            }
            if depth == 128 { break }
            let child = address.bit(depth) == 1 ? storage.u32(base + 4) : storage.u32(base)
            if child == 0 || Int(child) >= nodeCount { break }
            node = child
            depth += 1
        }
        return best == Format.noNetwork ? nil : (best, bestDepth)
    }

    func recordProperties(_ record: UInt32) -> UInt64 {
        let base = networkOffset + Int(record) * Format.networkRecordSize
        return UInt64(storage.u16(base)) << 48 | UInt64(storage.u16(base + 8)) << 32 | UInt64(storage.u32(base + 4))
    }
}
