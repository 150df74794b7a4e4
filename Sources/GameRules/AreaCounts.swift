/// All-time addresses per (area, player), where an area is a country or an autonomous system
/// (0: unknown, not counted).
///
/// Nearly every player holds addresses of one area only (spam names hold one address), so a
/// player's area is kept beside it, `sole[player]`, and its count there is its all-time total:
/// 2 or 4 bytes a player. Only a player whose addresses are in several areas (or some in none)
/// has its counts in per-area maps, as every player had before: an entry in each of two maps
/// (country, AS) cost about 19 bytes a player at a million one-address players (issue 24).
/// Reading an area's players merges both (a pass over `sole`): the area pages, not claims,
/// pay for it.
struct AreaCounts<Area: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// Per player: its one area; 0 when it holds no address; `spread` when its counts are in
    /// `maps`.
    private(set) var sole: [Area] = []
    /// Per area, the counts of the spread players that have addresses there.
    private(set) var maps: [Area: CountMap] = [:]

    static var spread: Area { Area.max }

    init() {}

    /// Restores counts read from a checkpoint; nil when they contradict each other.
    init?(sole: [Area], maps: [Area: CountMap]) {
        for (area, map) in maps {
            guard area != 0, area != Self.spread, !map.isEmpty else { return nil }
            for (player, n) in map where Int(player) >= sole.count || sole[Int(player)] != Self.spread || n <= 0 { return nil }
        }
        self.sole = sole
        self.maps = maps
    }

    mutating func reservePlayers(_ n: Int) { sole.reserveCapacity(n) }
    mutating func appendPlayer() { sole.append(0) }

    /// Counts `delta` addresses of `player` in `area` (0: an address of no known area).
    /// `total` is the player's all-time addresses with this change made.
    mutating func add(_ delta: Int32, area rawArea: Area, player: UInt32, total: Int32) {
        let area = rawArea == Self.spread ? 0 : rawArea
        let i = Int(player)
        let current = sole[i]
        if delta > 0 {
            if current == 0 {
                // Its first addresses: all in `area` (or in none, which only the maps can say).
                sole[i] = area == 0 ? Self.spread : area
                return
            }
            if current == area { return }
            if current != Self.spread {
                // Its addresses were all in `current`: they move into the maps.
                maps[current, default: CountMap()].add(total - delta, to: player)
                sole[i] = Self.spread
            }
            if area != 0 { maps[area, default: CountMap()].add(delta, to: player) }
        } else {
            if current == Self.spread, area != 0 {
                maps[area, default: CountMap()].add(delta, to: player)
                if maps[area]?.isEmpty == true { maps[area] = nil }
            }
            if total == 0 { sole[i] = 0 }
        }
    }

    /// The players of `area` with their counts; `total` gives a player's all-time addresses.
    func players(in area: Area, total: (UInt32) -> Int32) -> CountMap? {
        var map = maps[area] ?? CountMap()
        for (player, a) in sole.enumerated() where a == area { map.set(total(UInt32(player)), for: UInt32(player)) }
        return map.isEmpty ? nil : map
    }

    /// Every area with its players and their counts.
    func all(total: (UInt32) -> Int32) -> [Area: CountMap] {
        var out = maps
        for (player, a) in sole.enumerated() where a != 0 && a != Self.spread {
            out[a, default: CountMap()].set(total(UInt32(player)), for: UInt32(player))
        }
        return out
    }

    /// The areas of `player` with its addresses in each.
    func areas(of player: UInt32, total: Int32) -> [(area: Area, count: Int32)] {
        let a = sole[Int(player)]
        if a == 0 { return [] }
        if a != Self.spread { return [(a, total)] }
        return maps.compactMap { area, map in map[player].map { (area, $0) } }
    }
}
