import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny blocking HTTP/1.1 client over real sockets that can choose its source address
/// (every 127.x.y.z is local on Linux), so one test can play from thousands of IPs.
struct LoopbackHTTPClient {
    struct Response {
        var status: Int
        var headers: [String: String] // lower-cased names; repeated headers joined with ", "
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    enum Failure: Error { case socket(String), closedEarly }

    var port: UInt16
    var timeoutSeconds = 10

    /// Sends raw bytes from `source` and reads the whole response (the server is asked to close).
    func exchange(source: String = "127.0.0.1", raw: [UInt8]) throws -> Response {
        let fd = try connectSocket(source: source)
        defer { close(fd) }
        try sendAll(fd, raw)
        return try Self.parse(readToEnd(fd))
    }

    /// Reads until the peer closes (or the receive timeout passes).
    func readToEnd(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { data += buffer[0..<n] } else { break }
        }
        return data
    }

    func sendAll(_ fd: Int32, _ raw: [UInt8]) throws {
        var sent = 0
        while sent < raw.count {
            let n = raw[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure.socket("send: errno \(errno)") }
            sent += n
        }
    }

    /// A connected socket from `source` (caller closes it).
    func connectSocket(source: String = "127.0.0.1") throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.socket("socket") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(fd); throw Failure.socket("bind \(source): errno \(errno)") }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { close(fd); throw Failure.socket("connect: errno \(errno)") }
        return fd
    }

    func get(_ path: String, source: String = "127.0.0.1", headers: [(String, String)] = [], prefix: [UInt8] = []) throws -> Response {
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        return try exchange(source: source, raw: prefix + Array(head.utf8))
    }

    func request(_ method: String, _ path: String, source: String = "127.0.0.1", headers: [(String, String)] = []) throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        return try exchange(source: source, raw: Array(head.utf8))
    }

    static func parse(_ data: [UInt8]) throws -> Response {
        guard let split = data.firstRange(of: Array("\r\n\r\n".utf8)) else { throw Failure.closedEarly }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure.closedEarly }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let k = line[..<colon].lowercased()
            let v = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[k] = headers[k].map { $0 + ", " + v } ?? v
        }
        var body = Array(data[split.upperBound...])
        if headers["transfer-encoding"]?.contains("chunked") == true { body = dechunk(body) }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            guard let lineEnd = data[i...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: data[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText, radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            guard start + size <= data.count else { break }
            out += data[start..<start + size]
            i = start + size + 2
        }
        return out
    }

    /// A distinct loopback source address for index `i` (never 127.0.0.x). Consecutive
    /// indexes land in different /24s, so per-network rate limits do not interfere.
    static func sourceAddress(_ i: Int) -> String {
        "127.\(1 + i % 250).\((i / 250) % 256).\(1 + (i / 64_000) % 254)"
    }
}

/// Runs blocking work on a thread of its own and awaits it, so that tests never block the
/// Swift concurrency pool (the in-process server needs it to answer).
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }.start()
    }
}

/// Runs `body(i)` on `count` dedicated threads and awaits them all.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        for i in 0..<count {
            group.addTask { _ = try? await onThread { body(i) } }
        }
    }
}

extension LoopbackHTTPClient {
    func get(_ path: String, source: String = "127.0.0.1", headers: [(String, String)] = [], prefix: [UInt8] = []) async throws -> Response {
        try await onThread { try self.get(path, source: source, headers: headers, prefix: prefix) }
    }

    func request(_ method: String, _ path: String, source: String = "127.0.0.1", headers: [(String, String)] = []) async throws -> Response {
        try await onThread { try self.request(method, path, source: source, headers: headers) }
    }
}
