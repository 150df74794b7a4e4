// Range indexes behind `CompiledPrefixTable`: the longest-prefix-match answer for every address,
// precomputed as a partition of the address space into ranges, found through a direct-indexed
// directory on the top bits (the DXR scheme: Zec, Rizzo, Mikuc, "DXR: towards a billion routing
// lookups per second in software", 2012).
//
// A set of N nested-or-disjoint prefixes splits the address space into at most 2N + 1 ranges, each
// answered by one prefix (the most specific one covering it) or by none. The ranges are stored as
// sorted start addresses. The IPv4 directory has one slot per 2^(32 - bits) addresses (bits = 18,
// or 20 for big tables): the answer at the slot's first address and where the ranges that start
// strictly inside the slot begin in the inner array. A lookup reads one directory slot (and its
// neighbour, same cache line); when no range starts inside the slot that is the answer. Otherwise a
// branch-free binary search over the slot's inner records (8 bytes: start bits and answer) finds
// the range. Dense slots (more than 8 inner ranges) get a sub-directory of their own that cuts the
// search down to about two records. The big arrays are 2 MiB aligned and marked for transparent
// huge pages: random lookups otherwise spend much of their time in TLB misses.
//
// Memory is bounded by the number of prefixes, whatever their lengths: 2 or 8 MiB of IPv4
// directory plus at most 16 bytes per range, 512 KiB of IPv6 directory plus 20 bytes per range.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Allocates `count` elements for a lookup array. Arrays of 2 MiB and more are 2 MiB aligned and,
/// on Linux, marked for transparent huge pages: random lookups then miss the TLB far less often.
/// Free with `freeLookupArray`.
func allocateLookupArray<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    let hugePage = 2 << 20
    if bytes >= hugePage {
        var raw: UnsafeMutableRawPointer?
        let rounded = (bytes + hugePage - 1) / hugePage * hugePage
        if posix_memalign(&raw, hugePage, rounded) == 0, let raw {
            #if os(Linux)
            _ = madvise(raw, rounded, MADV_HUGEPAGE)
            #endif
            return raw.bindMemory(to: T.self, capacity: count)
        }
    }
    guard let raw = malloc(bytes) else { fatalError("out of memory allocating a lookup array of \(bytes) bytes") }
    return raw.bindMemory(to: T.self, capacity: max(count, 1))
}

func freeLookupArray<T>(_ pointer: UnsafeMutablePointer<T>) {
    free(pointer)
}

/// Marks a directory slot that points to a sub-directory.
@usableFromInline
let denseSlotFlag: UInt64 = 1 << 63

/// Slots with more inner ranges than this get a sub-directory.
let denseSlotThreshold = 8

/// The entry index meaning "no prefix covers this address".
@usableFromInline
let rangeIndexNoEntry: UInt32 = .max

/// Bits of an IPv6 address that index its directory.
@usableFromInline
let ipv6DirectoryBits = 16

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
    /// `1 << directoryBits` + 1 slots. High 32 bits: the first inner index of the slot (bits 32–62)
    /// and, in bit 63, `denseSlotFlag`. Low 32 bits: the answer at the slot's first address; for a
    /// dense slot instead its sub-directory: stride in bits 27–31, offset in bits 0–26.
    @usableFromInline let directory: UnsafeMutablePointer<UInt64>
    /// Sub-directories of dense slots (more than `denseSlotThreshold` inner ranges), each
    /// `1 << stride` + 1 entries laid out like plain directory slots, so a search covers about two
    /// ranges.
    @usableFromInline let subdirectory: UnsafeMutablePointer<UInt64>
    let subdirectoryCount: Int
    /// `32 - directoryBits`: an address's slot is `address >> slotShift`.
    @usableFromInline let slotShift: UInt32
    /// One record per range start that lies strictly inside its slot, in address order: the start's
    /// bits below the slot in the high 32 bits, the range's answer in the low 32 (one load yields both).
    @usableFromInline let inner: UnsafeMutablePointer<UInt64>
    let directoryBits: Int
    let innerCount: Int
    let rangeCount: Int

    /// `prefixes` must be unique and sorted by (network, length); lookups answer positions in it.
    /// `directoryBits` (16...20) trades directory size (8 bytes × 2^bits) for shorter searches.
    init(sortedPrefixes prefixes: [IPv4Prefix], directoryBits: Int) {
        precondition((16...20).contains(directoryBits), "directory bits must be 16...20")
        self.directoryBits = directoryBits
        slotShift = UInt32(32 - directoryBits)
        // Sweep: ranges as (start, entry), neighbours with different entries.
        var starts: [UInt32] = []
        var entries: [UInt32] = []
        starts.reserveCapacity(2 * prefixes.count + 1)
        entries.reserveCapacity(2 * prefixes.count + 1)
        @inline(__always) func emit(_ start: UInt64, _ entry: UInt32) {
            if start > UInt64(UInt32.max) { return }
            let s = UInt32(start)
            if let last = starts.last, last == s {
                entries[entries.count - 1] = entry
                if entries.count >= 2, entries[entries.count - 2] == entry {
                    starts.removeLast()
                    entries.removeLast()
                }
            } else if entries.last != entry {
                starts.append(s)
                entries.append(entry)
            }
        }
        emit(0, rangeIndexNoEntry)
        var openEnds: [UInt64] = [] // exclusive end of each open prefix, outermost first
        var openEntries: [UInt32] = []
        openEnds.reserveCapacity(33)
        openEntries.reserveCapacity(33)
        for (i, p) in prefixes.enumerated() {
            let first = UInt64(p.network.value)
            while let end = openEnds.last, end <= first {
                openEnds.removeLast()
                openEntries.removeLast()
                emit(end, openEntries.last ?? rangeIndexNoEntry)
            }
            emit(first, UInt32(i))
            openEnds.append(first + p.size)
            openEntries.append(UInt32(i))
        }
        while let end = openEnds.popLast() {
            openEntries.removeLast()
            emit(end, openEntries.last ?? rangeIndexNoEntry)
        }
        rangeCount = starts.count

        // Directory and inner ranges.
        let slots = 1 << directoryBits
        let lowMask = (UInt32(1) << slotShift) - 1
        var inner = 0
        for s in starts where s & lowMask != 0 { inner += 1 }
        innerCount = inner
        directory = allocateLookupArray(UInt64.self, count: slots + 1)
        self.inner = allocateLookupArray(UInt64.self, count: inner)
        var subEntries: [UInt64] = []
        var k = 0
        var currentEntry = rangeIndexNoEntry
        var j = 0
        let n = starts.count
        for slot in 0..<slots {
            let slotStart = UInt32(slot) << slotShift
            if j < n, starts[j] == slotStart {
                currentEntry = entries[j]
                j += 1
            }
            let slotEntry = currentEntry
            let first = k
            let slotEnd = UInt64(slotStart) + (UInt64(1) << UInt64(slotShift))
            while j < n, UInt64(starts[j]) < slotEnd {
                self.inner[k] = UInt64(starts[j] & lowMask) << 32 | UInt64(entries[j])
                currentEntry = entries[j]
                k += 1
                j += 1
            }
            let count = k - first
            if count <= denseSlotThreshold {
                directory[slot] = UInt64(first) << 32 | UInt64(slotEntry)
                continue
            }
            // Dense slot: split it into 2^stride sub-slots holding about two ranges each.
            var stride = 1
            while stride < Int(slotShift), (1 << stride) * 2 < count { stride += 1 }
            let subShift = Int(slotShift) - stride
            let offset = subEntries.count
            var cursor = first
            var subEntry = slotEntry
            for sub in 0..<(1 << stride) {
                let subStart = UInt32(sub << subShift)
                // Ranges starting before this sub-slot decide its default answer.
                while cursor < k, UInt32(truncatingIfNeeded: self.inner[cursor] >> 32) < subStart {
                    subEntry = UInt32(truncatingIfNeeded: self.inner[cursor])
                    cursor += 1
                }
                subEntries.append(UInt64(cursor) << 32 | UInt64(subEntry))
            }
            subEntries.append(UInt64(k) << 32 | UInt64(rangeIndexNoEntry))
            precondition(offset < 1 << 27, "range index: sub-directory too large")
            directory[slot] = denseSlotFlag | UInt64(first) << 32 | UInt64(stride) << 27 | UInt64(offset)
        }
        precondition(k == inner && j == n, "range index: inner count mismatch")
        directory[slots] = UInt64(k) << 32 | UInt64(rangeIndexNoEntry)
        subdirectoryCount = subEntries.count
        subdirectory = allocateLookupArray(UInt64.self, count: subEntries.count)
        for (i, e) in subEntries.enumerated() { subdirectory[i] = e }
    }

    deinit {
        freeLookupArray(directory)
        freeLookupArray(subdirectory)
        freeLookupArray(inner)
    }

    /// Bytes held by the index.
    var byteCount: Int { ((1 << directoryBits) + 1 + subdirectoryCount + innerCount) * 8 }

    /// The entry of the longest prefix containing `address`, or `rangeIndexNoEntry`.
    @inlinable @inline(__always)
    func entry(_ address: UInt32) -> UInt32 {
        let slot = Int(truncatingIfNeeded: address >> slotShift)
        let head = directory[slot]
        let lo: Int
        var n: Int
        let fallback: UInt32
        if head & denseSlotFlag == 0 {
            lo = Int(truncatingIfNeeded: head >> 32)
            n = Int(truncatingIfNeeded: (directory[slot + 1] >> 32) & 0x7FFF_FFFF) - lo
            fallback = UInt32(truncatingIfNeeded: head)
        } else {
            let stride = UInt32(truncatingIfNeeded: head >> 27) & 31
            let offset = Int(truncatingIfNeeded: head & (1 << 27 - 1))
            let sub = offset + Int(truncatingIfNeeded: (address & ((1 << slotShift) - 1)) >> (slotShift - stride))
            let subHead = subdirectory[sub]
            lo = Int(truncatingIfNeeded: subHead >> 32)
            n = Int(truncatingIfNeeded: subdirectory[sub + 1] >> 32) - lo
            fallback = UInt32(truncatingIfNeeded: subHead)
        }
        if n == 0 { return fallback }
        let key = UInt64(address & ((1 << slotShift) - 1)) << 32 | 0xFFFF_FFFF
        var base = lo
        while n > 1 {
            let half = n >> 1
            base = inner[base + half] <= key ? base + half : base
            n -= half
        }
        let record = inner[base]
        return record <= key ? UInt32(truncatingIfNeeded: record) : fallback
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
        let slots = 1 << ipv6DirectoryBits
        let shift = UInt64(64 - ipv6DirectoryBits)
        let lowBitsMask: UInt64 = (1 << shift) - 1
        directory = allocateLookupArray(UInt64.self, count: slots + 1)
        var inner = 0
        for s in ranges.starts where s.high & lowBitsMask != 0 || s.low != 0 { inner += 1 }
        innerCount = inner
        innerHigh = allocateLookupArray(UInt64.self, count: inner)
        innerLow = allocateLookupArray(UInt64.self, count: inner)
        innerEntries = allocateLookupArray(UInt32.self, count: inner)
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
        freeLookupArray(directory)
        freeLookupArray(innerHigh)
        freeLookupArray(innerLow)
        freeLookupArray(innerEntries)
    }

    var byteCount: Int { ((1 << ipv6DirectoryBits) + 1) * 8 + innerCount * 20 }

    @inlinable @inline(__always)
    func entry(_ address: IPv6Address) -> UInt32 {
        let slot = Int(truncatingIfNeeded: address.high >> UInt64(64 - ipv6DirectoryBits))
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
