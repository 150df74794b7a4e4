import NIOCore
import TextFormats
import GameRules

/// The ipv4.games `/score` object of one period, kept between refreshes as 1,024 chunks of
/// encoded entries (`,"name":[[block,count],…]`). A player's chunk, and its place in it, come
/// from a hash of its encoded name, so a refresh re-encodes only the chunks of the players
/// whose counts moved, and the body is served as the stored bytes themselves: at a million
/// players the object is about 19 MB, and re-encoding it whole for each claim of a trickle
/// cost most of a core (issue 24).
///
/// The chunks are stored in groups of neighbours, one buffer each, and a chunk is a slice of
/// its group's buffer. A buffer's capacity is rounded up to a power of two (NIO); 1,024 small
/// buffers left about a third of their bytes unused but resident. A group holds 256–512 KB
/// when made (at most 64 groups, one for a small body), so malloc maps it for itself and only
/// its written pages are resident (`serve` fixes the mmap threshold at 256 KB); a body whose
/// groups drift past 1 MB or under 64 KB is regrouped. A body is served as its groups, about
/// 40 parts at a million players instead of 1,024. A group that holds the same bytes as the
/// same group of a longer period (the year's and all time's, while the game is younger than
/// a year) shares its buffer (`share`).
///
/// Entries are in the order of that hash, the same on every instance and after every
/// restart (JSON objects carry no order; the ipv4.games pages read the object by key).
struct ScoreChunks {
    static let bits = 10
    static let count = 1 << bits
    /// Group sizes: made at `groupBytes` to twice it, regrouped outside `regroupBelow..<regroupAbove`.
    static let groupBytes = 256 * 1_024
    static let regroupBelow = 64 * 1_024
    static let regroupAbove = 1_024 * 1_024
    static let maxGroups = 64

    /// Each chunk: its entries in key order, each one preceded by a comma; a slice of its
    /// group's buffer.
    private(set) var chunks: [ByteBuffer]
    /// `StripeHash` of each chunk, for the body's ETag.
    private(set) var hashes: [UInt64]
    /// The buffer of each group of `chunksPerGroup` chunks.
    private(set) var groups: [ByteBuffer]
    private var chunksPerGroup: Int { Self.count / groups.count }

    /// Where a name goes: a key from a hash of its quoted JSON form. The top bits pick the
    /// chunk; entries are in key order, ties broken by the quoted bytes.
    struct Key: Comparable {
        var value: UInt64
        var quoted: [UInt8]
        var chunk: Int { Self.chunk(value) }

        static func chunk(_ value: UInt64) -> Int { Int(value >> UInt64(64 - ScoreChunks.bits)) }

        /// FNV-1a, then a multiply to spread its low-entropy high bits over the chunks.
        static func value(quoted: some Sequence<UInt8>) -> UInt64 { FNV1a.hash64(quoted) &* 0x9E37_79B9_7F4A_7C15 }

        /// The same value from the name, without writing its quoted form when it needs no
        /// escaping (nearly every name): the quotes and its bytes are hashed in turn.
        static func value(_ name: PlayerName) -> UInt64 {
            var name = name.value
            let plain = name.withUTF8 { utf8 -> UInt64? in
                guard utf8.allSatisfy(JSONText.isPlain) else { return nil }
                let quote = CollectionOfOne(UInt8(ascii: "\""))
                return FNV1a.hash64(quote, continuing: FNV1a.hash64(utf8, continuing: FNV1a.hash64(quote))) &* 0x9E37_79B9_7F4A_7C15
            }
            return plain ?? value(quoted: Array(JSONText.quoted(name).utf8))
        }

        init(_ name: PlayerName) {
            var writer = JSONWriter()
            writer.appendString(name.value)
            quoted = writer.bytes
            value = Self.value(quoted: quoted)
        }

        /// The key order, against an entry's `value` and quoted name.
        static func order(_ a: UInt64, _ aQuoted: some Sequence<UInt8>, _ b: UInt64, _ bQuoted: some Sequence<UInt8>) -> Bool {
            a != b ? a < b : aQuoted.lexicographicallyPrecedes(bQuoted)
        }

        static func < (a: Key, b: Key) -> Bool { order(a.value, a.quoted, b.value, b.quoted) }
    }

    /// Every player of the table.
    init(_ table: Scoreboard.ScoreTable, names: [PlayerName]) {
        var byChunk = [[(value: UInt64, row: Int32)]](repeating: [], count: Self.count)
        for (row, id) in table.players.enumerated() {
            let value = Key.value(names[Int(id)])
            byChunk[Key.chunk(value)].append((value, Int32(row)))
        }
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(Self.count)
        for chunk in 0..<Self.count {
            // Equal hash values are rare: only then are the names written out to compare.
            byChunk[chunk].sort { $0.value != $1.value ? $0.value < $1.value : Key(names[Int(table.players[Int($0.row)])]) < Key(names[Int(table.players[Int($1.row)])]) }
            var writer = JSONWriter()
            for (_, row) in byChunk[chunk] {
                let row = Int(row)
                Self.appendEntry(names[Int(table.players[row])], table.blocks(of: row).lazy.map { (table.block[$0], table.count[$0]) }, to: &writer)
            }
            byChunk[chunk] = []
            bytes.append(writer.bytes)
        }
        chunks = Array(repeating: ByteBuffer(), count: Self.count)
        hashes = Array(repeating: 0, count: Self.count)
        groups = [ByteBuffer(), ByteBuffer()]
        group(Self.groupCount(bytes: bytes.reduce(0) { $0 + $1.count })) { bytes[$0] }
    }

    /// Groups for a body of `bytes`: a power of two, each group `groupBytes` or more.
    private static func groupCount(bytes: Int) -> Int {
        var n = 1
        while n < maxGroups, bytes / (n * 2) >= groupBytes { n *= 2 }
        return n
    }

    private func chunks(of group: Int) -> Range<Int> { group * chunksPerGroup..<(group + 1) * chunksPerGroup }

    /// Stores every chunk (its bytes from `bytes`) in `count` groups.
    private mutating func group(_ count: Int, _ bytes: (Int) -> some Collection<UInt8>) {
        groups = Array(repeating: ByteBuffer(), count: count)
        for g in 0..<count {
            var out: [UInt8] = []
            out.reserveCapacity(chunks(of: g).reduce(0) { $0 + bytes($1).count })
            var ends: [Int] = []
            for chunk in chunks(of: g) {
                out.append(contentsOf: bytes(chunk))
                ends.append(out.count)
            }
            store(g, out, ends: ends)
        }
    }

    /// Makes `bytes` (the group's chunks one after the other, chunk `i` ending at `ends[i]`)
    /// the group's buffer, and its chunks slices of it.
    private mutating func store(_ group: Int, _ bytes: [UInt8], ends: [Int]) {
        let buffer = ByteBuffer(bytes: bytes)
        groups[group] = buffer
        var start = 0
        bytes.withUnsafeBytes { raw in
            for (i, chunk) in chunks(of: group).enumerated() {
                chunks[chunk] = buffer.getSlice(at: start, length: ends[i] - start)!
                hashes[chunk] = StripeHash.hash(UnsafeRawBufferPointer(rebasing: raw[start..<ends[i]]))
                start = ends[i]
            }
        }
    }

    /// Replaces the entries of `players` with their counts in `period` on `board` (an entry
    /// disappears when a player has no address left in the period).
    /// Gives the groups whose buffer changed.
    @discardableResult
    mutating func update(_ players: some Sequence<UInt32>, period: Period, board: Scoreboard) -> Set<Int> {
        var byChunk: [Int: [(key: Key, name: PlayerName, pairs: [(block: UInt8, count: Int32)])]] = [:]
        for id in players {
            let name = board.names[Int(id)]
            let key = Key(name)
            byChunk[key.chunk, default: []].append((key, name, board.blockCounts(of: id, period: period)))
        }
        var rewritten: [Int: [UInt8]] = [:]
        for (chunk, var moved) in byChunk {
            moved.sort { $0.key < $1.key }
            var writer = JSONWriter()
            writer.reserveCapacity(chunks[chunk].readableBytes + moved.count * 32)
            var next = 0
            func writeMoved() {
                Self.appendEntry(moved[next].name, moved[next].pairs, to: &writer)
                next += 1
            }
            chunks[chunk].withUnsafeReadableBytes { old in
                Self.forEachEntry(old) { quoted, entry in
                    let value = Key.value(quoted: quoted)
                    while next < moved.count, Key.order(moved[next].key.value, moved[next].key.quoted, value, quoted) { writeMoved() }
                    if next < moved.count, moved[next].key.value == value, moved[next].key.quoted.elementsEqual(quoted) {
                        writeMoved() // in place of its old entry
                    } else {
                        writer.append(contentsOf: entry)
                    }
                }
            }
            while next < moved.count { writeMoved() }
            rewritten[chunk] = writer.bytes
        }
        // Each group with a rewritten chunk gets a new buffer: the rewritten chunks and the
        // others' bytes as they were.
        var changed = Set<Int>()
        for group in Set(rewritten.keys.map { $0 / chunksPerGroup }) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(groups[group].readableBytes + 4_096)
            var ends: [Int] = []
            for chunk in chunks(of: group) {
                if let new = rewritten[chunk] { bytes.append(contentsOf: new) } else { bytes.append(contentsOf: chunks[chunk].readableBytesView) }
                ends.append(bytes.count)
            }
            store(group, bytes, ends: ends)
            changed.insert(group)
        }
        // A body that grew or shrank far from its grouping is grouped again (its bytes copied,
        // nothing encoded): every group changed.
        let total = groups.reduce(0) { $0 + $1.readableBytes }
        let count = Self.groupCount(bytes: total)
        if count != groups.count, total / groups.count >= Self.regroupAbove || (groups.count > 1 && total / groups.count < Self.regroupBelow) {
            let old = chunks
            group(count) { old[$0].readableBytesView }
            return Set(0..<count)
        }
        return changed
    }

    /// Every group of `changed` that holds the same bytes as the same group of `other` takes
    /// `other`'s buffer, so equal bodies of two periods are stored once.
    mutating func share(_ other: ScoreChunks, groups changed: Set<Int>) {
        guard groups.count == other.groups.count else { return }
        for group in changed where groups.indices.contains(group) {
            let range = chunks(of: group)
            guard hashes[range] == other.hashes[range], groups[group] == other.groups[group] else { continue }
            groups[group] = other.groups[group]
            for chunk in range { chunks[chunk] = other.chunks[chunk] }
        }
    }

    /// The body's parts: `head`, the groups (the first entry without its comma), `tail`.
    func parts(head: String, tail: String) -> [ByteBuffer] {
        var out = [ByteBuffer(string: head)]
        for group in groups where group.readableBytes > 0 {
            out.append(out.count == 1 ? group.getSlice(at: group.readerIndex + 1, length: group.readableBytes - 1)! : group)
        }
        out.append(ByteBuffer(string: tail))
        return out
    }

    /// A hash of the whole content (every chunk's), for its ETag.
    var contentHash: UInt64 {
        hashes.withUnsafeBytes { StripeHash.hash($0) }
    }

    /// `,"name":[[b,c],…]`; nothing when the player has no pair.
    private static func appendEntry(_ name: PlayerName, _ pairs: some Sequence<(UInt8, Int32)>, to writer: inout JSONWriter) {
        var first = true
        for (block, count) in pairs {
            if first {
                writer.append(UInt8(ascii: ","))
                writer.appendString(name.value)
                writer.append(UInt8(ascii: ":"))
                writer.append(UInt8(ascii: "["))
                first = false
            } else {
                writer.append(UInt8(ascii: ","))
            }
            writer.appendPair(Int(block), Int(count))
        }
        if !first { writer.append(UInt8(ascii: "]")) }
    }

    /// Each entry of a chunk this type wrote: its quoted name and its whole bytes (comma
    /// included). A name ends at the first unescaped quote; the pairs, digits inside
    /// brackets, end at the first `]]`.
    private static func forEachEntry(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        var i = 0
        let n = bytes.count
        while i < n {
            let start = i
            precondition(bytes[i] == UInt8(ascii: ",") && i + 1 < n && bytes[i + 1] == UInt8(ascii: "\""), "a score chunk out of shape")
            var j = i + 2
            while bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
            let quoted = UnsafeRawBufferPointer(rebasing: bytes[(i + 1)...j])
            j += 3 // `":[`
            while !(bytes[j] == UInt8(ascii: "]") && bytes[j + 1] == UInt8(ascii: "]")) { j += 1 }
            i = j + 2
            body(quoted, UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
        }
    }
}
