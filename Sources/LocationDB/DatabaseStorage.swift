#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a database could not be opened, read, written or verified.
public enum LocationDatabaseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened or mapped (`errno` text included).
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than its header says or than the header itself.
    case truncated(String)
    /// Not a libloc database, or a version other than 1.
    case badMagic
    case unsupportedVersion(UInt8)
    /// A structural error: an offset, index or length that does not fit the file.
    case corrupt(String)
    /// Signature problems: no signature, unsupported key, bad PEM, verification failure.
    case signature(String)
    /// Writer input problems (bad network, duplicate network, …).
    case invalidInput(String)
    case ioError(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "Could not open database \(path): \(reason)"
        case .truncated(let what): return "Database is truncated: \(what)"
        case .badMagic: return "Not a location database (bad magic)"
        case .unsupportedVersion(let v): return "Unsupported database version \(v)"
        case .corrupt(let what): return "Database is corrupt: \(what)"
        case .signature(let what): return "Signature: \(what)"
        case .invalidInput(let what): return "Invalid input: \(what)"
        case .ioError(let what): return "I/O error: \(what)"
        }
    }
}

/// Read-only bytes of a database: either a private read-only `mmap` of a file or an owned copy.
/// Immutable after creation, so it can be shared across threads.
final class DatabaseStorage: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    private let unmapLength: Int  // > 0 when mmapped
    private let ownsAllocation: Bool

    /// Maps `path` read-only.
    init(mapping path: String) throws(LocationDatabaseError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw .truncated("the file is empty") }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(pointer)
        count = size
        unmapLength = size
        ownsAllocation = false
    }

    /// Copies `bytes` (for databases built in memory, and for tests and fuzzing).
    init(copying bytes: some Collection<UInt8>) {
        let n = bytes.count
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(n, 1), alignment: 16)
        buffer.copyBytes(from: bytes)
        base = UnsafeRawPointer(buffer.baseAddress!)
        count = n
        unmapLength = 0
        ownsAllocation = true
    }

    deinit {
        if unmapLength > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), unmapLength)
        } else if ownsAllocation {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// Hints that the pages will be read soon (used before a full scan).
    func adviseSequential() {
        #if canImport(Glibc)
        if unmapLength > 0 { _ = madvise(UnsafeMutableRawPointer(mutating: base), unmapLength, MADV_WILLNEED) }
        #endif
    }

    @inline(__always)
    func u16(_ offset: Int) -> UInt16 { base.loadUnaligned(fromByteOffset: offset, as: UInt16.self).bigEndian }
    @inline(__always)
    func u32(_ offset: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian }
    @inline(__always)
    func u64(_ offset: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
