// Range indexes behind `CompiledPrefixTable`: the longest-prefix-match answer for every address,
// precomputed as a partition of the address space into ranges, found through a direct-indexed
// directory on the top bits (the DXR scheme: Zec, Rizzo, Mikuc, "DXR: towards a billion routing
// lookups per second in software", 2012).
//
// A set of N nested-or-disjoint prefixes splits the address space into at most 2N + 1 ranges, each
// answered by one prefix (the most specific one covering it) or by none. The IPv4 directory has one
// 8-byte entry per 2^(32 - bits) addresses (bits = 18, or 20 above 200,000 prefixes). An entry
// holds the answer itself when no range starts inside its slot, or the answers before and after
// the single range start inside it, or points to the slot's sorted range records for a short
// branch-free binary search. Slots with more than 8 range starts get a sub-directory of entries of
// the same kinds with about one range start each. So most lookups are one directory read plus the
// caller's read of the value. The big arrays are 2 MiB aligned and marked for transparent huge
// pages: random lookups otherwise spend much of their time in TLB misses.
//
// Memory is bounded by the number of prefixes, whatever their lengths: 2 or 8 MiB of IPv4
// directory plus at most about 24 bytes per range, 512 KiB of IPv6 directory plus 20 bytes per
// range. The IPv6 index is the plain form: a directory on the top 16 bits and a binary search over
// full 128-bit range starts.

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
///
/// A directory (or sub-directory) entry is one of four kinds, told by its top two bits:
/// - 0 `direct`: no range starts inside the slot; bits 0–31 are the answer.
/// - 1 `one split`: exactly one range starts inside the slot, at offset bits 48–61; bits 0–23 answer
///   before it and bits 24–47 from it on (`0xFFFFFF` = no entry). Used while entries fit in 24 bits.
/// - 2 `search`: bits 0–31 index the slot's records in `inner`, bits 32–61 count them; the first
///   record starts at offset 0 and carries the answer at the slot's start.
/// - 3 `dense` (directory only): bits 0–31 index a sub-directory of `1 << stride` entries of kinds
///   0–2, stride in bits 32–36, one sub-slot per `1 << (slotShift - stride)` addresses.
@usableFromInline
final class IPv4RangeIndex: @unchecked Sendable {
    @usableFromInline let directory: UnsafeMutablePointer<UInt64>
    @usableFromInline let subdirectory: UnsafeMutablePointer<UInt64>
    /// Records `offset << 32 | entry`, offset = the range start's bits below the slot.
    @usableFromInline let inner: UnsafeMutablePointer<UInt64>
    /// `32 - directoryBits`: an address's slot is `address >> slotShift`.
    @usableFromInline let slotShift: UInt32
    let directoryBits: Int
    let subdirectoryCount: Int
    let innerCount: Int
    let rangeCount: Int

    static let kindDirect: UInt64 = 0
    static let kindOneSplit: UInt64 = 1 << 62
    static let kindSearch: UInt64 = 2 << 62
    static let kindDense: UInt64 = 3 << 62
    static let smallNoEntry: UInt64 = 0xFF_FFFF

    /// `prefixes` must be unique and sorted by (network, length); lookups answer positions in it.
    /// `directoryBits` (18...20) trades directory size (8 bytes × 2^bits) for shorter searches.
    init(sortedPrefixes prefixes: [IPv4Prefix], directoryBits: Int) {
        precondition((18...20).contains(directoryBits), "directory bits must be 18...20")
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

        // Directory, sub-directories and search records.
        let slots = 1 << directoryBits
        let shift = slotShift
        let lowMask = (UInt32(1) << shift) - 1
        let smallEntries = prefixes.count < Int(IPv4RangeIndex.smallNoEntry)
        var directoryEntries = [UInt64](repeating: 0, count: slots)
        var subEntries: [UInt64] = []
        var records: [UInt64] = []
        records.reserveCapacity(starts.count + starts.count / 2)

        func small(_ entry: UInt32) -> UInt64 {
            entry == rangeIndexNoEntry ? IPv4RangeIndex.smallNoEntry : UInt64(entry)
        }
        /// Encodes a (sub-)slot answering `initial` at its start, then `splits` (offsets > 0 within
        /// the slot, ascending) — as kind 0, 1 or 2.
        func encodeLeaf(_ initial: UInt32, _ splits: ArraySlice<(offset: UInt32, entry: UInt32)>) -> UInt64 {
            if splits.isEmpty { return UInt64(initial) }
            if splits.count == 1, smallEntries {
                let split = splits[splits.startIndex]
                return IPv4RangeIndex.kindOneSplit | UInt64(split.offset) << 48 | small(split.entry) << 24 | small(initial)
            }
            let offset = records.count
            records.append(UInt64(initial))
            for split in splits { records.append(UInt64(split.offset) << 32 | UInt64(split.entry)) }
            return IPv4RangeIndex.kindSearch | UInt64(splits.count + 1) << 32 | UInt64(offset)
        }

        var j = 0
        var current = rangeIndexNoEntry
        let n = starts.count
        var splits: [(offset: UInt32, entry: UInt32)] = []
        for slot in 0..<slots {
            let slotStart = UInt32(slot) << shift
            if j < n, starts[j] == slotStart {
                current = entries[j]
                j += 1
            }
            let initial = current
            splits.removeAll(keepingCapacity: true)
            let slotEnd = UInt64(slotStart) + (UInt64(1) << UInt64(shift))
            while j < n, UInt64(starts[j]) < slotEnd {
                splits.append((starts[j] & lowMask, entries[j]))
                current = entries[j]
                j += 1
            }
            if splits.count <= denseSlotThreshold {
                directoryEntries[slot] = encodeLeaf(initial, splits[...])
                continue
            }
            // Dense slot: about one split per sub-slot.
            var stride: UInt32 = 1
            while stride < shift, 1 << stride < splits.count { stride += 1 }
            let subShift = shift - stride
            let base = subEntries.count
            var k = 0
            var subInitial = initial
            for sub in 0..<(UInt32(1) << stride) {
                let subStart = sub << subShift
                let subEnd = subStart + (1 << subShift)
                // A split exactly at the sub-slot's start is its initial answer.
                while k < splits.count, splits[k].offset <= subStart {
                    subInitial = splits[k].entry
                    k += 1
                }
                let first = k
                while k < splits.count, splits[k].offset < subEnd { k += 1 }
                subEntries.append(encodeLeaf(subInitial, splits[first..<k]))
                if k > first { subInitial = splits[k - 1].entry }
            }
            precondition(subEntries.count < 1 << 32, "range index: sub-directory too large")
            directoryEntries[slot] = IPv4RangeIndex.kindDense | UInt64(stride) << 32 | UInt64(base)
        }
        precondition(j == n && records.count < 1 << 32, "range index: sweep mismatch")
        directory = allocateLookupArray(UInt64.self, count: slots)
        for (i, e) in directoryEntries.enumerated() { directory[i] = e }
        subdirectoryCount = subEntries.count
        subdirectory = allocateLookupArray(UInt64.self, count: subEntries.count)
        for (i, e) in subEntries.enumerated() { subdirectory[i] = e }
        innerCount = records.count
        inner = allocateLookupArray(UInt64.self, count: records.count)
        for (i, e) in records.enumerated() { inner[i] = e }
    }

    deinit {
        freeLookupArray(directory)
        freeLookupArray(subdirectory)
        freeLookupArray(inner)
    }

    /// Bytes held by the index.
    var byteCount: Int { ((1 << directoryBits) + subdirectoryCount + innerCount) * 8 }

    /// The entry of the longest prefix containing `address`, or `rangeIndexNoEntry`.
    @inlinable @inline(__always)
    func entry(_ address: UInt32) -> UInt32 {
        let offset = address & ((1 << slotShift) - 1)
        var e = directory[Int(truncatingIfNeeded: address >> slotShift)]
        if e >> 62 == 3 {
            let stride = UInt32(truncatingIfNeeded: e >> 32) & 31
            e = subdirectory[Int(truncatingIfNeeded: e & 0xFFFF_FFFF) + Int(truncatingIfNeeded: offset >> (slotShift - stride))]
        }
        switch e >> 62 {
        case 0:
            return UInt32(truncatingIfNeeded: e)
        case 1:
            let split = UInt32(truncatingIfNeeded: e >> 48) & 0x3FFF
            let small = UInt32(truncatingIfNeeded: offset >= split ? e >> 24 : e) & 0xFF_FFFF
            return small == 0xFF_FFFF ? rangeIndexNoEntry : small
        default:
            var base = Int(truncatingIfNeeded: e & 0xFFFF_FFFF)
            var n = Int(truncatingIfNeeded: (e >> 32) & 0x3FFF_FFFF)
            let key = UInt64(offset) << 32 | 0xFFFF_FFFF
            while n > 1 {
                let half = n >> 1
                base = inner[base + half] <= key ? base + half : base
                n -= half
            }
            return UInt32(truncatingIfNeeded: inner[base])
        }
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

    /// `prefixes` must be unique and sorted by (network, length); lookups answer positions in it.
    init(sortedPrefixes prefixes: [IPv6Prefix]) {
        let ranges = sweepRanges(
            count: prefixes.count,
            zero: IPv6Address.any,
            first: { prefixes[$0].network },
            last: { prefixes[$0].last },
            entry: { UInt32($0) },
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
