
/// Where a request comes from when its address is in a cloud provider's published ranges.
public struct DataCenterTag: Hashable, Sendable {
    public var provider: String
    public var service: String?
    public init(provider: String, service: String? = nil) {
        self.provider = provider
        self.service = service
    }
}


/// What to do with requests from data centers on a route.
public enum DataCenterAction: String, Sendable, CaseIterable {
    /// Classify and tag (handlers, logs and metrics see the provider); serve as usual.
    case tag
    /// Refuse data-center requests with 403.
    case deny
    /// Serve without classifying.
    case allow
}

/// Per-route actions: the longest matching path prefix wins, else the default.
public struct DataCenterPolicy: Sendable, Equatable {
    public var defaultAction: DataCenterAction
    /// Path prefixes ("/claim", "/api/") and their actions.
    public var routes: [String: DataCenterAction]

    public init(defaultAction: DataCenterAction = .tag, routes: [String: DataCenterAction] = [:]) {
        self.defaultAction = defaultAction
        self.routes = routes
    }

    public func action(for path: String) -> DataCenterAction {
        var best: (length: Int, action: DataCenterAction)?
        for (prefix, action) in routes where path.hasPrefix(prefix) {
            if best == nil || prefix.utf8.count > best!.length { best = (prefix.utf8.count, action) }
        }
        return best?.action ?? defaultAction
    }
}
