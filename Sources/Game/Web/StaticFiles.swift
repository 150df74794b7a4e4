#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CompressNIO
import Foundation
import HTTPTypes
public import NIOCore
import Synchronization
import CSystemInfo
import GameRules
import TextFormats

/// `web.root`: a directory of static files (a community's own front end) served before the
/// built-in pages. Only regular files inside the root are served: the request path is
/// percent-decoded once, and a path with a NUL, a backslash, a `..` or dot-file segment is
/// refused before the file system is asked; what the path names is then resolved with
/// `realpath` and must still lie inside the root (a symbolic link pointing out is refused).
/// Directories are never listed: `dir/` serves `dir/index.html` or nothing.
public final class StaticFiles: Sendable {
    public struct File: Sendable {
        public let body: ByteBuffer
        public let gzip: ByteBuffer?
        public let etag: String
        public let contentType: String
        public let modifiedAt: Int64
    }

    /// The root as `realpath` gives it, without a trailing slash.
    let root: String
    private let cache = Mutex<[String: (key: FileKey, file: File)]>([:])
    static let maxFileBytes = 32 << 20
    static let maxCachedFiles = 512

    private struct FileKey: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int
    }

    public init(root: String) {
        self.root = Self.realPath(root) ?? root
    }

    /// The file a request path names, or nil (absent, refused, or not a regular file).
    public func file(forPath rawPath: String) -> File? {
        guard let relative = Self.relativePath(rawPath) else { return nil }
        let candidate = relative.isEmpty || relative.hasSuffix("/") ? root + "/" + relative + "index.html" : root + "/" + relative
        guard let resolved = Self.realPath(candidate), resolved.hasPrefix(root + "/") else { return nil }
        var info = ipq_file_info()
        guard ipq_file_info_of(resolved, &info) == 0, info.is_regular_file != 0, info.size <= Self.maxFileBytes else { return nil }
        let key = FileKey(inode: info.inode, size: info.size, modified: info.modified_seconds, modifiedNanoseconds: Int(info.modified_nanoseconds))
        if let hit = cache.withLock({ $0[resolved] }), hit.key == key { return hit.file }
        guard let data = FileManager.default.contents(atPath: resolved) else { return nil }
        let type = Self.contentType(resolved)
        var body = ByteBuffer(bytes: data)
        let compressible = type.hasPrefix("text/") || type.hasPrefix("application/json") || type.hasPrefix("application/javascript") || type.hasPrefix("image/svg")
        let gzip = compressible && data.count > 256 ? try? body.compress(with: .gzip()) : nil
        let file = File(body: ByteBuffer(bytes: data), gzip: gzip, etag: "\"\(FNV1a.hex64(data))\"", contentType: type, modifiedAt: key.modified)
        cache.withLock { files in
            if files.count >= Self.maxCachedFiles { files.removeAll(keepingCapacity: true) }
            files[resolved] = (key, file)
        }
        return file
    }

    /// The path below the root that `rawPath` (as requested, percent-encoded) names, with a
    /// trailing `/` kept; nil when it may not be served.
    static func relativePath(_ rawPath: String) -> String? {
        let pathOnly = rawPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard pathOnly.hasPrefix("/"), let decoded = pathOnly.removingPercentEncoding else { return nil }
        guard !decoded.utf8.contains(0), !decoded.contains("\\") else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments where segment.hasPrefix(".") { return nil } // "..", ".", dot files
        let joined = segments.joined(separator: "/")
        return decoded.hasSuffix("/") && !joined.isEmpty ? joined + "/" : joined
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "txt": "text/plain; charset=utf-8", "svg": "image/svg+xml", "png": "image/png", "gif": "image/gif",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp", "ico": "image/x-icon", "woff2": "font/woff2",
        "woff": "font/woff", "map": "application/json", "xml": "application/xml", "webmanifest": "application/manifest+json",
    ]

    static func contentType(_ path: String) -> String {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return types[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}
