public import Edge
public import Hummingbird
import HTTPTypes
import Metrics

/// Refuses request methods outside the standard set with `501 Not Implemented`, before any
/// middleware that labels metrics by method sees them. HTTP/1's decoder only admits the
/// methods it knows, but HTTP/2 carries any token in `:method`: each new token used to
/// become a new metrics series (unbounded memory in the server and in Prometheus).
/// Refusals are counted under one fixed label.
public struct KnownMethodMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var known: Set<HTTPRequest.Method> { [.get, .head, .post, .put, .delete, .patch, .options, .trace, .connect] }
    private let refused = Counter(label: "ipquest_requests_rejected_total", dimensions: [("reason", "unknown_method")])

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.known.contains(request.method) else {
            refused.increment()
            return Response(status: .notImplemented, headers: [.contentType: "text/plain; charset=utf-8", .allow: "GET, HEAD, POST"],
                            body: .init(byteBuffer: ByteBuffer(string: "method not implemented\n")))
        }
        return try await next(request, context)
    }
}
