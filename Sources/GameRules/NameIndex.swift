/// Player ids by name, for the board: an open-addressing table of ids (4 bytes a slot, at most
/// three quarters full) that compares against the board's own array of names. A
/// `[String: UInt32]` kept a second copy of every name with its hash buckets: about 42 bytes a
/// player at a million players. The table may have any size (a name's first slot is a
/// multiply-shift of its hash onto it), so it takes 5.3 bytes a player when sized for its
/// names and about 6.4 while growing by half; a power-of-two table at most half full took
/// 8–16 (`bench/scale.sh` with `NAMES=distinct`).
struct NameIndex: Sendable {
    /// `id + 1` of the name hashed there, 0 for an empty slot.
    private var slots: [UInt32] = []
    private(set) var count = 0

    init() {}

    /// Slots for `n` names at a load of at most 0.75.
    private static func size(for n: Int) -> Int { Swift.max(16, n * 4 / 3 + 1) }

    private static func home(_ name: String, _ size: Int) -> Int {
        slotIndex(hash32: UInt64(UInt(bitPattern: name.hashValue)) >> 32, size: size)
    }

    /// Room for `n` names without growing.
    mutating func reserveCapacity(_ n: Int, names: [PlayerName]) {
        if Self.size(for: n) > slots.count { rehash(size: Self.size(for: n), names: names) }
    }

    func find(_ name: String, in names: [PlayerName]) -> UInt32? {
        guard !slots.isEmpty else { return nil }
        var i = Self.home(name, slots.count)
        while true {
            let slot = slots[i]
            if slot == 0 { return nil }
            if names[Int(slot - 1)].value == name { return slot - 1 }
            i += 1
            if i == slots.count { i = 0 }
        }
    }

    /// Records `id` as `names[id]`'s (not already present).
    mutating func insert(_ id: UInt32, names: [PlayerName]) {
        if (count + 1) * 4 > slots.count * 3 { rehash(size: Swift.max(Self.size(for: count + 1), slots.count + slots.count / 2), names: names) }
        place(id, home: Self.home(names[Int(id)].value, slots.count))
        count += 1
    }

    private mutating func place(_ id: UInt32, home: Int) {
        var i = home
        while slots[i] != 0 {
            i += 1
            if i == slots.count { i = 0 }
        }
        slots[i] = id + 1
    }

    private mutating func rehash(size: Int, names: [PlayerName]) {
        let old = slots
        slots = [UInt32](repeating: 0, count: size)
        for slot in old where slot != 0 { place(slot - 1, home: Self.home(names[Int(slot - 1)].value, size)) }
    }
}
