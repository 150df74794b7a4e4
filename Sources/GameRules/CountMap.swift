/// Counts by player id (or any 32-bit key but `UInt32.max`): the board's many small maps
/// (per period and block, per country, per AS, per day of history).
///
/// One flat array of 8-byte slots, the key in the high half and the count in the low half,
/// with linear probing. A key's first slot is a multiply-shift of its hash onto the table's
/// size, so the table can have any size, not only a power of two: one restored from a
/// checkpoint takes n / 0.85 slots, and a growing one grows by half. Swift's `Dictionary` of
/// the same pairs took 8 bytes per bucket at a load of 0.375–0.75 (powers of two), about
/// 16.8 bytes per entry at a million one-address players; this one about 9.4 restored and
/// 11 growing. Removal shifts the following entries back (no tombstones), and a map that
/// empties gives its storage back.
package struct CountMap: Sendable, Sequence {
    private var slots: [UInt64] = []
    package private(set) var count = 0

    private static let emptySlot = UInt64.max

    package init() {}

    package init(minimumCapacity n: Int) {
        if n > 0 { slots = Array(repeating: Self.emptySlot, count: Self.size(for: n)) }
    }

    package var isEmpty: Bool { count == 0 }
    /// Slots allocated (memory checks).
    package var capacity: Int { slots.count }

    /// Slots for `n` entries at a load of at most 0.85.
    private static func size(for n: Int) -> Int { Swift.max(4, n * 20 / 17 + 1) }

    @inline(__always)
    private static func home(_ key: UInt32, _ size: Int) -> Int {
        slotIndex(hash32: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32, size: size)
    }

    @inline(__always) private static func key(_ slot: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: slot >> 32) }
    @inline(__always) private static func value(_ slot: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: slot)) }
    @inline(__always) private static func pack(_ key: UInt32, _ value: Int32) -> UInt64 {
        UInt64(key) << 32 | UInt64(UInt32(bitPattern: value))
    }

    /// The slot holding `key`.
    private func index(of key: UInt32) -> Int? {
        guard count > 0 else { return nil }
        return slots.withUnsafeBufferPointer { s in
            var i = Self.home(key, s.count)
            while true {
                let e = s[i]
                if e == Self.emptySlot { return nil }
                if Self.key(e) == key { return i }
                i &+= 1
                if i == s.count { i = 0 }
            }
        }
    }

    package subscript(key: UInt32) -> Int32? {
        index(of: key).map { Self.value(slots[$0]) }
    }

    /// Adds `delta` to the count of `key` (absent counts are 0) and gives the new count; a
    /// count that reaches 0 leaves the map.
    @discardableResult
    package mutating func add(_ delta: Int32, to key: UInt32) -> Int32 {
        if let i = index(of: key) {
            let n = Self.value(slots[i]) &+ delta
            if n == 0 { remove(at: i) } else { slots[i] = Self.pack(key, n) }
            return n
        }
        if delta != 0 { insert(key, delta) }
        return delta
    }

    /// Sets the count of `key`; 0 removes it.
    package mutating func set(_ value: Int32, for key: UInt32) {
        if let i = index(of: key) {
            if value == 0 { remove(at: i) } else { slots[i] = Self.pack(key, value) }
        } else if value != 0 {
            insert(key, value)
        }
    }

    package mutating func removeValue(forKey key: UInt32) {
        if let i = index(of: key) { remove(at: i) }
    }

    package mutating func reserveCapacity(_ n: Int) {
        if Self.size(for: n) > slots.count { rehash(to: Self.size(for: n)) }
    }

    private mutating func insert(_ key: UInt32, _ value: Int32) {
        precondition(key != UInt32.max, "CountMap keys stop below UInt32.max")
        if (count + 1) * 20 > slots.count * 17 { rehash(to: Swift.max(Self.size(for: count + 1), slots.count + slots.count / 2)) }
        slots.withUnsafeMutableBufferPointer { s in
            var i = Self.home(key, s.count)
            while s[i] != Self.emptySlot {
                i &+= 1
                if i == s.count { i = 0 }
            }
            s[i] = Self.pack(key, value)
        }
        count += 1
    }

    private mutating func rehash(to size: Int) {
        let old = slots
        slots = Array(repeating: Self.emptySlot, count: size)
        count = 0
        for e in old where e != Self.emptySlot { insert(Self.key(e), Self.value(e)) }
    }

    /// Empties slot `index`, moving back each following entry whose probe passes over it.
    private mutating func remove(at index: Int) {
        slots.withUnsafeMutableBufferPointer { s in
            let size = s.count
            var hole = index
            var j = index
            while true {
                j &+= 1
                if j == size { j = 0 }
                let e = s[j]
                if e == Self.emptySlot { break }
                let home = Self.home(Self.key(e), size)
                // The entry at j was probed from `home` through j; it may fill the hole when
                // the hole lies on that path.
                if (hole &- home &+ size) % size < (j &- home &+ size) % size {
                    s[hole] = e
                    hole = j
                }
            }
            s[hole] = Self.emptySlot
        }
        count -= 1
        if count == 0 { slots = [] }
    }

    package struct Iterator: IteratorProtocol {
        fileprivate let slots: [UInt64]
        fileprivate var i = 0
        package mutating func next() -> (key: UInt32, value: Int32)? {
            while i < slots.count {
                let e = slots[i]
                i += 1
                if e != CountMap.emptySlot { return (CountMap.key(e), CountMap.value(e)) }
            }
            return nil
        }
    }

    package func makeIterator() -> Iterator { Iterator(slots: slots) }
    package var underestimatedCount: Int { count }

    package var keys: LazyMapSequence<CountMap, UInt32> { lazy.map(\.key) }
    package var values: LazyMapSequence<CountMap, Int32> { lazy.map(\.value) }
}

extension CountMap: Equatable {
    /// The same keys with the same counts (however they are laid out).
    package static func == (a: CountMap, b: CountMap) -> Bool {
        a.count == b.count && a.allSatisfy { b[$0.key] == $0.value }
    }
}

/// A 32-bit hash (in the low half of `hash32`) mapped onto `0..<size` by a multiply-shift, so
/// an open-addressing table can have any size, not only a power of two (`CountMap`, `NameIndex`).
@inline(__always)
func slotIndex(hash32: UInt64, size: Int) -> Int {
    Int(truncatingIfNeeded: (hash32 &* UInt64(truncatingIfNeeded: size)) >> 32)
}
