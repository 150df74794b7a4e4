public import Edge
public import Hummingbird

/// A request context that carries the data-center tag for handlers (set by `AdmissionMiddleware`).
public protocol DataCenterTaggedContext: RequestContext {
    var dataCenter: DataCenterTag? { get set }
}
