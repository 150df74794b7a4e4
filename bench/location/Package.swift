// swift-tools-version:6.1
// Lookup benchmark: LocationDB against the reference C library (libloc.so.1, loaded with
// dlopen) on the same addresses in the same process. Build and run with ./run.sh.
import PackageDescription

let package = Package(
    name: "location-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // Symlinks to the product's own sources, so the benchmark measures exactly that code.
        .target(name: "IPAddress", path: "Sources/IPAddress", swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
        .target(name: "LocationDB", dependencies: ["IPAddress", .product(name: "Crypto", package: "swift-crypto")],
                path: "Sources/LocationDB", swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
        .executableTarget(name: "LocationBench", dependencies: ["LocationDB", "IPAddress"], path: "Sources/LocationBench",
                          swiftSettings: [.swiftLanguageMode(.v5)]),  // a top-level script
    ]
)
