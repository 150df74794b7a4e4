import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import Edge
import HTTPServing

/// The response cache on a real server and real sockets.
@Suite(.serialized) struct ResponseCacheTests {
    final class Renders: Sendable {
        let count = Atomic<Int>(0)
        func next() -> Int { count.wrappingAdd(1, ordering: .relaxed).newValue }
        var value: Int { count.load(ordering: .relaxed) }
    }

    static func start(_ renders: Renders) async throws -> (UInt16, ServiceGroup) {
        let router = Router()
        router.add(middleware: ResponseCacheMiddleware(configuration: .init(ttl: .seconds(30), tti: .seconds(30), maxBytes: 1 << 20, paths: ["/page*"])))
        router.get("page") { _, _ -> Response in
            let n = renders.next()
            try await Task.sleep(for: .milliseconds(300)) // a costly render
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "render \(n)")))
        }
        router.get("page/tagged") { request, _ -> Response in
            _ = renders.next()
            if request.headers[.ifNoneMatch] == "\"v1\"" { return Response(status: .notModified, headers: [.eTag: "\"v1\""]) }
            return Response(status: .ok, headers: [.eTag: "\"v1\""], body: .init(byteBuffer: ByteBuffer(string: "tagged")))
        }
        router.get("page/private") { _, _ -> Response in
            let n = renders.next()
            return Response(status: .ok, headers: [.cacheControl: "private"], body: .init(byteBuffer: ByteBuffer(string: "private \(n)")))
        }
        router.get("page/cookie") { _, _ -> Response in
            let n = renders.next()
            return Response(status: .ok, headers: [.setCookie: "a=b"], body: .init(byteBuffer: ByteBuffer(string: "cookie \(n)")))
        }
        router.get("page/error") { _, _ -> Response in
            _ = renders.next()
            throw HTTPError(.internalServerError)
        }
        let port = Mutex<UInt16?>(nil)
        var logger = Logger(label: "cache-test")
        logger.logLevel = .error
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { channel in
            port.withLock { $0 = UInt16(channel.localAddress?.port ?? 0) }
        }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        Task.detached { try await group.run() }
        for _ in 0..<500 {
            if let p = port.withLock({ $0 }) { return (p, group) }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    @Test func concurrentMissesRenderOnceAndCredentialsBypass() async throws {
        let renders = Renders()
        let (port, group) = try await Self.start(renders)
        let client = LoopbackHTTPClient(port: port)
        let bodies = Mutex<[String]>([])
        await runOnThreads(100) { i in
            let r = try? client.get("/page", source: "127.12.\(i / 200).\(i % 200 + 1)")
            bodies.withLock { $0.append(r?.text ?? "failed") }
        }
        #expect(renders.value == 1, "100 concurrent misses, \(renders.value) renders")
        #expect(bodies.withLock { $0 } == Array(repeating: "render 1", count: 100))

        let hit = try await client.get("/page")
        #expect(hit.text == "render 1")
        #expect(hit.headers["age"] != nil)
        #expect(hit.headers["cache-control"] == "public, max-age=30, stale-while-revalidate=30")
        // Credentialed requests and different representations never get another's response.
        #expect(try await client.get("/page", headers: [("Authorization", "Basic eDp5")]).text == "render 2")
        #expect(try await client.get("/page", headers: [("Cookie", "session=1")]).text == "render 3")
        #expect(try await client.get("/page", headers: [("Accept-Encoding", "gzip")]).text == "render 4")
        // Private, cookie-setting and failed responses are not stored.
        #expect(try await client.get("/page/private").text == "private 5")
        #expect(try await client.get("/page/private").text == "private 6")
        #expect(try await client.get("/page/cookie").text == "cookie 7")
        #expect(try await client.get("/page/cookie").text == "cookie 8")
        #expect(try await client.get("/page/error").status == 500)
        #expect(try await client.get("/page/error").status == 500)
        #expect(renders.value == 10)
        // A client revalidating gets 304 from a hit too (a 200 with the whole body before).
        #expect(try await client.get("/page/tagged").text == "tagged")
        let revalidated = try await client.get("/page/tagged", headers: [("If-None-Match", "\"v0\", \"v1\"")])
        #expect(revalidated.status == 304 && revalidated.body.isEmpty && revalidated.headers["etag"] == "\"v1\"")
        #expect(try await client.get("/page/tagged", headers: [("If-None-Match", "\"v0\"")]).text == "tagged")
        #expect(renders.value == 11)
        await group.triggerGracefulShutdown()
    }
}
