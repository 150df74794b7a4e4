public import Hummingbird
import HTTPTypes
public import IPAddress
import Metrics
import Logging

/// Where a request comes from when its address is in a cloud provider's published ranges.
public struct DataCenterTag: Hashable, Sendable {
    public var provider: String
    public var service: String?
    public init(provider: String, service: String? = nil) {
        self.provider = provider
        self.service = service
    }
}

/// A request context that carries the data-center tag for handlers.
public protocol DataCenterTaggedContext: RequestContext {
    var dataCenter: DataCenterTag? { get set }
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

/// Classifies each request's client address against the data-center ranges and applies the
/// route's policy: tag it (context, log metadata, metrics), refuse it (403), or skip it.
///
/// Metrics: `ipquest_datacenter_requests_total{provider, action=tag|deny}`.
public struct DataCenterPolicyMiddleware<Context: DataCenterTaggedContext>: RouterMiddleware {
    let policy: DataCenterPolicy
    let classify: @Sendable (IPAddress) -> DataCenterTag?
    let clientAddress: @Sendable (Request, Context) -> IPAddress?

    public init(
        policy: DataCenterPolicy,
        classify: @escaping @Sendable (IPAddress) -> DataCenterTag?,
        clientAddress: @escaping @Sendable (Request, Context) -> IPAddress?
    ) {
        self.policy = policy
        self.classify = classify
        self.clientAddress = clientAddress
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let action = policy.action(for: RequestPath.normalized(request.uri.path))
        guard action != .allow, let client = clientAddress(request, context), let tag = classify(client) else {
            return try await next(request, context)
        }
        Counter(label: "ipquest_datacenter_requests_total", dimensions: [("provider", tag.provider), ("action", action.rawValue)]).increment()
        if action == .deny {
            throw HTTPError(
                .forbidden,
                message: "requests from data-center networks are not accepted here: \(client) is in \(tag.provider)'s published ranges")
        }
        var context = context
        context.dataCenter = tag
        context.logger[metadataKey: "datacenter"] = .string(tag.provider)
        return try await next(request, context)
    }
}
