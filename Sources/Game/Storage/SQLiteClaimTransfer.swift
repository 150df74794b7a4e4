import Foundation
import GRDB
import GRDBSQLite
import IPAddress
import GameRules

/// `ipquest claims export|import` for SQLite, streamed: memory stays flat at any table size
/// (a read buffer, a write buffer, SQLite's page cache), and neither side builds a `Claim` or a
/// `String` per row. The file format: one claim per line, `ip name claimed_at` or
/// `ip name claimed_at country asn provider`, separated by a tab (TSV) or a comma (CSV),
/// an optional header line starting with `ip`.
extension SQLiteClaimStorage {
    /// Where an import stands, for progress lines.
    public struct ImportProgress: Sendable {
        /// Rows read and validated so far (header and empty lines excluded).
        public var rows: Int
        /// Bytes read from the input so far.
        public var bytes: Int
    }

    /// What an import did. When `errorCount` is not zero the transaction was rolled back and
    /// nothing was written; `errors` holds the first ten messages (`line N: …`).
    public struct ImportReport: Sendable {
        public var rows: Int
        public var errors: [String]
        public var errorCount: Int
    }

    /// Number of messages an import keeps; it goes on reading (without writing) to count the rest.
    public static let importErrorsKept = 10

    /// Writes every claim (`claims` with the not yet folded journal rows on top, as `loadAll`
    /// sees them) in address order to `fd`, header first. Reads one snapshot, so it may run
    /// while a server writes. Calls `progress` with the number of rows written every
    /// `progressEvery` rows. Returns the number of rows written.
    public func exportClaims(toFileDescriptor fd: Int32, separator: UInt8 = UInt8(ascii: "\t"),
                             progressEvery: Int = 1_000_000, progress: (Int) -> Void = { _ in }) throws -> Int {
        let progressEvery = max(1, progressEvery)
        return try pool.read { db in
            // The journal is short (compaction folds it between claim batches): held whole.
            var overrides: [UInt32: Claim] = [:]
            let journal = try Row.fetchCursor(db, sql: "SELECT \(Self.columns) FROM claim_journal ORDER BY seq")
            while let row = try journal.next() {
                if let claim = Self.claim(from: row) { overrides[claim.address.value] = claim }
            }
            let pending = overrides.keys.sorted()
            var next = 0

            var out = ClaimWriter(fd: fd, separator: separator)
            defer { out.deallocate() }
            out.header()
            let statement = try db.makeStatement(sql: "SELECT \(Self.columns) FROM claims ORDER BY ip")
            let handle = statement.sqliteStatement
            defer { sqlite3_reset(handle) }
            var count = 0
            func counted() throws {
                count += 1
                if count % progressEvery == 0 {
                    try out.flush()
                    progress(count)
                }
            }
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: statement.sql)
                }
                guard let ip = UInt32(exactly: sqlite3_column_int64(handle, 0)) else { continue }
                while next < pending.count, pending[next] < ip {
                    try out.claim(overrides[pending[next]]!)
                    next += 1
                    try counted()
                }
                if next < pending.count, pending[next] == ip {
                    try out.claim(overrides[ip]!)
                    next += 1
                } else {
                    try out.row(ip: ip, handle)
                }
                try counted()
            }
            while next < pending.count {
                try out.claim(overrides[pending[next]]!)
                next += 1
                try counted()
            }
            try out.flush()
            return count
        }
    }

    /// Reads claims from `fd` into `claims` in one write transaction: rows replace the current
    /// owner of their address, the last row of an address wins. The rules and messages of a
    /// row are the ones `claims import` always had. At the first bad row the transaction is
    /// rolled back and reading goes on, without writing, only to report: the first ten
    /// messages and the number of bad rows. A crash at any moment leaves the database as it was
    /// before (one transaction). Calls `progress` every `progressEvery` rows.
    public func importClaims(fromFileDescriptor fd: Int32, separator: UInt8 = UInt8(ascii: "\t"),
                             progressEvery: Int = 1_000_000,
                             progress: (ImportProgress) -> Void = { _ in }) throws -> ImportReport {
        try importClaims(fromFileDescriptor: fd, separator: separator, chunkSize: 4 << 20,
                         progressEvery: progressEvery, progress: progress)
    }

    /// `chunkSize` is the size of one read (small in tests, to put rows across reads).
    func importClaims(fromFileDescriptor fd: Int32, separator: UInt8, chunkSize: Int,
                      progressEvery: Int, progress: (ImportProgress) -> Void) throws -> ImportReport {
        precondition(chunkSize > 0)
        let progressEvery = max(1, progressEvery)
        return try pool.writeWithoutTransaction { db in
            // Bigger page cache for the import only (64 MiB; SQLite spills dirty pages to
            // the WAL beyond it, so memory stays bounded whatever the size of the input).
            let previousCacheSize = try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? -2000
            try db.execute(sql: "PRAGMA cache_size = -65536")
            defer { try? db.execute(sql: "PRAGMA cache_size = \(previousCacheSize)") }

            try db.execute(sql: "BEGIN IMMEDIATE TRANSACTION")
            var open = true
            func rollback() {
                if open, db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
                open = false
            }
            do {
                // Fold the journal first, so that older journal rows do not override imported
                // ones, and bump the generation: a board checkpoint taken before is stale.
                try Self.foldAllAndBumpGeneration(db)
                let statement = try db.makeStatement(sql: """
                    INSERT INTO claims (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (ip) DO UPDATE SET \(Self.upsertSet)
                    """)
                let handle = statement.sqliteStatement
                var report = ImportReport(rows: 0, errors: [], errorCount: 0)
                var reader = ClaimLineReader(fd: fd, chunkSize: chunkSize)
                defer { reader.deallocate() }
                let parser = ClaimRowParser(separator: separator)
                while let line = try reader.next() {
                    let row: ClaimRowParser.Row
                    switch parser.parse(line.bytes, number: line.number) {
                    case .skip: continue
                    case .bad(let message):
                        rollback()
                        report.errorCount += 1
                        if report.errors.count < Self.importErrorsKept { report.errors.append(message) }
                        continue
                    case .row(let parsed): row = parsed
                    }
                    report.rows += 1
                    if open {
                        row.bind(to: handle)
                        let code = sqlite3_step(handle)
                        sqlite3_reset(handle)
                        guard code == SQLITE_DONE else {
                            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: statement.sql)
                        }
                    }
                    if report.rows % progressEvery == 0 {
                        progress(ImportProgress(rows: report.rows, bytes: reader.bytesRead))
                    }
                }
                sqlite3_clear_bindings(handle) // they point into the reader's buffer
                if open {
                    try db.execute(sql: "COMMIT TRANSACTION")
                    open = false
                    // One transaction went through the WAL: copy it into the database file
                    // now and give the WAL's disk space back.
                    _ = try? db.checkpoint(.truncate)
                }
                return report
            } catch {
                rollback()
                throw error
            }
        }
    }
}

/// One line of a claims file, without its line end.
struct ClaimLine {
    var bytes: UnsafeMutableBufferPointer<UInt8>
    /// 1-based, counting every line of the input (empty lines too).
    var number: Int
}

/// Reads lines from a file descriptor in chunks, a line possibly spread over two reads. A line
/// longer than `maximumLineLength` is handed out cut at that length (it fails validation).
struct ClaimLineReader {
    static let maximumLineLength = 64 << 10
    let fd: Int32
    let chunkSize: Int
    private let buffer: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private var start = 0, end = 0
    private var atEOF = false
    /// Skipping the rest of an over-long line.
    private var discarding = false
    private(set) var bytesRead = 0
    private var lineNumber = 0

    init(fd: Int32, chunkSize: Int) {
        self.fd = fd
        self.chunkSize = chunkSize
        capacity = chunkSize + Self.maximumLineLength
        buffer = .allocate(capacity: capacity)
    }

    func deallocate() { buffer.deallocate() }

    /// The next line, or nil at the end of the input. The bytes are valid until the next call.
    mutating func next() throws -> ClaimLine? {
        while true {
            if start < end, let newline = memchr(buffer + start, Int32(UInt8(ascii: "\n")), end - start) {
                let stop = buffer.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                defer { start = stop + 1 }
                if discarding { discarding = false; continue }
                return line(from: start, to: stop)
            }
            if atEOF {
                guard start < end else { return nil }
                defer { start = end }
                if discarding { discarding = false; return nil }
                return line(from: start, to: end)
            }
            if !discarding, end - start >= Self.maximumLineLength {
                // No line end within the limit: hand out what we have, drop the rest of the line.
                defer { start = end; discarding = true }
                return line(from: start, to: end)
            }
            if discarding { start = end }
            try fill()
        }
    }

    private mutating func line(from: Int, to: Int) -> ClaimLine {
        lineNumber += 1
        var stop = to
        if stop > from, buffer[stop - 1] == UInt8(ascii: "\r") { stop -= 1 }
        return ClaimLine(bytes: UnsafeMutableBufferPointer(start: buffer + from, count: stop - from), number: lineNumber)
    }

    private mutating func fill() throws {
        if start > 0 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        let room = min(chunkSize, capacity - end)
        while true {
            let n = read(fd, buffer + end, room)
            if n > 0 { end += n; bytesRead += n; return }
            if n == 0 { atEOF = true; return }
            if errno == EINTR { continue }
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "read failed: \(String(cString: strerror(errno)))"])
        }
    }
}

/// The rules of one row of a claims file. Fast paths on bytes; wherever a field is not plainly
/// valid, the same check runs on a `String` as it always did, so that what is accepted and the
/// messages stay the same.
struct ClaimRowParser {
    let separator: UInt8

    /// A valid row; the texts point into the line.
    struct Row {
        var ip: UInt32
        var name: UnsafeMutableBufferPointer<UInt8>
        var claimedAt: Int64
        var country: UnsafeMutableBufferPointer<UInt8>?
        var asn: UInt32?
        var provider: UnsafeMutableBufferPointer<UInt8>?

        /// Binds the six `SQLiteClaimStorage.columns`, without copying the texts: the line must
        /// stay as it is until the statement has run.
        func bind(to handle: SQLiteStatement) {
            func text(_ index: Int32, _ bytes: UnsafeMutableBufferPointer<UInt8>?) {
                guard let bytes, let base = bytes.baseAddress else { sqlite3_bind_null(handle, index); return }
                _ = base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite3_bind_text(handle, index, $0, Int32(bytes.count), nil) // SQLITE_STATIC
                }
            }
            sqlite3_bind_int64(handle, 1, Int64(ip))
            text(2, name)
            sqlite3_bind_int64(handle, 3, claimedAt)
            text(4, country)
            if let asn { sqlite3_bind_int64(handle, 5, Int64(asn)) } else { sqlite3_bind_null(handle, 5) }
            text(6, provider)
        }

        var claim: Claim {
            func string(_ b: UnsafeMutableBufferPointer<UInt8>?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
            return Claim(address: IPv4Address(ip), name: PlayerName(trusted: string(name)!), claimedAt: claimedAt,
                         origin: ClaimOrigin(country: string(country), asn: asn, provider: string(provider)))
        }
    }

    enum Outcome {
        case skip
        case row(Row)
        case bad(String)
    }

    /// Bytes allowed in a name (PlayerName.isAllowed, as a table).
    private static let nameBytes: [Bool] = (0...255).map { PlayerName.isAllowed(UInt8($0)) }

    func parse(_ line: UnsafeMutableBufferPointer<UInt8>, number: Int) -> Outcome {
        if line.isEmpty { return .skip }
        // Up to six fields; past six only counted (for the message).
        var fields: (Slice, Slice, Slice, Slice, Slice, Slice) = (.empty, .empty, .empty, .empty, .empty, .empty)
        var count = 0
        var fieldStart = 0
        let n = line.count
        var i = 0
        while true {
            if i == n || line[i] == separator {
                if count < 6 {
                    var s = Slice(start: fieldStart, end: i)
                    if s.end - s.start >= 2, line[s.start] == UInt8(ascii: "\""), line[s.end - 1] == UInt8(ascii: "\"") {
                        s.start += 1; s.end -= 1
                    }
                    withUnsafeMutableBytes(of: &fields) { $0.storeBytes(of: s, toByteOffset: count * MemoryLayout<Slice>.stride, as: Slice.self) }
                }
                count += 1
                if i == n { break }
                fieldStart = i + 1
            }
            i += 1
        }
        func bytes(_ s: Slice) -> UnsafeMutableBufferPointer<UInt8> {
            UnsafeMutableBufferPointer(rebasing: line[s.start..<s.end])
        }
        func text(_ s: Slice) -> String { String(decoding: bytes(s), as: UTF8.self) }

        if number == 1, count >= 1, bytes(fields.0).elementsEqual("ip".utf8) { return .skip } // header
        guard count == 3 || count == 6 else {
            return .bad("line \(number): expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got \(count)")
        }
        guard let ip = IPv4Address(utf8: UnsafeBufferPointer(bytes(fields.0)))?.value else {
            return .bad("line \(number): '\(text(fields.0))' is not an IPv4 address")
        }
        let name = bytes(fields.1)
        if !(1...PlayerName.maximumLength).contains(name.count) || !name.allSatisfy({ Self.nameBytes[Int($0)] }) {
            do { _ = try PlayerName(validating: text(fields.1)) } catch {
                return .bad("line \(number): \(error.description)")
            }
        }
        guard let at = Self.digits(bytes(fields.2), maxDigits: 18).map(Int64.init) ?? Int64(text(fields.2)), at >= 0 else {
            return .bad("line \(number): '\(text(fields.2))' is not a Unix time")
        }
        var row = Row(ip: ip, name: name, claimedAt: at, country: nil, asn: nil, provider: nil)
        if count == 6 {
            let country = bytes(fields.3)
            if !country.isEmpty {
                guard country.count == 2, Self.isLetter(country[0]), Self.isLetter(country[1]) else {
                    return .bad("line \(number): '\(text(fields.3))' is not a two-letter country code")
                }
                country[0] &= 0xDF // upper case, as ClaimOrigin keeps it
                country[1] &= 0xDF
                row.country = country
            }
            let asnBytes = bytes(fields.4)
            if !asnBytes.isEmpty {
                guard let asn = Self.digits(asnBytes, maxDigits: 9).map(UInt32.init) ?? UInt32(text(fields.4)) else {
                    return .bad("line \(number): '\(text(fields.4))' is not an AS number")
                }
                row.asn = asn == 0 ? nil : asn // as ClaimOrigin keeps it
            }
            let provider = bytes(fields.5)
            if !provider.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) || provider.count > 64 {
                let text = text(fields.5)
                guard text.utf8.count <= 64, text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                    return .bad("line \(number): '\(text)' is not a provider name")
                }
            }
            if !provider.isEmpty { row.provider = provider }
        }
        return .row(row)
    }

    struct Slice {
        var start: Int, end: Int
        static let empty = Slice(start: 0, end: 0)
    }

    /// The value of 1…`maxDigits` ASCII digits, or nil for anything else (left to the
    /// standard library's parsing, which also takes a sign).
    @inline(__always)
    private static func digits(_ bytes: UnsafeMutableBufferPointer<UInt8>, maxDigits: Int) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
        var value: UInt64 = 0
        for b in bytes {
            let d = b &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            value = value &* 10 &+ UInt64(d)
        }
        return value
    }

    @inline(__always)
    private static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
}

/// A buffered writer of claim rows to a file descriptor (1 MiB at a time), numbers and
/// addresses formatted by hand into the buffer.
struct ClaimWriter {
    static let capacity = 1 << 20
    let fd: Int32
    let separator: UInt8
    private let buffer: UnsafeMutablePointer<UInt8>
    private var used = 0

    init(fd: Int32, separator: UInt8) {
        self.fd = fd
        self.separator = separator
        buffer = .allocate(capacity: Self.capacity)
    }

    func deallocate() { buffer.deallocate() }

    mutating func flush() throws {
        var offset = 0
        while offset < used {
            let n = write(fd, buffer + offset, used - offset)
            if n >= 0 { offset += n; continue }
            if errno == EINTR { continue }
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "write failed: \(String(cString: strerror(errno)))"])
        }
        used = 0
    }

    /// Room for `count` more bytes (flushing first if needed). Rows longer than the buffer
    /// only come from text columns, which `append(bytes:)` writes through.
    @inline(__always)
    private mutating func reserve(_ count: Int) throws {
        if used + count > Self.capacity { try flush() }
    }

    private mutating func append(bytes: UnsafeRawBufferPointer) throws {
        if used + bytes.count > Self.capacity {
            try flush()
            if bytes.count > Self.capacity {
                // Straight through, by way of the buffer.
                var offset = 0
                while offset < bytes.count {
                    let n = min(bytes.count - offset, Self.capacity)
                    UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
                    used = n
                    try flush()
                    offset += n
                }
                return
            }
        }
        if let base = bytes.baseAddress, bytes.count > 0 {
            UnsafeMutableRawPointer(buffer + used).copyMemory(from: base, byteCount: bytes.count)
        }
        used += bytes.count
    }

    private mutating func append(_ string: String) throws {
        var string = string
        try string.withUTF8 { try append(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    private mutating func put(_ byte: UInt8) {
        buffer[used] = byte
        used += 1
    }

    /// Decimal digits of `value` (needs 20 bytes reserved).
    @inline(__always)
    private mutating func put(_ value: UInt64) {
        var v = value
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var i = 24
            repeat {
                i -= 1
                raw[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
            } while v > 0
            let n = 24 - i
            UnsafeMutableRawPointer(buffer + used).copyMemory(from: raw.baseAddress! + i, byteCount: n)
            return n
        }
        used += n
    }

    @inline(__always)
    private mutating func put(_ value: Int64) {
        if value < 0 { put(UInt8(ascii: "-")) }
        put(value.magnitude)
    }

    @inline(__always)
    private mutating func put(octet: UInt32) {
        let octet = UInt8(truncatingIfNeeded: octet)
        if octet >= 100 { put(48 + octet / 100) }
        if octet >= 10 { put(48 + (octet / 10) % 10) }
        put(48 + octet % 10)
    }

    @inline(__always)
    private mutating func put(ip: UInt32) {
        put(octet: ip >> 24); put(UInt8(ascii: "."))
        put(octet: ip >> 16); put(UInt8(ascii: "."))
        put(octet: ip >> 8); put(UInt8(ascii: "."))
        put(octet: ip)
    }

    mutating func header() {
        let s = separator
        for (i, name) in ["ip", "name", "claimed_at", "country", "asn", "provider"].enumerated() {
            if i > 0 { put(s) }
            for b in name.utf8 { put(b) }
        }
        put(UInt8(ascii: "\n"))
    }

    /// A row straight from the columns of `SELECT columns FROM claims`, as `claim(from:)`
    /// would read it: country normalised, AS 0 or out of range as none.
    mutating func row(ip: UInt32, _ handle: SQLiteStatement) throws {
        try reserve(80)
        put(ip: ip)
        put(separator)
        try column(handle, 1)
        try reserve(60)
        put(separator)
        put(sqlite3_column_int64(handle, 2))
        put(separator)
        if sqlite3_column_type(handle, 3) != SQLITE_NULL {
            if let text = sqlite3_column_text(handle, 3), sqlite3_column_bytes(handle, 3) == 2,
               text[0] >= 65, text[0] <= 90, text[1] >= 65, text[1] <= 90 {
                put(text[0]); put(text[1])
            } else if let country = ClaimOrigin.normalizedCountry(String(cString: sqlite3_column_text(handle, 3))) {
                for b in country.utf8 { put(b) }
            }
        }
        put(separator)
        if sqlite3_column_type(handle, 4) != SQLITE_NULL, let asn = UInt32(exactly: sqlite3_column_int64(handle, 4)), asn != 0 {
            put(UInt64(asn))
        }
        put(separator)
        try column(handle, 5)
        try reserve(1)
        put(UInt8(ascii: "\n"))
    }

    private mutating func column(_ handle: SQLiteStatement, _ index: Int32) throws {
        guard let text = sqlite3_column_text(handle, index) else { return }
        let count = Int(sqlite3_column_bytes(handle, index))
        try append(bytes: UnsafeRawBufferPointer(start: text, count: count))
    }

    mutating func claim(_ claim: Claim) throws {
        try reserve(80)
        put(ip: claim.address.value)
        put(separator)
        try append(claim.name.value)
        try reserve(60)
        put(separator)
        put(claim.claimedAt)
        put(separator)
        if let country = claim.origin.country { try append(country) }
        try reserve(20)
        put(separator)
        if let asn = claim.origin.asn { put(UInt64(asn)) }
        put(separator)
        if let provider = claim.origin.provider { try append(provider) }
        try reserve(1)
        put(UInt8(ascii: "\n"))
    }
}
