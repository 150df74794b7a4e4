import Foundation
import TextFormats
import NIOCore
import Synchronization
import GameRules

/// The read models the pages show, decoded from the same pre-encoded snapshots the JSON API
/// serves, so the server-rendered first paint and the live script always agree. Decoded
/// values are cached by the snapshot's ETag: a page view costs no board work.
final class WebData: Sendable {
    struct Tile: Decodable, Sendable {
        var block: Int
        var holder: String?
        var tied: Bool
        var count: Int
        var total: Int
        var players: Int
    }

    struct Blocks: Decodable, Sendable {
        var updated_at: Int64
        /// All 256 blocks in order (the API lists only the claimed ones).
        var blocks: [Tile]

        enum CodingKeys: String, CodingKey { case updated_at, blocks }

        init(from decoder: any Decoder) throws {
            let fields = try decoder.container(keyedBy: CodingKeys.self)
            updated_at = try fields.decode(Int64.self, forKey: .updated_at)
            var all = (0..<256).map { Tile(block: $0, holder: nil, tied: false, count: 0, total: 0, players: 0) }
            for tile in try fields.decode([Tile].self, forKey: .blocks) where (0..<256).contains(tile.block) { all[tile.block] = tile }
            blocks = all
        }
    }

    struct Leader: Decodable, Sendable {
        var rank: Int
        var name: String
        var block_count: Int
        var addresses: Int
    }

    struct Leaderboard: Decodable, Sendable {
        var period: String
        var updated_at: Int64
        var players: [Leader]
    }

    struct RecentClaim: Decodable, Sendable {
        var ip: String
        var block: Int
        var name: String
        var claimed_at: Int64
    }

    struct Recent: Decodable, Sendable {
        var updated_at: Int64
        var claims: [RecentClaim]
    }

    private struct Cached: Sendable {
        var etag: String
        var value: any Sendable
    }

    private let cache = Mutex<[String: Cached]>([:])

    func decoded<T: Decodable & Sendable>(_ key: String, from engine: GameEngine, as type: T.Type) -> (T, etag: String)? {
        guard let encoded = engine.snapshot[key] else { return nil }
        if let hit = cache.withLock({ $0[key] }), hit.etag == encoded.etag, let value = hit.value as? T {
            return (value, encoded.etag)
        }
        guard let value = try? JSONDecoder().decode(T.self, from: Data(encoded.body.readableBytesView)) else { return nil }
        cache.withLock { $0[key] = Cached(etag: encoded.etag, value: value) }
        return (value, encoded.etag)
    }

    func blocks(_ engine: GameEngine) -> (Blocks, etag: String)? {
        decoded(Snapshot.blocksKey(.all), from: engine, as: Blocks.self)
    }

    func leaderboard(_ engine: GameEngine, _ period: Period, residential: Bool = false) -> (Leaderboard, etag: String)? {
        decoded(Snapshot.leaderboardKey(period, residential: residential), from: engine, as: Leaderboard.self)
    }

    func recent(_ engine: GameEngine) -> (Recent, etag: String)? {
        decoded(Snapshot.apiRecentKey, from: engine, as: Recent.self)
    }
}

extension GameEngine {
    /// One block's standing and its top players in a period, from the live board.
    func blockDetail(_ block: Int, period: Period, limit: Int = 10) -> (standing: Scoreboard.BlockStanding, top: [(name: PlayerName, count: Int)]) {
        board.withLock { board in
            board.advance(to: clock.seconds)
            return (board.standing(block: block, period: period), board.blockPlayers(block: block, period: period, limit: limit))
        }
    }

    /// Per-/24 leaders of one block among current owners (one pass over the board).
    func areaHolders(_ block: Int) -> (names: [PlayerName], holders: [Int32]) {
        board.withLock { $0.areaHolders(block: block) }
    }

    /// Changes whenever an address of `block` changes owner (or is claimed again).
    func ownersVersion(block: Int) -> UInt64 {
        board.withLock { $0.ownersVersion(block: block) }
    }

    var nowSeconds: Int64 { clock.seconds }

    /// Addresses per `2^shift`-address area over `blocks` (only `name`'s when given), one
    /// block per lock hold so claims never wait for the whole walk; nil for an unknown name.
    func areaCounts(blocks: Range<Int>, shift: Int, of name: PlayerName? = nil) -> [UInt32]? {
        let perBlock = 1 << (24 - shift)
        var counts = [UInt32](repeating: 0, count: blocks.count * perBlock)
        for (i, block) in blocks.enumerated() {
            let known = board.withLock { $0.addAreaCounts(inBlock: block, shift: shift, of: name, into: &counts, offset: i * perBlock) }
            if !known { return nil }
        }
        return counts
    }

    /// A player's addresses at the end of each of the last `days` days, oldest first.
    func holdings(of name: PlayerName, days: Int) -> [(day: Int64, addresses: Int)] {
        board.withLock { board in
            board.advance(to: clock.seconds)
            return board.holdings(of: name, days: days, now: clock.seconds)
        }
    }
}

/// Reserved /8 blocks that the map marks: "this network", private use, loopback, multicast and
/// the former class E.
enum ReservedBlocks {
    static func contains(_ block: Int) -> Bool { block == 0 || block == 10 || block == 127 || block >= 224 }

    static func reason(_ block: Int) -> String? {
        switch block {
        case 0: return "“this network” (RFC 791), not routable"
        case 10: return "private use (RFC 1918), not routable on the internet"
        case 127: return "loopback (RFC 1122): only the machine itself"
        case 224...239: return "multicast (RFC 5771)"
        case 240...255: return "reserved (RFC 1112), including broadcast"
        default: return nil
        }
    }
}

/// The stable colour of a name, shared by the stylesheet classes, the script and the PNG map.
enum NameColour {

    static func hueClass(_ name: String) -> Int { Int(FNV1a.hash32(name.utf8) % UInt32(WebStyle.hueClasses)) }

    /// The class's colour as RGB: hsl(5°·class, 70%, 78%) like the stylesheet (at 60% lightness for
    /// the pixel map, where light pastels would vanish against the empty background).
    static func rgb(hueClass: Int, lightness: Double = 0.60) -> (UInt8, UInt8, UInt8) {
        let h = Double(hueClass * 5) / 360, s = 0.70, l = lightness
        let q = l < 0.5 ? l * (1 + s) : l + s - l * s
        let p = 2 * l - q
        func channel(_ t0: Double) -> UInt8 {
            var t = t0
            if t < 0 { t += 1 }
            if t > 1 { t -= 1 }
            let v: Double
            if t < 1.0 / 6 { v = p + (q - p) * 6 * t } else if t < 0.5 { v = q } else if t < 2.0 / 3 { v = p + (q - p) * (2.0 / 3 - t) * 6 } else { v = p }
            return UInt8(max(0, min(255, (v * 255).rounded())))
        }
        return (channel(h + 1.0 / 3), channel(h), channel(h - 1.0 / 3))
    }
}
