// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // An import is internal unless marked `public import` (a module's API says which modules it
    // exposes), and a member is visible only through a module the file imports itself.
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ipquest",
    // Linux with glibc only: Edge, Tunnel and the storage use epoll, Linux socket options and
    // glibc calls (there is no platform entry for that; no Apple platform is claimed).
    products: [
        .executable(name: "ipquest", targets: ["ipquest"]),
        .executable(name: "ranges-bench", targets: ["RangesBench"]),
        .library(name: "IPAddress", targets: ["IPAddress"]),
        .library(name: "LocationDB", targets: ["LocationDB"]),
        .library(name: "CloudRanges", targets: ["CloudRanges"]),
        .library(name: "Edge", targets: ["Edge"]),
        .library(name: "Game", targets: ["Game"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // OTLP/HTTP only: the default traits add gRPC and triple the build time.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // Values, prefixes and longest-prefix-match tables. No dependencies on purpose.
        .target(name: "IPAddress", swiftSettings: swiftSettings),

        // Text formats every module writes or reads: HTTP dates, JSON string literals, FNV-1a,
        // HTTP whitespace. No dependencies.
        .target(name: "TextFormats", swiftSettings: swiftSettings),

        // Configuration files: YAML read with Yams and bound to settings, one error type naming
        // the key path, durations, sizes and booleans read one way.
        .target(
            name: "ConfigFile",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),

        // Downloads of published files (location databases, cloud range feeds): conditional
        // requests (ETag, Last-Modified), size caps, timeouts.
        .target(
            name: "HTTPDownload",
            dependencies: [
                "TextFormats",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // IPFire libloc v1 database reader/writer, and its update from the published files.
        .target(
            name: "LocationDB",
            dependencies: [
                "IPAddress",
                "TextFormats",
                // `LocationDatabaseUpdate` downloads newer databases.
                "HTTPDownload",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Cloud provider range feeds and the data-center classifier.
        .target(
            name: "CloudRanges",
            dependencies: [
                "IPAddress",
                "TextFormats",
                "HTTPDownload",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // Request guards, with no server in them: client-IP resolution behind trusted proxies, the
        // PROXY protocol parser, path normal form, token buckets, in-flight budgets, bans, rules,
        // the connection guard's counts and one admission function for every request.
        .target(
            name: "Edge",
            dependencies: [
                "IPAddress",
                "TextFormats",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // The HTTP serving kit around the guards: the connection state machine and its handler,
        // the event-loop answer handler, PROXY/guarded/reloadable channels, lingering close,
        // conditional requests, the response cache, request metrics and the admission middleware.
        .target(
            name: "HTTPServing",
            dependencies: [
                "Edge",
                "IPAddress",
                "TextFormats",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // The game's rules and board: claims, players, periods, scores, the board's checkpoint.
        // No NIO, no HTTP.
        .target(
            name: "GameRules",
            dependencies: ["IPAddress", "LocationDB", "TextFormats"],
            swiftSettings: swiftSettings
        ),

        // File identity, wall-clock time and process usage in structs of our own (see its header).
        .target(name: "CSystemInfo"),

        // The capture-the-IP game around its rules: the engine (claims queue, snapshots),
        // storage, HTTP API, web pages.
        .target(
            name: "Game",
            dependencies: [
                "GameRules",
                "IPAddress",
                "TextFormats",
                "ConfigFile",
                "CSystemInfo",
                "Edge",
                "HTTPServing",
                "LocationDB",
                "CloudRanges",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // HTTP CONNECT proxy.
        .target(name: "CTunnelLinux"),
        .target(
            name: "Tunnel",
            dependencies: [
                "IPAddress",
                "TextFormats",
                "ConfigFile",
                "CTunnelLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // The git commit the binary was built from (scripts/with-build-info.sh; "unknown" otherwise).
        .target(name: "CIPQuestBuildInfo"),

        // The command line: argument parsing and wiring only.
        .executableTarget(
            name: "ipquest",
            dependencies: [
                "IPAddress", "TextFormats", "ConfigFile", "LocationDB", "CloudRanges", "GameRules", "Game", "Tunnel", "CIPQuestBuildInfo",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // The release binary's link steps (lld, function order, packed relocations, static
            // libstdc++) are in scripts/build-release.sh, which checks what each needs.
            swiftSettings: swiftSettings
        ),

        // Longest-prefix-match benchmark driven by bench/ranges/run.sh (release builds only).
        .executableTarget(name: "RangesBench", dependencies: ["IPAddress"], swiftSettings: swiftSettings),

        // What every test target shares (the seeded generator of fuzz and property tests).
        .target(name: "IPQuestTestSupport", path: "Tests/IPQuestTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "IPAddressTests", dependencies: ["IPAddress", "IPQuestTestSupport"]),
        .testTarget(name: "LocationDBTests", dependencies: ["LocationDB", "TextFormats", "IPQuestTestSupport"]),
        .testTarget(name: "TextFormatsTests", dependencies: ["TextFormats"]),
        .testTarget(name: "GameRulesTests", dependencies: ["GameRules", "IPAddress", "IPQuestTestSupport"]),
        .testTarget(
            name: "CloudRangesTests",
            dependencies: [
                "CloudRanges",
                "IPAddress",
                "HTTPDownload",
                "TextFormats",
                "IPQuestTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Fixtures", "reference_ranges.py"]
        ),
        .testTarget(
            name: "EdgeTests",
            dependencies: [
                "Edge",
                "IPAddress",
                "IPQuestTestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "HTTPServingTests",
            dependencies: [
                "HTTPServing",
                "Edge",
                "IPAddress",
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GameTests",
            dependencies: [
                "Game",
                "GameRules",
                "HTTPServing",
                "ConfigFile",
                "IPQuestTestSupport",
                "LocationDB",
                "CloudRanges",
                "Edge",
                "IPAddress",
                "TextFormats",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "TunnelTests",
            dependencies: [
                "Tunnel",
                "IPAddress",
                "ConfigFile",
                "IPQuestTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
