import NIOCore
import TextFormats
import GameRules

/// The ipv4.games `/score` object of one period, kept between refreshes as 1,024 chunks of
/// encoded entries (`,"name":[[block,count],…]`). A player's chunk, and its place in it, come
/// from a hash of its encoded name, so a refresh re-encodes only the chunks of the players
/// whose counts moved, and the body is served as the chunks themselves: at a million
/// players the object is about 19 MB, and re-encoding it whole for each claim of a trickle
/// cost most of a core (issue 24).
///
/// Entries are in the order of that hash, the same on every instance and after every
/// restart (JSON objects carry no order; the ipv4.games pages read the object by key).
struct ScoreChunks {
    static let bits = 10
    static let count = 1 << bits

    /// Each chunk: its entries in key order, each one preceded by a comma.
    private(set) var chunks: [ByteBuffer]
    /// `StripeHash` of each chunk, for the body's ETag.
    private(set) var hashes: [UInt64]

    /// Where a name goes: its quoted JSON form, and a key from a hash of that form (the top
    /// bits pick the chunk; entries are in key order, ties by the quoted bytes).
    struct Key {
        var value: UInt64
        var quoted: [UInt8]
        var chunk: Int { Self.chunk(value) }

        static func chunk(_ value: UInt64) -> Int { Int(value >> UInt64(64 - ScoreChunks.bits)) }

        /// FNV-1a, then a multiply to spread its low-entropy high bits over the chunks.
        static func value(_ quoted: some Sequence<UInt8>) -> UInt64 { FNV1a.hash64(quoted) &* 0x9E37_79B9_7F4A_7C15 }

        static func quoted(_ name: PlayerName) -> [UInt8] {
            var writer = JSONWriter()
            writer.appendString(name.value)
            return writer.bytes
        }

        init(_ name: PlayerName) {
            quoted = Self.quoted(name)
            value = Self.value(quoted)
        }

        /// Whether this key sorts before the entry with `value` and `quoted`.
        func precedes(_ value: UInt64, _ quoted: UnsafeRawBufferPointer) -> Bool {
            self.value != value ? self.value < value : self.quoted.lexicographicallyPrecedes(quoted)
        }

        func equals(_ value: UInt64, _ quoted: UnsafeRawBufferPointer) -> Bool {
            self.value == value && self.quoted.elementsEqual(quoted)
        }
    }

    /// Every player of the table.
    init(_ table: Scoreboard.ScoreTable, names: [PlayerName]) {
        var byChunk = [[(value: UInt64, row: Int32)]](repeating: [], count: Self.count)
        for (row, id) in table.players.enumerated() {
            let value = Key.value(Key.quoted(names[Int(id)]))
            byChunk[Key.chunk(value)].append((value, Int32(row)))
        }
        chunks = []
        hashes = []
        chunks.reserveCapacity(Self.count)
        hashes.reserveCapacity(Self.count)
        for var rows in byChunk {
            rows.sort {
                $0.value != $1.value ? $0.value < $1.value
                    : Key.quoted(names[Int(table.players[Int($0.row)])]).lexicographicallyPrecedes(Key.quoted(names[Int(table.players[Int($1.row)])]))
            }
            var writer = JSONWriter()
            for (_, row) in rows {
                let row = Int(row)
                Self.appendEntry(Key.quoted(names[Int(table.players[row])]), table.blocks(of: row).lazy.map { (table.block[$0], table.count[$0]) }, to: &writer)
            }
            append(writer.bytes)
        }
    }

    /// Replaces the entries of `players` with their counts in `period` on `board` (an entry
    /// disappears when a player has no address left in the period).
    mutating func update(_ players: some Sequence<UInt32>, period: Period, board: Scoreboard) {
        var byChunk: [Int: [(key: Key, pairs: [(block: UInt8, count: Int32)])]] = [:]
        for id in players {
            let key = Key(board.names[Int(id)])
            byChunk[key.chunk, default: []].append((key, board.blockCounts(of: id, period: period)))
        }
        for (chunk, var moved) in byChunk {
            moved.sort { a, b in a.key.value != b.key.value ? a.key.value < b.key.value : a.key.quoted.lexicographicallyPrecedes(b.key.quoted) }
            var writer = JSONWriter()
            writer.reserveCapacity(chunks[chunk].readableBytes + moved.count * 32)
            var next = 0
            chunks[chunk].withUnsafeReadableBytes { old in
                Self.forEachEntry(old) { quoted, entry in
                    let value = Key.value(quoted)
                    while next < moved.count, moved[next].key.precedes(value, quoted) {
                        Self.appendEntry(moved[next].key.quoted, moved[next].pairs, to: &writer)
                        next += 1
                    }
                    if next < moved.count, moved[next].key.equals(value, quoted) {
                        Self.appendEntry(moved[next].key.quoted, moved[next].pairs, to: &writer)
                        next += 1
                    } else {
                        writer.append(contentsOf: entry)
                    }
                }
            }
            while next < moved.count {
                Self.appendEntry(moved[next].key.quoted, moved[next].pairs, to: &writer)
                next += 1
            }
            chunks[chunk] = ByteBuffer(bytes: writer.bytes)
            hashes[chunk] = Self.hash(writer.bytes)
        }
    }

    /// The body's parts: `head`, the chunks (the first entry without its comma), `tail`.
    func parts(head: String, tail: String) -> [ByteBuffer] {
        var out = [ByteBuffer(string: head)]
        for chunk in chunks where chunk.readableBytes > 0 {
            out.append(out.count == 1 ? chunk.getSlice(at: chunk.readerIndex + 1, length: chunk.readableBytes - 1)! : chunk)
        }
        out.append(ByteBuffer(string: tail))
        return out
    }

    /// A hash of the whole content (every chunk's), for its ETag.
    var contentHash: UInt64 {
        hashes.withUnsafeBytes { StripeHash.hash($0) }
    }

    private mutating func append(_ bytes: [UInt8]) {
        chunks.append(ByteBuffer(bytes: bytes))
        hashes.append(Self.hash(bytes))
    }

    private static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { StripeHash.hash($0) }
    }

    /// `,"name":[[b,c],…]`; nothing when the player has no pair.
    private static func appendEntry(_ quoted: [UInt8], _ pairs: some Sequence<(UInt8, Int32)>, to writer: inout JSONWriter) {
        var first = true
        for (block, count) in pairs {
            if first {
                writer.append(UInt8(ascii: ","))
                writer.append(contentsOf: quoted)
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
