import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
@testable import Game
@testable import GameRules

/// A real game server on 127.0.0.1 with a random port and a real SQLite file in a temp dir.
final class TestServer: Sendable {
    let port: UInt16
    let engine: GameEngine
    let databasePath: String
    let directory: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    var client: LoopbackHTTPClient { LoopbackHTTPClient(port: port) }

    let guards: EdgeGuards

    static func start(
        configure: (inout ServeConfiguration) -> Void = { _ in },
        directory: String? = nil,
        wrapStorage: (SQLiteClaimStorage) -> any ClaimStorage = { $0 },
        intelligence: AddressIntelligence? = nil
    ) async throws -> TestServer {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var settings = ServeConfiguration()
        settings.port = 0
        settings.database = dir + "/game.sqlite"
        settings.durability = .normal
        settings.cacheTTLSeconds = 0 // tests read their own writes; the cache test turns it on
        configure(&settings)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let storage = try SQLiteClaimStorage(path: settings.database, durability: settings.durability)
        var engineConfiguration = GameEngine.Configuration()
        engineConfiguration.snapshotInterval = .milliseconds(50)
        let engine = try await GameEngine(storage: wrapStorage(storage), configuration: engineConfiguration, logger: logger)
        let portBox = Mutex<UInt16?>(nil)
        let guards = EdgeGuards(configuration: settings, logger: logger)
        await guards.loadAllowlistSources()
        let app = try GameServer.makeApplication(configuration: settings, engine: engine, logger: logger, guards: guards, intelligence: intelligence, onServerRunning: { channel in
            portBox.withLock { $0 = UInt16(channel.localAddress?.port ?? 0) }
        })
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let runTask = Task<Void, any Error>.detached { try await group.run() }
        var port: UInt16?
        for _ in 0..<1_000 where port == nil {
            try await Task.sleep(for: .milliseconds(10))
            port = portBox.withLock { $0 }
        }
        guard let port else { throw CancellationError() }
        return TestServer(port: port, engine: engine, databasePath: settings.database, directory: dir, group: group, task: runTask, guards: guards)
    }

    private init(port: UInt16, engine: GameEngine, databasePath: String, directory: String, group: ServiceGroup, task: Task<Void, any Error>, guards: EdgeGuards) {
        self.guards = guards
        self.port = port
        self.engine = engine
        self.databasePath = databasePath
        self.directory = directory
        self.group = group
        self.task = task
    }

    /// Graceful stop: in-flight requests finish and queued claims are written.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    func removeFiles() { try? FileManager.default.removeItem(atPath: directory) }
}
