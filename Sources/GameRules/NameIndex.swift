/// Player ids by name, for the board: an open-addressing table of ids (4 bytes a slot, at most
/// half full) that compares against the board's own array of names. A `[String: UInt32]` kept
/// a second copy of every name with its hash buckets: about 42 bytes a player at a million
/// players, against 8 to 16 here (`bench/scale.sh` with `NAMES=distinct`).
struct NameIndex: Sendable {
    /// `id + 1` of the name hashed there, 0 for an empty slot; the count is a power of two.
    private var slots: [UInt32] = []
    private(set) var count = 0

    init() {}

    /// Room for `n` names without growing.
    mutating func reserveCapacity(_ n: Int, names: [PlayerName]) {
        if n * 2 > slots.count { rehash(capacity: n * 2, names: names) }
    }

    func find(_ name: String, in names: [PlayerName]) -> UInt32? {
        guard !slots.isEmpty else { return nil }
        let mask = slots.count - 1
        var i = name.hashValue & mask
        while true {
            let slot = slots[i]
            if slot == 0 { return nil }
            if names[Int(slot - 1)].value == name { return slot - 1 }
            i = (i + 1) & mask
        }
    }

    /// Records `id` as `names[id]`'s (not already present).
    mutating func insert(_ id: UInt32, names: [PlayerName]) {
        if (count + 1) * 2 > slots.count { rehash(capacity: max(16, slots.count * 2), names: names) }
        place(id, hash: names[Int(id)].value.hashValue)
        count += 1
    }

    private mutating func place(_ id: UInt32, hash: Int) {
        let mask = slots.count - 1
        var i = hash & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = id + 1
    }

    private mutating func rehash(capacity: Int, names: [PlayerName]) {
        var size = 16
        while size < capacity { size <<= 1 }
        let old = slots
        slots = [UInt32](repeating: 0, count: size)
        for slot in old where slot != 0 { place(slot - 1, hash: names[Int(slot - 1)].value.hashValue) }
    }
}
