public import CloudRanges
public import ConfigFile
public import Edge
public import IPAddress
public import LocationDB
public import Logging
public import ServiceLifecycle
public import GameRules

/// What the server knows about addresses: country and AS from an IPFire location database
/// (reloaded when its file changes) and data-center providers from the cloud providers'
/// published ranges (refreshed in the background). Either part may be absent.
///
/// As a `Service` it runs the file watcher and the range refresher until shutdown.
public final class AddressIntelligence: ClaimOriginLookup, Service {
    public let location: WatchedLocationDatabase?
    public let cloud: RangeSet?
    let locationCheckInterval: Duration
    let logger: Logger

    public init(location: WatchedLocationDatabase?, cloud: RangeSet?, locationCheckInterval: Duration = .seconds(60), logger: Logger) {
        self.location = location
        self.cloud = cloud
        self.locationCheckInterval = locationCheckInterval
        self.logger = logger
    }

    public func origin(of address: IPv4Address) -> ClaimOrigin {
        var country: String?
        var asn: UInt32?
        if let network = location?.current?.lookup(address) {
            let code = network.properties.countryCode
            if code.isValidCountry { country = code.description }
            asn = network.properties.asn
        }
        return ClaimOrigin(country: country, asn: asn, provider: cloud?.classify(.v4(address))?.provider)
    }

    /// The request-level tag (any address family).
    public func dataCenter(of address: IPAddress) -> DataCenterTag? {
        cloud?.classify(address).map { DataCenterTag(provider: $0.provider, service: $0.service) }
    }

    /// Loads the ranges available without the network (file sources, cached copies of URL
    /// sources), so requests are classified from the first one; `run()` then refreshes from
    /// the network in the background.
    public func loadRangesFromDisk() async {
        guard let cloud else { return }
        await cloud.loadCache()
        await cloud.refresh(network: false)
    }

    public func countryName(_ code: String) -> String? {
        guard let c = CountryCode(code) else { return nil }
        return location?.current?.country(code: c)?.name
    }

    public func autonomousSystemName(_ asn: UInt32) -> String? {
        location?.current?.autonomousSystem(number: asn)?.name
    }

    public func run() async throws {
        // Both loops run until the service group shuts down, which cancels them here.
        await cancelWhenGracefulShutdown { await self.runLoops() }
    }

    func runLoops() async {
        await withDiscardingTaskGroup { group in
            if let location {
                group.addTask {
                    await location.watch(every: self.locationCheckInterval) { result in
                        switch result {
                        case .reloaded: self.logger.info("location database reloaded", metadata: ["path": "\(location.path)"])
                        case .failed(let error):
                            self.logger.error("location database changed but cannot be opened; keeping the previous one",
                                              metadata: ["path": "\(location.path)", "error": "\(error)"])
                        case .unchanged: break
                        }
                    }
                }
            }
            if let cloud { group.addTask { await cloud.run() } }
        }
    }
}

extension AddressIntelligence {
    /// Builds what the configuration asks for: nil when it names neither a location database
    /// nor data-center sources. A database that cannot be opened is a configuration error.
    public static func make(configuration c: ServeConfiguration, logger: Logger) throws(ConfigFileError) -> AddressIntelligence? {
        var location: WatchedLocationDatabase?
        if let path = c.locationDatabase {
            do { location = try WatchedLocationDatabase(path: path) } catch {
                throw ConfigFileError(key: "location.database", problem: error.description)
            }
        }
        let cloud = c.dataCenterSources.isEmpty ? nil : RangeSet(
            sources: c.dataCenterSources, cacheDirectory: c.dataCenterCacheDirectory,
            refreshInterval: .seconds(c.dataCenterRefreshSeconds), logger: logger)
        guard location != nil || cloud != nil else { return nil }
        return AddressIntelligence(location: location, cloud: cloud, locationCheckInterval: .seconds(c.locationCheckSeconds), logger: logger)
    }
}
