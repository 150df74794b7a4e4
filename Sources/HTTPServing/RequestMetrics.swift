public import Edge
import Dispatch
public import HTTPTypes
public import Hummingbird
import Metrics
import Synchronization
public import IPAddress
import Logging

/// The request metrics, one set for every path that answers: `ipquest_http_requests_total`
/// and `ipquest_http_request_duration_seconds`, labelled `route` (the route's template, as the
/// route table names it), `method` and `status`. Recorded by `RequestMetricsMiddleware` for
/// the router and by the event-loop answers directly, so both land in the same series.
public final class RequestMetrics: Sendable {
    public static let requestsLabel = "ipquest_http_requests_total"
    public static let durationLabel = "ipquest_http_request_duration_seconds"
    /// The route label of a request no route matched.
    public static let unmatched = "unmatched"

    private struct Key: Hashable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    private let cache = Mutex<[Key: (Counter, Metrics.Timer)]>([:])

    public init() {}

    public func record(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, since start: UInt64) {
        let key = Key(route: route, method: method, status: status.code)
        let (counter, timer) = cache.withLock { cache in
            if let hit = cache[key] { return hit }
            let dimensions = [("route", route), ("method", method.rawValue), ("status", String(status.code))]
            let made = (Counter(label: Self.requestsLabel, dimensions: dimensions),
                        Metrics.Timer(label: Self.durationLabel, dimensions: dimensions, preferredDisplayUnit: .seconds))
            cache[key] = made
            return made
        }
        counter.increment()
        timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds &- start))
    }

    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

/// Records `RequestMetrics` for every request the router answers, when its answer is ready
/// (the body's write is not timed: answers here are buffers, written as the fast path's are).
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RequestMetrics

    public init(_ metrics: RequestMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = RequestMetrics.now()
        let metrics = self.metrics
        do {
            let response = try await next(request, context)
            metrics.record(route: context.endpointPath ?? RequestMetrics.unmatched, method: request.method, status: response.status, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            metrics.record(route: context.endpointPath ?? RequestMetrics.unmatched, method: request.method, status: status, since: start)
            throw error
        }
    }
}

/// Admits every request the router handles (`RequestAdmission`), tags data-center clients in
/// the context, and echoes or assigns `X-Request-ID` (also put in the request's log metadata).
public struct AdmissionMiddleware<Context: DataCenterTaggedContext>: RouterMiddleware {
    let admission: RequestAdmission
    let clientAddress: @Sendable (Request, Context) -> IPAddress?

    public init(_ admission: RequestAdmission, clientAddress: @escaping @Sendable (Request, Context) -> IPAddress?) {
        self.admission = admission
        self.clientAddress = clientAddress
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = RequestID.acceptable(request.headers[RequestID.field]) ?? RequestID.next()
        context.logger[metadataKey: "request_id"] = "\(requestID)"
        // Resolved once: the log line, the ban and the bucket all key on the same client.
        let client = clientAddress(request, context)
        context.logger[metadataKey: "client"] = "\(client.map { "\($0)" } ?? "unattributed")"
        let path = RequestPath.normalized(request.uri.path)
        var response: Response
        switch admission.admit(path: path, userAgent: request.headers[.userAgent], client: client, logger: context.logger) {
        case .refused(let refusal):
            refusal.log(to: context.logger)
            let (headers, body) = ErrorBody.parts(status: refusal.status, headers: refusal.headers, message: refusal.message, json: ErrorBody.isJSON(path: path))
            response = Response(status: refusal.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        case .admitted(let tag):
            if let tag {
                context.dataCenter = tag
                context.logger[metadataKey: "datacenter"] = .string(tag.provider)
            }
            response = try await next(request, context)
        }
        response.headers[RequestID.field] = requestID
        return response
    }
}
