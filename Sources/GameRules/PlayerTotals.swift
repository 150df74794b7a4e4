/// Addresses per player in each of the board's slots (a period over all addresses, or over
/// data-center addresses only).
///
/// Dense for all time, the year and the month, where most players have addresses: 4 bytes a
/// player each. The other nine slots (the week, day and hour, and every data-center slot)
/// hold few players, so they are maps of the players with a non-zero total. Twelve dense
/// slots were 48 bytes a player, most of them zeros: a quarter of the resident set at a
/// million one-address players (issue 24, `NAMES=distinct bench/scale.sh`).
struct PlayerTotals: Sendable {
    /// Slots below this are dense.
    static let denseSlots = 3

    /// `name * denseSlots + slot`.
    private(set) var dense: [Int32] = []
    /// Slot `denseSlots + i` at `sparse[i]`.
    private(set) var sparse: [CountMap]

    init(slots: Int) {
        sparse = Array(repeating: CountMap(), count: slots - Self.denseSlots)
    }

    /// Restores totals read from a checkpoint (checked by the reader).
    init(dense: [Int32], sparse: [CountMap]) {
        self.dense = dense
        self.sparse = sparse
    }

    var slots: Int { Self.denseSlots + sparse.count }
    var players: Int { dense.count / Self.denseSlots }

    mutating func reservePlayers(_ n: Int) { dense.reserveCapacity(n * Self.denseSlots) }

    /// A new player, with nothing anywhere.
    mutating func appendPlayer() { dense.append(contentsOf: repeatElement(0, count: Self.denseSlots)) }

    subscript(slot: Int, name: UInt32) -> Int32 {
        slot < Self.denseSlots ? dense[Int(name) &* Self.denseSlots &+ slot] : sparse[slot &- Self.denseSlots][name] ?? 0
    }

    /// Adds `delta` to a total; gives it before and after.
    mutating func add(_ delta: Int32, slot: Int, name: UInt32) -> (before: Int32, after: Int32) {
        if slot < Self.denseSlots {
            let i = Int(name) &* Self.denseSlots &+ slot
            let before = dense[i]
            dense[i] = before &+ delta
            return (before, before &+ delta)
        }
        let after = sparse[slot &- Self.denseSlots].add(delta, to: name)
        return (after &- delta, after)
    }

    /// Every player's total in `slot`, less its total in `minus` when given, placed at
    /// `position[id]` of `out` (zeros elsewhere untouched): one pass over the dense array in
    /// id order, or over the players a sparse slot holds.
    func place(slot: Int, minus: Int?, position: UnsafeBufferPointer<UInt32>, into out: UnsafeMutableBufferPointer<Int32>) {
        let players = min(position.count, self.players)
        func each(_ slot: Int, _ body: (Int, Int32) -> Void) {
            if slot < Self.denseSlots {
                dense.withUnsafeBufferPointer { dense in
                    var i = slot
                    for id in 0..<players {
                        body(id, dense[i])
                        i &+= Self.denseSlots
                    }
                }
            } else {
                for (id, n) in sparse[slot - Self.denseSlots] where Int(id) < players { body(Int(id), n) }
            }
        }
        each(slot) { id, n in out[Int(position[id])] = n }
        if let minus { each(minus) { id, n in out[Int(position[id])] &-= n } }
    }
}
