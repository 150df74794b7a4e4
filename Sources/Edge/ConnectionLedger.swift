import NIOCore

/// Bookkeeping shared by the handlers of one HTTP/1 connection, so that answers given before
/// the HTTP decoder (`HTTP1FastPathHandler`), after it (`FastResponseHandler`) and by the
/// application keep one order, one request count and one idle clock. Event-loop bound.
public final class ConnectionLedger {
    /// Responses started on this connection, by any path (`max_requests_per_connection`).
    var responsesStarted = 0
    /// Requests handed to the application and not yet answered by it.
    var applicationOwes = 0
    /// Last request part read or answer finished (the idle timeout).
    var lastActivity = NIODeadline.now()
    /// Set when the connection is to close after the answers it owes.
    var closeAfterResponse = false

    init() {}
}
