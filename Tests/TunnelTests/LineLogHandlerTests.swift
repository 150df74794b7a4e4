import Foundation
import IPAddress
import Logging
import NIOCore
import Testing

@testable import Tunnel

@Suite("Tunnel log line and helpers")
struct LineLogHandlerTests {
    @Test func writesOneSortedLinePerRecord() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var logger = Logger(label: "ipquest.tunnel") { LineLogHandler(label: $0, fileDescriptor: fds[1]) }
        logger.info("tunnel", metadata: ["result": "ok", "mode": "http", "bytes": .stringConvertible(42)])
        logger.debug("not written at info")
        logger.warning("second", metadata: ["detail": "x y"])
        close(fds[1])
        let text = String(decoding: FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "\(text)")
        let stamp = try Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z "#)
        #expect(lines[0].prefixMatch(of: stamp) != nil)
        #expect(lines[0].hasSuffix(" info ipquest.tunnel: tunnel bytes=42 mode=http result=ok"), "\(lines[0])")
        #expect(lines[1].hasSuffix(" warning ipquest.tunnel: second detail=x y"), "\(lines[1])")
    }

    @Test func socketAddressesConvertWithoutText() throws {
        let v4 = try SocketAddress(ipAddress: "192.0.2.7", port: 443)
        let v6 = try SocketAddress(ipAddress: "2001:db8::1", port: 443)
        #expect(TunnelHandshake.ipAddress(of: v4) == IPAddress("192.0.2.7"))
        #expect(TunnelHandshake.ipAddress(of: v6) == IPAddress("2001:db8::1"))
        let denied = try PrefixSet(parsing: ["2001:db8::/32"])
        #expect(TunnelHandshake.isDenied(v6, by: denied))
        #expect(!TunnelHandshake.isDenied(v4, by: denied))
        #expect(!TunnelHandshake.isDenied(v6, by: PrefixSet()))
    }
}
