import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished tool printed.
struct ToolOutput: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `path` with `arguments` to completion on its own thread (never on the concurrency pool).
func runTool(_ path: String, _ arguments: [String]) async throws -> ToolOutput {
    try await onThread {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // The tools used here print little, so reading one pipe after the other cannot stall.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ToolOutput(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// A TCP socket bound to 127.0.0.1 on a free port (listening when `listening`), and the port.
func boundLoopbackSocket(listening: Bool) throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    guard withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }) == 0,
          !listening || listen(fd, 16) == 0 else {
        close(fd)
        throw LoopbackHTTPClient.Failure.socket("cannot bind 127.0.0.1")
    }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, UInt16(bigEndian: address.sin_port))
}
