// Range indexes behind `CompiledPrefixTable`: the longest-prefix-match answer for every address,
// precomputed as a partition of the address space into ranges, found through a direct-indexed
// directory on the top 16 bits (the DXR scheme: Zec, Rizzo, Mikuc, "DXR: towards a billion
// routing lookups per second in software", 2012).
//
// A set of N nested-or-disjoint prefixes splits the address space into at most 2N + 1 ranges, each
// answered by one prefix (the most specific one covering it) or by none. The ranges are stored as
// sorted start addresses. The directory has one slot per /16: the answer at the slot's first address
// and where the range starts that fall strictly inside that /16 begin in the inner arrays. A lookup
// reads one directory slot (and its neighbour, same cache line); when no range starts inside the /16
// that is the answer. Otherwise a branch-free binary search over the inner starts (for IPv4 only
// the low 16 bits, two bytes each) finds the range.
//
// Memory is bounded by the number of prefixes, whatever their lengths: 512 KiB of directory plus
// 6 bytes (IPv4) or 20 bytes (IPv6) per range.

/// The entry index meaning "no prefix covers this address".
@usableFromInline
let rangeIndexNoEntry: UInt32 = .max

/// Bits of the address that index the directory.
@usableFromInline
let rangeIndexDirectoryBits = 16

/// One family's prefixes, sorted and nested, turned into boundaries: `starts[i]` begins a range
/// answered by `entries[i]` that lasts until `starts[i + 1]`. Neighbouring ranges have different answers.
struct RangeBoundaries<Key: Comparable> {
    var starts: [Key] = []
    var entries: [UInt32] = []

    mutating func emit(_ start: Key, _ entry: UInt32) {
        if let last = starts.last, last == start {
            entries[entries.count - 1] = entry
            if entries.count >= 2, entries[entries.count - 2] == entry {
                starts.removeLast()
                entries.removeLast()
            }
            return
        }
        if entries.last == entry { return }
        starts.append(start)
        entries.append(entry)
    }
}

/// Sweeps prefixes sorted by (first address ascending, length ascending) into range boundaries.
/// `first`/`last` are inclusive bounds; `next(last)` is nil when `last` is the top of the space.
func sweepRanges<Key: Comparable>(
    count: Int,
    zero: Key,
    first: (Int) -> Key,
    last: (Int) -> Key,
    entry: (Int) -> UInt32,
    successor: (Key) -> Key?
) -> RangeBoundaries<Key> {
    var out = RangeBoundaries<Key>()
    out.starts.reserveCapacity(2 * count + 1)
    out.entries.reserveCapacity(2 * count + 1)
    out.emit(zero, rangeIndexNoEntry)
    // Open prefixes, outermost first: (last address, entry).
    var open: [(last: Key, entry: UInt32)] = []
    func close() {
        let top = open.removeLast()
        if let after = successor(top.last) {
            out.emit(after, open.last?.entry ?? rangeIndexNoEntry)
        }
    }
    for i in 0..<count {
        let start = first(i)
        while let top = open.last, top.last < start { close() }
        out.emit(start, entry(i))
        open.append((last(i), entry(i)))
    }
    while !open.isEmpty { close() }
    return out
}

/// The IPv4 range index. Immutable once built; the buffers are owned and freed by this object.
@usableFromInline
final class IPv4RangeIndex: @unchecked Sendable {
    /// `1 << 16` + 1 slots: high 32 bits = first inner index, low 32 bits = answer at the /16's start.
    @usableFromInline let directory: UnsafeMutablePointer<UInt64>
    /// Low 16 bits of each range start that lies strictly inside its /16, in address order.
    @usableFromInline let innerStarts: UnsafeMutablePointer<UInt16>
    /// The answer of each inner range.
    @usableFromInline let innerEntries: UnsafeMutablePointer<UInt32>
    let innerCount: Int
    let rangeCount: Int

    /// `prefixes` must be unique; `entry(i)` is what lookups return for `prefixes[i]`.
    init(prefixes: [IPv4Prefix]) {
        let order = prefixes.indices.sorted { a, b in
            let x = prefixes[a], y = prefixes[b]
            return x.network.value != y.network.value ? x.network.value < y.network.value : x.length < y.length
        }
        let ranges = sweepRanges(
            count: order.count,
            zero: UInt32(0),
            first: { prefixes[order[$0]].network.value },
            last: { prefixes[order[$0]].last.value },
            entry: { UInt32(order[$0]) },
            successor: { $0 == .max ? nil : $0 + 1 }
        )
        rangeCount = ranges.starts.count
        let slots = 1 << rangeIndexDirectoryBits
        let shift = UInt32(32 - rangeIndexDirectoryBits)
        directory = .allocate(capacity: slots + 1)
        // Every range start except those on a /16 boundary becomes an inner start.
        var inner = 0
        for s in ranges.starts where s & ((1 << shift) - 1) != 0 { inner += 1 }
        innerCount = inner
        innerStarts = .allocate(capacity: max(inner, 1))
        innerEntries = .allocate(capacity: max(inner, 1))
        var r = 0
        var k = 0
        let n = ranges.starts.count
        for slot in 0..<slots {
            let slotStart = UInt32(slot) << shift
            while r + 1 < n, ranges.starts[r + 1] <= slotStart { r += 1 }
            directory[slot] = UInt64(k) << 32 | UInt64(ranges.entries[r])
            let slotEnd = UInt64(slotStart) + (1 << UInt64(shift))
            var j = r + 1
            while j < n, UInt64(ranges.starts[j]) < slotEnd {
                innerStarts[k] = UInt16(truncatingIfNeeded: ranges.starts[j])
                innerEntries[k] = ranges.entries[j]
                k += 1
                j += 1
            }
        }
        precondition(k == inner, "range index: inner count mismatch")
        directory[slots] = UInt64(k) << 32 | UInt64(rangeIndexNoEntry)
    }

    deinit {
        directory.deallocate()
        innerStarts.deallocate()
        innerEntries.deallocate()
    }

    /// Bytes held by the index.
    var byteCount: Int { ((1 << rangeIndexDirectoryBits) + 1) * 8 + innerCount * 6 }

    /// The entry of the longest prefix containing `address`, or `rangeIndexNoEntry`.
    @inlinable @inline(__always)
    func entry(_ address: UInt32) -> UInt32 {
        let slot = Int(truncatingIfNeeded: address >> UInt32(32 - rangeIndexDirectoryBits))
        let head = directory[slot]
        let lo = Int(truncatingIfNeeded: head >> 32)
        let hi = Int(truncatingIfNeeded: directory[slot + 1] >> 32)
        if lo == hi { return UInt32(truncatingIfNeeded: head) }
        let key = UInt16(truncatingIfNeeded: address)
        var base = lo
        var n = hi - lo
        while n > 1 {
            let half = n >> 1
            base = innerStarts[base + half] <= key ? base + half : base
            n -= half
        }
        return innerStarts[base] <= key ? innerEntries[base] : UInt32(truncatingIfNeeded: head)
    }
}

/// The IPv6 range index: same directory on the top 16 bits, full 128-bit inner starts.
@usableFromInline
final class IPv6RangeIndex: @unchecked Sendable {
    @usableFromInline let directory: UnsafeMutablePointer<UInt64>
    @usableFromInline let innerHigh: UnsafeMutablePointer<UInt64>
    @usableFromInline let innerLow: UnsafeMutablePointer<UInt64>
    @usableFromInline let innerEntries: UnsafeMutablePointer<UInt32>
    let innerCount: Int
    let rangeCount: Int

    init(prefixes: [IPv6Prefix]) {
        let order = prefixes.indices.sorted { a, b in
            let x = prefixes[a], y = prefixes[b]
            return x.network != y.network ? x.network < y.network : x.length < y.length
        }
        let ranges = sweepRanges(
            count: order.count,
            zero: IPv6Address.any,
            first: { prefixes[order[$0]].network },
            last: { prefixes[order[$0]].last },
            entry: { UInt32(order[$0]) },
            successor: { a in
                if a.low != .max { return IPv6Address(high: a.high, low: a.low + 1) }
                if a.high != .max { return IPv6Address(high: a.high + 1, low: 0) }
                return nil
            }
        )
        rangeCount = ranges.starts.count
        let slots = 1 << rangeIndexDirectoryBits
        let shift = UInt64(64 - rangeIndexDirectoryBits)
        let lowBitsMask: UInt64 = (1 << shift) - 1
        directory = .allocate(capacity: slots + 1)
        var inner = 0
        for s in ranges.starts where s.high & lowBitsMask != 0 || s.low != 0 { inner += 1 }
        innerCount = inner
        innerHigh = .allocate(capacity: max(inner, 1))
        innerLow = .allocate(capacity: max(inner, 1))
        innerEntries = .allocate(capacity: max(inner, 1))
        var r = 0
        var k = 0
        let n = ranges.starts.count
        for slot in 0..<slots {
            let slotStart = IPv6Address(high: UInt64(slot) << shift, low: 0)
            while r + 1 < n, ranges.starts[r + 1] <= slotStart { r += 1 }
            directory[slot] = UInt64(k) << 32 | UInt64(ranges.entries[r])
            var j = r + 1
            while j < n, ranges.starts[j].high >> shift == UInt64(slot) {
                innerHigh[k] = ranges.starts[j].high
                innerLow[k] = ranges.starts[j].low
                innerEntries[k] = ranges.entries[j]
                k += 1
                j += 1
            }
        }
        precondition(k == inner, "range index: inner count mismatch")
        directory[slots] = UInt64(k) << 32 | UInt64(rangeIndexNoEntry)
    }

    deinit {
        directory.deallocate()
        innerHigh.deallocate()
        innerLow.deallocate()
        innerEntries.deallocate()
    }

    var byteCount: Int { ((1 << rangeIndexDirectoryBits) + 1) * 8 + innerCount * 20 }

    @inlinable @inline(__always)
    func entry(_ address: IPv6Address) -> UInt32 {
        let slot = Int(truncatingIfNeeded: address.high >> UInt64(64 - rangeIndexDirectoryBits))
        let head = directory[slot]
        let lo = Int(truncatingIfNeeded: head >> 32)
        let hi = Int(truncatingIfNeeded: directory[slot + 1] >> 32)
        if lo == hi { return UInt32(truncatingIfNeeded: head) }
        @inline(__always) func startIsAtOrBelow(_ i: Int) -> Bool {
            let h = innerHigh[i]
            return h < address.high || (h == address.high && innerLow[i] <= address.low)
        }
        var base = lo
        var n = hi - lo
        while n > 1 {
            let half = n >> 1
            base = startIsAtOrBelow(base + half) ? base + half : base
            n -= half
        }
        return startIsAtOrBelow(base) ? innerEntries[base] : UInt32(truncatingIfNeeded: head)
    }
}
