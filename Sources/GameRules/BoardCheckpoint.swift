import TextFormats
import Foundation

/// The board written to a file, so a restart loads it instead of replaying every stored claim.
///
/// Everything the board holds is written as it is in memory — pages of address slots, the
/// counts per (period, block, player), per-player totals, the area counts, the time-ordered
/// log — so loading is reading and copying, not recounting. The file ends with a 64-bit hash
/// of everything before it; it is written beside the target and renamed over it only after an
/// fsync, so a crash mid-write leaves the previous checkpoint. A file that is missing, cut
/// short, corrupted, of another format version, or of another storage generation is refused
/// with a reason, and the caller rebuilds from storage: a checkpoint is never trusted blindly.
public enum BoardCheckpoint {
    static let magic: [UInt8] = Array("IPQBOARD".utf8)
    static let formatVersion: UInt32 = 3

    public struct Refused: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { "board checkpoint refused: \(reason)" }
    }

    /// Writes `board` (taken at `board.storagePosition`) atomically to `path`.
    public static func write(_ board: Scoreboard, generation: Int64, to path: String) throws {
        let temporary = path + ".tmp"
        var out = try CheckpointWriter(path: temporary)
        do {
            out.bytes(magic)
            out.u32(formatVersion)
            out.i64(generation)
            board.encode(into: &out)
            try out.finish()
        } catch {
            out.abandon()
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw Refused(reason: "cannot rename \(temporary): \(String(cString: strerror(e)))")
        }
        // The rename itself must survive a crash before the journal it replaces is folded.
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Reads a checkpoint; throws `Refused` (with the reason) for anything but an intact file
    /// of this format.
    public static func read(from path: String) throws -> (board: Scoreboard, generation: Int64) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw Refused(reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try data.withUnsafeBytes { raw -> (Scoreboard, Int64) in
            guard raw.count >= magic.count + 4 + 8 + 8 else { throw Refused(reason: "\(path) is too short (\(raw.count) bytes)") }
            let body = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)])
            let stored = raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self)
            guard StripeHash.hash(body) == stored else { throw Refused(reason: "\(path) fails its checksum (cut short or corrupted)") }
            var input = CheckpointReader(body)
            guard try input.bytes(magic.count) == magic else { throw Refused(reason: "\(path) is not a board checkpoint") }
            let version = try input.u32()
            guard version == formatVersion else { throw Refused(reason: "\(path) has format \(version), this build reads \(formatVersion)") }
            let generation = try input.i64()
            let board = try Scoreboard(decoding: &input)
            guard input.isAtEnd else { throw Refused(reason: "\(path) has \(input.remaining) unexpected bytes at its end") }
            return (board, generation)
        }
    }
}

/// Buffered, hashed writes to a new file; `finish` appends the hash and fsyncs.
struct CheckpointWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var checksum = StripeHash()
    /// The first write error (errno), reported by `finish`.
    private var failure: Int32 = 0
    private static let flushAt = 4 << 20

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BoardCheckpoint.Refused(reason: "cannot create \(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.flushAt)
    }

    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        if buffer.count + b.count > Self.flushAt {
            flush()
            if b.count > Self.flushAt {
                // Large arrays (pages of a /8, the log) go out as they are, without a copy.
                checksum.update(b)
                writeAll(b)
                return
            }
        }
        buffer.append(contentsOf: b)
    }

    mutating func bytes(_ b: [UInt8]) { b.withUnsafeBytes { bytes($0) } }
    mutating func raw<T>(_ values: [T]) { values.withUnsafeBytes { bytes($0) } }

    mutating func u8(_ v: UInt8) { withUnsafeBytes(of: v) { bytes($0) } }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes($0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes($0) } }
    mutating func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes($0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes($0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes($0) } }
    mutating func count(_ n: Int) { u64(UInt64(n)) }
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            bytes(UnsafeRawBufferPointer(utf8))
        }
    }

    private mutating func flush() {
        guard !buffer.isEmpty else { return }
        let pending = buffer
        pending.withUnsafeBytes { checksum.update($0) }
        pending.withUnsafeBytes { writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private mutating func writeAll(_ b: UnsafeRawBufferPointer) {
        guard failure == 0, let base = b.baseAddress else { return }
        var offset = 0
        while offset < b.count {
            let n = Glibc.write(fd, base + offset, b.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += n
        }
    }

    mutating func finish() throws {
        flush()
        let hash = checksum.finish()
        withUnsafeBytes(of: hash.littleEndian) { writeAll($0) }
        if failure != 0 { throw BoardCheckpoint.Refused(reason: "write failed: \(String(cString: strerror(failure)))") }
        guard fsync(fd) == 0 else { throw BoardCheckpoint.Refused(reason: "fsync failed: \(String(cString: strerror(errno)))") }
        close(fd)
    }

    func abandon() { close(fd) }
}

/// Bounds-checked reads from a checkpoint's bytes.
struct CheckpointReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int) throws -> Int {
        guard n >= 0, n <= bytes.count - offset else { throw BoardCheckpoint.Refused(reason: "a length runs past the end of the file") }
        defer { offset += n }
        return offset
    }

    mutating func bytes(_ n: Int) throws -> [UInt8] { let at = try take(n); return Array(bytes[at..<(at + n)]) }
    mutating func u8() throws -> UInt8 { bytes[try take(1)] }
    mutating func u16() throws -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2), as: UInt16.self)) }
    mutating func u32() throws -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self)) }
    mutating func i32() throws -> Int32 { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: Int32.self)) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self)) }
    mutating func i64() throws -> Int64 { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: Int64.self)) }

    /// A count, refused when it could not possibly fit in the rest of the file.
    mutating func count(elementSize: Int) throws -> Int {
        let n = try u64()
        guard n <= UInt64(remaining / max(1, elementSize)) else { throw BoardCheckpoint.Refused(reason: "a count of \(n) exceeds the file") }
        return Int(n)
    }

    mutating func string() throws -> String {
        let n = Int(try u32())
        let at = try take(n)
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]), as: UTF8.self)
    }

    /// `n` POD values copied as they are in the file.
    mutating func raw<T>(_ n: Int, as: T.Type) throws -> [T] {
        let size = n * MemoryLayout<T>.stride
        let at = try take(size)
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + size)]))
            initialized = n
        }
    }
}
